"""The Part III experiments: each method's headline setting (and two sweeps) × seeds, evaluated.

A chapter cannot train three seeds for 300,000 steps while the reader waits, so these runs are
made once by a command and their small results are kept under ``book/results/part3/``::

    python -m dlib.study run beta_vae                       # the study protocol: 300k steps
    python -m dlib.study run beta_vae --steps 100000 --seeds 0 1 2 3 4
    python -m dlib.study list

Each model is trained with the study's protocol (dSprites, batch 64, Adam 1e-4, ten latents, the
reference architecture), then evaluated with :func:`dlib.metrics.compute` at the study's metric
settings (FactorVAE score, MIG, DCI, SAP), plus the reconstruction error (the Bernoulli negative
log-likelihood per image of one posterior sample, the training objective's first term) and the
KL per latent dimension on held-out draws. Training checkpoints and per-model evaluations are
kept in a work folder, so an interrupted command resumes where it stopped (a GPU session can run
the study in several commands); the result file is rewritten after every finished model and says
how many of the planned runs it holds. Chapters read results with :func:`load`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlib import config
from dlib import results as _results

__all__ = ["Experiment", "EXPERIMENTS", "StudyResult", "command", "load", "run", "main",
           "metric_options", "evaluate"]

RESULT_FOLDER = "part3"


@dataclass(frozen=True)
class Experiment:
    """One experiment: a method, the settings it is trained with, the seeds and the steps."""

    method: str  # a name of dlib.methods.presets.STUDY_GRIDS, or one of OTHER_METHODS
    settings: tuple[dict[str, Any], ...]
    description: str
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 300_000
    batch_size: int = 64
    dataset: str = "dsprites"
    fixed: dict[str, Any] = field(default_factory=dict)  # options common to every setting


def _sweep(method: str, option: str, values: tuple[float, ...], **kw: Any) -> Experiment:
    settings = tuple({option: float(v)} for v in values)
    return Experiment(method, settings, **kw)


#: methods outside the study's grids that experiments may name (name → dlib.methods class)
OTHER_METHODS = {"infogan": "InfoGAN", "aae": "AAE", "factor_vae_prior": "FactorVAEPrior"}

EXPERIMENTS: dict[str, Experiment] = {
    "beta_vae": Experiment("beta_vae", ({"beta": 4.0},), "β-VAE, β = 4 (Higgins et al.)"),
    "annealed_vae": Experiment("annealed_vae", ({"c_max": 25.0},),
                               "AnnealedVAE, C_max = 25 nats, γ = 1000, 100k-step ramp"),
    "factor_vae": Experiment("factor_vae", ({"gamma": 40.0},), "FactorVAE, γ = 40"),
    "beta_tc_vae": Experiment("beta_tc_vae", ({"beta": 6.0},), "β-TCVAE, β = 6"),
    "dip_vae_i": Experiment("dip_vae_i", ({"lambda_od": 10.0},),
                            "DIP-VAE-I, λ_od = 10, λ_d = 100"),
    "dip_vae_ii": Experiment("dip_vae_ii", ({"lambda_od": 10.0},),
                             "DIP-VAE-II, λ_od = 10, λ_d = 10"),
    "beta_vae_sweep": _sweep("beta_vae", "beta", (1, 2, 4, 6, 8, 16),
                             description="β-VAE over the study's grid β ∈ {1, 2, 4, 6, 8, 16}"),
    "factor_vae_sweep": _sweep("factor_vae", "gamma", (10, 20, 30, 40, 50, 100),
                               description="FactorVAE over the study's grid "
                                           "γ ∈ {10, 20, 30, 40, 50, 100}"),
    "factor_vae_prior": Experiment(
        "factor_vae_prior", ({"gamma": 40.0},),
        "FactorVAE's prior variant (FactorVAE paper, App. F, Eq. 12): γ·KL(q(z)‖p(z)), γ = 40"),
    "aae": _sweep("aae", "gamma", (1, 10, 40),
                  description="Adversarial autoencoder (FactorVAE paper, App. F, Eq. 7 with "
                              "its γ): γ ∈ {1, 10, 40}"),
    "infogan": Experiment("infogan", ({"variant": "gan"},),
                          "InfoGAN (FactorVAE paper, App. G): 4 continuous + 1 categorical code"),
    "infowgan_gp": Experiment("infogan", ({"variant": "wgan-gp"},),
                              "InfoWGAN-GP (FactorVAE paper, App. H)"),
}

#: options of the metrics in the quick profile (a smoke test of the pipeline, not a result)
_QUICK_METRICS: dict[str, dict[str, Any]] = {
    "factor_vae": {"num_train": 100, "num_eval": 50, "num_variance_estimate": 500},
    "mig": {"num_train": 500},
    "dci": {"num_train": 500, "num_test": 250},
    "sap": {"num_train": 500, "num_test": 250},
}


def metric_options(profile: str | None = None) -> dict[str, dict[str, Any]]:
    """Options passed to each metric: the study's defaults in ``full``, small ones in ``quick``."""
    profile = profile or config.profile()
    if profile == "full":
        return {name: {} for name in _QUICK_METRICS}
    return {name: dict(opts) for name, opts in _QUICK_METRICS.items()}


