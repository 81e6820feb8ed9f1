"""Interventional Robustness Score (Suter et al. 2019), as disentanglement_lib computes it.

For each code dimension and factor: how much does the code still move when only that factor is
held fixed (the other factors act as nuisance)? A robust dimension has a factor whose fixing
leaves it (nearly) still; IRS averages 1 − normalised deviation of the best factor.

Holds :func:`irs_matrix`, :func:`irs` and :func:`compute_irs`.
"""

from __future__ import annotations

import numpy as np

from dlib.metrics.utils import (
    Represent,
    as_random_state,
    check_pair,
    check_positive_int,
    histogram_discretize,
    sample_codes_factors,
)

__all__ = ["irs_matrix", "irs", "compute_irs"]


def irs_matrix(
    codes: np.ndarray, factors: np.ndarray, diff_quantile: float = 0.99
) -> tuple[np.ndarray, np.ndarray]:
    """IRS matrix ``(D, F)`` = 1 − mean over values v of factor j of the ``diff_quantile``
    quantile of |z − E[z | g_j = v]|, divided by the code's maximal deviation; and that maximal
    deviation ``(D,)``. Expects non-constant codes and (binned) factor labels."""
    z = codes  # native dtype, as the reference (float32 codes stay float32)
    max_dev = np.max(np.abs(z - z.mean(axis=0)), axis=0)
    cum = np.zeros((z.shape[1], factors.shape[1]))
    for j in range(factors.shape[1]):
        values = np.unique(factors[:, j])
        for v in values:
            group = z[factors[:, j] == v]
            dev = np.abs(group - group.mean(axis=0))
            cum[:, j] += np.percentile(dev, diff_quantile * 100, axis=0)
        cum[:, j] /= len(values)
    return 1.0 - cum / max_dev[:, None], max_dev


def irs(
    codes: np.ndarray, factors: np.ndarray, diff_quantile: float = 0.99, num_bins: int = 20
) -> dict[str, float]:
    """``{"IRS", "num_active_dims"}`` of codes ``(N, D)`` and factor classes ``(N, F)``.

    As the reference: factors are binned into ``num_bins`` equal-width bins (which lowers the
    score of perfect codes of factors with more values), constant codes are dropped (IRS = 0 if
    none is left), per-code scores are averaged with weights = maximal deviation.
    ``diff_quantile=1.0`` is the paper's version (the maximum). Pure noise scores ~0.35, not 0.
    Fixed bug: ``num_active_dims`` counts the non-constant codes (the reference returns the sum
    of their *values*).
    """
    codes, factors = check_pair(codes, factors)
    if not 0.0 <= diff_quantile <= 1.0:
        raise ValueError(f"diff_quantile must lie in [0, 1], got {diff_quantile}")
    binned = histogram_discretize(factors, num_bins)
    active = codes.var(axis=0) > 0
    if not active.any():
        return {"IRS": 0.0, "num_active_dims": 0}
    mat, max_dev = irs_matrix(codes[:, active], binned, diff_quantile)
    per_code = mat.max(axis=1)
    score = np.average(per_code, weights=max_dev) if max_dev.sum() > 0 else per_code.mean()
    return {"IRS": float(score), "num_active_dims": int(active.sum())}


def compute_irs(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    diff_quantile: float = 0.99,
    num_train: int = 10000,
    batch_size: int = 16,
    num_bins: int = 20,
) -> dict[str, float]:
    """IRS on ``num_train`` points sampled as disentanglement_lib samples them (``irs.gin``)."""
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    codes, factors = sample_codes_factors(data, represent, num_train, rs, batch_size)
    return irs(codes, factors, diff_quantile, num_bins)
