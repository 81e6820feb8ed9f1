"""Many models of one architecture trained as one computation (:func:`fit_many`).

The N models' weights are stacked: each optimiser parameter group becomes one flat tensor of
shape (N, P) whose slices, viewed as (N, *shape), are the parameters. The forward pass runs once
for all models with :func:`torch.func.vmap` over the model axis (a convolution whose weights
carry a model axis becomes one grouped convolution, a linear layer a batched matrix product);
the per-model losses are summed and differentiated once, which gives every model its own
gradient because the models share nothing. Adam is elementwise, so N Adams are one Adam on the
stacked tensors with per-model learning rates and betas as (N, 1) tensors
(:class:`BatchedState.update`). Per-model hyperparameters (β, γ, λ, C_max, …) are (N,) tensors.

Every model keeps its own ``torch.Generator`` seeded with its own seed, and its batches and
noise are drawn in the order :meth:`dlib.methods.Method.train_step` draws them, so model i of a
batched run sees exactly what ``dlib.train.fit(methods[i], data, steps, seed=seeds[i])`` sees;
the losses and weights agree to float tolerance (``tests/test_engine.py``). On CUDA the whole
iteration — sampling, forward, backward, both optimiser steps, logging sums and the NaN
watch — is captured once in a CUDA graph and replayed (:mod:`dlib.engine.graphs`).

Holds :class:`BatchedState`, :class:`PerModel`, :func:`check_compatible`, :class:`BatchedTrainer`
and :func:`fit_many`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap

from dlib.config import progress
from dlib.engine.kernels import Kernel, kernel_for
from dlib.methods.base import Method
from dlib.train import (
    History,
    TrainingDiverged,
    _device_data,
    fit,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["fit_many", "BatchedState", "BatchedTrainer", "check_compatible"]


@dataclasses.dataclass
class _Group:
    """One optimiser parameter group of all N models: flat weights and Adam's state."""

    opt: str
    index: int
    prefix: str  # "discriminator" for FactorVAE's D group, "" otherwise
    names: list[str]
    shapes: list[tuple[int, ...]]
    offsets: list[int]
    flat: Tensor  # (N, P), a leaf that requires grad
    exp_avg: Tensor  # (N, P)
    exp_avg_sq: Tensor  # (N, P)
    count: Tensor  # (N, 1) float64: Adam's step counter per model
    lr: Tensor  # (N, 1) float64
    beta1: Tensor
    beta2: Tensor
    eps: Tensor  # (N, 1) float32
    uniform: tuple[float, float] | None = None  # (beta1, beta2) when every model shares them


def _adam_settings(opt: torch.optim.Optimizer, group: dict[str, Any], where: str) -> None:
    """Only plain Adam is reproduced elementwise here: refuse anything else clearly."""
    if type(opt) is not torch.optim.Adam:
        raise ValueError(f"{where}: fit_many reproduces torch.optim.Adam only, "
                         f"got {type(opt).__name__}")
    for key, ok in (("weight_decay", 0), ("amsgrad", False), ("maximize", False)):
        if group.get(key, ok) != ok:
            raise ValueError(f"{where}: fit_many needs Adam with {key}={ok!r}")


