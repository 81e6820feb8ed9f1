"""The large-study analyses against independent computations: a least-squares regression for
the variance explained, scipy for the rank correlations, brute-force pair counts for transfer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import spearmanr

from dlib import studies
from dlib.studies import analysis
from dlib.studies.analysis import (
    rank_correlations,
    rank_table,
    score_pairs,
    seeded,
    transfer_success,
    variance_explained,
    variance_permutation_p,
)


def _runs(seed=0, dataset="dsprites"):
    rs = np.random.RandomState(seed)
    runs = []
    for m, method in enumerate(("beta_vae", "factor_vae")):
        for s, value in enumerate((1.0, 2.0, 4.0)):
            for seed_ in range(4):
                effect = 0.3 * m + 0.1 * s  # method and setting effects, plus seed noise
                runs.append({"dataset": dataset, "method": method, "setting": {"x": value},
                             "seed": seed_,
                             "scores": {"a": effect + 0.05 * rs.randn(), "b": rs.rand(),
                                        "c": -effect + 0.01 * rs.randn()}})
    return runs


def test_variance_explained_is_the_r2_of_a_regression_on_the_groups():
    runs = _runs()
    y = np.array([r["scores"]["a"] for r in runs])
    for by in (("method",), ("method", "setting")):
        groups = sorted({tuple(str(r[k] if k != "setting" else r["setting"]) for k in by)
                         for r in runs})
        X = np.array([[float(tuple(str(r[k] if k != "setting" else r["setting"]) for k in by)
                             == g) for g in groups] for r in runs])
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        r2 = 1 - ((y - X @ beta) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        assert variance_explained(runs, "a", by) == pytest.approx(r2, abs=1e-12)
    assert variance_explained(runs, "a", ("method",)) < variance_explained(runs, "a")
    assert variance_explained(runs, "a") > 0.9  # the seed noise is small here
    with pytest.raises(ValueError, match="does not vary"):
        variance_explained([{**r, "scores": {"a": 1.0}} for r in runs], "a")


def test_adjusted_share_is_the_adjusted_r2_of_the_regression():
    runs = _runs()
    for score in ("a", "b"):
        y = np.array([r["scores"][score] for r in runs])
        for by in (("method",), ("method", "setting")):
            labels = [tuple(str(r[k] if k != "setting" else r["setting"]) for k in by)
                      for r in runs]
            X = np.array([[float(lab == g) for g in sorted(set(labels))] for lab in labels])
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            rss, tss = ((y - X @ beta) ** 2).sum(), ((y - y.mean()) ** 2).sum()
            n, p = len(y), np.linalg.matrix_rank(X)
            want = 1 - (rss / (n - p)) / (tss / (n - 1))
            got = variance_explained(runs, score, by, adjusted=True)
            assert got == pytest.approx(want, abs=1e-12)
            assert got < variance_explained(runs, score, by)  # the raw share is larger
    assert variance_explained(runs, "a", adjusted=False) == variance_explained(runs, "a")
    one_each = [{**r, "seed": 0} for r in runs if r["seed"] == 0]  # one model per group
    with pytest.raises(ValueError, match="more models"):
        variance_explained(one_each, "a", adjusted=True)


def test_permutation_p_matches_an_exhaustive_count():
    # seven models in groups of 2, 2 and 3: all 5,040 orders of the scores, counted exactly
    scores = [0.1, 0.3, 0.25, 0.6, 0.5, 0.45, 0.9]
    runs = [{"method": m, "setting": {}, "seed": i, "scores": {"s": v}}
            for i, (m, v) in enumerate(zip("AABBCCC", scores, strict=True))]
    observed = variance_explained(runs, "s", ("method",))
    null = [variance_explained([{**r, "scores": {"s": v}} for r, v in zip(runs, order,
                                                                          strict=True)],
                               "s", ("method",))
            for order in itertools.permutations(scores)]
    exact = np.mean(np.array(null) >= observed - 1e-12)
    got = variance_permutation_p(runs, "s", ("method",), permutations=20_000, seed=1)
    assert got == pytest.approx(exact, abs=0.015)
    assert got == variance_permutation_p(runs, "s", ("method",), permutations=20_000, seed=1)
    # a strong group effect is rare under shuffling; pure noise is not
    many = _runs(3)
    assert variance_permutation_p(many, "a", permutations=999) < 0.01
    assert variance_permutation_p(many, "b", permutations=999) > 0.05
    with pytest.raises(ValueError, match="positive"):
        variance_permutation_p(many, "a", permutations=0)


def test_seeded_keeps_the_settings_with_enough_seeds():
    runs = _runs()  # 2 methods x 3 settings x 4 seeds
    lone = {"dataset": "dsprites", "method": "beta_vae", "setting": {"x": 9.0}, "seed": 0,
            "scores": {}}
    other = {**runs[0], "dataset": "color"}  # same setting on another dataset: its own group
    pool = [lone, *runs, other]
    assert seeded(pool) == runs
    assert seeded(pool, min_seeds=1) == pool
    assert seeded(runs[:3] + runs[4:6], min_seeds=3) == runs[:3]


def test_rank_correlations_are_scipys():
    runs = _runs()
    m = rank_correlations(runs, ("a", "b", "c"))
    a, b, c = (np.array([r["scores"][k] for r in runs]) for k in "abc")
    assert m[0, 1] == pytest.approx(spearmanr(a, b).statistic)
    assert m[0, 2] == pytest.approx(spearmanr(a, c).statistic) and m[0, 2] < -0.8
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    x, y, kept = score_pairs(runs + [{"scores": {"a": 1.0}}], "a", "b")
    assert len(kept) == len(runs) and np.array_equal(x, a)


def test_rank_table_prints_scipys_correlations_over_the_models_with_every_score():
    runs = _runs() + [{"scores": {"a": 1.0, "b": 2.0}}]  # no "c": left out of the count
    text = rank_table(runs, {"a": "A score"}, {"b": "B", "c": "C"}, who="test models")
    head, blank, columns, row = text.split("\n")
    n = len(runs) - 1
    assert head == f"Spearman ρ over {n} test models (standard error ≈ {1 / np.sqrt(n - 3):.2f})"
    assert blank == "" and columns.split() == ["B", "C"]
    a, b, c = (np.array([r["scores"][k] for r in runs[:-1]]) for k in "abc")
    label, *values = row.rsplit(maxsplit=2)
    assert label == "A score"
    assert [float(v) for v in values] == pytest.approx(
        [spearmanr(a, b).statistic, spearmanr(a, c).statistic], abs=0.005)
    with pytest.raises(ValueError, match="at least four"):
        rank_table(runs[:3], {"a": "A"}, {"b": "B"})


def _brute(chosen, pool):
    wins = [(1.0 if c > p else 0.5 if c == p else 0.0) for c, p in itertools.product(chosen,
                                                                                       pool)]
    return float(np.mean(wins))


def test_transfer_success_by_brute_force():
    source, target = _runs(0), _runs(1, "color_dsprites")
    # "a" rises with the setting in both: the best source setting is x = 4 for each method
    got = transfer_success(source, target, "a", "a")
    want = np.mean([_brute([r["scores"]["a"] for r in target
                            if r["method"] == m and r["setting"] == {"x": 4.0}],
                           [r["scores"]["a"] for r in target if r["method"] == m])
                    for m in ("beta_vae", "factor_vae")])
    assert got == pytest.approx(want) and got > 0.75
    # choosing by "c" (which falls with the setting) picks x = 1: worse than random on "a"
    assert transfer_success(source, target, "c", "a") < 0.25
    rows = analysis.transfer_by_method(source, target, "c", "a")
    low = studies.setting_key({"x": 1.0})
    assert sorted(rows) == ["beta_vae", "factor_vae"]
    assert all(row["chosen"] == [low] and row["models"] == 12 for row in rows.values())
    assert np.mean([row["rate"] for row in rows.values()]) == transfer_success(
        source, target, "c", "a")
    # a method whose chosen setting the target lacks is left out, not scored as a loss
    partial = [r for r in target if not (r["method"] == "factor_vae" and r["setting"]["x"] == 1)]
    assert list(analysis.transfer_by_method(source, partial, "c", "a")) == ["beta_vae"]


def _chosen_without(runs, method, seed, score):
    """By brute force: the setting of ``method`` with the best median ``score`` over the
    other seeds' models."""
    medians = {}
    for r in runs:
        if r["method"] == method and r["seed"] != seed:
            medians.setdefault(r["setting"]["x"], []).append(r["scores"][score])
    return max(medians, key=lambda k: np.median(medians[k]))


