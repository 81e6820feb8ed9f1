"""The Part V GPU command, run on the CPU with a tiny step count into tmp_path."""

import json

import numpy as np
import pytest

from dlib import intervention_study as study
from dlib import results


def test_spearman_by_hand():
    assert study.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert study.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3) against (1, 3, 2): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/24 = 0.5
    assert study.spearman([1, 2, 3], [5, 9, 7]) == pytest.approx(0.5)
    assert study.spearman([1, 2], [1, 2]) is None
    assert study.spearman([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError):
        study.spearman([1, 2, 3], [1, 2])


def test_summary_groups_seeds_and_correlates_over_models():
    rows = [{"dataset": "d", "setting": s, "method": m, "seed": k, "dci": v, "sap": v / 2,
             "irs": -v, "translation_loss": -v}
            for (s, m, v) in [("independent", "a", 0.1), ("correlated", "a", 0.3),
                              ("independent", "b", 0.2)] for k in (0, 1)]
    out = study.summarise(rows)
    assert out["table"]["d/correlated/a"]["dci"] == {"mean": 0.3, "std": 0.0, "n": 2}
    corr = out["spearman_translation"]["d"]
    assert corr["dci"] == pytest.approx(1.0) and corr["irs"] == pytest.approx(-1.0)


def test_build_and_errors():
    m = study.build("intervention", (1, 64, 64), seed=3, dataset_size=100)
    assert m.config.seed == 3 and m.config.lambda_adv == 10.0
    assert study.build("beta_tcvae", (1, 64, 64), 0, 123).config.dataset_size == 123
    with pytest.raises(ValueError, match="unknown method"):
        study.build("vae_gan", (1, 64, 64), 0, 1)


def test_tiny_cpu_run_writes_a_result_with_provenance(tmp_path):
    pytest.importorskip("dlib.data.correlated")
    argv = ["--datasets", "dsprites", "--methods", "intervention", "factor_vae_10",
            "--seeds", "0", "--steps", "2", "--batch-size", "4", "--tiny", "--device", "cpu",
            "--out", str(tmp_path / "res"), "--work", str(tmp_path / "work")]
    assert study.main(argv) == 0
    res = results.load(study.RESULT_NAME, root=tmp_path / "res")
    assert res is not None
    prov = res.provenance
    for key in ("command", "commit", "device", "torch", "started_utc", "wall_s"):
        assert key in prov
    assert prov["command"].startswith("python -m dlib.intervention_study")
    rows = res.data["rows"]
    assert {(r["setting"], r["method"]) for r in rows} == {
        (s, m) for s in ("independent", "correlated") for m in ("intervention", "factor_vae_10")}
    for r in rows:
        for k in ("dci", "sap", "irs", "translation_loss"):
            assert np.isfinite(r[k])
    # a rerun resumes from the stored per-model scores instead of retraining
    before = sorted(p.name for p in (tmp_path / "work").iterdir())
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "work").glob("*.json")}
    assert study.main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == before
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "work").glob("*.json")} == stamp
    again = json.loads((tmp_path / "res" / "intervention.json").read_text())
    assert again["rows"] == rows
    # a later command for another method adds its rows to the same result file
    argv2 = [a if a != "factor_vae_10" else "beta_tcvae" for a in argv]
    argv2.remove("intervention")
    assert study.main(argv2) == 0
    final = results.load(study.RESULT_NAME, root=tmp_path / "res").data
    assert {r["method"] for r in final["rows"]} == {"intervention", "factor_vae_10", "beta_tcvae"}
    assert len(final["rows"]) == 6
    with pytest.raises(ValueError, match="unknown dataset"):
        study.run(datasets=("no_such_data",), out=tmp_path / "x", work=tmp_path / "w2",
                  tiny=True)
    assert not (tmp_path / "w2").exists()
