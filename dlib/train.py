"""The training engine: one loop for every method.

The data set lives on the device as uint8 (:class:`dlib.data.DeviceData`); each step draws a batch
by on-device index sampling with an explicit ``torch.Generator``, so shapes are static and nothing
is read back to the host between logging points. Every loss term a method returns is averaged
over the logging interval and kept in a :class:`History`. A non-finite loss stops training with
:class:`TrainingDiverged`, naming the first bad step. Checkpoints are written atomically and hold
everything needed to resume *exactly*: weights, optimiser states, step, configuration, the
generator's state and the history.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlib.config import progress
from dlib.methods.base import Method

CHECKPOINT_VERSION = 1


class TrainingDiverged(FloatingPointError):
    """Raised when a loss term becomes NaN or infinite."""


class History:
    """Loss terms logged during training: ``history["recon"]`` is an array over logging points."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.seconds: list[float] = []
        self._terms: dict[str, list[np.ndarray]] = {}

    def append(self, step: int, seconds: float, terms: dict[str, np.ndarray]) -> None:
        self.steps.append(int(step))
        self.seconds.append(float(seconds))
        for name, value in terms.items():
            self._terms.setdefault(name, []).append(np.asarray(value))

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._terms:
            raise KeyError(f"no term {name!r} in the history; logged terms: {self.keys()}")
        return np.stack(self._terms[name])

    def __contains__(self, name: object) -> bool:
        return name in self._terms

    def __len__(self) -> int:
        return len(self.steps)

    def keys(self) -> list[str]:
        return list(self._terms)

    def last(self, name: str) -> np.ndarray | float:
        """The most recent logged value of a term (a float for scalar terms)."""
        value = self._terms[name][-1]
        return float(value) if value.ndim == 0 else value

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "seconds": self.seconds, "terms": self._terms}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = list(state["steps"])
        self.seconds = list(state["seconds"])
        self._terms = {k: list(v) for k, v in state["terms"].items()}

    def __repr__(self) -> str:
        if not self.steps:
            return "History(empty)"
        scalars = ", ".join(
            f"{k}={self.last(k):.4g}" for k in self._terms if np.ndim(self._terms[k][-1]) == 0
        )
        return f"History({len(self)} points up to step {self.steps[-1]}: {scalars})"


def save_checkpoint(
    path: str | os.PathLike,
    method: Method,
    history: History,
    generator: torch.Generator,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temporary file + rename): a crash never leaves half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "version": CHECKPOINT_VERSION,
        "config": method.config_dict(),
        "model": method.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in method.optimizers.items()},
        "step": int(method.step),
        "generator": generator.get_state(),
        "history": history.state_dict(),
        "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike,
    method: Method,
    generator: torch.Generator | None = None,
    history: History | None = None,
) -> dict[str, Any]:
    """Restore ``method`` (and optionally its generator and history) from a checkpoint.

    The checkpoint's configuration must equal the method's: resuming a run with other
    hyperparameters is an error, not a silent mix.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable dlib checkpoint: {err}") from err
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a dlib checkpoint of version {CHECKPOINT_VERSION}")
    if state["config"] != method.config_dict():
        raise ValueError(
            f"checkpoint {path} was written by {state['config']}, "
            f"which differs from this method's {method.config_dict()}"
        )
    method.load_state_dict(state["model"])
    if not method.optimizers:
        method.setup_optimizers()
    for name, opt in method.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    if generator is not None:
        generator.set_state(state["generator"])
    if history is not None:
        history.load_state_dict(state["history"])
    return state


def _device_data(data: Any, device: torch.device | str | None) -> Any:
    """Accept a DeviceData (anything with ``sample``/``device``) or a GroundTruthData."""
    if hasattr(data, "sample") and hasattr(data, "images") and hasattr(data, "device"):
        return data
    if hasattr(data, "to_device"):
        return data.to_device(device)
    raise TypeError(f"cannot train on {type(data).__name__}: pass a GroundTruthData or DeviceData")


def fit(
    method: Method,
    data: Any,
    steps: int,
    *,
    batch_size: int = 64,
    seed: int = 0,
    log_every: int = 100,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    show_progress: bool = True,
    device: torch.device | str | None = None,
) -> History:
    """Train ``method`` on ``data`` until it has taken ``steps`` optimisation steps.

    ``data`` is a :class:`dlib.data.DeviceData` (batches are drawn from the images it holds) or a
    ground-truth dataset (moved to ``device`` whole). ``seed`` seeds the generator that draws the
    batches and the reparameterisation noise. With ``checkpoint`` set, a checkpoint is written
    every ``checkpoint_every`` steps and at the end, and an existing one is resumed from (unless
    ``resume=False``): ``fit(m, d, 1000, checkpoint=p)`` followed by ``fit(m, d, 2000,
    checkpoint=p)`` gives the same weights as ``fit(m, d, 2000)``. The fast path is
    :func:`dlib.engine.fit_fast` (same arguments; the whole step captured as a CUDA graph; same
    batches, noise and checkpoints); this eager loop stays the reference it is tested against.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if batch_size < 1 or log_every < 1:
        raise ValueError("batch_size and log_every must be positive")
    if checkpoint_every is not None and (checkpoint_every < 1 or checkpoint_every % log_every):
        raise ValueError("checkpoint_every must be a positive multiple of log_every")
    dd = _device_data(data, device)
    image_shape = tuple(dd.data.image_shape)
    if hasattr(method, "image_shape") and tuple(method.image_shape) != image_shape:
        raise ValueError(f"method expects images {method.image_shape}, data has {image_shape}")
    dev = torch.device(dd.device)
    method.to(dev)
    if not method.optimizers:
        method.setup_optimizers()
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))
    history = History()
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, method, gen, history)
        if state["extra"].get("batch_size") != batch_size or state["extra"].get("seed") != seed:
            raise ValueError(
                f"checkpoint {checkpoint} was trained with batch_size/seed "
                f"{state['extra'].get('batch_size')}/{state['extra'].get('seed')}, "
                f"not {batch_size}/{seed}"
            )
    start = int(method.step)
    if start > steps:
        raise ValueError(f"the method has already taken {start} steps (> {steps} requested)")
    extra = {"batch_size": batch_size, "seed": seed}

    method.train()
    sums: dict[str, Tensor] = {}
    count = 0
    first_bad = torch.full((), -1, dtype=torch.long, device=dev)
    t0 = time.perf_counter() - (history.seconds[-1] if history.seconds else 0.0)
    bar = progress(total=steps, initial=start, **({} if show_progress else {"disable": True}))
    draw = batch_size * getattr(method, "batch_multiplier", 1)  # FactorVAE takes a second batch
    for step in range(start, steps):
        x = dd.sample(draw, gen)
        out = method.train_step(x, gen)
        # record the first non-finite step on the device: no host synchronisation per step
        finite = torch.stack([torch.isfinite(v).all() for v in out.values()]).all()
        first_bad = torch.where((first_bad < 0) & ~finite, step + 1, first_bad)
        for k, v in out.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        count += 1
        last = step + 1 == steps
        if (step + 1) % log_every == 0 or last:
            bad = int(first_bad)
            if bad >= 0:
                names = [k for k, v in out.items() if not torch.isfinite(v).all()]
                raise TrainingDiverged(
                    f"{type(method).__name__}: a loss term became NaN/inf at step {bad} "
                    f"(non-finite now: {names or 'none'}). Lower the learning rate, check that "
                    "inputs are in [0, 1], or check the method's hyperparameters."
                )
            means = {k: (v / count).cpu().numpy() for k, v in sums.items()}
            history.append(step + 1, time.perf_counter() - t0, means)
            bar.set_postfix(loss=f"{float(means['loss']):.2f}", refresh=False)
            sums, count = {}, 0
            if checkpoint is not None and (
                last or (checkpoint_every and (step + 1) % checkpoint_every == 0)
            ):
                save_checkpoint(checkpoint, method, history, gen, extra)
        bar.update(1)
    bar.close()
    if checkpoint is not None and start == steps and not Path(checkpoint).exists():
        save_checkpoint(checkpoint, method, history, gen, extra)
    method.eval()
    return history


