"""The one train-and-evaluate function every study runs, as a Ray Tune function trainable.

:func:`train_and_evaluate` receives one grid point (dataset, method, setting), one or several
seeds, the study and the scale in its ``config``; it builds the models with
:func:`dlib.methods.registry.build`, trains them through :func:`dlib.train.fit_in_stages`
(one stage per checkpoint interval, plus the steps the study's evaluators measure at), reports
a Ray checkpoint after every stage, and after the last one runs the study's evaluators and
reports the models' records in a final checkpoint. A trial Ray restarts (after a failure, or
when an interrupted study is restored) continues from its last checkpoint: a killed run loses
at most one interval.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlib import config as _config
from dlib import results as _results
from dlib.data.heldout import HeldOut
from dlib.methods import registry

__all__ = ["HeldOut", "load_data", "trial_key", "trial_steps", "build_methods",
           "train_and_evaluate", "history_summary", "RECORD_FORMAT"]

RECORD_FORMAT = "dlib-study-model/1"


def _load_dataset(name: str, scale: Any, **options: Any) -> Any:
    """``dlib.data.load(name, **options)`` at the scale's image size (a clear error where
    unsupported)."""
    from dlib.data import load

    size = int(scale.image_size)
    try:  # the 64x64 default needs no option; dSprites also draws 32x32 (the cpu scale)
        data = load(name, **options) if size == 64 else load(name, image_size=size, **options)
    except TypeError as err:
        raise ValueError(f"scale {scale.name!r} asks for {size}x{size} images, which {name} "
                         f"cannot draw: {err}") from err
    if int(data.image_shape[-1]) != size:
        raise ValueError(f"scale {scale.name!r} asks for {size}x{size} images, but {name} is "
                         f"rendered at {data.image_shape[-1]}x{data.image_shape[-1]}")
    return data


def load_data(dataset: str, scale: Any, device: torch.device | str | None = None
              ) -> tuple[Any, Any, Any]:
    """``(data, train, evaluation)`` of a study's dataset entry at ``scale``.

    ``"NAME"``: train on ``scale.num_images`` images (all when None; drawn with seed 0), score on
    the whole dataset. ``"NAME:correlated"`` / ``"NAME:independent"``: train on the correlated
    or independent training set of :func:`dlib.data.correlated_split` (σ = 0.2, seed 0; its
    size capped at ``scale.num_images``), score on its held-out test set. The painted digits
    hold nothing out of their 100-cell grid (:data:`dlib.data.correlated.PAPER_SETUPS`): they
    train on the ``split="train"`` handwriting and are scored on the whole grid drawn with the
    ``split="test"`` handwriting, as the paper paints MNIST's two files.
    """
    from dlib.data.correlated import PAPER_SETUPS, correlated_split

    name, _, variant = dataset.partition(":")
    if variant and variant not in ("correlated", "independent"):
        raise ValueError(f"unknown training set {variant!r} in {dataset!r}; use "
                         "NAME:correlated or NAME:independent")
    separate_test = bool(variant) and PAPER_SETUPS.get(name, {}).get("test_size", 1) == 0
    data = _load_dataset(name, scale, **({"split": "train"} if separate_test else {}))
    dev = _config.device(device)
    if not variant:
        return data, data.to_device(dev, num=scale.num_images, seed=0), data
    if separate_test:
        train_size = PAPER_SETUPS[name]["train_size"]
        if scale.num_images is not None:
            train_size = min(scale.num_images, train_size)
        split = correlated_split(data, sigma=0.2, seed=0, train_size=train_size, test_size=0)
        which = "train" if variant == "correlated" else "independent"
        return data, split.to_device(which, dev), _load_dataset(name, scale, split="test")

    sizes: dict[str, int] = {}
    if scale.num_images is not None:
        setup = PAPER_SETUPS.get(data.name, {})
        sizes = {"train_size": min(scale.num_images, setup.get("train_size", scale.num_images)),
                 "test_size": min(scale.num_images, setup.get("test_size", scale.num_images))}
    split = correlated_split(data, sigma=0.2, seed=0, **sizes)
    which = "train" if variant == "correlated" else "independent"
    return data, split.to_device(which, dev), HeldOut(data, split.test_index)


def trial_key(point: dict[str, Any], seed: int) -> str:
    """A model's name in a study: ``dataset-method-setting-seedN`` (file-name safe)."""
    from dlib.studies.declarations import setting_key

    key = f"{point['dataset']}-{point['method']}-{setting_key(point['setting'])}-seed{seed}"
    return key.replace(":", "_").replace("=", "").replace(",", "_").replace("/", "_")


def trial_steps(study: Any, scale: Any, steps: int | None = None) -> int:
    """The steps a model of ``study`` trains for: ``steps`` if given, else the study's share of
    the scale's steps."""
    if steps is not None:
        return int(steps)
    return max(1, round(scale.steps * study.step_fraction))


