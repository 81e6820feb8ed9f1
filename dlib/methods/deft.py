"""DEFT — Distilling Entangled Factors (Wu et al., seed 004), on top of the β-VAE.

DEFT trains a β-VAE in *stages*. Its encoder is split into G independent, narrow *groups*
whose codes are concatenated before the shared decoder; stage j applies the pressure β_j (a
piecewise-constant, decreasing schedule: a wide-open bottleneck only at the end) and trains
group j — the *active* group — at the learning rate lr while every other group moves at γ·lr
(γ = 0.1). The idea, borrowed from fractional distillation: a high β lets only the factors
with a high *information threshold* (on dSprites: position) through, and the slow inactive
groups keep what earlier stages distilled from leaking into the dimensions learning later.

    loss_t = E[−log p(x | z)] + β_{s(t)} · Σ_g KL(q_g(z_g | x) ‖ N(0, I)),   z = [z_1, …, z_G],

with s(t) the stage of step t.

**Learning rates, not gradient scales.** Algorithm 1 of the paper writes the inactive update as
"g·lr·γ", which is what plain SGD does with a scaled gradient. With Adam the step is
m̂ / (√v̂ + ε): multiplying every gradient of a group by γ multiplies m̂ by γ and √v̂ by γ, so
the step is unchanged (up to ε). A public port did exactly that (gradients of earlier groups
multiplied by 0.1 after backward) and therefore trained every group at the same speed. Here
each group is its own Adam *parameter group* whose ``lr`` is switched between lr and γ·lr at
stage changes, which really scales the step (tested against a hand-written Adam).

**Network size** (the book's departure, not the paper's): ``width`` multiplies the reference
network's channel and unit counts before the G groups divide them, and 32×32 images drop the
first conv of every group and the decoder's third transposed conv (:mod:`dlib.nets`); the CPU
scale of :mod:`dlib.scales` trains at width 0.5 on 32×32 images. ``width=1`` at 64×64 is the
paper's network.

The module also holds

* :data:`DEFT_PRESETS` — Table 1 of the paper (groups, epochs and pressures per stage);
* the model of the *anneal test* (:class:`AnnealTest`, :func:`anneal_beta`) and
  :func:`information_threshold`: a β-VAE whose β decays from a high value; the β at which the
  KL first exceeds 0.1 nats is the data's *information threshold* (§5.1).

The experiments that train these models (the anneal test itself, the per-factor thresholds, the
max-m NMI traced during training) are in :mod:`dlib.experiments.deft`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dlib.methods.base import Method, make_config, seeded
from dlib.methods.vae import VAE, VAEConfig
from dlib.nets import CONV_SIZES, Decoder, channels

__all__ = [
    "DEFT",
    "DEFTConfig",
    "DEFT_PRESETS",
    "DATASET_SIZES",
    "deft_config",
    "stage_steps_from_epochs",
    "effective_pressures",
    "split_latents",
    "GroupEncoder",
    "MultiGroupEncoder",
    "AnnealTest",
    "AnnealTestConfig",
    "anneal_beta",
    "information_threshold",
    "inactive_group_step",
]

#: Table 1 of the paper: encoder groups, epochs per stage and pressure (β) per stage; γ = 0.1.
DEFT_PRESETS: dict[str, dict[str, Any]] = {
    "dsprites": {"groups": 4, "epochs": (2, 2, 4, 15), "pressures": (70.0, 30.0, 12.0, 1.0),
                 "gamma": 0.1},
    "color_dsprites": {"groups": 4, "epochs": (2, 2, 4, 15),
                       "pressures": (160.0, 105.0, 30.0, 1.0), "gamma": 0.1},
    "scream_dsprites": {"groups": 2, "epochs": (4, 15), "pressures": (140.0, 1.0),
                        "gamma": 0.1},
    "smallnorb": {"groups": 4, "epochs": (20, 40, 40, 400), "pressures": (30.0, 5.0, 3.0, 1.0),
                  "gamma": 0.1},
}

#: images per epoch: every dSprites variant has 3·6·40·32·32 images; SmallNORB as
#: disentanglement_lib uses it (training + test files, 5·10·9·18·6 images)
DATASET_SIZES: dict[str, int] = {
    "dsprites": 737_280, "color_dsprites": 737_280, "scream_dsprites": 737_280,
    "smallnorb": 48_600,
}


def stage_steps_from_epochs(epochs: tuple[float, ...] | list[float], dataset_size: int,
                            batch_size: int) -> tuple[int, ...]:
    """Optimisation steps of each stage: ``round(epochs · dataset_size / batch_size)``."""
    if dataset_size < 1 or batch_size < 1:
        raise ValueError("dataset_size and batch_size must be positive")
    steps = tuple(int(round(e * dataset_size / batch_size)) for e in epochs)
    if not steps or min(steps) < 1:
        raise ValueError(f"every stage needs at least one step, got {steps} from {epochs}")
    return steps


def split_latents(num_latents: int, groups: int) -> tuple[int, ...]:
    """Latents per group, as even as possible with the first groups larger (10/4 → 3,3,2,2)."""
    if groups < 1 or num_latents < groups:
        raise ValueError(f"cannot split {num_latents} latents into {groups} non-empty groups")
    q, r = divmod(num_latents, groups)
    return tuple(q + (1 if g < r else 0) for g in range(groups))


@dataclass
class DEFTConfig:
    """DEFT on the β-VAE. Defaults: the dSprites row of Table 1 at batch 64 (23 epochs).

    ``stage_steps[j]`` steps are taken at pressure ``pressures[j]``; the last stage lasts for
    the rest of training. At stage j the active group is ``min(j, groups − 1)`` (so
    ``groups=1`` is the paper's "normal encoder with piecewise pressures" ablation).
    """

    num_latents: int = 10
    groups: int = 4
    group_sizes: tuple[int, ...] | None = None  # latents per group; None: split_latents
    pressures: tuple[float, ...] = (70.0, 30.0, 12.0, 1.0)
    # multiplies every pressure above 1 (never below 1; the ELBO's β = 1 stays): an information
    # threshold is the number of pixels a factor changes, so images with a quarter of the
    # pixels (32×32, the book's CPU scale) need a quarter of each stage's β (see
    # :func:`effective_pressures` and ``python -m dlib.cpu_scale thresholds``)
    pressure_scale: float = 1.0
    stage_steps: tuple[int, ...] = (23_040, 23_040, 46_080, 172_800)
    gamma: float = 0.1  # secondary learning-rate coefficient of the inactive groups
    arch: str = "conv"  # each group is a narrow copy of this reference encoder
    # multiplier of the reference network's channel/unit counts before the groups split it (the
    # book's CPU scale, :mod:`dlib.scales`; 1 = the paper's networks)
    width: float = 1.0
    lr: float = 5e-4  # the paper's Adam learning rate
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999))
    adam_eps: float = 1e-8
    seed: int = 0


def effective_pressures(pressures: tuple[float, ...] | list[float], pressure_scale: float
                        ) -> tuple[float, ...]:
    """The β of each stage: a pressure above 1 times ``pressure_scale``, but not below 1; a
    pressure of 1 or less (the plain ELBO and weaker) unchanged."""
    if not (math.isfinite(pressure_scale) and pressure_scale > 0):
        raise ValueError(f"pressure_scale must be positive and finite, got {pressure_scale!r}")
    return tuple(max(1.0, float(p) * pressure_scale) if p > 1 else float(p) for p in pressures)


def deft_config(preset: str, batch_size: int = 64, dataset_size: int | None = None,
                **overrides: Any) -> DEFTConfig:
    """The :class:`DEFTConfig` of a Table 1 row, epochs converted to steps at ``batch_size``."""
    if preset not in DEFT_PRESETS:
        raise ValueError(f"unknown DEFT preset {preset!r}; choose one of {sorted(DEFT_PRESETS)}")
    p = DEFT_PRESETS[preset]
    n = dataset_size if dataset_size is not None else DATASET_SIZES[preset]
    base = DEFTConfig(groups=p["groups"], pressures=tuple(p["pressures"]), gamma=p["gamma"],
                      stage_steps=stage_steps_from_epochs(p["epochs"], n, batch_size))
    return make_config(DEFTConfig, base, overrides)


# ---- the multi-group encoder -----------------------------------------------------------------
def _glorot(module: nn.Module) -> None:
    """TensorFlow's default initialisation (Glorot uniform weights, zero biases), as dlib.nets."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class GroupEncoder(nn.Module):
    """One group: the reference encoder of :mod:`dlib.nets` with every width divided by
    ``divisor`` (rounded up), emitting ``num_latents`` means and log-variances.

    With ``divisor=1`` it is layer for layer :class:`dlib.nets.Encoder` (same parameter names),
    so a reference encoder's weights load into it. ``width`` and 32×32 images are the book's
    CPU-scale departure (off by default), as in :mod:`dlib.nets`: the reference encoder's
    channel and unit counts at ``width`` (:func:`dlib.nets.channels`) are divided by ``divisor``,
    and 32×32 images drop the first conv layer.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_latents: int, arch: str = "conv",
                 divisor: int = 1, width: float = 1.0) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        c, h, w = (int(s) for s in image_shape)
        if arch not in ("conv", "conv4", "fc"):
            raise ValueError(f"unknown architecture {arch!r}; choose conv, conv4 or fc")
        if arch != "fc" and (h != w or h not in CONV_SIZES):
            raise ValueError(f"the convolutional architectures expect 64×64 or 32×32 images, "
                             f"got {h}×{w}")
        if num_latents < 1 or divisor < 1:
            raise ValueError("num_latents and divisor must be positive")
        if not width > 0 or (arch == "fc" and width != 1.0):
            raise ValueError(f"width must be positive (and 1 for arch='fc'), got {width!r}")
        self.image_shape = (c, h, w)
        self.num_latents = num_latents

        def narrow(units: int) -> int:
            return max(1, math.ceil(units / divisor))

        if arch == "fc":
            hidden = narrow(1200)
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(),
                                      nn.Linear(hidden, hidden), nn.ReLU())
            out = hidden
        else:
            k, p = (2, 0) if arch == "conv" else (4, 1)
            c1, c2, units = (narrow(v) for v in channels(width))
            first = [nn.Conv2d(c, c1, 4, 2, 1), nn.ReLU()] if h == 64 else []  # 64x64 -> 32x32
            self.body = nn.Sequential(
                *first,
                nn.Conv2d(c1 if first else c, c1, 4, 2, 1), nn.ReLU(),  # 32x32 -> 16x16
                nn.Conv2d(c1, c2, k, 2, p), nn.ReLU(),  # 16x16 -> 8x8
                nn.Conv2d(c2, c2, k, 2, p), nn.ReLU(),  # 8x8 -> 4x4
                nn.Flatten(),
                nn.Linear(c2 * 16, units), nn.ReLU(),
            )
            out = units
        self.mean = nn.Linear(out, num_latents)
        self.logvar = nn.Linear(out, num_latents)
        _glorot(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"encoder expects (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class MultiGroupEncoder(nn.Module):
    """G independent group encoders; their means and log-variances are concatenated in group
    order, so latent dimensions ``[offset_g, offset_g + size_g)`` belong to group g. Each group
    is the reference encoder at ``width`` narrowed G-fold (:class:`GroupEncoder`)."""

    def __init__(self, image_shape: tuple[int, int, int], group_sizes: tuple[int, ...],
                 arch: str = "conv", width: float = 1.0) -> None:
        super().__init__()
        divisor = len(group_sizes)
        self.group_sizes = tuple(int(s) for s in group_sizes)
        self.groups = nn.ModuleList(
            GroupEncoder(image_shape, s, arch, divisor, width) for s in self.group_sizes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        outs = [g(x) for g in self.groups]
        return torch.cat([m for m, _ in outs], 1), torch.cat([v for _, v in outs], 1)


# ---- the method ----------------------------------------------------------------------------------
class DEFT(VAE):
    """β-VAE with a multi-group encoder, per-group learning rates and staged pressures.

    The schedule lives in buffers (``stage_ends``: the first step of every later stage, i.e.
    cumulative stage lengths; ``pressures``) and so does the ``stage`` last applied, so a
    checkpoint resumes exactly, also across a stage boundary. The optimiser ``"main"`` has one
    Adam parameter group per encoder group (``name="encoder<g>"``) plus one for the decoder.
    """

    config: DEFTConfig
    config_class = DEFTConfig

    def __init__(self, image_shape: tuple[int, int, int], config: Any | None = None,
                 **overrides: Any) -> None:
        cfg = make_config(DEFTConfig, config, overrides)
        sizes = cfg.group_sizes if cfg.group_sizes is not None else split_latents(
            cfg.num_latents, cfg.groups)
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) != cfg.groups or sum(sizes) != cfg.num_latents or min(sizes) < 1:
            raise ValueError(f"group_sizes {sizes} must be {cfg.groups} positive sizes summing "
                             f"to num_latents = {cfg.num_latents}")
        if len(cfg.pressures) != len(cfg.stage_steps) or not cfg.pressures:
            raise ValueError(f"one pressure per stage: {len(cfg.pressures)} pressures, "
                             f"{len(cfg.stage_steps)} stage lengths")
        if min(cfg.stage_steps) < 1:
            raise ValueError(f"stage lengths must be positive, got {cfg.stage_steps}")
        if min(cfg.pressures) < 0 or not all(math.isfinite(p) for p in cfg.pressures):
            raise ValueError(f"pressures must be finite and non-negative, got {cfg.pressures}")
        if not 0.0 <= cfg.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {cfg.gamma}")
        betas = effective_pressures(cfg.pressures, cfg.pressure_scale)
        Method.__init__(self, cfg)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.group_sizes = sizes
        with seeded(cfg.seed):
            self.encoder = MultiGroupEncoder(self.image_shape, sizes, cfg.arch, cfg.width)
            self.decoder = Decoder(self.image_shape, cfg.num_latents, cfg.arch,  # type: ignore
                                   width=cfg.width)
        ends = np.cumsum(cfg.stage_steps)
        self._ends = [int(e) for e in ends]  # host copy of the schedule (no device sync)
        self.register_buffer("stage_ends", torch.as_tensor(ends, dtype=torch.long))
        self.register_buffer("pressures", torch.tensor(betas, dtype=torch.float32))
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))
        self._host_step: int | None = None  # mirror of self.step, read once after (re)loading
        self._applied: int | None = None  # the stage whose learning rates the optimiser holds
        self.register_load_state_dict_post_hook(lambda module, keys: module._forget_host())

    def _forget_host(self) -> None:
        self._host_step = None
        self._applied = None

    # -- the schedule ----------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self._ends)

    def stage_of(self, step: int) -> int:
        """Stage of (0-based) step ``step``: stage j covers [ends[j−1], ends[j]); the last stage
        lasts for ever."""
        return min(bisect.bisect_right(self._ends, int(step)), self.num_stages - 1)

    def active_group(self, stage: int) -> int:
        return min(int(stage), len(self.group_sizes) - 1)

    def group_lrs(self, stage: int) -> list[float]:
        """Learning rate of every encoder group at ``stage``: lr for the active one, γ·lr else."""
        cfg = self.config
        act = self.active_group(stage)
        return [cfg.lr if g == act else cfg.gamma * cfg.lr for g in range(len(self.group_sizes))]

    def pressure_at(self, step: Tensor | int) -> Tensor:
        """β at step ``step`` on the device (a tensor, no host synchronisation)."""
        t = torch.as_tensor(step, device=self.stage_ends.device, dtype=torch.long)
        s = torch.searchsorted(self.stage_ends, t.reshape(1), right=True).clamp(
            max=self.num_stages - 1)
        return self.pressures[s[0]]

    def group_slices(self) -> list[slice]:
        offs = np.concatenate([[0], np.cumsum(self.group_sizes)])
        return [slice(int(a), int(b)) for a, b in zip(offs[:-1], offs[1:], strict=True)]

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        groups = [{"params": list(self.decoder.parameters()), "lr": cfg.lr, "name": "decoder"}]
        lrs = self.group_lrs(0)
        groups += [{"params": list(enc.parameters()), "lr": lr, "name": f"encoder{g}"}
                   for g, (enc, lr) in enumerate(zip(self.encoder.groups, lrs, strict=True))]
        self._applied = 0
        return {"main": torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.adam_betas),
                                         eps=cfg.adam_eps)}

    def apply_stage(self, stage: int) -> None:
        """Set the optimiser's per-group learning rates and the ``stage`` buffer to ``stage``."""
        if not self.optimizers:
            self.setup_optimizers()
        lrs = self.group_lrs(stage)
        for pg in self.optimizers["main"].param_groups:
            name = pg.get("name", "")
            pg["lr"] = self.config.lr if name == "decoder" else lrs[int(name[len("encoder"):])]
        self.stage.fill_(int(stage))
        self._applied = int(stage)

    def train_step(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Switch learning rates when step ``self.step`` starts a new stage, then one step."""
        if not self.optimizers:
            self.setup_optimizers()
        if self._host_step is None:
            self._host_step = int(self.step)  # one host read after construction or loading
        stage = self.stage_of(self._host_step)
        if stage != self._applied:
            self.apply_stage(stage)
        out = super().train_step(x, generator)
        self._host_step += 1
        return out

    # -- the objective --------------------------------------------------------------------------
    def regularizer(self, mean: Tensor, logvar: Tensor, z: Tensor, kl_dims: Tensor
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        beta = self.pressure_at(self.step).to(kl_dims.dtype)
        kl_groups = torch.stack([kl_dims[s].sum() for s in self.group_slices()])
        stage = torch.searchsorted(self.stage_ends, self.step.reshape(1), right=True).clamp(
            max=self.num_stages - 1)[0]
        return beta * kl_dims.sum(), {"beta": beta.detach(), "kl_groups": kl_groups.detach(),
                                      "stage": stage.to(kl_dims.dtype)}


def inactive_group_step(image_shape: tuple[int, int, int], x: Tensor, gamma: float,
                        gradient_scale: float = 1.0, group: int = 2, seed: int = 0) -> Tensor:
    """The parameter change of encoder ``group`` (inactive in stage 0) in DEFT's first step.

    ``gradient_scale`` multiplies the gradients of every group but group 0 before Adam steps:
    the "naive" secondary rate. In float64, so that the comparison is not blurred by rounding.
    Used to show that ``gamma`` scales the step and ``gradient_scale`` does not.
    """
    model = DEFT(image_shape, gamma=gamma, seed=seed).double()
    model.setup_optimizers()
    params = list(model.encoder.groups[group].parameters())
    before = torch.cat([p.detach().flatten() for p in params])
    adam_step = model.optimizers["main"].step

    def step_with_scaled_gradients(*args: Any, **kwargs: Any) -> Any:
        for enc in list(model.encoder.groups)[1:]:
            for p in enc.parameters():
                if p.grad is not None:
                    p.grad.mul_(gradient_scale)
        return adam_step(*args, **kwargs)

    model.optimizers["main"].step = step_with_scaled_gradients  # type: ignore[method-assign]
    model.train_step(x.double(), torch.Generator(device=x.device).manual_seed(seed + 1))
    return torch.cat([p.detach().flatten() for p in params]) - before


# ---- the anneal test ---------------------------------------------------------------------------
@dataclass
class AnnealTestConfig(VAEConfig):
    """β-VAE whose β decays as β(t) = β_end + (β_max − β_end)·exp(−rate·t / anneal_steps).

    ``beta`` (inherited) is unused. One latent by default: the test asks *when* a single code
    starts to carry information, not how it is spread over dimensions.
    """

    num_latents: int = 1
    beta_max: float = 200.0
    beta_end: float = 1.0
    rate: float = 15.0
    anneal_steps: int = 10_000
    lr: float = 5e-4
    hidden: int = 64  # width of the "mlp" architecture (toy data)


def anneal_beta(step: Tensor | int, beta_max: float, beta_end: float, rate: float,
                anneal_steps: int) -> Tensor:
    """β(t) = β_end + (β_max − β_end)·exp(−rate·t / T): the anneal test's decaying pressure."""
    t = torch.as_tensor(step, dtype=torch.float32)
    return beta_end + (beta_max - beta_end) * torch.exp(-rate * t / float(anneal_steps))


class _MLPEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_latents: int, hidden: int) -> None:
        super().__init__()
        c, h, w = image_shape
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, num_latents)
        self.logvar = nn.Linear(hidden, num_latents)
        _glorot(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class AnnealTest(VAE):
    """The β-VAE of the anneal test: the pressure starts high (no information passes) and
    decays; logs ``beta`` so the information threshold can be read off the history.

    ``arch="mlp"`` (one hidden ReLU layer of ``hidden`` units each way, any image size) is a
    small model for toy data; the other architectures are the reference ones.
    """

    config: AnnealTestConfig
    config_class = AnnealTestConfig

    def __init__(self, image_shape: tuple[int, int, int], config: Any | None = None,
                 **overrides: Any) -> None:
        cfg = make_config(AnnealTestConfig, config, overrides)
        if cfg.arch != "mlp":
            super().__init__(image_shape, cfg)
            return
        Method.__init__(self, cfg)
        self.image_shape = tuple(int(s) for s in image_shape)
        c, h, w = self.image_shape
        with seeded(cfg.seed):
            self.encoder = _MLPEncoder(self.image_shape, cfg.num_latents, cfg.hidden)
            self.decoder = nn.Sequential(nn.Linear(cfg.num_latents, cfg.hidden), nn.ReLU(),
                                         nn.Linear(cfg.hidden, c * h * w),
                                         nn.Unflatten(1, (c, h, w)))
            _glorot(self.decoder)

    def regularizer(self, mean: Tensor, logvar: Tensor, z: Tensor, kl_dims: Tensor
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.config
        beta = anneal_beta(self.step, c.beta_max, c.beta_end, c.rate, c.anneal_steps)
        beta = beta.to(device=kl_dims.device, dtype=kl_dims.dtype)
        return beta * kl_dims.sum(), {"beta": beta}


def information_threshold(betas: np.ndarray, kls: np.ndarray, kl_threshold: float = 0.1
                          ) -> tuple[float, int]:
    """``(β, index)`` at the first point where the KL exceeds ``kl_threshold`` nats (the
    paper's rule: "the model learns information when the KL raises over 0.1") *after* the KL
    has first been at or below it; ``(nan, -1)`` when that never happens."""
    betas, kls = np.asarray(betas, dtype=float), np.asarray(kls, dtype=float)
    if betas.shape != kls.shape or betas.ndim != 1:
        raise ValueError(f"betas and kls must be 1-D of one length, got {betas.shape}, "
                         f"{kls.shape}")
    if not np.isfinite(kls).all():
        raise ValueError("the KL curve contains NaN or inf")
    # the code must first be shut (KL below the threshold: a fresh encoder carries a little
    # information before the high pressure squeezes it out); the threshold is the first rise
    # after that
    shut = np.flatnonzero(kls <= kl_threshold)
    if len(shut) == 0:
        return float("nan"), -1
    above = np.flatnonzero(kls[shut[0]:] > kl_threshold)
    if len(above) == 0:
        return float("nan"), -1
    i = int(shut[0] + above[0])
    return float(betas[i]), i
