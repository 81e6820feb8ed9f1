"""The intervention-based framework for correlated factors (seed 002, "Unsupervised
disentanglement learning by intervention").

A deterministic autoencoder (Enc, Dec) with K_Z features of D_Z dimensions each is trained with

    min_{W, Enc, Dec} max_{Disc}  L_rec + λ1 L_in + λ2 L_adv + λ3 L_diff          (paper Eq. 3)

* **Intervention I1**: for an image x, an independent image x^r and a feature index k (drawn
  independently per example), replace feature k of z = Enc(x) by that of z^r = Enc(x^r) and
  decode: x̃ = x̂(Z_k = z^r_k). This samples the *intervened* distribution ṗ_X of Eq. (1).
* **Intervention I2**: encode x̃, put feature k back to z_k and decode: x̂(Ẑ_k = z_k). By
  Proposition 1 this must give x back: ``L_in = E crossentropy(x, x̂(Ẑ_k = z_k))``.
* **Weighted adversarial loss**: when the factors are correlated, ṗ_X ≠ p_X, and matching
  them would force the decoder to produce combinations the data never shows. A weight
  network W (≥ 0, an ``exp`` output) learns the density ratio p_X / ṗ_X (Proposition 2):

      L_adv = E[ log Disc(x̂) ] + E[ W(x̃) / N · log(1 − Disc(x̃)) ],   N = E[W(x̃)],

  where the reconstructions x̂ = Dec(Enc(x)) play the real images and the intervened x̃ the
  fakes. N is the batch mean of W(x̃), kept *inside* the graph, so the normalised weights
  average exactly 1 in every batch: W can redistribute weight but cannot shrink it to zero.
  With W ≡ const the term is the ordinary (unweighted) GAN value function.
* **L_diff**: Algorithm 1's held-out image-translation loss (:mod:`dlib.metrics.translation`)
  on decoded pairs, differentiated into Enc and Dec.

One :meth:`Intervention.train_step` makes three optimiser steps, each on its own parameters:
(1) Disc ascends L_adv on detached images and detached weights, (2) W descends L_adv's
weighted term with the updated Disc, (3) Enc and Dec descend the full objective with Disc and W
frozen (their parameters get no gradient). The paper does not give this order; we follow
:class:`dlib.methods.factor.FactorVAE` (critic first, then the players that use it).

Choices where the paper is silent, with the argument for each (see also the chapter):

* Architecture: Tables 4–5 of the paper (4×4 convs 32-32-64-64, dense 128, K_Z·D_Z; mirrored
  decoder; critic and weight network share the encoder's body). The tables print "FC. 128."
  without an activation; we put a ReLU after it (two stacked linear maps would collapse into
  one). The decoder returns logits (the paper's sigmoid is applied inside the cross-entropy,
  which is the same function, computed stably).
* Cross-entropies are sums over pixels averaged over the batch (the library's convention and
  the scale at which λ2 = 10 makes the adversarial term a fraction of the reconstruction).
* The adversarial value function is the paper's minimax form (``gan_loss="minimax"``); the
  usual non-saturating variant is offered (``"nonsaturating"``). In both, gradients from L_adv
  reach Enc and Dec through the real *and* the fake images and through W's input, as the
  paper's min over (W, Enc, Dec) says.
* W's last layer starts at zero, so every weight starts at exactly 1 (L_adv starts as the
  unweighted GAN loss); its pre-``exp`` output is clamped to ±``w_clamp`` so an over-confident
  W cannot overflow.
* L_diff uses one feature k and one pair of values (a, b) per step (drawn from the batch's
  codes), D = the x batch and D̃ = the x^r batch, s = ``diff_steps`` inner steps from a fixed
  stored initialisation of M; ``diff_unroll=False`` (default) back-propagates through the
  held-out pairs only (the first-order approximation, as in first-order MAML), ``True``
  through the whole inner loop.
* Network size (the book's departure, not the paper's): ``width`` multiplies every channel and
  unit count (``hidden`` and M's channels too), and 32×32 images drop the first conv of Enc,
  Disc and W and the decoder's third transposed conv, as :mod:`dlib.nets` does; the CPU scale
  of :mod:`dlib.scales` trains at width 0.5 on 32×32 images. ``width=1`` at 64×64 is the
  paper's networks.
* Initialisation: Glorot-uniform weights and zero biases (TensorFlow's default, as the
  library's other networks), except the zero heads named above.
* Learning rates are the paper's (Enc/Dec/Disc 1e-4, W 1e-5); the Adam betas are not given,
  PyTorch's defaults are used for all four.

Holds :class:`InterventionConfig`, :class:`PaperEncoder`, :class:`PaperDecoder`,
:class:`ImageCritic`, :func:`intervene`, :func:`normalised_weights`,
:func:`weighted_adversarial_value`, :func:`intervened_distribution`, :func:`density_ratio` and
:class:`Intervention`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlib.distributions import bernoulli_nll
from dlib.methods.base import Method, make_config, seeded
from dlib.metrics.translation import (
    TranslationNet,
    held_out_translation_loss,
    set_feature,
    translation_pairs,
)
from dlib.nets import init_weights

__all__ = [
    "InterventionConfig",
    "Intervention",
    "LAMBDAS",
    "LAMBDAS_DSPRITES",
    "LAMBDAS_SHAPES3D",
    "LAMBDAS_CMNIST",
    "LAMBDAS_FLOWERS",
    "PaperEncoder",
    "PaperDecoder",
    "ImageCritic",
    "intervene",
    "normalised_weights",
    "weighted_adversarial_value",
    "intervened_distribution",
    "density_ratio",
]

# ---- the paper's λ settings (Appendix C): (λ1 for L_in, λ2 for L_adv, λ3 for L_diff) --------
LAMBDAS_DSPRITES: tuple[float, float, float] = (0.25, 10.0, 1.0)
LAMBDAS_SHAPES3D: tuple[float, float, float] = (0.25, 10.0, 1.0)
LAMBDAS_CMNIST: tuple[float, float, float] = (1.0, 10.0, 1.0)
LAMBDAS_FLOWERS: tuple[float, float, float] = (1.0, 100.0, 1.0)
LAMBDAS: dict[str, tuple[float, float, float]] = {
    "dsprites": LAMBDAS_DSPRITES,
    "shapes3d": LAMBDAS_SHAPES3D,
    "cmnist": LAMBDAS_CMNIST,
    "flowers102": LAMBDAS_FLOWERS,
}
"""λ1, λ2 were chosen by the authors with λ3 = 0 and L_diff as the selection metric, then the
final model was trained with λ3 = 1 (Appendix C). ``lambda_diff=0`` reproduces the first stage.
"""


@dataclass
class InterventionConfig:
    """Hyperparameters; defaults are the paper's dSprites/3DShapes settings where it gives them."""

    num_features: int = 10  # K_Z
    feature_dim: int = 1  # D_Z
    lambda_in: float = LAMBDAS_DSPRITES[0]
    lambda_adv: float = LAMBDAS_DSPRITES[1]
    lambda_diff: float = LAMBDAS_DSPRITES[2]
    gan_loss: str = "minimax"  # or "nonsaturating"
    lr: float = 1e-4  # encoder and decoder
    d_lr: float = 1e-4  # discriminator
    w_lr: float = 1e-5  # weight network
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999))
    adam_eps: float = 1e-8
    w_clamp: float = 10.0
    diff_steps: int = 5  # s of Algorithm 1 inside training (our choice)
    diff_lr: float = 1.0  # α of Algorithm 1 (plain gradient descent, per-pixel mean loss)
    diff_unroll: bool = False
    hidden: int = 128
    # multiplier of every channel and unit count of Enc, Dec, Disc, W and M (``hidden`` too):
    # the book's CPU scale (:mod:`dlib.scales`); 1 = the paper's networks
    width: float = 1.0
    seed: int = 0


