"""Tests of dlib.results (artifacts with provenance)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlib import results


def _prov(**extra):
    return results.Provenance("python -m something").finish(**extra)


# ---- dlib.results -------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    arrays = {"img": np.arange(24, dtype=np.uint8).reshape(2, 3, 4)}
    path = results.save("sub/x", {"a": 1.5, "b": [np.float32(2.0), np.int64(3)],
                                   "t": torch.tensor([1.0, 2.0])}, _prov(steps=7), arrays,
                        root=tmp_path)
    assert path == tmp_path / "sub" / "x.json"
    res = results.load("sub/x", root=tmp_path)
    assert res.data["a"] == 1.5 and res.data["b"] == [2.0, 3] and res.data["t"] == [1.0, 2.0]
    np.testing.assert_array_equal(res.arrays["img"], arrays["img"])
    p = res.provenance
    assert p["command"] == "python -m something" and p["steps"] == 7
    assert set(p) >= {"commit", "dirty", "device", "torch", "started_utc", "wall_s", "profile"}
    note = res.note()
    assert "python -m something" in note and ("(quick profile)" in note or "(full profile)" in note)
    # a dlib tool is sized by its command line, not by the profile: the note does not name it
    results.save("tool", {}, results.Provenance("python -m dlib.cpu_scale probe --steps 9")
                 .finish(), root=tmp_path)
    tool = results.load("tool", root=tmp_path).note()
    assert "--steps 9" in tool and "profile" not in tool


def test_non_finite_numbers_become_null(tmp_path):
    results.save("x", {"v": float("nan"), "w": [np.inf, 1.0]}, _prov(), root=tmp_path)
    data = json.loads((tmp_path / "x.json").read_text())
    assert data["v"] is None and data["w"] == [None, 1.0]


def test_missing_result_is_none_and_bad_files_raise(tmp_path):
    assert results.load("nothing", root=tmp_path) is None
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        results.load("bad", root=tmp_path)
    (tmp_path / "foreign.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="provenance"):
        results.load("foreign", root=tmp_path)


def test_save_checks_provenance_and_removes_stale_arrays(tmp_path):
    with pytest.raises(ValueError, match="provenance lacks"):
        results.save("x", {}, {"command": "c"}, root=tmp_path)
    with pytest.raises(ValueError, match="must not contain"):
        results.save("x", {"provenance": 1}, _prov(), root=tmp_path)
    results.save("x", {}, _prov(), {"a": np.zeros(3)}, root=tmp_path)
    assert (tmp_path / "x.npz").exists()
    results.save("x", {}, _prov(), root=tmp_path)
    assert not (tmp_path / "x.npz").exists()
    assert results.load("x", root=tmp_path).arrays == {}


def test_results_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    assert results.results_dir() == tmp_path
    monkeypatch.delenv(results.RESULTS_ENV)
    assert results.results_dir().parts[-2:] == ("book", "results")


# ---- which code ran: git or the source stamp ---------------------------------------------------
def _repo(tmp_path):
    import subprocess

    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "b.txt").write_text("b\n")
    (root / ".gitignore").write_text("ignored/\n" + results.STAMP_FILE + "\n")

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root,
                       check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "x")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.strip()
    return root, head


def _copy_without_git(root, dest):
    import shutil

    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(".git"))
    return dest


def test_source_state_from_git_and_from_the_stamp(tmp_path):
    root, head = _repo(tmp_path)
    assert results.source_state(root) == {"commit": head, "dirty": False, "source": "git"}
    results.write_stamp(root)
    assert results.source_state(root)["dirty"] is False  # the stamp itself is ignored
    copy = _copy_without_git(root, tmp_path / "copy")
    assert results.source_state(copy) == {"commit": head, "dirty": False, "source": "stamp"}
    # a changed file makes the copy dirty, unless the run is expected to change it
    (copy / "pkg" / "a.py").write_text("A = 2\n")
    assert results.source_state(copy)["dirty"] is True
    assert results.source_state(copy, ignore=("pkg/a.py",))["dirty"] is False
    assert results.source_state(copy, ignore_dirs=("pkg/",))["dirty"] is False
    (copy / "b.txt").unlink()  # so does a missing one
    assert results.source_state(copy, ignore_dirs=("pkg/",))["dirty"] is True


def test_stamp_of_a_dirty_tree_stays_dirty_and_no_source_is_unknown(tmp_path):
    root, head = _repo(tmp_path)
    (root / "b.txt").write_text("changed\n")
    (root / "new.py").write_text("x = 1\n")  # untracked files travel too
    results.write_stamp(root)
    stamp = json.loads((root / results.STAMP_FILE).read_text())
    assert stamp["dirty"] and set(stamp["changed"]) == {"b.txt", "new.py"}
    assert "new.py" in stamp["files"] and "ignored/x" not in stamp["files"]
    copy = _copy_without_git(root, tmp_path / "copy")
    assert results.source_state(copy) == {"commit": head, "dirty": True, "source": "stamp"}
    assert results.source_state(copy, ignore=("b.txt", "new.py"))["dirty"] is False
    (copy / results.STAMP_FILE).unlink()
    assert results.source_state(copy) == {"commit": None, "dirty": None, "source": "unknown"}
    (copy / results.STAMP_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="source stamp"):
        results.source_state(copy)
    with pytest.raises(RuntimeError, match="not a git repository"):
        results.write_stamp(copy)


def test_note_says_when_the_tree_state_is_unknown(tmp_path):
    prov = {**_prov(), "commit": None, "dirty": None}
    path = results.save("x", {"a": 1}, prov, root=tmp_path)
    assert "unknown commit (tree state unknown)" in results.load(path.stem, tmp_path).note()


def _shipped_results() -> list:
    return sorted(p for p in results.results_dir().rglob("*.json"))


@pytest.mark.parametrize("path", _shipped_results(),
                         ids=lambda p: str(p.relative_to(results.results_dir())))
def test_every_shipped_result_loads_with_provenance_from_a_clean_tree(path):
    """What the book shows was made by committed code: each result file in book/results loads
    (with its arrays), and its provenance names a full commit of a clean tree."""
    name = str(path.relative_to(results.results_dir()).with_suffix(""))
    res = results.load(name)
    assert res is not None
    prov = res.provenance
    assert prov["dirty"] is False, f"{name} was made from a dirty tree"
    assert len(prov["commit"]) == 40 and prov["device"] and prov["started_utc"]
    if path.name == "index.json" and res.data.get("format") == "dlib-study/1":
        from dlib.studies import load as load_study

        study = load_study(path.parent.name, root=results.results_dir())
        assert len(study.runs) == res.data["finished_models"] == len(res.data["models"])
        assert all(r["scale"] == res.data["scale"]["name"] for r in study.runs)