def test_transfer_on_the_same_models_leaves_each_seed_out():
    runs = _runs(2)
    got = transfer_success(runs, runs, "a", "a")
    rates = []
    for m in ("beta_vae", "factor_vae"):
        pool = [r["scores"]["a"] for r in runs if r["method"] == m]
        per_seed = []
        for seed in range(4):
            best = _chosen_without(runs, m, seed, "a")
            chosen = [r["scores"]["a"] for r in runs if r["method"] == m and r["seed"] == seed
                      and r["setting"]["x"] == best]
            per_seed.append(_brute(chosen, pool))
        rates.append(np.mean(per_seed))
    assert got == pytest.approx(np.mean(rates))
    with pytest.raises(ValueError, match="no method"):
        transfer_success(runs, [], "a", "a")


def test_transfer_judged_within_the_held_out_seed():
    runs = _runs(4)
    got = analysis.transfer_by_method(runs, runs, "b", "a", judge="held_out")
    for m in ("beta_vae", "factor_vae"):
        per_seed = []
        for seed in range(4):
            best = _chosen_without(runs, m, seed, "b")
            own = [r for r in runs if r["method"] == m and r["seed"] == seed]
            chosen = [r["scores"]["a"] for r in own if r["setting"]["x"] == best]
            per_seed.append(_brute(chosen, [r["scores"]["a"] for r in own]))
        assert got[m]["rate"] == pytest.approx(np.mean(per_seed))
    everyone = analysis.transfer_by_method(runs, runs, "b", "a")
    assert [row["chosen"] for row in got.values()] == [row["chosen"] for row in
                                                       everyone.values()]
    assert analysis.transfer_by_method(runs, runs, "b", "a", judge="all") == everyone
    with pytest.raises(ValueError, match="same models"):
        analysis.transfer_by_method(runs, _runs(5), "a", "a", judge="held_out")
    with pytest.raises(ValueError, match="judge"):
        analysis.transfer_by_method(runs, runs, "a", "a", judge="seed")