def build_methods(point: dict[str, Any], seeds: list[int], steps: int, batch_size: int,
                  image_shape: tuple[int, int, int], dataset_size: int, scale: Any
                  ) -> tuple[list[Any], dict[str, Any]]:
    """The models of one grid point (one per seed) and the options they are built with."""
    name = point["method"]
    options = {**registry.run_options(name, steps=steps, dataset=point["dataset"].split(":")[0],
                                      dataset_size=dataset_size, batch_size=batch_size,
                                      setting=point["setting"]),
               **scale.options_of(name), **point["setting"]}
    fields = {f for f in registry.get(name).config_class().__dataclass_fields__}
    if scale.width != 1.0:
        if "width" not in fields:
            raise ValueError(f"scale {scale.name!r} asks for network width {scale.width:g}, "
                             f"but {name} has no width option")
        options["width"] = scale.width
        if "d_hidden" in fields and "d_hidden" not in options:
            # the width multiplies every layer's units, the TC discriminator's too (FactorVAE's
            # 6 × 1000 MLP would otherwise cost ~6× the VAE it trains beside on a CPU)
            default = registry.get(name).config_class()().d_hidden
            options["d_hidden"] = max(1, round(default * scale.width))
    default_lr = getattr(registry.get(name).config_class()(), "lr", None)
    if scale.learning_rate != 1e-4 and default_lr == 1e-4 and "lr" not in options:
        # a scale with another learning rate changes it for the methods on the study's 1e-4
        options["lr"] = scale.learning_rate
    methods = [registry.build(name, image_shape, **{**options, "seed": int(s)}) for s in seeds]
    return methods, options


def history_summary(history: Any, max_points: int = 200) -> dict[str, list]:
    """Scalar loss terms (and per-dimension vectors) of a History at ≤ ``max_points`` points."""
    steps = np.asarray(history.steps)
    if len(steps) == 0:
        return {"step": []}
    pick = np.unique(np.linspace(0, len(steps) - 1, min(max_points, len(steps)))
                     .round().astype(int))
    out: dict[str, list] = {"step": steps[pick].tolist()}
    for key in history.keys():
        values = history[key]
        if values.ndim <= 2:
            out[key] = values[pick].tolist()
    return out


def _trainer(methods: list[Any]) -> Any:
    """None (:func:`dlib.train.fit`) for one model; the batched engine for several seeds."""
    if len(methods) == 1:
        return None
    from dlib.engine import fit_many

    def train(ms: list[Any], data: Any, steps: int, checkpoint: list[str], seed: int = 0,
              **kw: Any) -> list[Any]:
        return fit_many(ms, data, steps, seeds=[int(m.config.seed) for m in ms],
                        checkpoints=checkpoint, **kw)

    return train


