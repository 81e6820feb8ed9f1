"""The KL term of the VAE, taken apart: ELBO surgery, Chen et al.'s three terms, their estimators.

Notation (the book's): a data set of N points x_n with Gaussian posteriors
q(z | x_n) = N(mean_n, diag exp(logvar_n)) in D dimensions, the aggregate posterior
q(z) = (1/N) Σ_n q(z | x_n), its marginals q(z_d), and the prior p(z) = N(0, I). All quantities
are per sample, summed over latents and averaged over the data — the study's convention:

    E_n KL(q(z|x_n) ‖ p(z)) = I_q(n; z) + KL(q(z) ‖ p(z))                       (ELBO surgery)
                            = I_q(n; z) + TC(q(z)) + Σ_d KL(q(z_d) ‖ p(z_d))    (Chen et al.)

Two families of functions:

* :func:`kl_decomposition` computes every term on a *finite* data set, where q(z) is an explicit
  mixture of N Gaussians: log q(z) by an exact logsumexp over all N components, expectations by
  Monte Carlo with many samples, each term returned with its standard error. This is the
  reference the batch estimators are measured against.
* the batch estimators work on one minibatch, as a training objective must: functions of
  ``(z, mean, logvar, dataset_size)`` on torch tensors, differentiable, on any device. Each
  estimates log q(z_i) as a weighted logsumexp over the batch's posteriors; they differ only in
  the weights (:func:`batch_log_qz`). :func:`batch_kl_decomposition` turns them into the three
  terms (the β-TCVAE objective reuses it), :func:`plain_batch_tc` is FactorVAE's Appendix D
  estimate, and :func:`fit_tc_discriminator` / :func:`density_ratio_tc` are FactorVAE's
  density-ratio estimate of TC with :func:`permute_dims`.

Holds :func:`gaussian_log_density`, :func:`log_density_matrix`, :class:`Estimate`,
:class:`KLDecomposition`, :func:`kl_decomposition`, :func:`mss_log_weights`,
:func:`batch_log_weights`, :func:`weighted_log_qz`, :func:`batch_log_qz`, :func:`kl_terms`,
:func:`batch_kl_decomposition`, :func:`plain_batch_tc`, :func:`sample_aggregate`,
:func:`batch_estimates`, :func:`permute_dims`, :func:`fit_tc_discriminator` and
:func:`density_ratio_tc`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlib.config import seeded
from dlib.distributions import gaussian_kl, reparameterise
from dlib.nets import Discriminator

LOG_2PI = math.log(2.0 * math.pi)
#: the batch estimators of log q(z); see :func:`batch_log_qz`
ESTIMATORS: tuple[str, ...] = ("mws", "mss", "mss-column0", "plain")


def gaussian_log_density(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mean, exp(logvar)), elementwise with broadcasting (no sum over dimensions)."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


def log_density_matrix(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """(B, M, D): entry [i, j, d] is log q(z_{i,d} | x_j), for samples ``z`` (B, D) under the
    posteriors ``mean``, ``logvar`` (M, D)."""
    return gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])


def _check_posteriors(mean: Tensor, logvar: Tensor) -> tuple[int, int]:
    if mean.ndim != 2 or mean.shape != logvar.shape:
        shapes = f"{tuple(mean.shape)} and {tuple(logvar.shape)}"
        raise ValueError(f"mean and logvar must both be (N, D), got {shapes}")
    return int(mean.shape[0]), int(mean.shape[1])


# ------------------------------------------------------------------------------------------------
# The exact terms on a finite data set
# ------------------------------------------------------------------------------------------------


class Estimate(NamedTuple):
    """A Monte-Carlo estimate and its standard error."""

    value: float
    se: float

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.se:.4f}"


@dataclass(frozen=True)
class KLDecomposition:
    """Every term of the decomposition on a finite data set (nats per sample).

    ``kl`` is the closed-form average KL, exact; the others are Monte-Carlo estimates on the same
    samples. Per sample the three terms add up to log q(z|x_n) − log p(z), so
    ``mi + tc + dim_kl`` equals ``kl_mc`` to rounding, and ``kl_mc`` estimates ``kl``.
    """

    kl: float  # E_n KL(q(z|x_n) ‖ p(z)), closed form
    kl_mc: Estimate  # the same expectation, by Monte Carlo
    mi: Estimate  # I_q(n; z), index-code mutual information
    marginal_kl: Estimate  # KL(q(z) ‖ p(z))
    tc: Estimate  # KL(q(z) ‖ Π_d q(z_d)), total correlation
    dim_kl: Estimate  # Σ_d KL(q(z_d) ‖ p(z_d)), dimension-wise KL
    dim_kl_per_dim: np.ndarray  # (D,) the terms of that sum
    num_points: int
    num_samples: int

    def table(self) -> str:
        """The terms as aligned text, one per line."""
        rows = [
            ("E_x KL(q(z|x) ‖ p(z))   closed form", f"{self.kl:.4f}"),
            ("E_x KL(q(z|x) ‖ p(z))   Monte Carlo", str(self.kl_mc)),
            ("I_q(x; z)               mutual information", str(self.mi)),
            ("KL(q(z) ‖ p(z))         marginal KL", str(self.marginal_kl)),
            ("TC = KL(q(z) ‖ Π q(z_d)) total correlation", str(self.tc)),
            ("Σ_d KL(q(z_d) ‖ p(z_d))  dimension-wise KL", str(self.dim_kl)),
        ]
        return "\n".join(f"{name:<44s} {value}" for name, value in rows)


@torch.no_grad()
def kl_decomposition(
    mean: Tensor,
    logvar: Tensor,
    samples_per_point: int = 100,
    generator: torch.Generator | None = None,
    max_elements: int = 4_000_000,
) -> KLDecomposition:
    """Every term of the KL decomposition for the mixture q(z) = (1/N) Σ_n N(mean_n, exp(logvar_n)).

    Samples are stratified over the data: ``samples_per_point`` draws from each q(z|x_n), which
    is a sample of q(n, z) = q(z|x_n)/N with no variance from choosing n. For each draw, log q(z)
    and every log q(z_d) are computed *exactly*, by logsumexp over all N components, so the only
    error is Monte Carlo's. Standard errors are the sample standard deviation over √(draws) —
    conservative under stratification. Work is done in float64, in chunks of at most
    ``max_elements`` entries of the (chunk × N × D) log-density matrix.
    """
    n, d = _check_posteriors(mean, logvar)
    if samples_per_point < 2:
        raise ValueError("samples_per_point must be at least 2 (standard errors need two)")
    mean, logvar = mean.detach().double(), logvar.detach().double()
    log_n = math.log(n)
    index = torch.arange(n, device=mean.device).repeat_interleave(samples_per_point)
    chunk = max(1, max_elements // (n * d))
    # per draw: log q(z|x), log q(z), log p(z) and the D values log q(z_d) − log p(z_d)
    parts: dict[str, list[Tensor]] = {"cond": [], "joint": [], "prior": [], "dims": []}
    for idx in index.split(chunk):
        z = reparameterise(mean[idx], logvar[idx], generator)
        mat = log_density_matrix(z, mean, logvar)  # (C, N, D)
        log_prior_d = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
        parts["cond"].append(gaussian_log_density(z, mean[idx], logvar[idx]).sum(1))
        parts["joint"].append(torch.logsumexp(mat.sum(2), dim=1) - log_n)
        parts["dims"].append(torch.logsumexp(mat, dim=1) - log_n - log_prior_d)
        parts["prior"].append(log_prior_d.sum(1))
    cond, joint, prior, dims = (torch.cat(parts[k]) for k in ("cond", "joint", "prior", "dims"))
    log_prod_marginals = dims.sum(1) + prior  # Σ_d log q(z_d)

    def estimate(values: Tensor) -> Estimate:
        return Estimate(float(values.mean()), float(values.std() / math.sqrt(values.numel())))

    return KLDecomposition(
        kl=float(gaussian_kl(mean, logvar).sum(1).mean()),
        kl_mc=estimate(cond - prior),
        mi=estimate(cond - joint),
        marginal_kl=estimate(joint - prior),
        tc=estimate(joint - log_prod_marginals),
        dim_kl=estimate(dims.sum(1)),
        dim_kl_per_dim=dims.mean(0).cpu().numpy(),
        num_points=n,
        num_samples=int(index.numel()),
    )


# ------------------------------------------------------------------------------------------------
# Batch estimators of log q(z)
# ------------------------------------------------------------------------------------------------


def mss_log_weights(
    batch_size: int,
    dataset_size: int,
    placement: str = "diagonal",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """log of the (B, B) importance weights of minibatch-stratified sampling (Chen et al. 2018).

    Row i weighs the B posteriors of the batch when estimating q(z_i), z_i ~ q(z|x_i). With
    M = B − 1 other samples and N = ``dataset_size``: the sample's *own* posterior gets 1/N,
    one other posterior (the next one, cyclically) the stratum weight (N − M)/(N M), and the
    remaining M − 1 get 1/M each. Every row sums to one, and for a batch drawn uniformly without
    replacement the weighted sum is an unbiased estimate of q(z_i).

    ``placement="column0"`` reproduces the public reference code (rtqichen/beta-tcvae, copied by
    YannDubs/disentangling-vae), which writes the 1/N and stratum weights at a stride of B in the
    flattened matrix — into columns 0 and 1 of *every* row instead of each row's own index — and
    then overwrites entry (M − 1, 0). Only for showing the difference; never train with it.
    """
    b, n = int(batch_size), int(dataset_size)
    if b < 2:
        raise ValueError(f"MSS needs a batch of at least 2, got {b}")
    if n < b:
        raise ValueError(f"the batch ({b}) cannot be larger than the data set ({n})")
    m = b - 1
    strat = (n - m) / (n * m)
    w = torch.full((b, b), 1.0 / m, dtype=torch.float64)
    if placement == "diagonal":
        rows = torch.arange(b)
        w[rows, rows] = 1.0 / n
        w[rows, (rows + 1) % b] = strat
    elif placement == "column0":
        flat = w.view(-1)
        flat[::b] = 1.0 / n  # stride M + 1 = B: column 0 of every row (the bug)
        flat[1::b] = strat  # column 1 of every row
        w[m - 1, 0] = strat
    else:
        raise ValueError(f"placement must be 'diagonal' or 'column0', got {placement!r}")
    return w.log().to(device=device, dtype=dtype)


def batch_log_weights(
    batch_size: int,
    dataset_size: int | None,
    estimator: str = "mss",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor | float:
    """The log weights w_ij of a batch estimator of log q(z) (see :func:`batch_log_qz`) for a
    batch of M = ``batch_size`` posteriors: the (M, M) matrix of ``"mss"`` / ``"mss-column0"``
    (:func:`mss_log_weights`), or the constant of ``"mws"`` (−log(N·M)) and ``"plain"`` (−log M)
    as a float. Built once, it can be passed to :func:`weighted_log_qz` on every step."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
    m = int(batch_size)
    if estimator == "plain":
        return -math.log(m)
    if dataset_size is None or dataset_size < m:
        raise ValueError(f"{estimator} needs dataset_size ≥ the batch ({m}), got {dataset_size}")
    if estimator == "mws":
        return -math.log(dataset_size * m)
    placement = "diagonal" if estimator == "mss" else "column0"
    return mss_log_weights(m, dataset_size, placement, device, dtype)


