"""Encoders and decoders of the Locatello et al. (2019) study, in PyTorch.

The study (disentanglement_lib's ``conv_encoder`` / ``deconv_decoder``) uses, for 64×64 images:

====================  ===================================  ==============
layer                 encoder                              output
====================  ===================================  ==============
conv 32, 4×4, s2      ReLU                                 32×32×32
conv 32, 4×4, s2      ReLU                                 32×16×16
conv 64, **2×2**, s2  ReLU                                 64×8×8
conv 64, **2×2**, s2  ReLU                                 64×4×4
dense 256             ReLU                                 256
dense 2·D             mean and log-variance heads          D + D
====================  ===================================  ==============

The two 2×2 kernels deviate from the 4×4 kernels of the β-VAE paper's table; the study's numbers
were produced with them, so ``arch="conv"`` keeps them and ``arch="conv4"`` offers the 4×4
variant (used by the *disent* library). The decoder mirrors the encoder: dense 256, dense 1024,
reshape to 64×4×4, transposed convs 64, 32, 32 (4×4, s2, ReLU) and a last transposed conv to C
channels that outputs **logits** (the Bernoulli likelihood takes logits). TensorFlow's ``SAME``
padding at stride 2 equals symmetric padding 1 for 4×4 kernels and 0 for 2×2 kernels, so the
shapes match the reference exactly. Weights use TensorFlow's default initialisation (Glorot
uniform, zero biases) unless ``init="torch"``.

``arch="fc"`` is the β-VAE paper's fully connected pair (1200-1200 ReLU encoder, 1200×3 tanh
decoder).

Holds :class:`Encoder`, :class:`Decoder`, the code discriminator :class:`Discriminator`
(FactorVAE's and the one-logit TC estimator of :mod:`dlib.theory.kl`), :func:`init_weights` and
:func:`num_parameters`.

Two departures for small compute budgets (the CPU scale, :mod:`dlib.scales`), both off by
default: ``width`` multiplies every channel and unit count of the conv networks (32, 64, 256 →
``round(32·width)``, ...), and 32×32 images drop the encoder's first conv layer and the
decoder's third transposed conv (the remaining layers see the same feature-map sizes 16, 8, 4).
``width=1`` at 64×64 is exactly the reference network.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Arch = Literal["conv", "conv4", "fc"]
ARCHS: tuple[str, ...] = ("conv", "conv4", "fc")


#: image sides the convolutional architectures take
CONV_SIZES: tuple[int, ...] = (64, 32)


def _check_shape(image_shape: tuple[int, int, int], arch: str, width: float = 1.0
                 ) -> tuple[int, int, int]:
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    c, h, w = (int(s) for s in image_shape)
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHS}")
    if arch != "fc" and (h != w or h not in CONV_SIZES):
        raise ValueError(f"the convolutional architectures expect 64×64 or 32×32 images, "
                         f"got {h}×{w}")
    if not width > 0 or (arch == "fc" and width != 1.0):
        raise ValueError(f"width must be positive (and 1 for arch='fc'), got {width!r}")
    return c, h, w


def channels(width: float = 1.0) -> tuple[int, int, int]:
    """The conv networks' (first channels, second channels, dense units) at ``width``:
    (32, 64, 256) for the reference network."""
    return tuple(max(1, round(n * width)) for n in (32, 64, 256))  # type: ignore[return-value]


def init_weights(module: nn.Module, init: str = "tf") -> None:
    """Initialise every conv, transposed conv and linear layer of ``module`` in place:
    ``"tf"`` is TensorFlow's default (Glorot uniform weights, zero biases), ``"torch"`` leaves
    PyTorch's own initialisation."""
    if init == "torch":
        return
    if init != "tf":
        raise ValueError(f"init must be 'tf' or 'torch', got {init!r}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    """Image (B, C, H, W) in [0, 1] → Gaussian posterior parameters ``(mean, logvar)``, (B, D) each.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_latents: int = 10,
        arch: Arch = "conv",
        init: str = "tf",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        c, h, w = _check_shape(image_shape, arch, width)
        if num_latents < 1:
            raise ValueError(f"num_latents must be positive, got {num_latents}")
        self.image_shape = (c, h, w)
        self.num_latents = num_latents
        if arch == "fc":
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(c * h * w, 1200), nn.ReLU(),
                nn.Linear(1200, 1200), nn.ReLU(),
            )
            width = 1200
        else:
            k, p = (2, 0) if arch == "conv" else (4, 1)
            c1, c2, units = channels(width)
            first = [nn.Conv2d(c, c1, 4, 2, 1), nn.ReLU()] if h == 64 else []  # 64x64 -> 32x32
            self.body = nn.Sequential(
                *first,
                nn.Conv2d(c1 if first else c, c1, 4, 2, 1), nn.ReLU(),  # 32x32 -> 16x16
                nn.Conv2d(c1, c2, k, 2, p), nn.ReLU(),  # 16x16 -> 8x8
                nn.Conv2d(c2, c2, k, 2, p), nn.ReLU(),  # 8x8 -> 4x4
                nn.Flatten(),                           # 64*4*4 = 1024 (width 1)
                nn.Linear(c2 * 16, units), nn.ReLU(),
            )
            width = units
        self.mean = nn.Linear(width, num_latents)
        self.logvar = nn.Linear(width, num_latents)
        init_weights(self, init)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"encoder expects (B, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class Decoder(nn.Module):
    """Latent code (B, D) → Bernoulli logits (B, C, H, W)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_latents: int = 10,
        arch: Arch = "conv",
        init: str = "tf",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        c, h, w = _check_shape(image_shape, arch, width)
        self.image_shape = (c, h, w)
        self.num_latents = num_latents
        if arch == "fc":
            self.body = nn.Sequential(
                nn.Linear(num_latents, 1200), nn.Tanh(),
                nn.Linear(1200, 1200), nn.Tanh(),
                nn.Linear(1200, 1200), nn.Tanh(),
                nn.Linear(1200, c * h * w),
                nn.Unflatten(1, (c, h, w)),
            )
        else:  # both conv variants share the study's decoder
            c1, c2, units = channels(width)
            third = [nn.ConvTranspose2d(c1, c1, 4, 2, 1), nn.ReLU()] if h == 64 else []
            self.body = nn.Sequential(
                nn.Linear(num_latents, units), nn.ReLU(),
                nn.Linear(units, c2 * 16), nn.ReLU(),
                nn.Unflatten(1, (c2, 4, 4)),
                nn.ConvTranspose2d(c2, c2, 4, 2, 1), nn.ReLU(),  # 4x4 -> 8x8
                nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(),  # 8x8 -> 16x16
                *third,                                          # 16x16 -> 32x32
                nn.ConvTranspose2d(c1, c, 4, 2, 1),              # last: 2x the size, logits
            )
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.num_latents:
            raise ValueError(f"decoder expects (B, {self.num_latents}), got {tuple(z.shape)}")
        return self.body(z)


def num_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (the study's conv encoder + decoder: about 0.5 million)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)



class Discriminator(nn.Module):
    """A discriminator of latent codes: an MLP of ``depth`` hidden layers of ``hidden``
    leaky-ReLU units (slope 0.2, TensorFlow's default) and ``logits`` outputs.

    The defaults are FactorVAE's: 6 hidden layers of 1000 units and 2 logits ``[real,
    reference]`` (the FactorVAE paper says "6 layers"; disentanglement_lib uses 6 hidden layers
    of 1000 as here, some PyTorch ports use 5). With ``logits=1`` the single output is read as
    log D(z)/(1 − D(z)), the difference of the two logits (:func:`dlib.theory.kl` trains such a
    one-logit discriminator, with ``init="torch"``, to estimate TC).
    """

    def __init__(self, num_latents: int = 10, hidden: int = 1000, depth: int = 6,
                 init: str = "tf", logits: int = 2) -> None:
        super().__init__()
        if logits not in (1, 2):
            raise ValueError(f"logits must be 1 or 2, got {logits!r}")
        if num_latents < 1 or hidden < 1 or depth < 0:
            raise ValueError(f"need num_latents ≥ 1, hidden ≥ 1 and depth ≥ 0, got "
                             f"{num_latents}, {hidden}, {depth}")
        layers: list[nn.Module] = []
        width = num_latents
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(nn.Linear(width, logits))
        self.body = nn.Sequential(*layers)
        self.num_latents = num_latents
        self.logits = logits
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        """Logits (B, ``logits``) of codes ``z`` (B, D)."""
        if z.dim() != 2 or z.shape[1] != self.num_latents:
            raise ValueError(
                f"discriminator expects (B, {self.num_latents}), got {tuple(z.shape)}"
            )
        return self.body(z)
