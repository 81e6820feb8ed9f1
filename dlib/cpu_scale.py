"""Train and score one model at a CPU-sized scale, and run the ablation that chooses the scale.

``python -m dlib.cpu_scale probe --beta 4 --steps 10000 --lr 1e-3 --width 0.5 --seed 0``
trains one model on the whole of dSprites (drawn at ``--image-size``, 32 or 64), encodes every
image once (:mod:`dlib.metrics.encoded`), runs the study-settings metric suite on the codes, and
writes one small JSON result (with provenance, the machine's load average before and after each
phase, and the wall time of each phase) under ``book/results/cpu_scale/``, plus a compact
float16 checkpoint (:mod:`dlib.compact`) and the traversal images in the result's ``.npz``.

``python -m dlib.cpu_scale ablation`` runs the grid of :data:`ABLATION` (steps × learning rate
× width × seeds, β-VAE β = 4), two probes at a time with one thread each, skipping results that
exist; ``python -m dlib.cpu_scale summary`` prints the table of what has been run.

Every number is measured on the machine that runs the command; nothing here presents the CPU
scale as the 300,000-step GPU protocol of Locatello et al.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlib.metrics.encoded import factor_latent_r2

__all__ = ["train_and_score", "factor_latent_r2", "ABLATION", "GATES", "main", "result_name",
           "probes", "recipe_card", "select", "mean_sd", "format_stat", "HEADLINE_SETTINGS",
           "shown_scale",
           "ablation_rows", "sweep_rows", "method_rows", "core_minutes", "gate_rows",
           "results_table", "seed_traversal", "plot_methods", "as_runs", "models",
           "study_models", "moves_in_one_latent", "STUDY", "spread_rows", "factor_kl_rows",
           "plot_factor_kl", "plot_sweep", "annealed_gamma_trace", "GAMMA_CHECK", "CAPACITY_CHECK",
           "deft_thresholds", "pixels_changed", "THRESHOLD_CHECK",
           "COLLAPSED_SPREAD"]

RESULT_FOLDER = "cpu_scale"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _summary(suite: dict[str, Any]) -> dict[str, float]:
    s = {
        "beta_vae": suite["beta_vae"]["eval_accuracy"],
        "factor_vae": suite["factor_vae"]["eval_accuracy"],
        "mig": suite["mig"]["discrete_mig"],
        "dci": suite["dci"]["disentanglement"],
        "dci_completeness": suite["dci"]["completeness"],
        "dci_informativeness": suite["dci"]["informativeness_test"],
        "sap": suite["sap"]["SAP_score"],
        "modularity": suite["modularity_explicitness"]["modularity_score"],
        "explicitness": suite["modularity_explicitness"]["explicitness_score_test"],
        "irs": suite["irs"]["IRS"],
        "gaussian_tc_mean": suite["unsupervised"]["gaussian_total_correlation"],
        "gaussian_tc_sampled": suite["unsupervised_sampled"]["gaussian_total_correlation"],
    }
    return {k: float(v) for k, v in s.items()}


def train_and_score(
    method: str = "beta_vae",
    setting: dict[str, float] | None = None,
    seed: int = 0,
    *,
    image_size: int = 32,
    width: float = 0.5,
    steps: int = 10_000,
    batch_size: int = 64,
    lr: float = 1e-3,
    metrics: dict[str, dict[str, Any]] | None = None,
    threads: int | None = 1,
    log_every: int = 500,
    compact: str | os.PathLike | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train one model on all of dSprites at ``image_size`` and score it with the suite.

    Returns ``(payload, arrays)``: settings, per-phase wall time and load average, the summary
    scores and every metric's full result, KL per dimension over the whole data set, the
    factor × latent R² matrix, the reconstruction error; arrays hold the traversal images.
    ``metrics`` are per-metric options (default: the study's sample sizes).
    """
    from dlib.compact import save_compact
    from dlib.data import load
    from dlib.distributions import gaussian_kl
    from dlib.methods import build
    from dlib.metrics.encoded import EncodedData, encode_dataset, score_suite
    from dlib.plots import kl_order, traversal_images
    from dlib.studies.evaluators import recon_and_kl
    from dlib.train import fit

    if threads is not None:
        torch.set_num_threads(int(threads))
    setting = dict(setting or {})
    phases: dict[str, dict[str, Any]] = {}

    cpu0 = [time.process_time()]

    def phase(name: str, t0: float, load0: list[float]) -> None:
        # wall time, and the CPU time of this process (all its threads): on a shared machine
        # the second says what the phase costs, the first what it took
        now = time.process_time()
        phases[name] = {"seconds": round(time.perf_counter() - t0, 2),
                        "cpu_seconds": round(now - cpu0[0], 2), "load_before": load0,
                        "load_after": _load()}
        cpu0[0] = now

    t0, l0 = time.perf_counter(), _load()
    data = load("dsprites", image_size=image_size)
    dd = data.to_device("cpu")
    options = {"seed": int(seed), "width": float(width), "lr": float(lr), **setting}
    if method == "beta_tc_vae":
        options.setdefault("dataset_size", data.num_observations)
    model = build(method, data.image_shape, **options)
    phase("data", t0, l0)

    t0, l0 = time.perf_counter(), _load()
    history = fit(model, dd, steps, batch_size=batch_size, seed=seed, log_every=log_every,
                  show_progress=False)
    phase("train", t0, l0)
    model.eval()

    t0, l0 = time.perf_counter(), _load()
    codes = encode_dataset(model.encode, data)
    phase("encode", t0, l0)

    t0, l0 = time.perf_counter(), _load()
    enc = EncodedData(data, codes)
    suite = score_suite(enc, {"mean": enc.mean, "sampled": enc.sampled(seed=0)}, seed=0,
                        options=metrics)
    phase("score", t0, l0)

    t0, l0 = time.perf_counter(), _load()
    mean, logvar = torch.from_numpy(codes.mean), torch.from_numpy(codes.logvar)
    kl = gaussian_kl(mean, logvar).double().mean(0).numpy()
    r2 = factor_latent_r2(codes.mean, tuple(data.factor_sizes))
    obs = data.sample_observations(10_000, np.random.RandomState(1))
    images = torch.as_tensor(np.ascontiguousarray(obs)).permute(0, 3, 1, 2).float()
    recon, _ = recon_and_kl(model, images, 0)
    order = [int(i) for i in kl_order(kl)]
    probe = data.observe(data.images_from_classes(torch.tensor([[0, 5, 0, 16, 16]]), "cpu"))
    trav = traversal_images(model, probe, order, np.linspace(-2.0, 2.0, 9))
    phase("extras", t0, l0)

    scores = _summary(suite)
    scores["recon"] = float(recon)
    scores["kl"] = float(kl.sum())
    scores["active_dims"] = int((kl > 0.01).sum())
    names = data.factor_names
    moves = moves_in_one_latent(r2, kl, names)
    payload = {
        "method": method, "setting": setting, "seed": int(seed),
        "scale": {"image_size": image_size, "width": width, "steps": steps,
                  "batch_size": batch_size, "learning_rate": lr, "threads": threads,
                  "metrics": metrics or "study defaults"},
        "phases": phases,
        "train_it_per_s": round(steps / phases["train"]["seconds"], 2),
        "model_seconds": round(sum(p["seconds"] for p in phases.values()), 1),
        "scores": scores,
        "metric_seconds": suite.pop("seconds"),
        "suite": suite,
        "kl_dims": kl.tolist(),
        "factor_latent_r2": r2.tolist(),
        "factor_names": list(names),
        "moves_in_one_latent": moves,
        "traversal_order": order,
        "history": {"step": history.steps, "recon": history["recon"].tolist(),
                    "kl": history["kl"].tolist()},
    }
    if compact is not None:
        save_compact(compact, model, data, scores=scores,
                     extra={"scale": payload["scale"], "setting": setting, "seed": int(seed)})
    trav_u8 = (trav.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return payload, {"traversal": trav_u8}


# ---- AnnealedVAE's γ at the CPU scale ------------------------------------------------------------
#: the γ values and seeds of the check behind the CPU scale's AnnealedVAE γ (``dlib.scales``)
GAMMA_CHECK: tuple[tuple[float, int], ...] = tuple(
    (gamma, seed) for gamma, seeds in ((1000.0, 4), (500.0, 2), (250.0, 4))
    for seed in range(seeds))
#: a code whose spread (:func:`annealed_gamma_trace`) ends below this has collapsed
COLLAPSED_SPREAD = 0.05


def annealed_gamma_trace(gamma: float, seed: int = 0, *, steps: int = 3_000,
                         eval_every: int = 250, scale: str = "cpu", c_max: float = 25.0,
                         num_eval: int = 2_000, lr: float | None = None) -> dict[str, Any]:
    """The first ``steps`` of an AnnealedVAE (``c_max``, ramp of the scale's run) at
    ``scale``'s sizes with weight ``gamma`` (and learning rate ``lr``, the scale's by
    default): every ``eval_every`` steps the reconstruction
    error, KL and capacity of the last logged batch and the *spread of the code*, the largest
    standard deviation over ``num_eval`` fixed images of a latent's posterior mean. A spread
    that shrinks towards 0 while the KL follows C(t) is the collapse: the KL is then paid
    with the variances, and the code carries nothing about the image."""
    from dlib.data import load
    from dlib.methods import build, registry
    from dlib.scales import get
    from dlib.train import fit_in_stages

    sc = get(scale)
    data = load("dsprites", image_size=sc.image_size)
    dd = data.to_device("cpu")
    options = {**registry.run_options("annealed_vae", steps=sc.steps), "c_max": float(c_max),
               "gamma": float(gamma), "width": sc.width,
               "lr": sc.learning_rate if lr is None else float(lr), "seed": int(seed)}
    model = build("annealed_vae", data.image_shape, **options)
    obs = data.sample_observations(num_eval, np.random.RandomState(1))
    x = torch.as_tensor(np.ascontiguousarray(obs)).permute(0, 3, 1, 2).float()
    out: dict[str, Any] = {"gamma": float(gamma), "seed": int(seed), "options": options,
                           "step": [], "recon": [], "kl": [], "capacity": [], "spread": []}
    def measure(step: int) -> None:
        with torch.no_grad():
            out["spread"].append(float(model.encode(x)[0].std(0).max()))
        model.train()
        out["step"].append(step)

    h = fit_in_stages(model, dd, list(range(eval_every, steps + 1, eval_every)), measure,
                      batch_size=sc.batch_size, seed=seed, log_every=eval_every,
                      show_progress=False)
    for key in ("recon", "kl", "capacity"):  # the logged batch means at the same steps
        logged = dict(zip(h.steps, h[key].tolist(), strict=True))
        out[key] = [float(logged[s]) for s in out["step"]]
    return out


def _trace_check(a: argparse.Namespace, grid: Any, name: str) -> int:
    """Trace every (γ, C_max, seed[, learning rate]) of ``grid`` for ``a.steps`` steps and
    save the runs as ``cpu_scale/NAME`` with provenance (the γ, capacity and rate checks)."""
    from dlib import results

    torch.set_num_threads(int(a.threads))
    prov = results.Provenance("python -m dlib.cpu_scale " + " ".join(a.argv))
    runs = []
    for gamma, c_max, seed, *lr in grid:
        t0 = time.perf_counter()
        r = annealed_gamma_trace(gamma, seed, steps=a.steps, c_max=c_max,
                                 lr=lr[0] if lr else None)
        r["c_max"], r["lr"] = c_max, r["options"]["lr"]
        runs.append(r)
        print(f"γ = {gamma:g}, C_max = {c_max:g}, lr {r['lr']:g}, seed {seed}: recon "
              f"{r['recon'][-1]:.1f}, "
              f"KL {r['kl'][-1]:.2f} (C {r['capacity'][-1]:.2f}), spread {r['spread'][-1]:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    payload = {"scale": "cpu", "steps": a.steps, "collapsed_spread": COLLAPSED_SPREAD,
               "runs": runs}
    path = results.save(f"{RESULT_FOLDER}/{name}", payload, prov.finish(threads=a.threads))
    print(path)
    return 0


#: the capacity check: the study's collapsed AnnealedVAEs at γ = 250 were C_max = 10, 50 and 75
#: at seed 0 (5 and 25 did not collapse), so the first steps are traced over C_max as well as γ,
#: two seeds each
CAPACITY_CHECK: tuple[tuple[float, float, int], ...] = tuple(
    (gamma, c_max, seed) for gamma in (250.0, 100.0, 50.0) for c_max in (10.0, 50.0, 100.0)
    for seed in (0, 1))


#: the rate check: γ = 50 still collapsed the study's C_max = 25 model at seed 0 (spread 0.006 at
#: step 8,000), so the first steps at C_max = 25 are traced at the scale's Adam 10⁻³ and at the
#: study's 10⁻⁴ (Locatello et al.), at γ = 50 and at the paper's 1000, four seeds each
RATE_CHECK: tuple[tuple[float, float, int, float], ...] = tuple(
    (gamma, 25.0, seed, lr) for lr, gammas in ((1e-3, (50.0,)), (1e-4, (50.0, 1000.0)))
    for gamma in gammas for seed in range(4))


# ---- DEFT's pressures at the CPU scale -----------------------------------------------------------
#: the threshold check behind DEFT's pressures at the CPU scale: how many pixels each dSprites
#: factor changes at 64×64 and at 32×32 (``traversals`` random traversals), and the anneal test
#: of every factor at the scale's 32×32 (half-width network), ``repeats`` traversals each
THRESHOLD_CHECK: dict[str, Any] = {"image_size": 32, "width": 0.5, "repeats": 3,
                                   "steps": 4_000, "beta_max": 200.0, "rate": 8.0,
                                   "traversals": 20}


def pixels_changed(image_size: int, traversals: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean number of pixels that change between neighbouring values of each dSprites factor
    (all other factors fixed at a random base), over ``traversals`` random bases. In the
    two-image toy of the DEFT chapter (chapters/32_deft) the information threshold is
    proportional to the number of differing pixels; a dSprites factor's threshold is not this
    count, but if it scales with it the same way, the ratio of the counts at two image sizes is
    the ratio of the factor's thresholds (an inference: thresholds are measured at one size)."""
    from dlib.data import load
    from dlib.experiments.deft import factor_subset

    data = load("dsprites", image_size=image_size)
    rs = np.random.RandomState(seed)
    out: dict[str, float] = {}
    for name in data.factor_names:
        counts = []
        for _ in range(traversals):
            images = factor_subset(data, name, data.sample_factors(1, rs)[0], "cpu").images
            counts.append(float((images[1:] != images[:-1]).flatten(1).sum(1).float().mean()))
        out[name] = float(np.mean(counts))
    return out


def deft_thresholds(image_size: int, width: float, repeats: int, steps: int, *,
                    seed: int = 0, beta_max: float = 200.0, rate: float = 8.0
                    ) -> dict[str, list[float]]:
    """Information thresholds (the anneal test, :func:`dlib.experiments.deft.factor_thresholds`)
    of every dSprites factor drawn at ``image_size``, ``repeats`` traversals each."""
    from dlib.data import load
    from dlib.experiments.deft import factor_thresholds

    data = load("dsprites", image_size=image_size)
    out: dict[str, list[float]] = {}
    for factor in data.factor_names:
        t0 = time.perf_counter()
        values = factor_thresholds(data, factor, repeats, steps, random_state=seed,
                                   beta_max=beta_max, rate=rate, batch_size=64, log_every=5,
                                   width=width, device="cpu")
        out[factor] = [float(v) for v in values]
        print(f"{image_size}×{image_size}: {factor:>12} thresholds {np.round(values, 1)} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def _threshold_check(a: argparse.Namespace) -> int:
    from dlib import results

    torch.set_num_threads(int(a.threads))
    prov = results.Provenance("python -m dlib.cpu_scale " + " ".join(a.argv))
    check = {**THRESHOLD_CHECK, "repeats": a.repeats, "steps": a.steps}
    pixels = {size: pixels_changed(size, check["traversals"]) for size in (64, 32)}
    for name in pixels[64]:
        print(f"{name:>12}: {pixels[64][name]:6.1f} pixels change at 64×64, "
              f"{pixels[32][name]:5.1f} at 32×32 (ratio {pixels[32][name] / pixels[64][name]:.2f})")
    thresholds = deft_thresholds(check["image_size"], check["width"], check["repeats"],
                                 check["steps"], beta_max=check["beta_max"], rate=check["rate"])
    payload = {"check": check, "pixels_changed": {str(k): v for k, v in pixels.items()},
               "thresholds": thresholds}
    path = results.save(f"{RESULT_FOLDER}/deft_thresholds", payload,
                        prov.finish(threads=a.threads))
    print(path)
    return 0


# ---- the ablation -----------------------------------------------------------------------------
#: the grid the CPU scale is chosen from (β-VAE, β = 4): every combination × seeds
ABLATION: dict[str, tuple] = {
    "steps": (10_000, 20_000),
    "lr": (1e-3, 2e-3),
    "width": (0.5, 1.0),
    "seed": (0, 1, 2),
}


def result_name(method: str, setting: dict[str, float], seed: int, image_size: int,
                width: float, steps: int, lr: float, batch_size: int = 64) -> str:
    """The result file's name (under ``cpu_scale/``) of one probe."""
    s = "_".join(f"{k}{v:g}" for k, v in sorted(setting.items()))
    return (f"{RESULT_FOLDER}/{method}_{s}_px{image_size}_w{width:g}_n{steps}_lr{lr:g}"
            f"_b{batch_size}_s{seed}")


def _probe_args(a: argparse.Namespace) -> tuple[str, dict[str, float]]:
    setting: dict[str, float] = {}
    for key in ("beta", "gamma"):
        if getattr(a, key) is not None:
            setting[key] = float(getattr(a, key))
    return a.method, setting


def _run_probe(a: argparse.Namespace) -> int:
    from dlib import results

    method, setting = _probe_args(a)
    name = a.name or result_name(method, setting, a.seed, a.image_size, a.width, a.steps,
                                 a.lr, a.batch_size)
    prov = results.Provenance("python -m dlib.cpu_scale " + " ".join(a.argv))
    ckpt = results.results_dir() / (name + ".pt") if a.compact else None
    payload, arrays = train_and_score(method, setting, a.seed, image_size=a.image_size,
                                      width=a.width, steps=a.steps, batch_size=a.batch_size,
                                      lr=a.lr, threads=a.threads, compact=ckpt,
                                      metrics=json.loads(a.metrics) if a.metrics else None)
    payload["shared_machine"] = ("other jobs shared the CPU during this run: see the load "
                                 "averages of each phase")
    path = results.save(name, payload, prov.finish(threads=a.threads), arrays=arrays)
    s = payload["scores"]
    print(f"{path}: train {payload['phases']['train']['seconds']:.0f} s "
          f"({payload['train_it_per_s']} it/s), encode {payload['phases']['encode']['seconds']}"
          f" s, score {payload['phases']['score']['seconds']} s; FactorVAE {s['factor_vae']:.3f}"
          f" MIG {s['mig']:.3f} active {s['active_dims']} recon {s['recon']:.1f}", flush=True)
    return 0


def _ablation(a: argparse.Namespace) -> int:
    from dlib.results import results_dir

    grid = [dict(zip(ABLATION, combo, strict=True))
            for combo in itertools.product(*ABLATION.values())]
    todo = []
    for g in grid:
        name = result_name("beta_vae", {"beta": 4.0}, g["seed"], a.image_size, g["width"],
                           g["steps"], g["lr"])
        if not (results_dir() / f"{name}.json").exists():
            todo.append(g)
    print(f"{len(grid)} probes in the grid, {len(todo)} to run, {a.jobs} at a time", flush=True)
    running: list[subprocess.Popen] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for g in todo:
        while len(running) >= a.jobs:
            running = [p for p in running if p.poll() is None]
            time.sleep(2)
        cmd = [sys.executable, "-m", "dlib.cpu_scale", "probe", "--beta", "4",
               "--image-size", str(a.image_size), "--width", str(g["width"]), "--steps",
               str(g["steps"]), "--lr", str(g["lr"]), "--seed", str(g["seed"]), "--threads", "1"]
        print(" ".join(cmd[1:]), flush=True)
        running.append(subprocess.Popen(cmd, env=env))
    failed = sum(p.wait() != 0 for p in running)
    return 1 if failed else 0


#: the issue's gates for β-VAE at the chosen scale (mean over at least three seeds)
GATES = {"factor_vae": 0.65, "mig": 0.15, "seeds": 3}


def moves_in_one_latent(r2: Any, kl: Any, names: tuple[str, ...] | list[str],
                        factors: tuple[str, ...] = ("posX", "posY", "scale")
                        ) -> dict[str, dict[str, Any]]:
    """Which active latent (KL > 0.01 nats) carries each of ``factors`` (the best latent of
    its row of the factor × latent R² map ``r2``), its R², and the second-best active latent's:
    a factor moves in one latent when that second R² is small. (An inactive latent's R² is that
    of its tiny noise variance, so it does not count.)"""
    r2, kl = np.asarray(r2), np.asarray(kl)
    active = np.flatnonzero(kl > 0.01)
    moves = {}
    for f in factors:
        row = r2[list(names).index(f)]
        best = active[np.argsort(-row[active])] if len(active) else np.array([], int)
        moves[f] = {"latent": int(best[0]) if len(best) else None,
                    "r2": float(row[best[0]]) if len(best) else 0.0,
                    "second_r2": float(row[best[1]]) if len(best) > 1 else 0.0}
    return moves


#: the study whose models the CPU scale's tables show where it has them
STUDY = "locatello"


def study_models(scale: str = "cpu", study: str = STUDY,
                 root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The dSprites models of ``study`` exported at ``scale`` (none when its export is of
    another scale), in the form of a probe record: ``scale`` entries, ``scores`` with the KL
    summed over the latents and the active latents (both over the whole data set, like the
    probes'), ``kl_dims``, the R² map, ``moves_in_one_latent``; plus ``key`` and ``source``
    (the study's name) to find its arrays."""
    from dlib.data.dsprites import FACTOR_NAMES
    from dlib.studies import load

    res = load(study, root=root, quiet=True)
    if res is None or res.data.get("scale", {}).get("name") != scale:
        return []
    sc = res.data["scale"]
    out = []
    for r in res.runs:
        if r.get("dataset") != "dsprites" or not r.get("kl_all"):
            continue
        kl = np.asarray(r["kl_all"], dtype=float)
        scores = dict(r["scores"])
        scores["gaussian_tc_mean"] = scores.get("gaussian_tc")
        scores["kl"] = float(kl.sum())
        scores["active_dims"] = int((kl > 0.01).sum())
        wall = r.get("provenance", {}).get("trial_wall_s")
        out.append({
            "method": r["method"], "setting": r["setting"], "seed": int(r["seed"]),
            "scale": {"image_size": sc["image_size"], "width": sc["width"],
                      "steps": int(r["steps"]), "batch_size": int(r["batch_size"]),
                      "learning_rate": float(r["options"].get("lr", sc["learning_rate"])),
                      "threads": 1, "metrics": "study defaults"},
            "scores": scores, "kl_dims": kl.tolist(),
            "factor_latent_r2": r["factor_latent_r2"], "factor_names": list(FACTOR_NAMES),
            "moves_in_one_latent": moves_in_one_latent(r["factor_latent_r2"], kl,
                                                       FACTOR_NAMES),
            # a trial's wall time covers training and scoring: the train phase alone is unknown
            "phases": {"train": {"seconds": float("nan")}},
            "trial_seconds": float("nan") if wall is None else float(wall),
            "key": r["key"], "source": study,
        })
    return out


def models(scale: str = "cpu", root: str | os.PathLike | None = None
           ) -> list[dict[str, Any]]:
    """Every model trained at ``scale``'s settings: the study's (:func:`study_models`), and
    the probes of each method, setting and seed that the study has no model of yet. A probe
    and a study model of the same seed are two runs of the same recipe through different code
    paths (the study's Ray trial draws its random numbers in another order), so the seed's
    study model replaces its probe; the other seeds' probes stay beside it."""
    from dlib.scales import get

    sc = get(scale)
    study = study_models(scale, root=root)

    def key(d: dict[str, Any]) -> tuple[str, str, int]:
        return d["method"], json.dumps(d["setting"], sort_keys=True), int(d["seed"])

    have = {key(d) for d in study}
    at = select(probes(root), None, None, image_size=sc.image_size, width=sc.width,
                steps=sc.steps, learning_rate=sc.learning_rate, batch_size=sc.batch_size)
    return study + [d for d in at if key(d) not in have]


def probes(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every probe result under ``cpu_scale/`` (parsed JSON), sorted by file name."""
    from dlib.results import results_dir

    folder = (Path(root) if root is not None else results_dir()) / RESULT_FOLDER
    out = []
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text())
        if "scores" in d and "scale" in d:
            out.append(d)
    return out


def recipe_card(scale: str = "cpu", method: str = "beta_vae",
                setting: dict[str, float] | None = None,
                root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The recipe card of ``scale``: its settings, the machine, and — from the recorded probes
    trained at exactly these settings — wall time per model and the scores over seeds, with the
    gates (:data:`GATES`) marked met, missed or not yet measured (fewer seeds than needed)."""
    from dlib.scales import get

    sc = get(scale)
    setting = {"beta": 4.0} if setting is None else setting
    runs = [d for d in probes(root) if d["method"] == method and d["setting"] == setting
            and d["scale"]["image_size"] == sc.image_size and d["scale"]["width"] == sc.width
            and d["scale"]["steps"] == sc.steps and d["scale"]["batch_size"] == sc.batch_size
            and d["scale"]["learning_rate"] == sc.learning_rate]
    card: dict[str, Any] = {"scale": sc.caption(), "description": sc.description,
                            "method": method, "setting": setting, "seeds": len(runs)}
    if not runs:
        card["status"] = "no probe recorded at these settings"
        return card
    card["machine"] = sorted({d["provenance"]["device"] for d in runs})
    card["threads"] = sorted({d["scale"]["threads"] for d in runs})

    def stat(values: list[float]) -> list[float]:
        return [round(v, 3) for v in _mean_sd(values)]

    for key in ("factor_vae", "mig", "dci", "beta_vae", "recon", "active_dims"):
        card[key] = stat([d["scores"][key] for d in runs])
    card["train_seconds"] = stat([d["phases"]["train"]["seconds"] for d in runs])
    card["score_seconds"] = stat([d["phases"]["encode"]["seconds"]
                                  + d["phases"]["score"]["seconds"] for d in runs])
    card["model_seconds"] = stat([d["model_seconds"] for d in runs])
    loads = [d["phases"][p]["load_before"][0] for d in runs for p in ("train", "score")]
    card["load_average_1min"] = [min(loads), max(loads)]
    enough = len(runs) >= GATES["seeds"]
    card["gates"] = {
        k: ("met" if card[k][0] >= GATES[k] else "missed") + ("" if enough else
                                                              f" (only {len(runs)} seed(s))")
        for k in ("factor_vae", "mig")}
    return card


def core_minutes(run: dict[str, Any]) -> float:
    """What one probe cost: CPU minutes of its process over every phase (wall minutes for the
    phases of the first probes, which did not record CPU time: an upper bound on a shared
    machine). Two models run at a time on the two cores, so the machine spends half of it."""
    return sum(p.get("cpu_seconds", p["seconds"]) for p in run["phases"].values()) / 60


def gate_rows(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every β-VAE configuration probed (image size × width × steps × learning rate × β):
    seeds, (mean, sd) of the FactorVAE score and MIG, the mean core-minutes per model, and
    whether it meets :data:`GATES` ("met", "missed", or "too few seeds"), cheapest first."""
    keys = ("image_size", "width", "steps", "learning_rate", "batch_size")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for d in probes(root):
        if d["method"] == "beta_vae" and set(d["setting"]) == {"beta"}:
            key = (*(d["scale"][k] for k in keys), d["setting"]["beta"])
            groups.setdefault(key, []).append(d)
    rows = []
    for key, g in groups.items():
        row: dict[str, Any] = dict(zip((*keys, "beta"), key, strict=True))
        row["seeds"] = sorted(d["seed"] for d in g)
        row["factor_vae"], row["mig"] = mean_sd(g, "factor_vae"), mean_sd(g, "mig")
        row["core_minutes"] = float(np.mean([core_minutes(d) for d in g]))
        if len(g) < GATES["seeds"]:
            row["gates"] = "too few seeds"
        else:
            met = (row["factor_vae"][0] >= GATES["factor_vae"]
                   and row["mig"][0] >= GATES["mig"])
            row["gates"] = "met" if met else "missed"
        rows.append(row)
    return sorted(rows, key=lambda r: r["core_minutes"])


def select(runs: list[dict[str, Any]], method: str | None = None,
           setting: dict[str, float] | None = None, **scale: Any) -> list[dict[str, Any]]:
    """The probes of ``method`` with ``setting`` whose ``scale`` entries equal ``scale``
    (e.g. ``steps=20_000, width=0.5``); ``None`` matches any method or setting."""
    return [d for d in runs
            if (method is None or d["method"] == method)
            and (setting is None or d["setting"] == setting)
            and all(d["scale"][k] == v for k, v in scale.items())]


def mean_sd(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1; NaN for a single value) over ``runs`` of
    score ``key``, or of the
    train phase's wall seconds (``"train_seconds"``) or CPU seconds (``"train_cpu_seconds"``:
    what the phase cost this process, which a busy machine does not inflate)."""
    if key == "train_seconds":
        values = [d["phases"]["train"].get("seconds", np.nan) for d in runs]
    elif key == "train_cpu_seconds":  # not recorded by the first probes: NaN
        values = [d["phases"]["train"].get("cpu_seconds", np.nan) for d in runs]
    else:
        values = [d["scores"][key] for d in runs]
    return _mean_sd(values)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd (n − 1) of the recorded (non-NaN) values; NaN where there are none
    (both) or one (the sd)."""
    finite = np.asarray(values, float)
    finite = finite[~np.isnan(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    sd = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return float(finite.mean()), sd


def format_stat(stat: tuple[float, float], digits: int = 3) -> str:
    """``(mean, sd)`` as ``"mean ± sd"`` (the mean alone where there is no sd, ``"—"`` for a
    value that was not recorded)."""
    mean, sd = stat
    if np.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if np.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _grouped(runs: list[dict[str, Any]], keys: tuple[str, ...]
             ) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for d in runs:
        groups.setdefault(tuple(d["scale"][k] for k in keys), []).append(d)
    return dict(sorted(groups.items()))


def _stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": sorted(d["seed"] for d in runs)}
    for key in ("factor_vae", "mig", "dci", "recon", "kl", "active_dims", "train_seconds",
                "train_cpu_seconds"):
        out[key] = mean_sd(runs, key)
    return out


def ablation_rows(root: str | os.PathLike | None = None, image_size: int = 32
                  ) -> list[dict[str, Any]]:
    """β-VAE (β = 4) probes grouped by width × steps × learning rate: per group the seeds and
    (mean, sd) of the scores, the reconstruction error, KL, active dimensions and train time."""
    runs = select(probes(root), "beta_vae", {"beta": 4.0}, image_size=image_size,
                  batch_size=64)
    return [{"width": w, "steps": n, "lr": lr, **_stats(g)}
            for (w, n, lr), g in _grouped(runs, ("width", "steps", "learning_rate")).items()]


def sweep_rows(method: str = "beta_vae", option: str = "beta", scale: str = "cpu",
               root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The models of ``method`` at ``scale`` (:func:`models`), grouped by the value of
    ``option`` (e.g. β): per value the seeds and (mean, sd) of each score."""
    return [{option: v, **_stats(g)} for v, g in _by_value(method, option, scale, root)]


def _by_value(method: str, option: str, scale: str, root: str | os.PathLike | None,
              need: str | None = None) -> list[tuple[float, list[dict[str, Any]]]]:
    """The models of ``method`` at ``scale`` whose setting is ``option`` alone (and that carry
    ``need``, if given), grouped by its value in increasing order."""
    groups: dict[float, list[dict[str, Any]]] = {}
    for d in select(models(scale, root), method):
        if set(d["setting"]) == {option} and (need is None or need in d):
            groups.setdefault(d["setting"][option], []).append(d)
    return sorted(groups.items())


def best_r2(run: dict[str, Any]) -> dict[str, float]:
    """Each factor's best R² over the latents of one model (an entry of :func:`models`), by
    factor name: how much of the factor the single most informative latent explains."""
    best = np.max(np.asarray(run["factor_latent_r2"]), axis=1)
    return {n: float(b) for n, b in zip(run["factor_names"], best, strict=True)}


def latents_per_factor(run: dict[str, Any], threshold: float = 0.1) -> dict[str, int]:
    """For one model, how many active latents (KL > 0.01 nats) explain more than ``threshold``
    of each factor's variance (R²), by factor name: 1 is the disentangled ideal, 0 a factor left
    out, 2 or more a factor spread."""
    r2 = np.asarray(run["factor_latent_r2"])[:, np.asarray(run["kl_dims"]) > 0.01]
    return {n: int(c) for n, c in zip(run["factor_names"], (r2 > threshold).sum(1), strict=True)}


def spread_rows(method: str = "beta_vae", option: str = "beta", scale: str = "cpu",
                threshold: float = 0.1, root: str | os.PathLike | None = None
                ) -> list[dict[str, Any]]:
    """How many active latents (KL > 0.01 nats) carry each factor — an R² above ``threshold``
    in the factor × latent map — per value of ``option``, mean over the seeds of ``method`` at
    ``scale``. One latent per factor is the disentangled ideal; 0 means the factor is not
    encoded; 2 or more, that it is spread."""
    rows = []
    for value, runs in _by_value(method, option, scale, root, "factor_latent_r2"):
        names = runs[0]["factor_names"]
        counts = [list(latents_per_factor(d, threshold).values()) for d in runs]
        mean = np.mean(counts, 0)
        rows.append({option: value, "seeds": len(runs),
                     **{n: float(c) for n, c in zip(names, mean, strict=True)}})
    return rows


#: the methods the CPU scale compares at their headline settings (issue 16)
HEADLINE_SETTINGS: tuple[tuple[str, dict[str, float]], ...] = (
    ("beta_vae", {"beta": 4.0}), ("factor_vae", {"gamma": 40.0}), ("beta_tc_vae", {"beta": 6.0}))


def method_rows(scale: str = "cpu", root: str | os.PathLike | None = None,
                settings: tuple[tuple[str, dict[str, float]], ...] = HEADLINE_SETTINGS
                ) -> list[dict[str, Any]]:
    """Each ``(method, setting)`` of ``settings`` (default :data:`HEADLINE_SETTINGS`) at
    ``scale``'s settings: seeds and (mean, sd) of each score (settings without a model at that
    scale are left out)."""
    from dlib.methods import registry

    runs = models(scale, root)
    rows = []
    for method, setting in settings:
        g = select(runs, method, setting)
        if g:
            label = f"{registry.get(method).label} ({_setting_label(setting)})"
            rows.append({"method": method, "setting": setting, "label": label, **_stats(g)})
    return rows


def shown_scale(min_seeds: int = 2, root: str | os.PathLike | None = None,
                scales: tuple[str, str] = ("cpu", "cpu_short")) -> str:
    """The scale whose models the method chapters compare: the first of ``scales`` (the CPU
    scale) once every method of :data:`HEADLINE_SETTINGS` has ``min_seeds`` models there, else
    the second (the short scale, whose probes were trained first)."""
    rows = method_rows(scales[0], root)
    enough = len(rows) == len(HEADLINE_SETTINGS) and all(
        len(r["seeds"]) >= min_seeds for r in rows)
    return scales[0] if enough else scales[1]


_SYMBOLS = {"beta": "β", "gamma": "γ", "c_max": "C_max", "lambda_od": "λ_od"}


def _setting_label(setting: dict[str, float]) -> str:
    return ", ".join(f"{_SYMBOLS.get(k, k)} = {v:g}" for k, v in setting.items()) or "default"


def results_table(rows: list[dict[str, Any]], first: str, label: str | None = None) -> Any:
    """:class:`dlib.results.Table` of grouped rows (from :func:`sweep_rows`,
    :func:`method_rows` or :func:`ablation_rows`): the row's ``first`` entry, the number of
    seeds, and mean ± sd of the scores, reconstruction error, KL and active latents (the value
    alone where there is one seed)."""
    from dlib.results import Table

    header = [label or first, "seeds", "FactorVAE score", "MIG", "DCI", "recon (nats)",
              "KL (nats)", "active latents"]
    out = []
    for r in rows:
        head = r[first]
        head = _setting_label(head) if isinstance(head, dict) else (
            f"{head:g}" if isinstance(head, float) else str(head))

        def cell(stat: tuple[float, float], digits: int = 3, one: bool = len(r["seeds"]) == 1
                 ) -> str:  # one seed has no spread: its value alone
            return f"{stat[0]:.{digits}f}" if one and np.isfinite(stat[0]) else format_stat(
                stat, digits)

        out.append([head, str(len(r["seeds"])), cell(r["factor_vae"]), cell(r["mig"]),
                    cell(r["dci"]), cell(r["recon"], 1), cell(r["kl"], 1),
                    cell(r["active_dims"], 1)])
    return Table(header, out)


def seed_traversal(method: str, setting: dict[str, float], which: str = "best",
                   score: str = "factor_vae", scale: str = "cpu",
                   root: str | os.PathLike | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The traversal images (uint8, (rows, values, C, H, W), latents by decreasing KL) of the
    best or worst seed by ``score`` among the models of ``method`` / ``setting`` at ``scale``
    (:func:`models`), and that model's record."""
    from dlib.results import load
    from dlib.scales import get

    if which not in ("best", "worst"):
        raise ValueError("which must be 'best' or 'worst'")
    sc = get(scale)
    runs = select(models(scale, root), method, setting)
    if not runs:
        raise KeyError(f"no model of {method} {setting} at the {scale} scale")
    ranked = sorted(runs, key=lambda d: d["scores"][score], reverse=True)
    d = ranked[0 if which == "best" else -1]
    active = int((np.asarray(d["kl_dims"]) > 0.01).sum())
    if d.get("source"):  # a study's model: its traversal rows follow the latents' KL order
        from dlib.studies import load as load_study

        study = load_study(d["source"], root=root, quiet=True)
        return study.arrays(d["key"])["traversal"][:active], d
    name = result_name(method, setting, d["seed"], sc.image_size, sc.width, sc.steps,
                       sc.learning_rate, sc.batch_size)
    res = load(name, root)
    if res is None:
        raise FileNotFoundError(f"{name}.json is missing")
    return res.arrays["traversal"][:active], d


def _beta_reference(ax: Any, runs: list[dict[str, Any]], score: str, label: str) -> None:
    """β-VAE models in grey, each labelled by its β: the trade-off another method is read
    against (nothing drawn for no models)."""
    if not runs:
        return
    ax.scatter([d["scores"]["recon"] for d in runs], [d["scores"][score] for d in runs],
               color="0.75", s=18, label=label)
    for d in runs:
        ax.annotate(f"{d['setting']['beta']:g}", (d["scores"]["recon"], d["scores"][score]),
                    fontsize=6, color="0.5", xytext=(2, 2), textcoords="offset points")


def plot_methods(score: str = "factor_vae", ax: Any = None, scale: str = "cpu",
                 root: str | os.PathLike | None = None,
                 settings: tuple[tuple[str, dict[str, float]], ...] = HEADLINE_SETTINGS) -> Any:
    """One point per model of each ``(method, setting)`` of ``settings`` (default
    :data:`HEADLINE_SETTINGS`) at ``scale``: ``score`` against the reconstruction error (lower
    is better), as in the FactorVAE paper's Fig. 5, with the β-VAE's other β values in grey
    (labelled by β) as the trade-off to beat."""
    import matplotlib.pyplot as plt

    from dlib.methods import registry
    from dlib.plots import PALETTE
    from dlib.scales import get

    sc = get(scale)
    if ax is None:
        ax = plt.subplots(figsize=(6, 3.6))[1]
    runs = models(scale, root)
    # the rest of the β grid: the β-VAE's trade-off, for reference
    _beta_reference(ax, [d for d in select(runs, "beta_vae", None)
                         if d["setting"] != {"beta": 4.0}], score, "β-VAE, other β of the grid")
    for i, (method, setting) in enumerate(settings):
        pts = select(runs, method, setting)
        if pts:
            ax.scatter([d["scores"]["recon"] for d in pts], [d["scores"][score] for d in pts],
                       color=PALETTE[i % len(PALETTE)], s=30,
                       label=f"{registry.get(method).label} ({_setting_label(setting)})")
    ax.set(xlabel=f"reconstruction NLL (nats per {sc.image_size}×{sc.image_size} image)",
           ylabel={"factor_vae": "FactorVAE score", "mig": "MIG"}.get(score, score),
           title=f"one point per model ({sc.name} scale)")
    ax.legend(fontsize=8)
    return ax


def factor_kl_rows(method: str = "annealed_vae", option: str = "c_max", scale: str = "cpu",
                   root: str | os.PathLike | None = None, by_seed: bool = False
                   ) -> list[dict[str, Any]]:
    """Where the KL of ``method``'s models at ``scale`` goes, per value of ``option``: each
    active latent's KL credited to the factor it explains best
    (:func:`dlib.studies.analysis.factor_kl`), mean over seeds, plus the total's (mean, sd).
    For AnnealedVAE this is the per-factor KL against the capacity :math:`C_{\\max}`. With
    ``by_seed`` one row per model instead (``seeds`` holds its one seed, the total's sd is
    NaN): a mean over a seed whose code collapsed and one that trained describes neither."""
    from dlib.studies.analysis import factor_kl

    rows = []
    for value, runs in _by_value(method, option, scale, root, "factor_latent_r2"):
        groups = ([[d] for d in sorted(runs, key=lambda d: d["seed"])] if by_seed else [runs])
        for group in groups:
            per = [factor_kl(d["kl_dims"], d["factor_latent_r2"], d["factor_names"])
                   for d in group]
            rows.append({option: value, "seeds": sorted(d["seed"] for d in group),
                         "total": _mean_sd([float(np.sum(d["kl_dims"])) for d in group]),
                         **{k: float(np.mean([p[k] for p in per])) for k in per[0]}})
    return rows


def plot_factor_kl(method: str = "annealed_vae", option: str = "c_max", scale: str = "cpu",
                   ax: Any = None, root: str | os.PathLike | None = None,
                   target: bool = True, by_seed: bool = False) -> Any:
    """Stacked bars of :func:`factor_kl_rows`: the KL each factor holds (mean over seeds, or
    one bar per model with ``by_seed``) per value of ``option``; with ``target`` a black tick
    marks the value itself (AnnealedVAE's capacity, in nats), which the bars should reach when
    the model spends its budget."""
    import matplotlib.pyplot as plt

    from dlib.plots import PALETTE
    from dlib.scales import get

    rows = factor_kl_rows(method, option, scale, root, by_seed=by_seed)
    if ax is None:
        ax = plt.subplots(figsize=(max(6, 0.55 * len(rows) + 2), 3.4))[1]
    if not rows:
        ax.set_title(f"no {method} model at the {scale} scale")
        return ax
    names = [k for k in rows[0] if k not in (option, "seeds", "total")]
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for i, name in enumerate(names):
        h = np.array([r[name] for r in rows])
        ax.bar(x, h, bottom=bottom, width=0.6, label=name,
               color="0.8" if name == "none" else PALETTE[i % len(PALETTE)])
        bottom += h
    if target:
        ax.scatter(x, [r[option] for r in rows], marker="_", s=400, color="k", zorder=3,
                   label=f"{_SYMBOLS.get(option, option)} (target)")
    if by_seed:
        labels = [f"{r[option]:g}\ns{r['seeds'][0]}" for r in rows]
    else:
        labels = [f"{r[option]:g}\n({len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)})"
                  for r in rows]
    ax.set_xticks(x, labels)
    ax.set(xlabel=_SYMBOLS.get(option, option) + (" and seed" if by_seed else ""),
           ylabel="KL (nats)", title=f"KL per factor ({get(scale).name} scale)")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_sweep(method: str, option: str, score: str = "factor_vae", ax: Any = None,
               scale: str = "cpu", root: str | os.PathLike | None = None) -> Any:
    """One point per model of ``method`` at ``scale``, coloured by the value of ``option`` and
    labelled with it: ``score`` against the reconstruction error, the β-VAE's models of the
    same scale in grey (labelled by β) as the trade-off to compare with."""
    import matplotlib.pyplot as plt

    from dlib.methods import registry
    from dlib.scales import get

    sc = get(scale)
    if ax is None:
        ax = plt.subplots(figsize=(6, 3.6))[1]
    runs = models(scale, root)
    if method != "beta_vae":
        _beta_reference(ax, select(runs, "beta_vae", None), score, "β-VAE (labelled by β)")
    pts = [d for d in select(runs, method, None) if set(d["setting"]) == {option}]
    grid = list(registry.get(method).grid) or sorted({d["setting"][option] for d in pts})
    cmap = plt.get_cmap("viridis")
    for d in pts:
        v = d["setting"][option]
        c = cmap(grid.index(v) / max(1, len(grid) - 1)) if v in grid else "k"
        ax.scatter(d["scores"]["recon"], d["scores"][score], color=c, s=30)
        ax.annotate(f"{v:g}", (d["scores"]["recon"], d["scores"][score]), fontsize=7,
                    xytext=(3, -8), textcoords="offset points")
    ax.scatter([], [], color=cmap(0.5), s=30,
               label=f"{registry.get(method).label} (labelled by {_SYMBOLS.get(option, option)})")
    ax.set(xlabel=f"reconstruction NLL (nats per {sc.image_size}×{sc.image_size} image)",
           ylabel={"factor_vae": "FactorVAE score", "mig": "MIG"}.get(score, score),
           title=f"one point per model ({sc.name} scale)")
    ax.legend(fontsize=8)
    return ax


def as_runs(scale: str = "cpu", root: str | os.PathLike | None = None
            ) -> list[dict[str, Any]]:
    """The models at ``scale`` (:func:`models`) as study model records (``dataset``,
    ``method``, ``setting``, ``seed``, ``scores``; the Gaussian TC of the mean named
    ``gaussian_tc`` as in a study), so that :mod:`dlib.studies.analysis` can analyse them."""
    from dlib.scales import get

    sc = get(scale)
    out = []
    for d in models(scale, root):
        scores = dict(d["scores"])
        scores["gaussian_tc"] = scores.pop("gaussian_tc_mean")
        key = d.get("key") or result_name(d["method"], d["setting"], d["seed"], sc.image_size,
                                          sc.width, sc.steps, sc.learning_rate, sc.batch_size)
        out.append({"dataset": "dsprites", "method": d["method"], "setting": d["setting"],
                    "seed": d["seed"], "scores": scores, "key": key})
    return out


def _score_checkpoint(a: argparse.Namespace) -> int:
    """Re-score a compact checkpoint with the suite and record the wall time of each part."""
    from dlib import results
    from dlib.compact import check_compact, load_compact
    from dlib.data import load
    from dlib.metrics.encoded import EncodedData, encode_dataset, score_suite

    if a.threads:
        torch.set_num_threads(a.threads)
    prov = results.Provenance("python -m dlib.cpu_scale " + " ".join(a.argv))
    model, record = load_compact(a.checkpoint)
    data = load(record["dataset"]["name"], image_size=record["dataset"]["image_size"])
    t0, l0, c0 = time.perf_counter(), _load(), time.process_time()
    codes = encode_dataset(model.encode, data)
    encode = {"seconds": round(time.perf_counter() - t0, 2),
              "cpu_seconds": round(time.process_time() - c0, 2), "load_before": l0,
              "load_after": _load()}
    t0, l0, c0 = time.perf_counter(), _load(), time.process_time()
    enc = EncodedData(data, codes)
    suite = score_suite(enc, {"mean": enc.mean, "sampled": enc.sampled(seed=0)}, seed=0)
    score = {"seconds": round(time.perf_counter() - t0, 2),
             "cpu_seconds": round(time.process_time() - c0, 2), "load_before": l0,
             "load_after": _load()}
    seconds = suite.pop("seconds")
    now = _summary(suite)
    payload = {"checkpoint": str(a.checkpoint), "threads": torch.get_num_threads(),
               "encode": encode, "score": score, "metric_seconds": seconds,
               "total_seconds": round(encode["seconds"] + score["seconds"], 1),
               "scores_float16_weights": now, "scores_stored": record["scores"],
               "probe_code_deviation": check_compact(model, record, data)}
    name = a.name or f"{RESULT_FOLDER}/scoring_time_{Path(a.checkpoint).stem}"
    path = results.save(name, payload, prov.finish(threads=a.threads))
    print(f"{path}: encode {encode['seconds']} s (CPU {encode['cpu_seconds']} s) + suite "
          f"{score['seconds']} s (CPU {score['cpu_seconds']} s), load {l0[0]}; per metric "
          f"{seconds}")
    return 0


def _summary_table(a: argparse.Namespace) -> int:
    from dlib.results import results_dir

    folder = results_dir() / RESULT_FOLDER
    rows = []
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text())
        if "scores" not in d:
            continue
        sc, s = d["scale"], d["scores"]
        rows.append((d["method"], json.dumps(d["setting"]), sc["image_size"], sc["width"],
                     sc["steps"], sc["learning_rate"], d["seed"], s["factor_vae"], s["mig"],
                     s["active_dims"], s["recon"], d["phases"]["train"]["seconds"],
                     d["phases"]["encode"]["seconds"] + d["phases"]["score"]["seconds"],
                     d["phases"]["train"]["load_before"][0]))
    print("method setting px width steps lr seed FactorVAE MIG active recon train_s score_s load")
    for r in rows:
        print(" ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m dlib.cpu_scale",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe", help="train and score one model")
    p.add_argument("--method", default="beta_vae",
                   choices=["beta_vae", "beta_tc_vae", "factor_vae"])
    p.add_argument("--beta", type=float, default=None)
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--metrics", default=None, help="JSON of per-metric options")
    p.add_argument("--name", default=None, help="result name (default: from the settings)")
    p.add_argument("--no-compact", dest="compact", action="store_false",
                   help="do not write the float16 checkpoint next to the result")
    q = sub.add_parser("ablation", help="run the ablation grid (β-VAE β = 4), resumable")
    q.add_argument("--jobs", type=int, default=2)
    q.add_argument("--image-size", type=int, default=32)
    g = sub.add_parser("gamma", help="AnnealedVAE's first steps at several γ (GAMMA_CHECK)")
    g.add_argument("--steps", type=int, default=2_000)
    g.add_argument("--threads", type=int, default=1)
    c = sub.add_parser("capacity", help="AnnealedVAE's first steps over γ and C_max "
                       "(CAPACITY_CHECK)")
    c.add_argument("--steps", type=int, default=2_000)
    c.add_argument("--threads", type=int, default=1)
    lr = sub.add_parser("rate", help="AnnealedVAE's first steps at two learning rates "
                        "(RATE_CHECK)")
    lr.add_argument("--steps", type=int, default=4_000)
    lr.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("thresholds", help="dSprites' pixel changes at 64×64 and 32×32 and "
                       "information thresholds at 32×32 (THRESHOLD_CHECK), behind DEFT's "
                       "pressures at the CPU scale")
    t.add_argument("--repeats", type=int, default=THRESHOLD_CHECK["repeats"])
    t.add_argument("--steps", type=int, default=THRESHOLD_CHECK["steps"])
    t.add_argument("--threads", type=int, default=1)
    sub.add_parser("summary", help="print what has been run")
    sub.add_parser("card", help="print the cpu scale's recipe card from the recorded probes")
    r = sub.add_parser("score", help="time the suite on a compact checkpoint")
    r.add_argument("checkpoint")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--name", default=None)
    a = ap.parse_args(argv)
    a.argv = argv
    if a.cmd == "probe":
        return _run_probe(a)
    if a.cmd == "ablation":
        return _ablation(a)
    if a.cmd == "score":
        return _score_checkpoint(a)
    if a.cmd == "gamma":
        return _trace_check(a, [(g, 25.0, seed) for g, seed in GAMMA_CHECK], "annealed_gamma")
    if a.cmd == "capacity":
        return _trace_check(a, CAPACITY_CHECK, "annealed_capacity")
    if a.cmd == "rate":
        return _trace_check(a, RATE_CHECK, "annealed_rate")
    if a.cmd == "thresholds":
        return _threshold_check(a)
    if a.cmd == "card":
        print(json.dumps(recipe_card(), indent=1))
        return 0
    return _summary_table(a)


if __name__ == "__main__":
    raise SystemExit(main())