class BatchedState:
    """The stacked weights, Adam states, hyperparameters and step counters of N models."""

    def __init__(self, methods: list[Method], kernel: Kernel, device: torch.device,
                 vectorize: str = "vmap", adam: str | None = None) -> None:
        if vectorize not in ("vmap", "loop"):
            raise ValueError(f"vectorize must be 'vmap' or 'loop', got {vectorize!r}")
        if adam is None:  # per tensor where it is exact and cache-friendly: the CPU loop
            adam = "per_tensor" if device.type == "cpu" and vectorize == "loop" else "flat"
        if adam not in ("flat", "per_tensor"):
            raise ValueError(f"adam must be 'flat' or 'per_tensor', got {adam!r}")
        if adam == "per_tensor" and device.type != "cpu":
            raise ValueError("the per-tensor Adam reads step counters on the host: CPU only")
        self.n = len(methods)
        self.device = device
        self.vectorize = vectorize
        self.adam = adam
        first = methods[0]
        names = dict(first.named_parameters())
        by_id = {id(p): name for name, p in names.items()}
        self.groups: list[_Group] = []
        for opt_name, opt in first.optimizers.items():
            for gi, group in enumerate(opt.param_groups):
                _adam_settings(opt, group, f"{type(first).__name__}.optimizers[{opt_name!r}]")
                gnames = [by_id[id(p)] for p in group["params"]]
                prefixes = {n.split(".")[0] == "discriminator" for n in gnames}
                if len(prefixes) > 1:
                    raise ValueError("an optimiser group mixes discriminator and VAE weights")
                shapes = [tuple(names[n].shape) for n in gnames]
                sizes = [math.prod(s) for s in shapes]
                offsets = list(np.cumsum([0, *sizes[:-1]]).astype(int))
                total = int(sum(sizes))

                def col(key: str, dtype: torch.dtype, opt_name=opt_name, gi=gi) -> Tensor:
                    vals = [float(m.optimizers[opt_name].param_groups[gi][key]) for m in methods]
                    return torch.tensor(vals, dtype=dtype, device=device)[:, None]

                betas = [m.optimizers[opt_name].param_groups[gi]["betas"] for m in methods]
                self.groups.append(_Group(
                    opt=opt_name, index=gi,
                    prefix="discriminator" if prefixes == {True} else "",
                    names=gnames, shapes=shapes, offsets=[int(o) for o in offsets],
                    flat=torch.zeros(self.n, total, device=device),
                    exp_avg=torch.zeros(self.n, total, device=device),
                    exp_avg_sq=torch.zeros(self.n, total, device=device),
                    count=torch.zeros(self.n, 1, dtype=torch.float64, device=device),
                    lr=col("lr", torch.float64),
                    beta1=torch.tensor([float(b[0]) for b in betas], dtype=torch.float64,
                                       device=device)[:, None],
                    beta2=torch.tensor([float(b[1]) for b in betas], dtype=torch.float64,
                                       device=device)[:, None],
                    eps=col("eps", torch.float32),
                ))
        for g in self.groups:
            b1, b2 = set(g.beta1[:, 0].tolist()), set(g.beta2[:, 0].tolist())
            if len(b1) == 1 and len(b2) == 1:
                g.uniform = (b1.pop(), b2.pop())
        covered = {n for g in self.groups for n in g.names}
        if covered != set(names):
            raise ValueError(f"parameters outside every optimiser: {sorted(set(names) - covered)}")
        hv = [kernel.hyper_values(m) for m in methods]
        self.hyper = {k: torch.tensor([h[k] for h in hv], dtype=torch.float32, device=device)
                      for k in kernel.hyper_fields}
        self.step = torch.zeros(self.n, dtype=torch.long, device=device)
        self.load_from(methods)

    # -- moving state between the stack and the methods ----------
    @torch.no_grad()
    def load_from(self, methods: list[Method]) -> None:
        """Copy weights, Adam states and step counters from the methods into the stack."""
        for i, m in enumerate(methods):
            params = dict(m.named_parameters())
            for g in self.groups:
                opt = m.optimizers[g.opt]
                count = 0.0
                for name, off, shape in zip(g.names, g.offsets, g.shapes, strict=True):
                    n = math.prod(shape)
                    p = params[name]
                    g.flat[i, off:off + n] = p.detach().reshape(-1)
                    state = opt.state.get(p, {})
                    if "exp_avg" in state:
                        g.exp_avg[i, off:off + n] = state["exp_avg"].reshape(-1)
                        g.exp_avg_sq[i, off:off + n] = state["exp_avg_sq"].reshape(-1)
                        count = float(state["step"])
                    else:
                        g.exp_avg[i, off:off + n] = 0
                        g.exp_avg_sq[i, off:off + n] = 0
                g.count[i] = count
            self.step[i] = int(m.step)
        for g in self.groups:
            g.flat.requires_grad_(True)

    @torch.no_grad()
    def write_to(self, methods: list[Method]) -> None:
        """Copy the stack back: each method gets its weights, Adam states and step counter."""
        for i, m in enumerate(methods):
            params = dict(m.named_parameters())
            for g in self.groups:
                opt = m.optimizers[g.opt]
                count = float(g.count[i, 0])
                for name, off, shape in zip(g.names, g.offsets, g.shapes, strict=True):
                    n = math.prod(shape)
                    p = params[name]
                    p.copy_(g.flat[i, off:off + n].view(shape))
                    if count > 0:
                        opt.state[p] = {
                            # torch keeps the count on the host unless capturable/fused
                            "step": torch.tensor(count, dtype=torch.float32, device=(
                                p.device if opt.defaults.get("capturable")
                                or opt.defaults.get("fused") else "cpu")),
                            "exp_avg": g.exp_avg[i, off:off + n].view(shape).clone(),
                            "exp_avg_sq": g.exp_avg_sq[i, off:off + n].view(shape).clone(),
                        }
            m.step.fill_(int(self.step[i]))

    def tensors(self) -> list[Tensor]:
        """Every tensor a training step changes (for snapshots around a graph's warm-up)."""
        out = [self.step]
        for g in self.groups:
            out += [g.flat, g.exp_avg, g.exp_avg_sq, g.count]
        return out

    # -- used by the kernels ----------
    def param_views(self) -> dict[str, Any]:
        """name → the weights as autograd-tracked views of the flat tensors.

        With ``vectorize="vmap"`` each value is one (N, *shape) view; with ``"loop"`` it is a
        :class:`PerModel` tuple of N views (indexing a stacked view per model would make
        autograd write a full stacked-size gradient for every model and parameter).
        """
        views: dict[str, Any] = {}
        for g in self.groups:
            for name, off, shape in zip(g.names, g.offsets, g.shapes, strict=True):
                n = math.prod(shape)
                if self.vectorize == "vmap":
                    views[name] = g.flat[:, off:off + n].view(self.n, *shape)
                else:
                    views[name] = PerModel(g.flat[i, off:off + n].view(shape)
                                           for i in range(self.n))
        return views

    def map(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn`` applied to every model's slice of ``args`` (tensors with a leading model axis,
        dicts or tuples of them); outputs stacked along a new leading axis.

        ``"vmap"`` makes one batched computation (grouped convolutions, batched matrix
        products: few, large kernels, what a GPU wants); ``"loop"`` calls ``fn`` once per model
        (the CPU's convolutions are faster ungrouped), still with one backward pass and one
        optimiser update for all models.
        """
        if self.vectorize == "vmap":
            return vmap(fn)(*args)
        outs = [fn(*_index(args, i)) for i in range(self.n)]
        return _stack(outs)

    def update(self, losses: Tensor, groups: list[_Group], views: dict[str, Tensor]) -> None:
        """Differentiate the N losses (N,) and take one Adam step of the given groups.

        ``views`` are the parameter views the losses were computed from; the gradients are
        taken with respect to them (not the flat tensors: slicing's backward would write a full
        flat-sized gradient per parameter) and concatenated into one flat gradient per group.
        The update is ``torch.optim.Adam``'s arithmetic (no weight decay, no AMSGrad) with each
        model's learning rate, betas and step counter: bias corrections in float64 as torch
        computes them on the host, the elementwise part in float32.
        """
        loop = self.vectorize == "loop"
        inputs = [t for g in groups for name in g.names
                  for t in (views[name] if loop else (views[name],))]
        raw = torch.autograd.grad(losses.sum(), inputs, allow_unused=True)
        parts = [torch.zeros_like(v) if d is None else d
                 for v, d in zip(inputs, raw, strict=True)]
        if self.adam == "per_tensor":
            self._adam_per_tensor(groups, parts)
            return
        grads, at = [], 0
        for g in groups:
            k = len(g.names) * (self.n if loop else 1)
            chunk = parts[at:at + k]
            at += k
            if loop:  # (name, model) order → model-major, the flat layout (N, P)
                per = len(g.names)
                ordered = [chunk[j * self.n + i].reshape(-1)
                           for i in range(self.n) for j in range(per)]
                grads.append(torch.cat(ordered).view(self.n, -1))
            else:
                grads.append(torch.cat([d.reshape(self.n, -1) for d in chunk], dim=1))
        with torch.no_grad():
            for g, grad in zip(groups, grads, strict=True):
                g.count.add_(1)
                bc1 = 1 - g.beta1 ** g.count
                bc2 = 1 - g.beta2 ** g.count
                step_size = (g.lr / bc1).float()
                bc2_sqrt = bc2.sqrt().float()
                if g.uniform:  # one set of Adam settings for all models: scalar arguments
                    g.exp_avg.lerp_(grad, 1 - g.uniform[0])
                    g.exp_avg_sq.mul_(g.uniform[1]).addcmul_(grad, grad, value=1 - g.uniform[1])
                else:
                    g.exp_avg.lerp_(grad, (1 - g.beta1).float())
                    g.exp_avg_sq.mul_(g.beta2.float()).addcmul_(grad,
                                                                grad * (1 - g.beta2).float())
                denom = g.exp_avg_sq.sqrt().div_(bc2_sqrt).add_(g.eps)
                upd = torch.div(g.exp_avg, denom, out=denom).mul_(step_size)
                g.flat.sub_(upd)


    @torch.no_grad()
    def _adam_per_tensor(self, groups: list[_Group], parts: list[Tensor]) -> None:
        """The CPU's update: torch's single-tensor Adam, one (model, parameter) at a time.

        Each tensor stays in cache through all of Adam's passes (streaming whole (N, P) flats
        through memory once per pass is slower on a CPU), no flat gradient is assembled, and
        the step counters may be read on the host (nothing is captured on a CPU), so the
        arithmetic is exactly ``torch.optim.Adam``'s.
        """
        loop = self.vectorize == "loop"
        at = 0
        for g in groups:
            g.count.add_(1)
            counts = g.count[:, 0].tolist()
            lrs, b1s, b2s = g.lr[:, 0].tolist(), g.beta1[:, 0].tolist(), g.beta2[:, 0].tolist()
            epss = g.eps[:, 0].tolist()
            for j, (off, shape) in enumerate(zip(g.offsets, g.shapes, strict=True)):
                n = math.prod(shape)
                for i in range(self.n):
                    grad = parts[at + j * self.n + i] if loop else parts[at + j][i]
                    p = g.flat[i, off:off + n].view(shape)
                    m = g.exp_avg[i, off:off + n].view(shape)
                    v = g.exp_avg_sq[i, off:off + n].view(shape)
                    t, b1, b2 = counts[i], b1s[i], b2s[i]
                    m.lerp_(grad, 1 - b1)
                    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                    step_size = lrs[i] / (1 - b1 ** t)
                    denom = (v.sqrt() / math.sqrt(1 - b2 ** t)).add_(epss[i])
                    p.addcdiv_(m, denom, value=-step_size)
            at += len(g.names) * (self.n if loop else 1)


class PerModel(tuple):
    """N per-model tensors standing for one stacked parameter (the "loop" layout)."""

    __slots__ = ()

    def detach(self) -> PerModel:
        return PerModel(t.detach() for t in self)


def _index(tree: Any, i: int) -> Any:
    if isinstance(tree, PerModel):
        return tree[i]
    if isinstance(tree, Tensor):
        return tree[i]
    if isinstance(tree, dict):
        return {k: _index(v, i) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_index(v, i) for v in tree)
    raise TypeError(f"cannot slice a {type(tree).__name__} by model")


def _stack(outs: list[Any]) -> Any:
    first = outs[0]
    if isinstance(first, Tensor):
        return torch.stack(outs)
    if isinstance(first, dict):
        return {k: _stack([o[k] for o in outs]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([o[j] for o in outs]) for j in range(len(first)))
    raise TypeError(f"cannot stack {type(first).__name__} outputs")


def check_compatible(methods: list[Method]) -> type[Kernel] | None:
    """Validate that ``methods`` can be batched; return their kernel (None: train them alone).

    Raises ``ValueError`` for mixed classes, architectures or image shapes.
    """
    if not methods:
        raise ValueError("fit_many needs at least one method")
    first = methods[0]
    for i, m in enumerate(methods):
        if not isinstance(m, Method):
            raise TypeError(f"methods[{i}] is a {type(m).__name__}, not a dlib Method")
        if type(m) is not type(first):
            raise ValueError(
                f"fit_many trains models of one class: methods[0] is {type(first).__name__}, "
                f"methods[{i}] is {type(m).__name__}")
    kernel = kernel_for(first)
    if kernel is None:
        return None
    k = kernel(first)
    ref = k.static_config(first)
    ref_shapes = {n: tuple(p.shape) for n, p in first.named_parameters()}
    for i, m in enumerate(methods[1:], 1):
        if tuple(getattr(m, "image_shape", ())) != tuple(getattr(first, "image_shape", ())):
            raise ValueError(f"methods[{i}] expects images {m.image_shape}, "
                             f"methods[0] {first.image_shape}")
        cfg = k.static_config(m)
        diff = sorted(key for key in set(ref) | set(cfg) if ref.get(key) != cfg.get(key))
        if diff:
            raise ValueError(
                f"methods[{i}] differs from methods[0] in {diff}; fit_many batches models that "
                f"differ only in {list(k.hyper_fields)}, optimiser settings and seeds")
        shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
        if shapes != ref_shapes:
            raise ValueError(f"methods[{i}] has other parameters than methods[0] "
                             "(another architecture)")
    for m in methods:
        buffers = [n for n, _ in m.named_buffers() if n != "step"]
        if buffers:
            raise ValueError(f"fit_many cannot batch modules with buffers {buffers}")
    return kernel


class BatchedTrainer:
    """N models, their generators and the step of their kernel; ``run(k)`` takes k steps."""

    def __init__(self, methods: list[Method], data: Any, batch_size: int,
                 generators: list[torch.Generator], kernel_cls: type[Kernel],
                 graphs: bool = False, rng: str = "auto",
                 vectorize: str | None = None, adam: str | None = None) -> None:
        self.methods = methods
        self.data = data
        self.batch_size = batch_size
        self.generators = generators
        self.device = torch.device(data.device)
        self.kernel = kernel_cls(methods[0])
        self.kernel.prepare(self.device, batch_size)
        if vectorize is None:  # one model needs no batching rules: plain calls are leaner
            vectorize = "vmap" if self.device.type == "cuda" and len(methods) > 1 else "loop"
        self.state = BatchedState(methods, self.kernel, self.device, vectorize, adam)
        n = len(methods)
        self.first_bad = torch.full((n,), -1, dtype=torch.long, device=self.device)
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.graphed = None
        if graphs:
            from dlib.engine.graphs import GraphedIteration

            self.graphed = GraphedIteration(self, rng=rng)

    # -- one iteration, in pieces the graph module captures ----------
    def draw(self) -> dict[str, Tensor]:
        """Every model's random inputs of one step, (N, ...) each, from its own generator."""
        per = [self.kernel.draw(self.data, self.batch_size, g) for g in self.generators]
        return {k: torch.stack([p[k] for p in per]) for k in per[0]}

    def compute(self, inputs: dict[str, Tensor]) -> None:
        """Step, count, watch for non-finite terms and add the terms to the logging sums."""
        out = self.kernel.step(self.state, inputs)
        with torch.no_grad():
            self.state.step.add_(1)
            finite = torch.stack([torch.isfinite(v).reshape(self.state.n, -1).all(1)
                                  for v in out.values()]).all(0)
            self.first_bad.copy_(torch.where((self.first_bad < 0) & ~finite, self.state.step,
                                             self.first_bad))
            if not self.sums:
                self.sums = {k: torch.zeros_like(v) for k, v in out.items()}
            for k, v in out.items():
                self.sums[k].add_(v)
        self.last = out

    def iteration(self) -> None:
        self.compute(self.draw())

    def run(self, k: int) -> None:
        """Take ``k`` steps (replaying the captured graph when there is one)."""
        for _ in range(k):
            if self.graphed is not None:
                self.graphed.replay()
            else:
                self.iteration()
        self.count += k

    def read_means(self) -> list[dict[str, np.ndarray]]:
        """Per-model means of the terms since the last read (one host read-back)."""
        host = {k: (v / self.count).cpu().numpy() for k, v in self.sums.items()}
        with torch.no_grad():
            for v in self.sums.values():
                v.zero_()
        self.count = 0
        return [{k: v[i] for k, v in host.items()} for i in range(self.state.n)]

    def check_finite(self, seeds: list[int]) -> None:
        bad = self.first_bad.cpu().tolist()
        for i, b in enumerate(bad):
            if b >= 0:
                m = self.methods[i]
                raise TrainingDiverged(
                    f"model {i} of {len(bad)} ({type(m).__name__}, seed {seeds[i]}, "
                    f"{self.kernel.hyper_values(m)}): a loss term became NaN/inf at step {b}. "
                    "Lower the learning rate, check that inputs are in [0, 1], or check the "
                    "method's hyperparameters.")

    def sync(self) -> None:
        """Write the stacked state back into the methods (weights, optimisers, step)."""
        self.state.write_to(self.methods)


