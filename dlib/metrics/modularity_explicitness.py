"""Modularity and Explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them.

Modularity: each code dimension should carry information about one factor only (from the
squared mutual-information matrix). Explicitness: the factors should be linearly decodable
from the whole code (macro ROC-AUC of a logistic regression per factor).

Holds :func:`modularity_from_mi`, :func:`modularity`, :func:`explicitness` and
:func:`compute_modularity_explicitness`.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from dlib.metrics.mig import mutual_info_matrix
from dlib.metrics.utils import (
    Represent,
    as_random_state,
    check_pair,
    check_positive_int,
    normalize_codes,
    sample_codes_factors,
    varying_factors,
)

__all__ = ["modularity", "modularity_from_mi", "explicitness", "compute_modularity_explicitness"]


def modularity_from_mi(mi: np.ndarray) -> float:
    """Mean over codes of 1 − (Σ_f m² − max m²) / (max m² · (F − 1)), with m² the squared MI of
    the code with each factor; a code with zero MI scores 0 (disentanglement_lib's rule)."""
    sq = np.square(np.asarray(mi, dtype=np.float64))
    if sq.shape[1] < 2:
        raise ValueError("modularity needs at least 2 factors")
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = 1.0 - (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1))
    return float(np.mean(np.where(top == 0, 0.0, per_code)))


def modularity(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    """Modularity of codes ``(N, D)`` for factor classes ``(N, F)`` (binned plug-in MI).

    Quirks kept: a dead code (zero MI) counts as 0 and drags the mean down; pure noise scores
    high, because the tiny finite-sample MIs are uneven, so each noise code looks "modular".
    """
    codes, factors = check_pair(codes, factors)
    return modularity_from_mi(mutual_info_matrix(codes, factors, num_bins))


def _auc(clf, x, y):
    """Macro one-vs-rest ROC-AUC over the classifier's classes that are present in ``y`` with
    both positives and negatives (the reference one-hot-encodes each split separately, which
    misaligns columns when a class is missing from a split)."""
    proba = clf.predict_proba(x)
    aucs = [roc_auc_score(y == c, proba[:, k]) for k, c in enumerate(clf.classes_)
            if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def explicitness(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
) -> tuple[float, float]:
    """Mean over factors of the macro ROC-AUC of ``LogisticRegression()`` on z-scored codes.

    Returns (train, test). Treatments: a constant code is z-scored to 0 instead of NaN (the
    reference crashes); constant factors are left out with a warning. The classifier is
    sklearn's default (lbfgs multinomial since 0.22; liblinear OvR before, several hundredths
    apart), so the values depend on the sklearn version.
    """
    x_tr, f_tr = check_pair(codes_train, factors_train, "codes_train", "factors_train")
    x_te, f_te = check_pair(codes_test, factors_test, "codes_test", "factors_test")
    if x_tr.shape[1] != x_te.shape[1] or f_tr.shape[1] != f_te.shape[1]:
        raise ValueError("train and test sets must have the same code and factor widths")
    z_tr, mean, std = normalize_codes(x_tr)
    z_te, _, _ = normalize_codes(x_te, mean, std)
    train, test = [], []
    for j in np.flatnonzero(varying_factors(f_tr, "Explicitness")):
        clf = LogisticRegression().fit(z_tr, f_tr[:, j])
        train.append(_auc(clf, z_tr, f_tr[:, j]))
        test.append(_auc(clf, z_te, f_te[:, j]))
    return float(np.nanmean(train)), float(np.nanmean(test))


def compute_modularity_explicitness(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    num_train: int = 10000,
    num_test: int = 5000,
    batch_size: int = 16,
    num_bins: int = 20,
) -> dict[str, float]:
    """``{modularity_score, explicitness_score_train, explicitness_score_test}`` on a train
    then a test set sampled as disentanglement_lib samples them (study defaults)."""
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    check_positive_int(num_test, "num_test")
    x_tr, f_tr = sample_codes_factors(data, represent, num_train, rs, batch_size)
    x_te, f_te = sample_codes_factors(data, represent, num_test, rs, batch_size)
    train, test = explicitness(x_tr, f_tr, x_te, f_te)
    return {
        "modularity_score": modularity(x_tr, f_tr, num_bins),
        "explicitness_score_train": train,
        "explicitness_score_test": test,
    }
