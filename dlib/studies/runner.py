"""Running a study with Ray Tune, asking how far it got, exporting its results.

:func:`run` starts a local Ray instance sized to the machine (or attaches to a cluster with
``address``), and runs one trial per grid point and seed group with :func:`tune.Tuner`: each
trial one CPU (and ``torch.set_num_threads(1)``), or a fraction of a GPU where the cluster has
GPUs. The experiment folder (Ray's ``storage_path``/name, by default under the dlib cache,
outside the checkout) holds every trial's checkpoints, so running the same command again
restores the study with :meth:`tune.Tuner.restore`: finished trials are kept, unfinished and
errored ones continue from their last checkpoint. A trial that raises is retried
(``FailureConfig(max_failures)``). :func:`export` writes the finished models' records with
their provenance into ``book/results/<study>/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from dlib import config as _config
from dlib import results as _results
from dlib.scales import Scale
from dlib.scales import get as get_scale
from dlib.studies.declarations import Study, get
from dlib.studies.reading import INDEX_FORMAT
from dlib.studies.trainable import train_and_evaluate, trial_steps

__all__ = ["INDEX_FORMAT", "default_scale", "experiment_name", "experiment_path", "command",
           "run", "status", "export"]



def default_scale() -> str:
    """``full`` with CUDA, ``quick`` without (as the profile)."""
    import torch

    return "full" if torch.cuda.is_available() else "quick"


def _scale(scale: str | Scale | None) -> Scale:
    if isinstance(scale, Scale):
        return scale
    return get_scale(scale or default_scale())


def experiment_name(study: Study, scale: Scale, steps: int | None = None,
                    seeds: list[int] | tuple[int, ...] | None = None) -> str:
    """The experiment's folder name: study and scale, plus what the command changed."""
    name = f"{study.name}-{scale.name}"
    if steps is not None:
        name += f"-steps{int(steps)}"
    if seeds is not None and tuple(seeds) != tuple(study.seeds):
        text = "_".join(str(int(s)) for s in seeds)
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        name += "-seeds" + (text if len(text) <= 20 else digest)
    return name


def _storage(storage: str | os.PathLike | None) -> str:
    return str(storage) if storage is not None else str(_config.cache_dir() / "studies")


def experiment_path(name: str | Study, *, scale: str | Scale | None = None,
                    steps: int | None = None, seeds: list[int] | None = None,
                    storage: str | os.PathLike | None = None) -> str:
    """Where Ray keeps the experiment of this study, scale and overrides."""
    study, sc = get(name), _scale(scale)
    return os.path.join(_storage(storage), experiment_name(study, sc, steps, seeds))


def command(name: str, verb: str = "run", **overrides: Any) -> str:
    """The shell command that runs (or exports) study ``name``, with ``overrides`` as flags."""
    get(name)
    parts = ["python", "-m", "dlib.studies", verb, name]
    for key, value in overrides.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        parts += ["--" + key.replace("_", "-"), *map(str, values)]
    return shlex.join(parts)


def _resolve(name: str | Study, scale: str | Scale | None, steps: int | None,
             seeds: list[int] | None, storage: str | os.PathLike | None
             ) -> tuple[Study, Scale, str]:
    """The study (with the chosen seeds), the scale and the experiment's folder."""
    base, sc = get(name), _scale(scale)
    path = experiment_path(base, scale=sc, steps=steps, seeds=seeds, storage=storage)
    study = base if seeds is None else base.replace(seeds=tuple(int(s) for s in seeds))
    return study, sc, path


def _init_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    # a loaded machine can start Ray's agents slowly: wait for them rather than fail
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False)


def _run_log(path: str) -> Path:
    """The record of every run command of an experiment: in its folder when that is local, in
    the dlib cache (keyed by the folder's address) when it is remote storage."""
    if "://" not in path:
        return Path(path) / "dlib-runs.json"
    digest = hashlib.sha1(path.encode()).hexdigest()[:12]
    return _config.cache_dir() / "studies-runs" / f"{Path(path).name}-{digest}.json"