def fit_many(
    methods: list[Method],
    data: Any,
    steps: int,
    *,
    batch_size: int = 64,
    seeds: list[int] | None = None,
    log_every: int = 100,
    show_progress: bool = True,
    device: torch.device | str | None = None,
    fast: bool | None = None,
    checkpoints: list[str | os.PathLike] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    rng: str = "auto",
    vectorize: str | None = None,
) -> list[History]:
    """Train N methods of one class and architecture together; one History per model.

    ``methods`` may differ in their hyperparameters (β, γ, λ, C_max, …), optimiser settings and
    initialisation seeds; ``seeds`` are the per-model data/noise seeds (default: each config's
    ``seed``). Model i sees the batches and noise that ``dlib.train.fit(methods[i], data, steps,
    seed=seeds[i])`` would see. Afterwards every method holds its trained weights, its
    optimiser states and its ``step``, so ``dlib.train.save_checkpoint`` works per model.
    ``checkpoints`` (one path per model) are written every ``checkpoint_every`` steps and at the
    end, in the format of :func:`dlib.train.fit` (either can resume the other), and resumed
    from when present. ``fast=None``: CUDA graphs on CUDA, plain batched eager on the CPU.
    Methods without a batched kernel (InfoGAN) are trained one after another with
    :func:`dlib.train.fit`. A NaN in any model raises :class:`dlib.train.TrainingDiverged`
    naming the model and the step.
    """
    methods = list(methods)
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if batch_size < 1 or log_every < 1:
        raise ValueError("batch_size and log_every must be positive")
    if checkpoint_every is not None and (checkpoint_every < 1 or checkpoint_every % log_every):
        raise ValueError("checkpoint_every must be a positive multiple of log_every")
    kernel = check_compatible(methods)
    seeds = [int(m.config.seed) for m in methods] if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(methods):
        raise ValueError(f"{len(methods)} methods but {len(seeds)} seeds")
    if checkpoints is not None and len(checkpoints) != len(methods):
        raise ValueError(f"{len(methods)} methods but {len(checkpoints)} checkpoint paths")
    ckpts = [None] * len(methods) if checkpoints is None else [Path(c) for c in checkpoints]
    dd = _device_data(data, device)
    dev = torch.device(dd.device)
    if fast and dev.type != "cuda":
        raise ValueError("fast=True captures CUDA graphs and needs the data on a CUDA device")
    if kernel is None:  # no batched kernel: one after another, with the reference loop
        if fast is not None and fast:
            warnings.warn(f"{type(methods[0]).__name__} has no batched kernel; training the "
                          "models one after another with dlib.train.fit", stacklevel=2)
        return [fit(m, dd, steps, batch_size=batch_size, seed=s, log_every=log_every,
                    checkpoint=c, checkpoint_every=checkpoint_every, resume=resume,
                    show_progress=show_progress)
                for m, s, c in zip(methods, seeds, ckpts, strict=True)]

    image_shape = tuple(dd.data.image_shape)
    gens, histories = [], []
    for i, m in enumerate(methods):
        if tuple(m.image_shape) != image_shape:
            raise ValueError(f"methods[{i}] expects images {m.image_shape}, data has "
                             f"{image_shape}")
        m.to(dev)
        if not m.optimizers:
            m.setup_optimizers()
        gen = torch.Generator(device=dev)
        gen.manual_seed(seeds[i])
        history = History()
        c = ckpts[i]
        if c is not None and resume and c.exists():
            state = load_checkpoint(c, m, gen, history)
            if (state["extra"].get("batch_size") != batch_size
                    or state["extra"].get("seed") != seeds[i]):
                raise ValueError(
                    f"checkpoint {c} was trained with batch_size/seed "
                    f"{state['extra'].get('batch_size')}/{state['extra'].get('seed')}, "
                    f"not {batch_size}/{seeds[i]}")
        gens.append(gen)
        histories.append(history)
    starts = [int(m.step) for m in methods]
    if len(set(starts)) > 1:
        raise ValueError(f"the models are at different steps {starts}; fit_many advances them "
                         "together (train the lagging ones to the same step first)")
    start = starts[0]
    if start > steps:
        raise ValueError(f"the methods have already taken {start} steps (> {steps} requested)")

    def save_all(trainer: BatchedTrainer | None) -> None:
        if trainer is not None:
            trainer.sync()
        for m, h, g, c, s in zip(methods, histories, gens, ckpts, seeds, strict=True):
            if c is not None:
                save_checkpoint(c, m, h, g, {"batch_size": batch_size, "seed": s})

    if start == steps:
        if any(c is not None and not c.exists() for c in ckpts):
            save_all(None)
        for m in methods:
            m.eval()
        return histories

    for m in methods:
        m.train()
    auto = fast is None
    if auto:
        fast = dev.type == "cuda"
    gen_states = [g.get_state() for g in gens]
    try:
        trainer = BatchedTrainer(methods, dd, batch_size, gens, kernel, graphs=bool(fast),
                                 rng=rng, vectorize=vectorize)
    except Exception as err:  # noqa: BLE001 - only when the caller left the choice to us
        if not (auto and fast):
            raise
        # the methods still hold their weights (the trainer works on copies); rewind the
        # generators the warm-up used and train eagerly, with a visible warning
        warnings.warn(f"CUDA-graph capture failed ({type(err).__name__}: {err}); training "
                      "the batched step eagerly instead", stacklevel=2)
        for g, st in zip(gens, gen_states, strict=True):
            g.set_state(st)
        trainer = BatchedTrainer(methods, dd, batch_size, gens, kernel, graphs=False,
                                 vectorize=vectorize)
    t0 = time.perf_counter() - (histories[0].seconds[-1] if histories[0].seconds else 0.0)
    bar = progress(total=steps, initial=start, **({} if show_progress else {"disable": True}))
    step = start
    while step < steps:
        # run to the next logging point (logging points are multiples of log_every, as in fit)
        stop = min(steps, (step // log_every + 1) * log_every)
        trainer.run(stop - step)
        bar.update(stop - step)
        step = stop
        trainer.check_finite(seeds)
        now = time.perf_counter() - t0
        means = trainer.read_means()
        for h, mm in zip(histories, means, strict=True):
            h.append(step, now, mm)
        bar.set_postfix(loss=f"{float(np.mean([mm['loss'] for mm in means])):.2f}",
                        refresh=False)
        last = step == steps
        if any(c is not None for c in ckpts) and (
                last or (checkpoint_every and step % checkpoint_every == 0)):
            save_all(trainer)
    bar.close()
    trainer.sync()
    for m in methods:
        m.eval()
    return histories