def weighted_log_qz(mat: Tensor, log_w: Tensor | float) -> tuple[Tensor, Tensor]:
    """log q(z_i) (B,) and log q(z_{i,d}) (B, D) as weighted logsumexps of the log-density matrix
    ``mat`` (B, M, D) of :func:`log_density_matrix`, with the log weights ``log_w`` of
    :func:`batch_log_weights` (a (B, M) matrix or a constant). Pure tensor code."""
    if isinstance(log_w, Tensor):
        return torch.logsumexp(mat.sum(2) + log_w, 1), torch.logsumexp(mat + log_w[:, :, None], 1)
    return torch.logsumexp(mat.sum(2), 1) + log_w, torch.logsumexp(mat, 1) + log_w


def batch_log_qz(
    z: Tensor,
    mean: Tensor,
    logvar: Tensor,
    dataset_size: int | None = None,
    estimator: str = "mss",
) -> tuple[Tensor, Tensor]:
    """Batch estimates of log q(z_i) (B,) and of every log q(z_{i,d}) (B, D).

    Each is a weighted logsumexp over the batch's posteriors ``mean``, ``logvar`` (M, D):
    log q(z_i) ≈ log Σ_j w_ij q(z_i | x_j), and the same per dimension. The estimators differ in
    the weights (:func:`batch_log_weights`):

    ``"mws"``  minibatch-weighted sampling (Chen et al., eq. 3): w_ij = 1/(N M) for every j,
               i.e. logsumexp − log(N·M) *with* the constant. disentanglement_lib drops it; its
               TC is this one minus (D − 1)·log(N·M).
    ``"mss"``  minibatch-stratified sampling: :func:`mss_log_weights` with 1/N on each row's own
               index. Needs z_i ~ q(z | x_i) (M = B).
    ``"mss-column0"``  the same weights placed as the public reference code places them (a bug).
    ``"plain"``  w_ij = 1/M, the "batch estimate of q(z)" of FactorVAE's Appendix D, meant for
               ``z`` drawn from q(z) independently of the batch (B may differ from M).

    ``dataset_size`` is N (required except for ``"plain"``). Differentiable; any device.
    """
    _check_batch(z, mean, logvar, dataset_size, estimator)
    mat = log_density_matrix(z, mean, logvar)  # (B, M, D)
    return weighted_log_qz(mat, batch_log_weights(mean.shape[0], dataset_size, estimator,
                                                  z.device, mat.dtype))


