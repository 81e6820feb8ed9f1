"""OAT: disentangling one factor at a time (ICLR 2022 submission, OpenReview ``DXU0DQUDWLA``).

The latent code is split into a *disentangled* set z1 = (z1_1, …, z1_K) whose dimensions are
switched on one at a time by a mask γ ∈ {0, 1}^K, and an *entangled* set z2 ∈ R^d. Training:

1. **Pre-training** (``pretrain_steps``): a plain VAE on z2 alone (γ = 0, β = 1, eq. 4).
2. **OAT phase**, each iteration alternating

   * **step 1** (eq. 5): −log p(x | γ⊙z1, z2) + β(t)·KL(q(z2|x) ‖ N(0, I))
     + Σ_i γ_i KL(q(z1_i|x) ‖ N(0, 1)), with β(t) rising linearly so that information moves
     from the expensive z2 into the active dimensions of z1;
   * **step 2** (eq. 6): take the code z = (z1, z2) ~ q(z|x) of step 1, replace *one active*
     z1 dimension per sample (chosen uniformly) by a prior draw c ~ N(0, 1), decode
     x̃ = sigmoid(dec(z̃)), re-encode x̃ and reconstruct the intervened code z̃ from it; an image
     discriminator D on the decoder output (real x vs. x̃) supplies the adversarial term that
     keeps x̃ on the data manifold (the JS divergence that replaces the KL of eq. 6).

   The current dimension is trained until its KL *saturates*; then γ switches on the next one.
   Switching stops when the KL of z2 reaches (numerically) zero: all factors have been peeled off.

Every piece of state — γ, the number of active dimensions, whether switching has stopped, the
phase, the running averages of the KLs used by the saturation test, the step at which each
dimension was switched on — lives in registered buffers, so checkpoints resume exactly, and the
data-dependent decisions are tensor operations on the device (``torch.where``): no host
synchronisation per step. The phase and β depend on the step count only; a host-side copy of
the step counter (re-read once after ``load_state_dict``) makes them free.

Choices where the paper is silent (each documented in :class:`OATConfig`):

* **Encoder sharing.** "φ1 and φ2 share weights for a set number of initial layers": one
  reference encoder (:class:`dlib.nets.Encoder`) with K + d outputs; z1 and z2 share every layer
  except their rows of the mean / log-variance heads. Decoder: the reference decoder on (z1, z2).
* **Inactive dimensions** (γ_i = 0) enter the decoder as 0 (the prior mean), so pre-training is
  exactly p(x | z2) of eq. 4; their posterior is reported as the prior (KL 0) and they get no
  gradient. :meth:`OAT.encode` returns this *effective* posterior, so traversals and metrics
  see inactive dimensions as constants.
* **β schedule.** β = 1 during pre-training (eq. 4), then linear from ``beta_start`` to
  ``beta_end`` over ``beta_ramp_steps`` and constant afterwards; the paper says only "increased
  linearly".
* **Code reconstruction** (first term of eq. 6): ``code_likelihood="unit"`` uses a unit-variance
  Gaussian, ½‖μ(x̃) − z̃‖² over the active z1 dimensions and z2 (as InfoGAN-CR's Q, whose
  discriminator OAT borrows); ``"posterior"`` uses −log q(z̃ | x̃) with the encoder's variance,
  which eq. 6 writes literally but which rewards shrinking the posterior variance without bound.
  The target z̃ is a sample (the "sleep" phase draws it), so no gradient flows into it.
* **Adversarial weight.** Eq. 6 multiplies the JS term by the same symbol β as step 1's z2
  pressure; coupling the GAN weight to a rising β would let it grow tenfold during training, so
  it gets its own constant ``adv_weight`` (1). Non-saturating GAN loss; D is InfoGAN-CR's
  (Lin et al. 2020) image discriminator with spectral normalisation, Adam 1e-4, (0.9, 0.999) as
  in the paper's appendix.
* **Order within an iteration:** step 1 update; then the intervention is decoded, D is updated on
  the detached x̃, and the encoder/decoder take the step-2 update through the *updated* D (as
  :class:`dlib.methods.FactorVAE` does). One ``train_step`` is one iteration (two
  encoder/decoder updates sharing one Adam, one D update).
* **Intervened dimension:** drawn per sample (not once per batch) — the same distribution,
  lower variance.
* **Saturation test:** every ``check_every`` OAT steps, the running average (EMA, decay
  ``kl_decay``) of the current dimension's KL is compared with its value at the previous check;
  it has saturated when it grew by no more than ``saturation_tol`` × max(previous,
  ``saturation_floor``) and the dimension has been active for at least ``min_dim_steps`` steps.
  A dimension that stays at KL ≈ 0 therefore "saturates" too, and the next one is tried.
* **Stopping rule:** switching stops for good once the running average of z2's total KL is
  below ``z2_zero_kl`` nats (the paper: "when the KL of z2 goes to zero"); training continues
  for the remaining steps with the dimensions found so far.
* **Network size** (the book's departure, not the paper's): ``width`` multiplies every channel
  and unit count of the encoder, decoder and D, and 32×32 images drop the first conv of the
  encoder and of D and the third transposed conv of the decoder (:mod:`dlib.nets`); the CPU
  scale of :mod:`dlib.scales` trains at width 0.5 on 32×32 images. ``width=1`` at 64×64 is the
  paper's networks.
* **Evaluation representation:** the posterior means of z1 (inactive dimensions constant 0);
  :meth:`OAT.represent_all` gives (z1, z2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlib.distributions import bernoulli_nll, gaussian_kl, reparameterise
from dlib.methods.base import Method, make_config, seeded
from dlib.nets import Decoder, Encoder

__all__ = [
    "OAT",
    "OATConfig",
    "ImageDiscriminator",
    "beta_schedule",
    "intervene",
    "saturation_rule",
    "z2_exhausted",
    "masked_kl",
    "schedule_for",
    "scripted_peeling",
    "peeling_report",
    "PEEL_HOLD",
]

PHASE_PRETRAIN, PHASE_OAT, PHASE_STOPPED = 0, 1, 2


@dataclass
class OATConfig:
    """Hyperparameters of OAT. Paper values: K = 10, d = 10 (Table 1), Adam 1e-4 for the VAE and
    for D with (0.9, 0.999), Bernoulli decoder, the Kim & Mnih networks. Every schedule number
    below is our choice (the paper gives none); :func:`schedule_for` scales them to a run length.
    """

    num_z1: int = 10  # K, upper bound on the number of disentangled dimensions
    num_z2: int = 10  # d, size of the entangled set
    arch: str = "conv"
    # multiplier of every channel/unit count of the encoder, decoder and D (the book's CPU
    # scale, :mod:`dlib.scales`; 1 = the paper's networks)
    width: float = 1.0
    pretrain_steps: int = 10_000
    beta_start: float = 1.0
    beta_end: float = 8.0
    beta_ramp_steps: int = 90_000
    code_weight: float = 1.0  # weight of the code reconstruction of step 2
    adv_weight: float = 1.0  # weight of the generator-side adversarial term of step 2
    code_likelihood: Literal["unit", "posterior"] = "unit"
    kl_decay: float = 0.99  # EMA decay of the running KL averages (≈ 100-step window)
    check_every: int = 1_000  # steps between saturation checks
    min_dim_steps: int = 4_500  # a dimension is trained at least this long before the next
    saturation_tol: float = 0.02  # relative KL growth per check below which it has saturated
    saturation_floor: float = 0.1  # nats; growth is relative to max(previous KL, this)
    # optional, off by default: a dimension also has to hold ``saturation_min_kl`` nats before it
    # counts as saturated, unless it has been on for ``max_dim_steps`` (then the next is tried)
    saturation_min_kl: float = 0.0
    max_dim_steps: int | None = None
    z2_zero_kl: float = 0.1  # nats; z2's total KL below this counts as zero (stop switching)
    lr: float = 1e-4
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999))
    adam_eps: float = 1e-8
    d_lr: float = 1e-4
    d_adam_betas: tuple[float, float] = field(default=(0.9, 0.999))
    seed: int = 0


# ---- the pure pieces (unit-tested on their own) ------------------------------------------------
def beta_schedule(step: int, pretrain_steps: int, beta_start: float, beta_end: float,
                  ramp_steps: int) -> float:
    """β on z2 for the step with index ``step``: 1 during pre-training (the plain ELBO of eq. 4),
    then linear from ``beta_start`` (at the first OAT step) to ``beta_end`` over ``ramp_steps``
    steps, constant afterwards."""
    if step < pretrain_steps:
        return 1.0
    if ramp_steps <= 0:
        return float(beta_end)
    frac = min(1.0, (step - pretrain_steps) / ramp_steps)
    return float(beta_start + (beta_end - beta_start) * frac)


def masked_kl(mean: Tensor, logvar: Tensor, mask: Tensor) -> Tensor:
    """γ_i · KL(N(μ_i, σ_i²) ‖ N(0, 1)) per sample and dimension, (B, K): eq. 5's masked sum
    before summing. Inactive dimensions contribute exactly 0 and no gradient."""
    return mask * gaussian_kl(mean, logvar)


def intervene(z1: Tensor, n_active: Tensor, generator: torch.Generator | None = None
              ) -> tuple[Tensor, Tensor, Tensor]:
    """Replace one active dimension of each row of ``z1`` (B, K) by a prior draw.

    The active dimensions are the first ``n_active`` (a 0-d tensor ≥ 1; γ switches them on in
    order). Returns (intervened codes, the chosen dimension per row (B,), the drawn values (B,)).
    Everything stays on the device: k = ⌊u · n_active⌋ with u ~ U[0, 1).
    """
    b, k_max = z1.shape
    u = torch.rand(b, device=z1.device, generator=generator)
    n = n_active.to(z1.device).clamp(min=1)
    k = torch.minimum((u * n).long(), n - 1)
    c = torch.randn(b, device=z1.device, dtype=z1.dtype, generator=generator)
    hit = torch.arange(k_max, device=z1.device)[None, :] == k[:, None]
    return torch.where(hit, c[:, None], z1), k, c


def saturation_rule(kl_now: Tensor, kl_prev: Tensor, steps_active: Tensor, n_active: Tensor,
                    stopped: Tensor, num_z1: int, tol: float, floor: float,
                    min_steps: int, min_kl: float = 0.0, max_steps: int | None = None) -> Tensor:
    """Whether to switch on the next z1 dimension (a bool tensor; no host synchronisation).

    True when the current dimension's running KL grew by at most ``tol · max(kl_prev, floor)``
    since the previous check, it has been active for ≥ ``min_steps`` steps, switching has not
    stopped, and a dimension is left. With ``min_kl`` > 0 the dimension must also hold that many
    nats (a dimension that stays near the prior has not "saturated", it has not started) — or
    have been on for ``max_steps`` steps, so that an empty dimension cannot block the rest.
    """
    saturated = (kl_now - kl_prev) <= tol * torch.clamp(kl_prev, min=floor)
    informative = kl_now >= min_kl
    if max_steps is not None:
        informative = informative | (steps_active >= max_steps)
    return (saturated & informative & (steps_active >= min_steps) & ~stopped
            & (n_active < num_z1))


def z2_exhausted(kl_z2: Tensor, threshold: float) -> Tensor:
    """The stopping rule: z2's (running) total KL has reached zero, i.e. is below ``threshold``."""
    return kl_z2 < threshold


