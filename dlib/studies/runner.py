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
import datetime
import glob
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
from dlib.studies.trainable import train_and_evaluate, trial_key, trial_steps

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
                    seeds: list[int] | tuple[int, ...] | None = None,
                    methods: list[str] | tuple[str, ...] | None = None,
                    datasets: list[str] | tuple[str, ...] | None = None) -> str:
    """The experiment's folder name: study and scale, plus what the command changed."""
    name = f"{study.name}-{scale.name}"
    if steps is not None:
        name += f"-steps{int(steps)}"
    if methods:
        name += "-" + "+".join(sorted(methods))
    if datasets:
        name += "-on-" + "+".join(sorted(d.replace(":", "_") for d in datasets))
    if seeds is not None and tuple(seeds) != tuple(study.seeds):
        text = "_".join(str(int(s)) for s in seeds)
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        name += "-seeds" + (text if len(text) <= 20 else digest)
    return name


def _storage(storage: str | os.PathLike | None) -> str:
    return str(storage) if storage is not None else str(_config.cache_dir() / "studies")


def experiment_path(name: str | Study, *, scale: str | Scale | None = None,
                    steps: int | None = None, seeds: list[int] | None = None,
                    storage: str | os.PathLike | None = None,
                    methods: list[str] | None = None, datasets: list[str] | None = None
                    ) -> str:
    """Where Ray keeps the experiment of this study, scale and overrides."""
    study, sc = get(name), _scale(scale)
    return os.path.join(_storage(storage), experiment_name(study, sc, steps, seeds, methods,
                                                               datasets))


def command(name: str, verb: str = "run", **overrides: Any) -> str:
    """The shell command that runs (or exports) study ``name``, with ``overrides`` as flags."""
    get(name)
    parts = ["python", "-m", "dlib.studies", verb, name]
    for key, value in overrides.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        parts += ["--" + key.replace("_", "-"), *map(str, values)]
    return shlex.join(parts)


def _resolve(name: str | Study, scale: str | Scale | None, steps: int | None,
             seeds: list[int] | None, storage: str | os.PathLike | None,
             methods: list[str] | None = None, datasets: list[str] | None = None
             ) -> tuple[Study, Scale, str]:
    """The study (with the chosen seeds), the scale and the experiment's folder."""
    base, sc = get(name), _scale(scale)
    if methods:
        known = {a.method for a in base.arms}
        unknown = sorted(set(methods) - known)
        if unknown:
            raise ValueError(f"study {base.name!r} has no method {unknown}; "
                             f"its methods are {sorted(known)}")
    if datasets:
        unknown = sorted(set(datasets) - set(base.datasets))
        if unknown:
            raise ValueError(f"study {base.name!r} has no dataset {unknown}; "
                             f"its datasets are {list(base.datasets)}")
    path = experiment_path(base, scale=sc, steps=steps, seeds=seeds, storage=storage,
                           methods=methods, datasets=datasets)
    study = base if seeds is None else base.replace(seeds=tuple(int(s) for s in seeds))
    return study, sc, path


