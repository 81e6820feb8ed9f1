"""β-TCVAE (Chen et al. 2018): weigh the total-correlation part of the KL by β.

The average KL splits into index-code mutual information, total correlation and dimension-wise
KL (chapter on KL decompositions). β-TCVAE minimises

    E[−log p(x | z)] + α·MI + β·TC + γ·dim-KL,   α = γ = 1,

with the three terms estimated on the batch by :func:`dlib.theory.kl.batch_kl_decomposition`:
minibatch-stratified sampling (``"mss"``, with the importance weights on each row's own index)
or minibatch-weighted sampling (``"mws"``, with its log(N·M) constant). Both need N, the size of
the data set the batches are drawn from. Their sum is a one-sample estimate of the KL; the
closed-form KL is logged beside it. The study's grid is β ∈ {1, 2, 4, 6, 8, 10}.

Holds :class:`BetaTCVAEConfig`, :class:`BetaTCVAE` and the pure loss function
:func:`tcvae_terms` (called by the method and by the batched engine).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dlib.distributions import bernoulli_nll, gaussian_kl, reparameterise
from dlib.methods.vae import VAE, VAEConfig
from dlib.theory.kl import batch_log_weights, kl_terms

ESTIMATORS = ("mss", "mws")


def tcvae_terms(x: Tensor, logits: Tensor, mean: Tensor, logvar: Tensor, z: Tensor,
                log_w: Tensor | float, alpha: float | Tensor, beta: float | Tensor,
                gamma: float | Tensor) -> dict[str, Tensor]:
    """β-TCVAE's loss terms on one batch: recon + α·MI + β·TC + γ·dim-KL.

    The three terms are estimated on the batch with the log weights ``log_w`` of
    :func:`dlib.theory.kl.batch_log_weights` (built once per batch size). Pure tensor code (the
    engine runs it under :func:`torch.func.vmap`).
    """
    recon = bernoulli_nll(logits, x).mean()
    parts = kl_terms(z, mean, logvar, log_w)
    kl_dims = gaussian_kl(mean, logvar).mean(0)
    kl = kl_dims.sum()
    reg = alpha * parts["mi"] + beta * parts["tc"] + gamma * parts["dim_kl"]
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


def tcvae_log_weights(config: BetaTCVAEConfig, batch_size: int,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> Tensor | float:
    """The estimator's log weights for batches of ``batch_size`` (checks the configuration)."""
    if config.estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be 'mss' or 'mws', got {config.estimator!r}")
    if config.dataset_size < batch_size:
        raise ValueError(f"{config.estimator} needs dataset_size ≥ the batch ({batch_size})")
    return batch_log_weights(batch_size, config.dataset_size, config.estimator, device, dtype)


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
        """The loss terms of batch ``x`` (:func:`tcvae_terms`)."""
        cfg = self.config
        mean, logvar = self.encode(x)
        log_w = tcvae_log_weights(cfg, mean.shape[0], mean.device, mean.dtype)
        z = reparameterise(mean, logvar, generator)
        return tcvae_terms(x, self.decode(z), mean, logvar, z, log_w, cfg.alpha, cfg.beta,
                           cfg.gamma)
