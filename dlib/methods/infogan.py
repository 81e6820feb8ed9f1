"""InfoGAN (Chen et al. 2016) and InfoWGAN-GP (Kim & Mnih 2018, Appendix G–H).

The generator maps z = (c, ε) — continuous codes c_j ~ U[−1, 1], one categorical code with J
categories and noise ε ~ N(0, I) — to an image. A network Q that shares the discriminator's
convolutional trunk predicts the codes back from the image, and

    L(G, Q) = E_{p(c) p(ε)} [ log Q(c | G(c, ε)) ]

(a variational lower bound on I(c; G(c, ε)) up to the entropy of c) is maximised by G and Q with
weight λ, on top of the adversarial game:

* ``"gan"`` (InfoGAN): D outputs a logit; D minimises BCE(D(x), 1) + BCE(D(G(z)), 0), G the
  non-saturating BCE(D(G(z)), 1);
* ``"wgan-gp"`` (InfoWGAN-GP): a critic; it minimises E D(G(z)) − E D(x) + η (‖∇D(x̂)‖₂ − 1)²
  at random interpolates x̂ of real and (detached) fake images, G minimises −E D(G(z)).

Architecture (FactorVAE paper, Table 5): G: FC 128, FC 4·4·64, three 4×4 up-convolutions
(64, 32, 32) and a last one to C channels; D/Q: four 4×4 convolutions (32, 32, 64, 64), FC 128,
then D's FC 1 and Q's FC 128 → (mean, log-std) per continuous code and J categorical logits.
Batch normalisation as in the table; for WGAN-GP the critic has none in its convolutions and
layer normalisation in its FC layer (a gradient penalty per sample is meaningless with batch
statistics). Adam with β = (0.5, 0.999), lr 1e-3 for G and 1e-4 for D/Q.

Where the normalisation goes. The table writes each layer as "FC. 128 lReLU. batchnorm"; we
normalise *before* the activation (layer → norm → activation), as DCGAN and the usual InfoGAN
code do. Read literally (activation, then batch norm, then D's output layer), D cannot work: in
training mode a batch norm's outputs average to its shift β over the batch, so the mean logit of
an affine output layer on a batch is the same constant for *every* batch, and a discriminator
shown real and fake images in separate batches cannot score one batch higher than the other.
Its loss then sits at 2 log 2 and the generator gets no adversarial signal; this book's first
CPU-scale InfoGAN run did exactly that (its result is kept in
``book/results/cpu_scale/collapsed/``).

Network size (the book's departure, not the paper's): ``width`` multiplies every channel and
unit count of G and D/Q, and 32×32 images drop G's third up-convolution and D's first
convolution (as :mod:`dlib.nets` does for the VAEs); the CPU scale of :mod:`dlib.scales` trains
at width 0.5 on 32×32 images. ``width=1`` at 64×64 is the table's networks.

Holds :class:`InfoGANConfig`, :class:`Generator`, :class:`DiscriminatorQ`,
:func:`info_log_likelihood`, :func:`gradient_penalty` and :class:`InfoGAN`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlib.methods.base import Method, make_config, seeded


@dataclass
class InfoGANConfig:
    """InfoGAN / InfoWGAN-GP with the FactorVAE paper's 2D Shapes (dSprites) networks, codes and
    learning rates; λ = 1 is the value of its training-curve figures (its λ sweep over
    {0, 0.1, …, 1} found 0.2 best on 2D Shapes)."""

    variant: Literal["gan", "wgan-gp"] = "wgan-gp"
    num_continuous: int = 4
    num_categories: int = 3  # one categorical code; 0 for none
    num_noise: int = 5
    info_weight: float = 1.0  # λ
    gp_weight: float = 10.0  # η (WGAN-GP only)
    lr: float = 1e-3  # generator
    d_lr: float = 1e-4  # discriminator / critic and Q
    adam_betas: tuple[float, float] = field(default=(0.5, 0.999))
    # multiplier of every channel and unit count of G and D/Q (the book's CPU scale,
    # :mod:`dlib.scales`); 1 = the paper's networks
    width: float = 1.0
    seed: int = 0


def _scaled(n: int, width: float) -> int:
    """``n`` channels or units at ``width``: ``max(1, round(n·width))`` (``n`` at width 1)."""
    return max(1, round(n * width))


def _check_size(image_size: int, width: float) -> None:
    if image_size not in (64, 32) or not width > 0:
        raise ValueError(f"need 64×64 or 32×32 images and a positive width, got {image_size}, "
                         f"{width!r}")


class Generator(nn.Module):
    """z (B, latent) → image probabilities (B, C, S, S) (Table 5 of the FactorVAE paper at
    S = 64). The book's CPU-scale departure: at S = 32 the third up-convolution is dropped, and
    ``width`` scales every layer."""

    def __init__(self, latent: int, channels: int, image_size: int = 64,
                 width: float = 1.0) -> None:
        super().__init__()
        _check_size(image_size, width)
        c1, c2, units = _scaled(32, width), _scaled(64, width), _scaled(128, width)
        layers: list[nn.Module] = [
            nn.Linear(latent, units), nn.BatchNorm1d(units), nn.ReLU(),
            nn.Linear(units, 4 * 4 * c2), nn.BatchNorm1d(4 * 4 * c2), nn.ReLU(),
            nn.Unflatten(1, (c2, 4, 4)),
            nn.ConvTranspose2d(c2, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.LeakyReLU(0.2),  # 8x8
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.BatchNorm2d(c1), nn.LeakyReLU(0.2),  # 16x16
        ]
        if image_size == 64:  # built in order: the same random initialisation as the table's
            layers += [nn.ConvTranspose2d(c1, c1, 4, 2, 1), nn.BatchNorm2d(c1),
                       nn.LeakyReLU(0.2)]                                                # 32x32
        layers += [nn.ConvTranspose2d(c1, channels, 4, 2, 1), nn.Sigmoid()]  # 2x the size
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)


class DiscriminatorQ(nn.Module):
    """Image → (D's output (B,), Q's continuous means and log-stds (B, K) each, logits (B, J)).

    The book's CPU-scale departure: at 32×32 the first convolution is dropped and the next one
    takes its place as the unnormalised input layer; ``width`` scales every layer.
    """

    def __init__(self, channels: int, num_continuous: int, num_categories: int,
                 wgan: bool, image_size: int = 64, width: float = 1.0) -> None:
        super().__init__()
        _check_size(image_size, width)

        def norm2d(c: int) -> nn.Module:
            return nn.Identity() if wgan else nn.BatchNorm2d(c)

        c1, c2, units = _scaled(32, width), _scaled(64, width), _scaled(128, width)
        if image_size == 64:
            first = [nn.Conv2d(channels, c1, 4, 2, 1), nn.LeakyReLU(0.2),              # 32x32
                     nn.Conv2d(c1, c1, 4, 2, 1), norm2d(c1), nn.LeakyReLU(0.2)]        # 16x16
        else:  # no normalisation on the input layer, as at 64x64
            first = [nn.Conv2d(channels, c1, 4, 2, 1), nn.LeakyReLU(0.2)]              # 16x16
        self.trunk = nn.Sequential(
            *first,
            nn.Conv2d(c1, c2, 4, 2, 1), norm2d(c2), nn.LeakyReLU(0.2),          # 8x8
            nn.Conv2d(c2, c2, 4, 2, 1), norm2d(c2), nn.LeakyReLU(0.2),          # 4x4
            nn.Flatten(),
            nn.Linear(c2 * 16, units),
            nn.LayerNorm(units) if wgan else nn.BatchNorm1d(units), nn.LeakyReLU(0.2),
        )
        self.d_head = nn.Linear(units, 1)
        self.q_head = nn.Sequential(
            nn.Linear(units, units),
            nn.LayerNorm(units) if wgan else nn.BatchNorm1d(units), nn.LeakyReLU(0.2),
            nn.Linear(units, 2 * num_continuous + num_categories),
        )
        self.k = num_continuous

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h = self.trunk(x)
        q = self.q_head(h)
        k = self.k
        return self.d_head(h).squeeze(1), q[:, :k], q[:, k : 2 * k], q[:, 2 * k :]


def info_log_likelihood(
    c_cont: Tensor, c_cat: Tensor | None, mean: Tensor, log_std: Tensor, logits: Tensor
) -> Tensor:
    """log Q(c | x) averaged over the batch: Gaussian on the continuous codes (summed over codes)
    plus the categorical log-probability of the drawn category."""
    gauss = -0.5 * ((c_cont - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    ll = gauss.sum(1)
    if c_cat is not None:
        ll = ll - F.cross_entropy(logits, c_cat, reduction="none")
    return ll.mean()


def gradient_penalty(
    critic: Any, real: Tensor, fake: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """E[(‖∇ₓ D(x̂)‖₂ − 1)²] at x̂ = π·real + (1 − π)·fake, π ~ U[0, 1] per sample."""
    pi = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device,
                    generator=generator)
    x_hat = (pi * real + (1 - pi) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class InfoGAN(Method):
    """InfoGAN (``variant="gan"``) or InfoWGAN-GP (``variant="wgan-gp"``)."""

    config: InfoGANConfig

    def __init__(
        self, image_shape: tuple[int, int, int], config: InfoGANConfig | None = None,
        **overrides: Any,
    ) -> None:
        cfg = make_config(InfoGANConfig, config, overrides)
        if cfg.variant not in ("gan", "wgan-gp"):
            raise ValueError(f"variant must be 'gan' or 'wgan-gp', got {cfg.variant!r}")
        if cfg.num_continuous < 1 or cfg.num_categories < 0 or cfg.num_noise < 0:
            raise ValueError("need at least one continuous code and non-negative sizes")
        if not cfg.width > 0:
            raise ValueError(f"width must be positive, got {cfg.width!r}")
        super().__init__(cfg)
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 3 or self.image_shape[1:] not in ((64, 64), (32, 32)):
            raise ValueError(f"InfoGAN expects 64×64 (or 32×32) images, got {self.image_shape}")
        self.latent_dim = cfg.num_continuous + cfg.num_categories + cfg.num_noise
        c, size = self.image_shape[0], self.image_shape[1]
        with seeded(cfg.seed):
            self.generator = Generator(self.latent_dim, c, size, cfg.width)
            self.discriminator = DiscriminatorQ(
                c, cfg.num_continuous, cfg.num_categories, wgan=cfg.variant == "wgan-gp",
                image_size=size, width=cfg.width,
            )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        return {
            "main": torch.optim.Adam(self.generator.parameters(), lr=cfg.lr,
                                     betas=tuple(cfg.adam_betas)),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=cfg.d_lr,
                                              betas=tuple(cfg.adam_betas)),
        }

    def sample_latents(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """(c_cont ~ U[−1, 1]^K, c_cat ~ U{0..J−1} or None, z = [c_cont, onehot(c_cat), ε])."""
        cfg = self.config
        dev = next(self.parameters()).device
        c_cont = torch.rand(n, cfg.num_continuous, device=dev, generator=generator) * 2 - 1
        parts = [c_cont]
        c_cat = None
        if cfg.num_categories:
            c_cat = torch.randint(cfg.num_categories, (n,), device=dev, generator=generator)
            parts.append(F.one_hot(c_cat, cfg.num_categories).float())
        parts.append(torch.randn(n, cfg.num_noise, device=dev, generator=generator))
        return c_cont, c_cat, torch.cat(parts, 1)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.generator(self.sample_latents(n, generator)[2])

    @torch.no_grad()
    def calibrate_representation(self, images: Tensor, batch_size: int = 256,
                                 max_images: int = 10_000, seed: int = 0) -> int:
        """Re-estimate D/Q's batch-norm statistics on real images alone; returns how many
        images it used.

        Training shows D real and generated images in separate batches, so its running means
        and variances average two populations; a discriminator that separates them well keeps
        them far apart (this book's CPU-scale InfoGAN in eval mode gave real images D = 0.01 and
        fakes 0.98, the reverse of its batch statistics' 0.90 and 0.11). Q's code of a real
        image (:meth:`represent`, in eval mode) must be read through real images' statistics:
        up to ``max_images`` images in a fixed random order (``seed``) pass through D/Q in
        training mode with a cumulative average (``momentum=None``), nothing else changes.
        A critic without batch norm (InfoWGAN-GP) is left as it is (returns 0).
        """
        norms = [m for m in self.discriminator.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return 0
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"images must be (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(images.shape)}")
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(images.shape[0], generator=g)[:max_images].to(images.device)
        dev = next(self.discriminator.parameters()).device

        def batch(i: int) -> Tensor:  # stored uint8 images become floats one batch at a time
            x = images[order[i:i + batch_size]].to(dev)
            return x.float() / 255 if x.dtype == torch.uint8 else x

        momenta = [m.momentum for m in norms]
        was_training = self.discriminator.training
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over every batch below
        self.discriminator.train()
        try:
            for start in range(0, len(order), batch_size):
                self.discriminator(batch(start))
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            self.discriminator.train(was_training)
        return int(len(order))

    @torch.no_grad()
    def represent(self, x: Tensor) -> Tensor:
        """Q's means of the continuous codes, then the most likely category (as a float).
        Score real images after :meth:`calibrate_representation` (the studies' evaluators do)."""
        _, mean, _, logits = self.discriminator(x)
        if self.config.num_categories:
            return torch.cat([mean, logits.argmax(1, keepdim=True).float()], 1)
        return mean

    def _d_real_fake(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        if self.config.variant == "gan":
            return F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
                F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        return d_fake.mean() - d_real.mean()

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The generator's loss terms on a fresh draw of latents (for evaluation)."""
        c_cont, c_cat, z = self.sample_latents(x.shape[0], generator)
        d_fake, mean, log_std, logits = self.discriminator(self.generator(z))
        info = info_log_likelihood(c_cont, c_cat, mean, log_std, logits)
        if self.config.variant == "gan":
            adv = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        else:
            adv = -d_fake.mean()
        return {"loss": adv - self.config.info_weight * info, "g_adv": adv, "info": info}

    def train_step(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        if not self.optimizers:
            self.setup_optimizers()
        cfg = self.config
        # 1) discriminator/critic and Q: adversarial loss + λ·(−L) on detached fakes
        c_cont, c_cat, z = self.sample_latents(x.shape[0], generator)
        fake = self.generator(z).detach()
        d_real = self.discriminator(x)[0]
        d_fake, mean, log_std, logits = self.discriminator(fake)
        d_adv = self._d_real_fake(d_real, d_fake)
        info_d = info_log_likelihood(c_cont, c_cat, mean, log_std, logits)
        d_loss = d_adv - cfg.info_weight * info_d
        out: dict[str, Tensor] = {}
        if cfg.variant == "wgan-gp":
            gp = gradient_penalty(lambda t: self.discriminator(t)[0], x, fake, generator)
            d_loss = d_loss + cfg.gp_weight * gp
            out["gradient_penalty"] = gp.detach()
            out["wasserstein"] = (d_real.mean() - d_fake.mean()).detach()
        else:
            acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
            out["d_accuracy"] = acc.detach()
        d_opt = self.optimizers["discriminator"]
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        # 2) generator: adversarial loss − λ·L through the updated D/Q
        g_terms = self.terms(x, generator)
        g_opt = self.optimizers["main"]
        g_opt.zero_grad(set_to_none=True)
        g_terms["loss"].backward()
        g_opt.step()
        self.step += 1
        out.update({k: v.detach() for k, v in g_terms.items()})
        out["d_loss"] = d_loss.detach()
        return out


def batch_separation_check(norm_first: bool, *, features: int = 128, hidden: int = 32,
                           steps: int = 200, seed: int = 0) -> tuple[float, float]:
    """Train a one-hidden-layer discriminator to tell two batches apart (features shifted by 1),
    seen in separate batches as a GAN sees real and fake images; return the final gap of mean
    logits (real − fake) and the loss.

    With ``norm_first=False`` (layer → activation → batch norm → output, the FactorVAE paper's
    table read literally) the mean logit of every batch is fixed by the norm's shift, so the gap
    stays 0 and the loss at chance, 2 log 2; with ``norm_first=True`` the batches separate.
    """
    torch.manual_seed(seed)
    body = ([nn.Linear(features, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2)]
            if norm_first else
            [nn.Linear(features, hidden), nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden)])
    d = nn.Sequential(*body, nn.Linear(hidden, 1))
    real, fake = torch.randn(64, features) + 1.0, torch.randn(64, features)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    for _ in range(steps):
        d_real, d_fake = d(real).squeeze(1), d(fake).squeeze(1)  # separate batches
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (d_real.mean() - d_fake.mean()).item(), loss.item()


def squares_and_noise(n: int, size: int = 32, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` "real" images (a white 8×8 square at a random place on black: sprite-like) and
    ``n`` "fake" ones (uniform grey noise), ``(n, 1, size, size)`` each: two populations a
    discriminator tells apart in a few dozen steps, for the checks below and the tests."""
    g = torch.Generator().manual_seed(seed)
    real = torch.zeros(n, 1, size, size)
    for i in range(n):
        r, c = torch.randint(0, size - 8, (2,), generator=g).tolist()
        real[i, :, r:r + 8, c:c + 8] = 1.0
    return real, torch.rand(n, 1, size, size, generator=g)


def running_statistics_check(steps: int = 60, seed: int = 0) -> dict[str, dict[str, float]]:
    """Why InfoGAN is scored after :meth:`InfoGAN.calibrate_representation`.

    Trains a half-width D/Q on :func:`squares_and_noise` with real and fake in separate batches
    (as :meth:`InfoGAN.train_step` does), then reads the 256 real images three ways: with their
    own batch statistics (training mode), with the running statistics training left (eval
    mode: an average of real and fake batches) and in eval mode after calibration. Returns, per
    way, D's mean probability that the real images are real and the mean absolute difference
    of Q's continuous code from the batch-statistics code.
    """
    real, fake = squares_and_noise(256, seed=seed)
    m = InfoGAN((1, 32, 32), variant="gan", width=0.5, seed=seed)
    d = m.discriminator
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    for step in range(steps):
        batch = slice(32 * (step % 8), 32 * (step % 8 + 1))
        loss = m._d_real_fake(d(real[batch])[0], d(fake[batch])[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        d.train()
        logit, want, _, _ = d(real)
        out["batch statistics"] = {"d_real": torch.sigmoid(logit).mean().item(), "code_gap": 0.0}
        for way in ("running statistics", "calibrated"):
            if way == "calibrated":
                m.calibrate_representation(real)
            d.eval()
            logit, code, _, _ = d(real)
            out[way] = {"d_real": torch.sigmoid(logit).mean().item(),
                        "code_gap": (code - want).abs().mean().item()}
    return out