def _init_ray(address: str | None, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    # a loaded machine can start Ray's agents slowly: wait for them rather than fail
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)


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
        fail_once: str | os.PathLike | None = None, methods: list[str] | None = None,
        datasets: list[str] | None = None,
        skip_exported: bool = True, out: str | os.PathLike | None = None,
        first: list[str] | None = None, cpus: int | None = None) -> dict[str, Any]:
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
    retry path, for tests. ``methods`` and ``datasets`` train only those arms of the study and
    only on those of its datasets (an experiment of its own). With ``skip_exported`` (the
    default) the models already exported to ``out`` (default ``book/results``) at the same
    scale and steps are not trained again: the committed results carry a study from one
    session to the next even where Ray's storage does not survive. Without it (``--retrain``)
    they are, and an experiment whose trials have all ended is set aside for a new one
    (restoring it would only hand back its old records); one with unfinished trials resumes.
    ``first`` (settings such as ``"factor_vae:gamma=40"``, see :func:`parse_setting`) start
    before the rest of a new experiment, seed by seed: the models a chapter needs soonest.
    ``cpus`` caps the CPUs of the local Ray instance this call starts (default: all), so that
    two studies can share a machine, each with its own instance.
    """
    import ray
    from ray import tune

    if seeds_per_trial < 1:
        raise ValueError("seeds_per_trial must be positive")
    study, sc, path = _resolve(name, scale, steps, seeds, storage, methods, datasets)
    done = exported_keys(study, sc, steps, out) if skip_exported else set()
    jobs = trial_jobs(study, seeds_per_trial, methods, done, datasets,
                      [parse_setting(f) for f in first or []])
    if cpus is not None and cpus < cpus_per_trial:
        raise ValueError(f"cpus={cpus} cannot hold one trial of {cpus_per_trial} CPUs")
    prov = _results.Provenance(command_line)
    local = "://" not in path
    stale = unfinished_exported(path, done) if local else []
    changed = options_changed(path, sc) if local else False
    ended = not skip_exported and local and experiment_finished(path)
    if stale or changed or ended:  # restoring would train exported models again, old options,
        aside = f"{path}.superseded-{prov.started_utc.replace(':', '')}"  # or nothing at all
        os.rename(path, aside)
        why = (f"{len(stale)} unfinished trials of {path} are exported already (e.g. "
               f"{stale[0]})" if stale else
               f"{path} was started with method options the {sc.name} scale no longer uses"
               if changed else
               f"retraining: every trial of {path} has ended, so restoring it would train "
               "nothing (an unfinished retraining resumes instead)")
        print(f"{why}; that experiment is kept at {aside} and a new one starts")
    if not jobs and not tune_can_restore(path):
        info = status(name, scale=sc, steps=steps, seeds=seeds, storage=storage, methods=methods,
                      datasets=datasets, out=out, count_exported=skip_exported)
        return {**info, "note": "every model is exported already"}
    _init_ray(address, cpus)
    from dlib.studies.session import SESSION, SessionLimit, TrialBar

    SESSION["max_trials"] = max_trials
    gpus = ray.cluster_resources().get("GPU", 0) if gpus_per_trial is None else gpus_per_trial
    gpu = min(0.25, gpus) if gpus_per_trial is None else float(gpus_per_trial)
    if cpus_per_trial < 1:
        raise ValueError("cpus_per_trial must be positive")
    resources = {"cpu": cpus_per_trial, "gpu": gpu} if gpu > 0 else {"cpu": cpus_per_trial}
    # this session's command reaches the trials through with_parameters (a restored trial's
    # config still holds the command that created the experiment)
    trainable = tune.with_resources(
        tune.with_parameters(train_and_evaluate, command=prov.command), resources)
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        space = {"study": study.to_dict(), "scale": dataclasses.asdict(sc),
                 "job": tune.grid_search(jobs), "steps": steps,
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
    info = status(name, scale=sc, steps=steps, seeds=seeds, storage=storage, methods=methods,
                  datasets=datasets, out=out, count_exported=skip_exported)
    return info


def unended_run(runs: list[dict[str, Any]], provs: list[dict[str, Any]]
                ) -> dict[str, Any] | None:
    """The record of a run still going (or killed) at export, or ``None``.

    A run writes its record to the experiment's log when it ends, so models that started after
    every recorded run had ended (start + wall time) came from a run with no record yet; its
    command, commit and start are taken from the first of those models. Without this, an export
    during a run would name the previous run's commit for models the current one trained.
    """
    def when(text: Any) -> datetime.datetime:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))

    ends = []
    for r in runs:
        try:
            ends.append(when(r["started_utc"]) + datetime.timedelta(seconds=float(r["wall_s"])))
        except (KeyError, TypeError, ValueError):
            continue
    later = []
    for p in provs:
        try:
            start = when(p["started_utc"])
        except (KeyError, TypeError, ValueError):
            continue
        if all(start > end for end in ends):
            later.append(p)
    if not later:
        return None
    first = min(later, key=lambda p: str(p.get("started_utc")))
    return {**{k: first.get(k) for k in ("command", "commit", "dirty", "device", "started_utc",
                                         "torch", "ray", "scale")},
            "wall_s": None, "ended": False,
            "note": "the run had not ended at export: its command, commit and start are those "
                    "of its first exported model"}


def parse_setting(text: str) -> tuple[str, dict[str, float]]:
    """``"method:key=value,key=value"`` (or a bare ``"method"``) → ``(method, setting)``."""
    method, _, rest = text.partition(":")
    setting: dict[str, float] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"cannot read {part!r} in {text!r}: write method:key=value,...")
        try:
            setting[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{key.strip()}={value!r} in {text!r} is not a number") from None
    if not method.strip():
        raise ValueError(f"no method in {text!r}")
    return method.strip(), setting


def selected_points(study: Study, methods: list[str] | None = None,
                    datasets: list[str] | None = None) -> list[dict[str, Any]]:
    """The study's points of these methods and datasets (all of them where ``None``)."""
    return [p for p in study.points() if (not methods or p["method"] in methods)
            and (not datasets or p["dataset"] in datasets)]


