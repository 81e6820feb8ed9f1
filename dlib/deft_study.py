"""The DEFT experiment (seed 004, Table 2 and Fig. 8): failure rates and MIG per stage.

DEFT and six baselines are trained on dSprites and color-dSprites over many seeds; a run
*fails* when its final MIG is below 0.1 (the paper's definition). For DEFT the MIG is also
measured at the end of every stage (Fig. 8), and for every run max-1 / max-2 NMI per factor is
traced over training (Fig. 2). The result is one file, ``book/results/deft.json``::

    python -m dlib.deft_study run                                  # the protocol below
    python -m dlib.deft_study run --seeds 0 1 2 --scale 0.25 --shard 0/4   # part of it

Protocol (choices where the paper is silent, argued in the chapter):

* DEFT: the Table 1 row of the dataset, epochs converted to steps at batch 64 (dSprites:
  23,040 + 23,040 + 46,080 + 172,800 = 264,960 steps), Adam 5e-4 (the paper's), γ = 0.1, the
  reference architecture with every width divided by the number of groups.
* Baselines: the Locatello et al. study protocol (300,000 steps, batch 64, Adam 1e-4) at one
  setting each (:data:`BASELINES`); the paper instead took the best-MIG setting of the study's
  pretrained models, which we cannot tune within the budget.
* ``--scale s`` multiplies every method's step count (DEFT: every stage) by s, for budgets
  smaller than the protocol's (the saved file records it; the chapter says so).
* MIG: :func:`dlib.metrics.compute` with the study's defaults (10,000 points, 20 bins).

Every finished run is kept as a small JSON in a work folder, so an interrupted command resumes
(an interrupted model too, from its last finished segment); the result file is rewritten from
all finished runs after each one and says how many of the planned runs it holds. Several
``--shard k/n`` processes may share one GPU and one work folder (the eager engine is
launch-bound, so a few processes use an H100 much better than one); running the command once
more after they finish collects every run into the result without training anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlib import config
from dlib import results as _results

__all__ = ["BASELINES", "METHODS", "PAPER_TABLE2", "RESULT_NAME", "FAILURE_MIG", "command",
           "method_plan", "run_one", "run", "load", "DEFTStudy", "main"]

RESULT_NAME = "deft"
FAILURE_MIG = 0.1
STUDY_STEPS = 300_000
BATCH_SIZE = 64

#: baseline → (name in dlib.methods.presets, the one setting trained)
BASELINES: dict[str, tuple[str, dict[str, float]]] = {
    "beta_vae": ("beta_vae", {"beta": 6.0}),  # the paper's own β-VAE example (Sec. 4)
    "factor_vae": ("factor_vae", {"gamma": 40.0}),
    "dip_vae_i": ("dip_vae_i", {"lambda_od": 10.0}),
    "dip_vae_ii": ("dip_vae_ii", {"lambda_od": 10.0}),
    "beta_tc_vae": ("beta_tc_vae", {"beta": 6.0}),
    "annealed_vae": ("annealed_vae", {"c_max": 25.0}),
}
METHODS: tuple[str, ...] = ("deft", *BASELINES)
LABELS = {"deft": "DEFT", "beta_vae": "β-VAE", "factor_vae": "FactorVAE",
          "dip_vae_i": "DIP-VAE-I", "dip_vae_ii": "DIP-VAE-II", "beta_tc_vae": "β-TCVAE",
          "annealed_vae": "AnnealedVAE"}

#: Table 2 of the paper: failure rate (%) = share of runs with MIG < 0.1
PAPER_TABLE2: dict[str, dict[str, float]] = {
    ds: dict(zip(METHODS, row, strict=True)) for ds, row in {
        # columns: DEFT, β-VAE, FactorVAE, DIP-VAE-I, DIP-VAE-II, β-TCVAE, AnnealedVAE
        "dsprites": (8.0, 47.7, 11.0, 76.0, 87.0, 18.7, 61.7),
        "color_dsprites": (0.0, 36.0, 16.7, 78.0, 89.3, 23.7, 47.7),
        "scream_dsprites": (12.0, 34.3, 66.7, 80.3, 89.0, 43.7, 100.0),
        "smallnorb": (0.0, 0.0, 0.0, 28.7, 0.0, 0.0, 88.0),
    }.items()
}


def command(**overrides: Any) -> str:
    """The shell command that (re)computes the result, with ``overrides`` as flags."""
    parts = ["python", "-m", "dlib.deft_study", "run"]
    for key, value in overrides.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        parts += ["--" + key.replace("_", "-"), *map(str, values)]
    return shlex.join(parts)


def method_plan(method: str, dataset: str, scale: float = 1.0) -> dict[str, Any]:
    """What ``method`` is trained with on ``dataset``: options, total steps, stage ends."""
    from dlib.methods.deft import deft_config

    if method == "deft":
        cfg = deft_config(dataset, batch_size=BATCH_SIZE)
        stages = tuple(max(1, int(round(s * scale))) for s in cfg.stage_steps)
        return {"options": {"stage_steps": stages}, "steps": int(sum(stages)),
                "stage_ends": np.cumsum(stages).tolist(), "preset": dataset}
    if method not in BASELINES:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    name, setting = BASELINES[method]
    options: dict[str, Any] = dict(setting)
    if method == "annealed_vae":  # the capacity ramp keeps its share of training
        options["iteration_threshold"] = max(1, int(round(100_000 * scale)))
    return {"options": options, "steps": max(1, int(round(STUDY_STEPS * scale))),
            "stage_ends": [], "preset": name}


def _build(method: str, dataset: str, plan: dict[str, Any], seed: int,
           image_shape: tuple[int, int, int], dataset_size: int) -> Any:
    if method == "deft":
        from dlib.methods.deft import DEFT, deft_config

        return DEFT(image_shape, deft_config(dataset, batch_size=BATCH_SIZE, seed=seed,
                                             **plan["options"]))
    from dlib.methods import build

    options = {**plan["options"], "seed": seed}
    if method == "beta_tc_vae":
        options["dataset_size"] = dataset_size
    return build(plan["preset"], image_shape, **options)


def _mig(method: Any, data: Any, num_train: int) -> float:
    from dlib.metrics import compute
    from dlib.metrics.utils import torch_representation

    method.eval()
    dev = next(method.parameters()).device
    rep = torch_representation(method.represent, device=dev)
    return float(compute("mig", data, rep, np.random.RandomState(0),
                         num_train=num_train)["discrete_mig"])


def run_one(method: str, dataset: str, seed: int, dd: Any, data: Any, *, scale: float,
            work: Path, num_trace: int = 24, mig_train: int = 10_000, probe_num: int = 10_000,
            show_progress: bool = False) -> dict[str, Any]:
    """Train one model, tracing NMI and (DEFT) the MIG at each stage end; return its record."""
    from dlib.methods.deft import NMIProbe
    from dlib.train import fit

    plan = method_plan(method, dataset, scale)
    model = _build(method, dataset, plan, seed, tuple(data.image_shape), len(dd))
    total = plan["steps"]
    trace_at = {int(round(total * (i + 1) / num_trace)) for i in range(num_trace)}
    targets = sorted({t for t in trace_at | set(plan["stage_ends"]) | {total}
                      if 0 < t <= total})
    probe = NMIProbe(dd, num=probe_num, seed=1234)
    ckpt = work / f"{method}_{dataset}_seed{seed}_scale{scale:g}.pt"
    log_every = max(1, min(1000, total // 50))
    partial = ckpt.with_suffix(".partial.json")  # what the finished segments measured
    trace: dict[str, list] = {"step": [], "max1": [], "max2": [], "mig": []}
    stage_mig: list[float] = []
    history = None
    done = 0
    if ckpt.exists() and partial.exists():  # an interrupted run: resume after its last segment
        state = json.loads(partial.read_text())
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
        if saved == state["step"]:
            done, trace, stage_mig = state["step"], state["trace"], state["stage_mig"]
    if done == 0:  # a fresh start (also after a crash between checkpoint and record)
        ckpt.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    else:  # loads the checkpoint into the model (no step is taken)
        history = fit(model, dd, done, batch_size=BATCH_SIZE, seed=seed, log_every=log_every,
                      checkpoint=ckpt, show_progress=False)
    for target in (t for t in targets if t > done):
        # segments resume from the checkpoint; the last one (any length) saves at its end
        history = fit(model, dd, target, batch_size=BATCH_SIZE, seed=seed, log_every=log_every,
                      checkpoint=ckpt, show_progress=show_progress)
        if target in trace_at or target == total:
            p = probe(model)
            trace["step"].append(target)
            trace["max1"].append(p["max1"].tolist())
            trace["max2"].append(p["max2"].tolist())
            trace["mig"].append(p["mig"])
        if target in plan["stage_ends"]:
            stage_mig.append(_mig(model, data, mig_train))
        model.train()
        partial.write_text(json.dumps(_results._jsonable(
            {"step": target, "trace": trace, "stage_mig": stage_mig})))
    final_mig = stage_mig[-1] if stage_mig and plan["stage_ends"][-1] == total else _mig(
        model, data, mig_train)
    assert history is not None
    tail = slice(-max(1, len(history) // 20), None)  # the last ~5 % of logging points
    record = {"method": method, "dataset": dataset, "seed": seed, "scale": scale,
              "steps": total, "options": plan["options"], "mig": final_mig,
              "failed": bool(final_mig < FAILURE_MIG), "stage_ends": plan["stage_ends"],
              "stage_mig": stage_mig,
              "recon": float(np.mean(history["recon"][tail])),
              "kl": float(np.mean(history["kl"][tail])),
              "trace": trace, "factor_names": list(probe.factor_names)}
    ckpt.unlink(missing_ok=True)
    partial.unlink(missing_ok=True)
    return record


def _data(dataset: str, profile: str, device: torch.device) -> tuple[Any, Any]:
    from dlib.data import load as load_data

    data = load_data(dataset)
    num = None if profile == "full" else 512
    return data, data.to_device(device, num=num, seed=0)


def run(*, datasets: list[str] | None = None, methods: list[str] | None = None,
        seeds: list[int] | None = None, scale: float | None = None, shard: str = "0/1",
        work: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
        profile: str | None = None, show_progress: bool = True,
        command_line: str | None = None) -> DEFTStudy:
    """Train and evaluate the planned runs (this shard's share); save and return the result.

    Defaults: both dSprites variants, all seven methods, seeds 0–9, ``scale=1`` (the full
    protocol) in the full profile. In the quick profile the data is a 512-image subset, the
    scale 1e-4 (a few dozen steps) and the samples small: a smoke test, never a result.
    """
    profile = profile or config.profile()
    datasets = list(datasets or ["dsprites", "color_dsprites"])
    methods = list(methods or METHODS)
    seeds = [int(s) for s in (seeds if seeds is not None else range(10))]
    scale = float(scale if scale is not None else (1.0 if profile == "full" else 1e-4))
    if not 0 < scale <= 1:
        raise ValueError(f"scale must lie in (0, 1], got {scale}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {METHODS}")
    k, n = (int(v) for v in shard.split("/"))
    if not 0 <= k < n:
        raise ValueError(f"shard must be k/n with 0 <= k < n, got {shard!r}")
    sizes = dict(num_trace=24, mig_train=10_000, probe_num=10_000) if profile == "full" else \
        dict(num_trace=3, mig_train=300, probe_num=300)
    prov = _results.Provenance(command_line)
    device = config.device()
    wdir = Path(work) if work else config.cache_dir() / "deft_study"
    wdir.mkdir(parents=True, exist_ok=True)
    plan = [(d, m, s) for d in datasets for m in methods for s in seeds]

    def eval_path(d: str, m: str, s: int) -> Path:
        return wdir / f"{m}_{d}_seed{s}_scale{scale:g}_{profile}.json"

    def save() -> DEFTStudy:
        with _locked(wdir / ".save.lock"):  # shards sharing a work folder write one by one
            return _save()

    def _save() -> DEFTStudy:
        runs = [json.loads(eval_path(*p).read_text()) for p in plan if eval_path(*p).exists()]
        payload = {"datasets": datasets, "methods": methods, "seeds": seeds, "scale": scale,
                   "batch_size": BATCH_SIZE, "failure_mig": FAILURE_MIG,
                   "plans": {d: {m: method_plan(m, d, scale) for m in methods}
                             for d in datasets},
                   "planned_runs": len(plan), "complete": len(runs) == len(plan),
                   "paper_table2": PAPER_TABLE2, "runs": runs}
        provenance = prov.finish(scale=scale, seeds=seeds, profile=profile)
        path = _results.save(RESULT_NAME, payload, provenance, root=out)
        res = _results.load(RESULT_NAME, root=path.parent)
        assert res is not None
        return DEFTStudy(res)

    result = None
    for dataset in datasets:
        mine = [(m, s) for i, (d, m, s) in enumerate(plan) if d == dataset and i % n == k
                and not eval_path(d, m, s).exists()]
        if not mine:
            continue
        data, dd = _data(dataset, profile, device)
        for m, s in mine:
            record = run_one(m, dataset, s, dd, data, scale=scale, work=wdir,
                             show_progress=show_progress, **sizes)
            tmp = eval_path(dataset, m, s).with_suffix(".tmp")
            tmp.write_text(json.dumps(_results._jsonable(record)))
            os.replace(tmp, eval_path(dataset, m, s))  # a reader never sees half a record
            result = save()
    return result if result is not None else save()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (POSIX ``flock``; no lock where that is unavailable)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: shards must then not share a work folder
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class DEFTStudy:
    """The saved experiment: failure rates beside Table 2, MIG per DEFT stage, NMI traces."""

    def __init__(self, result: _results.Result) -> None:
        self.result = result
        self.data = result.data
        self.provenance = result.provenance
        self.runs: list[dict[str, Any]] = result.data["runs"]

    def note(self) -> str:
        extra = "" if self.data.get("complete") else (
            f" Partial: {len(self.runs)} of {self.data.get('planned_runs')} planned runs.")
        scale = self.data.get("scale", 1.0)
        extra += "" if scale == 1.0 else f" Steps scaled by {scale:g} (not the full protocol)."
        return self.result.note() + extra

    def migs(self, method: str, dataset: str) -> np.ndarray:
        return np.array([r["mig"] for r in self.runs
                         if r["method"] == method and r["dataset"] == dataset], dtype=float)

    def failure_rate(self, method: str, dataset: str) -> tuple[float, int]:
        """(% of runs with MIG < 0.1, number of runs)."""
        v = self.migs(method, dataset)
        return (float(100 * np.mean(v < FAILURE_MIG)) if len(v) else float("nan"), len(v))

    def stage_migs(self, dataset: str) -> np.ndarray:
        """MIG at the end of every DEFT stage, (runs, stages)."""
        rows = [r["stage_mig"] for r in self.runs
                if r["method"] == "deft" and r["dataset"] == dataset]
        return np.array(rows, dtype=float)

    def table(self) -> Any:
        """Failure rate (%) per method and dataset, ours (n runs) beside the paper's."""
        header = ["method"]
        for d in self.data["datasets"]:
            header += [f"{d}: ours", f"{d}: paper"]
        rows = []
        for m in self.data["methods"]:
            cells = [LABELS.get(m, m)]
            for d in self.data["datasets"]:
                rate, n = self.failure_rate(m, d)
                cells.append(f"{rate:.0f} % (n={n})" if n else "–")
                paper = PAPER_TABLE2.get(d, {}).get(m)
                cells.append("–" if paper is None else f"{paper:.1f} %")
            rows.append(cells)
        return _results.Table(header, rows)

    def __repr__(self) -> str:
        return f"DEFTStudy({self.note()})"


def load(root: str | os.PathLike | None = None) -> DEFTStudy | None:
    """The saved result, or ``None`` when the experiment has not been run yet."""
    res = _results.load(RESULT_NAME, root=root)
    return None if res is None else DEFTStudy(res)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlib.deft_study",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="train and evaluate (this shard of) the runs; save")
    p.add_argument("--datasets", nargs="+", choices=["dsprites", "color_dsprites",
                                                     "scream_dsprites"])
    p.add_argument("--methods", nargs="+", choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--scale", type=float, help="multiply every step count by this (≤ 1)")
    p.add_argument("--shard", default="0/1", help="k/n: train every n-th planned run from k")
    p.add_argument("--profile", choices=["quick", "full"])
    p.add_argument("--work", help="folder for checkpoints and finished runs")
    p.add_argument("--out", help="results folder (default: book/results)")
    p.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    line = shlex.join(["python", "-m", "dlib.deft_study",
                       *(argv if argv is not None else sys.argv[1:])])
    res = run(datasets=args.datasets, methods=args.methods, seeds=args.seeds, scale=args.scale,
              shard=args.shard, work=args.work, out=args.out, profile=args.profile,
              show_progress=not args.no_progress, command_line=line)
    print(res.note())
    print(res.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
