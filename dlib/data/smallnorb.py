"""SmallNORB (LeCun et al., 2004) read from the official files, as disentanglement_lib uses it.

SmallNORB photographs 50 toys (5 categories x 10 instances) under 9 elevations, 18 azimuths
and 6 lightings with two cameras: 24,300 training plus 24,300 test stereo pairs of 96 x 96
grey images. Following disentanglement_lib's ``smallnorb`` we

* merge the training (instances 4, 6, 7, 8, 9) and test (instances 0, 1, 2, 3, 5) files,
* keep the left camera only and resize every image to 64 x 64 (PIL, Lanczos/antialias),
* use four factors -- category (5), elevation (9), azimuth (18), lighting (6) -- and treat the
  instance (10) as nuisance, drawn uniformly for every observation.

So an observation (64, 64, 1) of factor classes is one of ten photographs, one per instance
of that category. Stored images keep all ten: shape (N, 10, 64, 64) uint8, channel = the
instance number (0-9 within each category), and :meth:`SmallNORB.observe` picks one per sample.

The files use NORB's binary-matrix format: little-endian int32 magic number (the element
type), int32 number of dimensions, ``max(3, ndim)`` int32 sizes, then the raw elements.
They are distributed gzipped; both ``.mat`` and ``.mat.gz`` are read. dlib never downloads
them.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlib import config
from dlib.data.base import GroundTruthData

__all__ = [
    "SmallNORB",
    "SmallNORBFiles",
    "NORB_MAGIC",
    "SMALLNORB_SHA256",
    "SMALLNORB_PARTS",
    "read_norb_matrix",
    "write_norb_matrix",
    "load_smallnorb",
]

SMALLNORB_URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
SMALLNORB_PARTS = (
    "smallnorb-5x46789x9x18x6x2x96x96-training",
    "smallnorb-5x01235x9x18x6x2x96x96-testing",
)
# element type of each magic number (NORB's binary-matrix format)
NORB_MAGIC = {
    507333713: np.dtype("<f4"),  # 0x1E3D4C51 single precision
    507333715: np.dtype("<f8"),  # 0x1E3D4C53 double precision
    507333716: np.dtype("<i4"),  # 0x1E3D4C54 integer
    507333717: np.dtype("u1"),  # 0x1E3D4C55 byte
    507333718: np.dtype("<i2"),  # 0x1E3D4C56 short
}
# SHA-256 of the gzipped official files, as listed by tensorflow_datasets' url_checksums
SMALLNORB_SHA256 = {
    "smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz":
        "5ffd6272a07d32695ee1082a26a41a93a37aab8c28da047f8c34ed348d214873",
    "smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat.gz":
        "2784e542c1922060691090952b6cd6278879a216c90f81476f0f00256d42cdaa",
    "smallnorb-5x46789x9x18x6x2x96x96-training-info.mat.gz":
        "de7eb932ebe7a4ee16217fead60660d0eb3d23632c2f4d1c51f88c501c17bf32",
    "smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz":
        "cf7104eed3e51174d2f65b66d1e5878b9da233b886f161b0d88f4510ba2c7474",
    "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz":
        "ecaf6d5bb8c3bc5eab9cf0258f6d2198dd474e016e374836fc097f2e5ff509ff",
    "smallnorb-5x01235x9x18x6x2x96x96-testing-info.mat.gz":
        "16adf314226327ee006d1a44db8cfef52773c06c829951d5653a9f6f310248a2",
}  # fmt: skip
FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
FACTOR_SIZES = (5, 9, 18, 6)
INSTANCES = 10
CATEGORIES = ("animal", "human", "airplane", "truck", "car")
CANVAS = 64


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_norb_matrix(path: str | Path) -> np.ndarray:
    """The array in a NORB binary-matrix file (``.mat``, or gzipped ``.mat.gz``).

    Raises a ValueError naming the problem for an unknown magic number, an impossible header,
    or a file whose length does not match its header (truncated or padded).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from err
    if len(raw) < 20:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for a NORB matrix header")
    magic, ndim = (int(v) for v in np.frombuffer(raw, "<i4", 2))
    if magic not in NORB_MAGIC:
        raise ValueError(
            f"{path}: magic number {magic} (0x{magic & 0xFFFFFFFF:08X}) is not a NORB matrix "
            f"type; expected one of {sorted(NORB_MAGIC)}"
        )
    if not 0 <= ndim <= 16:
        raise ValueError(f"{path}: implausible number of dimensions {ndim}")
    header_dims = max(3, ndim)
    offset = 8 + 4 * header_dims
    if len(raw) < offset:
        raise ValueError(f"{path}: header truncated")
    dims = tuple(int(v) for v in np.frombuffer(raw, "<i4", header_dims, 8)[:ndim])
    if any(d < 0 for d in dims):
        raise ValueError(f"{path}: negative dimension in {dims}")
    dtype = NORB_MAGIC[magic]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: header says {dims} {dtype} ({expected} bytes of data) but the file has "
            f"{len(raw) - offset}: truncated or not a NORB matrix"
        )
    return np.frombuffer(raw, dtype, offset=offset).reshape(dims).copy()


