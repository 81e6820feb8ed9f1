"""The fast training engine: many models as one batched computation, CUDA-graph replay.

``fit_many(methods, data, steps, ...)`` trains N models of one class and architecture together
(:mod:`dlib.engine.batched`); ``fit_fast(method, data, steps, ...)`` is the single-model fast
path (the same engine with N = 1). On CUDA the iteration is captured once as a CUDA graph
(:mod:`dlib.engine.graphs`); on the CPU the same batched computation runs eagerly. The eager
loop of :func:`dlib.train.fit` stays the reference the engine is tested against.

On a machine with CUDA, check and measure the fast path with::

    python -m pytest tests/test_engine_gpu.py -m gpu -q      # graphed == eager, same inputs
    python -m dlib.bench --json book/results/bench.json       # eager / fast / batched, side by side
    python -m dlib.bench --quick                              # a seconds-long CPU dry run
"""

from __future__ import annotations

import os
from typing import Any

import torch

from dlib.engine.batched import BatchedState, BatchedTrainer, check_compatible, fit_many
from dlib.engine.kernels import KERNELS, kernel_for
from dlib.methods.base import Method
from dlib.train import History

__all__ = ["fit_many", "fit_fast", "BatchedState", "BatchedTrainer", "check_compatible",
           "KERNELS", "kernel_for"]


def fit_fast(
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
    fast: bool | None = None,
) -> History:
    """:func:`dlib.train.fit` through the engine: same arguments, same batches and noise, same
    checkpoint format; CUDA-graph replay on CUDA (``fast=None``)."""
    return fit_many([method], data, steps, batch_size=batch_size, seeds=[seed],
                    log_every=log_every, show_progress=show_progress, device=device, fast=fast,
                    checkpoints=None if checkpoint is None else [checkpoint],
                    checkpoint_every=checkpoint_every, resume=resume)[0]
