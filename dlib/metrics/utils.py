"""Shared machinery of the metrics: input checks, the sampling protocol, and information helpers.

Layout convention: every array-level function of :mod:`dlib.metrics` takes **points first**,
codes ``(N, D)`` and integer factor classes ``(N, F)``. (disentanglement_lib passes the
transposes, ``(D, N)`` and ``(F, N)``.)

The sampling harness reproduces disentanglement_lib's random stream exactly: a
``numpy.random.RandomState``, chunks of ``batch_size`` points drawn with ``data.sample`` (factor
columns one at a time, then observations), train set before test set. A representation may
return NumPy arrays or torch tensors on any device; outputs are gathered as returned and
converted to NumPy once per set.

Holds :class:`GroundTruthProtocol`, :func:`as_random_state`, :func:`to_numpy`, :func:`as_codes`,
:func:`as_factors`, :func:`check_pair`, :func:`varying_factors`, :func:`check_positive_int`,
:func:`stack_outputs`, :func:`represent_batches`, :func:`sample_codes_factors`,
:func:`histogram_discretize`, :func:`discrete_mutual_info`, :func:`discrete_entropy`,
:func:`normalize_codes`, :func:`torch_representation` and :func:`sampled_representation`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "GroundTruthProtocol",
    "Represent",
    "as_random_state",
    "as_codes",
    "as_factors",
    "check_pair",
    "varying_factors",
    "to_numpy",
    "stack_outputs",
    "represent_batches",
    "sample_codes_factors",
    "histogram_discretize",
    "discrete_mutual_info",
    "discrete_entropy",
    "normalize_codes",
    "torch_representation",
    "sampled_representation",
]


class GroundTruthProtocol(Protocol):
    """What the harness needs from a dataset (disentanglement_lib's ground-truth protocol)."""

    @property
    def num_factors(self) -> int: ...

    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray: ...

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray: ...

    def sample(
        self, num: int, random_state: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def sample_observations(
        self, num: int, random_state: np.random.RandomState
    ) -> np.ndarray: ...


Represent = Callable[[np.ndarray], Any]
"""``represent(observations (B, H, W, C)) -> codes (B, D)``, NumPy or torch."""


# ---- input conversion and checks ------------------------------------------------------------
def as_random_state(random_state: np.random.RandomState | int) -> np.random.RandomState:
    """The metric's RandomState; an int seeds a fresh one (disentanglement_lib's convention)."""
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise TypeError(
        "random_state must be a numpy.random.RandomState or an int seed (a numpy Generator "
        f"draws a different stream than disentanglement_lib), got {type(random_state).__name__}"
    )


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy view/copy of ``x``; torch tensors are detached and moved to the CPU."""
    if type(x).__module__.startswith("torch"):
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach()
            if x.dtype in (torch.bfloat16, torch.float16):
                x = x.float()
            return x.cpu().numpy()
    return np.asarray(x)


def as_codes(x: Any, name: str = "codes") -> np.ndarray:
    """Validate a representation: real numbers, shape ``(N, D)`` with N, D ≥ 1, all finite.

    Float32 and float64 keep their dtype (binning and variances then match disentanglement_lib
    bit for bit); integers become float64, float16 becomes float32.
    """
    arr = to_numpy(x)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be real numbers (float or int), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) (points first), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=0)).tolist()
        raise ValueError(f"{name} contain NaN or infinite values (code dimension(s) {bad})")
    return arr


def as_factors(x: Any, name: str = "factors") -> np.ndarray:
    """Validate factor classes: integers of shape ``(N, F)`` with N, F ≥ 1."""
    arr = to_numpy(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must be integer factor classes, got dtype {arr.dtype} "
            "(map physical values to class indices first)"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, F) (points first), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def check_pair(
    codes: Any, factors: Any, codes_name: str = "codes", factors_name: str = "factors"
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(codes, factors)`` with the same number of points."""
    c, f = as_codes(codes, codes_name), as_factors(factors, factors_name)
    if c.shape[0] != f.shape[0]:
        raise ValueError(
            f"{codes_name} and {factors_name} must have the same number of points, "
            f"got {c.shape[0]} and {f.shape[0]}"
        )
    return c, f


def varying_factors(factors: np.ndarray, metric: str) -> np.ndarray:
    """Boolean mask of the factors that take more than one value in the sample.

    A constant factor has zero entropy and a single class, so MIG, SAP, DCI and Explicitness are
    undefined for it (disentanglement_lib returns NaN or raises). ``dlib`` leaves such factors
    out of the average with a warning, and raises if no factor varies.
    """
    mask = (factors != factors[:1]).any(axis=0)
    if not mask.any():
        raise ValueError(f"{metric}: every factor is constant in the sample; score undefined")
    if not mask.all():
        warnings.warn(
            f"{metric}: factor column(s) {np.flatnonzero(~mask).tolist()} are constant in the "
            "sample and are left out of the average",
            stacklevel=3,
        )
    return mask


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``, or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ---- gathering representations ----------------------------------------------------------------
def stack_outputs(outputs: Sequence[Any], name: str = "representation") -> np.ndarray:
    """Concatenate per-batch outputs along the points axis, converting to NumPy once.

    Torch outputs are concatenated on their device and copied to the host in one transfer.
    """
    if not outputs:
        raise ValueError(f"{name}: nothing was sampled")
    first = outputs[0]
    if type(first).__module__.startswith("torch"):
        import torch

        if all(isinstance(o, torch.Tensor) for o in outputs):
            return as_codes(torch.cat([o.reshape(o.shape[0], -1) for o in outputs]), name)
    return as_codes(np.concatenate([to_numpy(o) for o in outputs]), name)


def _checked_output(out: Any, batch: int, dims: list[int]) -> Any:
    """Check one batch's output shape (cheap: no device sync) and remember D."""
    shape = tuple(getattr(out, "shape", np.shape(out)))
    if len(shape) != 2 or shape[0] != batch:
        raise ValueError(
            f"the representation must return shape (batch, D) = ({batch}, D), got {shape}"
        )
    if dims and shape[1] != dims[0]:
        raise ValueError(f"the representation changed its width from {dims[0]} to {shape[1]}")
    dims.append(shape[1])
    return out


def represent_batches(
    represent: Represent, observations: np.ndarray, batch_size: int
) -> np.ndarray:
    """``represent`` applied to ``observations`` in chunks of ``batch_size``, stacked ``(N, D)``."""
    outputs, dims = [], []
    for start in range(0, len(observations), batch_size):
        chunk = observations[start : start + batch_size]
        outputs.append(_checked_output(represent(chunk), len(chunk), dims))
    return stack_outputs(outputs)


def sample_codes_factors(
    data: GroundTruthProtocol,
    represent: Represent,
    num_points: int,
    random_state: np.random.RandomState,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``(N, D)`` and factors ``(N, F)`` drawn as disentanglement_lib draws them.

    Same stream as ``generate_batch_factor_code``: chunks of ``min(batch_size, remaining)``
    points, each drawn with ``data.sample`` (factors column by column, then observations).
    """
    num_points = check_positive_int(num_points, "num_points")
    batch_size = check_positive_int(batch_size, "batch_size")
    outputs, factors, dims = [], [], []
    done = 0
    while done < num_points:
        n = min(batch_size, num_points - done)
        f, x = data.sample(n, random_state)
        factors.append(np.asarray(f))
        outputs.append(_checked_output(represent(x), n, dims))
        done += n
    return stack_outputs(outputs), as_factors(np.concatenate(factors), "sampled factors")


# ---- discretisation and information -------------------------------------------------------------
def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each code dimension into ``num_bins`` equal-width bins of its sample range.

    Labels are 1..num_bins (``np.digitize`` against the lower edges of ``np.histogram``'s bins),
    as disentanglement_lib's ``_histogram_discretize``; the maximum lands in the last bin and a
    constant column gets the single label ``num_bins // 2 + 1``. Bins follow the sample's
    min and max, so one outlier squeezes every other value into few bins.
    """
    codes = as_codes(codes)
    num_bins = check_positive_int(num_bins, "num_bins")
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, i], num_bins)
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def _dense_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered 0..K-1 and K."""
    uniq, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(-1), len(uniq)


def _mutual_info(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> float:
    """Plug-in mutual information (nats) of two dense label vectors."""
    n = a.shape[0]
    if ka == 1 or kb == 1:
        return 0.0
    joint = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb)
    na, nb = joint.sum(axis=1), joint.sum(axis=0)
    i, j = np.nonzero(joint)
    nij = joint[i, j].astype(np.float64)
    terms = nij / n * (np.log(nij) + np.log(n) - np.log(na[i] * nb[j].astype(np.float64)))
    terms = np.where(np.abs(terms) < np.finfo(np.float64).eps, 0.0, terms)
    return max(float(terms.sum()), 0.0)


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in mutual information in nats between every column of ``a`` and of ``b``.

    ``a`` ``(N, D)`` and ``b`` ``(N, F)`` are integer labels; returns ``(D, F)``. Same value as
    ``sklearn.metrics.mutual_info_score`` column by column (used by disentanglement_lib).
    """
    a, b = as_factors(a, "labels"), as_factors(b, "labels")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"labels must have the same number of points, got {len(a)} and {len(b)}")
    da = [_dense_labels(a[:, i]) for i in range(a.shape[1])]
    db = [_dense_labels(b[:, j]) for j in range(b.shape[1])]
    out = np.zeros((a.shape[1], b.shape[1]))
    for i, (la, ka) in enumerate(da):
        for j, (lb, kb) in enumerate(db):
            out[i, j] = _mutual_info(la, ka, lb, kb)
    return out