# ---- networks ---------------------------------------------------------------------------------
class ImageDiscriminator(nn.Module):
    """InfoGAN-CR's discriminator (Lin et al. 2020) on 64×64 images: four 4×4 stride-2 convs
    (32, 32, 64, 64) and a dense 128 layer, leaky ReLU 0.2, spectral normalisation on every
    layer; one logit (real vs. generated).

    The book's CPU-scale departure (off by default): ``width`` multiplies every channel and unit
    count (``max(1, round(n·width))``), and 32×32 images drop the first conv, as
    :class:`dlib.nets.Encoder` does, so the remaining layers see the same 16, 8, 4 maps.
    ``image_size=64, width=1`` is exactly the paper's network.
    """

    def __init__(self, channels: int, image_size: int = 64, width: float = 1.0) -> None:
        super().__init__()
        if image_size not in (64, 32):
            raise ValueError(f"the discriminator takes 64×64 or 32×32 images, got {image_size}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        c1, c2, c3, c4, units = (max(1, round(n * width)) for n in (32, 32, 64, 64, 128))
        sn = nn.utils.parametrizations.spectral_norm
        first = ([sn(nn.Conv2d(channels, c1, 4, 2, 1)), nn.LeakyReLU(0.2)]  # 64x64 -> 32x32
                 if image_size == 64 else [])
        self.body = nn.Sequential(
            *first,
            sn(nn.Conv2d(c1 if first else channels, c2, 4, 2, 1)), nn.LeakyReLU(0.2),  # 16x16
            sn(nn.Conv2d(c2, c3, 4, 2, 1)), nn.LeakyReLU(0.2),        # 8x8
            sn(nn.Conv2d(c3, c4, 4, 2, 1)), nn.LeakyReLU(0.2),        # 4x4
            nn.Flatten(),
            sn(nn.Linear(c4 * 16, units)), nn.LeakyReLU(0.2),
            sn(nn.Linear(units, 1)),
        )
        self.image_size = int(image_size)

    def forward(self, x: Tensor) -> Tensor:
        size = (self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[2:]) != size:
            raise ValueError(f"the discriminator expects (B, C, {size[0]}, {size[1]}), "
                             f"got {tuple(x.shape)}")
        return self.body(x).squeeze(1)


# ---- the method ---------------------------------------------------------------------------------
class OAT(Method):
    """One-at-a-time factor learning: masked z1, entangled z2, interventions and a discriminator.
    """

    config: OATConfig

    def __init__(self, image_shape: tuple[int, int, int], config: OATConfig | None = None,
                 **overrides: Any) -> None:
        cfg = make_config(OATConfig, config, overrides)
        if cfg.num_z1 < 1 or cfg.num_z2 < 1:
            raise ValueError(f"num_z1 and num_z2 must be positive, got {cfg.num_z1}, {cfg.num_z2}")
        if cfg.pretrain_steps < 0 or cfg.beta_ramp_steps < 0:
            raise ValueError("pretrain_steps and beta_ramp_steps must be non-negative")
        if cfg.check_every < 1 or cfg.min_dim_steps < 0:
            raise ValueError("check_every must be positive and min_dim_steps non-negative")
        if cfg.saturation_min_kl < 0 or (cfg.max_dim_steps is not None
                                         and cfg.max_dim_steps < cfg.min_dim_steps):
            raise ValueError("saturation_min_kl must be ≥ 0 and max_dim_steps ≥ min_dim_steps")
        if not 0.0 <= cfg.kl_decay < 1.0:
            raise ValueError(f"kl_decay must be in [0, 1), got {cfg.kl_decay}")
        if cfg.code_likelihood not in ("unit", "posterior"):
            raise ValueError(f"code_likelihood must be 'unit' or 'posterior', "
                             f"got {cfg.code_likelihood!r}")
        super().__init__(cfg)
        self.image_shape = tuple(int(s) for s in image_shape)
        k, d = cfg.num_z1, cfg.num_z2
        with seeded(cfg.seed):
            self.encoder = Encoder(self.image_shape, k + d, cfg.arch, width=cfg.width)
            self.decoder = Decoder(self.image_shape, k + d, cfg.arch, width=cfg.width)
        with seeded(cfg.seed + 1):
            self.discriminator = ImageDiscriminator(self.image_shape[0], self.image_shape[2],
                                                    cfg.width)
        # --- the state of the OAT procedure (all buffers: saved in checkpoints, on the device)
        self.register_buffer("mask", torch.zeros(k))  # γ
        self.register_buffer("n_active", torch.zeros((), dtype=torch.long))
        self.register_buffer("stopped", torch.zeros((), dtype=torch.bool))
        self.register_buffer("phase", torch.zeros((), dtype=torch.long))
        self.register_buffer("kl_z1_ema", torch.zeros(k))  # running masked KL per z1 dimension
        self.register_buffer("kl_z2_ema", torch.zeros(()))  # running total KL of z2
        self.register_buffer("kl_check", torch.zeros(()))  # current dim's running KL, last check
        self.register_buffer("last_switch", torch.zeros((), dtype=torch.long))
        self.register_buffer("switch_steps", torch.full((k,), -1, dtype=torch.long))
        self.register_buffer("stop_step", torch.full((), -1, dtype=torch.long))
        self._host_step: int | None = None  # host copy of ``step``; re-read after loading

    # -- state handling -------------------------------------------------------------------------
    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """As ``nn.Module.load_state_dict``; the host copy of the step counter is re-read."""
        out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._host_step = None
        return out

    def sync_step(self) -> int:
        """Re-read the step counter from its buffer (one synchronisation); call it after setting
        ``step`` by hand."""
        self._host_step = int(self.step)
        return self._host_step

    def beta(self, step: int | None = None) -> float:
        """β on z2 at ``step`` (default: the next step to be taken)."""
        cfg = self.config
        s = self._host_step if step is None and self._host_step is not None else (
            int(self.step) if step is None else step)
        return beta_schedule(s, cfg.pretrain_steps, cfg.beta_start, cfg.beta_end,
                             cfg.beta_ramp_steps)

    # -- the model ------------------------------------------------------------------------------
    def _split(self, t: Tensor) -> tuple[Tensor, Tensor]:
        k = self.config.num_z1
        return t[:, :k], t[:, k:]

    def raw_posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The encoder's (mean, logvar) of all K + d dimensions, without the mask."""
        return self.encoder(x)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The *effective* posterior (mean, logvar), (B, K + d): inactive z1 dimensions are the
        prior N(0, 1) (mean 0, logvar 0), the others as the encoder says."""
        mean, logvar = self.encoder(x)
        gamma = torch.cat([self.mask, self.mask.new_ones(self.config.num_z2)])
        return mean * gamma, logvar * gamma

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits from (z1, z2), (B, K + d); inactive z1 dimensions are zeroed first."""
        gamma = torch.cat([self.mask, self.mask.new_ones(self.config.num_z2)])
        return self.decoder(z * gamma)

    @torch.no_grad()
    def represent(self, x: Tensor) -> Tensor:
        """The evaluated representation: the posterior means of z1 (B, K), inactive ones 0."""
        return self._split(self.encode(x)[0])[0]

    def encode_representation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The effective posterior (mean, logvar) of z1 alone, (B, K): the code the metrics
        score (:meth:`represent` is its mean), for scoring from codes encoded once."""
        mean, logvar = self.encode(x)
        return self._split(mean)[0], self._split(logvar)[0]

    @torch.no_grad()
    def represent_all(self, x: Tensor) -> Tensor:
        """The posterior means of (z1, z2), (B, K + d)."""
        return self.encode(x)[0]

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Pixel probabilities decoded from the posterior mean."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))

    # -- objectives -----------------------------------------------------------------------------
    def step1_terms(self, x: Tensor, beta: float, generator: torch.Generator | None = None
                    ) -> dict[str, Tensor]:
        """Eq. 5: −log p(x | γ⊙z1, z2) + β·KL(z2) + Σ γ_i KL(z1_i); returns the loss terms and
        the sampled code ``z`` (B, K + d) with inactive z1 dimensions zeroed."""
        mean, logvar = self.encoder(x)
        z = reparameterise(mean, logvar, generator)
        m1, m2 = self._split(mean)
        l1, l2 = self._split(logvar)
        z1, z2 = self._split(z)
        z = torch.cat([z1 * self.mask, z2], 1)
        recon = bernoulli_nll(self.decoder(z), x).mean()
        kl_z1_dims = masked_kl(m1, l1, self.mask).mean(0)
        kl_z2_dims = gaussian_kl(m2, l2).mean(0)
        kl_z1, kl_z2 = kl_z1_dims.sum(), kl_z2_dims.sum()
        loss = recon + beta * kl_z2 + kl_z1
        return {"loss_step1": loss, "recon": recon, "kl_z1": kl_z1, "kl_z2": kl_z2,
                "elbo": -(recon + kl_z1 + kl_z2), "kl_z1_dims": kl_z1_dims,
                "kl_z2_dims": kl_z2_dims, "z": z}

    def code_nll(self, x_tilde: Tensor, z_tilde: Tensor) -> Tensor:
        """First term of eq. 6 (negated): how badly the re-encoding of x̃ recovers z̃, summed over
        the active z1 dimensions and z2, averaged over the batch."""
        mean, logvar = self.encoder(x_tilde)
        gamma = torch.cat([self.mask, self.mask.new_ones(self.config.num_z2)])
        diff2 = (mean - z_tilde).pow(2)
        if self.config.code_likelihood == "unit":
            per = 0.5 * diff2
        else:
            per = 0.5 * (logvar + diff2 * torch.exp(-logvar) + math.log(2 * math.pi))
        return (per * gamma).sum(1).mean()

    def intervention(self, z: Tensor, generator: torch.Generator | None = None
                     ) -> tuple[Tensor, Tensor, Tensor]:
        """z̃ (one active z1 dimension per row replaced by a prior draw) from a detached copy of
        ``z``, and the decoded x̃ = sigmoid(dec(z̃)). Returns (z̃, x̃, chosen dimensions)."""
        z = z.detach()
        z1, z2 = self._split(z)
        z1_new, k, _ = intervene(z1, self.n_active, generator)
        z_tilde = torch.cat([z1_new * self.mask, z2], 1)
        return z_tilde, torch.sigmoid(self.decoder(z_tilde)), k

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """BCE(D(real), 1) + BCE(D(fake), 0) on *detached* fakes, and D's accuracy."""
        d_real, d_fake = self.discriminator(real), self.discriminator(fake.detach())
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
        return loss, acc

    def generator_adv(self, fake: Tensor) -> Tensor:
        """Non-saturating generator term BCE(D(x̃), 1); D's parameters get no gradient from it."""
        params = list(self.discriminator.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            d_fake = self.discriminator(fake)
        finally:
            for p, f in zip(params, flags, strict=True):
                p.requires_grad_(f)
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Step 1's terms at the current state (no update): ``loss`` is eq. 5 with the current β.
        """
        out = self.step1_terms(x, self.beta(), generator)
        out.pop("z")
        out["loss"] = out["loss_step1"]
        return out

    # -- optimisation ---------------------------------------------------------------------------
    def vae_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        return {
            "main": torch.optim.Adam(self.vae_parameters(), lr=cfg.lr,
                                     betas=tuple(cfg.adam_betas), eps=cfg.adam_eps),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=cfg.d_lr,
                                              betas=tuple(cfg.d_adam_betas)),
        }

    def start_oat(self, step: int) -> None:
        """Switch on the first z1 dimension (called before the first OAT step, index ``step``)."""
        self.mask.zero_()
        self.mask[0] = 1.0
        self.n_active.fill_(1)
        self.phase.fill_(PHASE_OAT)
        self.last_switch.fill_(step)
        self.switch_steps[0] = step
        self.kl_check.zero_()

    def update_running_kl(self, kl_z1_dims: Tensor, kl_z2: Tensor, first: bool) -> None:
        """EMA of the masked per-dimension KL of z1 and of z2's total KL (``first``: initialise)."""
        a = 0.0 if first else self.config.kl_decay
        self.kl_z1_ema.mul_(a).add_((1 - a) * kl_z1_dims.detach())
        self.kl_z2_ema.mul_(a).add_((1 - a) * kl_z2.detach())

    def apply_rules(self, steps_taken: int) -> None:
        """The stopping and switching rules, applied after ``steps_taken`` steps (on the device).

        First the stopping rule (z2's running KL ≈ 0 → no more dimensions), then the saturation
        rule on the current dimension; a switch takes effect from step ``steps_taken``.
        """
        cfg = self.config
        stop = ~self.stopped & z2_exhausted(self.kl_z2_ema, cfg.z2_zero_kl)
        self.stop_step.copy_(torch.where(stop, steps_taken, self.stop_step))
        self.stopped.logical_or_(stop)
        cur = (self.n_active - 1).clamp(min=0).view(1)
        kl_now = self.kl_z1_ema.index_select(0, cur).squeeze(0)
        switch = saturation_rule(kl_now, self.kl_check, steps_taken - self.last_switch,
                                 self.n_active, self.stopped, cfg.num_z1, cfg.saturation_tol,
                                 cfg.saturation_floor, cfg.min_dim_steps,
                                 cfg.saturation_min_kl, cfg.max_dim_steps)
        self.n_active.add_(switch.long())
        idx = torch.arange(cfg.num_z1, device=self.mask.device)
        self.mask.copy_((idx < self.n_active).to(self.mask.dtype))
        self.last_switch.copy_(torch.where(switch, steps_taken, self.last_switch))
        new = idx == (self.n_active - 1)
        self.switch_steps.copy_(torch.where(switch & new, steps_taken, self.switch_steps))
        kl_new = self.kl_z1_ema.index_select(0, (self.n_active - 1).view(1)).squeeze(0)
        self.kl_check.copy_(torch.where(switch, kl_new, kl_now))
        self.phase.copy_(torch.where(self.stopped, PHASE_STOPPED, PHASE_OAT))

    def train_step(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One iteration: step 1; in the OAT phase also D's update and step 2; then the rules."""
        if not self.optimizers:
            self.setup_optimizers()
        cfg = self.config
        step = self._host_step if self._host_step is not None else self.sync_step()
        oat = step >= cfg.pretrain_steps
        if step == cfg.pretrain_steps:
            self.start_oat(step)
        beta = self.beta(step)
        opt = self.optimizers["main"]
        # step 1: the ELBO with β on z2 and the masked KL on z1
        opt.zero_grad(set_to_none=True)
        s1 = self.step1_terms(x, beta, generator)
        s1["loss_step1"].backward()
        opt.step()
        z = s1.pop("z")
        self.update_running_kl(s1["kl_z1_dims"], s1["kl_z2"], first=step == 0)
        zero = s1["recon"].detach().new_zeros(())
        s2 = {"loss_step2": zero, "code_nll": zero, "g_adv": zero, "d_loss": zero,
              "d_accuracy": zero}
        if oat:
            # step 2: intervene, decode; D learns real vs. intervened images first
            z_tilde, x_tilde, _ = self.intervention(z, generator)
            d_opt = self.optimizers["discriminator"]
            d_opt.zero_grad(set_to_none=True)
            d_loss, d_acc = self.discriminator_loss(x, x_tilde)
            d_loss.backward()
            d_opt.step()
            # then encoder and decoder: reconstruct z̃ from x̃, fool the updated D
            opt.zero_grad(set_to_none=True)
            code = self.code_nll(x_tilde, z_tilde)
            adv = self.generator_adv(x_tilde)
            loss2 = cfg.code_weight * code + cfg.adv_weight * adv
            loss2.backward()
            opt.step()
            s2 = {"loss_step2": loss2, "code_nll": code, "g_adv": adv, "d_loss": d_loss,
                  "d_accuracy": d_acc}
        self.step += 1
        self._host_step = step + 1
        if oat and (step + 1 - cfg.pretrain_steps) % cfg.check_every == 0:
            self.apply_rules(step + 1)
        out = {k: v.detach() for k, v in {**s1, **s2}.items()}
        out["loss"] = out["loss_step1"] + out["loss_step2"]
        out["beta"] = zero + beta
        out["n_active"] = self.n_active.to(zero.dtype)
        out["stopped"] = self.stopped.to(zero.dtype)
        out["phase"] = self.phase.to(zero.dtype)
        out["kl_z2_running"] = self.kl_z2_ema.clone()
        return out


# ---- the rules on scripted KL curves (the chapter's picture) ------------------------------------
def scripted_peeling(steps: int = 4_000, factors: tuple[float, ...] = (3.5, 2.5, 1.5, 1.0),
                     num_z1: int = 6, rate: float = 0.004) -> dict[str, Any]:
    """Drive OAT's switching and stopping rules with scripted KL curves instead of a network.

    A toy world: factor i holds ``factors[i]`` nats. Once dimension i of z1 is switched on it
    absorbs factor i at a speed that grows with β, dKL_i = rate · (β − ½) · (factor_i − KL_i)
    per step, and z2 holds what the active dimensions have not taken. The rules (the method's
    own :meth:`OAT.apply_rules`, on :func:`schedule_for` (``steps``)) see only these curves.
    Returns the curves (``kl_z1`` (steps, K), ``kl_z2``, ``n_active``, ``beta``) and ``method``.
    """
    opts = schedule_for(steps, num_z1=num_z1)
    m = OAT((1, 64, 64), num_z1=num_z1, num_z2=1, **opts)
    pre, check = opts["pretrain_steps"], opts["check_every"]
    kl1 = np.zeros((steps, num_z1))
    kl2 = np.zeros(steps)
    n_active = np.zeros(steps, dtype=int)
    beta = np.array([m.beta(t) for t in range(steps)])
    m.start_oat(pre)
    nf = min(len(factors), num_z1)
    target = np.asarray(factors[:nf], dtype=float)
    for t in range(steps):
        n = int(m.n_active) if t >= pre else 0
        if t > 0:
            kl1[t] = kl1[t - 1]
        on = min(n, nf)
        kl1[t, :on] += rate * (beta[t] - 0.5) * (target[:on] - kl1[t, :on])
        kl2[t] = float(np.sum(factors)) - kl1[t, :nf].sum()
        n_active[t] = n
        if t >= pre:
            m.kl_z1_ema.copy_(torch.as_tensor(kl1[t], dtype=torch.float32) * m.mask)
            m.kl_z2_ema.fill_(float(kl2[t]))
            if (t + 1 - pre) % check == 0:
                m.apply_rules(t + 1)
    return {"kl_z1": kl1, "kl_z2": kl2, "n_active": n_active, "beta": beta, "method": m}


#: nats a newly switched-on z1 dimension must hold before the next one is switched on, for a
#: run to count as peeling (a dimension at 0.5 nats has clearly left the prior; one factor of
#: dSprites at 32 values carries up to log 32 ≈ 3.5 nats)
PEEL_HOLD = 0.5


def peeling_report(steps: Any, kl_z1: Any, switch_steps: Any, hold: float = PEEL_HOLD
                   ) -> dict[str, Any]:
    """Did information move into z1 one dimension at a time? Read from a run's trace.

    ``steps`` (T,) and ``kl_z1`` (T, K) are the logged steps and per-dimension KL of z1;
    ``switch_steps`` (K,) the step at which each dimension was switched on (−1: never; the
    method's ``switch_steps``). For every switched-on dimension but the last, the KL it held at
    the last logged step before the next one was switched on (``held``), that as a share of its
    KL at the end (``share``), and whether it reached ``hold`` nats by then. The run *peels*
    when every such dimension did (and at least two were switched on): the alternative the
    check must catch is many dimensions switched on early, each holding a fraction of a nat.
    """
    steps = np.asarray(steps)
    kl = np.asarray(kl_z1, dtype=float)
    if kl.ndim != 2 or len(kl) != len(steps) or len(steps) == 0:
        raise ValueError(f"kl_z1 must be (T, K) with T = len(steps), got {kl.shape} and "
                         f"{steps.shape}")
    switch = np.asarray(switch_steps).astype(int)
    if switch.shape != (kl.shape[1],):
        raise ValueError(f"switch_steps must have one entry per z1 dimension ({kl.shape[1]}), "
                         f"got {switch.shape}")
    on = [int(i) for i in np.argsort(np.where(switch >= 0, switch, np.iinfo(int).max),
                                      kind="stable") if switch[i] >= 0]
    rows = []
    for a, b in zip(on[:-1], on[1:], strict=True):
        before = np.flatnonzero(steps < switch[b])
        held = float(kl[before[-1], a]) if len(before) else 0.0
        final = float(kl[-1, a])
        rows.append({"dim": a, "on": int(switch[a]), "next_on": int(switch[b]), "held": held,
                     "share": held / final if final > 0 else float("nan"),
                     "ok": held >= hold})
    return {"order": on, "rows": rows, "hold": hold,
            "peels": len(on) >= 2 and all(r["ok"] for r in rows),
            "final_kl": kl[-1].tolist()}


# ---- a schedule for a run length ------------------------------------------------------------
def schedule_for(steps: int, num_z1: int = 10) -> dict[str, int]:
    """Schedule options for a run of ``steps`` iterations (the paper gives none).

    10 % pre-training (long enough for the VAE's KL to rise well above the stopping threshold:
    early in training a VAE's KL is near zero, which the stopping rule would read as "z2 is
    empty"); β ramped over the remaining 90 %; a saturation check every 1 % of the run; and each
    z1 dimension trained for at least max(2 checks, OAT phase / (2 K)), so that the K dimensions
    cannot all be switched on early in the ramp, while β is still too small to push information
    out of z2 (with a flat KL a new dimension would look "saturated" at once).
    """
    if steps < 1 or num_z1 < 1:
        raise ValueError(f"steps and num_z1 must be positive, got {steps}, {num_z1}")
    pre = steps // 10
    check = max(1, steps // 100)
    return {"pretrain_steps": pre, "beta_ramp_steps": max(1, steps - pre),
            "check_every": check,
            "min_dim_steps": max(2 * check, (steps - pre) // (2 * num_z1))}
