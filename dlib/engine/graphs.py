"""The fast path: a whole training iteration captured once as a CUDA graph and replayed.

At batch 64 the reference networks are small, and an eager PyTorch step spends most of its
time launching a few hundred kernels from Python, not computing. A CUDA graph records those
launches once; a replay submits them all with one call. What the capture needs:

* **static shapes and addresses** — every tensor the iteration reads or writes lives at a fixed
  address: the stacked weights and Adam states (:class:`dlib.engine.batched.BatchedState`),
  the logging sums and the NaN watch are updated in place; batches and noise are drawn inside
  the graph into its private memory pool (or, with ``rng="outside"``, drawn eagerly and copied
  into static input buffers before each replay);
* **no host synchronisation** — nothing in the step reads a value back (Adam's bias correction
  uses the step counter as a device tensor, the NaN watch records the first bad step on the
  device, the logging sums are read only every ``log_every`` steps);
* **graph-safe random numbers** — each model's generator is registered with the graph
  (``CUDAGraph.register_generator_state``): every replay then advances the generator's Philox
  offset by the amount the captured kernels consume, which reproduces the eager stream;
* **a warm-up on a side stream** before capture, so that lazy initialisation (cuBLAS handles,
  cuDNN algorithm choice, autograd's buffers) happens outside the graph. The warm-up changes
  the weights, so everything it touches is snapshotted first and restored after.

This module never runs on a machine without CUDA; ``tests/test_engine_gpu.py`` checks it
against the eager path (``pytest -m gpu``).

Holds :func:`can_register_generators` and :class:`GraphedIteration`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from dlib.engine.batched import BatchedTrainer

__all__ = ["GraphedIteration", "can_register_generators"]


def can_register_generators() -> bool:
    """Whether this torch lets a CUDA graph capture draws from user-created generators."""
    return hasattr(torch.cuda, "CUDAGraph") and hasattr(torch.cuda.CUDAGraph,
                                                        "register_generator_state")


class GraphedIteration:
    """One training iteration of a :class:`BatchedTrainer`, captured; :meth:`replay` runs it.

    ``rng``: ``"graph"`` draws batches and noise inside the graph (needs
    :func:`can_register_generators`), ``"outside"`` draws them eagerly into static buffers before
    each replay (a few small launches per model per step), ``"auto"`` takes ``"graph"`` when
    possible and falls back to ``"outside"`` if the capture of the draws fails.
    """

    def __init__(self, trainer: BatchedTrainer, rng: str = "auto", warmup: int = 3) -> None:
        if rng not in ("auto", "graph", "outside"):
            raise ValueError(f"rng must be 'auto', 'graph' or 'outside', got {rng!r}")
        if trainer.device.type != "cuda":
            raise ValueError("CUDA graphs need the model and the data on a CUDA device")
        if rng == "graph" and not can_register_generators():
            raise RuntimeError("this torch cannot register generators with a CUDA graph; "
                               "use rng='outside'")
        self.trainer = trainer
        self.device = trainer.device
        watched = [*trainer.state.tensors(), trainer.first_bad]
        snapshot = [t.detach().clone() for t in watched]
        gen_states = [g.get_state() for g in trainer.generators]
        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(max(1, warmup)):
                    trainer.iteration()
            torch.cuda.current_stream(self.device).wait_stream(side)
            torch.cuda.synchronize(self.device)
            self._restore(watched, snapshot, gen_states)
            self.mode = "outside"
            if rng in ("auto", "graph") and can_register_generators():
                try:
                    self.graph = self._capture(inside=True)
                    self.mode = "graph"
                except Exception:  # noqa: BLE001 - e.g. a host copy inside a dataset's draw
                    if rng == "graph":
                        raise
                    torch.cuda.synchronize(self.device)
                    self._restore(watched, snapshot, gen_states)
            if self.mode == "outside":
                self.static_inputs = {k: v.clone() for k, v in trainer.draw().items()}
                self._restore(watched, snapshot, gen_states)
                self.graph = self._capture(inside=False)
            # capturing executes nothing, but make sure no state moved
            for g, s in zip(trainer.generators, gen_states, strict=True):
                if not torch.equal(g.get_state(), s):
                    g.set_state(s)
        finally:
            torch.backends.cudnn.benchmark = benchmark

    def _restore(self, watched, snapshot, gen_states) -> None:
        with torch.no_grad():
            for t, v in zip(watched, snapshot, strict=True):
                t.copy_(v)
            for v in self.trainer.sums.values():
                v.zero_()
        for g, s in zip(self.trainer.generators, gen_states, strict=True):
            g.set_state(s)

    def _capture(self, inside: bool) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        if inside:
            for g in self.trainer.generators:
                graph.register_generator_state(g)
        with torch.cuda.graph(graph):
            if inside:
                self.inputs = self.trainer.draw()  # static: lives in the graph's memory pool
                self.trainer.compute(self.inputs)
            else:
                self.inputs = self.static_inputs
                self.trainer.compute(self.static_inputs)
        return graph

    def replay(self) -> None:
        """One training iteration. After it, :attr:`inputs` holds the batch and noise it used."""
        if self.mode == "outside":
            fresh = self.trainer.draw()
            for k, v in fresh.items():
                self.static_inputs[k].copy_(v)
        self.graph.replay()
