"""The ground-truth data interface shared by every dataset, and its on-device twin.

A ground-truth dataset is a two-step generative model: integer factor *classes* are drawn
uniformly, then an observation is produced from them, possibly with per-sample nuisance
randomness (a colour, noise, a background). :class:`GroundTruthData` speaks two dialects:

* disentanglement_lib's NumPy protocol (``num_factors``, ``factors_num_values``,
  ``observation_shape``, ``sample_factors``, ``sample_observations_from_factors``, ``sample``,
  ``sample_observations``), drawing from a ``numpy.random.RandomState`` with the same calls in
  the same order, so that metrics computed with either library see the same samples;
* a torch path for training: the *stored* images (uint8, before nuisance) live on the device in
  a :class:`DeviceData`, and :meth:`GroundTruthData.observe` applies the nuisance there.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dlib import config

__all__ = ["GroundTruthData", "DeviceData", "cached_array"]


def _as_int_array(x: object, what: str) -> np.ndarray:
    """``x`` as an integer NumPy array, or a ValueError saying what was wrong."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


class GroundTruthData(ABC):
    """A dataset whose observations are generated from a full grid of discrete factors.

    Subclasses define the grid (:attr:`name`, :attr:`factor_names`, :attr:`factor_sizes`,
    :attr:`factor_values`, :attr:`observation_shape`), the stored images
    (:meth:`images_from_classes`), and the nuisance (:meth:`observe` and
    :meth:`sample_observations_from_factors`). Index ``i`` of the dataset is the row-major
    position of its classes, the last factor fastest.
    """

    # ---- the grid ------------------------------------------------------------------------
    @property
    @abstractmethod
    def name(self) -> str:
        """The name :func:`dlib.data.load` knows this dataset by."""

    @property
    @abstractmethod
    def factor_names(self) -> tuple[str, ...]:
        """Readable names of the factors, in column order."""

    @property
    @abstractmethod
    def factor_sizes(self) -> tuple[int, ...]:
        """Number of classes of each factor."""

    @property
    @abstractmethod
    def factor_values(self) -> list[np.ndarray]:
        """Physical value of every class of every factor (e.g. the scale 0.5 ... 1)."""

    @property
    @abstractmethod
    def observation_shape(self) -> tuple[int, int, int]:
        """(H, W, C), disentanglement_lib's layout of an observation."""

    @property
    def num_factors(self) -> int:
        """Number of factors of variation."""
        return len(self.factor_sizes)

    @property
    def factors_num_values(self) -> list[int]:
        """``factor_sizes`` as a list (disentanglement_lib's name)."""
        return list(self.factor_sizes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W), torch's layout of an observation."""
        h, w, c = self.observation_shape
        return (c, h, w)

    def _checked_image_size(self, image_size: int) -> int:
        """``image_size`` as an int if the class draws at it (its ``image_sizes``), else a
        clear error."""
        sizes = tuple(getattr(self, "image_sizes", ()))
        if image_size not in sizes:
            raise ValueError(f"{self.name} is drawn at {sizes} pixels, not {image_size!r}")
        return int(image_size)

    @property
    def num_observations(self) -> int:
        """Number of factor combinations (= stored images)."""
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    @property
    def factor_bases(self) -> np.ndarray:
        """Index strides: ``index = classes @ factor_bases`` (last factor fastest)."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    # ---- classes <-> index ---------------------------------------------------------------
    def check_classes(self, classes: object) -> np.ndarray:
        """Validate a batch of factor classes: shape (N, F), integer, each in range."""
        arr = _as_int_array(classes, "factor classes")
        if arr.ndim != 2 or arr.shape[1] != self.num_factors:
            raise ValueError(
                f"factor classes must have shape (N, {self.num_factors}) for {self.name}, "
                f"got {arr.shape}"
            )
        sizes = np.asarray(self.factor_sizes)
        bad = (arr < 0) | (arr >= sizes)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"factor class out of range: {self.factor_names[col]} = {arr[row, col]} "
                f"(row {row}) but it has {sizes[col]} classes (0..{sizes[col] - 1})"
            )
        return arr

    def classes_to_index(self, classes: object) -> np.ndarray:
        """Dataset index (N,) int64 of each row of factor classes (N, F)."""
        return self.check_classes(classes) @ self.factor_bases

    def index_to_classes(self, index: object) -> np.ndarray:
        """Factor classes (N, F) int64 of each dataset index."""
        idx = _as_int_array(index, "indices").reshape(-1)
        if ((idx < 0) | (idx >= self.num_observations)).any():
            raise ValueError(f"indices must lie in [0, {self.num_observations}) for {self.name}")
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=1).astype(np.int64)

    def classes_to_values(self, classes: object) -> np.ndarray:
        """Physical factor values (N, F) float64 of factor classes (N, F)."""
        arr = self.check_classes(classes)
        cols = [
            np.asarray(v, dtype=np.float64)[arr[:, j]] for j, v in enumerate(self.factor_values)
        ]
        return np.stack(cols, axis=1) if cols else np.zeros((len(arr), 0))

    # ---- disentanglement_lib's protocol --------------------------------------------------
    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        """``num`` uniform factor classes (num, F), drawn one column at a time.

        Same calls as disentanglement_lib's ``SplitDiscreteStateSpace.sample_latent_factors``
        (``random_state.randint(size_f, size=num)`` per factor, in order), so both libraries
        draw the same factors from the same ``RandomState``.
        """
        num = int(num)
        if num < 0:
            raise ValueError(f"num must be non-negative, got {num}")
        factors = np.zeros((num, self.num_factors), dtype=np.int64)
        for j, size in enumerate(self.factor_sizes):
            factors[:, j] = random_state.randint(size, size=num)
        return factors

    @abstractmethod
    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        """Observations (N, H, W, C) float32 in [0, 1] for factor classes (N, F)."""

    def sample(
        self, num: int, random_state: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(factors, observations)``: factors are drawn first, then the observations."""
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        """``num`` observations (num, H, W, C) float32."""
        return self.sample(num, random_state)[1]

    # ---- the torch path ------------------------------------------------------------------
    @abstractmethod
    def images_from_classes(
        self, classes: torch.Tensor, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The stored images (N, C0, H, W) uint8 of factor classes (N, F), before nuisance."""

    @abstractmethod
    def observe(
        self, stored: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Observations (N, C, H, W) float32 from stored images, nuisance drawn on-device.

        Same distributions as :meth:`sample_observations_from_factors` (not the same
        numbers: the torch generator is a different stream). Static shapes, no host sync.
        """

    #: True when an observation is a function of its factor classes alone and
    #: :meth:`skip_observation_draws` consumes the random stream exactly as
    #: :meth:`sample_observations_from_factors` does; then the metrics may encode each image
    #: once and look its code up (:mod:`dlib.metrics.encoded`)
    deterministic_observations: bool = False

    def skip_observation_draws(self, num: int, random_state: np.random.RandomState) -> None:
        """Draw from ``random_state`` what :meth:`sample_observations_from_factors` draws for
        ``num`` rows, without producing images (only for ``deterministic_observations``)."""
        raise NotImplementedError(
            f"{self.name}: observations are random given the factors (or not declared "
            "otherwise), so codes cannot be looked up by factor index"
        )

    def image_chunks(self, chunk: int = 65536, device: torch.device | str | None = None):
        """Every stored image in index order, as (n, C0, H, W) uint8 chunks of ≤ ``chunk``."""
        dev = config.device(device)
        for start in range(0, self.num_observations, chunk):
            stop = min(start + chunk, self.num_observations)
            classes = torch.as_tensor(self.index_to_classes(np.arange(start, stop)))
            yield self.images_from_classes(classes, dev)

    def all_images(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Every stored image (N, C0, H, W) uint8 in index order (subclasses may cache)."""
        dev = config.device(device)
        chunks = []
        for start in range(0, self.num_observations, 65536):
            stop = min(start + 65536, self.num_observations)
            classes = torch.as_tensor(self.index_to_classes(np.arange(start, stop)))
            chunks.append(self.images_from_classes(classes, dev))
        return torch.cat(chunks)

    def to_device(
        self, device: torch.device | str | None = None, num: int | None = None, seed: int = 0
    ) -> DeviceData:
        """The stored images and their classes as tensors on ``device``, for training.

        ``num=None`` takes every image. ``num=k`` takes k distinct factor combinations drawn
        uniformly (``RandomState(seed).choice(N, k, replace=False)``) and builds only those,
        so a small run never waits for the whole dataset.
        """
        dev = config.device(device)
        if num is None:
            images = self.all_images(dev)
            index = np.arange(self.num_observations)
        else:
            num = int(num)
            if not 1 <= num <= self.num_observations:
                raise ValueError(f"num must lie in [1, {self.num_observations}], got {num}")
            index = np.random.RandomState(seed).choice(self.num_observations, num, replace=False)
            images = self.images_from_classes(torch.as_tensor(self.index_to_classes(index)), dev)
        factors = torch.as_tensor(self.index_to_classes(index), device=dev)
        return DeviceData(self, images, factors)

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes, strict=True)
        )
        return f"{type(self).__name__}({self.name}: {sizes}; observation {self.observation_shape})"


class DeviceData:
    """Stored images and their factor classes resident on one device, sampled there.

    Sampling draws indices with ``torch.randint`` and applies the dataset's nuisance with the
    same generator; nothing syncs with the host and every shape is static, so a training step
    that samples can be captured in a CUDA graph.
    """

    def __init__(self, data: GroundTruthData, images: torch.Tensor, factors: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C0, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if factors.shape != (images.shape[0], data.num_factors):
            raise ValueError(
                f"factors must have shape ({images.shape[0]}, {data.num_factors}), "
                f"got {tuple(factors.shape)}"
            )
        if factors.device != images.device:
            raise ValueError("images and factors must be on the same device")
        self.data = data
        self.images = images
        self.factors = factors.long()

    @property
    def device(self) -> torch.device:
        """Where the images live."""
        return self.images.device

    def __len__(self) -> int:
        return self.images.shape[0]

    def _index(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(len(self), (batch_size,), device=self.device, generator=generator)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch (B, C, H, W) float32 of uniformly drawn observations."""
        return self.data.observe(self.images[self._index(batch_size, generator)], generator)

    def sample_with_factors(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of observations (B, C, H, W) float32 and their factor classes (B, F)."""
        idx = self._index(batch_size, generator)
        return self.data.observe(self.images[idx], generator), self.factors[idx]

    def __repr__(self) -> str:
        return f"DeviceData({self.data.name}, n={len(self)}, device={self.device})"


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).data).hexdigest()


def cached_array(path: Path, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Load the array cached at ``path`` (a ``.npy``), or build and cache it.

    A JSON sidecar (``path`` + ``.json``) holds the array's SHA-256, verified on every load;
    a missing, unreadable or corrupt cache is rebuilt (with a warning when it existed). Writes
    are atomic (temporary file, then rename), so concurrent processes never see half a file.
    """
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
    if path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            arr = np.load(path, allow_pickle=False)
            if _digest(arr) == meta["sha256"]:
                return arr
            reason = "checksum mismatch"
        except Exception as err:  # noqa: BLE001 - any failure means: rebuild
            reason = f"{type(err).__name__}: {err}"
        warnings.warn(f"cache {path} is unusable ({reason}); rebuilding it", stacklevel=2)
    arr = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
    meta = {"sha256": _digest(arr), "shape": list(arr.shape), "dtype": str(arr.dtype)}
    tmp_meta = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)
    os.replace(tmp, path)
    return arr
