"""Does FactorVAE's discriminator know the total correlation? Its estimate against the truth.

FactorVAE (Kim & Mnih 2018) never computes the total correlation (TC) of its aggregate
posterior q(z); it trains a discriminator D to tell codes z ~ q(z) from codes whose dimensions
were permuted across a batch, and reads TC off D's logits (the density-ratio trick). Kim & Mnih's
Figure 7 compares that estimate, over training, with the true TC, and finds that the
discriminator consistently *underestimates* it while the true TC still falls. This module makes
the same measurement on any :class:`dlib.methods.FactorVAE`:

* :func:`encode_posteriors` — the Gaussian posteriors (mean, log-variance) of a fixed set of
  images;
* :func:`aggregate_tc` — the TC of the aggregate posterior of those N images, computed exactly up
  to Monte-Carlo error with :func:`dlib.theory.kl.kl_decomposition` (log q(z) and every
  log q(z_d) by a logsumexp over all N components). It is the TC of an N-point mixture: it
  approaches the TC of the whole data set's q(z) as N grows, and for sharp posteriors a small N
  overstates it (a few sharp points look more dependent than the continuum they sample), which is
  why :func:`track_tc` also reports it on half the points;
* :func:`discriminator_tc` — the discriminator's estimate, the batch mean of
  logit_real − logit_perm on codes drawn from q(z), and its accuracy on real versus permuted
  codes;
* :func:`track_tc` — trains a method with :func:`dlib.train.fit` and makes both measurements at
  chosen steps. The stages are one continuous run (a checkpoint carries the batch generator from
  one stage to the next), so the final weights equal those of an uninterrupted ``fit``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlib.theory.kl import kl_decomposition, permute_dims, sample_aggregate

__all__ = ["TCTrace", "encode_posteriors", "aggregate_tc", "discriminator_tc", "track_tc"]


@torch.no_grad()
def encode_posteriors(
    method: Any, data: Any, batch_size: int = 500, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Posterior means and log-variances ``(N, D)`` (float64) of every image of ``data``.

    ``data`` is a :class:`dlib.data.DeviceData`; each image is observed once (nuisance, if the
    dataset has any, drawn with ``generator``). The method is put in eval mode and left so.
    """
    if not hasattr(method, "encode"):
        raise TypeError(f"{type(method).__name__} has no encoder (encode)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if len(data) < 2:
        raise ValueError(f"need at least two images, got {len(data)}")
    method.eval()
    dev = next(method.parameters()).device
    means, logvars = [], []
    for start in range(0, len(data), batch_size):
        x = data.data.observe(data.images[start:start + batch_size], generator).to(dev)
        mean, logvar = method.encode(x)
        means.append(mean.double())
        logvars.append(logvar.double())
    mean, logvar = torch.cat(means), torch.cat(logvars)
    if not (torch.isfinite(mean).all() and torch.isfinite(logvar).all()):
        raise FloatingPointError("the encoder returned non-finite posteriors")
    return mean, logvar


def aggregate_tc(
    mean: Tensor,
    logvar: Tensor,
    samples_per_point: int = 20,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """``(tc, se)``: the total correlation (nats) of q(z) = (1/N) Σ_n N(mean_n, exp(logvar_n)).

    log q(z) and each log q(z_d) are exact logsumexps over the N components; only the outer
    expectation is Monte Carlo (``samples_per_point`` draws from every component), so ``se`` is
    the only error — of the N-point mixture's TC, not of the data set's.
    """
    dec = kl_decomposition(mean, logvar, samples_per_point, generator)
    return dec.tc.value, dec.tc.se


@torch.no_grad()
def discriminator_tc(
    method: Any,
    mean: Tensor,
    logvar: Tensor,
    num: int = 1024,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
) -> tuple[float, float, float]:
    """``(tc, se, accuracy)`` of a FactorVAE's discriminator on codes of the given posteriors.

    ``num`` codes are drawn from the aggregate posterior (an image index uniformly, then
    z ~ q(z | x)); the estimate is the mean of logit_real − logit_perm over them (FactorVAE's
    eq. 3) with its standard error. ``accuracy`` is the discriminator's accuracy on those codes
    (as real) and on permuted copies, each batch of ``batch_size`` permuted by
    :func:`dlib.theory.kl.permute_dims` as in training (0.5 is chance).
    """
    disc = getattr(method, "discriminator", None)
    if disc is None:
        raise TypeError(f"{type(method).__name__} has no discriminator")
    if num < 2 or batch_size < 2:
        raise ValueError("num and batch_size must both be at least 2")
    num = (num // batch_size) * batch_size or batch_size
    dev = next(disc.parameters()).device
    was_training = disc.training
    disc.eval()
    z = sample_aggregate(mean, logvar, num, generator)[0].to(dev, torch.float32)
    logits = disc(z)
    ratio = (logits[:, 0] - logits[:, 1]).double()
    perm = torch.cat([permute_dims(b, generator) for b in z.split(batch_size)])
    correct = (logits.argmax(1) == 0).double().mean() + (disc(perm).argmax(1) == 1).double().mean()
    disc.train(was_training)
    return float(ratio.mean()), float(ratio.std() / math.sqrt(num)), float(correct / 2)


@dataclass
class TCTrace:
    """What :func:`track_tc` measured at each of K evaluation steps (nats)."""

    steps: np.ndarray  # (K,) training steps at which the model was evaluated
    true_tc: np.ndarray  # (K,) TC of the aggregate posterior of the N evaluation images
    true_tc_se: np.ndarray  # (K,) its Monte-Carlo standard error
    true_tc_half: np.ndarray  # (K,) the same on the first N/2 images (how much N matters)
    discriminator_tc: np.ndarray  # (K,) the discriminator's estimate on codes of those images
    discriminator_tc_se: np.ndarray  # (K,)
    d_accuracy: np.ndarray  # (K,) the discriminator's accuracy, real versus permuted codes
    mi: np.ndarray  # (K,) index-code mutual information of the same mixture
    dim_kl: np.ndarray  # (K,) its dimension-wise KL
    kl: np.ndarray  # (K,) closed-form average KL(q(z|x) ‖ p(z)) of the evaluation images
    num_points: int
    history: Any  # the dlib.train.History of the whole run

    def table(self) -> str:
        """One line per evaluation step."""
        head = (f"{'step':>7} {'true TC':>14} {'(N/2)':>7} {'D estimate':>14} {'D acc':>6} "
                f"{'MI':>6} {'dim-KL':>7} {'KL':>6}")
        lines = [head]
        for k, step in enumerate(self.steps):
            lines.append(
                f"{int(step):>7} {self.true_tc[k]:>7.3f} ± {self.true_tc_se[k]:<4.3f} "
                f"{self.true_tc_half[k]:>7.3f} {self.discriminator_tc[k]:>7.3f} ± "
                f"{self.discriminator_tc_se[k]:<4.3f} {self.d_accuracy[k]:>6.3f} "
                f"{self.mi[k]:>6.2f} {self.dim_kl[k]:>7.2f} {self.kl[k]:>6.2f}")
        return "\n".join(lines)


def track_tc(
    method: Any,
    train_data: Any,
    eval_data: Any,
    eval_steps: Sequence[int],
    *,
    batch_size: int = 64,
    seed: int = 0,
    log_every: int = 100,
    samples_per_point: int = 20,
    num_codes: int = 1024,
    show_progress: bool = True,
    workdir: str | Path | None = None,
) -> TCTrace:
    """Train a FactorVAE ``method`` up to ``max(eval_steps)``; compare TC estimates at each step.

    At every step of ``eval_steps`` (strictly increasing, non-negative; include 0 for the
    untrained model) the posteriors of all N images of ``eval_data`` are encoded; the exact TC of
    their aggregate posterior (:func:`aggregate_tc`, also on the first N/2 images) is set beside
    the discriminator's estimate on ``num_codes`` codes drawn from it (:func:`discriminator_tc`).
    Measurements use their own generator (seeded from ``seed``), so they do not change the
    training run, whose stages resume from a checkpoint in ``workdir`` (a temporary folder by
    default): the weights are those of one uninterrupted ``fit(method, train_data,
    max(eval_steps), ...)``.
    """
    from dlib.train import fit_in_stages

    if not hasattr(method, "discriminator"):
        raise TypeError(f"{type(method).__name__} has no discriminator; track_tc needs a "
                        "FactorVAE")
    if len(eval_data) < 4:
        raise ValueError(f"eval_data needs at least 4 images, got {len(eval_data)}")
    steps = [int(s) for s in eval_steps]
    rows: list[tuple[float, ...]] = []
    half = len(eval_data) // 2

    def measure(step: int) -> None:
        dev = next(method.parameters()).device
        gen = torch.Generator(device=dev).manual_seed(int(seed) + 7919 * (step + 1))
        mean, logvar = encode_posteriors(method, eval_data)
        dec = kl_decomposition(mean, logvar, samples_per_point, gen)
        tc_half, _ = aggregate_tc(mean[:half], logvar[:half], samples_per_point, gen)
        d_tc, d_se, d_acc = discriminator_tc(method, mean, logvar, num_codes, batch_size, gen)
        rows.append((dec.tc.value, dec.tc.se, tc_half, d_tc, d_se, d_acc, dec.mi.value,
                     dec.dim_kl.value, dec.kl))

    history = fit_in_stages(method, train_data, steps, measure, workdir=workdir,
                            checkpoint_name="track_tc.pt", batch_size=batch_size, seed=seed,
                            log_every=log_every, show_progress=show_progress)
    cols = np.asarray(rows, dtype=float).T
    return TCTrace(
        steps=np.asarray(steps), true_tc=cols[0], true_tc_se=cols[1], true_tc_half=cols[2],
        discriminator_tc=cols[3], discriminator_tc_se=cols[4], d_accuracy=cols[5], mi=cols[6],
        dim_kl=cols[7], kl=cols[8], num_points=len(eval_data), history=history,
    )
