"""Tests of dlib.results (artifacts with provenance) and dlib.study (the Part III runner)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlib import results, study


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
    assert "python -m something" in res.note()


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


# ---- dlib.study ---------------------------------------------------------------------------------
def test_experiments_match_the_study_grids():
    from dlib.methods.presets import STUDY_GRIDS

    for name, exp in study.EXPERIMENTS.items():
        assert exp.method in STUDY_GRIDS or exp.method in study.OTHER_METHODS, name
        if name.endswith("_sweep"):
            _, _, option, values = STUDY_GRIDS[exp.method]
            assert [s[option] for s in exp.settings] == [float(v) for v in values]
    assert study.EXPERIMENTS["beta_vae"].settings == ({"beta": 4.0},)
    assert study.EXPERIMENTS["factor_vae"].steps == 300_000
    assert study.command("beta_vae") == "python -m dlib.study run beta_vae"
    assert study.command("beta_vae", seeds=[0, 1], steps=10) == (
        "python -m dlib.study run beta_vae --seeds 0 1 --steps 10")
    with pytest.raises(ValueError, match="unknown experiment"):
        study.command("nope")
    with pytest.raises(ValueError, match="unknown experiment"):
        study.load("nope")


def test_build_method_makes_the_named_class():
    from dlib.methods import AAE, FactorVAE, FactorVAEPrior, InfoGAN

    shape = (1, 64, 64)
    for name, cls in [("aae", AAE), ("factor_vae_prior", FactorVAEPrior),
                      ("factor_vae", FactorVAE), ("infogan", InfoGAN)]:
        exp = study.EXPERIMENTS[name]
        m = study.build_method(exp, exp.settings[-1], 5, shape)
        assert type(m) is cls and m.config.seed == 5, name
    aae = study.build_method(study.EXPERIMENTS["aae"], {"gamma": 10.0}, 0, shape)
    assert aae.config.gamma == 10.0 and aae.config.beta == 0.0


def test_setting_key():
    assert study.setting_key({"beta": 4.0}) == "beta=4"
    assert study.setting_key({"variant": "gan"}) == "variant=gan"


def test_recon_and_kl_equal_a_plain_computation():
    from dlib.methods import BetaVAE

    torch.manual_seed(0)
    m = BetaVAE((1, 64, 64), arch="fc").eval()
    x = (torch.rand(7, 1, 64, 64) > 0.5).float()
    recon, kl = study._recon_and_kl(m, x, seed=3)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        mean, logvar = m.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        logits = m.decode(z)
        nll = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x, reduction="none").sum((1, 2, 3)).mean()
        want_kl = (0.5 * (mean**2 + logvar.exp() - 1 - logvar)).mean(0)
    assert recon == pytest.approx(float(nll), rel=1e-5)
    np.testing.assert_allclose(kl, want_kl.numpy(), rtol=1e-5, atol=1e-7)


def test_run_saves_a_resumable_result(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("DLIB_PROFILE", "full")  # the environment's default is not what ran
    kw = dict(seeds=[0, 1], steps=4, work=tmp_path / "work", out=tmp_path / "out",
              profile="quick", batched=False, show_progress=False, command_line="cmd")
    res = study.run("beta_vae", **kw)
    assert res.data["complete"] and res.data["steps"] == 4 and len(res.runs) == 2
    assert res.provenance["command"] == "cmd" and res.provenance["seeds"] == [0, 1]
    assert res.provenance["profile"] == "quick" and "(quick profile)" in res.note()
    mig = res.scores("mig")
    assert mig.shape == (2,) and np.all((mig >= 0) & (mig <= 1))
    mean, std, n = res.summary()["beta=4"]["mig"]
    assert n == 2 and mean == pytest.approx(mig.mean()) and std == pytest.approx(mig.std(ddof=1))
    trav = res.traversal("best")
    assert trav.dtype == np.uint8 and trav.shape == (10, 9, 1, 64, 64)
    best, worst = res.traversal_seed("best"), res.traversal_seed("worst")
    by_seed = dict(zip([r["seed"] for r in res.runs], mig, strict=True))
    assert by_seed[best] >= by_seed[worst]
    assert "beta=4" in repr(res.table()) and "<table>" in res.table()._repr_html_()
    assert study.load("beta_vae", root=tmp_path / "out").data["runs"] == res.runs
    # a second call finds every model evaluated and retrains nothing
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("*.eval.json")}
    again = study.run("beta_vae", **kw)
    assert again.runs == res.runs
    assert stamp == {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("*.eval.json")}
    with pytest.raises(ValueError, match="best"):
        res.traversal("median")


def test_batched_run_equals_the_sequential_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    kw = dict(seeds=[0, 1], steps=3, profile="quick", show_progress=False, command_line="c")
    seq = study.run("factor_vae", batched=False, work=tmp_path / "w1", out=tmp_path / "o1", **kw)
    bat = study.run("factor_vae", batched=True, work=tmp_path / "w2", out=tmp_path / "o2", **kw)
    for a, b in zip(seq.runs, bat.runs, strict=True):
        assert a["seed"] == b["seed"]
        for key, value in a["scores"].items():
            assert b["scores"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        np.testing.assert_allclose(a["history"]["loss"], b["history"]["loss"], rtol=1e-5)


def test_infogan_traversal_varies_one_code_per_row():
    from dlib.methods import InfoGAN

    m = InfoGAN((1, 64, 64), seed=0).eval()
    image = torch.zeros(1, 64, 64)
    trav = study.traversal(m, image, kl=[], n_values=5)
    k = m.config.num_continuous
    assert trav.shape == (k, 5, 1, 64, 64) and trav.dtype == np.uint8
    _, _, z = m.sample_latents(1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for d in (0, k - 1):
            codes = z.repeat(5, 1)
            codes[:, d] = torch.linspace(-1, 1, 5)
            want = (m.generator(codes).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            np.testing.assert_array_equal(trav[d], want)