def fit_in_stages(
    method: Method | Sequence[Method],
    data: Any,
    stops: Sequence[int],
    at_stop: Callable[[int], None],
    *,
    checkpoint: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    resume: bool = False,
    workdir: str | os.PathLike | None = None,
    checkpoint_name: str = "stages.pt",
    trainer: Callable[..., Any] | None = None,
    **fit_options: Any,
) -> Any:
    """Train to each step count in ``stops`` in turn, calling ``at_stop(step)`` after each.

    dlib's one staged-training loop: the chapters' measurements during training, the NMI
    traces of DEFT, the covariance snapshots of DIP-VAE and every study trial
    (:mod:`dlib.studies`) train and measure through it. Every stage resumes from a checkpoint
    (``checkpoint``, else ``workdir/checkpoint_name``, else a temporary file), so the weights
    are those of one uninterrupted ``fit(method, data, stops[-1], ...)``; only the history's
    logging points differ (each stage also logs at its last step). ``stops`` must be
    non-negative and strictly increasing (include 0 to measure the untrained model).

    A fresh run refuses an existing checkpoint; ``resume=True`` continues from it instead, and
    stops at or below the step it holds are skipped (``at_stop`` is not called for them).
    ``trainer`` replaces :func:`fit` (same arguments; :func:`dlib.engine.fit_many` wrapped to
    take a list of methods and of checkpoints trains several models through the same stages);
    ``fit_options`` go to it. Returns the last stage's history.
    """
    stops = [int(s) for s in stops]
    if not stops:
        raise ValueError("eval_steps is empty")
    if stops[0] < 0 or any(b <= a for a, b in zip(stops, stops[1:], strict=False)):
        raise ValueError(f"eval_steps must be non-negative and strictly increasing, got {stops}")
    methods = list(method) if isinstance(method, (list, tuple)) else [method]
    train = trainer or fit
    with tempfile.TemporaryDirectory() as tmp:
        if checkpoint is not None:
            ckpt: Any = ([Path(c) for c in checkpoint] if isinstance(checkpoint, (list, tuple))
                         else Path(checkpoint))
        else:
            ckpt = Path(workdir or tmp) / checkpoint_name
        paths = ckpt if isinstance(ckpt, list) else [ckpt]
        existing = [p for p in paths if p.exists()]
        if existing and not resume:
            raise FileExistsError(f"{existing[0]} exists: use an empty workdir (or resume=True)")
        done = -1
        if existing:  # the step the checkpoint holds: stages up to it are finished
            done = min(int(torch.load(p, map_location="cpu", weights_only=False)["step"])
                       for p in existing) if len(existing) == len(paths) else -1
        first = min(int(m.step) for m in methods)
        if done < 0 and first > stops[0]:
            raise ValueError(f"the method has already taken {first} steps, more than the "
                             f"first evaluation step {stops[0]}")
        history: Any = None
        todo = [s for s in stops if s > done]
        if done >= 0 and todo:  # reload the checkpoint (no step is taken) before the next stage
            history = train(method, data, done, checkpoint=ckpt, **fit_options)
        for step in todo:
            history = train(method, data, step, checkpoint=ckpt, **fit_options)
            at_stop(step)
        if history is None:  # every stop was done already: load the final state
            history = train(method, data, stops[-1], checkpoint=ckpt, **fit_options)
    return history
