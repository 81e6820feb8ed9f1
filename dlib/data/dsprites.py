"""dSprites, drawn procedurally (or read from the official file), and its three noisy variants.

dSprites (Matthey et al., 2017) is every combination of 3 shapes x 6 scales x 40 orientations
x 32 x 32 positions of a white sprite on a black 64 x 64 canvas: 737,280 binary images. We draw
it ourselves with the rendering rules reverse-engineered from the official frames, so the book
needs no download; ``path=`` reads the official npz instead.

Rendering rules (all lengths in pixels, y pointing down, no anti-aliasing):

* a pixel is on iff its centre ``(col + 0.5, row + 0.5)`` is inside the shape;
* the sprite centre is ``(16 + 32 posX, 16 + 32 posY)``; every shape scales about it;
* the shape is sampled at ``u = cos t dx - sin t dy``, ``v = sin t dx + cos t dy`` where
  ``(dx, dy)`` is the pixel centre minus the shape's origin, divided by the scale;
* square: ``|u|, |v| < 9.6`` (side 19.2); ellipse: ``(u / 12.8)^2 + (v / 7.2)^2 < 1``;
  heart: ``|u| + |v| < 8.6`` or ``(|u| - 4.25)^2 + (v + 3.7)^2 < 5.4^2`` (lobes up), with its
  origin 0.25 px above the sprite centre.

Squares match the official frames exactly, ellipses within about a pixel, hearts within about
nine pixels of 60-230 (the true heart is not quite this union of a diamond and two discs).

The variants follow disentanglement_lib: the same five factors, with per-sample nuisance drawn
at observation time (a colour, background noise, or a patch of a painting with the sprite
inverted).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from dlib import config
from dlib.data.base import GroundTruthData, cached_array
from dlib.data.official import DSPRITES_MD5, DSpritesFile, load_dsprites_npz

__all__ = [
    "DSprites",
    "ColorDSprites",
    "NoisyDSprites",
    "ScreamDSprites",
    "render_dsprites",
    "procedural_scream",
    "RENDERER_VERSION",
    "IMAGE_SIZES",
    "save_dsprites_npz",
]

# ---- rendering constants (notes 3.1.4); change one and the cache name changes with it ----------
CANVAS = 64
POSITION_OFFSET = 16.0  # sprite centre = 16 + 32 * pos, i.e. the middle half of the canvas
POSITION_RANGE = 32.0
SQUARE_HALF_SIDE = 9.6
ELLIPSE_SEMI_AXES = (12.8, 7.2)  # horizontal, vertical at orientation 0
HEART_DIAMOND = 8.6  # |u| + |v| < 8.6
HEART_LOBE = (4.25, -3.7, 5.4)  # discs at (+-4.25, -3.7) of radius 5.4
HEART_ORIGIN_DY = -0.25  # heart origin 0.25 px above the sprite centre
_CPU_CHUNK = 4096  # images per step on a CPU: keeps the (n, 28, 28) temporaries in cache
_WINDOW = 28  # no shape reaches 14 px from its centre (square corner: 9.6 * sqrt(2) = 13.6)
#: canvas sizes the renderer draws; 32 samples the same shapes at the centres of 2×2-px cells
IMAGE_SIZES = (64, 32)
_CONSTANTS = (
    CANVAS,
    POSITION_OFFSET,
    POSITION_RANGE,
    SQUARE_HALF_SIDE,
    ELLIPSE_SEMI_AXES,
    HEART_DIAMOND,
    HEART_LOBE,
    HEART_ORIGIN_DY,
)
RENDERER_VERSION = "r1-" + hashlib.sha1(repr(_CONSTANTS).encode()).hexdigest()[:8]

# ---- the official factor grid -----------------------------------------------------------------
FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_VALUES = (
    np.array([1.0, 2.0, 3.0]),  # the official file stores shapes as 1, 2, 3
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),  # both ends included: class 0 and 39 are the same image
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)


# ---- the renderer -----------------------------------------------------------------------------
Tensor = torch.Tensor


def _uv(dx: Tensor, dy: Tensor, cos: Tensor, sin: Tensor, su: Tensor, sv: Tensor):
    """Rotated window coordinates (n, rows, cols) float32, ``u / su`` and ``v / sv``.

    ``dx``, ``dy`` (n, 28) are pixel centres minus the shape origin; ``cos``, ``sin``, ``su``,
    ``sv`` (n,) float64 per image.
    """
    cu, su_ = (cos / su)[:, None], (sin / su)[:, None]
    cv, sv_ = (cos / sv)[:, None], (sin / sv)[:, None]
    # u and v are outer sums of a row term and a column term: form those in float64, add in float32
    u = (cu * dx).float()[:, None, :] - (su_ * dy).float()[:, :, None]
    v = (sv_ * dx).float()[:, None, :] + (cv * dy).float()[:, :, None]
    return u, v


def _square(dx: Tensor, dy: Tensor, cos: Tensor, sin: Tensor, scale: Tensor) -> Tensor:
    u, v = _uv(dx, dy, cos, sin, scale, scale)
    return torch.maximum(u.abs_(), v.abs_()) < SQUARE_HALF_SIDE


def _ellipse(dx: Tensor, dy: Tensor, cos: Tensor, sin: Tensor, scale: Tensor) -> Tensor:
    a, b = ELLIPSE_SEMI_AXES
    u, v = _uv(dx, dy, cos, sin, a * scale, b * scale)
    return u.square_().add_(v.square_()) < 1.0


def _heart(dx: Tensor, dy: Tensor, cos: Tensor, sin: Tensor, scale: Tensor) -> Tensor:
    lx, ly, r = HEART_LOBE
    u, v = _uv(dx, dy - HEART_ORIGIN_DY, cos, sin, scale, scale)
    au = u.abs_()
    inside = (au + v.abs()) < HEART_DIAMOND
    # the two lobes are mirror images, so one disc in (|u|, v) covers both
    inside |= au.sub_(lx).square_().add_(v.sub_(ly).square_()) < r * r
    return inside


_SHAPES = (_square, _ellipse, _heart)


def render_dsprites(
    shape: object,
    scale: object,
    orientation: object,
    pos_x: object,
    pos_y: object,
    device: torch.device | str | None = None,
    image_size: int = 64,
) -> torch.Tensor:
    """Draw dSprites images (N, S, S) uint8 in {0, 1} from continuous factor values.

    ``shape`` is the class (0 square, 1 ellipse, 2 heart), ``scale`` in (0, 1], ``orientation``
    in radians, ``pos_x`` and ``pos_y`` in [0, 1]; arrays, tensors or scalars, broadcast to one
    length. ``device`` defaults to :func:`dlib.config.device`.

    ``image_size`` S is 64 (dSprites) or 32: the same continuous shapes, sampled directly at the
    centres of a 32 × 32 grid (each pixel covers 2 × 2 pixels of the 64 × 64 canvas), not a
    downsampled 64 × 64 image. Only a window of 28 (14 at S = 32) pixels around the sprite can
    be on, so each image is evaluated there (at the integer offset nearest the centre) in chunks
    small enough to stay in cache, then pasted.
    """
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
    dev = config.device(device)
    args = [
        torch.as_tensor(a, device=dev).double().reshape(-1)
        for a in (shape, scale, orientation, pos_x, pos_y)
    ]
    shape_, scale_, theta, px, py = torch.broadcast_tensors(*args)
    if not bool(((shape_ == 0) | (shape_ == 1) | (shape_ == 2)).all()):
        raise ValueError("shape must be a class in {0, 1, 2} (square, ellipse, heart)")
    if not bool(((scale_ > 0) & (scale_ <= 1)).all()):
        raise ValueError("scale must lie in (0, 1]")
    if not bool(((px >= 0) & (px <= 1) & (py >= 0) & (py <= 1)).all()):
        raise ValueError("pos_x and pos_y must lie in [0, 1]")
    if not bool(theta.isfinite().all()):
        raise ValueError("orientation must be finite")
    n = shape_.numel()
    size = int(image_size)
    k = size / CANVAS  # pixels of the output per pixel of the 64 × 64 canvas (1 or 1/2)
    window = _WINDOW * size // CANVAS
    out = torch.zeros((n, size, size), dtype=torch.uint8, device=dev)
    ramp = torch.arange(window, device=dev)
    paste = (ramp[:, None] * size + ramp).reshape(1, window, window)
    chunk = 1 << 16 if dev.type == "cuda" else _CPU_CHUNK
    for s, inside in enumerate(_SHAPES):
        members = (shape_ == s).nonzero().squeeze(1)
        for start in range(0, members.numel(), chunk):
            i = members[start : start + chunk]
            # sprite centre in 64-canvas pixels; the window's corner in output pixels
            cx = POSITION_OFFSET + POSITION_RANGE * px[i]
            cy = POSITION_OFFSET + POSITION_RANGE * py[i]
            x0 = torch.floor(k * cx + 0.5) - window // 2
            y0 = torch.floor(k * cy + 0.5) - window // 2
            # pixel centres of the window minus the sprite centre, in 64-canvas pixels,
            # (n, window) along x and y (k = 1: exactly the 64 × 64 renderer's numbers)
            dx = (x0 / k - cx)[:, None] + (ramp + 0.5) / k
            dy = (y0 / k - cy)[:, None] + (ramp + 0.5) / k
            on = inside(dx, dy, torch.cos(theta[i]), torch.sin(theta[i]), scale_[i])
            corner = i * size * size + y0.long() * size + x0.long()
            out.view(-1)[(corner[:, None, None] + paste).view(-1)] = on.view(-1).view(torch.uint8)
    return out


# ---- bit packing (the full set is binary: 512 bytes an image) -------------------------------
_SHIFTS = torch.arange(7, -1, -1, dtype=torch.uint8)


def unpack_images(packed: torch.Tensor, chunk: int = 1 << 16, image_size: int = 64
                  ) -> torch.Tensor:
    """Images (N, 1, S, S) uint8 from rows of ``np.packbits`` bits (N, S·S/8), on their device."""
    if packed.ndim != 2 or packed.shape[1] * 8 != image_size * image_size:
        raise ValueError(f"packed rows of {image_size}×{image_size} images have "
                         f"{image_size * image_size // 8} bytes, got shape {tuple(packed.shape)}")
    out = torch.empty(
        (packed.shape[0], image_size * image_size // 8, 8), dtype=torch.uint8,
        device=packed.device
    )
    shifts = _SHIFTS.to(packed.device)
    for start in range(0, packed.shape[0], chunk):
        block = packed[start : start + chunk, :, None]
        torch.bitwise_and(block >> shifts, 1, out=out[start : start + chunk])
    return out.view(-1, 1, image_size, image_size)


def full_dsprites_packed(device: torch.device | str | None = None, image_size: int = 64
                         ) -> np.ndarray:
    """All 737,280 procedural images bit-packed (N, S·S/8), cached under ``cache_dir()``.

    The cache file name carries :data:`RENDERER_VERSION` (and the size when it is not 64);
    its checksum is verified on load.
    """
    dev = config.device(device)
    data = DSprites(image_size=image_size)

    def build() -> np.ndarray:
        packed = np.empty((data.num_observations, image_size * image_size // 8), dtype=np.uint8)
        block = 40960  # one (shape, scale) pair: 40 orientations x 32 x 32 positions
        for start in config.progress(
            range(0, data.num_observations, block), desc="rendering dSprites", unit_scale=block
        ):
            index = np.arange(start, start + block)
            images = data.images_from_classes(torch.as_tensor(data.index_to_classes(index)), dev)
            packed[start : start + block] = np.packbits(
                images.view(block, -1).cpu().numpy(), axis=1
            )
        return packed

    size = "" if image_size == CANVAS else f"{image_size}px-"
    return cached_array(config.cache_dir() / f"dsprites-{size}{RENDERER_VERSION}.npy", build)


# ---- the dataset ------------------------------------------------------------------------------
class DSprites(GroundTruthData):
    """dSprites with its five varying factors (disentanglement_lib's ``dsprites_full``).

    Observations are the binary images, (64, 64, 1). ``path=None`` draws them with
    :func:`render_dsprites`; ``path=`` reads the official npz (checked against ``md5``; pass
    ``md5=None`` to skip). ``latents_values`` / ``latents_classes`` give the official file's
    six-column tables (with the constant colour), in the file's order.
    """

    name = "dsprites"
    channels = 1

    #: canvas sizes this class can draw (the variants' nuisance is defined at 64 × 64 only)
    image_sizes: tuple[int, ...] = IMAGE_SIZES

    def __init__(self, path: str | Path | None = None, md5: str | None = DSPRITES_MD5,
                 image_size: int = CANVAS):
        self.image_size = self._checked_image_size(image_size)
        if path is not None and image_size != CANVAS:
            raise ValueError("the official dSprites file holds 64×64 images; image_size="
                             f"{image_size} needs the procedural renderer (path=None)")
        self.file: DSpritesFile | None = None if path is None else load_dsprites_npz(path, md5)
        if self.file is None:
            self._sizes = tuple(len(v) for v in FACTOR_VALUES)
            self._values = [v.copy() for v in FACTOR_VALUES]
        else:
            f = self.file
            self._sizes = f.latents_sizes[1:]
            # the value of class c of latent j sits in the row with only that class non-zero
            self._values = [
                f.latents_values[np.arange(size) * base, j]
                for j, (size, base) in enumerate(zip(f.latents_sizes, f.latents_bases, strict=True))
                if j > 0
            ]

    # -- the grid
    @property
    def factor_names(self) -> tuple[str, ...]:
        return FACTOR_NAMES

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self._sizes

    @property
    def factor_values(self) -> list[np.ndarray]:
        return [v.copy() for v in self._values]

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    #: observations are a function of the factors (no nuisance draws): :mod:`dlib.metrics.encoded`
    #: may encode every image once and look codes up
    deterministic_observations = True

    def skip_observation_draws(self, num: int, random_state: np.random.RandomState) -> None:
        """Consume exactly what :meth:`sample_observations_from_factors` draws for ``num`` rows,
        without drawing images (the constant colour latent's ``randint(1, size=num)``)."""
        random_state.randint(1, size=num)

    @cached_property
    def latents_classes(self) -> np.ndarray:
        """(N, 6) int64 classes of (colour, shape, scale, orientation, posX, posY), file order."""
        if self.file is not None:
            return self.file.latents_classes
        colour = np.zeros((self.num_observations, 1), dtype=np.int64)
        return np.concatenate([colour, self.index_to_classes(np.arange(self.num_observations))], 1)

    @cached_property
    def latents_values(self) -> np.ndarray:
        """(N, 6) float64 values of (colour, shape, scale, orientation, posX, posY), file order."""
        if self.file is not None:
            return self.file.latents_values
        classes = self.latents_classes
        cols = [np.ones(len(classes))] + [v[classes[:, j + 1]] for j, v in enumerate(self._values)]
        return np.stack(cols, axis=1)

    # -- stored images
    def images_from_classes(
        self, classes: torch.Tensor, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Binary images (N, 1, S, S) uint8: rendered, or looked up in the official file."""
        dev = config.device(device)
        arr = self.check_classes(classes)
        size = self.image_size
        if self.file is not None:
            index = torch.as_tensor(arr @ self.factor_bases)
            return torch.from_numpy(self.file.imgs)[index].unsqueeze(1).to(dev)
        if len(arr) == 0:
            return torch.zeros((0, 1, size, size), dtype=torch.uint8, device=dev)
        values = [torch.as_tensor(v[arr[:, j]], device=dev) for j, v in enumerate(self._values)]
        return render_dsprites(arr[:, 0], *values[1:], device=dev, image_size=size).unsqueeze(1)

    def all_images(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Every image (N, 1, S, S) uint8: the official file, or the cached procedural set."""
        dev = config.device(device)
        if self.file is not None:
            return torch.from_numpy(self.file.imgs).unsqueeze(1).to(dev)
        packed = full_dsprites_packed(dev, self.image_size)
        return unpack_images(torch.from_numpy(packed).to(dev), image_size=self.image_size)

    def image_chunks(self, chunk: int = 65536, device: torch.device | str | None = None):
        """Every image in index order as (n, 1, S, S) uint8 chunks (the cached set, unpacked
        one chunk at a time: the 64 × 64 set is 2.9 GB as bytes)."""
        dev = config.device(device)
        if self.file is not None:
            yield from super().image_chunks(chunk, dev)
            return
        packed = full_dsprites_packed(dev, self.image_size)
        for start in range(0, len(packed), chunk):
            block = torch.from_numpy(packed[start : start + chunk]).to(dev)
            yield unpack_images(block, image_size=self.image_size)

    # -- observations
    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        classes = self.check_classes(factors)
        # disentanglement_lib completes the constant colour latent with randint(1, size=N); it
        # consumes nothing from the stream today, but we mirror the call to stay aligned
        random_state.randint(1, size=len(classes))
        binary = self.images_from_classes(classes, "cpu").numpy()[:, 0, :, :, None]
        return self._nuisance_numpy(binary.astype(np.float32), random_state).astype(
            np.float32, copy=False
        )

    def _nuisance_numpy(self, binary: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        """Observations (N, 64, 64, C) from binary images (N, 64, 64, 1) float32."""
        return binary

    def observe(
        self, stored: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        size = self.image_size
        if stored.dtype != torch.uint8 or tuple(stored.shape[1:]) != (1, size, size):
            raise ValueError(
                f"stored images must be uint8 (N, 1, {size}, {size}), got {stored.dtype} "
                f"{tuple(stored.shape)}"
            )
        return self._nuisance_torch(stored.float(), generator)

    def _nuisance_torch(self, binary: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """Observations (N, C, 64, 64) float32 from binary images (N, 1, 64, 64) float32."""
        return binary


class ColorDSprites(DSprites):
    """dSprites with the sprite in a random colour, each RGB channel ~ U(0.5, 1) per sample."""

    name = "color_dsprites"
    channels = 3
    #: the colour is one draw per image, so it means the same at 32 px (the CPU scale's transfer
    #: grid) as at 64; noise and scream patches are defined per 64-px pixel and stay at 64
    image_sizes = IMAGE_SIZES
    deterministic_observations = False

    def _nuisance_numpy(self, binary: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        colour = rs.uniform(0.5, 1, [binary.shape[0], 1, 1, 3])
        return np.repeat(binary, 3, axis=3) * colour

    def _nuisance_torch(self, binary: Tensor, gen: torch.Generator | None) -> Tensor:
        colour = torch.rand((binary.shape[0], 3, 1, 1), device=binary.device, generator=gen)
        return binary * (0.5 + 0.5 * colour)


class NoisyDSprites(DSprites):
    """dSprites on a background of per-pixel, per-channel U(0, 1) noise; the sprite stays white."""

    name = "noisy_dsprites"
    channels = 3
    image_sizes = (CANVAS,)
    deterministic_observations = False

    def _nuisance_numpy(self, binary: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        noise = rs.uniform(0, 1, [binary.shape[0], CANVAS, CANVAS, 3])
        return np.minimum(np.repeat(binary, 3, axis=3) + noise, 1.0)

    def _nuisance_torch(self, binary: Tensor, gen: torch.Generator | None) -> Tensor:
        noise = torch.rand(
            (binary.shape[0], 3, CANVAS, CANVAS), device=binary.device, generator=gen
        )
        return torch.clamp(binary + noise, max=1.0)


SCREAM_SIZE = (274, 221)  # (H, W) of Munch's painting thumbnailed to fit 350 x 274
SCREAM_SEED = 1893


def procedural_scream(
    height: int = SCREAM_SIZE[0], width: int = SCREAM_SIZE[1], seed: int = SCREAM_SEED
) -> np.ndarray:
    """A swirling orange-and-blue texture (H, W, 3) in [0, 1], standing in for *The Scream*.

    disentanglement_lib crops backgrounds from a photo of Munch's painting, which we cannot
    ship. This stand-in has what matters for the benchmark -- a colourful, smoothly varying
    background whose random 64 x 64 crops differ -- and is a fixed function of ``seed``: wavy
    bands (a sum of random sinusoids bends them) coloured as a warm sky over a cool fjord.
    """
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width] / float(max(height, width))
    warp = np.zeros_like(x)
    for _ in range(6):
        fx, fy = rs.uniform(-4, 4, size=2)
        warp += rs.uniform(0.2, 0.6) * np.sin(
            2 * np.pi * (fx * x + fy * y) + rs.uniform(0, 2 * np.pi)
        )
    bands = 0.5 + 0.5 * np.sin(2 * np.pi * (6 * y + 0.5 * warp))
    sky = np.array([0.95, 0.6, 0.2]) * bands[..., None] + np.array([0.8, 0.2, 0.1]) * (
        1 - bands[..., None]
    )
    sea = np.array([0.2, 0.3, 0.6]) * bands[..., None] + np.array([0.05, 0.1, 0.25]) * (
        1 - bands[..., None]
    )
    blend = 1 / (1 + np.exp(-12 * (y - 0.45 - 0.08 * warp)))[..., None]
    return np.clip((1 - blend) * sky + blend * sea, 0.0, 1.0)


def load_scream(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) in [0, 1], thumbnailed to fit 350 x 274 like the reference."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((350, 274))
        arr = np.asarray(img) / 255.0
    if arr.shape[0] <= CANVAS or arr.shape[1] <= CANVAS:
        raise ValueError(
            f"{path}: the background must be larger than 64 x 64 after thumbnailing,"
            f" got {arr.shape[:2]}"
        )
    return arr


class ScreamDSprites(DSprites):
    """dSprites on a random 64 x 64 crop of a painting, averaged with a random colour; the
    pixels under the sprite are inverted.

    ``scream_path=`` uses your own image (e.g. disentanglement_lib's ``scream.jpg``); without it
    the background is :func:`procedural_scream`. Crop offsets are uniform in
    ``[0, H - 64)`` x ``[0, W - 64)`` (disentanglement_lib never uses the last offset).
    """

    name = "scream_dsprites"
    channels = 3
    image_sizes = (CANVAS,)
    deterministic_observations = False

    def __init__(
        self,
        path: str | Path | None = None,
        md5: str | None = DSPRITES_MD5,
        scream_path: str | Path | None = None,
    ):
        super().__init__(path, md5)
        self.background = procedural_scream() if scream_path is None else load_scream(scream_path)
        self._background_on: dict[torch.device, torch.Tensor] = {}

    def _nuisance_numpy(self, binary: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        h, w, _ = self.background.shape
        out = np.repeat(binary, 3, axis=3).astype(np.float64)
        for i in range(out.shape[0]):  # the reference's per-sample loop and draw order
            row = rs.randint(0, h - CANVAS)
            col = rs.randint(0, w - CANVAS)
            patch = (
                self.background[row : row + CANVAS, col : col + CANVAS] + rs.uniform(0, 1, size=3)
            ) / 2.0
            sprite = out[i] == 1
            patch[sprite] = 1 - patch[sprite]
            out[i] = patch
        return out

    def _nuisance_torch(self, binary: Tensor, gen: torch.Generator | None) -> Tensor:
        dev = binary.device
        if dev not in self._background_on:
            self._background_on[dev] = torch.as_tensor(
                self.background, dtype=torch.float32, device=dev
            )
        bg = self._background_on[dev]
        n = binary.shape[0]
        h, w, _ = bg.shape
        row = torch.randint(h - CANVAS, (n, 1), device=dev, generator=gen)
        col = torch.randint(w - CANVAS, (n, 1), device=dev, generator=gen)
        colour = torch.rand((n, 1, 1, 3), device=dev, generator=gen)
        ramp = torch.arange(CANVAS, device=dev)
        patch = bg[(row + ramp)[:, :, None], (col + ramp)[:, None, :]]  # (n, 64, 64, 3)
        patch = ((patch + colour) / 2).permute(0, 3, 1, 2)
        return torch.where(binary == 1, 1 - patch, patch)


def save_dsprites_npz(
    path: str | Path,
    sizes: tuple[int, ...] = (1, 3, 6, 40, 32, 32),
    device: torch.device | str | None = None,
) -> Path:
    """Write procedural dSprites in the official file's schema and return the path.

    ``sizes`` gives the grid (colour, shape, scale, orientation, posX, posY); a reduced grid such
    as ``(1, 3, 2, 4, 4, 4)`` makes a tiny file for tests and examples, the default the full set
    (readable by any loader of the official file, e.g. disentanglement_lib's). Values follow the
    official ranges (scale from 0.5 to 1, orientation from 0 to 2π, positions from 0 to 1);
    ``metadata`` is a Python-2-picklable dict as in the official file.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != 6 or sizes[0] != 1 or not 1 <= sizes[1] <= 3 or min(sizes) < 1:
        raise ValueError(f"sizes must be (1, 1..3, s, o, x, y) with positive entries, got {sizes}")
    possible = [
        np.array([1.0]),
        np.array([1.0, 2.0, 3.0])[: sizes[1]],
        np.linspace(0.5, 1, sizes[2]),
        np.linspace(0, 2 * np.pi, sizes[3]),
        np.linspace(0, 1, sizes[4]),
        np.linspace(0, 1, sizes[5]),
    ]
    classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1).astype(np.int64)
    values = np.stack([v[classes[:, j]] for j, v in enumerate(possible)], axis=1)
    imgs = render_dsprites(classes[:, 1], *values[:, 2:].T, device=device).cpu().numpy()
    names = ("color", "shape", "scale", "orientation", "posX", "posY")
    metadata = {
        "latents_sizes": np.array(sizes),
        "latents_names": names,
        "latents_possible_values": dict(zip(names, possible, strict=True)),
        "title": "procedural dSprites (dlib)",
        "description": f"drawn by dlib's renderer {RENDERER_VERSION}",
    }
    path = Path(path)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes, latents_values=values,
                        metadata=np.array(metadata, dtype=object))
    return path