def test_factor_kl_credits_each_active_latent_to_its_best_factor():
    from dlib.studies.analysis import factor_kl

    names = ("shape", "scale", "posX")
    kl = [2.0, 0.005, 1.5, 0.7, 0.3]
    r2 = np.array([[0.0, 0.9, 0.1, 0.05, 0.02],    # latent 1 is inactive: not counted
                   [0.1, 0.0, 0.6, 0.02, 0.05],
                   [0.8, 0.0, 0.2, 0.01, 0.6]])
    out = factor_kl(kl, r2, names)
    assert out == {"shape": 0.0, "scale": 1.5, "posX": 2.0 + 0.3, "none": 0.7}
    assert sum(out.values()) == pytest.approx(4.5)  # every active latent's KL, once
    with pytest.raises(ValueError, match="factors, latents"):
        factor_kl(kl, r2.T, names)


def test_sample_efficiency_is_the_small_over_the_large_accuracy():
    runs = [{"method": "m", "setting": {}, "seed": 0, "dataset": "d",
             "scores": {"downstream_lr_100": 0.3, "downstream_lr_10000": 0.6,
                        "downstream_gbt_100": 0.5, "downstream_gbt_10000": 0.5}},
            {"method": "m", "setting": {}, "seed": 1, "dataset": "d",
             "scores": {"downstream_lr_100": 0.2, "mig": 0.1}}]
    out = analysis.with_sample_efficiency(runs)
    assert out[0]["scores"]["downstream_lr_efficiency"] == pytest.approx(0.5)
    assert out[0]["scores"]["downstream_gbt_efficiency"] == pytest.approx(1.0)
    assert "downstream_lr_efficiency" not in out[1]["scores"]  # no 10,000-code accuracy
    assert "downstream_lr_efficiency" not in runs[0]["scores"]  # the input is left alone
    assert analysis.with_sample_efficiency(runs, small=100, large=100)[0]["scores"][
        "downstream_lr_efficiency"] == 1.0
