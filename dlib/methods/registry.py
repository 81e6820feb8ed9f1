"""Every trainable method by name: its class, fixed options, the study's grid, data options.

One table, :data:`METHODS`, says for each name which class :func:`build` makes, with which
fixed options, which option the Locatello et al. (2019) study sweeps and over which six values
(``grid``), and which options depend on the data a model is trained on (``run_options``: the
number of training images for β-TCVAE's estimators, DEFT's epochs turned into steps, OAT's
schedule for the run length). The studies (:mod:`dlib.studies`), the benchmark
(:mod:`dlib.bench`) and the engine tests read it; a new method is one class plus one line here.

The study trained every grid method with six values × 50 seeds, 300,000 steps, batch 64,
Adam(1e-4), ten latents and the reference architecture — the defaults of every config class.
``study_grid("factor_vae")`` lists the six configurations; ``build("factor_vae", image_shape,
gamma=10)`` makes one method.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlib.methods.base import Method

__all__ = ["MethodSpec", "METHODS", "STUDY_METHODS", "STUDY_STEPS", "STUDY_BATCH_SIZE", "get",
           "build", "study_grid", "run_options"]

STUDY_STEPS = 300_000  #: the study's steps, the length every ``run_options`` scales from
STUDY_BATCH_SIZE = 64


@dataclass(frozen=True)
class MethodSpec:
    """One method: ``dlib.methods.<cls>`` with ``fixed`` options; the study sweeps ``swept``
    over ``grid`` (empty for methods outside the study); ``run_options(steps, dataset,
    dataset_size, batch_size, setting)`` gives the options that depend on the run (and on the
    grid point's ``setting``, which overrides them in training)."""

    name: str
    cls: str  # a class of dlib.methods
    label: str
    fixed: dict[str, Any] = field(default_factory=dict)
    swept: str | None = None
    grid: tuple[float, ...] = ()
    run_options: Callable[[int, str, int, int, Mapping[str, Any]], dict[str, Any]] | None = None

    def method_class(self) -> type[Method]:
        """The class this entry builds."""
        return getattr(importlib.import_module("dlib.methods"), self.cls)

    def config_class(self) -> type:
        """The configuration dataclass of the method (``<cls>Config`` when not declared)."""
        cls = self.method_class()
        return getattr(cls, "config_class", None) or getattr(
            importlib.import_module("dlib.methods"), self.cls + "Config")


def _dataset_size(steps: int, dataset: str, dataset_size: int, batch_size: int,
                  setting: Mapping[str, Any]) -> dict[str, Any]:
    # β-TCVAE's minibatch-weighted estimators need the number of training images
    return {"dataset_size": int(dataset_size)}


def _annealed(steps: int, dataset: str, dataset_size: int, batch_size: int,
              setting: Mapping[str, Any]) -> dict[str, Any]:
    # the capacity ramp keeps its share (100,000 of 300,000 steps) of a shorter run
    return {"iteration_threshold": max(1, round(100_000 * steps / STUDY_STEPS))}


def _deft(steps: int, dataset: str, dataset_size: int, batch_size: int,
          setting: Mapping[str, Any]) -> dict[str, Any]:
    """Table 1's row of ``dataset`` (dSprites' when the dataset has none), epochs turned into
    steps over the full dataset at ``batch_size``, every stage scaled by steps / 300,000."""
    from dlib.methods.deft import DEFT_PRESETS, deft_config

    preset = dataset if dataset in DEFT_PRESETS else "dsprites"
    cfg = deft_config(preset, batch_size=batch_size)
    stages = tuple(max(1, round(s * steps / STUDY_STEPS)) for s in cfg.stage_steps)
    return {"groups": cfg.groups, "pressures": tuple(cfg.pressures), "gamma": cfg.gamma,
            "stage_steps": stages}


def _oat(steps: int, dataset: str, dataset_size: int, batch_size: int,
         setting: Mapping[str, Any]) -> dict[str, Any]:
    # the minimum time per z1 dimension is a share of the OAT phase per dimension: it depends on
    # K, which a grid point may set (the ablation's K = 5)
    from dlib.methods.oat import OATConfig, schedule_for

    return schedule_for(steps, num_z1=int(setting.get("num_z1", OATConfig().num_z1)))


METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("beta_vae", "BetaVAE", "β-VAE", {}, "beta", (1, 2, 4, 6, 8, 16)),
    MethodSpec("annealed_vae", "AnnealedVAE", "AnnealedVAE",
               {"gamma": 1000, "iteration_threshold": 100_000}, "c_max",
               (5, 10, 25, 50, 75, 100), _annealed),
    MethodSpec("factor_vae", "FactorVAE", "FactorVAE", {}, "gamma", (10, 20, 30, 40, 50, 100)),
    MethodSpec("dip_vae_i", "DIPVAE", "DIP-VAE-I", {"dip_type": "i"}, "lambda_od",
               (1, 2, 5, 10, 20, 50)),
    MethodSpec("dip_vae_ii", "DIPVAE", "DIP-VAE-II", {"dip_type": "ii"}, "lambda_od",
               (1, 2, 5, 10, 20, 50)),
    MethodSpec("beta_tc_vae", "BetaTCVAE", "β-TCVAE", {}, "beta", (1, 2, 4, 6, 8, 10),
               _dataset_size),
    # outside the study's grids
    MethodSpec("infogan", "InfoGAN", "InfoGAN"),
    MethodSpec("aae", "AAE", "AAE"),
    MethodSpec("factor_vae_prior", "FactorVAEPrior", "FactorVAE (prior variant)"),
    MethodSpec("intervention", "Intervention", "intervention-based"),
    MethodSpec("oat", "OAT", "OAT", run_options=_oat),
    MethodSpec("deft", "DEFT", "DEFT", run_options=_deft),
)}

#: the six methods of the Locatello et al. study, each with a six-value grid
STUDY_METHODS: tuple[str, ...] = tuple(name for name, s in METHODS.items() if s.grid)


def get(name: str) -> MethodSpec:
    """The entry of method ``name`` (a clear error for an unknown one)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]


def run_options(name: str, *, steps: int = STUDY_STEPS, dataset: str = "dsprites",
                dataset_size: int = 737_280, batch_size: int = STUDY_BATCH_SIZE,
                setting: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The options of method ``name`` that depend on the run and on the grid point's
    ``setting`` (empty for most methods)."""
    spec = get(name)
    if spec.run_options is None:
        return {}
    return spec.run_options(int(steps), dataset, int(dataset_size), int(batch_size),
                            dict(setting or {}))


def study_grid(name: str, seed: int = 0) -> list[Any]:
    """The study's six configurations of method ``name`` (config dataclass instances)."""
    spec = get(name)
    if not spec.grid or spec.swept is None:
        raise ValueError(f"{name!r} has no study grid; the grid methods are {STUDY_METHODS}")
    base = spec.config_class()(seed=seed, **spec.fixed)
    return [dataclasses.replace(base, **{spec.swept: float(v)}) for v in spec.grid]


def build(name: str, image_shape: tuple[int, int, int], **options: Any) -> Method:
    """Method ``name`` with its fixed options, overridden by ``options``."""
    spec = get(name)
    return spec.method_class()(image_shape, **{**spec.fixed, **options})  # type: ignore[call-arg]
