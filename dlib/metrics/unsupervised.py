"""Unsupervised scores of a representation (no factors needed), as in disentanglement_lib.

Gaussian total correlation and Gaussian Wasserstein correlation of the code covariance, and the
mean pairwise mutual information of the binned codes. The study runs them on the *mean* and on
the *sampled* representation (see :func:`dlib.metrics.utils.sampled_representation`): the noise
adds independent diagonal variance, so the sampled TC is lower for the same means.

Holds :func:`gaussian_total_correlation`, :func:`gaussian_wasserstein_correlation`,
:func:`unsupervised_scores` and :func:`compute_unsupervised`.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from dlib.metrics.utils import (
    Represent,
    as_codes,
    as_random_state,
    check_positive_int,
    discrete_mutual_info,
    histogram_discretize,
    sample_codes_factors,
)

__all__ = [
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "unsupervised_scores",
    "compute_unsupervised",
]


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """KL(N(0, Σ) || N(0, diag Σ)) = ½ (Σ_i log Σ_ii − log det Σ). +inf for a singular Σ
    of positive diagonal (e.g. a duplicated code)."""
    cov = np.asarray(cov, dtype=np.float64)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, Σ) and N(0, diag Σ):
    2 tr Σ − 2 tr sqrtm(diag(Σ) Σ) (real part; sqrtm may return a tiny imaginary part)."""
    cov = np.asarray(cov, dtype=np.float64)
    with warnings.catch_warnings():  # singular (e.g. duplicated codes): the root still exists
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(2 * np.trace(cov) - 2 * np.real(np.trace(root)))


def unsupervised_scores(codes: np.ndarray, num_bins: int = 20) -> dict[str, float]:
    """``{gaussian_total_correlation, gaussian_wasserstein_correlation,
    gaussian_wasserstein_correlation_norm, mutual_info_score}`` of codes ``(N, D)``.

    Treatments: constant (dead) codes are left out of the covariance scores (a dead code is
    independent of everything and contributes 0; the reference returns NaN); the MI score keeps
    them (MI 0) in its mean over the D² − D ordered pairs, as the reference. Needs D ≥ 2 and
    N ≥ 2. The MI score has a finite-sample upward bias (pure noise gives ~0.015 nats).
    """
    codes = as_codes(codes)
    if codes.shape[1] < 2 or codes.shape[0] < 2:
        raise ValueError(f"unsupervised scores need N >= 2 points and D >= 2 codes, "
                         f"got {codes.shape}")
    active = codes.var(axis=0) > 0
    if active.sum() >= 1:
        cov = np.atleast_2d(np.cov(codes[:, active], rowvar=False))
        tc, wc = gaussian_total_correlation(cov), gaussian_wasserstein_correlation(cov)
        wc_norm = wc / np.trace(cov)
    else:
        tc = wc = wc_norm = 0.0
    binned = histogram_discretize(codes, num_bins)
    mi = discrete_mutual_info(binned, binned)
    np.fill_diagonal(mi, 0)
    d = codes.shape[1]
    return {
        "gaussian_total_correlation": tc,
        "gaussian_wasserstein_correlation": wc,
        "gaussian_wasserstein_correlation_norm": float(wc_norm),
        "mutual_info_score": float(mi.sum() / (d * d - d)),
    }


def compute_unsupervised(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    num_train: int = 10000,
    batch_size: int = 16,
    num_bins: int = 20,
) -> dict[str, float]:
    """Unsupervised scores on ``num_train`` points sampled as disentanglement_lib samples them."""
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    codes, _ = sample_codes_factors(data, represent, num_train, rs, batch_size)
    return unsupervised_scores(codes, num_bins)
