"""Training sets whose factors are correlated, and the independent test set (Part V).

Benchmarks draw factors independently; real data rarely does. Following Träuble et al.
(2021) and the intervention-based paper (seed 002, Section 5 and Appendix B), we keep the
dataset but *resample* it: hold out an independent test set, then draw a training set in which
one chosen pair of factors follows a given joint distribution while every other factor stays
uniform and independent of the pair.

The default joint is the diagonal band of Träuble et al.,
``p(c1, c2) ∝ exp(-(c1/(n1-1) - c2/(n2-1))^2 / (2 sigma^2))``: their
``exp(-|c1 - alpha c2|^2 / (2 sigma^2))`` with ``alpha`` mapping the second factor's range onto
the first's, written with both factors rescaled to [0, 1] so that ``sigma`` is in units of
a factor's range (small sigma: strong correlation; ``sigma=inf``: independent).

The sizes of seed 002 are in :data:`PAPER_SETUPS`: dSprites holds out 50,000 test images and
resamples 200,000 training images with posX and scale correlated; 3dshapes 50,000 / 100,000
with floor and wall hue correlated; coloured MNIST correlates digit and colour.

Sampling (exact for the pair, uniform for the rest): the test set is ``test_size`` distinct
indices drawn uniformly without replacement; the *pool* is every other index. A training
draw picks a pair cell ``(c1, c2)`` from the joint, then one pool item of that cell uniformly
(with replacement across draws), so the pair's joint is the target and, given the pair, the
other factors are uniform over what the test set left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dlib import config
from dlib.data.base import DeviceData, GroundTruthData

__all__ = [
    "band_joint",
    "CorrelatedSplit",
    "correlated_split",
    "ResampledDeviceData",
    "joint_histogram",
    "plot_joint",
    "PAPER_SETUPS",
    "total_variation",
]

PAPER_SETUPS: dict[str, dict] = {
    "dsprites": {"factors": ("posX", "scale"), "train_size": 200_000, "test_size": 50_000},
    "shapes3d": {"factors": ("floor_hue", "wall_hue"), "train_size": 100_000, "test_size": 50_000},
    "colored_digits": {"factors": ("digit", "color"), "train_size": 60_000, "test_size": 0},
    "mnist_colored": {"factors": ("digit", "color"), "train_size": 60_000, "test_size": 0},
}
"""Seed 002's pairs and sizes (dSprites, 3dshapes: Appendix B). The digits have only 100
(digit, colour) cells, the handwriting being nuisance, so nothing is held out at the grid
level: as in the paper, the test set is a separate set of digits painted independently
(MNIST's test file, ``load("mnist_colored", split="test")``); 60,000 draws match the size of
MNIST's training file."""


def band_joint(n1: int, n2: int, sigma: float) -> np.ndarray:
    """The diagonal band (n1, n2): ``p ∝ exp(-(c1/(n1-1) - c2/(n2-1))^2 / (2 sigma^2))``.

    ``sigma`` is in units of a factor's range; ``inf`` gives the uniform (independent) joint.
    A factor with one class sits at 0.
    """
    n1, n2 = int(n1), int(n2)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"factor sizes must be positive, got {n1} and {n2}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive (inf for independence), got {sigma}")
    if np.isinf(sigma):
        return np.full((n1, n2), 1.0 / (n1 * n2))
    u = np.arange(n1) / max(n1 - 1, 1)
    v = np.arange(n2) / max(n2 - 1, 1)
    logits = -((u[:, None] - v[None, :]) ** 2) / (2.0 * sigma**2)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def joint_histogram(
    classes: object, pair: tuple[int, int], sizes: tuple[int, int], normalise: bool = False
) -> np.ndarray:
    """Counts (n1, n2) of the pair of columns ``pair`` of factor classes (N, F)."""
    arr = (
        classes.detach().cpu().numpy() if isinstance(classes, torch.Tensor) else np.asarray(classes)
    )
    i, j = pair
    n1, n2 = sizes
    counts = np.bincount(arr[:, i] * n2 + arr[:, j], minlength=n1 * n2).reshape(n1, n2)
    return counts / max(counts.sum(), 1) if normalise else counts


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ``0.5 * sum |p - q|`` of two distributions of the same shape."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"shapes differ: {p.shape} and {q.shape}")
    return 0.5 * float(np.abs(p / p.sum() - q / q.sum()).sum())


