"""AnnealedVAE (Burgess et al. 2018): a KL *target* that grows during training.

    loss = E[−log p(x | z)] + γ · | KL(q(z | x) ‖ p(z)) − C(t) |,
    C(t) = min(C_max, C_max · t / T),

so the encoder may carry C(t) nats; as the capacity grows, factors enter the code in the order in
which they reduce the reconstruction error most (position first on dSprites). The study uses
γ = 1000, T = 100,000 steps and C_max ∈ {5, 10, 25, 50, 75, 100}.

Holds :class:`AnnealedVAEConfig`, :class:`AnnealedVAE` and the pure functions :func:`capacity`
and :func:`annealed_regularizer` (called by the method and by the batched engine).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dlib.methods.vae import VAE, VAEConfig


@dataclass
class AnnealedVAEConfig(VAEConfig):
    """AnnealedVAE; defaults are the study's (γ = 1000, capacity ramp over 100,000 steps)."""

    c_max: float = 25.0
    gamma: float = 1000.0
    iteration_threshold: int = 100_000


def capacity(step: Tensor | int, c_max: float | Tensor,
             iteration_threshold: int | Tensor) -> Tensor:
    """C(t) = min(C_max, C_max · t / T): the linear capacity ramp (a tensor, no host sync).

    ``c_max`` and ``iteration_threshold`` may be tensors (one value per model in the engine).
    """
    t = step.to(torch.float32) if isinstance(step, Tensor) else torch.tensor(float(step))
    return torch.clamp(c_max * t / iteration_threshold, max=c_max)


def annealed_regularizer(kl_dims: Tensor, step: Tensor | int, gamma: float | Tensor,
                         c_max: float | Tensor, iteration_threshold: int | Tensor
                         ) -> tuple[Tensor, dict[str, Tensor]]:
    """γ · |KL − C(t)| and the capacity C(t) (logged as ``"capacity"``)."""
    c = capacity(step, c_max, iteration_threshold).to(kl_dims.device)
    return gamma * (kl_dims.sum() - c).abs(), {"capacity": c}


class AnnealedVAE(VAE):
    """β-VAE with a controlled capacity: γ·|KL − C(t)| in place of β·KL."""

    config: AnnealedVAEConfig
    config_class = AnnealedVAEConfig

    def regularizer(
        self, mean: Tensor, logvar: Tensor, z: Tensor, kl_dims: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.config
        return annealed_regularizer(kl_dims, self.step, cfg.gamma, cfg.c_max,
                                    cfg.iteration_threshold)