def discrete_entropy(labels: np.ndarray) -> np.ndarray:
    """Plug-in entropy in nats of each column of integer labels ``(N, F)``."""
    labels = as_factors(labels, "labels")
    out = np.zeros(labels.shape[1])
    for j in range(labels.shape[1]):
        p = np.bincount(_dense_labels(labels[:, j])[0]) / labels.shape[0]
        out[j] = max(float(-(p * np.log(p)).sum()), 0.0)
    return out


def normalize_codes(
    codes: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score each column with the population std (ddof 0); returns ``(z, mean, std)``.

    Unlike disentanglement_lib's ``normalize_data`` a constant column (std 0) is not divided by
    zero: its std is taken as 1, so it becomes a column of zeros instead of NaN.
    """
    if mean is None:
        mean = codes.mean(axis=0)
    if std is None:
        std = codes.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    return (codes - mean) / std, mean, std


# ---- representation adapters ---------------------------------------------------------------
def torch_representation(
    fn: Callable[[Any], Any], device: Any = None, batch_size: int | None = None
) -> Represent:
    """Wrap a torch function of images ``(B, C, H, W)`` as a harness representation.

    The harness passes NumPy observations ``(B, H, W, C)``; this moves them to ``device``,
    permutes to channels-first (contiguous memory: oneDNN's CPU convolutions round differently
    for a channels-last view, so a fixed layout keeps the codes independent of how a batch was
    laid out), and returns ``fn``'s output tensor unchanged (it stays on the device until the
    harness converts a whole set at once). ``batch_size`` is unused (the
    harness chunks) and kept for symmetry with disentanglement_lib.
    """
    import torch

    del batch_size

    def represent(x: np.ndarray) -> Any:
        t = torch.as_tensor(np.ascontiguousarray(x), device=device).permute(0, 3, 1, 2)
        with torch.no_grad():
            # clone: .contiguous() keeps a size-1 channel axis's channels-last strides
            return fn(t.float().clone(memory_format=torch.contiguous_format))

    return represent


def sampled_representation(
    encode: Callable[[Any], tuple[Any, Any]], seed: int = 0
) -> Represent:
    """The *sampled* representation μ + exp(½ log σ²)·ε of an encoder returning (μ, log σ²).

    As in the study's ``sampled.gin``, ε comes from its own generator (seeded here), not from
    the metric's RandomState, so the sampling stream of the metric is unchanged.
    """
    rng = np.random.default_rng(seed)
    state: dict[str, Any] = {}

    def represent(x: Any) -> Any:
        mean, logvar = encode(x)
        if type(mean).__module__.startswith("torch"):
            import torch

            if "gen" not in state:
                state["gen"] = torch.Generator(device=mean.device).manual_seed(seed)
            eps = torch.randn(mean.shape, generator=state["gen"], device=mean.device)
            return mean + torch.exp(0.5 * logvar) * eps.to(mean.dtype)
        mean, logvar = np.asarray(mean), np.asarray(logvar)
        return mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape).astype(mean.dtype)

    return represent