def trial_jobs(study: Study, seeds_per_trial: int = 1, methods: list[str] | None = None,
               done: set[str] | frozenset[str] = frozenset(),
               datasets: list[str] | None = None,
               first: list[tuple[str, dict[str, float]]] | None = None
               ) -> list[dict[str, Any]]:
    """The trials of a run in the order Ray starts them: ``{"point", "seeds"}`` each, the
    models in ``done`` left out. Method by method and, within a method, seed by seed over its
    grid: a run stopped part-way (a session's end) leaves whole grids of the first seeds
    rather than some settings with every seed and others with none. The points matching an
    entry of ``first`` (method and the keys given; a key the point's setting leaves out takes
    the method's default, so ``oat:saturation_min_kl=0`` picks OAT's default rule) come before
    all others, seed by seed and in ``first``'s order within a seed; an entry that matches
    nothing in the study is an error."""
    seed_groups = [list(study.seeds[i:i + seeds_per_trial])
                   for i in range(0, len(study.seeds), seeds_per_trial)]
    points = selected_points(study, methods, datasets)
    order = list(dict.fromkeys((p["dataset"], p["method"]) for p in points))
    jobs = [{"point": p, "seeds": g} for dm in order for g in seed_groups for p in points
            if (p["dataset"], p["method"]) == dm and not all(trial_key(p, s) in done for s in g)]
    if not first:
        return jobs

    def value(point: dict[str, Any], key: str) -> float:
        """The point's value of ``key``: its setting's, else the method's default."""
        if key in point["setting"]:
            return float(point["setting"][key])
        from dlib.methods import registry
        default = getattr(registry.get(point["method"]).config_class()(), key, None)
        return float(default) if isinstance(default, (int, float)) else float("nan")

    def rank(point: dict[str, Any]) -> int | None:
        for i, (method, setting) in enumerate(first):
            if point["method"] == method and all(value(point, k) == v
                                                 for k, v in setting.items()):
                return i
        return None

    matched = {rank(p) for p in points} - {None}
    missing = [f"{m}:{s}" for i, (m, s) in enumerate(first) if i not in matched]
    if missing:
        raise ValueError(f"no point of study {study.name!r} matches {missing}")
    ranked = [(rank(j["point"]), j) for j in jobs]
    ahead = sorted(((r, j) for r, j in ranked if r is not None),
                   key=lambda rj: (seed_groups.index(rj[1]["seeds"]), rj[0]))
    return [j for _, j in ahead] + [j for r, j in ranked if r is None]


