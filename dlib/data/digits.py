"""Coloured digits: a stand-in for the coloured MNIST (CMNIST) of the correlated-factors paper,
and the same painting applied to real MNIST files that you supply.

The paper behind Part V paints every MNIST digit in one of ten colours, the ten hues of
3dshapes, and studies two factors: the digit (content) and the colour. We cannot ship MNIST,
so :class:`ColoredDigits` paints the 1,797 handwritten 8 x 8 digits that ship with
scikit-learn (``sklearn.datasets.load_digits``): upscaled to 64 x 64 (bicubic to 48 x 48,
then an 8-pixel black margin, about MNIST's proportions) and multiplied by the colour
HSV(hue, 1, 1). :class:`MnistColored` does the same with the official MNIST idx files
(``path=``; 28 x 28, bilinear to 64 x 64).

Ground-truth view (as disentanglement_lib treats SmallNORB's instance): the factors are
digit (10) and colour (10); *which* handwritten example of that digit is shown is nuisance,
drawn uniformly for each observation. To keep the grid full, each digit keeps its first ``K``
examples in file order (K = the smallest per-digit count, or ``per_digit=``). The stored image
of (digit, colour) is ``(K + 3, h, w)`` uint8: the K grey examples at their native size, then
three constant planes holding the paint colour (x 255); :meth:`observe` picks an example,
upscales it and paints it on the device. ``image_size=32`` draws the same picture on a
32 x 32 canvas (the CPU scale), and ``ColoredDigits(split="train" / "test")`` splits every
digit's examples 80 / 20, so that a model can be scored on handwriting it never saw.
Correlating digit and colour, as the paper does, is
:func:`dlib.data.correlated.correlated_split` with ``factors=("digit", "color")``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlib import config
from dlib.data.base import GroundTruthData
from dlib.data.official import md5sum

__all__ = [
    "ColoredDigits",
    "MnistColored",
    "MNIST_MD5",
    "read_idx",
    "write_idx",
    "load_mnist",
    "paint_digits",
    "digit_colours",
]

CANVAS = 64
FACTOR_NAMES = ("digit", "color")
HUES = np.arange(10) / 10.0
MNIST_URL = "http://yann.lecun.com/exdb/mnist/ (or a mirror)"
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# idx type byte -> element type (big-endian multi-byte types)
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def digit_colours() -> np.ndarray:
    """The ten paint colours (10, 3) float64: HSV(k / 10, 1, 1), 3dshapes' hues."""
    p = np.mod(np.array([5.0, 3.0, 1.0])[None, :] + 6.0 * HUES[:, None], 6.0)
    return 1.0 - np.clip(np.minimum(p, 4.0 - p), 0.0, 1.0)