def setting_key(setting: dict[str, Any]) -> str:
    """``{"beta": 4.0}`` → ``"beta=4"`` (the key of a setting in tables and summaries)."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in setting.items())


def command(name: str, **overrides: Any) -> str:
    """The shell command that (re)computes experiment ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    parts = ["python", "-m", "dlib.study", "run", name]
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        values = value if isinstance(value, (list, tuple)) else [value]
        parts += [flag, *map(str, values)]
    return shlex.join(parts)


# ---- building, training, evaluating one model ------------------------------------------------
def build_method(exp: Experiment, setting: dict[str, Any], seed: int,
                 image_shape: tuple[int, int, int], dataset_size: int = 737_280) -> Any:
    """The method of ``exp`` with ``setting`` and initialisation seed ``seed``.

    ``dataset_size`` is the number of training images (β-TCVAE's estimators need it).
    """
    options = {**exp.fixed, **setting, "seed": int(seed)}
    if exp.method in OTHER_METHODS:
        import dlib.methods

        return getattr(dlib.methods, OTHER_METHODS[exp.method])(image_shape, **options)
    from dlib.methods import build

    if exp.method == "beta_tc_vae":
        options.setdefault("dataset_size", int(dataset_size))
    return build(exp.method, image_shape, **options)


@torch.no_grad()
def _recon_and_kl(method: Any, images: torch.Tensor, seed: int) -> tuple[float | None, list]:
    """Mean reconstruction NLL per image (one posterior sample) and the KL per dimension."""
    if not hasattr(method, "encode"):
        return None, []
    from dlib.distributions import bernoulli_nll, gaussian_kl, reparameterise

    gen = torch.Generator(device=images.device).manual_seed(int(seed))
    nll, kl, n = 0.0, None, 0
    for i in range(0, len(images), 500):
        x = images[i:i + 500]
        mean, logvar = method.encode(x)
        z = reparameterise(mean, logvar, gen)
        nll += float(bernoulli_nll(method.decode(z), x).sum())
        k = gaussian_kl(mean, logvar).sum(0)
        kl = k if kl is None else kl + k
        n += len(x)
    return nll / n, (kl / n).cpu().tolist()


