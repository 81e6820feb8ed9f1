"""SAP score, Separated Attribute Predictability (Kumar et al. 2018), as in disentanglement_lib.

A score matrix S ``(D, F)`` says how well each single code dimension predicts each factor; SAP
is the mean over factors of the gap between the best and the second-best dimension.
``feature_dim`` = D_Z > 1 reads the code as K features of D_Z dimensions each (the
intervention-based paper's CMNIST code, K_Z = 2, D_Z = 16) and scores every *feature* with one
predictor on its D_Z dimensions; with D_Z = 1 that is the usual SAP.

Holds :func:`sap_score_matrix`, :func:`sap` and :func:`compute_sap`.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from sklearn.svm import LinearSVC

from dlib.metrics.utils import (
    Represent,
    as_random_state,
    check_pair,
    check_positive_int,
    sample_codes_factors,
    varying_factors,
)

__all__ = ["sap_score_matrix", "sap", "compute_sap"]


def _continuous_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation (ddof 1) of every code with every factor; 0 for codes of
    variance ≤ 1e-12 (disentanglement_lib's guard)."""
    z = codes.astype(np.float64) - codes.mean(axis=0, dtype=np.float64)
    y = factors.astype(np.float64) - factors.mean(axis=0)
    n = len(z) - 1
    cov = z.T @ y / n
    var_z, var_y = (z * z).sum(axis=0) / n, (y * y).sum(axis=0) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        s = cov**2 / (var_z[:, None] * var_y[None, :])
    s[var_z <= 1e-12] = 0.0
    return s


def _grouped_r2(codes: np.ndarray, factors: np.ndarray, feature_dim: int) -> np.ndarray:
    """R² ``(K, F)`` of the least-squares fit (with intercept) of every factor on every
    feature's ``feature_dim`` dimensions: the squared multiple correlation, which for one
    dimension is the squared Pearson correlation. Directions of variance ≤ 1e-12 are dropped
    (the same guard); a constant feature scores 0."""
    z = codes.astype(np.float64) - codes.mean(axis=0, dtype=np.float64)
    y = factors.astype(np.float64) - factors.mean(axis=0)
    total = (y * y).sum(axis=0)
    k = z.shape[1] // feature_dim
    out = np.zeros((k, y.shape[1]))
    for i in range(k):
        u, sv, _ = np.linalg.svd(z[:, i * feature_dim:(i + 1) * feature_dim],
                                 full_matrices=False)
        basis = u[:, sv ** 2 / max(len(z) - 1, 1) > 1e-12]  # an orthonormal basis of the span
        explained = ((basis.T @ y) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[i] = np.where(total > 0, explained / total, 0.0)
    return out


def _svm_accuracy(z_tr, y_tr, z_te, y_te, c):
    """Test accuracy of a linear SVM on the (N, d) columns of one code dimension or feature."""
    clf = LinearSVC(C=c, class_weight="balanced", random_state=0)
    clf.fit(z_tr, y_tr)
    return np.mean(clf.predict(z_te) == y_te)


def _feature_count(codes: np.ndarray, feature_dim: int) -> int:
    if int(feature_dim) != feature_dim or feature_dim < 1:
        raise ValueError(f"feature_dim must be a positive integer, got {feature_dim!r}")
    if codes.shape[1] % int(feature_dim):
        raise ValueError(f"the code's {codes.shape[1]} dimensions are not a whole number of "
                         f"features of feature_dim = {feature_dim}")
    return codes.shape[1] // int(feature_dim)


def sap_score_matrix(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    continuous_factors: bool = False,
    svm_c: float = 0.01,
    n_jobs: int | None = 1,
    feature_dim: int = 1,
) -> np.ndarray:
    """Score matrix ``(D, F)`` of single-dimension predictability (``(K, F)`` of feature
    predictability with ``feature_dim`` > 1: K = D / feature_dim).

    ``continuous_factors=True``: squared correlation R² on ``codes`` (no test set needed).
    ``False`` (the study's mode): test accuracy of a ``LinearSVC(C=svm_c,
    class_weight="balanced")`` fit on one code dimension; needs the test set.
    """
    codes, factors = check_pair(codes, factors)
    k = _feature_count(codes, feature_dim)
    d = int(feature_dim)
    if continuous_factors:
        return _continuous_matrix(codes, factors) if d == 1 else _grouped_r2(codes, factors, d)
    if codes_test is None or factors_test is None:
        raise ValueError("discrete SAP (continuous_factors=False) needs codes_test, factors_test")
    codes_test, factors_test = check_pair(codes_test, factors_test, "codes_test", "factors_test")
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise ValueError("train and test sets must have the same code and factor widths")
    pairs = [(i, j) for i in range(k) for j in range(factors.shape[1])]
    acc = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_svm_accuracy)(codes[:, i * d:(i + 1) * d], factors[:, j],
                               codes_test[:, i * d:(i + 1) * d], factors_test[:, j], svm_c)
        for i, j in pairs
    )
    return np.array(acc, dtype=np.float64).reshape(k, factors.shape[1])


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    continuous_factors: bool = False,
    svm_c: float = 0.01,
    n_jobs: int | None = 1,
    feature_dim: int = 1,
) -> dict[str, float]:
    """SAP score ``{"SAP_score"}``: mean over factors of (best − second-best) entry of S.

    Quirks: the study's discrete mode badly underrates perfect codes of many-valued ordinal
    factors (a 1-D *linear* classifier cannot carve 40 ordered classes), and its accuracies are
    not chance-corrected; the continuous mode (R²) is the original paper's choice. Needs D ≥ 2.
    A factor that is constant in the training sample (the reference raises or returns NaN) is
    left out with a warning; constant codes score 0. ``feature_dim`` > 1 scores features of
    that many dimensions (module docstring).
    """
    codes, factors = check_pair(codes, factors)
    if _feature_count(codes, feature_dim) < 2:
        raise ValueError("SAP needs at least 2 code dimensions or features (the gap needs a "
                         "runner-up)")
    keep = varying_factors(factors, "SAP")
    ft = None if factors_test is None else np.asarray(factors_test)[:, keep]
    s = sap_score_matrix(codes, factors[:, keep], codes_test, ft, continuous_factors, svm_c,
                         n_jobs, feature_dim)
    top = np.sort(s, axis=0)
    return {"SAP_score": float(np.mean(top[-1] - top[-2]))}


def compute_sap(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    num_train: int = 10000,
    num_test: int = 5000,
    batch_size: int = 16,
    continuous_factors: bool = False,
    svm_c: float = 0.01,
    n_jobs: int | None = 1,
    feature_dim: int = 1,
) -> dict[str, float]:
    """SAP on a train then a test set sampled as disentanglement_lib samples them (both are
    drawn in either mode, as in the reference). Study default: ``continuous_factors=False``."""
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    check_positive_int(num_test, "num_test")
    x_tr, f_tr = sample_codes_factors(data, represent, num_train, rs, batch_size)
    x_te, f_te = sample_codes_factors(data, represent, num_test, rs, batch_size)
    return sap(x_tr, f_tr, x_te, f_te, continuous_factors, svm_c, n_jobs, feature_dim)