def run(name: str | Study, *, scale: str | Scale | None = None, seeds: list[int] | None = None,
        steps: int | None = None, storage: str | os.PathLike | None = None,
        address: str | None = None, checkpoint_every: int | None = None, max_failures: int = 2,
        max_trials: int | None = None, gpus_per_trial: float | None = None,
        seeds_per_trial: int = 1, cpus_per_trial: int = 1, verbose: int = 1,
        command_line: str | None = None,
        fail_once: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train and evaluate study ``name`` (resuming it when its experiment exists); return
    :func:`status`.

    ``scale`` (default :func:`default_scale`), ``seeds`` and ``steps`` choose the experiment
    (each combination has its own folder). ``checkpoint_every`` steps (default a tenth of the
    run) a trial reports a checkpoint. ``max_trials`` stops the run after that many trials
    finished in this session (the next call continues). ``gpus_per_trial`` (default 1 / 4 where
    the cluster has GPUs) and ``seeds_per_trial`` (several seeds of one setting trained batched
    by :func:`dlib.engine.fit_many`) size trials for a GPU; ``cpus_per_trial`` CPUs (and torch
    threads) go to each trial (default 1: a 2-core machine trains two models at once).
    ``fail_once`` (a folder) makes every trial raise once after its first checkpoint: the
    retry path, for tests.
    """
    import ray
    from ray import tune

    if seeds_per_trial < 1:
        raise ValueError("seeds_per_trial must be positive")
    study, sc, path = _resolve(name, scale, steps, seeds, storage)
    prov = _results.Provenance(command_line)
    _init_ray(address)
    from dlib.studies.session import SESSION, SessionLimit, TrialBar

    SESSION["max_trials"] = max_trials
    gpus = ray.cluster_resources().get("GPU", 0) if gpus_per_trial is None else gpus_per_trial
    gpu = min(0.25, gpus) if gpus_per_trial is None else float(gpus_per_trial)
    if cpus_per_trial < 1:
        raise ValueError("cpus_per_trial must be positive")
    resources = {"cpu": cpus_per_trial, "gpu": gpu} if gpu > 0 else {"cpu": cpus_per_trial}
    trainable = tune.with_resources(train_and_evaluate, resources)
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        seed_groups = [list(study.seeds[i:i + seeds_per_trial])
                       for i in range(0, len(study.seeds), seeds_per_trial)]
        space = {"study": study.to_dict(), "scale": dataclasses.asdict(sc),
                 "point": tune.grid_search(study.points()),
                 "seeds": tune.grid_search(seed_groups), "steps": steps,
                 "checkpoint_every": checkpoint_every, "threads": cpus_per_trial,
                 "device": None if gpu > 0 else "cpu", "command": prov.command,
                 "fail_once": None if fail_once is None else str(fail_once)}
        run_config = tune.RunConfig(
            name=Path(path).name, storage_path=_storage(storage),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[SessionLimit(), TrialBar()], verbose=verbose)
        tuner = tune.Tuner(trainable, param_space=space, run_config=run_config)
    tuner.fit()
    record = prov.finish(scale=sc.name, ray=ray.__version__, experiment=path)
    log = _run_log(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(log.read_text()) if log.exists() else []
    log.write_text(json.dumps(_results._jsonable([*runs, record]), indent=1))
    return status(name, scale=sc, steps=steps, seeds=seeds, storage=storage)


def _records(path: str) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], dict[str, int]]:
    """The finished models' records (with their arrays) and trial counts of an experiment."""
    import numpy as np
    from ray import tune

    grid = tune.Tuner.restore(path, trainable=train_and_evaluate).get_results()
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    counts = {"trials": len(grid), "finished": 0, "errored": 0, "unfinished": 0}
    for result in grid:
        if result.error is not None:
            counts["errored"] += 1
            continue
        if not (result.metrics or {}).get("finished") or result.checkpoint is None:
            counts["unfinished"] += 1
            continue
        counts["finished"] += 1
        with result.checkpoint.as_directory() as folder:
            state = json.loads((Path(folder) / "state.json").read_text())
            for key in state["records"]:
                record = json.loads((Path(folder) / f"{key}.json").read_text())
                arrays = {a: np.load(Path(folder) / f"{key}.{a}.npy")
                          for a in record.get("arrays", [])}
                out.append((record, arrays))
    return out, counts


def status(name: str | Study, *, scale: str | Scale | None = None, steps: int | None = None,
           seeds: list[int] | None = None, storage: str | os.PathLike | None = None
           ) -> dict[str, Any]:
    """How far the study's experiment got: planned, finished and remaining models; the trials
    Ray has made so far, finished, errored or unfinished (the grid's later trials are made as
    earlier ones start)."""
    from ray import tune

    study, _, path = _resolve(name, scale, steps, seeds, storage)
    info: dict[str, Any] = {"study": study.name, "experiment": path,
                            "planned_models": study.planned()}
    if not tune.Tuner.can_restore(path):
        return {**info, "started": False}
    records, counts = _records(path)
    return {**info, "started": True, **counts, "finished_models": len(records),
            "remaining_models": study.planned() - len(records)}


def export(name: str | Study, *, scale: str | Scale | None = None, steps: int | None = None,
           seeds: list[int] | None = None, storage: str | os.PathLike | None = None,
           out: str | os.PathLike | None = None, command_line: str | None = None) -> Path:
    """Write the finished models of the study's experiment into ``out/<study>/`` (default
    ``book/results``): ``runs/<model>.json`` (+ ``.npz`` of its arrays) per model, each with
    the provenance of the trial that made it, and ``index.json`` with the study, the scale,
    what is finished and the run record. The folder is rewritten as a whole."""
    from ray import tune

    study, sc, path = _resolve(name, scale, steps, seeds, storage)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"no experiment at {path}; run it first: "
                                f"{command(study.name, scale=sc.name)}")
    records, counts = _records(path)
    root = Path(out) if out is not None else _results.results_dir()
    folder = root / study.name
    if folder.exists():
        shutil.rmtree(folder)
    keys = []
    for record, arrays in sorted(records, key=lambda r: r[0]["key"]):
        prov = record.pop("provenance")
        _results.save(f"{study.name}/runs/{record['key']}", record, prov, arrays or None,
                      root=root)
        keys.append(record["key"])
    log = _run_log(path)
    runs = json.loads(log.read_text()) if log.exists() else []
    export_prov = _results.Provenance(command_line).finish(scale=sc.name)
    latest = dict(runs[-1]) if runs else dict(export_prov)
    latest["wall_s"] = round(sum(float(r.get("wall_s") or 0) for r in runs), 1)
    latest["runs"] = runs
    latest["export"] = {"command": export_prov["command"], "utc": export_prov["started_utc"],
                        "commit": export_prov["commit"], "dirty": export_prov["dirty"]}
    payload = {"format": INDEX_FORMAT, "study": study.name, "description": study.description,
               "declaration": study.to_dict(), "scale": dataclasses.asdict(sc),
               "steps": trial_steps(study, sc, steps), "planned_models": study.planned(),
               "finished_models": len(keys), "complete": len(keys) == study.planned(),
               "trials": counts, "models": keys}
    _results.save(f"{study.name}/index", payload, latest, root=root)
    return folder / "index.json"