class ResampledDeviceData(DeviceData):
    """A :class:`DeviceData` that draws from a multiset of its images.

    ``images``/``factors`` hold each distinct training image once; ``positions`` (M,) lists
    the training set, an entry per draw of the resampling (repeats included). ``sample`` picks
    uniformly among the M entries, so batches follow the correlated training distribution.
    Static shapes, no host sync, as in :class:`DeviceData`.
    """

    def __init__(
        self,
        data: GroundTruthData,
        images: torch.Tensor,
        factors: torch.Tensor,
        positions: torch.Tensor,
    ):
        super().__init__(data, images, factors)
        positions = positions.to(images.device).long()
        if positions.ndim != 1 or len(positions) == 0:
            raise ValueError("positions must be a non-empty 1-d tensor")
        if int(positions.min()) < 0 or int(positions.max()) >= images.shape[0]:
            raise ValueError(f"positions must index the {images.shape[0]} images")
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    def _index(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        draw = torch.randint(
            len(self.positions), (batch_size,), device=self.device, generator=generator
        )
        return self.positions[draw]

    def __repr__(self) -> str:
        return (
            f"ResampledDeviceData({self.data.name}, n={len(self)}, "
            f"distinct={self.images.shape[0]}, "
            f"device={self.device})"
        )


@dataclass
class CorrelatedSplit:
    """A correlated training set, an independent one of the same size, and a held-out test set.

    Indices are dataset indices (``data.index_to_classes`` gives their factors).
    """

    data: GroundTruthData
    pair: tuple[int, int]  # factor columns of the correlated pair
    joint: np.ndarray  # the target joint (n1, n2) of the pair
    train_index: np.ndarray  # (train_size,) with repeats: the correlated training set
    independent_index: np.ndarray  # (train_size,) uniform draws from the same pool
    test_index: np.ndarray  # (test_size,) distinct, uniform, disjoint from the pool
    seed: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def pair_names(self) -> tuple[str, str]:
        return (self.data.factor_names[self.pair[0]], self.data.factor_names[self.pair[1]])

    def classes(self, which: str = "train") -> np.ndarray:
        """Factor classes (N, F) of ``which`` in {'train', 'independent', 'test'}."""
        return self.data.index_to_classes(self._indices(which))

    def _indices(self, which: str) -> np.ndarray:
        table = {
            "train": self.train_index,
            "independent": self.independent_index,
            "test": self.test_index,
        }
        if which not in table:
            raise ValueError(f"which must be one of {sorted(table)}, got {which!r}")
        return table[which]

    def histogram(self, which: str = "train", normalise: bool = False) -> np.ndarray:
        """Joint histogram (n1, n2) of the pair in ``which``."""
        sizes = (self.data.factor_sizes[self.pair[0]], self.data.factor_sizes[self.pair[1]])
        return joint_histogram(self.classes(which), self.pair, sizes, normalise)

    def to_device(
        self, which: str = "train", device: torch.device | str | None = None
    ) -> DeviceData:
        """``which`` as a device-resident view for :func:`dlib.train.fit` or the metrics.

        'train' and 'independent' give a :class:`ResampledDeviceData` (each distinct image is
        built once; draws follow the resampled multiset); 'test' a plain :class:`DeviceData` of
        its distinct images.
        """
        dev = config.device(device)
        index = self._indices(which)
        if len(index) == 0:
            raise ValueError(f"this split holds no {which} set (test_size=0)")
        distinct, positions = np.unique(index, return_inverse=True)
        classes = self.data.index_to_classes(distinct)
        images = self.data.images_from_classes(torch.as_tensor(classes), dev)
        factors = torch.as_tensor(classes, device=dev)
        if which == "test":
            return DeviceData(self.data, images, factors)
        return ResampledDeviceData(self.data, images, factors, torch.as_tensor(positions))


def _factor_column(data: GroundTruthData, factor: int | str) -> int:
    if isinstance(factor, str):
        if factor not in data.factor_names:
            raise ValueError(
                f"unknown factor {factor!r} for {data.name}; it has {list(data.factor_names)}"
            )
        return data.factor_names.index(factor)
    j = int(factor)
    if not 0 <= j < data.num_factors:
        raise ValueError(f"factor column {j} out of range for {data.num_factors} factors")
    return j


def correlated_split(
    data: GroundTruthData,
    factors: Sequence[int | str] | None = None,
    *,
    sigma: float = 0.2,
    joint: np.ndarray | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> CorrelatedSplit:
    """Hold out an independent test set, then resample a training set with a correlated pair.

    ``factors`` names (or numbers) the pair; ``joint`` (n1, n2), non-negative, gives its
    target distribution (normalised here), else :func:`band_joint` with ``sigma``. Defaults for
    the pair and the sizes come from :data:`PAPER_SETUPS` when the dataset is listed there.
    The draws use ``numpy.random.RandomState(seed)``: test set, then correlated training set,
    then the independent training set.
    """
    setup = PAPER_SETUPS.get(data.name, {})
    if factors is None:
        if "factors" not in setup:
            raise ValueError(f"name the two correlated factors of {data.name} (factors=...)")
        factors = setup["factors"]
    if len(factors) != 2:
        raise ValueError(f"factors must name exactly two factors, got {factors!r}")
    i, j = (_factor_column(data, f) for f in factors)
    if i == j:
        raise ValueError(f"the two correlated factors must differ, got {factors!r} twice")
    n1, n2 = data.factor_sizes[i], data.factor_sizes[j]
    target = band_joint(n1, n2, sigma) if joint is None else np.asarray(joint, dtype=np.float64)
    if target.shape != (n1, n2):
        raise ValueError(f"joint must have shape ({n1}, {n2}) for {factors!r}, got {target.shape}")
    if not np.isfinite(target).all() or (target < 0).any() or target.sum() <= 0:
        raise ValueError("joint must be finite, non-negative and not all zero")
    target = target / target.sum()
    train_size = int(setup.get("train_size", 0) if train_size is None else train_size)
    test_size = int(setup.get("test_size", 0) if test_size is None else test_size)
    n = data.num_observations
    if train_size < 1:
        raise ValueError(f"train_size must be positive, got {train_size}")
    if not 0 <= test_size < n:
        raise ValueError(f"test_size must lie in [0, {n}), got {test_size}")

    rs = np.random.RandomState(seed)
    test_index = np.sort(rs.choice(n, test_size, replace=False))
    in_pool = np.ones(n, dtype=bool)
    in_pool[test_index] = False
    pool = np.flatnonzero(in_pool)
    pool_classes = data.index_to_classes(pool)
    cell = pool_classes[:, i] * n2 + pool_classes[:, j]
    order = np.argsort(cell, kind="stable")
    counts = np.bincount(cell, minlength=n1 * n2)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    empty = (counts == 0) & (target.reshape(-1) > 0)
    if empty.any():
        c1, c2 = divmod(int(np.flatnonzero(empty)[0]), n2)
        raise ValueError(
            f"no training images left with {factors[0]}={c1}, {factors[1]}={c2}; shrink test_size"
        )
    cells = rs.choice(n1 * n2, size=train_size, p=target.reshape(-1))
    offsets = np.floor(rs.random_sample(train_size) * counts[cells]).astype(np.int64)
    train_index = pool[order[starts[cells] + offsets]]
    independent_index = pool[rs.randint(len(pool), size=train_size)]
    return CorrelatedSplit(data, (i, j), target, train_index, independent_index, test_index, seed)


def plot_joint(split: CorrelatedSplit, which: Sequence[str] = ("train", "test"), size: float = 2.6):
    """Heat maps of the pair's empirical joint in ``which`` next to the target (max = 1, as in
    seed 002's Figure 6); returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    panels = [("target", split.joint)] + [(w, split.histogram(w)) for w in which]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(size * len(panels), size), layout="constrained"
    )
    name1, name2 = split.pair_names
    for ax, (title, h) in zip(np.atleast_1d(axes), panels, strict=True):
        im = ax.imshow(h / h.max(), origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_title(title)
        ax.set_xlabel(name2)
        ax.set_ylabel(name1)
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.8, label="relative frequency")
    return fig
