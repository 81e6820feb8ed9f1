"""Matching q(z) to the prior with a discriminator: FactorVAE's prior variant and the AAE.

Kim & Mnih (2018, Appendix F) compare FactorVAE with two objectives that use the same
density-ratio trick against a different target. Their discriminator tells codes z ~ q(z) from
samples of the prior p(z) = N(0, I) instead of from permuted codes (samples of ∏_j q(z_j)):

* the **prior variant** of FactorVAE (their Eq. 12) keeps the VAE's per-image KL and replaces
  the total correlation by KL(q(z) ‖ p(z)):

      loss = E[−log p(x | z)] + β · KL(q(z | x) ‖ p(z)) + γ · KL(q(z) ‖ p(z)),

* the **adversarial autoencoder** (Makhzani et al. 2015; their Eq. 7, with the γ they add and
  tune) drops the per-image KL altogether (β = 0), so it is not a bound on log p(x).

With a factorised prior, KL(q(z) ‖ p(z)) = TC(z) + Σ_j KL(q(z_j) ‖ p(z_j)): the prior variant
penalises the total correlation *and* every marginal's distance from N(0, 1), which FactorVAE
leaves alone. Kim & Mnih find both variants disentangle somewhat less than FactorVAE.

The training step is FactorVAE's (D first, on detached codes; then the VAE with the updated D);
only :meth:`reference_codes` differs, so the engine batches these methods too.

Holds :class:`FactorVAEPriorConfig`, :class:`AAEConfig`, :class:`FactorVAEPrior` and :class:`AAE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dlib.methods.factor import FactorVAE, FactorVAEConfig

__all__ = ["AAE", "AAEConfig", "FactorVAEPrior", "FactorVAEPriorConfig"]


@dataclass
class FactorVAEPriorConfig(FactorVAEConfig):
    """FactorVAE's settings; ``permute`` has no meaning here (D never sees permuted codes)."""


@dataclass
class AAEConfig(FactorVAEPriorConfig):
    """The adversarial autoencoder: no per-image KL (β = 0) and γ · KL(q(z) ‖ p(z))."""

    beta: float = 0.0
    gamma: float = 1.0


class FactorVAEPrior(FactorVAE):
    """VAE + γ · KL(q(z) ‖ p(z)), the KL estimated by a discriminator against prior samples."""

    config: FactorVAEPriorConfig
    config_class = FactorVAEPriorConfig
    penalty_name = "kl_qz_pz"

    def __init__(
        self, image_shape: tuple[int, int, int], config: Any | None = None, **overrides: Any
    ) -> None:
        super().__init__(image_shape, config, **overrides)
        if self.config.permute != "second":
            raise ValueError(f"{type(self).__name__} draws prior samples, it permutes nothing: "
                             f"leave permute at its default (got {self.config.permute!r})")
        self.batch_multiplier = 1  # no second batch: the reference samples come from p(z)

    @torch.no_grad()
    def reference_codes(self, x_ref: Tensor, z: Tensor,
                        generator: torch.Generator | None = None) -> Tensor:
        """Samples of the prior N(0, I), as many as there are codes (``x_ref`` is unused)."""
        return torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)

    def kl_estimate(self, z: Tensor) -> Tensor:
        """Density-ratio estimate of KL(q(z) ‖ p(z)): batch mean of logit_q(z) − logit_p(z)."""
        return self.tc_estimate(z)


class AAE(FactorVAEPrior):
    """The adversarial autoencoder with a Gaussian encoder: recon + γ · KL(q(z) ‖ p(z))."""

    config: AAEConfig
    config_class = AAEConfig
