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


# ---- the CPU's own limit ----------------------------------------------------------------------
def layer_macs(module: torch.nn.Module, x: torch.Tensor) -> list[tuple[str, int]]:
    """Multiply-accumulates of each Conv2d / ConvTranspose2d / Linear of ``module`` for input
    ``x``, counted from the layer shapes (one forward pass with hooks; nothing is timed)."""
    out: list[tuple[str, int]] = []

    def hook(m: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(m, torch.nn.Conv2d):
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            out.append(("conv", output.numel() * k))
        elif isinstance(m, torch.nn.ConvTranspose2d):
            k = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            out.append(("conv", inputs[0].numel() * k))
        elif isinstance(m, torch.nn.Linear):
            out.append(("dense", output.numel() * m.in_features))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return out


def step_flops(image_shape: tuple[int, int, int], batch_size: int, width: float = 1.0,
               kinds: tuple[str, ...] = ("conv", "dense")) -> float:
    """FLOPs of one forward + backward pass of the VAE networks (encoder and decoder) on a
    batch: 2 FLOPs per multiply-accumulate, backward = 2 × forward (input and weight
    gradients) except for the first layer, whose input (the images) needs no gradient. Losses
    are left out; FactorVAE's discriminator is not counted."""
    from dlib.nets import Decoder, Encoder

    enc = Encoder(image_shape, 10, width=width)
    dec = Decoder(image_shape, 10, width=width)
    first, *rest = layer_macs(enc, torch.zeros(batch_size, *image_shape))
    macs = rest + layer_macs(dec, torch.zeros(batch_size, 10))
    total = 3 * sum(n for kind, n in macs if kind in kinds)
    total += 2 * first[1] if first[0] in kinds else 0
    return 2.0 * total


def _timed(fn: Any, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def cpu_limit(repeats: int = 5, matmul_size: int = 2048, batch_size: int = 64,
              image_shape: tuple[int, int, int] = (1, 64, 64), width: float = 1.0,
              iters: int = 10) -> dict[str, Any]:
    """GFLOP/s of a large fp32 ``torch.matmul`` and of the reference network's conv layers
    alone (forward + backward, FLOPs from :func:`step_flops`), best and median of
    ``repeats``, with the load average before and after."""
    import statistics

    from dlib.nets import Decoder, Encoder

    load0 = [round(v, 2) for v in os.getloadavg()]
    n = matmul_size
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    mm = _timed(lambda: [a @ b for _ in range(iters)], repeats)
    mm_flops = 2.0 * n ** 3 * iters
    # the conv layers alone: encoder convs on images, decoder transposed convs on 4x4 maps
    enc = Encoder(image_shape, 10, width=width)
    dec = Decoder(image_shape, 10, width=width)
    convs_e = torch.nn.Sequential(*[m for m in enc.body if not isinstance(
        m, (torch.nn.Flatten, torch.nn.Linear))][:-1])
    unflat = next(i for i, m in enumerate(dec.body) if isinstance(m, torch.nn.Unflatten))
    convs_d = torch.nn.Sequential(*list(dec.body)[unflat + 1:])
    x = torch.rand(batch_size, *image_shape)
    c2 = dec.body[unflat].unflattened_size
    h = torch.randn(batch_size, *c2, requires_grad=True)
    enc_macs = [k for kind, k in layer_macs(convs_e, x) if kind == "conv"]
    dec_macs = [k for kind, k in layer_macs(convs_d, h) if kind == "conv"]
    # the images need no gradient: the first layer's backward is its weight gradient only
    pass_flops = 2.0 * (2 * enc_macs[0] + 3 * sum(enc_macs[1:]) + 3 * sum(dec_macs))

    def conv_pass() -> None:
        for _ in range(iters):
            (convs_e(x).sum() + convs_d(h).sum()).backward()

    conv_pass()
    cv = _timed(conv_pass, repeats)
    conv_flops = pass_flops * iters
    load1 = [round(v, 2) for v in os.getloadavg()]

    def stats(times: list[float], flops: float) -> dict[str, float]:
        return {"gflops_best": round(flops / min(times) / 1e9, 2),
                "gflops_median": round(flops / statistics.median(times) / 1e9, 2)}

    return {"matmul": {"size": n, **stats(mm, mm_flops)},
            "conv": {"batch_size": batch_size, "image_shape": list(image_shape),
                     "width": width, "flops_per_pass": pass_flops,
                     **stats(cv, conv_flops)},
            "threads": torch.get_num_threads(), "repeats": repeats,
            "load_before": load0, "load_after": load1}


#: the networks the CPU variants are measured on: (label, image side, width)
CPU_NETWORKS = (("cpu scale: 32x32, width 0.5", 32, 0.5), ("reference: 64x64, width 1", 64, 1.0))


def _variant_rate(variant: str, image_size: int, width: float, batch_size: int, steps: int,
                  warmup: int, repeats: int) -> dict[str, Any]:
    """Best and median β-VAE train steps per second of one variant in this process."""
    import statistics

    from dlib.methods import BetaVAE

    model = BetaVAE((1, image_size, image_size), beta=4.0, seed=0, width=width, lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(batch_size, 1, image_size, image_size, generator=gen) > 0.7).float()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    elif variant == "compile":
        model.encoder = torch.compile(model.encoder)  # inductor's CPU backend
        model.decoder = torch.compile(model.decoder)
    elif variant != "eager":
        raise ValueError(f"unknown CPU variant {variant!r}")
    t0 = time.perf_counter()
    for _ in range(warmup):  # includes the compilation of the compiled variant
        model.train_step(x, gen)
    first = time.perf_counter() - t0
    times = _timed(lambda: [model.train_step(x, gen) for _ in range(steps)], repeats)
    return {"it_per_s": round(steps / min(times), 2),
            "it_per_s_median": round(steps / statistics.median(times), 2),
            "warmup_seconds": round(first, 2)}


def _variant_worker(args: tuple) -> dict[str, Any]:  # one process of the two-process variant
    torch.set_num_threads(1)
    return _variant_rate(*args)


#: the variants of :func:`cpu_variants`: (name, torch threads)
CPU_VARIANTS = (("eager", 1), ("eager", 2), ("channels_last", 2), ("compile", 2),
                ("two processes", 1))


def cpu_variants(batch_size: int = 64, steps: int = 40, warmup: int = 5, repeats: int = 3,
                 networks: tuple[tuple[str, int, float], ...] = CPU_NETWORKS,
                 variants: tuple[tuple[str, int], ...] = CPU_VARIANTS
                 ) -> list[dict[str, Any]]:
    """What the CPU rewards, measured: the β-VAE train step (fixed batch, no data loading) of
    each network, eagerly with 1 and 2 threads, with ``channels_last`` and with
    ``torch.compile`` (2 threads), and as two 1-thread processes side by side (their summed
    rate: the studies runner's layout). Each row has the load average before and after."""
    import multiprocessing as mp

    threads0 = torch.get_num_threads()
    rows = []
    for label, size, width in networks:
        for variant, threads in variants:
            load0 = [round(v, 2) for v in os.getloadavg()]
            args = ("eager" if variant == "two processes" else variant, size, width,
                    batch_size, steps, warmup, repeats)
            if variant == "two processes":
                with mp.get_context("spawn").Pool(2) as pool:
                    parts = pool.map(_variant_worker, [args, args])
                out = {"it_per_s": round(sum(p["it_per_s"] for p in parts), 2),
                       "it_per_s_median": round(sum(p["it_per_s_median"] for p in parts), 2),
                       "per_process": parts}
            else:
                torch.set_num_threads(threads)
                try:
                    out = _variant_rate(*args)
                except Exception as err:  # e.g. no C++ compiler for inductor: say so
                    out = {"error": f"{type(err).__name__}: {err}"[:300]}
            rows.append({"network": label, "image_size": size, "width": width,
                         "variant": variant, "threads": threads, "batch_size": batch_size,
                         **out, "load": [load0, [round(v, 2) for v in os.getloadavg()]]})
            print(f"{label:<28} {variant:<14} {threads} thread(s): "
                  f"{out.get('it_per_s', out.get('error'))} it/s", flush=True)
    torch.set_num_threads(threads0)
    return rows


def run(methods: tuple[str, ...] = METHODS, *, batch_size: int = 64, models: int = 16,
        steps: int = 500, warmup: int = 20, device: str | None = None, num_images: int = 50_000,
        verbose: bool = True, vectorize: str | None = None, repeats: int = 1
        ) -> dict[str, Any]:
    """Measure every method in every mode; return the rows and the settings.

    ``vectorize`` forces the batched run's computation ("vmap" or "loop"; default: the
    engine's choice, vmap on CUDA). Each measurement is repeated ``repeats`` times: the row
    reports the best (its ``seconds`` and rates) and the median, with the load average
    before and after. On a CPU the result also holds the CPU's limit (:func:`cpu_limit`)
    and each row's achieved GFLOP/s of the VAE networks and its fraction of the conv limit.
    """
    from dlib.data import load

    dev = config.device(device)
    cuda = dev.type == "cuda"
    dd = load("dsprites").to_device(dev, num=num_images, seed=0)
    rows: list[dict[str, Any]] = []
    if not cuda:
        before = cpu_limit(repeats=max(3, repeats), batch_size=batch_size,
                           image_shape=tuple(dd.data.image_shape))
    for name in methods:
        if name not in SWEPT:
            raise ValueError(f"unknown method {name!r}; choose from {sorted(SWEPT)}")
        per_step = _make(name, 0, 0, tuple(dd.data.image_shape)).batch_multiplier
        runs = [("eager", 1), ("fast", 1), ("batched", models)]
        base = None
        for mode, n in runs:
            times, loads = [], []
            for _ in range(max(1, repeats)):
                load0 = [round(v, 2) for v in os.getloadavg()]
                if mode == "eager":
                    times.append(time_eager(name, dd, batch_size, warmup, steps))
                else:
                    times.append(time_engine(name, dd, batch_size, n, warmup, steps,
                                             graphs=cuda,
                                             vectorize=vectorize if mode == "batched" else None))
                loads.append([load0, [round(v, 2) for v in os.getloadavg()]])
            seconds = min(times)
            its = steps / seconds
            model_its = n * its
            base = model_its if base is None else base
            row = {"method": name, "mode": mode, "models": n, "graphs": cuda and mode != "eager",
                   "steps": steps, "seconds": round(seconds, 4), "it_per_s": round(its, 2),
                   "model_it_per_s": round(model_its, 2),
                   "images_per_s": round(model_its * batch_size * per_step, 1),
                   "vs_eager": round(model_its / base, 3)}
            if repeats > 1:
                import statistics

                row["seconds_all"] = [round(t, 4) for t in times]
                row["it_per_s_median"] = round(steps / statistics.median(times), 2)
                row["load"] = loads
            if not cuda:
                # one batch through encoder and decoder: FactorVAE's second batch and its
                # discriminator are not counted, so its GFLOP/s is a lower bound
                flops = step_flops(tuple(dd.data.image_shape), batch_size)
                row["gflops"] = round(model_its * flops / 1e9, 2)
            rows.append(row)
            if verbose:
                print(_format_row(row), flush=True)
    settings = {"methods": list(methods), "batch_size": batch_size, "models": models,
                "steps": steps, "warmup": warmup, "device": str(dev),
                "device_name": (torch.cuda.get_device_name(dev) if cuda else "cpu"),
                "num_images": num_images, "torch_threads": torch.get_num_threads(),
                "vectorize": vectorize or "default",
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "repeats": repeats}
    result: dict[str, Any] = {"settings": settings, "rows": rows}
    if not cuda:
        # measured before and after the rows (a shared machine's load drifts); the limit is
        # the better of the two
        after = cpu_limit(repeats=max(3, repeats), batch_size=batch_size,
                          image_shape=tuple(dd.data.image_shape))
        limit = max((before, after), key=lambda r: r["conv"]["gflops_best"])
        limit = {**limit, "before_rows": before, "after_rows": after}
        for key in ("matmul",):
            limit[key] = max((before[key], after[key]), key=lambda r: r["gflops_best"])
        result["cpu_limit"] = limit
        for row in rows:
            row["fraction_of_conv_limit"] = round(row["gflops"] / limit["conv"]["gflops_best"],
                                                  3)
            row["fraction_of_matmul_limit"] = round(
                row["gflops"] / limit["matmul"]["gflops_best"], 3)
    return result


HEADER = (f"{'method':<12} {'mode':<8} {'models':>6} {'it/s':>10} {'model-it/s':>11} "
          f"{'images/s':>11} {'vs eager':>9}")


def _format_row(r: dict[str, Any]) -> str:
    return (f"{r['method']:<12} {r['mode']:<8} {r['models']:>6} {r['it_per_s']:>10.1f} "
            f"{r['model_it_per_s']:>11.1f} {r['images_per_s']:>11.0f} {r['vs_eager']:>8.2f}x")


def table(result: dict[str, Any]) -> str:
    """The rows of a result as the text table the command prints."""
    return "\n".join([HEADER, *(_format_row(r) for r in result["rows"])])


def load(path: str | os.PathLike | None = None, name: str = "bench.json"
         ) -> dict[str, Any] | None:
    """The recorded benchmark ``path`` (default: ``name`` in the results folder, e.g.
    ``book/results/bench.json``, or ``bench_cpu.json`` for the CPU's), or None if absent."""
    from dlib.results import results_dir

    p = Path(path) if path is not None else results_dir() / name
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
    ap.add_argument("--repeats", type=int, default=None,
                    help="repeat each measurement (default: 3 on a CPU, 1 on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--cpu-variants", action="store_true",
                    help="instead of the engine rows: the β-VAE step on a CPU eagerly with 1 and "
                         "2 threads, channels_last, torch.compile and two 1-thread processes")
    args = ap.parse_args(argv)
    if args.quick:
        args.device = args.device or "cpu"
        args.steps, args.warmup, args.models = min(args.steps, 4), min(args.warmup, 2), 2
        args.batch_size = min(args.batch_size, 16)
    from dlib.results import Provenance

    prov = Provenance("python -m dlib.bench " + " ".join(sys.argv[1:] if argv is None
                                                         else argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_variants:
        steps = 3 if args.quick else min(args.steps, 40)
        variants = {"rows": cpu_variants(batch_size=args.batch_size, steps=steps,
                                         warmup=2 if args.quick else 5,
                                         repeats=1 if args.quick else 3),
                    "quick": bool(args.quick), "provenance": prov.finish()}
        if args.json:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(variants, indent=1))
            print(f"wrote {out}")
        return 0
    cpu = config.device(args.device).type == "cpu"
    repeats = args.repeats or (3 if cpu and not args.quick else 1)
    if cpu and args.models == 16 and "--models" not in " ".join(argv or sys.argv):
        args.models = 2  # the CPU engine loops over models: two are enough to see the cost
    print(HEADER, flush=True)
    result = run(tuple(m for m in args.methods.split(",") if m), batch_size=args.batch_size,
                 models=args.models, steps=args.steps, warmup=args.warmup, device=args.device,
                 num_images=2_000 if args.quick else 50_000, vectorize=args.vectorize,
                 repeats=repeats)
    if "cpu_limit" in result:
        lim = result["cpu_limit"]
        print(f"CPU limit ({lim['threads']} threads): matmul {lim['matmul']['gflops_best']} "
              f"GFLOP/s, reference conv layers fwd+bwd {lim['conv']['gflops_best']} GFLOP/s "
              f"(best of {lim['repeats']}); load {lim['load_before']} -> {lim['load_after']}")
        for r in result["rows"]:
            print(f"  {r['method']:<12} {r['mode']:<8} {r['gflops']:>7.2f} GFLOP/s = "
                  f"{100 * r['fraction_of_conv_limit']:.0f}% of the conv limit")
        result["shared_machine"] = (
            "the CPU may have been shared with other jobs: see each row's load averages")
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
