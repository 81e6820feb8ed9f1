"""InfoGAN experiments: several seeds of a variant, code traversals, sample diversity.

* :func:`fit_seeds` trains one InfoGAN per seed with :func:`dlib.train.fit` and keeps the run
  going when a seed diverges (a GAN's loss can become NaN; that is a result, not a crash).
* :func:`traversal_latents` / :func:`code_traversals` vary one code of a fixed latent at a time
  (each continuous code over [−limit, limit], then every category of the categorical code).
* :func:`pairwise_diversity` is the mean absolute pixel difference between pairs of images; the
  ratio of generated to real diversity falls far below 1 when the generator collapses onto a
  few modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SeedRun", "fit_seeds", "traversal_latents", "code_traversals",
           "pairwise_diversity"]


@dataclass
class SeedRun:
    """One trained seed: the model, its history, and the divergence message if it diverged."""

    seed: int
    model: Any
    history: Any
    diverged: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fit_seeds(
    variant: str,
    data: Any,
    steps: int,
    seeds: list[int] | tuple[int, ...],
    *,
    batch_size: int = 64,
    log_every: int | None = None,
    show_progress: bool = False,
    **options: Any,
) -> dict[int, SeedRun]:
    """Train an :class:`~dlib.methods.InfoGAN` of ``variant`` ("gan" or "wgan-gp") per seed.

    The seed sets both the initialisation and the batch/latent stream. ``options`` go to the
    method (``info_weight``, ``num_noise``, ...). A seed whose loss becomes NaN is kept with
    ``diverged`` set to the engine's message and the history of its last completed stretch
    (``None`` when it diverged before the first logging point).
    """
    from dlib.methods import InfoGAN
    from dlib.train import TrainingDiverged, fit

    if not seeds:
        raise ValueError("give at least one seed")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    image_shape = tuple(data.data.image_shape) if hasattr(data, "data") else tuple(
        data.image_shape)
    every = log_every or max(1, steps // 50)
    runs: dict[int, SeedRun] = {}
    for seed in seeds:
        model = InfoGAN(image_shape, variant=variant, seed=int(seed), **options)
        try:
            history = fit(model, data, steps, batch_size=batch_size, seed=int(seed),
                          log_every=every, show_progress=show_progress)
            runs[int(seed)] = SeedRun(int(seed), model, history)
        except TrainingDiverged as err:
            model.eval()
            runs[int(seed)] = SeedRun(int(seed), model, None, diverged=str(err))
    return runs


@torch.no_grad()
def traversal_latents(
    model: Any, n_values: int = 7, limit: float = 1.0, seed: int = 0
) -> tuple[Tensor, Tensor | None]:
    """Latents for code traversals around one base latent drawn with ``seed``.

    Returns ``(continuous, categorical)``: ``continuous[k, i]`` is the base latent with
    continuous code ``k`` set to the ``i``-th of ``n_values`` values in [−limit, limit]
    (shape (K, n_values, latent)); ``categorical[j]`` is the base latent with category ``j``
    (shape (J, latent)), or ``None`` without a categorical code.
    """
    if n_values < 2 or limit <= 0:
        raise ValueError("need n_values >= 2 and a positive limit")
    cfg = model.config
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    _, _, base = model.sample_latents(1, gen)
    k = cfg.num_continuous
    values = torch.linspace(-limit, limit, n_values, device=dev)
    continuous = base.repeat(k * n_values, 1).view(k, n_values, -1)
    for d in range(k):
        continuous[d, :, d] = values
    categorical = None
    if cfg.num_categories:
        j = cfg.num_categories
        categorical = base.repeat(j, 1)
        categorical[:, k : k + j] = F.one_hot(torch.arange(j, device=dev), j).float()
    return continuous, categorical


@torch.no_grad()
def code_traversals(
    model: Any, n_values: int = 7, limit: float = 1.0, seed: int = 0
) -> tuple[Tensor, Tensor | None]:
    """Generated images for :func:`traversal_latents` (generator in evaluation mode):
    ``(K, n_values, C, H, W)`` and ``(J, C, H, W)`` (or ``None``)."""
    continuous, categorical = traversal_latents(model, n_values, limit, seed)
    was_training = model.training
    model.eval()
    k, n, latent = continuous.shape
    cont_images = model.generator(continuous.reshape(k * n, latent))
    cont_images = cont_images.view(k, n, *cont_images.shape[1:])
    cat_images = model.generator(categorical) if categorical is not None else None
    model.train(was_training)
    return cont_images, cat_images


def pairwise_diversity(images: Any, num_pairs: int | None = None, seed: int = 0) -> float:
    """Mean absolute pixel difference between two different images of the set.

    With ``num_pairs=None`` the mean runs over all unordered pairs (exact); otherwise over
    ``num_pairs`` pairs ``(i, j), i ≠ j`` drawn uniformly with ``RandomState(seed)``. Images are
    (N, ...) arrays or tensors with values in [0, 1].
    """
    x = images.detach().float().cpu().numpy() if isinstance(images, Tensor) else np.asarray(
        images, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("need at least two images")
    if not np.all(np.isfinite(x)):
        raise ValueError("images must be finite")
    flat = x.reshape(len(x), -1).astype(np.float64)
    if num_pairs is None:
        total, count = 0.0, 0
        for i in range(len(flat) - 1):  # one row against all later rows at a time
            total += float(np.abs(flat[i + 1 :] - flat[i]).mean(1).sum())
            count += len(flat) - 1 - i
        return total / count
    if num_pairs < 1:
        raise ValueError("num_pairs must be positive")
    rs = np.random.RandomState(seed)
    i = rs.randint(len(flat), size=num_pairs)
    j = (i + 1 + rs.randint(len(flat) - 1, size=num_pairs)) % len(flat)  # j ≠ i, uniform
    return float(np.abs(flat[i] - flat[j]).mean(1).mean())
