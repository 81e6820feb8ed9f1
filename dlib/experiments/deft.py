"""The experiments of the DEFT chapter (Wu et al., seed 004), on the models of
:mod:`dlib.methods.deft`.

* the *anneal test* (:func:`anneal_test`, :class:`AnnealResult`): train an
  :class:`~dlib.methods.deft.AnnealTest` and read off the data's information threshold (§5.1);
  :class:`TwoImageToy`, a data set whose threshold is known; the thresholds of one factor on
  one-factor traversals (:func:`factor_subset`, :func:`factor_thresholds`, §6.1);
* :class:`NMIProbe` and :func:`track_nmi` (:class:`NMITrace`) — max-1 / max-2 normalised mutual
  information (eq. 5) of a model on a fixed sample, evaluated during training (the paper's
  Fig. 2), through :func:`dlib.train.fit_in_stages`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlib.methods.base import Method
from dlib.methods.deft import AnnealTest, information_threshold

__all__ = ["AnnealResult", "anneal_test", "TwoImageToy", "factor_subset", "factor_thresholds",
           "NMIProbe", "NMITrace", "track_nmi"]


@dataclass
class AnnealResult:
    """Outcome of one anneal test: the threshold β (nan if the KL never rose), the step at which
    it was crossed, and the logged curves."""

    threshold: float
    step: int
    steps: np.ndarray
    betas: np.ndarray
    kls: np.ndarray
    recons: np.ndarray


def anneal_test(data: Any, steps: int, *, batch_size: int = 64, seed: int = 0,
                log_every: int = 10, kl_threshold: float = 0.1, show_progress: bool = False,
                device: torch.device | str | None = None, **options: Any) -> AnnealResult:
    """Train an :class:`AnnealTest` on ``data`` for ``steps`` steps and read off the threshold.

    ``options`` configure it (``beta_max``, ``rate``, ``anneal_steps`` — defaults to
    ``steps`` —, ``arch``, ``lr``, ``num_latents``…). The KL is averaged over ``log_every``
    steps, and the β reported is the mean β of the first logging window above the threshold.
    """
    from dlib.train import fit

    dd = data if hasattr(data, "images") else data.to_device(device)
    options.setdefault("anneal_steps", steps)
    options.setdefault("seed", seed)
    model = AnnealTest(tuple(dd.data.image_shape), **options)
    hist = fit(model, dd, steps, batch_size=batch_size, seed=seed, log_every=log_every,
               show_progress=show_progress)
    beta, idx = information_threshold(hist["beta"], hist["kl"], kl_threshold)
    steps_logged = np.asarray(hist.steps)
    return AnnealResult(beta, int(steps_logged[idx]) if idx >= 0 else -1, steps_logged,
                        hist["beta"], hist["kl"], hist["recon"])


class TwoImageToy:
    """Two binary images (C=1, ``side``×``side``) that differ in exactly ``n`` pixels, drawn
    with probabilities ``p`` and 1 − ``p``: a data set whose information threshold is known.

    With a Bernoulli decoder, the best reconstruction of the n pixels from a code carrying I
    nats of information about which image it sees improves by n·I nats, and near a shut code a
    Gaussian encoder pays KL = I to second order; so β·KL − n·I changes sign at β = n, for any
    p. Speaks the engine's data protocol (``sample``, ``images``, ``device``, ``data``).
    """

    def __init__(self, n: int, p: float = 0.5, side: int = 8) -> None:
        if not 1 <= n <= side * side - 5:
            raise ValueError(f"n must lie in [1, {side * side - 5}], got {n}")
        if not 0 < p < 1:
            raise ValueError(f"p must lie in (0, 1), got {p}")
        x = torch.zeros(2, 1, side, side)
        x.view(2, -1)[0, :n] = 1.0  # image A has the n pixels on, image B off
        x.view(2, -1)[:, -5:] = 1.0  # a few pixels both images share
        self.n, self.p, self.x = int(n), float(p), x
        self.images = (x * 255).to(torch.uint8)
        self.device = torch.device("cpu")
        self.data = type("ToyData", (), {"image_shape": (1, side, side), "name": "two_images"})()

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """A batch of the two images, image B with probability 1 − p."""
        u = torch.rand(batch_size, generator=generator)
        return self.x[(u >= self.p).long()]


def factor_subset(data: Any, factor: int | str, base: np.ndarray | list[int],
                  device: torch.device | str | None = None) -> Any:
    """A :class:`dlib.data.DeviceData` of the images where only ``factor`` varies (over all its
    values) and every other factor is fixed at the classes ``base`` (§6.1)."""
    from dlib.data import DeviceData

    j = data.factor_names.index(factor) if isinstance(factor, str) else int(factor)
    if not 0 <= j < data.num_factors:
        raise ValueError(f"factor {factor!r} out of range for {data.num_factors} factors")
    base = data.check_classes(np.asarray(base).reshape(1, -1))[0]
    classes = np.repeat(base[None], data.factor_sizes[j], 0)
    classes[:, j] = np.arange(data.factor_sizes[j])
    from dlib import config

    dev = config.device(device)
    images = data.images_from_classes(torch.as_tensor(classes), dev)
    return DeviceData(data, images, torch.as_tensor(classes, device=dev))


def factor_thresholds(data: Any, factor: int | str, repeats: int, steps: int,
                      random_state: np.random.RandomState | int = 0, **options: Any
                      ) -> np.ndarray:
    """Information thresholds of ``factor`` on ``repeats`` one-factor traversals, each around a
    random base observation (the paper's Fig. 6 uses 50)."""
    rs = random_state if isinstance(random_state, np.random.RandomState) else \
        np.random.RandomState(random_state)
    device = options.pop("device", None)
    out = []
    for r in range(int(repeats)):
        base = data.sample_factors(1, rs)[0]
        sub = factor_subset(data, factor, base, device)
        out.append(anneal_test(sub, steps, seed=r, **options).threshold)
    return np.asarray(out)


# ---- max-m NMI during training -----------------------------------------------------------------
class NMIProbe:
    """max-1 / max-2 NMI (eq. 5) and MIG (eq. 6) of a model's posterior means on one fixed
    sample, so that values at different training steps are comparable.

    The sample is ``num`` observations drawn from ``data`` (a DeviceData, or a GroundTruthData
    moved to ``device``) with a generator seeded by ``seed``; the numbers come from
    :func:`dlib.metrics.nmi.max_m_nmi` on the codes.
    """

    def __init__(self, data: Any, num: int = 10_000, seed: int = 0, num_bins: int = 20,
                 device: torch.device | str | None = None, batch_size: int = 1000) -> None:
        dd = data if hasattr(data, "images") else data.to_device(device)
        gen = torch.Generator(device=dd.device).manual_seed(int(seed))
        self.images, factors = dd.sample_with_factors(int(num), gen)
        self.factors = factors.cpu().numpy()
        self.factor_names = tuple(dd.data.factor_names)
        self.num_bins = num_bins
        self.batch_size = batch_size

    @torch.no_grad()
    def codes(self, method: Any) -> np.ndarray:
        was_training = getattr(method, "training", False)
        method.eval()
        out = torch.cat([method.represent(self.images[i:i + self.batch_size])
                         for i in range(0, len(self.images), self.batch_size)])
        if was_training:
            method.train()
        return out.float().cpu().numpy()

    def __call__(self, method: Any) -> dict[str, Any]:
        from dlib.metrics.nmi import max_m_nmi

        codes = self.codes(method)
        m1 = max_m_nmi(codes, self.factors, 1, self.num_bins)
        m2 = max_m_nmi(codes, self.factors, 2, self.num_bins)
        keep = np.isfinite(m1)
        return {"max1": m1, "max2": m2, "mig": float(np.mean((m1 - m2)[keep]))}


@dataclass
class NMITrace:
    """max-m NMI over training: ``max1``/``max2`` are (T, F), ``mig`` (T,), at ``steps``."""

    steps: np.ndarray
    max1: np.ndarray
    max2: np.ndarray
    mig: np.ndarray
    factor_names: tuple[str, ...]
    history: Any = None


def track_nmi(method: Method, data: Any, steps: int, every: int, *, probe: NMIProbe | None = None,
              batch_size: int = 64, seed: int = 0, log_every: int | None = None,
              checkpoint: str | os.PathLike | None = None, show_progress: bool = False,
              include_start: bool = True) -> NMITrace:
    """Train with :func:`dlib.train.fit` up to ``steps``, probing max-m NMI every ``every`` steps.

    The stages are :func:`dlib.train.fit_in_stages`' (each resumes from a checkpoint, a
    temporary file unless ``checkpoint`` is given), so the trajectory is exactly that of one
    ``fit(..., steps)`` call.
    """
    from dlib.train import fit_in_stages

    if every < 1 or steps < 1:
        raise ValueError("steps and every must be positive")
    log_every = log_every or min(every, 100)
    if every % log_every:
        raise ValueError("every must be a multiple of log_every")
    probe = probe or NMIProbe(data, seed=seed)
    start = int(method.step)
    stops = [start] if include_start and start == 0 else []
    stops += [t for t in range(start + every, steps, every)] + [steps]
    rows: list[tuple[int, dict[str, Any]]] = []
    hist = fit_in_stages(method, data, stops, lambda step: rows.append((step, probe(method))),
                         checkpoint=checkpoint, checkpoint_name="track.pt",
                         batch_size=batch_size, seed=seed, log_every=log_every,
                         checkpoint_every=None, show_progress=show_progress)
    return NMITrace(np.array([r[0] for r in rows]), np.stack([r[1]["max1"] for r in rows]),
                    np.stack([r[1]["max2"] for r in rows]), np.array([r[1]["mig"] for r in rows]),
                    probe.factor_names, hist)