def write_norb_matrix(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` in NORB's binary-matrix format (gzipped if the name ends in ``.gz``)."""
    array = np.asarray(array)
    types = {dt: magic for magic, dt in NORB_MAGIC.items()}
    dtype = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in types:
        raise ValueError(
            f"NORB matrices hold uint8, int16, int32, float32 or float64, not {array.dtype}"
        )
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([types[dtype], array.ndim, *dims], dtype="<i4").tobytes()
    raw = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    path = Path(path)
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def _find(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.mat", f"{stem}.mat.gz"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"{stem}.mat(.gz) not found in {directory}. SmallNORB's six files come from "
        f"{SMALLNORB_URL}; dlib never downloads them."
    )


def _resize(images: np.ndarray) -> np.ndarray:
    """(N, 96, 96) uint8 -> (N, 64, 64) uint8 with PIL's Lanczos filter (disentanglement_lib's
    ``ANTIALIAS``)."""
    from PIL import Image

    out = np.empty((len(images), CANVAS, CANVAS), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((CANVAS, CANVAS), Image.LANCZOS))
    return out


@dataclass(frozen=True)
class SmallNORBFiles:
    """Both parts merged: left-camera images resized to 64 x 64 and their labels."""

    images: np.ndarray  # (M, 64, 64) uint8
    features: np.ndarray  # (M, 5) int64: category, instance, elevation, azimuth class, lighting


def load_smallnorb(
    directory: str | Path,
    sha256: dict[str, str] | None = None,
    parts: tuple[str, ...] = SMALLNORB_PARTS,
) -> SmallNORBFiles:
    """Read, check and merge the SmallNORB files in ``directory``.

    ``sha256`` maps file names to expected SHA-256 digests; by default the official gzipped
    files are checked against :data:`SMALLNORB_SHA256` and ungzipped ``.mat`` files (for which
    no published digest exists) only against the schema. Pass ``{}`` to skip all checks.
    Every (category, instance, elevation, azimuth, lighting) must appear exactly once.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"SmallNORB directory {directory} not found; put the six files from "
            f"{SMALLNORB_URL} there"
        )
    digests = SMALLNORB_SHA256 if sha256 is None else sha256
    images, features = [], []
    for part in parts:
        arrays = {}
        for kind in ("dat", "cat", "info"):
            path = _find(directory, f"{part}-{kind}")
            want = digests.get(path.name)
            if want is not None and _sha256(path) != want.lower():
                raise ValueError(
                    f"{path} has SHA-256 {_sha256(path)}, expected {want}: a truncated or "
                    "different file? Get it again, or pass sha256={} to skip the check."
                )
            arrays[kind] = read_norb_matrix(path)
        dat, cat, info = arrays["dat"], arrays["cat"], arrays["info"]
        n = len(cat)
        if (
            dat.dtype != np.uint8
            or dat.ndim != 4
            or dat.shape[:2] != (n, 2)
            or dat.shape[2] != dat.shape[3]
        ):
            raise ValueError(
                f"{part}-dat must be uint8 ({n}, 2, S, S) stereo pairs, got {dat.dtype} {dat.shape}"
            )
        if cat.ndim != 1 or info.shape != (n, 4):
            raise ValueError(
                f"{part}: cat must be ({n},) and info ({n}, 4), got {cat.shape} and {info.shape}"
            )
        feats = np.column_stack([cat, info]).astype(np.int64)
        if (feats[:, 3] % 2).any():
            raise ValueError(f"{part}-info: azimuths must be even (0, 2, ..., 34)")
        feats[:, 3] //= 2  # azimuth 0, 2, ..., 34 -> class 0 ... 17 (x 20 degrees)
        images.append(dat[:, 0])  # the left camera
        features.append(feats)
    feats_all = np.concatenate(features)
    full = (5, INSTANCES, 9, 18, 6)
    if (feats_all < 0).any() or (feats_all >= np.array(full)).any():
        raise ValueError(
            f"labels out of range: (category, instance, elevation, azimuth, lighting) < {full}"
        )
    index = np.ravel_multi_index(feats_all.T, full)
    if len(np.unique(index)) != len(index) or len(index) != int(np.prod(full)):
        raise ValueError(
            f"the files hold {len(index)} images covering {len(np.unique(index))} of the "
            f"{int(np.prod(full))} (category, instance, elevation, azimuth, lighting) combinations;"
            " every combination must appear exactly once"
        )
    # resize last, once everything is known to be right (about 0.1-0.4 ms an image)
    images_all = np.concatenate(
        [_resize(img) if img.shape[1] != CANVAS else img.copy() for img in images]
    )
    return SmallNORBFiles(images_all, feats_all)


class SmallNORB(GroundTruthData):
    """SmallNORB as in disentanglement_lib: factors category, elevation, azimuth, lighting;
    the instance is nuisance. Observations (64, 64, 1) in [0, 1]. ``path=`` is the directory
    holding the six official files (required: there is no procedural version)."""

    name = "smallnorb"

    def __init__(
        self, path: str | Path | None = None, sha256: dict[str, str] | None = None, **load_options
    ):
        if path is None:
            raise ValueError(
                "SmallNORB has no procedural stand-in: pass path= the directory with the six "
                f"files from {SMALLNORB_URL}"
            )
        self.files = load_smallnorb(path, sha256, **load_options)
        feats = self.files.features
        # stored[grid index of (category, elevation, azimuth, lighting), instance] = its image
        grid = np.ravel_multi_index(feats[:, [0, 2, 3, 4]].T, FACTOR_SIZES)
        stored = np.zeros((int(np.prod(FACTOR_SIZES)), INSTANCES, CANVAS, CANVAS), dtype=np.uint8)
        stored[grid, feats[:, 1]] = self.files.images
        self.stored = stored

    @property
    def factor_names(self) -> tuple[str, ...]:
        return FACTOR_NAMES

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return FACTOR_SIZES

    @property
    def factor_values(self) -> list[np.ndarray]:
        """Category classes, elevation in degrees (30 ... 70), azimuth in degrees (0 ... 340),
        lighting classes."""
        return [
            np.arange(5, dtype=np.float64),
            30.0 + 5.0 * np.arange(9),
            20.0 * np.arange(18),
            np.arange(6, dtype=np.float64),
        ]

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (CANVAS, CANVAS, 1)

    def images_from_classes(
        self, classes: torch.Tensor, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """All ten instances' images (N, 10, 64, 64) uint8 of factor classes (N, 4)."""
        dev = config.device(device)
        index = torch.as_tensor(self.classes_to_index(classes))
        return torch.from_numpy(self.stored)[index].to(dev)

    def all_images(self, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.from_numpy(self.stored).to(config.device(device))

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        """One photograph per row: the instance drawn ``random_state.randint(10, size=N)``,
        as disentanglement_lib's split state space does."""
        classes = self.check_classes(factors)
        instance = random_state.randint(INSTANCES, size=len(classes))
        images = self.stored[self.classes_to_index(classes), instance]
        return images[..., None].astype(np.float32) / np.float32(255.0)

    def observe(
        self, stored: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if stored.dtype != torch.uint8 or tuple(stored.shape[1:]) != (INSTANCES, CANVAS, CANVAS):
            raise ValueError(
                f"stored images must be uint8 (N, 10, 64, 64), got {stored.dtype} "
                f"{tuple(stored.shape)}"
            )
        n = stored.shape[0]
        pick = torch.randint(INSTANCES, (n,), device=stored.device, generator=generator)
        chosen = stored[torch.arange(n, device=stored.device), pick]
        return chosen.unsqueeze(1).float() / 255.0