def _trial_states(path: str | os.PathLike) -> list[dict[str, Any]] | None:
    """The trials (status, config) in the newest state file of Ray's experiment at ``path``
    (Ray Tune 2.x's ``experiment_state-*.json``); None without a readable one."""
    states = sorted(Path(path).glob("experiment_state-*.json"))
    if not states:
        return None
    try:
        return [json.loads(t[0]) for t in json.loads(states[-1].read_text())["trial_data"]]
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def unfinished_exported(path: str | os.PathLike, done: set[str] | frozenset[str]) -> list[str]:
    """The models that Ray's experiment at ``path`` has not finished although they are in
    ``done`` (exported by another experiment since): restoring it would train them again.
    Read from the experiment's newest state file (Ray Tune 2.x's ``experiment_state-*.json``);
    an experiment without a readable one gives none."""
    trials = _trial_states(path) if done else None
    try:
        jobs = [(t["status"], t["config"]["job"]) for t in trials or []]
    except (KeyError, TypeError):
        return []
    unfinished = (trial_key(job["point"], s) for status, job in jobs
                  if status != "TERMINATED" for s in job["seeds"])
    return sorted(key for key in unfinished if key in done)


def options_changed(path: str | os.PathLike, sc: Scale) -> bool:
    """Whether Ray's experiment at ``path`` was started with other method options than ``sc``
    sets now (:attr:`Scale.method_options`): its unfinished trials would resume with the old
    ones, since a trial's config carries its scale. Read like :func:`unfinished_exported`."""
    try:
        had = [t["config"]["scale"].get("method_options", {}) for t in _trial_states(path) or []]
    except (KeyError, TypeError, AttributeError):
        return False
    if not had:
        return False
    now = json.loads(json.dumps(sc.method_options))  # as the state file stores it
    return any(h != now for h in had)


def experiment_finished(path: str | os.PathLike) -> bool:
    """Whether every trial of Ray's experiment at ``path`` has ended (``TERMINATED``): restoring
    it trains nothing. Read like :func:`unfinished_exported`; no readable state gives False."""
    trials = _trial_states(path)
    try:
        return bool(trials) and all(t["status"] == "TERMINATED" for t in trials)
    except (KeyError, TypeError):
        return False


def tune_can_restore(path: str) -> bool:
    """Whether Ray has an experiment at ``path`` (False where Ray is not installed)."""
    try:
        from ray import tune
    except ImportError:
        return False
    return bool(tune.Tuner.can_restore(path))


def _exported_index(study: Study, sc: Scale, steps: int | None,
                    out: str | os.PathLike | None) -> tuple[Path, dict[str, Any] | None]:
    """The study's export folder and its index, when that index is of this scale and steps."""
    root = Path(out) if out is not None else _results.results_dir()
    folder = root / study.name
    index = folder / "index.json"
    if not index.exists():
        return folder, None
    payload = json.loads(index.read_text())
    same = (payload.get("scale", {}).get("name") == sc.name
            and payload.get("steps") == trial_steps(study, sc, steps))
    return folder, payload if same else None


def exported_keys(study: Study, sc: Scale, steps: int | None,
                  out: str | os.PathLike | None = None) -> set[str]:
    """The models of ``study`` already exported to ``out`` at this scale and steps, with the
    options the scale sets now (a model of an earlier option is to be trained again)."""
    return set(_exported_models(study, sc, steps, out)[0])


def _exported_models(study: Study, sc: Scale, steps: int | None,
                     out: str | os.PathLike | None) -> tuple[list[str], list[str]]:
    """The exported models of this scale and steps that are current (:func:`is_current`), and
    those trained with a method option the scale has changed since."""
    folder, payload = _exported_index(study, sc, steps, out)
    if payload is None:
        return [], []
    current, old = [], []
    for key in payload.get("models", []):
        path = folder / "runs" / f"{key}.json"
        if path.exists():
            (current if is_current(json.loads(path.read_text()), sc) else old).append(key)
    return current, old


