"""A held-out view of a ground-truth dataset: the rows of an index set (a test split).

Holds :class:`HeldOut`, which gives a metric (:func:`dlib.metrics.compute`) the factors and
images of the given rows only, drawn with the metric's ``RandomState`` as from the full data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["HeldOut"]


class HeldOut:
    """The rows ``index`` (flat indices into ``data``'s factor grid) of a ground-truth dataset
    as a sampler for :func:`dlib.metrics.compute`: ``sample`` draws rows of the index with the
    metric's RandomState and renders them as ``data`` would."""

    def __init__(self, data: Any, index: np.ndarray) -> None:
        self.data = data
        self.index = np.asarray(index)
        if self.index.ndim != 1 or len(self.index) == 0:
            raise ValueError(f"the held-out set must be a non-empty 1-D index, got shape "
                             f"{self.index.shape}")

    @property
    def num_factors(self) -> int:
        """Number of factors of the underlying dataset."""
        return self.data.num_factors

    @property
    def factors_num_values(self) -> list[int]:
        """Number of values of every factor (disentanglement_lib's name)."""
        return list(self.data.factor_sizes)

    def sample(self, num: int, random_state: np.random.RandomState) -> tuple[np.ndarray, Any]:
        """``num`` rows of the held-out set: their factor classes (num, F) and images."""
        rows = self.index[random_state.randint(len(self.index), size=int(num))]
        factors = self.data.index_to_classes(rows)
        return factors, self.data.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num: int, random_state: np.random.RandomState) -> Any:
        """Images of ``num`` rows of the held-out set."""
        return self.sample(num, random_state)[1]
