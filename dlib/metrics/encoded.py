"""Encode a finite dataset once, then score by looking codes up: the same numbers, far faster.

Every observation a metric draws from dSprites is one of its 737,280 images, so a trained
encoder's mean and log-variance of *every* image can be computed in one pass
(:func:`encode_dataset`) and the metrics can look codes up by factor index instead of drawing
and encoding ~1.2 million images (the FactorVAE score alone encodes 970k at the study's
settings). The hook is a dataset view, not a change to any metric:

* :class:`EncodedData` behaves like the dataset for :func:`dlib.metrics.compute`, except that
  ``sample_observations_from_factors`` returns the dataset *indices* of the rows (int64, (N,))
  instead of images; it draws factors with the dataset's own ``sample_factors`` and consumes
  exactly the randomness the dataset's observation draw would (``skip_observation_draws``), so
  the metric's ``RandomState`` stream is unchanged;
* :meth:`EncodedData.mean` / :meth:`EncodedData.sampled` are representations of those indices.

The result equals on-demand encoding exactly when the encoder's output for an image does not
depend on the batch it is computed in. On this CPU in float32 we found that true for every
batch size we tried that is a multiple of 4 (4 … 1296), which covers every batch the metrics
encode at the study's settings (16 and 64 images, remainders such as 10,000 mod 64 = 16) and
the batches :func:`encode_dataset` uses on dSprites (256 divides 737,280); odd sizes such as
37 round in another order (codes differ by ~1e-9, which can move a point across a histogram
bin edge), and so does a channels-last memory layout, which is why both paths hand the
encoder standard-stride channels-first tensors. The tests check codes and every metric's
scores for bitwise equality. The *sampled* representation draws its noise exactly as
:func:`dlib.metrics.utils.sampled_representation` does — ε from a torch generator seeded with
``seed``, one (batch, D) draw per call, in the order the metric calls the representation — so
looked-up and on-demand sampled codes agree too.

Datasets whose observations are random given the factors (colour/noisy/scream dSprites) are
refused with a clear error: an image's code would then depend on the nuisance draw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dlib.metrics.utils import sampled_representation

__all__ = ["EncodedCodes", "encode_dataset", "EncodedData", "SUITE", "score_suite",
           "factor_latent_r2"]


@dataclass
class EncodedCodes:
    """Posterior means and log-variances (N, D) float32 of every image, in index order."""

    mean: np.ndarray
    logvar: np.ndarray
    seconds: float = 0.0  #: wall time of the encoding pass

    def __post_init__(self) -> None:
        if self.mean.shape != self.logvar.shape or self.mean.ndim != 2:
            raise ValueError(f"mean and logvar must both be (N, D), got {self.mean.shape} and "
                             f"{self.logvar.shape}")


def _check_finite_set(data: Any) -> None:
    if not getattr(data, "deterministic_observations", False):
        raise ValueError(
            f"{getattr(data, 'name', type(data).__name__)}: its observations are random given "
            "the factors (or not declared deterministic), so a code cannot be looked up by "
            "factor index; score it with on-demand encoding (dlib.metrics.compute)"
        )


@torch.no_grad()
def encode_dataset(
    encode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    data: Any,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> EncodedCodes:
    """``encode`` (images (B, C, H, W) float32 → (mean, logvar)) applied to every image of
    ``data`` once, in index order, ``batch_size`` images at a time (256 keeps a CPU's
    activations in cache: 3× faster than 4096 here; the images are unpacked 64k at a time).

    Images are the dataset's observations (stored uint8 images as float32 in [0, 1]), the same
    numbers the metrics' sampling would produce, handed to ``encode`` exactly as
    :func:`~dlib.metrics.utils.torch_representation` hands the harness's arrays over
    (contiguous channels-first float32): oneDNN's convolutions round differently for another
    memory layout, so the layout is part of "the same numbers".
    ``device`` is where ``encode`` runs (default: where its parameters are, when it is a bound
    method of a module; else the CPU).
    """
    _check_finite_set(data)
    if device is None:
        owner = getattr(encode, "__self__", None)
        params = list(owner.parameters()) if isinstance(owner, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    dev = torch.device(device)
    t0 = time.perf_counter()
    means, logvars = [], []
    for block in data.image_chunks(max(batch_size, 65536 // batch_size * batch_size), "cpu"):
        for start in range(0, len(block), batch_size):
            # (B, C, H, W) float32 with standard strides
            x = data.observe(block[start:start + batch_size]).to(dev)
            x = x.clone(memory_format=torch.contiguous_format)
            mean, logvar = encode(x)
            means.append(mean.float().cpu())
            logvars.append(logvar.float().cpu())
    mean = torch.cat(means).numpy()
    logvar = torch.cat(logvars).numpy()
    if len(mean) != data.num_observations:
        raise RuntimeError(f"encoded {len(mean)} images, expected {data.num_observations}")
    return EncodedCodes(mean, logvar, time.perf_counter() - t0)


class EncodedData:
    """A deterministic ground-truth dataset whose "observations" are dataset indices, with the
    codes of every index already computed (see the module's docstring)."""

    def __init__(self, data: Any, codes: EncodedCodes):
        _check_finite_set(data)
        if codes.mean.shape[0] != data.num_observations:
            raise ValueError(f"codes hold {codes.mean.shape[0]} rows, the dataset "
                             f"{data.num_observations} images")
        self.data = data
        self.codes = codes

    # -- the harness protocol (disentanglement_lib's) ------------------------------------------
    @property
    def num_factors(self) -> int:
        return self.data.num_factors

    @property
    def factors_num_values(self) -> list[int]:
        return self.data.factors_num_values

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.data.factor_sizes

    @property
    def name(self) -> str:
        return self.data.name

    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        return self.data.sample_factors(num, random_state)

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        """The dataset indices (N,) of ``factors``; the stream advances as an image draw would."""
        index = self.data.classes_to_index(factors)
        self.data.skip_observation_draws(len(index), random_state)
        return index

    def sample(self, num: int, random_state: np.random.RandomState
               ) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        return self.sample(num, random_state)[1]

    # -- representations of indices -------------------------------------------------------------
    def _index(self, index: Any) -> np.ndarray:
        idx = np.asarray(index)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError("EncodedData's representations take the dataset indices it samples "
                            f"(int (N,)), got {idx.dtype} {idx.shape}; wrap it only around "
                            "metrics that draw observations through it")
        return idx

    def mean(self, index: Any) -> np.ndarray:
        """The posterior means (N, D) float32 of the images at ``index``."""
        return self.codes.mean[self._index(index)]

    def mean_logvar(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of the images at ``index`` as torch tensors (CPU, float32)."""
        idx = self._index(index)
        return torch.from_numpy(self.codes.mean[idx]), torch.from_numpy(self.codes.logvar[idx])

    def sampled(self, seed: int = 0) -> Callable[[Any], Any]:
        """The sampled representation μ + σ·ε of :func:`sampled_representation` with ``seed``:
        ε is drawn per call exactly as there, so on-demand and looked-up codes agree."""
        return sampled_representation(self.mean_logvar, seed)


#: the study-settings suite: (result name, metric, representation, result key(s) kept)
SUITE: tuple[tuple[str, str, str], ...] = (
    ("beta_vae", "beta_vae", "mean"),
    ("factor_vae", "factor_vae", "mean"),
    ("mig", "mig", "mean"),
    ("dci", "dci", "mean"),
    ("sap", "sap", "mean"),
    ("modularity_explicitness", "modularity_explicitness", "mean"),
    ("irs", "irs", "mean"),
    ("unsupervised", "unsupervised", "mean"),
    ("unsupervised_sampled", "unsupervised", "sampled"),
)


def score_suite(
    data: Any,
    represent: dict[str, Callable[[Any], Any]],
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
    suite: tuple[tuple[str, str, str], ...] = SUITE,
) -> dict[str, Any]:
    """Every metric of ``suite`` with its own ``RandomState(seed)``: ``{name: result dict}``
    plus ``"seconds"`` (wall time per metric).

    ``represent`` maps "mean" / "sampled" to representations of ``data``'s observations
    (an :class:`EncodedData` and its ``mean`` / ``sampled(seed)``, or images and on-demand
    encoders); ``options`` the metric options by metric name (default: the study's).
    """
    from dlib.metrics import compute

    options = options or {}
    out: dict[str, Any] = {"seconds": {}}
    for name, metric, rep in suite:
        if rep not in represent:
            raise ValueError(f"suite entry {name!r} needs the {rep!r} representation")
        t0 = time.perf_counter()
        out[name] = compute(metric, data, represent[rep], np.random.RandomState(seed),
                            **options.get(metric, {}))
        out["seconds"][name] = round(time.perf_counter() - t0, 3)
    return out


def factor_latent_r2(mean: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """(F, D): the share of latent d's variance explained by factor k, Var(E[z_d | f_k]) /
    Var(z_d), computed exactly over the whole grid (``mean`` in index order, last factor
    fastest). A factor that "moves in one latent" has one large entry in its row."""
    d = mean.shape[1]
    grid = mean.reshape(*sizes, d).astype(np.float64)
    total = grid.reshape(-1, d).var(axis=0)
    total = np.where(total > 0, total, np.inf)
    out = np.zeros((len(sizes), d))
    for k in range(len(sizes)):
        others = tuple(j for j in range(len(sizes)) if j != k)
        out[k] = grid.mean(axis=others).var(axis=0) / total
    return out
