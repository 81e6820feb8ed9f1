"""Unsupervised Disentanglement Ranking (Duan et al. 2020), as disentanglement_lib computes it.

Models trained with different seeds should agree on a disentangled representation up to
permutation and sign. UDR compares every ordered pair of models through a latent-by-latent
similarity matrix R (Lasso weights or |Spearman ρ|) and scores how one-to-one R is; a model's
score is the median over the other models.

Holds :func:`relative_strength`, :func:`similarity_matrix`, :func:`udr` and :func:`compute_udr`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Lasso

from dlib.metrics.utils import (
    as_codes,
    as_random_state,
    check_positive_int,
    stack_outputs,
    to_numpy,
)

__all__ = ["relative_strength", "similarity_matrix", "udr", "compute_udr"]


def relative_strength(r: np.ndarray) -> float:
    """½ (mean over columns of max² / sum + mean over rows of max² / sum); 0/0 counts as 0.

    1 for a permutation matrix. Raises if ``r`` is empty (every latent filtered out).
    """
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        raise ValueError("UDR: no informative latent left in one of the models (all filtered)")
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = np.nan_to_num(r.max(axis=0) ** 2 / r.sum(axis=0))
        rows = np.nan_to_num(r.max(axis=1) ** 2 / r.sum(axis=1))
    return float((cols.mean() + rows.mean()) / 2)


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman ρ| of every column of a with every column of b; 0 where a column is constant."""
    ra = rankdata(a, axis=0)
    rb = rankdata(b, axis=0)
    ra, rb = ra - ra.mean(axis=0), rb - rb.mean(axis=0)
    na, nb = np.sqrt((ra * ra).sum(axis=0)), np.sqrt((rb * rb).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (ra.T @ rb) / np.outer(na, nb)
    return np.abs(np.nan_to_num(rho))


def similarity_matrix(
    a: np.ndarray, b: np.ndarray, correlation: str = "lasso", alpha: float = 0.1
) -> np.ndarray:
    """R ``(D_a, D_b)``: entry (p, q) relates latent p of model a to latent q of model b.

    ``"lasso"``: |weight| of a's latent p in a multi-output ``Lasso(alpha)`` predicting b's
    latent q from all of a. ``"spearman"``: |Spearman ρ|.
    """
    if correlation == "lasso":
        return np.abs(Lasso(alpha=alpha).fit(a, b).coef_).T.reshape(a.shape[1], b.shape[1])
    if correlation == "spearman":
        return _spearman(a, b)
    raise ValueError(f"correlation must be 'lasso' or 'spearman', got {correlation!r}")


def udr(
    codes: Sequence[np.ndarray],
    kl: Sequence[np.ndarray],
    correlation_matrix: str = "lasso",
    filter_low_kl: bool = True,
    kl_filter_threshold: float = 0.01,
    include_raw_correlations: bool = True,
    alpha: float = 0.1,
) -> dict:
    """UDR of M ≥ 2 models' codes ``(N, D_m)`` on the same observations, with per-latent KL.

    Steps (as the reference): z-score each model's codes (ddof 0; constant codes become 0),
    zero latents with KL ≤ 0.01 (hard-coded in the reference, independent of the threshold),
    build R for every ordered pair (i, j), keep latents with KL > ``kl_filter_threshold`` when
    ``filter_low_kl``, score R with :func:`relative_strength`; ``model_scores[m]`` is the median
    over i ≠ m of score(i, m) (model m as the regression *target*).

    Quirks: with Lasso (α = 0.1 on standardised codes) identical or permuted models score
    ≈0.9, not 1 (the penalty shrinks every weight by about α, and the shrunk weights of the
    other latents are not exactly zero); unrelated models score exactly 0. Spearman collects
    the sampling-noise |ρ| of unrelated latents, so it depends on N and D. Treatment: a
    Spearman ρ of a constant latent is 0 (the reference gives NaN there).
    """
    if len(codes) < 2 or len(codes) != len(kl):
        raise ValueError(f"UDR needs >= 2 models with one KL vector each, got {len(codes)} "
                         f"code sets and {len(kl)} KL vectors")
    zs, masks, n = [], [], None
    for m, (c, k) in enumerate(zip(codes, kl, strict=True)):
        c = as_codes(c, f"codes[{m}]").astype(np.float64)
        k = np.asarray(to_numpy(k), dtype=np.float64).reshape(-1)
        if k.shape[0] != c.shape[1]:
            raise ValueError(f"kl[{m}] has {k.shape[0]} entries for {c.shape[1]} latents")
        if n is not None and c.shape[0] != n:
            raise ValueError("every model must be evaluated on the same N observations")
        n = c.shape[0]
        std = c.std(axis=0)
        z = (c - c.mean(axis=0)) / np.where(std > 0, std, 1.0)
        zs.append(z * (k > 0.01))
        masks.append(k > kl_filter_threshold)
    num = len(zs)
    pair = np.zeros((num, num, 1))
    raw = np.zeros((num, num, zs[0].shape[1], zs[0].shape[1])) if include_raw_correlations else None
    for i in range(num):
        for j in range(num):
            if i == j:
                continue
            r = similarity_matrix(zs[i], zs[j], correlation_matrix, alpha)
            if raw is not None and r.shape == raw.shape[2:]:
                raw[i, j] = r
            if filter_low_kl:
                r = r[masks[i]][:, masks[j]]
            pair[i, j, 0] = relative_strength(r)
    out: dict = {}
    if raw is not None:
        out["raw_correlations"] = raw
    out["pairwise_disentanglement_scores"] = pair
    out["model_scores"] = [float(np.median(np.delete(pair[:, m, 0], m))) for m in range(num)]
    return out


def compute_udr(
    data,
    represent: Sequence[Callable],
    random_state: np.random.RandomState | int,
    batch_size: int = 10,
    num_data_points: int = 1000,
    correlation_matrix: str = "lasso",
    filter_low_kl: bool = True,
    include_raw_correlations: bool = True,
    kl_filter_threshold: float = 0.01,
) -> dict:
    """UDR of several models on the same observations (``config/tests/methods/udr`` settings).

    ``represent`` is a *list* of functions, each returning ``(codes (B, D), kl (D,))`` for a
    batch of observations (the per-latent KL averaged over the batch). Stream: one
    ``data.sample_observations(batch_size, rs)`` per batch, shared by every model.
    """
    rs = as_random_state(random_state)
    batch_size = check_positive_int(batch_size, "batch_size")
    check_positive_int(num_data_points, "num_data_points")
    if num_data_points % batch_size:
        raise ValueError("num_data_points must be a multiple of batch_size")
    fns = list(represent)
    outs = [[] for _ in fns]
    kls = [[] for _ in fns]
    for _ in range(num_data_points // batch_size):
        x = data.sample_observations(batch_size, rs)
        for m, fn in enumerate(fns):
            c, k = fn(x)
            outs[m].append(c)
            kls[m].append(np.asarray(to_numpy(k), dtype=np.float64).reshape(-1))
    codes = [stack_outputs(o, f"representation {m}") for m, o in enumerate(outs)]
    kl = [np.mean(k, axis=0) for k in kls]
    return udr(codes, kl, correlation_matrix, filter_low_kl, kl_filter_threshold,
               include_raw_correlations)
