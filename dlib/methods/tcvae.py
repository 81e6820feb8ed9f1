"""β-TCVAE (Chen et al. 2018): weigh the total-correlation part of the KL by β.

The average KL splits into index-code mutual information, total correlation and dimension-wise
KL (chapter on KL decompositions). β-TCVAE minimises

    E[−log p(x | z)] + α·MI + β·TC + γ·dim-KL,   α = γ = 1,

with the three terms estimated on the batch by :func:`dlib.theory.kl.batch_kl_decomposition`:
minibatch-stratified sampling (``"mss"``, with the importance weights on each row's own index)
or minibatch-weighted sampling (``"mws"``, with its log(N·M) constant). Both need N, the size of
the data set the batches are drawn from. Their sum is a one-sample estimate of the KL; the
closed-form KL is logged beside it. The study's grid is β ∈ {1, 2, 4, 6, 8, 10}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dlib.methods.vae import VAE, VAEConfig, bernoulli_nll, gaussian_kl, reparameterise
from dlib.theory.kl import batch_kl_decomposition


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """β-TCVAE; ``dataset_size`` is N, the number of training images (dSprites: 737,280)."""

    beta: float = 6.0
    alpha: float = 1.0
    gamma: float = 1.0
    estimator: str = "mss"
    dataset_size: int = 737_280


class BetaTCVAE(VAE):
    """VAE whose KL is replaced by α·MI + β·TC + γ·dim-KL, estimated on the batch."""

    config: BetaTCVAEConfig
    config_class = BetaTCVAEConfig

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        cfg = self.config
        if cfg.estimator not in ("mss", "mws"):
            raise ValueError(f"estimator must be 'mss' or 'mws', got {cfg.estimator!r}")
        mean, logvar = self.encode(x)
        z = reparameterise(mean, logvar, generator)
        recon = bernoulli_nll(self.decode(z), x).mean()
        parts = batch_kl_decomposition(z, mean, logvar, cfg.dataset_size, cfg.estimator)
        kl_dims = gaussian_kl(mean, logvar).mean(0)
        kl = kl_dims.sum()
        reg = cfg.alpha * parts["mi"] + cfg.beta * parts["tc"] + cfg.gamma * parts["dim_kl"]
        return {
            "loss": recon + reg,
            "recon": recon,
            "kl": kl,
            "elbo": -(recon + kl),
            "mi": parts["mi"],
            "tc": parts["tc"],
            "dim_kl": parts["dim_kl"],
            "kl_dims": kl_dims.detach(),
        }
