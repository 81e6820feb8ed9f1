"""FactorVAE (Kim & Mnih 2018): penalise the total correlation of q(z) with a discriminator.

    loss_VAE = E[−log p(x | z)] + KL(q(z | x) ‖ p(z)) + γ · TC(z),
    TC(z) ≈ E_q(z)[ log D_real(z) − log D_perm(z) ]  (density-ratio trick),

where D tells codes z ~ q(z) from codes whose dimensions were permuted independently across a
batch — samples of ∏_j q(z_j). One iteration:

1. encode the batch (and, by default, a second independent batch whose codes are permuted, as in
   the paper; ``permute="same"`` shuffles the same batch, as disentanglement_lib does);
2. update D on *detached* codes: −½[log D_real(z) + log D_perm(z̃)];
3. update the VAE with the TC estimate of the *updated* D (gradients reach the encoder, not D).

Updating D on detached codes before the VAE step avoids two bugs of popular PyTorch ports: the
in-place error on PyTorch ≥ 1.5 and the leak of D's loss gradient into the encoder. One
iteration is one VAE update (disentanglement_lib counts two).

Holds :class:`FactorVAEConfig`, :class:`FactorVAE` and the pure loss functions
:func:`discriminator_loss`, :func:`density_ratio_estimate` and :func:`factor_vae_terms` (called
by the method and by the batched engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dlib.distributions import bernoulli_nll, gaussian_kl, reparameterise
from dlib.methods.base import seeded
from dlib.methods.vae import VAE, VAEConfig
from dlib.nets import Discriminator
from dlib.theory.kl import permute_dims


def discriminator_loss(real: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """−½[mean log D_real(z) + mean log D_ref(z̃)] from D's two logits (B, 2) on the codes and on
    the reference samples, and D's accuracy on both batches. Pure tensor code."""
    zeros = torch.zeros(real.shape[0], dtype=torch.long, device=real.device)
    loss = 0.5 * (F.cross_entropy(real, zeros) + F.cross_entropy(reference, zeros + 1))
    acc = 0.5 * ((real.argmax(1) == 0).float().mean() + (reference.argmax(1) == 1).float().mean())
    return loss, acc


def density_ratio_estimate(d_logits: Tensor) -> Tensor:
    """Batch mean of log D_real(z) − log D_ref(z) = logit_real − logit_ref, from D's two logits
    (B, 2) on codes z ~ q(z): the density-ratio estimate of KL(q(z) ‖ reference)."""
    return (d_logits[:, 0] - d_logits[:, 1]).mean()


def factor_vae_terms(x: Tensor, logits: Tensor, mean: Tensor, logvar: Tensor, tc: Tensor,
                     beta: float | Tensor, gamma: float | Tensor,
                     penalty_name: str = "tc") -> dict[str, Tensor]:
    """The VAE's loss terms plus γ · ``tc``, the density-ratio estimate on the same codes
    (:func:`density_ratio_estimate`), logged under ``penalty_name``.

    ``logits`` are the decoder's. Pure tensor code (the engine runs it under
    :func:`torch.func.vmap`).
    """
    recon = bernoulli_nll(logits, x).mean()
    kl_dims = gaussian_kl(mean, logvar).mean(0)
    kl = kl_dims.sum()
    return {
        "loss": recon + beta * kl + gamma * tc,
        "recon": recon,
        "kl": kl,
        "elbo": -(recon + kl),
        penalty_name: tc,
        "kl_dims": kl_dims.detach(),
    }


@dataclass
class FactorVAEConfig(VAEConfig):
    """FactorVAE; defaults follow the paper and the study (D: Adam 1e-4, betas 0.5/0.9)."""

    gamma: float = 40.0
    permute: Literal["second", "same"] = "second"
    d_lr: float = 1e-4
    d_adam_betas: tuple[float, float] = field(default=(0.5, 0.9))
    d_hidden: int = 1000
    d_depth: int = 6


class FactorVAE(VAE):
    """VAE + γ·TC, the total correlation estimated by a discriminator on permuted codes."""

    config: FactorVAEConfig
    config_class = FactorVAEConfig
    #: the name under which the density-ratio estimate is logged
    penalty_name = "tc"

    def __init__(
        self, image_shape: tuple[int, int, int], config: Any | None = None, **overrides: Any
    ) -> None:
        super().__init__(image_shape, config, **overrides)
        cfg = self.config
        if cfg.permute not in ("second", "same"):
            raise ValueError(f"permute must be 'second' or 'same', got {cfg.permute!r}")
        self.batch_multiplier = 2 if cfg.permute == "second" else 1
        with seeded(cfg.seed + 1):
            self.discriminator = Discriminator(cfg.num_latents, cfg.d_hidden, cfg.d_depth)

    def vae_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        return {
            "main": torch.optim.Adam(
                self.vae_parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps
            ),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=cfg.d_lr, betas=tuple(cfg.d_adam_betas)
            ),
        }

    @torch.no_grad()
    def reference_codes(self, x_ref: Tensor, z: Tensor,
                        generator: torch.Generator | None = None) -> Tensor:
        """The samples D learns to tell codes z ~ q(z) from: here samples of ∏_j q(z_j), the
        codes of ``x_ref`` (a second batch, or the same one) with every column permuted."""
        if self.batch_multiplier == 2:
            mean2, logvar2 = self.encode(x_ref)
            z = reparameterise(mean2, logvar2, generator)
        return permute_dims(z, generator)

    def tc_estimate(self, z: Tensor) -> Tensor:
        """Batch mean of log D_real(z) − log D_perm(z) = logit_real − logit_perm
        (:func:`density_ratio_estimate` on D's logits)."""
        return density_ratio_estimate(self.discriminator(z))

    def discriminator_loss(self, z: Tensor, z_perm: Tensor) -> tuple[Tensor, Tensor]:
        """−½[mean log D_real(z) + mean log D_perm(z̃)] and D's accuracy on both batches
        (:func:`discriminator_loss` on D's logits)."""
        return discriminator_loss(self.discriminator(z), self.discriminator(z_perm))

    def _objective(self, x: Tensor, mean: Tensor, logvar: Tensor, z: Tensor) -> dict[str, Tensor]:
        return factor_vae_terms(x, self.decode(z), mean, logvar, self.tc_estimate(z),
                                self.config.beta, self.config.gamma, self.penalty_name)

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The VAE's terms with the current discriminator (no discriminator update)."""
        mean, logvar = self.encode(x)
        return self._objective(x, mean, logvar, reparameterise(mean, logvar, generator))

    def train_step(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        if not self.optimizers:
            self.setup_optimizers()
        x_vae, x_ref = x.chunk(2) if self.batch_multiplier == 2 else (x, x)
        mean, logvar = self.encode(x_vae)
        z = reparameterise(mean, logvar, generator)
        # 1) discriminator step on detached codes (the graph of z does not involve D)
        z_ref = self.reference_codes(x_ref, z, generator)
        d_opt = self.optimizers["discriminator"]
        d_opt.zero_grad(set_to_none=True)
        d_loss, d_acc = self.discriminator_loss(z.detach(), z_ref)
        d_loss.backward()
        d_opt.step()
        # 2) VAE step with the updated discriminator; only the VAE optimiser steps
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        out = self._objective(x_vae, mean, logvar, z)
        out["loss"].backward()
        opt.step()
        self.step += 1
        out = {k: v.detach() for k, v in out.items()}
        out.update(d_loss=d_loss.detach(), d_accuracy=d_acc.detach())
        return out
