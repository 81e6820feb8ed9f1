"""Training methods, one module each; every method is a :class:`Method` the engine can train."""

from dlib.methods.base import Method, seeded
from dlib.methods.vae import (
    VAE,
    BetaVAE,
    BetaVAEConfig,
    VAEConfig,
    bernoulli_nll,
    gaussian_kl,
    reparameterise,
)

__all__ = [
    "Method",
    "seeded",
    "VAE",
    "VAEConfig",
    "BetaVAE",
    "BetaVAEConfig",
    "gaussian_kl",
    "bernoulli_nll",
    "reparameterise",
]
