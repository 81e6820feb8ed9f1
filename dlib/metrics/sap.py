"""SAP score, Separated Attribute Predictability (Kumar et al. 2018), as in disentanglement_lib.

A score matrix S ``(D, F)`` says how well each single code dimension predicts each factor; SAP
is the mean over factors of the gap between the best and the second-best dimension.

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


def _svm_accuracy(z_tr, y_tr, z_te, y_te, c):
    clf = LinearSVC(C=c, class_weight="balanced", random_state=0)
    clf.fit(z_tr[:, None], y_tr)
    return np.mean(clf.predict(z_te[:, None]) == y_te)


def sap_score_matrix(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    continuous_factors: bool = False,
    svm_c: float = 0.01,
    n_jobs: int | None = 1,
) -> np.ndarray:
    """Score matrix ``(D, F)`` of single-dimension predictability.

    ``continuous_factors=True``: squared correlation R² on ``codes`` (no test set needed).
    ``False`` (the study's mode): test accuracy of a ``LinearSVC(C=svm_c,
    class_weight="balanced")`` fit on one code dimension; needs the test set.
    """
    codes, factors = check_pair(codes, factors)
    if continuous_factors:
        return _continuous_matrix(codes, factors)
    if codes_test is None or factors_test is None:
        raise ValueError("discrete SAP (continuous_factors=False) needs codes_test, factors_test")
    codes_test, factors_test = check_pair(codes_test, factors_test, "codes_test", "factors_test")
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise ValueError("train and test sets must have the same code and factor widths")
    pairs = [(i, j) for i in range(codes.shape[1]) for j in range(factors.shape[1])]
    acc = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_svm_accuracy)(codes[:, i], factors[:, j], codes_test[:, i],
                               factors_test[:, j], svm_c)
        for i, j in pairs
    )
    return np.array(acc, dtype=np.float64).reshape(codes.shape[1], factors.shape[1])


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    continuous_factors: bool = False,
    svm_c: float = 0.01,
    n_jobs: int | None = 1,
) -> dict[str, float]:
    """SAP score ``{"SAP_score"}``: mean over factors of (best − second-best) entry of S.

    Quirks: the study's discrete mode badly underrates perfect codes of many-valued ordinal
    factors (a 1-D *linear* classifier cannot carve 40 ordered classes), and its accuracies are
    not chance-corrected; the continuous mode (R²) is the original paper's choice. Needs D ≥ 2.
    A factor that is constant in the training sample (the reference raises or returns NaN) is
    left out with a warning; constant codes score 0.
    """
    codes, factors = check_pair(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("SAP needs at least 2 code dimensions (the gap needs a runner-up)")
    keep = varying_factors(factors, "SAP")
    ft = None if factors_test is None else np.asarray(factors_test)[:, keep]
    s = sap_score_matrix(codes, factors[:, keep], codes_test, ft, continuous_factors, svm_c,
                         n_jobs)
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
) -> dict[str, float]:
    """SAP on a train then a test set sampled as disentanglement_lib samples them (both are
    drawn in either mode, as in the reference). Study default: ``continuous_factors=False``."""
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    check_positive_int(num_test, "num_test")
    x_tr, f_tr = sample_codes_factors(data, represent, num_train, rs, batch_size)
    x_te, f_te = sample_codes_factors(data, represent, num_test, rs, batch_size)
    return sap(x_tr, f_tr, x_te, f_te, continuous_factors, svm_c, n_jobs)
