"""DEFT's max-m normalised mutual information (Wu et al., seed 004, eq. 5–6).

NMI(z_j; v_k) = I(z_j; v_k) / H(v_k). For each factor, max-m NMI is the m-th largest NMI over
the code dimensions: max-1 says how well the best dimension captures the factor, max-2 how much
of it *leaks* into a second dimension. MIG is the mean of max-1 − max-2 (eq. 6).

Holds :func:`nmi_matrix` and :func:`max_m_nmi`.
"""

from __future__ import annotations

import numpy as np

from dlib.metrics.mig import mutual_info_matrix
from dlib.metrics.utils import (
    check_pair,
    check_positive_int,
    discrete_entropy,
    varying_factors,
)

__all__ = ["nmi_matrix", "max_m_nmi"]


def nmi_matrix(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """NMI ``(D, F)`` of binned codes with each factor (plug-in MI / plug-in entropy, as MIG).

    Factors constant in the sample (entropy 0) get a NaN column with a warning.
    """
    codes, factors = check_pair(codes, factors)
    keep = varying_factors(factors, "NMI")
    out = np.full((codes.shape[1], factors.shape[1]), np.nan)
    out[:, keep] = mutual_info_matrix(codes, factors[:, keep], num_bins) / discrete_entropy(
        factors[:, keep]
    )
    return out


def max_m_nmi(
    codes: np.ndarray, factors: np.ndarray, m: int = 1, num_bins: int = 20
) -> np.ndarray:
    """max-m NMI(v_k) of every factor ``(F,)``: the m-th largest NMI over code dimensions.

    ``mean(max_m_nmi(.., 1) - max_m_nmi(.., 2))`` equals ``mig(...)["discrete_mig"]``.
    """
    m = check_positive_int(m, "m")
    nmi = nmi_matrix(codes, factors, num_bins)
    if m > nmi.shape[0]:
        raise ValueError(f"m = {m} exceeds the number of code dimensions {nmi.shape[0]}")
    return -np.sort(-nmi, axis=0)[m - 1]
