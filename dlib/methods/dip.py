"""DIP-VAE-I and DIP-VAE-II (Kumar et al. 2018): match moments of the aggregate posterior.

Both add to the VAE's loss a penalty that pushes a covariance matrix towards the identity,

    λ_od Σ_{i≠j} Cov_ij² + λ_d Σ_i (Cov_ii − 1)²,

with, over the batch,

* DIP-VAE-I:  Cov = Cov[μ(x)] (the covariance of the encoder means);
* DIP-VAE-II: Cov = Cov[μ(x)] + diag(E[σ²(x)]), the covariance of the aggregate posterior
  q(z) = E_x q(z | x) (law of total covariance).

The study sets λ_d = 10·λ_od for type I and λ_d = λ_od for type II, with λ_od ∈ {1, 2, 5, 10,
20, 50}. Covariances are population covariances (divided by the batch size), as in
disentanglement_lib. A widely used PyTorch library adds the *scalar* mean of the variances to
every entry instead of diag(E[σ²]); :func:`dip_covariance` is tested against that mistake.

Holds :class:`DIPVAEConfig`, :class:`DIPVAE` and the pure functions :func:`dip_covariance`,
:func:`dip_penalty` and :func:`dip_regularizer` (called by the method and the batched engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from dlib.methods.vae import VAE, VAEConfig


@dataclass
class DIPVAEConfig(VAEConfig):
    """DIP-VAE; ``lambda_d=None`` means the study's rule (10·λ_od for type I, λ_od for II)."""

    dip_type: Literal["i", "ii"] = "i"
    lambda_od: float = 10.0
    lambda_d: float | None = None


def dip_covariance(mean: Tensor, logvar: Tensor, dip_type: str) -> Tensor:
    """The matrix DIP-VAE regularises: Cov[μ] (type "i") or Cov[μ] + diag(E[σ²]) (type "ii")."""
    if dip_type not in ("i", "ii"):
        raise ValueError(f"dip_type must be 'i' or 'ii', got {dip_type!r}")
    centred = mean - mean.mean(0, keepdim=True)
    cov = centred.T @ centred / mean.shape[0]
    if dip_type == "ii":
        cov = cov + logvar.exp().mean(0).diag()
    return cov


def dip_penalty(cov: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """λ_od · Σ off-diagonal² + λ_d · Σ (diagonal − 1)²."""
    diag = cov.diagonal()
    off = cov - diag.diag()
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1).pow(2).sum()


def dip_regularizer(mean: Tensor, logvar: Tensor, kl_dims: Tensor, dip_type: str,
                    beta: float | Tensor, lambda_od: float | Tensor, lambda_d: float | Tensor
                    ) -> tuple[Tensor, dict[str, Tensor]]:
    """β · KL + the DIP penalty on the batch's covariance, and the penalty (to log)."""
    penalty = dip_penalty(dip_covariance(mean, logvar, dip_type), lambda_od, lambda_d)
    return beta * kl_dims.sum() + penalty, {"dip_penalty": penalty}


class DIPVAE(VAE):
    """VAE + the DIP penalty on the (aggregate-posterior) covariance."""

    config: DIPVAEConfig
    config_class = DIPVAEConfig

    @property
    def lambda_d(self) -> float:
        cfg = self.config
        if cfg.lambda_d is not None:
            return cfg.lambda_d
        return 10.0 * cfg.lambda_od if cfg.dip_type == "i" else cfg.lambda_od

    def regularizer(
        self, mean: Tensor, logvar: Tensor, z: Tensor, kl_dims: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.config
        return dip_regularizer(mean, logvar, kl_dims, cfg.dip_type, cfg.beta, cfg.lambda_od,
                               self.lambda_d)
