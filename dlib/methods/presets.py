"""The hyperparameter grids of the Locatello et al. (2019) study, by name.

Each method was trained with six values of its main hyperparameter × 50 seeds, 300,000 steps,
batch 64, Adam(1e-4), ten latents and the reference architecture — the defaults of every config
class. ``study_grid("factor_vae")`` lists the six configurations;
``build("factor_vae", image_shape, gamma=10)`` makes one method.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dlib.methods.annealed import AnnealedVAE
from dlib.methods.base import Method
from dlib.methods.dip import DIPVAE
from dlib.methods.factor import FactorVAE
from dlib.methods.tcvae import BetaTCVAE
from dlib.methods.vae import BetaVAE

STUDY_STEPS = 300_000
STUDY_BATCH_SIZE = 64

#: name → (method class, fixed options, swept option, the study's six values)
STUDY_GRIDS: dict[str, tuple[type[Method], dict[str, Any], str, tuple[float, ...]]] = {
    "beta_vae": (BetaVAE, {}, "beta", (1, 2, 4, 6, 8, 16)),
    "annealed_vae": (AnnealedVAE, {"gamma": 1000, "iteration_threshold": 100_000}, "c_max",
                     (5, 10, 25, 50, 75, 100)),
    "factor_vae": (FactorVAE, {}, "gamma", (10, 20, 30, 40, 50, 100)),
    "dip_vae_i": (DIPVAE, {"dip_type": "i"}, "lambda_od", (1, 2, 5, 10, 20, 50)),
    "dip_vae_ii": (DIPVAE, {"dip_type": "ii"}, "lambda_od", (1, 2, 5, 10, 20, 50)),
    "beta_tc_vae": (BetaTCVAE, {}, "beta", (1, 2, 4, 6, 8, 10)),
}


def _entry(name: str) -> tuple[type[Method], dict[str, Any], str, tuple[float, ...]]:
    if name not in STUDY_GRIDS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(STUDY_GRIDS)}")
    return STUDY_GRIDS[name]


def study_grid(name: str, seed: int = 0) -> list[Any]:
    """The study's six configurations of method ``name`` (config dataclass instances)."""
    cls, fixed, swept, values = _entry(name)
    base = cls.config_class(seed=seed, **fixed)  # type: ignore[attr-defined]
    return [dataclasses.replace(base, **{swept: float(v)}) for v in values]


def build(name: str, image_shape: tuple[int, int, int], **options: Any) -> Method:
    """A method of the study by name, with the study's fixed options plus ``options``."""
    cls, fixed, _, _ = _entry(name)
    return cls(image_shape, **{**fixed, **options})  # type: ignore[call-arg]
