"""Training methods, one module each; every method is a :class:`Method` the engine can train.

:mod:`dlib.methods.registry` names them all (class, fixed options, the study's grid).
"""

from dlib.methods.aae import AAE, AAEConfig, FactorVAEPrior, FactorVAEPriorConfig
from dlib.methods.annealed import AnnealedVAE, AnnealedVAEConfig, capacity
from dlib.methods.base import Method, seeded
from dlib.methods.deft import DEFT, DEFT_PRESETS, DEFTConfig, deft_config
from dlib.methods.dip import DIPVAE, DIPVAEConfig, dip_covariance, dip_penalty
from dlib.methods.factor import FactorVAE, FactorVAEConfig, permute_dims
from dlib.methods.infogan import InfoGAN, InfoGANConfig
from dlib.methods.intervention import Intervention, InterventionConfig
from dlib.methods.oat import OAT, OATConfig
from dlib.methods.registry import STUDY_METHODS, build, study_grid
from dlib.methods.tcvae import BetaTCVAE, BetaTCVAEConfig
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
    "AAE",
    "AAEConfig",
    "FactorVAEPrior",
    "FactorVAEPriorConfig",
    "AnnealedVAE",
    "AnnealedVAEConfig",
    "capacity",
    "DEFT",
    "DEFTConfig",
    "DEFT_PRESETS",
    "deft_config",
    "DIPVAE",
    "DIPVAEConfig",
    "dip_covariance",
    "dip_penalty",
    "FactorVAE",
    "OAT",
    "OATConfig",
    "InfoGAN",
    "BetaTCVAE",
    "BetaTCVAEConfig",
    "InfoGANConfig",
    "Intervention",
    "InterventionConfig",
    "FactorVAEConfig",
    "permute_dims",
    "STUDY_METHODS",
    "build",
    "study_grid",
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
