"""What a study is (a name, a grid, metrics and evaluators) and every study of the book.

A :class:`Study` is declared, not programmed: the methods it trains (each an :class:`Arm`: a
name of :mod:`dlib.methods.registry` and the settings trained), the seeds, the datasets, the
metrics of :func:`dlib.metrics.compute` and the named evaluators of
:mod:`dlib.studies.evaluators`. How large each model is trained and scored is the *scale*
(:mod:`dlib.scales`), chosen when the study is run; ``step_fraction`` and ``batch_size`` say
where a study's protocol departs from the scale's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dlib.methods import registry
from dlib.methods.intervention import LAMBDAS_CMNIST

__all__ = ["Arm", "Study", "STUDIES", "get", "setting_key", "PART3_METRICS", "DEFT_PAPER_TABLE2"]


def setting_key(setting: dict[str, Any]) -> str:
    """``{"beta": 4.0}`` → ``"beta=4"`` (the key of a setting in tables and file names)."""
    if not setting:
        return "default"
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in setting.items())


@dataclass(frozen=True)
class Arm:
    """One method of a study and the settings it is trained with (each a dict of options)."""

    method: str  # a name of dlib.methods.registry.METHODS
    settings: tuple[dict[str, Any], ...] = ({},)

    def __post_init__(self) -> None:
        registry.get(self.method)  # a clear error for an unknown name
        object.__setattr__(self, "settings", tuple(dict(s) for s in self.settings))


@dataclass(frozen=True)
class Study:
    """A grid (datasets × arms' settings × seeds), what to compute, and how the protocol
    departs from the scale it runs at.

    ``datasets`` are names of :func:`dlib.data.load`; ``"NAME:correlated"`` and
    ``"NAME:independent"`` train on the correlated or independent training set of
    :func:`dlib.data.correlated_split` and score on its held-out test set.
    ``metric_seed`` seeds every metric's RandomState (``None``: the model's seed).
    """

    name: str
    description: str
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    datasets: tuple[str, ...] = ("dsprites",)
    metrics: tuple[str, ...] = ()
    evaluators: tuple[str, ...] = ("metrics", "recon_kl", "traversal")
    step_fraction: float = 1.0  # the study trains for this share of the scale's steps
    batch_size: int | None = None  # None: the scale's
    metric_seed: int | None = 0

    def __post_init__(self) -> None:
        if not self.arms or not self.seeds or not self.datasets:
            raise ValueError(f"study {self.name!r} needs methods, seeds and datasets")
        if not 0 < self.step_fraction <= 1:
            raise ValueError(f"study {self.name!r}: step_fraction must lie in (0, 1]")
        from dlib.data import DATASETS
        from dlib.studies.evaluators import EVALUATORS

        for dataset in self.datasets:
            name, _, variant = dataset.partition(":")
            if name not in DATASETS or variant not in ("", "correlated", "independent"):
                raise ValueError(f"study {self.name!r}: unknown dataset {dataset!r}; use a name "
                                 f"of {sorted(DATASETS)}, optionally with :correlated or "
                                 ":independent")

        unknown = [e for e in self.evaluators if e not in EVALUATORS]
        if unknown:
            raise ValueError(f"study {self.name!r}: unknown evaluators {unknown}; "
                             f"choose from {sorted(EVALUATORS)}")

    def points(self) -> list[dict[str, Any]]:
        """Every (dataset, method, setting) of the grid, seeds aside."""
        return [{"dataset": d, "method": a.method, "setting": dict(s)}
                for d in self.datasets for a in self.arms for s in a.settings]

    def planned(self) -> int:
        """The number of models the study trains."""
        return len(self.points()) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (the form a Ray trial receives)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Study:
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        d["arms"] = tuple(Arm(a["method"], tuple(a["settings"])) for a in d["arms"])
        for key in ("seeds", "datasets", "metrics", "evaluators"):
            d[key] = tuple(d[key])
        return cls(**d)

    def replace(self, **changes: Any) -> Study:
        """A copy with some fields changed (e.g. ``seeds``)."""
        return dataclasses.replace(self, **changes)


def _sweep(method: str, values: tuple[float, ...] | None = None, option: str | None = None
           ) -> Arm:
    """``method`` over ``values`` of ``option`` (default: its study grid)."""
    spec = registry.get(method)
    values = spec.grid if values is None else values
    option = option or spec.swept
    if option is None:
        raise ValueError(f"{method} has no study grid: name the option swept")
    return Arm(method, tuple({option: float(v)} for v in values))


PART3_METRICS = ("factor_vae", "mig", "dci", "sap")
_PART3: dict[str, Any] = {"metrics": PART3_METRICS}
#: OAT's protocol (its study and its ablation): Table 1's scores, the paper's batch of 128, a
#: third of the scale's steps
_OAT: dict[str, Any] = {"metrics": ("factor_vae", "mig", "dci", "beta_vae"),
                        "evaluators": ("encoded_metrics", "oat_state", "traversal"),
                        "step_fraction": 1 / 3, "batch_size": 128}

#: the large-scale study's protocol: every metric of the suite, scored on codes encoded once
_LOCATELLO: dict[str, Any] = {
    "metrics": ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity_explicitness", "irs",
                "unsupervised", "downstream_task", "downstream_task_gbt"),
    "evaluators": ("encoded_metrics", "recon_kl", "traversal")}
#: OAT's two switching rules: the default, and one where a dimension must hold PEEL_HOLD nats
_OAT_RULES = (Arm("oat", ({}, {"saturation_min_kl": 0.5})),)

_studies: list[Study] = [
    # ---- Part III: each method's headline setting, two sweeps, the relatives -------------------
    Study("beta_vae", "β-VAE, β = 4 (Higgins et al.)", (Arm("beta_vae", ({"beta": 4.0},)),),
          **_PART3),
    Study("annealed_vae", "AnnealedVAE, C_max = 25 nats, γ = 1000, a ramp over the first third",
          (Arm("annealed_vae", ({"c_max": 25.0},)),), **_PART3),
    Study("factor_vae", "FactorVAE, γ = 40", (Arm("factor_vae", ({"gamma": 40.0},)),),
          **_PART3),
    Study("beta_tc_vae", "β-TCVAE, β = 6", (Arm("beta_tc_vae", ({"beta": 6.0},)),), **_PART3),
    Study("dip_vae_i", "DIP-VAE-I, λ_od = 10, λ_d = 100",
          (Arm("dip_vae_i", ({"lambda_od": 10.0},)),), **_PART3),
    Study("dip_vae_ii", "DIP-VAE-II, λ_od = 10, λ_d = 10",
          (Arm("dip_vae_ii", ({"lambda_od": 10.0},)),), **_PART3),
    Study("beta_vae_sweep", "β-VAE over the study's grid β ∈ {1, 2, 4, 6, 8, 16}",
          (_sweep("beta_vae"),), **_PART3),
    Study("factor_vae_sweep", "FactorVAE over the study's grid γ ∈ {10, 20, 30, 40, 50, 100}",
          (_sweep("factor_vae"),), **_PART3),
    Study("factor_vae_prior", "FactorVAE's prior variant (FactorVAE paper, App. F, Eq. 12): "
          "γ·KL(q(z)‖p(z)), γ = 40", (Arm("factor_vae_prior", ({"gamma": 40.0},)),), **_PART3),
    Study("aae", "Adversarial autoencoder (FactorVAE paper, App. F, Eq. 7 with its γ): "
          "γ ∈ {1, 10, 40}", (_sweep("aae", (1, 10, 40), "gamma"),), **_PART3),
    Study("infogan", "InfoGAN (FactorVAE paper, App. G): 4 continuous + 1 categorical code",
          (Arm("infogan", ({"variant": "gan"},)),), **_PART3),
    Study("infowgan_gp", "InfoWGAN-GP (FactorVAE paper, App. H)",
          (Arm("infogan", ({"variant": "wgan-gp"},)),), **_PART3),
    # ---- the large-scale study (Locatello et al. 2019) at a chosen scale ------------------------
    Study("locatello", "every method of the study over its six-value grid × 3 seeds on dSprites",
          tuple(_sweep(m) for m in registry.STUDY_METHODS),
          **_LOCATELLO),
    Study("dip_vae_i_lambda_d", "DIP-VAE-I with the diagonal weight λ_d = λ_od instead of the "
          "study's 10·λ_od, at λ_od ∈ {5, 20}: is the diagonal term what spreads the factors "
          "over every latent (the DIP-VAE chapter)?",
          (Arm("dip_vae_i", ({"lambda_od": 5.0, "lambda_d": 5.0},
                             {"lambda_od": 20.0, "lambda_d": 20.0})),), seeds=(0,),
          **_LOCATELLO),
    Study("locatello_color", "the study's grids, one seed, on color-dSprites (transfer)",
          tuple(_sweep(m) for m in registry.STUDY_METHODS), seeds=(0,),
          datasets=("color_dsprites",), **_LOCATELLO),
    # ---- Part V ----------------------------------------------------------------------------------
    Study("oat", "OAT (K = 10, d = 10) on dSprites, the paper's batch 128, 100k iterations at "
          "full scale; beside the default switching rule, one where a dimension must hold "
          "PEEL_HOLD (0.5) nats before the next is switched on",
          _OAT_RULES, seeds=(0, 1, 2, 3, 4), **_OAT),
    Study("oat_long", "the oat study's two switching rules with a schedule three times as long "
          "(the scale's full steps; every phase of OAT's schedule stretches with the run): does "
          "the default rule peel when each dimension has more steps to fill?",
          _OAT_RULES, seeds=(0, 1, 2), **{**_OAT, "step_fraction": 1.0}),
    Study("oat_ablation", "OAT's ablation of its two sets, the oat study's protocol and default "
          "switching rule with one set halved: K = 5 (the paper's Table 1 row OAT K = 5, d = 10) "
          "and d = 5", (Arm("oat", ({"num_z1": 5}, {"num_z2": 5})),), seeds=(0, 1, 2), **_OAT),
    Study("intervention", "the intervention-based framework against FactorVAE and β-TCVAE on "
          "independent and correlated training sets (seed 002, Tables 1–2, Fig. 3)",
          (Arm("factor_vae", ({"gamma": 10.0}, {"gamma": 40.0})), Arm("beta_tc_vae",
                                                                     ({"beta": 6.0},)),
           Arm("intervention")),
          datasets=("dsprites:independent", "dsprites:correlated", "shapes3d:independent",
                    "shapes3d:correlated"),
          metrics=("dci", "sap", "irs"), evaluators=("metrics", "translation"),
          step_fraction=0.1, metric_seed=None),
    Study("intervention_digits", "Table 3 of the intervention-based paper (seed 002): the method "
          "(K_Z = 2 features of D_Z = 16, λ1 = 1) against FactorVAE (γ = 10, 40) on independent "
          "and correlated coloured digits, SAP on held-out handwriting",
          (Arm("factor_vae", ({"gamma": 10.0}, {"gamma": 40.0})),
           Arm("intervention", ({"num_features": 2, "feature_dim": 16,
                                 "lambda_in": LAMBDAS_CMNIST[0]},))),
          datasets=("colored_digits:independent", "colored_digits:correlated"),
          metrics=("sap",), evaluators=("metrics", "translation"), step_fraction=0.1,
          metric_seed=None),
    Study("deft", "DEFT against six baselines: failure rates (MIG < 0.1) and MIG per stage "
          "(seed 004, Table 2 and Fig. 8)",
          (Arm("deft"), Arm("beta_vae", ({"beta": 6.0},)), Arm("factor_vae", ({"gamma": 40.0},)),
           Arm("dip_vae_i", ({"lambda_od": 10.0},)), Arm("dip_vae_ii", ({"lambda_od": 10.0},)),
           Arm("beta_tc_vae", ({"beta": 6.0},)), Arm("annealed_vae", ({"c_max": 25.0},))),
          seeds=tuple(range(10)), datasets=("dsprites", "color_dsprites"), metrics=("mig",),
          evaluators=("metrics", "loss_tail", "stage_mig", "nmi_trace")),
]

STUDIES: dict[str, Study] = {s.name: s for s in _studies}

#: Table 2 of the DEFT paper (Wu et al.): failure rate (%) = share of models with MIG < 0.1,
#: per dataset and method (the ``deft`` study's methods). The paper does not say which models
#: a baseline's rate counts; every baseline entry is a whole number out of 300 (47.7 = 143/300),
#: so each most likely pools all 300 disentanglement_lib models of the method on the dataset
#: (six hyperparameters × 50 seeds), not the 50 at the best setting of its Fig. 1. DEFT's
#: 8.0 and 12.0 are not multiples of 10 % although the paper trained each model "10 times".
DEFT_PAPER_TABLE2: dict[str, dict[str, float]] = {
    ds: dict(zip(("deft", "beta_vae", "factor_vae", "dip_vae_i", "dip_vae_ii", "beta_tc_vae",
                  "annealed_vae"), row, strict=True)) for ds, row in {
        "dsprites": (8.0, 47.7, 11.0, 76.0, 87.0, 18.7, 61.7),
        "color_dsprites": (0.0, 36.0, 16.7, 78.0, 89.3, 23.7, 47.7),
        "scream_dsprites": (12.0, 34.3, 66.7, 80.3, 89.0, 43.7, 100.0),
        "smallnorb": (0.0, 0.0, 0.0, 28.7, 0.0, 0.0, 88.0),
    }.items()
}


def get(name: str | Study) -> Study:
    """The study called ``name`` (a :class:`Study` passes through)."""
    if isinstance(name, Study):
        return name
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {sorted(STUDIES)}")
    return STUDIES[name]


def _check() -> None:
    for study in STUDIES.values():
        for arm in study.arms:
            field_names = {f.name for f in dataclasses.fields(
                registry.get(arm.method).config_class())}
            for setting in arm.settings:
                bad = set(setting) - field_names
                if bad:
                    raise ValueError(f"study {study.name!r}: {arm.method} has no option {bad}")


_check()
