"""The VAE and the β-VAE (Kingma & Welling 2014; Higgins et al. 2017).

Objective per batch (the study's convention: sums over pixels and latents, mean over the batch):

    loss = E_batch[ −log p(x | z) ] + β · E_batch[ KL(q(z | x) ‖ N(0, I)) ],

with a Bernoulli likelihood on logits and the Gaussian KL in closed form. β = 1 is the VAE's
negative ELBO. Later methods subclass :class:`VAE` and override :meth:`VAE.regularizer`.

Holds :class:`VAEConfig` / :class:`VAE`, :class:`BetaVAEConfig` / :class:`BetaVAE` and the pure
loss function :func:`vae_terms` (with the regulariser :func:`beta_kl`), which both the eager
method and the batched engine (:mod:`dlib.engine.kernels`) call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from dlib.distributions import bernoulli_nll, gaussian_kl, reparameterise
from dlib.methods.base import Method, make_config, seeded
from dlib.nets import Decoder, Encoder

#: ``regularizer(mean, logvar, z, kl_dims) -> (term added to recon, extra terms to log)``
Regularizer = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, dict[str, Tensor]]]


def vae_terms(x: Tensor, logits: Tensor, mean: Tensor, logvar: Tensor, z: Tensor,
              regularizer: Regularizer) -> dict[str, Tensor]:
    """The loss terms of the VAE family on one batch, from the networks' outputs.

    ``x`` (B, C, H, W), the decoder's ``logits`` of ``z``, the posterior ``mean``/``logvar`` and
    the reparameterised ``z`` (B, D). The loss is recon + ``regularizer(...)``; ``kl_dims`` (D,)
    is the closed-form KL per dimension averaged over the batch. Pure tensor code (the engine
    runs it under :func:`torch.func.vmap`).
    """
    recon = bernoulli_nll(logits, x).mean()
    kl_dims = gaussian_kl(mean, logvar).mean(0)  # (D,), averaged over the batch
    kl = kl_dims.sum()
    reg, extra = regularizer(mean, logvar, z, kl_dims)
    return {
        "loss": recon + reg,
        "recon": recon,
        "kl": kl,
        "elbo": -(recon + kl),
        "kl_dims": kl_dims.detach(),
        **extra,
    }


def beta_kl(kl_dims: Tensor, beta: float | Tensor) -> Tensor:
    """The β-VAE's regulariser β · KL, from the per-dimension KL (D,)."""
    return beta * kl_dims.sum()


@dataclass
class VAEConfig:
    """Hyperparameters of the VAE family; defaults are the Locatello et al. study's."""

    num_latents: int = 10
    beta: float = 1.0
    arch: str = "conv"  # "conv" (study, 2×2 kernels), "conv4" (4×4 kernels), "fc"
    width: float = 1.0  # channel/unit multiplier of the conv networks (1 = the study's)
    lr: float = 1e-4
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999))
    adam_eps: float = 1e-8
    seed: int = 0  # seeds the network initialisation


class VAE(Method):
    """Gaussian encoder, Bernoulli decoder, standard-normal prior; ``beta`` weighs the KL."""

    config: VAEConfig
    config_class: type = VAEConfig

    def __init__(
        self, image_shape: tuple[int, int, int], config: Any | None = None, **overrides: Any
    ) -> None:
        cfg = make_config(self.config_class, config, overrides)
        super().__init__(cfg)
        self.image_shape = tuple(int(s) for s in image_shape)
        with seeded(cfg.seed):
            self.encoder = Encoder(self.image_shape, cfg.num_latents, cfg.arch, width=cfg.width)
            self.decoder = Decoder(self.image_shape, cfg.num_latents, cfg.arch, width=cfg.width)

    # -- the model ----------------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior parameters (mean, logvar), each (B, D)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits (B, C, H, W)."""
        return self.decoder(z)

    @torch.no_grad()
    def represent(self, x: Tensor) -> Tensor:
        """The representation used for evaluation: the posterior mean (B, D)."""
        return self.encode(x)[0]

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Pixel probabilities decoded from the posterior mean."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Pixel probabilities of ``n`` samples from the prior."""
        dev = next(self.parameters()).device
        z = torch.randn(n, self.config.num_latents, device=dev, generator=generator)
        return torch.sigmoid(self.decode(z))

    # -- the objective --------------------------------------------------------------------------
    def regularizer(
        self, mean: Tensor, logvar: Tensor, z: Tensor, kl_dims: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The term added to the reconstruction loss, plus extra terms to log.

        β-VAE: β · KL. Other methods of the VAE family override only this hook.
        """
        return beta_kl(kl_dims, self.config.beta), {}

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The loss terms of batch ``x`` (:func:`vae_terms` with this method's regulariser)."""
        mean, logvar = self.encode(x)
        z = reparameterise(mean, logvar, generator)
        return vae_terms(x, self.decode(z), mean, logvar, z, self.regularizer)


@dataclass
class BetaVAEConfig(VAEConfig):
    """β-VAE; β = 4 is Higgins et al.'s dSprites setting; the study's grid is {1, 2, 4, 6, 8, 16}.
    """

    beta: float = 4.0


class BetaVAE(VAE):
    """The β-VAE of Higgins et al. (2017): the VAE with the KL weighted by β > 1."""

    config_class = BetaVAEConfig
