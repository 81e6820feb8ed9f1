"""A cheap ground-truth dataset whose observations are the factor classes themselves.

Used by the tests and by the chapters' galleries: a "representation" is then any function of
the factor classes (identity, permuted, rescaled, rotated, noisy ...), and every metric runs in
seconds without rendering an image.

Holds :class:`FactorsAsObservations`, :func:`full_grid` and :func:`flat`.
"""

from __future__ import annotations

import numpy as np
import torch

from dlib.data.base import GroundTruthData

__all__ = ["FactorsAsObservations", "DSPRITES_SIZES", "full_grid", "flat"]

DSPRITES_SIZES = (3, 6, 40, 32, 32)
"""dSprites' factor sizes (shape, scale, orientation, posX, posY)."""


class FactorsAsObservations(GroundTruthData):
    """Observations ``(N, 1, F, 1)`` float32 equal to the factor classes (plus optional noise).

    ``noise > 0`` adds Gaussian noise drawn from the metric's RandomState *after* the factors,
    as a dataset with per-sample nuisance would, so the sampling stream is exercised too.
    """

    def __init__(self, sizes: tuple[int, ...] = DSPRITES_SIZES, noise: float = 0.0):
        if not sizes or any(int(s) < 1 for s in sizes):
            raise ValueError(f"factor sizes must be positive, got {sizes}")
        self._sizes = tuple(int(s) for s in sizes)
        self.noise = float(noise)

    @property
    def name(self) -> str:
        return "factors_as_observations"

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f"factor{j}" for j in range(len(self._sizes)))

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self._sizes

    @property
    def factor_values(self) -> list[np.ndarray]:
        return [np.arange(s, dtype=np.float64) for s in self._sizes]

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (1, len(self._sizes), 1)

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        x = np.asarray(factors, dtype=np.float32).reshape(len(factors), 1, -1, 1)
        if self.noise > 0:
            x = x + self.noise * random_state.standard_normal(x.shape).astype(np.float32)
        return x

    def images_from_classes(self, classes: torch.Tensor, device=None) -> torch.Tensor:
        c = torch.as_tensor(classes).clamp(max=255).to(torch.uint8)
        return c.reshape(len(c), 1, 1, -1).to(device)

    def observe(self, stored: torch.Tensor, generator: torch.Generator | None = None):
        return stored.float()


def full_grid(sizes: tuple[int, ...], repeats: int = 1) -> np.ndarray:
    """Every combination of factor classes ``(prod(sizes) * repeats, F)`` int64.

    On a full grid the factors are *exactly* independent, so plug-in mutual information between
    different factors is exactly 0: the ground for hand-derived known values.
    """
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1)
    return np.tile(grid.reshape(-1, len(sizes)), (repeats, 1)).astype(np.int64)


def flat(x: np.ndarray) -> np.ndarray:
    """The identity representation of :class:`FactorsAsObservations`: ``(N, F)`` float32."""
    return np.asarray(x).reshape(len(x), -1)