def train_and_evaluate(config: dict[str, Any], command: str | None = None) -> None:
    """The Ray Tune trainable: train and evaluate the models of one trial (see the module).

    ``command`` is the run command of this session (:func:`dlib.studies.run` passes it with
    ``tune.with_parameters``, which a restore re-specifies); the trial's config holds the one
    that created the experiment, fixed when it started. A record names the first as its
    ``command`` and, where they differ, the second as ``experiment_command``.
    """
    from ray import tune

    from dlib.scales import Scale
    from dlib.studies.declarations import Study
    from dlib.studies.evaluators import EVALUATORS, Context
    from dlib.train import fit_in_stages

    started = time.time()
    prov = _results.Provenance(command or config.get("command"))
    created_by = config.get("command")
    origin = {"experiment_command": created_by} if created_by not in (None, prov.command) else {}
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    study = Study.from_dict(config["study"])
    scale = Scale(**config["scale"])
    job = config.get("job") or config  # one grid point and its seed group
    point, seeds = job["point"], [int(s) for s in job["seeds"]]
    device = _config.device(config.get("device"))
    batch_size = int(study.batch_size or scale.batch_size)
    steps = trial_steps(study, scale, config.get("steps"))
    data, train, evaluation = load_data(point["dataset"], scale, device)
    methods, options = build_methods(point, seeds, steps, batch_size, tuple(data.image_shape),
                                     len(train), scale)
    requested = steps  # what the run options were derived from (records keep it)
    own = getattr(methods[0].config, "stage_steps", None)
    if own is not None and point["method"] == "deft":
        steps = int(sum(own))  # DEFT trains for the sum of its (scaled) stages
    evaluators = [EVALUATORS[name] for name in study.evaluators]
    contexts = [Context(m, s, steps, study, scale, evaluation, train, point["dataset"])
                for m, s in zip(methods, seeds, strict=True)]

    work = Path(tempfile.mkdtemp(prefix="dlib-trial-"))
    state: dict[str, Any] = {"step": 0, "starts": [], "tracks": {}}
    restored = tune.get_checkpoint()
    if restored is not None:
        restored.to_directory(str(work))
        state = json.loads((work / "state.json").read_text())
    state["starts"].append(int(state["step"]))
    # CPU seconds of this process, summed over resumes: what a model costs, whatever else the
    # machine ran beside it (wall time on a shared two-core machine says little)
    cpu_before, cpu_start = float(state.get("cpu_seconds", 0.0)), time.process_time()
    for ctx in contexts:
        ctx.tracks = {k: [tuple(v) for v in vals]
                      for k, vals in state["tracks"].get(str(ctx.seed), {}).items()}
    if state.get("finished"):  # the records are in the restored checkpoint: say so
        tune.report({"finished": True, "step": steps})
        return

    every = int(config.get("checkpoint_every") or max(1, steps // 10))
    log_every = max(1, min(1000, every, steps // 50 or 1))
    tracked = {ev.name: set(ev.stops(contexts[0])) for ev in evaluators if ev.stops is not None}
    stops = sorted(set(range(every, steps, every)) | {steps}
                   | {s for v in tracked.values() for s in v if 0 < s <= steps})
    ckpts = [work / f"model-seed{s}.pt" for s in seeds]
    fail_dir = config.get("fail_once")

    def at_stop(step: int) -> None:
        for ev in evaluators:
            if step in tracked.get(ev.name, ()):
                for ctx in contexts:
                    ctx.tracks.setdefault(ev.name, []).append((step, ev.track(ctx, step)))
        state["step"] = step
        state["cpu_seconds"] = cpu_before + time.process_time() - cpu_start
        state["tracks"] = {str(c.seed): {k: [list(v) for v in vals] for k, vals in
                                         c.tracks.items()} for c in contexts}
        (work / "state.json").write_text(json.dumps(_results._jsonable(state)))
        tune.report({"finished": False, "step": step},
                    checkpoint=tune.Checkpoint.from_directory(str(work)))
        if fail_dir:  # fault injection for the tests: fail once, after the first checkpoint
            marker = Path(fail_dir) / trial_key(point, seeds[0])
            if not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(str(step))
                raise RuntimeError(f"injected failure at step {step} (fail_once)")

    trained = methods if len(methods) > 1 else methods[0]
    paths: Any = [str(p) for p in ckpts] if len(methods) > 1 else str(ckpts[0])
    history = fit_in_stages(trained, train, stops, at_stop, checkpoint=paths, resume=True,
                            trainer=_trainer(methods), batch_size=batch_size, seed=seeds[0],
                            log_every=log_every, show_progress=False)
    histories = history if isinstance(history, list) else [history]
    train_cpu = cpu_before + time.process_time() - cpu_start

    for ctx, hist in zip(contexts, histories, strict=True):
        ctx.history = hist
        record: dict[str, Any] = {
            "format": RECORD_FORMAT, "study": study.name, "key": trial_key(point, ctx.seed),
            "dataset": point["dataset"], "method": point["method"], "setting": point["setting"],
            "seed": ctx.seed, "options": options, "steps": steps,
            "requested_steps": requested, "batch_size": batch_size,
            "scale": scale.name, "metric_seed": ctx.metric_seed, "scores": {}, "arrays": [],
        }
        ctx.record = record
        arrays: dict[str, np.ndarray] = {}
        eval_start = time.process_time()
        for ev in evaluators:
            out = dict(ev.final(ctx))
            record["scores"].update(out.pop("scores", {}))
            arrays.update(out.pop("arrays", {}))
            record.update(out)
        # training is shared by the seeds trained together in this trial (models_in_trial)
        record["cpu_seconds"] = {"train": round(train_cpu, 1),
                                 "evaluate": round(time.process_time() - eval_start, 1),
                                 "models_in_trial": len(seeds)}
        record["arrays"] = sorted(arrays)
        record["history"] = history_summary(hist)
        record["starts"] = state["starts"]
        key = record["key"]
        for name, arr in arrays.items():
            np.save(work / f"{key}.{name}.npy", arr)
        record["provenance"] = prov.finish(scale=scale.name, ray=_ray_version(),
                                           trial_wall_s=round(time.time() - started, 1),
                                           **origin)
        (work / f"{key}.json").write_text(json.dumps(_results._jsonable(record)))
    state["finished"] = True
    state["records"] = [trial_key(point, s) for s in seeds]
    (work / "state.json").write_text(json.dumps(_results._jsonable(state)))
    first = contexts[0].record["scores"]
    flat = {k: v for k, v in first.items() if isinstance(v, (int, float))}
    # the records go with a checkpoint; "finished" comes in a report of its own after it, so that
    # whatever reacts to it (a stopper ending the session) finds the checkpoint registered
    tune.report({"finished": False, "step": steps},
                checkpoint=tune.Checkpoint.from_directory(str(work)))
    tune.report({"finished": True, "step": steps, **flat})
    shutil.rmtree(work, ignore_errors=True)


def _ray_version() -> str | None:
    try:
        import ray
    except ImportError:
        return None
    return ray.__version__

