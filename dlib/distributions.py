"""The elementary distributions of the VAE family: the closed-form Gaussian KL, the Bernoulli
likelihood on logits, and the reparameterised Gaussian sample.

They live below both :mod:`dlib.methods` and :mod:`dlib.theory`, which use them.

Holds :func:`gaussian_kl`, :func:`bernoulli_nll` and :func:`reparameterise`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_kl", "bernoulli_nll", "reparameterise"]


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, 1)) per dimension, elementwise:
    ½ (mean² + exp(logvar) − logvar − 1)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x | logits) summed over all pixels and channels, one value per sample (B,).

    ``x`` may be soft (in [0, 1]) as for the coloured variants; then this is the cross-entropy,
    as in disentanglement_lib.
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(x.shape)} differ")
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def reparameterise(
    mean: Tensor, logvar: Tensor, generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """z = mean + exp(½ logvar) · ε with ε ~ N(0, I) from ``generator``, or ε = ``noise`` when
    given (the batched engine draws the noise of every model beforehand)."""
    eps = noise if noise is not None else torch.randn(
        mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
    return mean + torch.exp(0.5 * logvar) * eps
