"""dlib.studies on a real local Ray cluster (2 CPUs, tiny sizes).

One Ray instance for the module (``-m ray`` selects these tests; run them with
``--dist loadgroup`` under xdist so one worker owns the cluster). Every study here trains
β-VAEs for 6 steps on 64 dSprites images and scores them with tiny metric samples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import ray
import torch

from dlib import studies
from dlib.scales import Scale

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]
TINY = Scale("tiny", "a test of the runner; never a result", steps=6, batch_size=8,
             num_images=64,
             metrics={"mig": {"num_train": 64}, "dci": {"num_train": 64, "num_test": 32},
                      "recon": {"num": 16}})


def _study(name: str) -> studies.Study:
    return studies.Study(name, "two β-VAE seeds (test)",
                         (studies.Arm("beta_vae", ({"beta": 4.0},)),), seeds=(0, 1),
                         metrics=("mig", "dci"))


@pytest.fixture(scope="module")
def cluster():
    import os

    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def retried(cluster, tmp_path_factory):
    """A 2-trial study in which every trial raises once after its first checkpoint (at step 3
    of 6): Ray retries it from that checkpoint. Exported to ``out``."""
    base = tmp_path_factory.mktemp("study")
    study = _study("t_retry")
    info = studies.run(study, scale=TINY, storage=base / "ray", checkpoint_every=3,
                       max_failures=1, fail_once=base / "failed", verbose=0,
                       command_line="pytest retry")
    studies.export(study, scale=TINY, storage=base / "ray", out=base / "out",
                   command_line="pytest export")
    return base, info


def test_two_trial_study_runs_end_to_end_and_exports(retried):
    base, info = retried
    assert info["finished"] == 2 and info["errored"] == 0 and info["finished_models"] == 2
    index = json.loads((base / "out" / "t_retry" / "index.json").read_text())
    assert index["format"] == "dlib-study/1" and index["complete"] is True
    assert index["planned_models"] == index["finished_models"] == 2
    assert index["scale"]["name"] == "tiny" and index["steps"] == 6
    prov = index["provenance"]
    for key in ("command", "commit", "dirty", "device", "torch", "ray", "wall_s"):
        assert key in prov, key
    assert prov["command"] == "pytest retry" and prov["ray"] == ray.__version__
    result = studies.load("t_retry", root=base / "out")
    assert result is not None and len(result.runs) == 2
    assert sorted(r["seed"] for r in result.runs) == [0, 1]
    for run in result.runs:
        assert set(run["scores"]) >= {"mig", "dci", "dci_completeness", "recon"}
        assert len(run["kl"]) == 10 and run["history"]["step"][-1] == 6
        assert run["steps"] == run["requested_steps"] == 6
        assert run["provenance"]["scale"] == "tiny"
    trav = result.traversal("best")
    assert trav.dtype == np.uint8 and trav.shape[1:] == (9, 1, 64, 64)
    assert result.traversal_seed("best") in (0, 1)
    assert studies.load("t_nothing", root=base / "out", quiet=True) is None


def test_a_trial_that_raises_once_is_retried_from_its_checkpoint(retried):
    base, _ = retried
    assert sorted(p.name for p in (base / "failed").iterdir()) == [
        "dsprites-beta_vae-beta4-seed0", "dsprites-beta_vae-beta4-seed1"]
    result = studies.load("t_retry", root=base / "out")
    for run in result.runs:
        assert run["starts"] == [0, 3]  # the first attempt, then the retry from step 3


def test_exported_scores_equal_a_direct_fit_and_compute(retried):
    """The trial trained in two stages with a failure between them; a straight fit and the
    metrics computed here must give the same numbers."""
    from dlib.data import load
    from dlib.methods import registry
    from dlib.metrics import compute
    from dlib.metrics.utils import torch_representation
    from dlib.train import fit

    base, _ = retried
    result = studies.load("t_retry", root=base / "out")
    data = load("dsprites")
    dd = data.to_device("cpu", num=64, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the trial
    try:
        for run in result.runs:
            model = registry.build("beta_vae", (1, 64, 64), beta=4.0, seed=run["seed"])
            fit(model, dd, 6, batch_size=8, seed=run["seed"], log_every=1, show_progress=False)
            rep = torch_representation(model.represent, device="cpu")
            mig = compute("mig", data, rep, np.random.RandomState(0), num_train=64)
            dci = compute("dci", data, rep, np.random.RandomState(0), num_train=64, num_test=32)
            assert run["scores"]["mig"] == pytest.approx(mig["discrete_mig"], rel=1e-6, abs=1e-9)
            assert run["scores"]["dci"] == pytest.approx(dci["disentanglement"], rel=1e-6,
                                                         abs=1e-9)
            assert run["metrics"]["dci"]["informativeness_test"] == pytest.approx(
                dci["informativeness_test"], rel=1e-6)
    finally:
        torch.set_num_threads(threads)


def test_an_interrupted_study_resumes_and_trains_only_the_rest(cluster, tmp_path):
    study = _study("t_resume")
    where = {"scale": TINY, "storage": tmp_path / "ray"}
    # two CPUs per trial: one trial at a time on the 2-CPU cluster, the other waits (pending)
    first = studies.run(study, max_trials=1, cpus_per_trial=2, verbose=0,
                        command_line="session 1", **where)
    assert first["finished_models"] == 1 and first["remaining_models"] == 1  # stopped
    studies.export(study, out=tmp_path / "a", **where)
    done = studies.load("t_resume", root=tmp_path / "a").runs
    assert len(done) == 1
    second = studies.run(study, cpus_per_trial=2, verbose=0, command_line="session 2",
                         **where)  # restores it
    assert second["finished"] == 2 and second["errored"] == 0
    assert second["remaining_models"] == 0
    studies.export(study, out=tmp_path / "b", **where)
    runs = {r["key"]: r for r in studies.load("t_resume", root=tmp_path / "b").runs}
    assert len(runs) == 2
    kept = runs[done[0]["key"]]
    assert kept == done[0]  # the finished model was not trained again
    assert kept["provenance"]["command"] == "session 1"
    assert "experiment_command" not in kept["provenance"]
    (resumed,) = [r for key, r in runs.items() if key != done[0]["key"]]
    # trained by the second session in the experiment the first created: both are named
    assert resumed["provenance"]["command"] == "session 2"
    assert resumed["provenance"]["experiment_command"] == "session 1"
    for run in runs.values():  # what each model cost in CPU, summed over the resume
        assert run["cpu_seconds"]["train"] > 0 and run["cpu_seconds"]["evaluate"] > 0
        assert run["cpu_seconds"]["models_in_trial"] == 1
    index = json.loads((tmp_path / "b" / "t_resume" / "index.json").read_text())
    assert len(index["provenance"]["runs"]) == 2  # both sessions are on record


def test_seeds_batched_in_one_trial_equal_separate_trials(retried, tmp_path):
    """``seeds_per_trial=2``: one trial trains both seeds with the batched engine; the models'
    scores equal those of the separate (retried) trials."""
    base, _ = retried
    study = _study("t_batched")
    info = studies.run(study, scale=TINY, storage=tmp_path / "ray", checkpoint_every=3,
                       seeds_per_trial=2, verbose=0)
    assert info["trials"] == 1 and info["finished_models"] == 2
    studies.export(study, scale=TINY, storage=tmp_path / "ray", out=tmp_path / "out")
    batched = {r["seed"]: r for r in studies.load("t_batched", root=tmp_path / "out").runs}
    separate = {r["seed"]: r for r in studies.load("t_retry", root=base / "out").runs}
    for seed in (0, 1):
        for key, value in separate[seed]["scores"].items():
            assert batched[seed]["scores"][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_a_new_session_trains_only_what_is_not_exported(cluster, tmp_path):
    """Ray's storage may not outlive a session; the exported (committed) results do. A run
    with fresh storage skips the exported models, and its export keeps them."""
    study = _study("t_sessions")
    out = tmp_path / "out"
    first = studies.run(study, scale=TINY, storage=tmp_path / "ray1", out=out, max_trials=1,
                        cpus_per_trial=2, verbose=0, command_line="session 1")
    assert first["finished_models"] == 1
    studies.export(study, scale=TINY, storage=tmp_path / "ray1", out=out)
    (kept,) = json.loads((out / "t_sessions" / "index.json").read_text())["models"]
    before = (out / "t_sessions" / "runs" / f"{kept}.json").read_bytes()

    second = studies.run(study, scale=TINY, storage=tmp_path / "ray2", out=out, verbose=0,
                         command_line="session 2")  # a new machine: empty storage
    assert second["exported_models"] == 1
    assert second["trials"] == 1 and second["finished_models"] == 1  # only the other seed
    assert second["remaining_models"] == 0
    studies.export(study, scale=TINY, storage=tmp_path / "ray2", out=out)
    index = json.loads((out / "t_sessions" / "index.json").read_text())
    assert index["complete"] is True and len(index["models"]) == 2
    assert [r["command"] for r in index["provenance"]["runs"]] == ["session 1", "session 2"]
    assert [len(e["models"]) for e in index["exports"]] == [1, 1]
    assert (out / "t_sessions" / "runs" / f"{kept}.json").read_bytes() == before
    assert sorted(r["seed"] for r in studies.load("t_sessions", root=out).runs) == [0, 1]
    back = studies.run(study, scale=TINY, storage=tmp_path / "ray1", out=out, verbose=0)
    assert "exported already" in back["note"]  # session 1's unfinished trial: not retrained
    (aside,) = (tmp_path / "ray1").glob("*.superseded-*")  # its experiment is kept aside
    assert any(aside.glob("experiment_state-*.json"))

    third = studies.run(study, scale=TINY, storage=tmp_path / "ray3", out=out, verbose=0)
    assert third["started"] is False and third["remaining_models"] == 0
    assert "exported already" in third["note"]
    again = studies.run(study, scale=TINY, storage=tmp_path / "ray4", out=out, verbose=0,
                        skip_exported=False, max_trials=1, cpus_per_trial=2)
    assert again["finished_models"] == 1  # --retrain trains them again


def test_methods_must_belong_to_the_study(tmp_path):
    with pytest.raises(ValueError, match="no method"):
        studies.run(_study("t_methods"), scale=TINY, storage=tmp_path, methods=["nope"])


def test_a_local_instance_must_hold_one_trial(tmp_path):
    with pytest.raises(ValueError, match="cannot hold one trial"):
        studies.run(_study("t_cpus"), scale=TINY, storage=tmp_path, out=tmp_path / "out",
                    cpus=1, cpus_per_trial=2)


def test_unfinished_exported_reads_the_experiment_state(tmp_path):
    from dlib.studies.runner import unfinished_exported
    from dlib.studies.trainable import trial_key

    point = {"dataset": "dsprites", "method": "beta_vae", "setting": {"beta": 4.0}}
    trials = [[json.dumps({"status": status, "config": {"job": {"point": point, "seeds": [s]}}}),
               "{}"] for status, s in (("TERMINATED", 0), ("PENDING", 1), ("RUNNING", 2))]
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": trials}))
    keys = [trial_key(point, s) for s in range(3)]
    assert unfinished_exported(tmp_path, set(keys)) == sorted(keys[1:])
    assert unfinished_exported(tmp_path, {keys[0]}) == []  # finished there: nothing retrains
    assert unfinished_exported(tmp_path / "nothing", set(keys)) == []
    (tmp_path / "experiment_state-2026-02-01_00-00-00.json").write_text("{}")  # unreadable
    assert unfinished_exported(tmp_path, set(keys)) == []