def _set_aside(folder: Path, keys: list[str]) -> None:
    """Move exported models from ``runs/`` to ``superseded/`` (JSON and arrays, with their
    provenance): kept as the record of an earlier option, out of the study's results."""
    aside = folder / "superseded"
    aside.mkdir(parents=True, exist_ok=True)
    for key in keys:
        for path in sorted((folder / "runs").glob(f"{glob.escape(key)}.*")):
            if path.stem == key:
                path.rename(aside / path.name)


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
           seeds: list[int] | None = None, storage: str | os.PathLike | None = None,
           methods: list[str] | None = None, out: str | os.PathLike | None = None,
           datasets: list[str] | None = None, count_exported: bool = True) -> dict[str, Any]:
    """How far the study got: planned models, those exported to ``out`` (default
    ``book/results``) at this scale, and the trials of this machine's experiment, finished,
    errored or unfinished (the grid's later trials are made as earlier ones start).

    With ``methods``, ``datasets`` or ``seeds`` the counts are those of that selection (the
    run's own experiment): ``planned_models`` and ``exported_models`` count its models only,
    so ``remaining_models`` is what the selection still has to train, never negative.
    ``count_exported=False`` (a run that retrains) counts no exported model as done."""
    study, sc, path = _resolve(name, scale, steps, seeds, storage, methods, datasets)
    selection = {trial_key(p, s) for p in selected_points(study, methods, datasets)
                 for s in study.seeds}
    done = exported_keys(study, sc, steps, out) & selection if count_exported else set()
    info: dict[str, Any] = {"study": study.name, "experiment": path,
                            "planned_models": len(selection), "exported_models": len(done)}
    if not tune_can_restore(path):
        return {**info, "started": False, "remaining_models": len(selection - done)}
    records, counts = _records(path)
    finished = {r["key"] for r, _ in records}
    return {**info, "started": True, **counts, "finished_models": len(records),
            "remaining_models": len(selection - finished - done)}


def is_current(record: dict[str, Any], sc: Scale) -> bool:
    """Whether a model was trained with the options ``sc`` now sets for its method
    (:attr:`Scale.method_options`) and with the run-dependent options its method now derives
    from the run (``registry.run_options``, e.g. OAT's schedule); a setting of the grid wins
    over both, as in training."""
    from dlib.methods import registry

    setting = record.get("setting", {})
    have = record.get("options", {})
    want = dict(sc.options_of(record["method"]))
    # records written by the runner carry their run. DEFT's is re-sized to the sum of the stages
    # its options give (the trainable's rule), so its options come from the requested steps,
    # which records keep since 2026-12-05; an older DEFT record cannot be checked this way
    steps = record.get("requested_steps", record.get("steps"))
    if steps is not None and (record["method"] != "deft" or "requested_steps" in record):
        derived = registry.run_options(
            record["method"], steps=steps,
            dataset=str(record.get("dataset", "dsprites")).split(":")[0],
            dataset_size=have.get("dataset_size", 737_280),
            batch_size=record.get("batch_size", registry.STUDY_BATCH_SIZE), setting=setting)
        want = {**derived, **want}
    as_stored = json.loads(json.dumps({k: v for k, v in want.items() if k not in setting}))
    return all(k in have and have[k] == v for k, v in as_stored.items())


def _current(records: list[tuple[dict[str, Any], Any]], sc: Scale
             ) -> tuple[list[tuple[dict[str, Any], Any]], list[str]]:
    """The records trained with the options ``sc`` now sets (:func:`is_current`), and the keys
    of the others: models made before the scale changed a method's options."""
    keep, stale = [], []
    for record, arrays in records:
        if is_current(record, sc):
            keep.append((record, arrays))
        else:
            stale.append(record["key"])
    return keep, stale


