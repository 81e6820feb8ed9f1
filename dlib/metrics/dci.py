"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018).

One predictor per factor gives an importance matrix R ``(D, F)`` (codes × factors).
Disentanglement: each code should matter for one factor (1 − entropy of its row, base F,
weighted by the code's share of importance). Completeness: each factor should be captured by one
code (1 − entropy of its column, base D). Informativeness: how well the factors are predicted.

Holds :func:`is_classifier`, :func:`importance_matrix`, :func:`disentanglement`,
:func:`completeness`, :func:`dci` and :func:`compute_dci`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import is_classifier as _sk_is_classifier
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import Lasso

from dlib.metrics.fast_gbt import HAVE_NUMBA
from dlib.metrics.utils import (
    Represent,
    as_random_state,
    check_pair,
    check_positive_int,
    normalize_codes,
    sample_codes_factors,
    varying_factors,
)

__all__ = [
    "MODELS",
    "importance_matrix",
    "disentanglement",
    "completeness",
    "dci",
    "compute_dci",
]


def _gbt(seed):
    return GradientBoostingClassifier(random_state=seed)


def _lasso(seed):
    return Lasso(alpha=0.02, random_state=seed)


def _fast_gbt(seed):
    from dlib.metrics.fast_gbt import FastGradientBoosting

    return FastGradientBoosting(random_state=seed)


def _random_forest(seed):
    return RandomForestRegressor(n_estimators=10, max_depth=8, random_state=seed)


MODELS: dict[str, Callable[[int | None], object]] = {
    "gbt": _gbt,
    "fast_gbt": _fast_gbt,
    "lasso": _lasso,
    "random_forest": _random_forest,
}
"""Predictor of each ``model`` name, built from ``model_seed``. The default ``"auto"`` is
``"fast_gbt"`` when numba is installed and ``"gbt"`` otherwise.

``"gbt"`` is the study's: sklearn's default GradientBoostingClassifier on raw codes and factor
classes. ``"fast_gbt"`` is the same model re-implemented to sort each feature once
(:mod:`dlib.metrics.fast_gbt`, needs numba): same trees as ``"gbt"`` with the same seed except
after rare rounding-level ties, many times faster. ``"lasso"`` (α = 0.02) and
``"random_forest"`` (10 trees, depth 8) are the paper's regressors, fit on z-scored codes and
z-scored factor classes.
"""


def is_classifier(est) -> bool:
    """sklearn's ``is_classifier``, also true for our FastGradientBoosting."""
    return getattr(est, "_estimator_type", None) == "classifier" or _sk_is_classifier(est)


def _fit_one(make, seed, x_tr, y_tr, x_te, y_te):
    """Importances (D,) and train/test scores of one factor's predictor."""
    est = make(seed)
    if is_classifier(est):
        est.fit(x_tr, y_tr)
        imp = np.abs(est.feature_importances_)
        return imp, np.mean(est.predict(x_tr) == y_tr), np.mean(est.predict(x_te) == y_te), None
    mean, std = y_tr.mean(), y_tr.std()
    t_tr, t_te = (y_tr - mean) / std, (y_te - mean) / std
    est.fit(x_tr, t_tr)
    imp = np.abs(est.coef_) if hasattr(est, "coef_") else np.abs(est.feature_importances_)
    mse_tr = np.mean((est.predict(x_tr) - t_tr) ** 2)
    mse_te = np.mean((est.predict(x_te) - t_te) ** 2)
    return imp, 1 - mse_tr, 1 - mse_te, (np.sqrt(mse_tr), np.sqrt(mse_te))


def importance_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    model: str | Callable[[int | None], object] = "auto",
    model_seed: int | None = 0,
    n_jobs: int | None = -1,
) -> dict[str, np.ndarray]:
    """Importance matrix ``(D, F)`` and per-factor train/test scores of one predictor per factor.

    Factors run in parallel threads (``n_jobs``; sklearn's tree code releases the GIL),
    largest class count first. ``model_seed`` seeds every predictor (disentanglement_lib leaves
    its GBT unseeded, so D and C vary in the third decimal between runs); ``None`` restores that.
    Constant factors (one class) are left out with a warning; their column of R is zero.
    """
    x_tr, f_tr = check_pair(codes_train, factors_train, "codes_train", "factors_train")
    x_te, f_te = check_pair(codes_test, factors_test, "codes_test", "factors_test")
    if x_tr.shape[1] != x_te.shape[1] or f_tr.shape[1] != f_te.shape[1]:
        raise ValueError(
            f"train and test widths differ: codes {x_tr.shape[1]} vs {x_te.shape[1]}, "
            f"factors {f_tr.shape[1]} vs {f_te.shape[1]}"
        )
    if model == "auto":
        model = "fast_gbt" if HAVE_NUMBA else "gbt"
    if isinstance(model, str) and model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODELS)} or a callable")
    make = MODELS[model] if isinstance(model, str) else model
    if not is_classifier(make(model_seed)):
        x_tr, mean, std = normalize_codes(x_tr.astype(np.float64))
        x_te, _, _ = normalize_codes(x_te.astype(np.float64), mean, std)
    keep = np.flatnonzero(varying_factors(f_tr, "DCI"))
    order = sorted(keep, key=lambda j: -len(np.unique(f_tr[:, j])))
    jobs = os.cpu_count() if n_jobs == -1 else (n_jobs or 1)
    results = Parallel(n_jobs=min(jobs, len(order)), prefer="threads")(
        delayed(_fit_one)(make, model_seed, x_tr, f_tr[:, j], x_te, f_te[:, j]) for j in order
    )
    d, f = x_tr.shape[1], f_tr.shape[1]
    out = {"importance": np.zeros((d, f)), "train": np.full(f, np.nan),
           "test": np.full(f, np.nan), "error_train": np.full(f, np.nan),
           "error_test": np.full(f, np.nan)}
    for j, (imp, tr, te, err) in zip(order, results, strict=True):
        out["importance"][:, j], out["train"][j], out["test"][j] = imp, tr, te
        if err is not None:
            out["error_train"][j], out["error_test"][j] = err
    out["factors"] = np.array(sorted(keep))
    return out


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (base ``base``) of each row of non-negative weights (normalised per row)."""
    p = p / p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(p), 0.0)
    return -(p * logs).sum(axis=1) / np.log(base)


def disentanglement(importance: np.ndarray) -> float:
    """Importance-weighted mean over codes of 1 − H_F(row) (disentanglement_lib's formula,
    1e-11 added to every entry). A code with zero importance gets weight 0; an all-zero
    matrix gives 0. Needs F ≥ 2 (entropy base F)."""
    r = np.asarray(importance, dtype=np.float64)
    if r.shape[1] < 2:
        raise ValueError("disentanglement needs at least 2 factors (entropy base F)")
    per_code = 1.0 - _entropy_rows(r + 1e-11, r.shape[1])
    w = r if r.sum() > 0 else np.ones_like(r)
    return float(np.sum(per_code * w.sum(axis=1) / w.sum()))


def completeness(importance: np.ndarray) -> float:
    """Importance-weighted mean over factors of 1 − H_D(column). Needs D ≥ 2."""
    r = np.asarray(importance, dtype=np.float64)
    if r.shape[0] < 2:
        raise ValueError("completeness needs at least 2 code dimensions (entropy base D)")
    per_factor = 1.0 - _entropy_rows(r.T + 1e-11, r.shape[0])
    w = r if r.sum() > 0 else np.ones_like(r)
    return float(np.sum(per_factor * w.sum(axis=0) / w.sum()))


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    model: str | Callable[[int | None], object] = "auto",
    model_seed: int | None = 0,
    n_jobs: int | None = -1,
) -> dict[str, float]:
    """DCI of train/test codes ``(N, D)`` and factor classes ``(N, F)``.

    Returns ``{disentanglement, completeness, informativeness_train, informativeness_test}``.
    Quirk of the study (``model="gbt"``): **informativeness is the mean classification accuracy
    (higher is better)**, not the paper's prediction error, and ordinal factors are treated as
    unordered classes. With a regressor (``"lasso"``, ``"random_forest"``) informativeness is
    the mean R² = 1 − NRMSE² on z-scored factors, and ``prediction_error_train/test`` adds the
    paper's mean NRMSE. GBT importances sum to 1 per factor, so every factor weighs 1/F in
    completeness. Results depend (slightly) on the sklearn version.
    """
    res = importance_matrix(codes_train, factors_train, codes_test, factors_test, model,
                            model_seed, n_jobs)
    r = res["importance"][:, res["factors"]]
    out = {
        "disentanglement": disentanglement(r) if r.shape[1] > 1 else 1.0,
        "completeness": completeness(r),
        "informativeness_train": float(np.nanmean(res["train"])),
        "informativeness_test": float(np.nanmean(res["test"])),
    }
    if not np.isnan(res["error_test"]).all():
        out["prediction_error_train"] = float(np.nanmean(res["error_train"]))
        out["prediction_error_test"] = float(np.nanmean(res["error_test"]))
    return out


def compute_dci(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    num_train: int = 10000,
    num_test: int = 5000,
    batch_size: int = 16,
    model: str | Callable[[int | None], object] = "auto",
    model_seed: int | None = 0,
    n_jobs: int | None = -1,
) -> dict[str, float]:
    """DCI on a train set then a test set sampled as disentanglement_lib samples them.

    Study defaults. GBT is the bottleneck of the whole suite (a 40-class factor fits 40 trees per
    stage): sklearn's takes ~5 CPU minutes on dSprites' factors at study size, the sorted-once
    ``"fast_gbt"`` (the default when numba is installed) ~20 s; both run factors in parallel.
    """
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    check_positive_int(num_test, "num_test")
    x_tr, f_tr = sample_codes_factors(data, represent, num_train, rs, batch_size)
    x_te, f_te = sample_codes_factors(data, represent, num_test, rs, batch_size)
    return dci(x_tr, f_tr, x_te, f_te, model, model_seed, n_jobs)
