"""What DIP-VAE regularises, measured on a fixed set of images while a model trains.

DIP-VAE (:mod:`dlib.methods.dip`) penalises a *batch* estimate of a covariance matrix. To see
what the penalty does to the model as a whole, we measure the same matrices on a fixed, larger
probe set of images at regular steps of training:

* ``Cov[μ(x)]``, the covariance of the encoder means (what DIP-VAE-I drives to the identity);
* ``E[σ²(x)]``, the mean encoder variance per dimension;
* their sum ``Cov[μ] + diag E[σ²]``, the covariance of the aggregate posterior
  ``q(z) = E_x q(z | x)`` by the law of total covariance (what DIP-VAE-II drives to the
  identity).

Covariances are population covariances (divided by the number of images), as in the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CovarianceTrace",
    "encoder_moments",
    "moment_covariances",
    "off_diagonal_mass",
    "diagonal_error",
    "fit_tracking_covariances",
]


@torch.no_grad()
def encoder_moments(method: Any, images: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Encoder means and log-variances ``(N, D)`` of ``images`` ``(N, C, H, W)``, in batches.

    The method is put in evaluation mode for the pass and restored afterwards.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if len(images) == 0 or batch_size < 1:
        raise ValueError("need at least one image and a positive batch_size")
    was_training = method.training
    method.eval()
    dev = next(method.parameters()).device
    means, logvars = [], []
    for i in range(0, len(images), batch_size):
        mean, logvar = method.encode(images[i : i + batch_size].to(dev))
        means.append(mean)
        logvars.append(logvar)
    method.train(was_training)
    return torch.cat(means), torch.cat(logvars)


def moment_covariances(mean: Any, logvar: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(Cov[μ] (D, D), E[σ²] (D,))`` over the rows of ``mean`` and ``logvar``, in float64.

    ``Cov[μ] + np.diag(E[σ²])`` is the covariance of the aggregate posterior.
    """
    mu = np.asarray(mean.detach().cpu() if isinstance(mean, Tensor) else mean, dtype=np.float64)
    lv = np.asarray(logvar.detach().cpu() if isinstance(logvar, Tensor) else logvar,
                    dtype=np.float64)
    if mu.ndim != 2 or mu.shape != lv.shape:
        raise ValueError(f"mean and logvar must both be (N, D), got {mu.shape} and {lv.shape}")
    if len(mu) < 2:
        raise ValueError("a covariance needs at least two rows")
    if not (np.isfinite(mu).all() and np.isfinite(lv).all()):
        raise ValueError("mean and logvar must be finite")
    centred = mu - mu.mean(0)
    return centred.T @ centred / len(mu), np.exp(lv).mean(0)


def off_diagonal_mass(cov: Any) -> float:
    """Σ_{i≠j} C_ij²: what λ_od multiplies (zero exactly for a diagonal matrix)."""
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {c.shape}")
    return float((c**2).sum() - (np.diag(c) ** 2).sum())


def diagonal_error(cov: Any) -> float:
    """Σ_i (C_ii − 1)²: what λ_d multiplies (zero exactly for unit variances)."""
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {c.shape}")
    return float(((np.diag(c) - 1.0) ** 2).sum())


@dataclass
class CovarianceTrace:
    """The covariances of a model's code on a probe set at several training steps.

    ``cov_mean[t]`` is Cov[μ] and ``expected_var[t]`` is E[σ²] after ``steps[t]`` steps;
    ``history`` holds the loss terms of the whole run (a :class:`dlib.train.History`).
    """

    steps: list[int]
    cov_mean: np.ndarray  # (T, D, D)
    expected_var: np.ndarray  # (T, D)
    history: Any

    @property
    def cov_aggregate(self) -> np.ndarray:
        """Cov of the aggregate posterior, Cov[μ] + diag E[σ²], at every snapshot (T, D, D)."""
        return self.cov_mean + np.stack([np.diag(v) for v in self.expected_var])

    def curve(self, which: str = "mean", measure: str = "off_diagonal") -> np.ndarray:
        """``off_diagonal`` mass or ``diagonal`` error of Cov[μ] (``"mean"``) or of the
        aggregate posterior's covariance (``"aggregate"``) at every snapshot (T,)."""
        covs = {"mean": self.cov_mean, "aggregate": self.cov_aggregate}
        funcs = {"off_diagonal": off_diagonal_mass, "diagonal": diagonal_error}
        if which not in covs or measure not in funcs:
            raise ValueError(f"which in {sorted(covs)}, measure in {sorted(funcs)}")
        return np.array([funcs[measure](c) for c in covs[which]])


def fit_tracking_covariances(
    method: Any,
    data: Any,
    steps: int,
    probe: Tensor,
    *,
    snapshots: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    log_every: int | None = None,
    show_progress: bool = False,
) -> CovarianceTrace:
    """Train ``method`` to ``steps``, measuring the covariances of its code on ``probe`` images
    before training and at ``snapshots`` evenly spaced steps.

    The stages are :func:`dlib.train.fit_in_stages`' (each resumes from a checkpoint), so the
    weights are those of one uninterrupted ``fit(method, data, steps, seed=seed, ...)``.
    """
    from dlib.train import fit_in_stages

    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not 1 <= snapshots <= steps:
        raise ValueError(f"snapshots must be between 1 and steps ({steps}), got {snapshots}")
    if probe.dim() != 4 or len(probe) < 2:
        raise ValueError(f"probe must hold at least two images (N, C, H, W), got "
                         f"{tuple(probe.shape)}")
    if int(method.step) > 0:
        raise ValueError("fit_tracking_covariances starts from an untrained method (step 0)")
    stops = [0, *np.unique(np.linspace(0, steps, snapshots + 1).round().astype(int))[1:]]
    covs, variances = [], []

    def measure(step: int) -> None:
        c, v = moment_covariances(*encoder_moments(method, probe))
        covs.append(c)
        variances.append(v)

    every = log_every or max(1, int(steps) // (5 * snapshots))
    history = fit_in_stages(method, data, stops, measure, checkpoint_name="covariances.pt",
                            batch_size=batch_size, seed=seed, log_every=every,
                            show_progress=show_progress)
    return CovarianceTrace([int(s) for s in stops], np.stack(covs), np.stack(variances),
                           history)
