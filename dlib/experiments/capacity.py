"""Which factor does a code learn first? Per-factor information over training.

Burgess et al. (2018) explain the β-VAE's disentangling as a rate–distortion effect: when the
KL is held to a small budget, the encoder spends it on the factor that reduces the
reconstruction error most per nat (position on dSprites), and admits other factors as the
budget grows. This module measures that ordering on any VAE of :mod:`dlib.methods`:

* :func:`factor_information` — the plug-in mutual information (nats) of every code dimension
  with every factor, the matrix MIG is built on (:func:`dlib.metrics.mutual_info_matrix`), plus
  the factors' entropies;
* :func:`encode_with_factors` — posterior means, factor classes and per-dimension KL of a fixed
  evaluation set that lives on the device (:class:`dlib.data.DeviceData`);
* :func:`track_information` — trains a method with :func:`dlib.train.fit` and evaluates the
  above at chosen steps. The stages are one continuous run (a checkpoint carries the batch
  generator from one stage to the next), so the final model equals an uninterrupted ``fit``.

The summary per factor is the information of its *most informative* dimension divided by the
factor's entropy: the normalised quantity whose top-two gap is MIG. With the study's 20 bins it
cannot reach 1 for factors with more than 20 values (orientation 40, positions 32): the 20-bin
ceiling of the MIG chapter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlib.metrics.mig import mutual_info_matrix
from dlib.metrics.utils import as_factors, check_pair, discrete_entropy

__all__ = ["InformationTrace", "factor_information", "encode_with_factors", "track_information"]


def factor_information(
    codes: np.ndarray, factors: np.ndarray, num_bins: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """``(mi, entropy)``: binned MI (nats) of codes ``(N, D)`` with factor classes ``(N, F)``.

    ``mi`` has shape ``(D, F)`` (every code dimension against every factor, each dimension cut
    into ``num_bins`` equal-width bins of its sample range, as MIG does); ``entropy`` ``(F,)``
    is each factor's plug-in entropy in the sample.
    """
    codes, factors = check_pair(codes, factors)
    return mutual_info_matrix(codes, factors, num_bins), discrete_entropy(factors)


@torch.no_grad()
def encode_with_factors(
    method: Any, data: Any, batch_size: int = 500, generator: torch.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means ``(N, D)``, factor classes ``(N, F)`` and mean KL per dimension ``(D,)``.

    ``data`` is a :class:`dlib.data.DeviceData`; every one of its images is encoded once (its
    nuisance, if any, drawn with ``generator``). The method is put in eval mode and left so.
    """
    from dlib.distributions import gaussian_kl

    if not hasattr(method, "encode"):
        raise TypeError(f"{type(method).__name__} has no encoder (encode) to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    method.eval()
    dev = next(method.parameters()).device
    means, kl_sum = [], None
    for start in range(0, len(data), batch_size):
        x = data.data.observe(data.images[start:start + batch_size], generator).to(dev)
        mean, logvar = method.encode(x)
        means.append(mean.cpu())
        k = gaussian_kl(mean, logvar).sum(0)
        kl_sum = k if kl_sum is None else kl_sum + k
    if kl_sum is None:
        raise ValueError("the evaluation data is empty")
    codes = torch.cat(means).double().numpy()
    if not np.all(np.isfinite(codes)):
        raise FloatingPointError("the encoder returned non-finite means")
    factors = as_factors(data.factors.cpu().numpy(), "factors")
    return codes, factors, (kl_sum / len(data)).double().cpu().numpy()


@dataclass
class InformationTrace:
    """What :func:`track_information` measured at each evaluation step (K steps, D dims, F
    factors)."""

    steps: np.ndarray  # (K,) training steps at which the model was evaluated
    capacity: np.ndarray  # (K,) AnnealedVAE's target C(t) at those steps (nan for other methods)
    kl: np.ndarray  # (K, D) mean KL per dimension on the evaluation set (nats)
    mi: np.ndarray  # (K, D, F) binned MI of each code dimension with each factor (nats)
    entropy: np.ndarray  # (F,) entropy of each factor in the evaluation set (nats)
    factor_names: tuple[str, ...]
    history: Any  # the dlib.train.History of the whole run

    @property
    def total_kl(self) -> np.ndarray:
        """(K,) total KL of the code, summed over dimensions."""
        return self.kl.sum(1)

    @property
    def normalised(self) -> np.ndarray:
        """(K, F): MI of each factor's most informative dimension over the factor's entropy."""
        return self.mi.max(axis=1) / self.entropy

    def best_dims(self) -> np.ndarray:
        """(K, F): the index of each factor's most informative dimension at every step."""
        return self.mi.argmax(axis=1)

    def onset(self, threshold: float = 0.25) -> dict[str, int | None]:
        """First evaluated step at which each factor's normalised information reaches
        ``threshold`` (None if it never does)."""
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        out: dict[str, int | None] = {}
        for j, name in enumerate(self.factor_names):
            hit = np.nonzero(self.normalised[:, j] >= threshold)[0]
            out[name] = int(self.steps[hit[0]]) if len(hit) else None
        return out

    def order(self, threshold: float = 0.25) -> list[str]:
        """Factors sorted by :meth:`onset` (ties by the information at that step, the larger
        first); factors that never reach ``threshold`` are left out."""
        onset = self.onset(threshold)
        last = {name: float(self.normalised[np.searchsorted(self.steps, step), j])
                for j, (name, step) in enumerate(onset.items()) if step is not None}
        return sorted(last, key=lambda n: (onset[n], -last[n]))

    def table(self) -> str:
        """One line per evaluation step: step, C(t), total KL, normalised information."""
        head = f"{'step':>8} {'C(t)':>6} {'KL':>6}  " + " ".join(
            f"{n[:8]:>8}" for n in self.factor_names)
        lines = [head]
        for k, step in enumerate(self.steps):
            cap = "" if math.isnan(self.capacity[k]) else f"{self.capacity[k]:.1f}"
            lines.append(f"{int(step):>8} {cap:>6} {self.total_kl[k]:>6.2f}  " + " ".join(
                f"{v:>8.2f}" for v in self.normalised[k]))
        return "\n".join(lines)


def _capacity_at(method: Any, step: int) -> float:
    cfg = method.config
    if not all(hasattr(cfg, a) for a in ("c_max", "iteration_threshold")):
        return float("nan")
    from dlib.methods.annealed import capacity

    return float(capacity(step, cfg.c_max, cfg.iteration_threshold))


def track_information(
    method: Any,
    train_data: Any,
    eval_data: Any,
    eval_steps: Sequence[int],
    *,
    batch_size: int = 64,
    seed: int = 0,
    log_every: int = 100,
    num_bins: int = 20,
    show_progress: bool = True,
    workdir: str | Path | None = None,
) -> InformationTrace:
    """Train ``method`` on ``train_data`` up to ``max(eval_steps)``; evaluate at each step.

    At every step of ``eval_steps`` (strictly increasing, non-negative; include 0 for the
    untrained model) the posterior means of all images of ``eval_data`` (a DeviceData with
    factor classes) are binned and their MI with each factor computed. Training between
    evaluations resumes from a checkpoint in ``workdir`` (a temporary folder by default), so the
    weights are those of one uninterrupted ``fit(method, train_data, max(eval_steps), ...)``
    (only the history's logging points differ: each stage also logs at its last step).
    """
    from dlib.train import fit_in_stages

    steps = [int(s) for s in eval_steps]
    names = tuple(getattr(eval_data.data, "factor_names",
                          [f"factor {j}" for j in range(eval_data.factors.shape[1])]))
    kls, mis, caps, entropies = [], [], [], []

    def measure(step: int) -> None:
        codes, factors, kl = encode_with_factors(method, eval_data)
        mi, entropy = factor_information(codes, factors, num_bins)
        kls.append(kl)
        mis.append(mi)
        entropies.append(entropy)
        caps.append(_capacity_at(method, step))

    history = fit_in_stages(method, train_data, steps, measure, workdir=workdir,
                            checkpoint_name="track_information.pt", batch_size=batch_size,
                            seed=seed, log_every=log_every, show_progress=show_progress)
    entropy = entropies[-1]
    return InformationTrace(
        steps=np.asarray(steps), capacity=np.asarray(caps), kl=np.stack(kls),
        mi=np.stack(mis), entropy=np.asarray(entropy), factor_names=names, history=history,
    )
