"""Training throughput of the engines, side by side in one run: ``python -m dlib.bench``.

For each method (β-VAE, β-TCVAE, FactorVAE by default) it measures

``eager``    the reference loop :func:`dlib.train.fit` (one model);
``fast``     the engine with one model — on CUDA the iteration captured as a CUDA graph and
             replayed; on a CPU the engine's eager batched code with N = 1;
``batched``  the engine with N models of different hyperparameters and seeds (CUDA graph on
             CUDA, the per-model loop on a CPU),

and prints iterations per second, model-iterations per second (N × it/s), images per second
(model-iterations × batch × the method's batches per step) and the ratio of model-iterations
per second to the eager loop. Timing starts after warm-up steps (graph capture included there)
and stops after a device synchronisation. ``--quick`` is a seconds-long CPU dry run that checks
the command works; its numbers are no result. ``--json OUT`` writes the rows with their
provenance (command, commit, device, torch version, time), e.g. ``book/results/bench.json``,
which the engine appendix of the book reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from dlib import config
from dlib.methods import registry
from dlib.methods.base import Method

METHODS = ("beta_vae", "beta_tc_vae", "factor_vae")
#: the methods that can be benchmarked: those with a study grid (the batched run cycles through
#: the grid's values of the swept hyperparameter, see :mod:`dlib.methods.registry`)
SWEPT = registry.STUDY_METHODS


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _make(name: str, seed: int, index: int, image_shape: tuple[int, int, int]) -> Method:
    spec = registry.get(name)
    value = float(spec.grid[index % len(spec.grid)])
    return registry.build(name, image_shape, seed=seed, **{str(spec.swept): value})


def time_eager(name: str, dd: Any, batch_size: int, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` iterations of :func:`dlib.train.fit` after ``warmup`` of them."""
    from dlib.train import fit

    m = _make(name, 0, 0, tuple(dd.data.image_shape))
    fit(m, dd, warmup, batch_size=batch_size, seed=0, log_every=warmup, show_progress=False)
    dev = torch.device(dd.device)
    _sync(dev)
    t0 = time.perf_counter()
    fit(m, dd, warmup + steps, batch_size=batch_size, seed=0, log_every=steps,
        show_progress=False)
    _sync(dev)
    return time.perf_counter() - t0


def time_engine(name: str, dd: Any, batch_size: int, n: int, warmup: int, steps: int,
                graphs: bool, vectorize: str | None = None) -> float:
    """Seconds for ``steps`` iterations of the engine training ``n`` models at once."""
    from dlib.engine.batched import BatchedTrainer
    from dlib.engine.kernels import kernel_for

    dev = torch.device(dd.device)
    ms = [_make(name, i, i, tuple(dd.data.image_shape)) for i in range(n)]
    for m in ms:
        m.to(dev)
        m.setup_optimizers()
        m.train()
    kernel = kernel_for(ms[0])
    assert kernel is not None
    gens = [torch.Generator(device=dev).manual_seed(i) for i in range(n)]
    trainer = BatchedTrainer(ms, dd, batch_size, gens, kernel, graphs=graphs,
                             vectorize=vectorize)
    trainer.run(warmup)
    trainer.read_means()
    _sync(dev)
    t0 = time.perf_counter()
    trainer.run(steps)
    trainer.read_means()  # the logging read-back a real run does
    _sync(dev)
    return time.perf_counter() - t0


