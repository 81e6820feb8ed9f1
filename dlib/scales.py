"""Training scales: how large one model of a study is trained and how large its scoring is.

A *scale* bundles everything that sets the cost of one study model: the image size and the
network width, the number of training images, steps, batch size and learning rate, and the
sample sizes of the metrics. Studies (``dlib.studies``) and chapters name a scale instead of
repeating numbers:

``quick``
    a smoke test of the pipeline on a 2,000-image subset (CI); never a result.
``full``
    the Locatello et al. (2019) protocol for a GPU: 64×64 dSprites, the reference network,
    300,000 steps at batch 64, Adam 1e-4, the study's metric settings.
``cpu``
    what one CPU core trains and scores in about a quarter of an hour (issue 16), chosen by
    measurement as the cheapest probed setting whose β-VAE (β = 4) meets the issue's gates
    (FactorVAE score ≥ 0.65 and MIG ≥ 0.15, mean over three seeds): all of dSprites drawn at
    32×32, the reference network at half width without its first conv layer, 40,000 steps at
    batch 64, Adam 1e-3 (FactorVAE's discriminator narrowed with the network: 6 × 500 units;
    AnnealedVAE's γ = 50 instead of 1000, whose code collapses at this scale; DEFT's pressures
    quartered, on the inference that the information thresholds scale with the quartered pixel
    counts),
    the study's metric settings (scored by encoding every image once,
    :mod:`dlib.metrics.encoded`) except the translation metric's, which is scored on 128 codes
    and one pair of values instead of 512 and two (about 30 core-minutes a model otherwise).
    Two models run side by side on a two-core machine, about eight minutes of the machine
    each. ``python -m dlib.cpu_scale card`` prints its recipe card.
``cpu_short``
    the same at 20,000 steps: half the cost, and the scale of the first CPU-trained results
    (the β grid, FactorVAE and β-TCVAE of the book's Part III); its β-VAE misses the FactorVAE
    score's gate (about 0.6: x and y often take two latents each at this length).

Neither is the papers' 300,000-step GPU protocol, and every caption says so
(:meth:`Scale.caption`).

Other scales are added to :data:`SCALES`; a caption shows a scale with :meth:`Scale.caption`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Scale", "SCALES", "get"]


@dataclass(frozen=True)
class Scale:
    """The sizes that set the cost of training and scoring one model."""

    name: str
    description: str
    steps: int
    batch_size: int = 64
    learning_rate: float = 1e-4
    image_size: int = 64  #: side of the square images the data is rendered at
    width: float = 1.0  #: multiplier of the reference network's channel/unit counts
    num_images: int | None = None  #: a training subset of this size; None = the whole set
    #: options passed to each metric (``dlib.metrics.compute(name, ..., **options)``);
    #: an empty dict means the study's defaults
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: options of a method that replace its study defaults at this scale, each with the
    #: measurement that forced it (``{"annealed_vae": {"gamma": ...}}``); a setting of the
    #: study's grid still overrides them
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"scale {self.name!r}: steps and batch_size must be positive")
        if self.learning_rate <= 0 or self.width <= 0:
            raise ValueError(f"scale {self.name!r}: learning_rate and width must be positive")
        if self.num_images is not None and self.num_images < self.batch_size:
            raise ValueError(f"scale {self.name!r}: num_images < batch_size")

    def metric_options(self, name: str) -> dict[str, Any]:
        """The options of metric ``name`` at this scale (a copy; empty = study defaults)."""
        return dict(self.metrics.get(name, {}))

    def options_of(self, method: str) -> dict[str, Any]:
        """The options of ``method`` that this scale changes (a copy; empty = the study's)."""
        return dict(self.method_options.get(method, {}))

    def replace(self, **changes: Any) -> Scale:
        """A copy with some sizes changed (e.g. ``steps``); the name records the change."""
        return dataclasses.replace(self, **changes)

    def caption(self) -> str:
        """One line for a table caption: what was trained, at which size."""
        data = "all images" if self.num_images is None else f"{self.num_images:,} images"
        net = "reference network" if self.width == 1.0 else f"reference network × {self.width:g}"
        if self.image_size != 64:
            net += " without its first conv layer"
        return (f"{self.name} scale: {self.image_size}×{self.image_size} {data}, {net}, "
                f"{self.steps:,} steps, batch {self.batch_size}, Adam {self.learning_rate:g}")


#: the quick profile's metric sample sizes: a smoke test of the pipeline, not a result
_QUICK_METRICS: dict[str, dict[str, Any]] = {
    "factor_vae": {"num_train": 100, "num_eval": 50, "num_variance_estimate": 500},
    "mig": {"num_train": 500},
    "dci": {"num_train": 500, "num_test": 250},
    "sap": {"num_train": 500, "num_test": 250},
    "beta_vae": {"batch_size": 16, "num_train": 100, "num_eval": 50},
    "irs": {"num_train": 200},
    "translation": {"num_train": 32, "num_test": 32, "steps": 3},
    "recon": {"num": 256},  # held-out images of the reconstruction error and KL
    "nmi_trace": {"num": 300, "points": 3},  # DEFT's max-m NMI trace over training
    "downstream_task": {"num_train": (10, 100), "num_test": 200},
    "downstream_task_gbt": {"num_train": (10, 100), "num_test": 200},
}

#: what the CPU scales change in a method. AnnealedVAE's γ = 1000 can collapse the code at
#: 32×32 with Adam 1e-3: the KL follows C(t) through the posterior variances while the means
#: stop depending on the image (the study's first C_max = 25 model ended at the mean image's
#: reconstruction error, every score 0). ``python -m dlib.cpu_scale gamma`` counts the seeds
#: that collapse at γ = 1000, 500 and 250. γ = 250 (the paper's weight scaled by the pixel
#: count, 32² / 64²) was the first choice; three of the study's first five models collapsed
#: with it, and ``python -m dlib.cpu_scale capacity`` then found seed 0 collapsing at γ = 250
#: and 100 for C_max = 10, 50 and 100, and no run of six collapsing at γ = 50, with the KL as
#: close to C(t) (within 0.08 nats). The γ = 250 models are kept in ``locatello/superseded/``.
#: γ = 50 lowers the rate without removing it (``python -m dlib.cpu_scale rate``: one seed of
#: four at C_max = 25; the study's Adam 1e-4 did not help, at γ = 1000 all four stayed at the
#: mean image), so the study counts the collapsed models it trains.
#: DEFT's pressures are information thresholds' neighbours. In the DEFT chapter's two-image toy
#: the threshold is proportional to the number of pixels that differ; a dSprites factor's
#: threshold is not its pixel count (the shape changes the most pixels and has among the lowest
#: thresholds), but if it scales with the count the same way, it is quartered at 32×32, where
#: every factor changes a quarter of the pixels it changes at 64×64 (``python -m dlib.cpu_scale
#: thresholds`` counts them, and measures thresholds at 32×32 only: the quartering is an
#: inference, not a measurement). So each stage's β above 1 is quartered too (70, 30, 12 →
#: 17.5, 7.5, 3).
_CPU_METHOD_OPTIONS: dict[str, dict[str, Any]] = {"annealed_vae": {"gamma": 50.0},
                                                  "deft": {"pressure_scale": 0.25}}

#: the metric sizes the CPU scales change. The translation metric (Part V) trains its
#: translation network for 200 steps per code feature and value pair; on 512 + 512 codes and two
#: pairs that measured ≈ 30 minutes of one core per model (45 s for ten 10-step runs on 512 codes,
#: 9 s on 128), more than training a 4,000-step baseline. 128 codes and one pair cost ≈ 3 min;
#: the loss is then noisier per model, so compare means over seeds.
_CPU_METRICS: dict[str, dict[str, Any]] = {
    "translation": {"num_train": 128, "num_test": 128, "num_pairs": 1},
}

SCALES: dict[str, Scale] = {
    "quick": Scale("quick", "smoke test of the pipeline (CI); never a result", steps=200,
                   num_images=2_000, metrics=_QUICK_METRICS),
    "full": Scale("full", "the Locatello et al. (2019) study protocol, sized for a GPU",
                  steps=300_000),
    "cpu": Scale("cpu", "sized for one CPU core per model and chosen by measurement (32×32 "
                 "dSprites, half-width network and discriminator, 40k steps, Adam 1e-3); not "
                 "the papers' "
                 "300k-step GPU protocol", steps=40_000, learning_rate=1e-3, image_size=32,
                 width=0.5, metrics=_CPU_METRICS, method_options=_CPU_METHOD_OPTIONS),
    "cpu_short": Scale("cpu_short", "the CPU scale at half its steps (20k): half the cost, "
                       "misses the FactorVAE score's gate; not the papers' 300k-step GPU "
                       "protocol", steps=20_000, learning_rate=1e-3, image_size=32, width=0.5,
                       metrics=_CPU_METRICS, method_options=_CPU_METHOD_OPTIONS),
}


def get(name: str) -> Scale:
    """The scale called ``name`` (a clear error for an unknown one)."""
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; choose one of {sorted(SCALES)}")
    return SCALES[name]