def _check_batch(z: Tensor, mean: Tensor, logvar: Tensor, dataset_size: int | None,
                 estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
    _check_posteriors(mean, logvar)
    if z.ndim != 2 or z.shape[1] != mean.shape[1]:
        raise ValueError(f"z must be (B, {mean.shape[1]}), got {tuple(z.shape)}")
    b, m = z.shape[0], mean.shape[0]
    if estimator == "plain":
        return
    if dataset_size is None or dataset_size < m:
        raise ValueError(f"{estimator} needs dataset_size ≥ the batch ({m}), got {dataset_size}")
    if estimator != "mws" and b != m:
        raise ValueError(f"{estimator} needs z_i ~ q(z | x_i): {b} samples for {m} posteriors")


def kl_terms(z: Tensor, mean: Tensor, logvar: Tensor, log_w: Tensor | float) -> dict[str, Tensor]:
    """Chen et al.'s three terms, batch means, with the log weights ``log_w`` of
    :func:`batch_log_weights`: ``mi`` = log q(z|x) − log q(z), ``tc`` = log q(z) − Σ_d log q(z_d),
    ``dim_kl`` = Σ_d log q(z_d) − log p(z). Pure tensor code, no checks (the β-TCVAE objective
    calls it under vmap with weights built once; :func:`batch_kl_decomposition` checks first)."""
    log_q_zx = gaussian_log_density(z, mean, logvar).sum(1)
    log_qz, log_qz_dims = weighted_log_qz(log_density_matrix(z, mean, logvar), log_w)
    log_prod = log_qz_dims.sum(1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return {
        "mi": (log_q_zx - log_qz).mean(),
        "tc": (log_qz - log_prod).mean(),
        "dim_kl": (log_prod - log_pz).mean(),
    }


def batch_kl_decomposition(
    z: Tensor, mean: Tensor, logvar: Tensor, dataset_size: int, estimator: str = "mss"
) -> dict[str, Tensor]:
    """Chen et al.'s three terms estimated on one batch, each averaged over the batch (scalars).

    ``z[i]`` must be a sample of the batch's own posterior q(z | x_i) (the reparameterised sample
    of the training step), ``estimator`` one of ``"mws"``, ``"mss"``, ``"mss-column0"``. Returns
    ``mi`` (log q(z|x) − log q(z)), ``tc`` (log q(z) − Σ_d log q(z_d)) and ``dim_kl``
    (Σ_d log q(z_d) − log p(z)); per sample they add up to log q(z|x) − log p(z), a one-sample
    estimate of the KL, whatever the estimator. Differentiable (the β-TCVAE objective builds its
    weights once and calls :func:`kl_terms` directly).
    """
    if estimator == "plain":
        raise ValueError("'plain' assumes z independent of the batch; use plain_batch_tc")
    _check_batch(z, mean, logvar, dataset_size, estimator)
    log_w = batch_log_weights(mean.shape[0], dataset_size, estimator, z.device, z.dtype)
    return kl_terms(z, mean, logvar, log_w)


def plain_batch_tc(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """FactorVAE's Appendix D estimate of TC, per sample (H,): log q̂(z_h) − Σ_d log q̂(z_{h,d})
    with q̂ the plain average of the batch's M posteriors and ``z`` (H, D) drawn from q(z)
    *independently* of the batch. Average it for the estimate; it breaks down (goes negative)
    as posteriors sharpen."""
    log_qz, log_qz_dims = batch_log_qz(z, mean, logvar, estimator="plain")
    return log_qz - log_qz_dims.sum(1)


def sample_aggregate(
    mean: Tensor,
    logvar: Tensor,
    num: int,
    generator: torch.Generator | None = None,
    replace: bool = True,
) -> tuple[Tensor, Tensor]:
    """``num`` draws from the mixture q(z): data indices uniformly (without replacement if
    ``replace=False``, as MSS assumes), then z ~ q(z | x_index). Returns (z, index)."""
    n, _ = _check_posteriors(mean, logvar)
    if replace:
        index = torch.randint(n, (num,), device=mean.device, generator=generator)
    else:
        if num > n:
            raise ValueError(f"cannot draw {num} of {n} points without replacement")
        index = torch.randperm(n, device=mean.device, generator=generator)[:num]
    return reparameterise(mean[index], logvar[index], generator), index


@torch.no_grad()
def batch_estimates(
    mean: Tensor,
    logvar: Tensor,
    batch_size: int,
    repeats: int,
    estimator: str,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(repeats, 3): (mi, tc, dim_kl) of :func:`batch_kl_decomposition` on ``repeats`` batches
    drawn from the finite data set (indices without replacement, z from their own posteriors).
    Their mean minus the exact term is the estimator's bias, their spread its noise."""
    n, _ = _check_posteriors(mean, logvar)
    out = []
    for _ in range(repeats):
        z, idx = sample_aggregate(mean, logvar, batch_size, generator, replace=False)
        terms = batch_kl_decomposition(z, mean[idx], logvar[idx], n, estimator)
        out.append(torch.stack([terms["mi"], terms["tc"], terms["dim_kl"]]))
    return torch.stack(out)


# ------------------------------------------------------------------------------------------------
# The density-ratio (discriminator) estimate of TC, FactorVAE
# ------------------------------------------------------------------------------------------------


def permute_dims(z: Tensor, generator: torch.Generator | None = None,
                 keys: Tensor | None = None) -> Tensor:
    """FactorVAE's Algorithm 1, vectorised: every column of ``z`` (B, D) permuted across the batch
    by its own random permutation (argsort of a uniform matrix gives D independent ones), so the
    rows are samples of Π_d q(z_d) when those of ``z`` are samples of q(z).

    ``keys`` (the shape of ``z``) are the uniform numbers to argsort, drawn from ``generator``
    when not given. Leading batch axes are allowed: ``z`` (N, B, D) permutes each of N batches
    (the batched engine passes the keys it drew for each model)."""
    if z.ndim < 2:
        raise ValueError(f"z must be (B, D) (or (..., B, D)), got {tuple(z.shape)}")
    if keys is None:
        keys = torch.rand(z.shape, device=z.device, generator=generator)
    elif keys.shape != z.shape:
        raise ValueError(f"keys {tuple(keys.shape)} must have the shape of z {tuple(z.shape)}")
    return z.gather(-2, keys.argsort(dim=-2))


def fit_tc_discriminator(
    sampler: Callable[[int, torch.Generator], Tensor],
    num_latents: int,
    steps: int = 1000,
    batch_size: int = 64,
    hidden: int = 256,
    layers: int = 3,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Discriminator:
    """Train a one-logit :class:`dlib.nets.Discriminator` (``layers`` hidden layers of
    ``hidden`` units, PyTorch's initialisation) to tell samples of q(z) from samples of
    Π_d q(z_d); its logit is read as log D(z)/(1 − D(z)) ≈ log q(z)/Π_d q(z_d).

    ``sampler(n, generator)`` returns n codes (n, D) from q(z). Each step draws one batch for the
    "real" class and a second batch whose dimensions are permuted (:func:`permute_dims`) for the
    "factorised" class, as in FactorVAE's Algorithm 2, and takes an Adam step on the logistic
    loss. The batch size is also the size of the permuted batch, so it sets how well the
    permutation approximates Π_d q(z_d).
    """
    gen = torch.Generator(device=device or "cpu").manual_seed(int(seed))
    with seeded(seed):
        disc = Discriminator(num_latents, hidden, layers, init="torch", logits=1)
        disc = disc.to(device or "cpu")
    opt = torch.optim.Adam(disc.parameters(), lr=lr)
    ones = torch.ones(batch_size, 1, device=device or "cpu")
    for _ in range(steps):
        real = sampler(batch_size, gen).detach()
        fake = permute_dims(sampler(batch_size, gen).detach(), gen)
        loss = F.binary_cross_entropy_with_logits(
            disc(real), ones
        ) + F.binary_cross_entropy_with_logits(disc(fake), 0 * ones)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return disc.eval()


@torch.no_grad()
def density_ratio_tc(discriminator: nn.Module, z: Tensor) -> Tensor:
    """Per-sample density-ratio estimates log D(z)/(1 − D(z)) (B,) for ``z`` ~ q(z): their mean is
    FactorVAE's estimate of TC = E_q[log q(z)/Π_d q(z_d)] (eq. 3)."""
    return discriminator(z).squeeze(1)
