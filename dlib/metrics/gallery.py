"""A gallery of synthetic representations whose disentanglement we know by construction.

Each entry maps the factor classes (N, F) of a ground-truth dataset to codes (N, D). Run every
metric on every entry and the score table shows what each metric rewards and where it fails:
a metric should score *identity*, *permuted*, *rescaled* and *monotone-warped* codes as
disentangled (they are, up to the symmetries a representation is allowed), *rotated* ones as
entangled, and *noise* as nothing.

Use it with :class:`dlib.metrics.toy.FactorsAsObservations`, whose observations are the factor
classes themselves: ``represent = as_representation(gallery_codes["rotated"])``.

Holds :func:`make_gallery`, :func:`as_representation` and :func:`score_gallery`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["GALLERY", "DESCRIPTIONS", "make_gallery", "as_representation", "score_gallery"]

Codes = Callable[[np.ndarray], np.ndarray]


def _unit(classes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Factor classes mapped to [0, 1] (a constant factor to 0)."""
    return classes / np.maximum(sizes - 1, 1)


def _standard(classes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Factor classes centred and scaled to unit variance under the uniform factor prior."""
    mean = (sizes - 1) / 2
    std = np.sqrt(np.maximum(sizes**2 - 1, 1) / 12)
    return (classes - mean) / std


def _rotation(d: int, seed: int) -> np.ndarray:
    """A random rotation with no near-zero entry (every code mixes every factor)."""
    rs = np.random.RandomState(seed)
    while True:
        q, r = np.linalg.qr(rs.standard_normal((d, d)))
        q = q * np.sign(np.diag(r))
        if d == 1 or np.abs(q).min() > 0.1:
            return q


def make_gallery(sizes: tuple[int, ...], seed: int = 0) -> dict[str, Codes]:
    """The gallery for factors of the given sizes: name → function(classes (N, F)) → codes."""
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    f = len(sizes)
    rs = np.random.RandomState(seed)
    perm = rs.permutation(f)
    while f > 1 and np.all(perm == np.arange(f)):
        perm = rs.permutation(f)
    scales = rs.uniform(0.2, 5.0, f) * rs.choice([-1.0, 1.0], f)
    shifts = rs.uniform(-3, 3, f)
    rot = _rotation(f, seed)
    # mix the last two factors (on dSprites: posX and posY) by 45 degrees, keep the rest
    mix = np.eye(f)
    if f >= 2:
        c = np.sqrt(0.5)
        mix[-2:, -2:] = [[c, -c], [c, c]]
    noise_rs = np.random.RandomState(seed + 1)

    def identity(y: np.ndarray) -> np.ndarray:
        return _unit(y, sizes_arr)

    def permuted(y: np.ndarray) -> np.ndarray:
        return _unit(y, sizes_arr)[:, perm]

    def rescaled(y: np.ndarray) -> np.ndarray:
        return _unit(y, sizes_arr) * scales + shifts

    def warped(y: np.ndarray) -> np.ndarray:
        u = _unit(y, sizes_arr)
        return np.concatenate([np.exp(3 * u[:, ::2]), np.tanh(4 * (u[:, 1::2] - 0.5))], 1)

    def rotated(y: np.ndarray) -> np.ndarray:
        return _standard(y, sizes_arr) @ rot.T

    def partly_entangled(y: np.ndarray) -> np.ndarray:
        return _standard(y, sizes_arr) @ mix.T

    def factor_missing(y: np.ndarray) -> np.ndarray:
        return _unit(y, sizes_arr)[:, 1:]

    def duplicated(y: np.ndarray) -> np.ndarray:
        u = _unit(y, sizes_arr)
        return np.concatenate([u, u[:, :1]], 1)

    def dead_dimension(y: np.ndarray) -> np.ndarray:
        u = _unit(y, sizes_arr)
        return np.concatenate([u, np.zeros((len(u), 1))], 1)

    def noise(y: np.ndarray) -> np.ndarray:
        return noise_rs.standard_normal((len(y), f))

    return {
        "identity": identity,
        "permuted": permuted,
        "rescaled": rescaled,
        "monotone-warped": warped,
        "rotated": rotated,
        "partly entangled": partly_entangled,
        "one factor missing": factor_missing,
        "duplicated": duplicated,
        "dead dimension": dead_dimension,
        "noise": noise,
    }


DESCRIPTIONS: dict[str, str] = {
    "identity": "code j is factor j scaled to [0, 1]: perfectly disentangled",
    "permuted": "the identity with its dimensions in another order",
    "rescaled": "each code an affine function of one factor (random scale, sign and shift)",
    "monotone-warped": "each code a monotone non-linear function of one factor",
    "rotated": "a random rotation of the standardised factors: every code mixes every factor",
    "partly entangled": "identity, except the last two factors are mixed by a 45° rotation",
    "one factor missing": "the identity without the first factor",
    "duplicated": "the identity plus a copy of the first factor's code",
    "dead dimension": "the identity plus a constant code dimension",
    "noise": "Gaussian noise independent of the factors",
}


GALLERY: tuple[str, ...] = tuple(DESCRIPTIONS)
"""The entries' names, in the order the chapters' tables use."""


def as_representation(codes: Codes) -> Callable[[np.ndarray], np.ndarray]:
    """A ``represent(observations)`` for :class:`~dlib.metrics.toy.FactorsAsObservations`
    (observations (N, 1, F, 1) holding the factor classes)."""

    def represent(observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float64)
        return codes(obs.reshape(len(obs), -1))

    return represent


MetricFn = Callable[..., "float | Mapping[str, float]"]


def score_gallery(
    metric_fns: Mapping[str, MetricFn],
    sizes: tuple[int, ...],
    num_points: int,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every metric on every gallery entry: ``{entry: {metric: score}}``, entries in
    :data:`GALLERY` order.

    ``metric_fns[name](data, represent, random_state, num_points)`` runs one metric through its
    harness and returns a float, or a mapping of several floats (one column per key, named by the
    key). ``data`` is :class:`~dlib.metrics.toy.FactorsAsObservations` with factor ``sizes``,
    ``represent`` the entry's :func:`as_representation`, ``random_state`` a fresh
    ``RandomState(seed)`` for each (entry, metric) — as disentanglement_lib's ``evaluate`` makes
    a fresh one per metric — and ``num_points`` the size knob (each function maps it to its
    ``num_train`` / ``num_eval`` / ``num_test``). The gallery is rebuilt with ``seed`` for each
    call, so the *noise* entry's draws do not depend on which metrics ran before. Example::

        fns = {"MIG": lambda d, r, rs, n: compute_mig(d, r, rs, num_train=n)["discrete_mig"]}
        score_gallery(fns, DSPRITES_SIZES, 10_000)["rotated"]["MIG"]
    """
    from dlib.metrics.toy import FactorsAsObservations

    if isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) \
            or num_points < 1:
        raise ValueError(f"num_points must be a positive int, got {num_points!r}")
    if not metric_fns:
        raise ValueError("metric_fns is empty")
    data = FactorsAsObservations(tuple(sizes))
    table: dict[str, dict[str, float]] = {}
    for entry in GALLERY:
        row: dict[str, float] = {}
        for name, fn in metric_fns.items():
            represent = as_representation(make_gallery(tuple(sizes), seed)[entry])
            value = fn(data, represent, np.random.RandomState(seed), int(num_points))
            if isinstance(value, Mapping):
                row.update({str(k): float(v) for k, v in value.items()})
            else:
                row[name] = float(value)
        table[entry] = row
    return table