def _scaled(n: int, width: float) -> int:
    """``n`` channels or units at ``width``: ``max(1, round(n·width))`` (``n`` at width 1)."""
    return max(1, round(n * width))


def _conv_body(c: int, image_size: int = 64, width: float = 1.0) -> nn.Sequential:
    """Four 4×4 stride-2 convolutions 32-32-64-64 with ReLU, flattened (Tables 4–5); at 32×32
    the first is dropped (the others see the same 16, 8, 4 maps), ``width`` scales the channels.
    """
    c1, c2 = _scaled(32, width), _scaled(64, width)
    first = [nn.Conv2d(c, c1, 4, 2, 1), nn.ReLU()] if image_size == 64 else []  # 64 -> 32
    return nn.Sequential(
        *first,
        nn.Conv2d(c1 if first else c, c1, 4, 2, 1), nn.ReLU(),  # 32x32 -> 16x16
        nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),  # 16x16 -> 8x8
        nn.Conv2d(c2, c2, 4, 2, 1), nn.ReLU(),  # 8x8 -> 4x4
        nn.Flatten(),
    )


def _check_image_shape(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    c, h, w = (int(s) for s in image_shape)
    if h != w or h not in (64, 32) or c < 1:
        raise ValueError(f"the paper's networks expect (C, 64, 64) images (or (C, 32, 32) at the "
                         f"CPU scale), got {image_shape!r}")
    return c, h, w


def _check_width(width: float) -> float:
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return float(width)


class PaperEncoder(nn.Module):
    """Table 4's encoder: image → deterministic code (B, K_Z·D_Z).

    ``width`` (channels and ``hidden`` units scaled) and 32×32 images (first conv dropped) are
    the book's CPU-scale departure; ``width=1`` at 64×64 is the paper's network.
    """

    def __init__(self, image_shape: tuple[int, int, int], code_dim: int, hidden: int = 128,
                 width: float = 1.0) -> None:
        super().__init__()
        c, h, _ = _check_image_shape(image_shape)
        width = _check_width(width)
        hidden = _scaled(hidden, width)
        self.net = nn.Sequential(_conv_body(c, h, width),
                                 nn.Linear(_scaled(64, width) * 16, hidden), nn.ReLU(),
                                 nn.Linear(hidden, code_dim))
        init_weights(self, "tf")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PaperDecoder(nn.Module):
    """Table 4's decoder: code → Bernoulli logits (B, C, H, W).

    ``width`` and 32×32 images (the third transposed conv dropped) are the book's CPU-scale
    departure, as in :class:`PaperEncoder`.
    """

    def __init__(self, image_shape: tuple[int, int, int], code_dim: int, hidden: int = 128,
                 width: float = 1.0) -> None:
        super().__init__()
        c, h, _ = _check_image_shape(image_shape)
        width = _check_width(width)
        self.code_dim = code_dim
        hidden, c1, c2 = _scaled(hidden, width), _scaled(32, width), _scaled(64, width)
        third = [nn.ConvTranspose2d(c1, c1, 4, 2, 1), nn.ReLU()] if h == 64 else []
        self.net = nn.Sequential(
            nn.Linear(code_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, c2 * 16), nn.ReLU(),
            nn.Unflatten(1, (c2, 4, 4)),
            nn.ConvTranspose2d(c2, c2, 4, 2, 1), nn.ReLU(),  # 4x4 -> 8x8
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(),  # 8x8 -> 16x16
            *third,                                          # 16x16 -> 32x32
            nn.ConvTranspose2d(c1, c, 4, 2, 1),              # last: 2x the size, logits
        )
        init_weights(self, "tf")

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.code_dim:
            raise ValueError(f"decoder expects (B, {self.code_dim}), got {tuple(z.shape)}")
        return self.net(z)


class ImageCritic(nn.Module):
    """Table 5's discriminator and weight network: image → one number.

    ``output="logit"``: Disc's logit (the sigmoid is applied in the log-likelihoods);
    ``output="exp"``: W(x) = exp(clamp(h, ±clamp)) > 0, last layer zero-initialised (W ≡ 1).
    ``width`` and 32×32 images are the book's CPU-scale departure, as in :class:`PaperEncoder`.
    """

    def __init__(self, image_shape: tuple[int, int, int], output: str, hidden: int = 128,
                 clamp: float = 10.0, width: float = 1.0) -> None:
        super().__init__()
        c, h, _ = _check_image_shape(image_shape)
        width = _check_width(width)
        if output not in ("logit", "exp"):
            raise ValueError(f"output must be 'logit' or 'exp', got {output!r}")
        hidden = _scaled(hidden, width)
        self.head = nn.Linear(hidden, 1)
        self.net = nn.Sequential(_conv_body(c, h, width),
                                 nn.Linear(_scaled(64, width) * 16, hidden), nn.ReLU(),
                                 self.head)
        self.output = output
        self.clamp = float(clamp)
        init_weights(self, "tf")
        if output == "exp":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.net(x).squeeze(1)
        if self.output == "exp":
            return torch.exp(h.clamp(-self.clamp, self.clamp))
        return h


# ---- the pieces of the objective, as functions (tested one by one) ---------------------------
def intervene(z: Tensor, z_source: Tensor, feature: Tensor, feature_dim: int = 1) -> Tensor:
    """Intervention I1 (and I2): feature ``feature[i]`` of row i of ``z`` set to that of
    ``z_source[i]``; every other feature unchanged."""
    if z.shape != z_source.shape:
        raise ValueError(f"z {tuple(z.shape)} and z_source {tuple(z_source.shape)} differ")
    b = z.shape[0]
    blocks = z_source.reshape(b, -1, feature_dim)
    k = torch.as_tensor(feature, device=z.device, dtype=torch.long).expand(b)
    value = blocks[torch.arange(b, device=z.device), k]
    return set_feature(z, k, value, feature_dim)


def normalised_weights(w: Tensor) -> Tensor:
    """W(x̃)/N with N the batch mean of W(x̃): non-negative weights averaging exactly 1."""
    if w.dim() != 1 or len(w) == 0:
        raise ValueError(f"weights must be a non-empty vector, got shape {tuple(w.shape)}")
    return w / w.mean()


def weighted_adversarial_value(real_logits: Tensor, fake_logits: Tensor, weights: Tensor
                               ) -> Tensor:
    """L_adv = mean log Disc(x̂) + mean (W/N)·log(1 − Disc(x̃)), from logits and *raw* W."""
    wn = normalised_weights(weights)
    return F.logsigmoid(real_logits).mean() + (wn * F.logsigmoid(-fake_logits)).mean()


def intervened_distribution(p: np.ndarray) -> np.ndarray:
    """Eq. (1): ṗ(g) = (1/K) Σ_k p(g_\\k) p(g_k) for a joint ``p`` over K discrete factors.

    ``p`` is a K-dimensional array of probabilities (one axis per factor). Intervening on a
    uniformly chosen factor k replaces it by an independent draw from its marginal.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim < 1 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError("p must be a non-negative, finite array with positive mass")
    p = p / p.sum()
    k_total = p.ndim
    out = np.zeros_like(p)
    for k in range(k_total):
        rest = p.sum(axis=tuple(a for a in range(k_total) if a != k), keepdims=True)  # p(g_k)
        others = p.sum(axis=k, keepdims=True)  # p(g_\\k)
        out += others * rest
    return out / k_total


def density_ratio(p: np.ndarray) -> np.ndarray:
    """Proposition 2's weight W = p / ṗ on the grid (0 where p = 0); ṗ·W = p."""
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    q = intervened_distribution(p)
    return np.divide(p, q, out=np.zeros_like(p), where=q > 0)


@contextlib.contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` take no gradient inside the block (restored afterwards)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)


class Intervention(Method):
    """The intervention-based autoencoder with weighted adversarial matching and L_diff."""

    config: InterventionConfig
    batch_multiplier = 2  # the engine draws x and the independent x^r in one batch

    def __init__(self, image_shape: tuple[int, int, int], config: Any | None = None,
                 **overrides: Any) -> None:
        cfg = make_config(InterventionConfig, config, overrides)
        if cfg.num_features < 1 or cfg.feature_dim < 1:
            raise ValueError("num_features and feature_dim must be positive")
        if cfg.gan_loss not in ("minimax", "nonsaturating"):
            raise ValueError(f"gan_loss must be 'minimax' or 'nonsaturating', got {cfg.gan_loss!r}")
        if min(cfg.lambda_in, cfg.lambda_adv, cfg.lambda_diff) < 0:
            raise ValueError("the λ weights must be non-negative")
        if cfg.diff_steps < 0 or cfg.diff_lr <= 0:
            raise ValueError("diff_steps must be >= 0 and diff_lr > 0")
        _check_width(cfg.width)
        super().__init__(cfg)
        self.image_shape = _check_image_shape(tuple(image_shape))
        code_dim = cfg.num_features * cfg.feature_dim
        self.code_dim = code_dim
        shape, hidden, width = self.image_shape, cfg.hidden, cfg.width
        with seeded(cfg.seed):
            self.encoder = PaperEncoder(shape, code_dim, hidden, width)
            self.decoder = PaperDecoder(shape, code_dim, hidden, width)
        with seeded(cfg.seed + 1):
            self.discriminator = ImageCritic(shape, "logit", hidden, width=width)
        with seeded(cfg.seed + 2):
            self.weight_net = ImageCritic(shape, "exp", hidden, cfg.w_clamp, width)
        with seeded(cfg.seed + 3):
            # M's fixed starting point for L_diff: stored, never trained itself (its 32
            # channels scaled with the networks)
            self.translator = TranslationNet(shape, "conv", _scaled(32, width))
        self.translator.requires_grad_(False)

    # -- the model -------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Deterministic code (B, K_Z·D_Z)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images (B, {self.image_shape}), got {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits (B, C, H, W)."""
        return self.decoder(z)

    @torch.no_grad()
    def represent(self, x: Tensor) -> Tensor:
        return self.encode(x)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.decode(self.encode(x)))

    def decode_images(self, z: Tensor) -> Tensor:
        """Pixel probabilities in [0, 1] (the ``decode`` the translation metric takes)."""
        return torch.sigmoid(self.decode(z))

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config

        def adam(params, lr):
            return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps)

        return {
            "main": adam(self.autoencoder_parameters(), cfg.lr),
            "discriminator": adam(self.discriminator.parameters(), cfg.d_lr),
            "weight": adam(self.weight_net.parameters(), cfg.w_lr),
        }

    # -- the forward pass of one step ----------------------------------------------------------
    def interventions(self, x: Tensor, x_r: Tensor, generator: torch.Generator | None = None
                      ) -> dict[str, Tensor]:
        """Codes and images of both interventions for a batch x and an independent batch x^r.

        Returns z, z_r, k (B,), ``recon`` = Dec(z), ``intervened`` = Dec(z with z_k = z^r_k)
        (I1), ``restored`` = Dec(Enc(σ(intervened)) with feature k = z_k) (I2); images as logits.
        """
        if x.shape != x_r.shape:
            raise ValueError(f"x {tuple(x.shape)} and x_r {tuple(x_r.shape)} must match")
        cfg = self.config
        z, z_r = self.encode(x), self.encode(x_r)
        k = torch.randint(0, cfg.num_features, (len(x),), device=x.device, generator=generator)
        recon = self.decode(z)
        intervened = self.decode(intervene(z, z_r, k, cfg.feature_dim))
        z_hat = self.encode(torch.sigmoid(intervened))
        restored = self.decode(intervene(z_hat, z, k, cfg.feature_dim))
        return {"z": z, "z_r": z_r, "k": k, "recon": recon, "intervened": intervened,
                "restored": restored}

    def diff_loss(self, z: Tensor, z_test: Tensor, generator: torch.Generator | None = None
                  ) -> Tensor:
        """L_diff: Algorithm 1 on pairs decoded from D = ``z`` and D̃ = ``z_test`` for one
        random feature k and values a, b taken from two random codes of D."""
        cfg = self.config
        n = len(z)
        k = torch.randint(0, cfg.num_features, (), generator=generator, device=z.device)
        ia, ib = torch.randint(0, n, (2,), generator=generator, device=z.device).unbind()
        blocks = z.reshape(n, cfg.num_features, cfg.feature_dim)
        a, b = blocks[ia, k], blocks[ib, k]
        u, v = translation_pairs(self.decode_images, z, k, a, b, cfg.feature_dim, check=False)
        u_te, v_te = translation_pairs(self.decode_images, z_test, k, a, b, cfg.feature_dim,
                                       check=False)
        params = dict(self.translator.named_parameters())
        return held_out_translation_loss(self.translator, params, u, v, u_te, v_te,
                                         cfg.diff_steps, cfg.diff_lr, cfg.diff_unroll)

    def _generator_adv(self, real_logits: Tensor, fake_logits: Tensor, weights: Tensor) -> Tensor:
        if self.config.gan_loss == "minimax":
            return weighted_adversarial_value(real_logits, fake_logits, weights)
        # non-saturating: the players maximise the log-probability of the *swapped* labels
        wn = normalised_weights(weights)
        return -(F.logsigmoid(-real_logits).mean() + (wn * F.logsigmoid(fake_logits)).mean())

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The autoencoder's objective on a double batch (x, x^r), current Disc and W."""
        x, x_r = x.chunk(2)
        f = self.interventions(x, x_r, generator)
        return self._objective(x, f, generator)

    def _objective(self, x: Tensor, f: dict[str, Tensor], generator) -> dict[str, Tensor]:
        cfg = self.config
        rec = bernoulli_nll(f["recon"], x).mean()
        l_in = bernoulli_nll(f["restored"], x).mean()
        real, fake = torch.sigmoid(f["recon"]), torch.sigmoid(f["intervened"])
        weights = self.weight_net(fake)
        adv = self._generator_adv(self.discriminator(real), self.discriminator(fake), weights)
        if cfg.lambda_diff > 0:
            diff = self.diff_loss(f["z"], f["z_r"], generator)
        else:
            diff = torch.zeros((), device=x.device)
        loss = rec + cfg.lambda_in * l_in + cfg.lambda_adv * adv + cfg.lambda_diff * diff
        return {"loss": loss, "recon": rec, "in": l_in, "adv": adv, "diff": diff}

    def train_step(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        if not self.optimizers:
            self.setup_optimizers()
        if len(x) % 2 or len(x) < 4:
            raise ValueError(f"need an even batch of x and x^r (>= 4 images), got {len(x)}")
        x, x_r = x.chunk(2)
        f = self.interventions(x, x_r, generator)
        real_d, fake_d = torch.sigmoid(f["recon"]).detach(), torch.sigmoid(f["intervened"]).detach()
        # 1) Disc ascends L_adv: images and weights are constants here
        d_opt = self.optimizers["discriminator"]
        self.zero_grad(set_to_none=True)  # every phase starts with no gradient anywhere
        with torch.no_grad():
            w_raw = self.weight_net(fake_d)
        real_logit, fake_logit = self.discriminator(real_d), self.discriminator(fake_d)
        d_loss = -weighted_adversarial_value(real_logit, fake_logit, w_raw)
        d_loss.backward()
        d_opt.step()
        # 2) W descends the weighted term with the updated Disc (N inside the graph)
        w_opt = self.optimizers["weight"]
        self.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake_logit_new = self.discriminator(fake_d)
        w = self.weight_net(fake_d)
        w_loss = (normalised_weights(w) * F.logsigmoid(-fake_logit_new)).mean()
        w_loss.backward()
        w_opt.step()
        # 3) Enc and Dec descend the whole objective; Disc and W are frozen
        opt = self.optimizers["main"]
        self.zero_grad(set_to_none=True)
        with _frozen(self.discriminator, self.weight_net):
            out = self._objective(x, f, generator)
            out["loss"].backward()
        opt.step()
        self.step += 1
        wn = normalised_weights(w.detach())
        out = {k: v.detach() for k, v in out.items()}
        out.update(
            d_loss=d_loss.detach(),
            w_loss=w_loss.detach(),
            w_raw_mean=w.detach().mean(),
            w_norm_max=wn.max(),
            d_real=torch.sigmoid(real_logit.detach()).mean(),
            d_fake=torch.sigmoid(fake_logit.detach()).mean(),
        )
        return out