def run(methods: tuple[str, ...] = METHODS, *, batch_size: int = 64, models: int = 16,
        steps: int = 500, warmup: int = 20, device: str | None = None, num_images: int = 50_000,
        verbose: bool = True, vectorize: str | None = None) -> dict[str, Any]:
    """Measure every method in every mode; return the rows and the settings.

    ``vectorize`` forces the batched run's computation ("vmap" or "loop"; default: the
    engine's choice, vmap on CUDA).
    """
    from dlib.data import load

    dev = config.device(device)
    cuda = dev.type == "cuda"
    dd = load("dsprites").to_device(dev, num=num_images, seed=0)
    rows: list[dict[str, Any]] = []
    for name in methods:
        if name not in SWEPT:
            raise ValueError(f"unknown method {name!r}; choose from {sorted(SWEPT)}")
        per_step = _make(name, 0, 0, tuple(dd.data.image_shape)).batch_multiplier
        runs = [("eager", 1), ("fast", 1), ("batched", models)]
        base = None
        for mode, n in runs:
            if mode == "eager":
                seconds = time_eager(name, dd, batch_size, warmup, steps)
            else:
                seconds = time_engine(name, dd, batch_size, n, warmup, steps, graphs=cuda,
                                      vectorize=vectorize if mode == "batched" else None)
            its = steps / seconds
            model_its = n * its
            base = model_its if base is None else base
            row = {"method": name, "mode": mode, "models": n, "graphs": cuda and mode != "eager",
                   "steps": steps, "seconds": round(seconds, 4), "it_per_s": round(its, 2),
                   "model_it_per_s": round(model_its, 2),
                   "images_per_s": round(model_its * batch_size * per_step, 1),
                   "vs_eager": round(model_its / base, 3)}
            rows.append(row)
            if verbose:
                print(_format_row(row), flush=True)
    settings = {"methods": list(methods), "batch_size": batch_size, "models": models,
                "steps": steps, "warmup": warmup, "device": str(dev),
                "device_name": (torch.cuda.get_device_name(dev) if cuda else "cpu"),
                "num_images": num_images, "torch_threads": torch.get_num_threads(),
                "vectorize": vectorize or "default",
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    return {"settings": settings, "rows": rows}


HEADER = (f"{'method':<12} {'mode':<8} {'models':>6} {'it/s':>10} {'model-it/s':>11} "
          f"{'images/s':>11} {'vs eager':>9}")


def _format_row(r: dict[str, Any]) -> str:
    return (f"{r['method']:<12} {r['mode']:<8} {r['models']:>6} {r['it_per_s']:>10.1f} "
            f"{r['model_it_per_s']:>11.1f} {r['images_per_s']:>11.0f} {r['vs_eager']:>8.2f}x")


def table(result: dict[str, Any]) -> str:
    """The rows of a result as the text table the command prints."""
    return "\n".join([HEADER, *(_format_row(r) for r in result["rows"])])


def load(path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The recorded benchmark (default ``book/results/bench.json``), or None if absent."""
    from dlib.results import results_dir

    p = Path(path) if path is not None else results_dir() / "bench.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dlib.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a seconds-long CPU dry run (tiny sizes; the numbers are no result)")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated, from {sorted(SWEPT)}")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--models", type=int, default=16, help="N of the batched run")
    ap.add_argument("--steps", type=int, default=500, help="timed iterations per measurement")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--device", default=None, help="cuda / cpu (default: CUDA if present)")
    ap.add_argument("--vectorize", choices=["vmap", "loop"], default=None,
                    help="force the batched run's computation (default: vmap on CUDA)")
    ap.add_argument("--json", default=None, help="write the numbers with provenance here")
    args = ap.parse_args(argv)
    if args.quick:
        args.device = args.device or "cpu"
        args.steps, args.warmup, args.models = min(args.steps, 4), min(args.warmup, 2), 2
        args.batch_size = min(args.batch_size, 16)
    from dlib.results import Provenance

    prov = Provenance("python -m dlib.bench " + " ".join(sys.argv[1:] if argv is None
                                                         else argv))
    print(HEADER, flush=True)
    result = run(tuple(m for m in args.methods.split(",") if m), batch_size=args.batch_size,
                 models=args.models, steps=args.steps, warmup=args.warmup, device=args.device,
                 num_images=2_000 if args.quick else 50_000, vectorize=args.vectorize)
    result["quick"] = bool(args.quick)
    result["provenance"] = prov.finish()
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