# ---- idx files ----------------------------------------------------------------------------------
def read_idx(path: str | Path) -> np.ndarray:
    """The array in an idx file (MNIST's format), plain or gzipped, with clear errors."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(
            f"{path}: not an idx file (the magic number must be 0x0000TTNN with a known type TT)"
        )
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"{path}: header truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", ndim, 4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: header says {dims} {dtype} ({expected} bytes of data) but the file has "
            f"{len(raw) - offset}: truncated or not an idx file"
        )
    return np.frombuffer(raw, dtype, offset=offset).reshape(dims).copy()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an idx file (gzipped if the name ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {
        dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in IDX_TYPES.items()
    }
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in codes:
        raise ValueError(
            f"idx files hold uint8, int8, int16, int32, float32 or float64, not {array.dtype}"
        )
    header = bytes([0, 0, codes[dtype], array.ndim]) + np.array(array.shape, ">i4").tobytes()
    raw = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
    return path


def _find(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"{stem}(.gz) not found in {directory}. Get MNIST from {MNIST_URL}; dlib never downloads it"
        " (dlib.data.load('colored_digits') needs no file)."
    )


def load_mnist(
    directory: str | Path, split: str = "train", md5: dict[str, str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of an MNIST split from ``directory``.

    Gzipped files are checked against :data:`MNIST_MD5` (or ``md5``, a name -> digest map;
    ``{}`` skips the checks); ungzipped files only against the schema.
    """
    directory = Path(directory).expanduser()
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"MNIST directory {directory} not found; get the files from {MNIST_URL}"
        )
    prefix = "train" if split == "train" else "t10k"
    digests = MNIST_MD5 if md5 is None else md5
    arrays = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        path = _find(directory, f"{prefix}-{kind}")
        want = digests.get(path.name)
        if want is not None and md5sum(path) != want.lower():
            raise ValueError(
                f"{path} has MD5 {md5sum(path)}, expected {want}: a truncated or different file? "
                "Get it again, or pass md5={} to skip the check."
            )
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"MNIST images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"MNIST labels must be ({len(images)},), got {labels.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError("MNIST labels must be digits 0-9")
    return images, labels.astype(np.int64)


# ---- painting -----------------------------------------------------------------------------------
def paint_digits(grey: torch.Tensor, colours: torch.Tensor, inner: int,
                 canvas: int = CANVAS) -> torch.Tensor:
    """Painted digits (N, 3, canvas, canvas) float32 in [0, 1] from grey (N, 1, h, w) in [0, 1]
    and colours (N, 3): upscale to ``inner`` pixels (bicubic, clamped), centre on a black
    canvas, multiply by the colour."""
    if not 1 <= inner <= canvas:
        raise ValueError(f"inner must lie in [1, canvas={canvas}], got {inner}")
    up = F.interpolate(grey, size=(inner, inner), mode="bicubic", align_corners=False)
    pad = (canvas - inner) // 2
    up = F.pad(up.clamp_(0.0, 1.0), (pad, canvas - inner - pad, pad, canvas - inner - pad))
    return up * colours[:, :, None, None]


#: image sizes the painted digits are drawn at (64: the paper's; 32: the CPU scale's)
IMAGE_SIZES = (64, 32)
#: the share of every digit's examples that ``split="test"`` holds out (the last ones in file
#: order); ``"train"`` keeps the rest
TEST_FRACTION = 0.2
SPLITS = ("all", "train", "test")


class _PaintedDigits(GroundTruthData):
    """Shared machinery: grey examples grouped by digit, painted in ten colours."""

    inner = CANVAS  # size the grey examples are upscaled to before the margin, at 64 x 64
    image_sizes = IMAGE_SIZES

    def __init__(self, grey: np.ndarray, labels: np.ndarray, per_digit: int | None,
                 image_size: int = CANVAS, examples: str = "all"):
        self.image_size = self._checked_image_size(image_size)
        self.inner_size = round(self.inner * self.image_size / CANVAS)
        if examples not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {examples!r}")
        counts = np.bincount(labels, minlength=10)
        if (counts == 0).any():
            raise ValueError(
                f"every digit needs at least one example; counts per digit {counts.tolist()}"
            )
        k = int(counts.min()) if per_digit is None else int(per_digit)
        if not 1 <= k <= counts.min():
            raise ValueError(
                f"per_digit must lie in [1, {counts.min()}] (the rarest digit's count), got {k}"
            )
        # examples[d, j] = the j-th example of digit d in file order; a split keeps a slice
        keep = np.arange(k)
        if examples != "all":
            n_test = int(round(TEST_FRACTION * k))
            if n_test < 1 or n_test >= k:
                raise ValueError(f"per_digit = {k} examples cannot be split into train and test")
            keep = keep[k - n_test:] if examples == "test" else keep[:k - n_test]
        k = len(keep)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pick = order[starts[:, None] + keep[None, :]]
        self.examples = grey[pick]  # (10, K, h, w) uint8
        self.source_index = pick  # (10, K): row in the source arrays
        self.per_digit = k
        colours = np.round(digit_colours() * 255).astype(np.uint8)
        h, w = grey.shape[1:]
        # stored[(d, c)] = K grey examples of d, then three planes of colour c
        stored = np.empty((10, 10, k + 3, h, w), dtype=np.uint8)
        stored[:, :, :k] = self.examples[:, None]
        stored[:, :, k:] = colours[None, :, :, None, None]
        self.stored = stored.reshape(100, k + 3, h, w)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return FACTOR_NAMES

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (10, 10)

    @property
    def factor_values(self) -> list[np.ndarray]:
        """Digits 0-9 and the colours' hues 0.0-0.9."""
        return [np.arange(10, dtype=np.float64), HUES.copy()]

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)

    def images_from_classes(
        self, classes: torch.Tensor, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Stored (N, K + 3, h, w) uint8: the K grey examples of the digit, the colour planes."""
        index = torch.as_tensor(self.classes_to_index(classes))
        return torch.from_numpy(self.stored)[index].to(config.device(device))

    def all_images(self, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.from_numpy(self.stored).to(config.device(device))

    def _paint(self, stored: torch.Tensor, example: torch.Tensor) -> torch.Tensor:
        n, k = stored.shape[0], self.per_digit
        rows = torch.arange(n, device=stored.device)
        grey = stored[rows, example].unsqueeze(1).float() / 255.0
        colours = stored[:, k:, 0, 0].float() / 255.0
        return paint_digits(grey, colours, self.inner_size, self.image_size)

    def observe(
        self, stored: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Painted observations (N, 3, S, S) float32, one random example per row."""
        expected = (self.per_digit + 3, *self.stored.shape[2:])
        if stored.dtype != torch.uint8 or tuple(stored.shape[1:]) != expected:
            raise ValueError(
                f"stored images must be uint8 (N, {', '.join(map(str, expected))}), got "
                f"{stored.dtype} {tuple(stored.shape)}"
            )
        example = torch.randint(
            self.per_digit, (stored.shape[0],), device=stored.device, generator=generator
        )
        return self._paint(stored, example)

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        """The example is drawn ``random_state.randint(K, size=N)`` after the factors."""
        classes = self.check_classes(factors)
        example = torch.as_tensor(random_state.randint(self.per_digit, size=len(classes)))
        x = self._paint(self.images_from_classes(classes, "cpu"), example)
        return x.permute(0, 2, 3, 1).numpy()


class ColoredDigits(_PaintedDigits):
    """scikit-learn's 8 x 8 handwritten digits, upscaled to 64 x 64 and painted in ten colours.

    Factors digit (10) and colour (10); the example (K = 174 per digit by default, the rarest
    digit's count) is nuisance. Needs no file. ``split="train"`` / ``"test"`` keep the first 80 %
    / the last 20 % of every digit's K examples (139 / 35): a test set of handwriting the model
    never saw, painted in every colour, as the paper paints MNIST's test file (Part V).
    ``image_size`` 32 draws the same picture on a 32 x 32 canvas (the CPU scale).
    """

    name = "colored_digits"
    inner = 48

    def __init__(self, per_digit: int | None = None, split: str = "all",
                 image_size: int = CANVAS):
        from sklearn.datasets import load_digits

        digits = load_digits()
        grey = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16
        super().__init__(grey, digits.target.astype(np.int64), per_digit, image_size, split)


class MnistColored(_PaintedDigits):
    """Real MNIST (``path=`` the directory with the idx files) painted in ten colours, 64 x 64.

    ``split`` picks the training or test file (the paper paints both, separately);
    ``per_digit`` caps the examples per digit (default: the rarest digit's count, 5,421 for
    the training split: 100 stored entries of 5,424 x 28 x 28 bytes, 425 MB).
    """

    name = "mnist_colored"

    def __init__(
        self,
        path: str | Path | None = None,
        split: str = "train",
        per_digit: int | None = None,
        md5: dict[str, str] | None = None,
        image_size: int = CANVAS,
    ):
        if path is None:
            raise ValueError(
                "mnist_colored reads your MNIST idx files: pass path= their directory "
                "(dlib.data.load('colored_digits') needs no file)"
            )
        grey, labels = load_mnist(path, split, md5)
        super().__init__(grey, labels, per_digit, image_size)