def export(name: str | Study, *, scale: str | Scale | None = None, steps: int | None = None,
           seeds: list[int] | None = None, storage: str | os.PathLike | None = None,
           out: str | os.PathLike | None = None, command_line: str | None = None,
           methods: list[str] | None = None, datasets: list[str] | None = None) -> Path:
    """Write the finished models of the study's experiment into ``out/<study>/`` (default
    ``book/results``): ``runs/<model>.json`` (+ ``.npz`` of its arrays) per model, each with
    the provenance of the trial that made it, and ``index.json`` with the study, the scale,
    what is finished and the record of every run command.

    Models exported earlier at the same scale and steps (an earlier session's, committed) are
    kept and listed beside the new ones; an export of another scale or step count replaces the
    folder as a whole.
    """
    study, sc, path = _resolve(name, scale, steps, seeds, storage, methods, datasets)
    if not tune_can_restore(path):
        raise FileNotFoundError(f"no experiment at {path}; run it first: "
                                f"{command(study.name, scale=sc.name)}")
    records, counts = _records(path)
    records, stale = _current(records, sc)
    for key in stale:
        print(f"not exported: {key} was trained with options the {sc.name} scale no longer "
              f"uses ({sc.method_options})")
    folder, previous = _exported_index(study, sc, steps, out)
    root = folder.parent
    kept, old = _exported_models(study, sc, steps, out)
    for key in old:
        print(f"set aside: {key} was exported with options the {sc.name} scale no longer "
              f"uses; it moves to {folder / 'superseded'}")
    _set_aside(folder, old)
    if previous is None and folder.exists():
        shutil.rmtree(folder)
    keys = set(kept)
    provs = [dict(r.get("provenance") or {}) for r, _ in records]
    for record, arrays in sorted(records, key=lambda r: r[0]["key"]):
        prov = record.pop("provenance")
        _results.save(f"{study.name}/runs/{record['key']}", record, prov, arrays or None,
                      root=root)
        keys.add(record["key"])
    log = _run_log(path)
    runs = json.loads(log.read_text()) if log.exists() else []
    going = unended_run(runs, provs)
    if going is not None:
        runs.append(going)
    # a run that had not ended at an earlier export is on record by now, or is entered again
    earlier = [r for r in (previous["provenance"].get("runs", []) if previous else [])
               if r.get("ended", True)]
    seen = {(r.get("command"), r.get("started_utc")) for r in earlier}
    runs = earlier + [r for r in runs if (r.get("command"), r.get("started_utc")) not in seen]
    export_prov = _results.Provenance(command_line).finish(scale=sc.name)
    latest = dict(runs[-1]) if runs else dict(export_prov)
    walls = [float(r["wall_s"]) for r in runs if isinstance(r.get("wall_s"), (int, float))]
    latest["wall_s"] = round(sum(walls), 1) if walls else None
    latest["runs"] = runs
    latest["export"] = {"command": export_prov["command"], "utc": export_prov["started_utc"],
                        "commit": export_prov["commit"], "dirty": export_prov["dirty"]}
    exports = list(previous.get("exports", [])) if previous else []
    exports.append({**latest["export"], "experiment": Path(path).name,
                    "models": sorted(r["key"] for r, _ in records),
                    **({"superseded": sorted(old)} if old else {})})
    superseded = sorted(set(previous.get("superseded", []) if previous else []) | set(old))
    superseded = [k for k in superseded if k not in keys]
    whole = get(name)  # the index describes the whole study, not the seeds this export named
    payload = {"format": INDEX_FORMAT, "study": study.name, "description": study.description,
               "declaration": whole.to_dict(), "scale": dataclasses.asdict(sc),
               "steps": trial_steps(study, sc, steps), "planned_models": whole.planned(),
               "finished_models": len(keys), "complete": len(keys) == whole.planned(),
               "trials": counts, "exports": exports, "models": sorted(keys),
               **({"superseded": superseded} if superseded else {})}
    _results.save(f"{study.name}/index", payload, latest, root=root)
    return folder / "index.json"
