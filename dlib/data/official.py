"""Readers for the official dataset files, with checksums and schema checks.

dlib never downloads data: the reader fetches the file once, and we check it is the file we
think it is (MD5) and has the layout the code relies on before anything else reads it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DSPRITES_MD5", "DSPRITES_URL", "DSpritesFile", "load_dsprites_npz", "md5sum"]

DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset"
DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
DSPRITES_LATENTS = ("color", "shape", "scale", "orientation", "posX", "posY")


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: str | Path, md5: str | None, what: str, where: str) -> Path:
    """``path`` if it exists and (unless ``md5`` is None) has that MD5, else a clear error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path}. Get it from {where}.")
    if md5 is not None:
        found = md5sum(path)
        if found != md5.lower():
            raise ValueError(
                f"{path} has MD5 {found}, expected {md5}: a truncated or different file? "
                "Download it again, or pass md5=None to skip the check (e.g. for your own file)."
            )
    return path


@dataclass(frozen=True)
class DSpritesFile:
    """The arrays of a dSprites ``.npz`` file, validated.

    ``latents_sizes`` has six entries (colour, shape, scale, orientation, posX, posY);
    ``latents_bases`` are the row-major strides, so ``latents_classes @ latents_bases`` is
    ``arange(N)``.
    """

    imgs: np.ndarray  # (N, 64, 64) uint8 in {0, 1}
    latents_values: np.ndarray  # (N, 6) float64
    latents_classes: np.ndarray  # (N, 6) int64
    latents_sizes: tuple[int, ...]
    metadata: dict

    @property
    def latents_bases(self) -> np.ndarray:
        """Index stride of each latent (the last, posY, is fastest)."""
        sizes = np.asarray(self.latents_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)


def load_dsprites_npz(path: str | Path, md5: str | None = DSPRITES_MD5) -> DSpritesFile:
    """Read and validate the official dSprites npz (or a smaller file with the same schema).

    The metadata is a Python-2 pickle, hence ``allow_pickle=True, encoding="latin1"``; only
    load files you trust. Sizes come from ``metadata["latents_sizes"]``, so a reduced grid
    (e.g. sizes ``[1, 3, 2, 4, 4, 4]``) goes through the same checks.
    """
    hint = (
        f"{DSPRITES_URL} ({DSPRITES_FILE}); the procedural dSprites, "
        "dlib.data.load('dsprites') without path=, needs no file"
    )
    path = check_file(path, md5, "the dSprites npz", hint)
    with np.load(path, allow_pickle=True, encoding="latin1") as npz:
        missing = {"imgs", "latents_values", "latents_classes", "metadata"} - set(npz.files)
        if missing:
            raise ValueError(f"{path} is not a dSprites npz: missing keys {sorted(missing)}")
        imgs = npz["imgs"]
        values = np.asarray(npz["latents_values"], dtype=np.float64)
        classes = npz["latents_classes"]
        metadata = npz["metadata"][()]
    if not isinstance(metadata, dict) or "latents_sizes" not in metadata:
        raise ValueError(f"{path}: metadata must be a dict with 'latents_sizes'")
    sizes = tuple(int(s) for s in np.asarray(metadata["latents_sizes"]).reshape(-1))
    if len(sizes) != len(DSPRITES_LATENTS) or sizes[0] != 1 or min(sizes) < 1:
        raise ValueError(
            f"{path}: latents_sizes must be 6 positive sizes {DSPRITES_LATENTS} with a single "
            f"colour, got {sizes}"
        )
    n = int(np.prod(sizes))
    if imgs.dtype != np.uint8 or imgs.shape != (n, 64, 64):
        raise ValueError(
            f"{path}: imgs must be uint8 ({n}, 64, 64) for latents_sizes {sizes}, "
            f"got {imgs.dtype} {imgs.shape}"
        )
    if values.shape != (n, 6) or classes.shape != (n, 6):
        raise ValueError(
            f"{path}: latents_values and latents_classes must be ({n}, 6), "
            f"got {values.shape} and {classes.shape}"
        )
    if not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"{path}: latents_classes must be integers, got {classes.dtype}")
    classes = classes.astype(np.int64, copy=False)
    file = DSpritesFile(imgs, values, classes, sizes, metadata)
    if not np.array_equal(classes @ file.latents_bases, np.arange(n)):
        raise ValueError(
            f"{path}: latents_classes are not in row-major order (classes @ bases != arange(N)); "
            "the images could not be looked up by their factors"
        )
    if imgs.max(initial=0) > 1:
        raise ValueError(f"{path}: imgs must be binary (0/1), found values up to {imgs.max()}")
    return file