@torch.no_grad()
def traversal(method: Any, image: torch.Tensor, kl: list[float], n_values: int = 9,
              limit: float = 2.0) -> np.ndarray:
    """uint8 traversals (D, n_values, C, H, W): VAEs by decreasing KL, InfoGAN by code."""
    if hasattr(method, "encode"):
        from dlib.plots import kl_order, traversal_images

        order = list(kl_order(np.asarray(kl)))
        imgs = traversal_images(method, image[None], order, np.linspace(-limit, limit, n_values))
    else:  # InfoGAN: vary each continuous code over [-1, 1] with the rest of z fixed
        gen = torch.Generator(device=image.device).manual_seed(0)
        _, _, z = method.sample_latents(1, gen)
        k = method.config.num_continuous
        codes = z.repeat(k * n_values, 1).view(k, n_values, -1)
        for d in range(k):
            codes[d, :, d] = torch.linspace(-1, 1, n_values, device=z.device)
        imgs = method.generator(codes.view(k * n_values, -1)).view(k, n_values, *image.shape)
    return (imgs.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def evaluate(method: Any, data: Any, seed: int = 0, profile: str | None = None,
             num_recon: int | None = None) -> dict[str, Any]:
    """Scores of a trained ``method`` on ``data`` (a GroundTruthData), as the study computes them.

    Every metric gets its own ``RandomState(seed)``, so models evaluated with the same ``seed``
    see the same samples.
    """
    from dlib.metrics import compute
    from dlib.metrics.utils import torch_representation

    method.eval()
    dev = next(method.parameters()).device
    represent = torch_representation(method.represent, device=dev)
    opts = metric_options(profile)
    scores: dict[str, float | None] = {}
    out = compute("factor_vae", data, represent, np.random.RandomState(seed), **opts["factor_vae"])
    scores["factor_vae"] = out["eval_accuracy"]
    out = compute("mig", data, represent, np.random.RandomState(seed), **opts["mig"])
    scores["mig"] = out["discrete_mig"]
    out = compute("dci", data, represent, np.random.RandomState(seed), **opts["dci"])
    scores["dci"] = out["disentanglement"]
    scores["dci_completeness"] = out["completeness"]
    scores["dci_informativeness"] = out["informativeness_test"]
    out = compute("sap", data, represent, np.random.RandomState(seed), **opts["sap"])
    scores["sap"] = out["SAP_score"]
    num_recon = num_recon or config.by_profile(quick=256, full=10_000)
    obs = data.sample_observations(num_recon, np.random.RandomState(seed + 1))
    images = torch.as_tensor(np.ascontiguousarray(obs), device=dev).permute(0, 3, 1, 2).float()
    recon, kl = _recon_and_kl(method, images, seed)
    scores["recon"] = recon
    return {"scores": {k: (None if v is None else float(v)) for k, v in scores.items()},
            "kl": kl, "probe": images[0]}


def _history_summary(history: Any, max_points: int = 200) -> dict[str, list]:
    """Scalar loss terms (and per-dimension KL) of a History at ≤ ``max_points`` logging points."""
    steps = np.asarray(history.steps)
    if len(steps) == 0:
        return {"step": []}
    pick = np.linspace(0, len(steps) - 1, min(max_points, len(steps)))
    pick = np.unique(pick.round().astype(int))
    out: dict[str, list] = {"step": steps[pick].tolist()}
    for key in history.keys():
        values = history[key]
        if values.ndim <= 2:
            out[key] = values[pick].tolist()
    return out


# ---- the whole experiment ---------------------------------------------------------------------
def _work_dir(name: str, work: str | os.PathLike | None) -> Path:
    base = Path(work) if work else config.cache_dir() / "study"
    return base / name


def _data(exp: Experiment, profile: str, device: torch.device) -> tuple[Any, Any]:
    from dlib.data import load as load_data

    data = load_data(exp.dataset)
    num = None if profile == "full" else 2_000
    return data, data.to_device(device, num=num, seed=0)


def run(name: str, *, seeds: list[int] | None = None, steps: int | None = None,
        batched: bool = True, work: str | os.PathLike | None = None,
        out: str | os.PathLike | None = None, profile: str | None = None,
        log_every: int | None = None, show_progress: bool = True,
        command_line: str | None = None) -> StudyResult:
    """Train and evaluate experiment ``name``; save the result and return it.

    ``steps``/``seeds`` override the experiment's (say so where the result is shown: the
    provenance records them). ``batched`` trains the seeds of one setting together with
    :func:`dlib.engine.fit_many` when that engine is available (one model after another
    otherwise). In the quick profile the data is a 2,000-image subset and the metrics use small
    samples: a smoke test of the pipeline, never a result.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    from dlib.train import History, fit, load_checkpoint, save_checkpoint

    exp = EXPERIMENTS[name]
    profile = profile or config.profile()
    seeds = [int(s) for s in (seeds if seeds is not None else exp.seeds)]
    steps = int(steps if steps is not None else exp.steps if profile == "full" else 200)
    log_every = log_every or (1000 if steps >= 10_000 else max(1, steps // 20))
    prov = _results.Provenance(command_line)
    device = config.device()
    data, dd = _data(exp, profile, device)
    image_shape = tuple(data.image_shape)
    wdir = _work_dir(name, work)
    wdir.mkdir(parents=True, exist_ok=True)
    plan = [(setting, seed) for setting in exp.settings for seed in seeds]
    runs: list[dict[str, Any]] = []
    traversals: dict[str, np.ndarray] = {}

    def tag(setting: dict[str, Any], seed: int) -> str:
        return f"{setting_key(setting)}_seed{seed}_steps{steps}_{profile}".replace("=", "")

    for setting in exp.settings:
        todo = [s for s in seeds if not (wdir / f"{tag(setting, s)}.eval.json").exists()]
        if todo:
            methods = [build_method(exp, setting, s, image_shape, len(dd)) for s in todo]
            ckpts = [wdir / f"{tag(setting, s)}.pt" for s in todo]
            histories = _train(methods, dd, steps, todo, ckpts, exp.batch_size, log_every,
                               batched, show_progress, fit, load_checkpoint, save_checkpoint,
                               History)
            for method, seed, history in zip(methods, todo, histories, strict=True):
                ev = evaluate(method, data, seed=0, profile=profile)
                probe = ev.pop("probe")
                trav = traversal(method, probe, ev["kl"])
                np.save(wdir / f"{tag(setting, seed)}.traversal.npy", trav)
                record = {"setting": setting, "seed": seed, **ev,
                          "history": _history_summary(history)}
                (wdir / f"{tag(setting, seed)}.eval.json").write_text(
                    json.dumps(_results._jsonable(record)))
        for seed in seeds:
            path = wdir / f"{tag(setting, seed)}.eval.json"
            if path.exists():
                runs.append(json.loads(path.read_text()))
        # the best and the worst seed of this setting, by MIG
        done = [r for r in runs if r["setting"] == setting]
        if done:
            ranked = sorted(done, key=lambda r: -(r["scores"]["mig"] or 0.0))
            key = setting_key(setting)
            for which, r in (("best", ranked[0]), ("worst", ranked[-1])):
                traversals[f"{key}|{which}"] = np.load(
                    wdir / f"{tag(setting, r['seed'])}.traversal.npy")
                traversals[f"{key}|{which}_seed"] = np.asarray(r["seed"])
    payload = {
        "experiment": name,
        "description": exp.description,
        "method": exp.method,
        "dataset": exp.dataset,
        "settings": list(exp.settings),
        "seeds": seeds,
        "steps": steps,
        "batch_size": exp.batch_size,
        "planned_runs": len(plan),
        "complete": len(runs) == len(plan),
        "metric_options": metric_options(profile),
        "runs": runs,
    }
    provenance = prov.finish(steps=steps, seeds=seeds, profile=profile)  # the profile it ran
    path = _results.save(f"{RESULT_FOLDER}/{name}", payload, provenance, traversals, root=out)
    result = _results.load(f"{RESULT_FOLDER}/{name}", root=path.parents[1])
    assert result is not None
    return StudyResult(result)


def _train(methods, dd, steps, seeds, ckpts, batch_size, log_every, batched, show_progress,
           fit, load_checkpoint, save_checkpoint, History):
    """Train ``methods`` (one per seed) to ``steps``, batched when possible; resumes checkpoints."""
    engine = None
    if batched and len(methods) > 1 and hasattr(methods[0], "encode"):
        try:
            from dlib.engine import fit_many as engine
        except ImportError:
            engine = None
    # a checkpoint about every 10,000 steps: a time-limited command loses little
    every = max(log_every, (10_000 // log_every) * log_every)
    if engine is not None:
        return engine(methods, dd, steps, batch_size=batch_size, seeds=list(seeds),
                      log_every=log_every, show_progress=show_progress,
                      checkpoints=[str(c) for c in ckpts], checkpoint_every=every)
    return [fit(m, dd, steps, batch_size=batch_size, seed=s, log_every=log_every,
                checkpoint=c, checkpoint_every=every, show_progress=show_progress)
            for m, s, c in zip(methods, seeds, ckpts, strict=True)]


# ---- reading results ----------------------------------------------------------------------------
class StudyResult:
    """A saved experiment: its runs, summary statistics, a table and traversals."""

    SCORES = ("factor_vae", "mig", "dci", "sap", "recon")
    LABELS = {"factor_vae": "FactorVAE score", "mig": "MIG", "dci": "DCI disentanglement",
              "sap": "SAP", "recon": "recon. error (nats)", "dci_completeness": "DCI completeness",
              "dci_informativeness": "DCI informativeness"}

    def __init__(self, result: _results.Result) -> None:
        self.result = result
        self.data = result.data
        self.provenance = result.provenance
        self.runs: list[dict[str, Any]] = result.data["runs"]

    def note(self) -> str:
        extra = "" if self.data.get("complete") else (
            f" Partial: {len(self.runs)} of {self.data.get('planned_runs')} planned runs.")
        return self.result.note() + extra

    def settings(self) -> list[str]:
        return [setting_key(s) for s in self.data["settings"]]

    def scores(self, score: str, setting: str | None = None) -> np.ndarray:
        """One score over the seeds of a setting (the first setting by default)."""
        setting = setting or self.settings()[0]
        vals = [r["scores"].get(score) for r in self.runs if setting_key(r["setting"]) == setting]
        return np.array([np.nan if v is None else v for v in vals], dtype=float)

    def summary(self) -> dict[str, dict[str, tuple[float, float, int]]]:
        """``{setting: {score: (mean, std, n)}}`` over seeds (std with ddof=1; nan when n < 2)."""
        out: dict[str, dict[str, tuple[float, float, int]]] = {}
        for setting in self.settings():
            row = {}
            for score in (*self.SCORES, "dci_completeness", "dci_informativeness"):
                v = self.scores(score, setting)
                v = v[np.isfinite(v)]
                if len(v):
                    std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
                    row[score] = (float(v.mean()), std, int(len(v)))
            out[setting] = row
        return out

    def table(self, scores: tuple[str, ...] | None = None) -> Any:
        """Mean ± std (n seeds) per setting, as an HTML table in Jupyter (text elsewhere)."""
        scores = scores or self.SCORES
        summary = self.summary()
        header = ["setting", *[self.LABELS.get(s, s) for s in scores]]
        rows = []
        for setting, row in summary.items():
            cells = [setting]
            for s in scores:
                if s in row:
                    m, sd, n = row[s]
                    cells.append(f"{m:.3g} ± {sd:.2g} (n={n})" if n > 1 else f"{m:.3g} (n=1)")
                else:
                    cells.append("–")
            rows.append(cells)
        return _results.Table(header, rows)

    def traversal(self, which: str = "best", setting: str | None = None) -> np.ndarray:
        """uint8 traversals (D, S, C, H, W) of the best or worst seed (by MIG) of a setting."""
        if which not in ("best", "worst"):
            raise ValueError("which must be 'best' or 'worst'")
        setting = setting or self.settings()[0]
        key = f"{setting}|{which}"
        if key not in self.result.arrays:
            raise KeyError(f"no traversal {key!r}; saved: {sorted(self.result.arrays)}")
        return self.result.arrays[key]

    def traversal_seed(self, which: str = "best", setting: str | None = None) -> int:
        setting = setting or self.settings()[0]
        return int(self.result.arrays[f"{setting}|{which}_seed"])

    def __repr__(self) -> str:
        return f"StudyResult({self.data['experiment']}: {self.note()})"


def load(name: str, root: str | os.PathLike | None = None) -> StudyResult | None:
    """The saved result of experiment ``name``, or ``None`` if it has not been run yet."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    result = _results.load(f"{RESULT_FOLDER}/{name}", root=root)
    return None if result is None else StudyResult(result)


# ---- command line -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlib.study", description=__doc__.split(
        "\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments")
    p = sub.add_parser("run", help="train and evaluate an experiment, save its result")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--steps", type=int)
    p.add_argument("--profile", choices=["quick", "full"])
    p.add_argument("--work", help="folder for checkpoints and per-model evaluations")
    p.add_argument("--out", help="results folder (default: book/results)")
    p.add_argument("--sequential", action="store_true", help="do not batch the seeds")
    p.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name, exp in EXPERIMENTS.items():
            print(f"{name:18s} {exp.description}; seeds {list(exp.seeds)}, {exp.steps} steps")
        return 0
    line = shlex.join(["python", "-m", "dlib.study", *(argv if argv is not None else
                                                       sys.argv[1:])])
    res = run(args.name, seeds=args.seeds, steps=args.steps, batched=not args.sequential,
              work=args.work, out=args.out, profile=args.profile,
              show_progress=not args.no_progress, command_line=line)
    print(res.note())
    print(res.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

