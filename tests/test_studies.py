"""dlib.studies without Ray: declarations against the registry, the evaluators against
independent computations, and reading an exported study. (The runner on a real Ray cluster is
tested in test_studies_ray.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dlib import results, studies
from dlib.methods import registry
from dlib.scales import Scale
from dlib.studies import declarations
from dlib.studies.evaluators import EVALUATORS, Context
from dlib.studies.trainable import HeldOut, load_data, trial_key, trial_steps

TINY = Scale("tiny", "test", steps=8, batch_size=8, num_images=64,
             metrics={"mig": {"num_train": 64}, "recon": {"num": 16},
                      "nmi_trace": {"num": 64, "points": 2},
                      "translation": {"num_train": 16, "num_test": 16, "steps": 2}})


# ---- declarations and the registry ----------------------------------------------------------
def test_sweeps_are_the_registry_grids_and_settings_are_config_fields():
    for name, study in studies.STUDIES.items():
        for arm in study.arms:
            spec = registry.get(arm.method)
            if name.endswith("_sweep") or name.startswith("locatello"):
                assert [s[str(spec.swept)] for s in arm.settings] == [float(v) for v in spec.grid]
    assert studies.get("beta_vae").arms[0].settings == ({"beta": 4.0},)
    assert studies.get("locatello").planned() == 6 * 6 * 3
    assert {a.method for a in studies.get("locatello").arms} == set(registry.STUDY_METHODS)
    assert studies.get("deft").planned() == 2 * 7 * 10
    # OAT's ablation: the oat study's protocol with one of its sets halved, the sets' sizes ints
    ablation, oat = studies.get("oat_ablation"), studies.get("oat")
    assert [s for a in ablation.arms for s in a.settings] == [{"num_z1": 5}, {"num_z2": 5}]
    assert (ablation.step_fraction, ablation.batch_size, ablation.metrics) == (
        oat.step_fraction, oat.batch_size, oat.metrics)
    assert trial_key(ablation.points()[0], 0) == "dsprites-oat-num_z15-seed0"
    # the long schedule: the oat study's rules and protocol over the scale's full steps
    long = studies.get("oat_long")
    assert long.arms == oat.arms and long.step_fraction == 1.0 == 3 * oat.step_fraction
    assert (long.batch_size, long.metrics, long.evaluators) == (
        oat.batch_size, oat.metrics, oat.evaluators)
    # DIP-VAE-I's diagonal term tested: the locatello protocol, λ_d = λ_od instead of 10·λ_od
    diag, loc = studies.get("dip_vae_i_lambda_d"), studies.get("locatello")
    assert [s["lambda_d"] / s["lambda_od"] for a in diag.arms for s in a.settings] == [1.0, 1.0]
    assert (diag.metrics, diag.evaluators, diag.step_fraction) == (
        loc.metrics, loc.evaluators, loc.step_fraction)
    # the transfer grid is scored exactly as the dSprites grid (encode-once, recon/KL, traversal)
    color = studies.get("locatello_color")
    assert color.arms == loc.arms and color.datasets == ("color_dsprites",)
    assert (color.metrics, color.evaluators, color.step_fraction, color.batch_size) == (
        loc.metrics, loc.evaluators, loc.step_fraction, loc.batch_size)
    # Table 3 of the intervention-based paper: K_Z = 2 features of D_Z = 16 (ints), λ1 = 1
    digits = studies.get("intervention_digits")
    assert digits.planned() == 3 * 2 * 3 and digits.metrics == ("sap",)
    grouped = [s for a in digits.arms if a.method == "intervention" for s in a.settings]
    assert grouped == [{"num_features": 2, "feature_dim": 16, "lambda_in": 1.0}]
    assert all(isinstance(grouped[0][k], int) for k in ("num_features", "feature_dim"))
    with pytest.raises(ValueError, match="unknown study"):
        studies.get("nope")
    with pytest.raises(ValueError, match="unknown method"):
        studies.Arm("vae_gan")
    with pytest.raises(ValueError, match="unknown dataset"):
        studies.Study("x", "x", (studies.Arm("beta_vae"),), datasets=("mnist",))
    with pytest.raises(ValueError, match="unknown evaluators"):
        studies.Study("x", "x", (studies.Arm("beta_vae"),), evaluators=("nothing",))


def test_study_round_trips_through_a_dict_and_names_its_models():
    study = studies.get("intervention")
    assert declarations.Study.from_dict(study.to_dict()) == study
    point = study.points()[0]
    assert trial_key(point, 3) == "dsprites_independent-factor_vae-gamma10-seed3"
    assert studies.setting_key({"beta": 4.0, "variant": "gan"}) == "beta=4,variant=gan"
    assert trial_steps(studies.get("oat"), TINY) == 3  # a third of 8 steps
    assert trial_steps(study, TINY, steps=5) == 5
    assert studies.command("beta_vae", scale="full") == (
        "python -m dlib.studies run beta_vae --scale full")


def test_registry_builds_each_class_with_its_run_options():
    from dlib.methods import AAE, DEFT, OAT, FactorVAEPrior, InfoGAN, Intervention

    shape = (1, 64, 64)
    for name, cls in [("aae", AAE), ("factor_vae_prior", FactorVAEPrior), ("infogan", InfoGAN),
                      ("intervention", Intervention), ("oat", OAT), ("deft", DEFT)]:
        m = registry.build(name, shape, seed=5, **registry.run_options(name, steps=3000))
        assert type(m) is cls and m.config.seed == 5, name
    assert registry.run_options("beta_tc_vae", dataset_size=123) == {"dataset_size": 123}
    # DEFT: Table 1's dSprites row at batch 64 (23,040 + 23,040 + 46,080 + 172,800 steps) at the
    # protocol's length, every stage scaled with the run
    assert registry.run_options("deft")["stage_steps"] == (23_040, 23_040, 46_080, 172_800)
    assert registry.run_options("deft", steps=30_000)["stage_steps"] == (2_304, 2_304, 4_608,
                                                                         17_280)
    assert registry.run_options("deft", dataset="color_dsprites")["pressures"] == (
        160.0, 105.0, 30.0, 1.0)
    assert registry.run_options("annealed_vae", steps=30_000) == {"iteration_threshold": 10_000}
    assert registry.run_options("oat", steps=1000)["pretrain_steps"] == 100


# ---- evaluators -------------------------------------------------------------------------------
def _ctx(method, study=None, data=None, train=None, **kw):
    study = study or studies.Study("t", "t", (studies.Arm("beta_vae"),), metrics=("mig",))
    return Context(method, 0, 8, study, TINY, data, train, "dsprites", **kw)


def test_recon_kl_equals_a_plain_computation():
    from dlib.methods import BetaVAE

    class Fixed:  # a sampler that returns fixed binary images
        def sample_observations(self, num, random_state):
            return (random_state.rand(num, 64, 64, 1) > 0.5).astype(np.float32)

    torch.manual_seed(0)
    m = BetaVAE((1, 64, 64), arch="fc").eval()
    out = EVALUATORS["recon_kl"].final(_ctx(m, data=Fixed()))
    x = torch.as_tensor(Fixed().sample_observations(16, np.random.RandomState(1))).permute(
        0, 3, 1, 2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mean, logvar = m.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        nll = torch.nn.functional.binary_cross_entropy_with_logits(
            m.decode(z), x, reduction="none").sum((1, 2, 3)).mean()
        want_kl = (0.5 * (mean**2 + logvar.exp() - 1 - logvar)).mean(0)
    assert out["scores"]["recon"] == pytest.approx(float(nll), rel=1e-5)
    np.testing.assert_allclose(out["kl"], want_kl.numpy(), rtol=1e-5, atol=1e-7)


def test_infogan_traversal_varies_one_code_per_row():
    from dlib.methods import InfoGAN

    class Blank:
        def sample_observations(self, num, random_state):
            return np.zeros((num, 64, 64, 1), np.float32)

    m = InfoGAN((1, 64, 64), seed=0).eval()
    trav = EVALUATORS["traversal"].final(_ctx(m, data=Blank()))["arrays"]["traversal"]
    k = m.config.num_continuous
    assert trav.shape == (k, 9, 1, 64, 64) and trav.dtype == np.uint8
    _, _, z = m.sample_latents(1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for d in (0, k - 1):
            codes = z.repeat(9, 1)
            codes[:, d] = torch.linspace(-1, 1, 9)
            want = (m.generator(codes).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            np.testing.assert_array_equal(trav[d], want)


def test_metric_scores_are_dlib_metrics_compute():
    from dlib.methods import BetaVAE
    from dlib.metrics import compute
    from dlib.metrics.utils import torch_representation

    data, train, evaluation = load_data("dsprites", TINY, "cpu")
    assert evaluation is data and len(train) == 64
    m = BetaVAE((1, 64, 64), seed=0).eval()
    out = EVALUATORS["metrics"].final(_ctx(m, data=evaluation, train=train))
    want = compute("mig", data, torch_representation(m.represent, device="cpu"),
                   np.random.RandomState(0), num_train=64)
    assert out["scores"]["mig"] == pytest.approx(want["discrete_mig"], rel=1e-9)
    assert out["metrics"]["mig"]["discrete_mig"] == out["scores"]["mig"]


def test_correlated_training_sets_score_on_the_held_out_test_set():
    data, train, held = load_data("dsprites:correlated", TINY, "cpu")
    assert isinstance(held, HeldOut) and len(held.index) <= 64 and len(train) <= 64
    factors, obs = held.sample(5, np.random.RandomState(0))
    rows = set(held.index.tolist())
    assert all(int(i) in rows for i in data.classes_to_index(factors))
    assert obs.shape == (5, 64, 64, 1)
    with pytest.raises(ValueError, match="training set"):
        load_data("dsprites:skewed", TINY, "cpu")


def test_painted_digits_train_and_score_on_separate_handwriting():
    """Nothing of the digits' 100-cell grid is held out: the correlated (or independent) set
    is drawn from the train split's handwriting and the scores from the test split's."""
    from dlib import scales
    from dlib.data.correlated import joint_histogram

    cpu = scales.get("cpu")
    data, train, test = load_data("colored_digits:correlated", cpu, "cpu")
    assert (data.per_digit, test.per_digit) == (139, 35) and data.image_shape == (3, 32, 32)
    assert test.image_shape == (3, 32, 32) and len(train) == 60_000
    assert not set(data.source_index.ravel()) & set(test.source_index.ravel())

    def diagonal_share(d):  # the share of draws whose digit equals their colour
        drawn = d.factors[d.positions].cpu().numpy()
        return np.trace(joint_histogram(drawn, (0, 1), (10, 10))) / len(drawn)

    _, indep, _ = load_data("colored_digits:independent", cpu, "cpu")
    assert diagonal_share(train) > 0.15 and diagonal_share(indep) < 0.12  # band vs 1 in 10
    assert load_data("colored_digits", cpu, "cpu")[0].per_digit == 174  # no split: all


def test_deft_trackers_measure_at_the_stage_ends_and_trace_points():
    from dlib.methods import DEFT
    from dlib.train import fit_in_stages

    data, train, _ = load_data("dsprites", TINY, "cpu")
    opts = registry.run_options("deft", steps=60, batch_size=8)
    m = DEFT((1, 64, 64), seed=0, **opts)
    study = studies.get("deft")
    ctx = _ctx(m, study=study, data=data, train=train)
    ctx.steps = int(sum(opts["stage_steps"]))
    stops = {name: EVALUATORS[name].stops(ctx) for name in ("stage_mig", "nmi_trace")}
    assert stops["stage_mig"] == np.cumsum(opts["stage_steps"]).tolist()
    assert stops["nmi_trace"] == [ctx.steps // 2, ctx.steps]

    def at_stop(step):
        for name, at in stops.items():
            if step in at:
                ctx.tracks.setdefault(name, []).append((step, EVALUATORS[name].track(ctx, step)))

    ctx.history = fit_in_stages(m, train, sorted(set(sum(stops.values(), []))), at_stop,
                                batch_size=8, seed=0, log_every=1, show_progress=False)
    stage = EVALUATORS["stage_mig"].final(ctx)
    assert len(stage["stage_mig"]) == 4 and stage["stage_ends"] == stops["stage_mig"]
    trace = EVALUATORS["nmi_trace"].final(ctx)["trace"]
    assert trace["step"] == stops["nmi_trace"] and len(trace["max1"][0]) == data.num_factors
    tail = EVALUATORS["loss_tail"].final(ctx)["scores"]
    assert np.isfinite(tail["train_recon"]) and np.isfinite(tail["train_kl"])


def test_oat_state_and_translation_evaluators():
    from dlib.methods import OAT, Intervention

    data, train, held = load_data("dsprites:independent", TINY, "cpu")
    oat = OAT((1, 64, 64), seed=0, **registry.run_options("oat", steps=100))
    state = EVALUATORS["oat_state"].final(_ctx(oat))
    assert state["n_active"] == 0 and state["stopped"] is False and len(state["switch_steps"]) == 10
    model = Intervention((1, 64, 64), seed=0)
    out = EVALUATORS["translation"].final(_ctx(model, data=held, train=train))
    assert np.isfinite(out["scores"]["translation_loss"])


# ---- reading an export -------------------------------------------------------------------------
def _export(root, name="t_read"):
    """Write an index and three runs by hand, as ``export`` lays them out."""
    prov = results.Provenance("by hand").finish()
    study = studies.Study(name, "by hand", (studies.Arm("beta_vae", ({"beta": 4.0},)),),
                          seeds=(0, 1, 2), metrics=("mig",))
    keys = []
    for seed, mig in zip((0, 1, 2), (0.05, 0.3, 0.2), strict=True):
        key = f"dsprites-beta_vae-beta4-seed{seed}"
        rec = {"key": key, "dataset": "dsprites", "method": "beta_vae",
               "setting": {"beta": 4.0}, "seed": seed, "scores": {"mig": mig, "recon": 40.0 + seed},
               "arrays": ["traversal"]}
        results.save(f"{name}/runs/{key}", rec, prov,
                     {"traversal": np.full((2, 9, 1, 4, 4), seed, np.uint8)}, root=root)
        keys.append(key)
    index = {"format": "dlib-study/1", "study": name, "description": "by hand",
             "declaration": study.to_dict(), "scale": {"name": "tiny"}, "steps": 8,
             "planned_models": 4, "finished_models": 3, "complete": False, "models": keys}
    results.save(f"{name}/index", index, prov, root=root)


def test_load_reads_an_export_and_says_what_is_missing(tmp_path, capsys):
    _export(tmp_path)
    res = studies.load("t_read", root=tmp_path)
    assert len(res.runs) == 3 and res.settings() == ["beta=4"]
    np.testing.assert_allclose(res.scores("mig"), [0.05, 0.3, 0.2])
    mean, std, n = res.summary()["beta=4"]["mig"]
    assert n == 3 and mean == pytest.approx(0.55 / 3) and std == pytest.approx(
        np.std([0.05, 0.3, 0.2], ddof=1))
    assert res.traversal_seed("best") == 1 and res.traversal_seed("worst") == 0
    assert int(res.traversal("worst").max()) == 0 and int(res.traversal("best").max()) == 1
    assert res.failure_rate("beta_vae", "dsprites") == (pytest.approx(100 / 3), 3)
    low, high = res.failure_interval("beta_vae", "dsprites")
    assert 0 < low < 100 / 3 < high < 100
    assert "Partial: 3 of 4" in res.note() and "beta=4" in repr(res.table())
    with pytest.raises(ValueError, match="best"):
        res.traversal("median")
    assert studies.load("beta_vae", root=tmp_path / "none") is None
    said = capsys.readouterr().out
    assert "python -m dlib.studies run beta_vae --scale full" in said
    assert "python -m dlib.studies export beta_vae --scale full" in said


def test_note_of_several_runs_names_the_latest_and_the_summed_wall_time(tmp_path):
    """An index made by several runs carries the sum of their wall times; the note must not
    attribute that sum to the latest command (it did: "<latest command>, 263.9 min")."""
    _export(tmp_path)
    prov = results.Provenance("by hand").finish()
    runs = [{"command": "run a", "wall_s": 3600.0}, {"command": "run b", "wall_s": 1800.0},
            {"command": "run c", "wall_s": None, "ended": False}]
    data = {k: v for k, v in results.load("t_read/index", tmp_path).data.items()
            if k != "provenance"}
    results.save("t_read/index", data, {**prov, "command": "run c", "wall_s": 5400.0,
                                              "runs": runs}, root=tmp_path)
    note = studies.load("t_read", root=tmp_path).note()
    assert note.startswith("Results of 3 runs of the studies runner (the latest: `run c`")
    assert "1.5 h of wall time over the 2 that had ended" in note and "90.0 min" not in note
    results.save("t_read/index", data, {**prov, "command": "run a", "wall_s": 3600.0,
                                              "runs": runs[:1]}, root=tmp_path)
    assert "`run a` at " in studies.load("t_read", root=tmp_path).note()
    assert ", 60.0 min;" in studies.load("t_read", root=tmp_path).note()


def test_wilson_interval_against_its_formula_and_coverage():
    from scipy.stats import binomtest

    from dlib.studies.reading import wilson_interval

    # statsmodels' proportion_confint(3, 10, method="wilson") = (0.1078, 0.6032)
    low, high = wilson_interval(3, 10)
    assert low == pytest.approx(10.78, abs=0.01) and high == pytest.approx(60.32, abs=0.01)
    ci = binomtest(3, 10).proportion_ci(method="wilson")  # scipy's own Wilson interval
    assert (low, high) == (pytest.approx(100 * ci.low), pytest.approx(100 * ci.high))
    assert wilson_interval(0, 10)[0] == 0 and wilson_interval(0, 10)[1] > 20  # not empty
    assert wilson_interval(10, 10)[1] == pytest.approx(100)
    # coverage by simulation: about 95 % of intervals from 10 draws at p = 0.3 hold 30 %
    rs = np.random.RandomState(0)
    hits = [wilson_interval(k, 10) for k in rs.binomial(10, 0.3, 2000)]
    assert 0.9 < np.mean([lo <= 30 <= hi for lo, hi in hits]) < 0.99
    assert np.isnan(wilson_interval(0, 0)[0])
    with pytest.raises(ValueError, match="k <= n"):
        wilson_interval(4, 3)


def test_spearman_by_hand():
    assert studies.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert studies.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3) against (1, 3, 2): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/24 = 0.5
    assert studies.spearman([1, 2, 3], [5, 9, 7]) == pytest.approx(0.5)
    assert studies.spearman([1, 2], [1, 2]) is None
    assert studies.spearman([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError):
        studies.spearman([1, 2, 3], [1, 2])


def test_command_line_lists_and_reports_an_unstarted_study(tmp_path, capsys):
    from dlib.studies.__main__ import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "locatello" in out and "108 models" in out
    assert main(["status", "beta_vae", "--scale", "quick", "--storage", str(tmp_path)]) == 0
    info = capsys.readouterr().out
    assert '"started": false' in info and '"planned_models": 3' in info
    with pytest.raises(FileNotFoundError, match="run it first"):
        studies.export("beta_vae", scale="quick", storage=tmp_path, out=tmp_path / "out")
    with pytest.raises(SystemExit):
        main(["run", "no_such_study"])


def test_the_cpu_scale_loads_dsprites_at_its_image_size():
    """dlib.data.load takes **options, so the image size is passed, not looked up by signature."""
    from dlib import scales
    from dlib.studies.trainable import _load_dataset

    assert _load_dataset("dsprites", scales.get("cpu")).image_shape == (1, 32, 32)
    assert _load_dataset("dsprites", scales.get("quick")).image_shape == (1, 64, 64)
    # the 3D-shapes look-alike too (the intervention study's second dataset)
    assert _load_dataset("shapes3d", scales.get("cpu")).image_shape == (3, 32, 32)


def test_encoded_metrics_equal_on_demand_metrics_and_keep_udr_codes(tmp_path):
    """The encode-once evaluator gives the scores of the on-demand one (same random streams,
    equal up to float rounding); it adds the sampled code's TC/WC, the KL and R² over the whole
    set, and fixed-index codes for UDR; a model without an encoder falls back to on-demand
    scoring."""
    from dlib.data import load, save_dsprites_npz
    from dlib.methods import OAT, BetaVAE, InfoGAN
    from dlib.metrics import compute
    from dlib.metrics.encoded import factor_latent_r2
    from dlib.metrics.utils import sampled_representation

    data = load("dsprites", path=save_dsprites_npz(tmp_path / "t.npz", (1, 3, 2, 4, 6, 6),
                                                   device="cpu"), md5=None)
    small = {"num_train": (10, 100), "num_test": 50}
    scale = Scale("tiny", "test", steps=8, batch_size=8,
                  metrics={"mig": {"num_train": 200}, "sap": {"num_train": 200, "num_test": 100},
                           "unsupervised": {"num_train": 200}, "downstream_task": small,
                           "downstream_task_gbt": small})
    study = studies.Study("t", "t", (studies.Arm("beta_vae"),),
                          metrics=("mig", "sap", "unsupervised", "downstream_task",
                                   "downstream_task_gbt"))
    m = BetaVAE(data.image_shape, seed=3, width=0.5).eval()
    ctx = Context(m, 0, 8, study, scale, data, None, "dsprites")
    got = EVALUATORS["encoded_metrics"].final(ctx)
    want = EVALUATORS["metrics"].final(Context(m, 0, 8, study, scale, data, None, "dsprites"))
    assert got["encoded"] is True
    assert set(got["metric_seconds"]) == set(study.metrics)  # each metric timed
    # equal up to the encoder's float32 rounding, which on some CPUs depends on the batch
    # size (encoded once in large batches vs on demand); a classifier stopped at its iteration
    # limit can then flip one training prediction, one point in 100 of an accuracy
    assert set(got["metrics"]) == set(want["metrics"]) | {"unsupervised_sampled"}
    for name, values in want["metrics"].items():
        assert set(got["metrics"][name]) == set(values), name
        for key, value in values.items():
            tol = 0.011 if "accuracy" in key else 1e-6 * max(1.0, abs(value))
            assert abs(got["metrics"][name][key] - value) <= tol, (name, key)
    for key, value in want["scores"].items():
        assert got["scores"][key] == pytest.approx(value, rel=1e-6, abs=0.011 if key.startswith(
            "downstream") else 1e-9), key
    assert {"downstream_lr_10", "downstream_lr_100", "downstream_gbt_100"} <= set(want["scores"])
    assert "downstream_lr_1000" not in want["scores"]  # not computed at this scale's sizes
    sampled = compute("unsupervised", data, sampled_representation(
        lambda x: m.encode(torch.as_tensor(x).permute(0, 3, 1, 2).float()), 0),
        np.random.RandomState(0), num_train=200)
    assert got["scores"]["gaussian_tc_sampled"] == pytest.approx(
        sampled["gaussian_total_correlation"], rel=1e-5)
    assert len(got["kl_all"]) == 10 and np.array(got["factor_latent_r2"]).shape == (5, 10)
    idx = got["arrays"]["udr_index"]
    n = data.num_observations  # 864 < 1,000: the whole tiny set
    assert len(idx) == n == len(np.unique(idx))
    with torch.no_grad():
        x = data.observe(data.images_from_classes(torch.as_tensor(data.index_to_classes(idx)),
                                                  "cpu"))
        mean = m.encode(x)[0].numpy()
    np.testing.assert_allclose(got["arrays"]["udr_mean"], mean.astype(np.float16), atol=2e-3)
    r2 = factor_latent_r2(mean[np.argsort(idx)], data.factor_sizes)
    np.testing.assert_allclose(got["factor_latent_r2"], r2, atol=1e-6)
    oat = OAT(data.image_shape, seed=1, width=0.5, num_z1=4, num_z2=3).eval()
    oat.mask[:2] = 1.0  # two z1 dimensions switched on: the code the metrics score
    study_oat = study.replace(metrics=("mig", "sap"))
    got = EVALUATORS["encoded_metrics"].final(Context(oat, 0, 8, study_oat, scale, data, None,
                                                      "dsprites"))
    want = EVALUATORS["metrics"].final(Context(oat, 0, 8, study_oat, scale, data, None,
                                               "dsprites"))
    assert got["encoded"] is True and got["scores"] == want["scores"]
    assert len(got["kl_all"]) == 4 and got["kl_all"][2:] == [0.0, 0.0]  # z1 only, 2 off
    gan = InfoGAN(data.image_shape, seed=0, variant="gan").eval()  # batch norm in D/Q
    scored = EVALUATORS["encoded_metrics"].final(Context(
        gan, 0, 8, study, scale, data, None, "dsprites"))
    assert scored["encoded"] is False
    # no stored training set here: D/Q's statistics come from the sampler's real images
    assert scored["calibration_images"] == 2_000


def test_udr_across_seeds_from_the_kept_codes(tmp_path):
    """UDR per model from the codes the encoded_metrics evaluator keeps: two seeds that are a
    permutation of each other agree (high UDR), a third unrelated one does not; the result
    equals dlib.metrics.udr on the same arrays."""
    from dlib.metrics.udr import udr

    prov = results.Provenance("by hand").finish()
    study = studies.Study("t_udr", "by hand", (studies.Arm("beta_vae", ({"beta": 4.0},)),),
                          seeds=(0, 1, 2), metrics=("mig",))
    rs = np.random.RandomState(0)
    base = rs.randn(300, 4)
    index = np.arange(300, dtype=np.int64)
    codes = [np.c_[base, np.zeros((300, 2))], np.c_[np.zeros((300, 2)), base[:, ::-1]],
             np.c_[rs.randn(300, 4), np.zeros((300, 2))]]
    logvars = [np.where(c == 0, 0.0, -4.0) for c in codes]  # zero columns: inactive (KL 0)
    keys = []
    for seed in range(3):
        key = f"dsprites-beta_vae-beta4-seed{seed}"
        rec = {"key": key, "dataset": "dsprites", "method": "beta_vae",
               "setting": {"beta": 4.0}, "seed": seed, "scores": {"mig": 0.1},
               "arrays": ["udr_index", "udr_logvar", "udr_mean"]}
        results.save(f"t_udr/runs/{key}", rec, prov,
                     {"udr_index": index, "udr_mean": codes[seed].astype(np.float16),
                      "udr_logvar": logvars[seed].astype(np.float16)}, root=tmp_path)
        keys.append(key)
    results.save("t_udr/index", {"format": "dlib-study/1", "study": "t_udr", "description": "",
                                 "declaration": study.to_dict(), "scale": {"name": "tiny"},
                                 "steps": 8, "planned_models": 3, "finished_models": 3,
                                 "complete": True, "models": keys}, prov, root=tmp_path)
    got = studies.load("t_udr", root=tmp_path).udr()
    assert set(got) == set(keys)
    # the median over two partners is their mean: ~0.9 (the permuted twin) and 0 (unrelated)
    assert got[keys[0]] > 0.35 and got[keys[1]] > 0.35 and got[keys[2]] < 0.1
    f16 = [c.astype(np.float16).astype(np.float32) for c in codes]
    kl = [0.5 * (c**2 + np.exp(lv) - 1 - lv).mean(0) for c, lv in zip(f16, logvars, strict=True)]
    want = udr(f16, kl, include_raw_correlations=False)["model_scores"]
    np.testing.assert_allclose([got[k] for k in keys], want, rtol=1e-6)


def test_a_narrower_scale_narrows_factorvaes_discriminator_too():
    from dlib.scales import SCALES
    from dlib.studies.trainable import build_methods

    point = {"dataset": "dsprites", "method": "factor_vae", "setting": {"gamma": 40.0}}
    methods, options = build_methods(point, [0], 100, 64, (1, 32, 32), 1000, SCALES["cpu"])
    assert options["d_hidden"] == 500 and options["width"] == 0.5
    assert methods[0].discriminator.body[0].out_features == 500
    _, full = build_methods(point, [0], 100, 64, (1, 64, 64), 1000, SCALES["full"])
    assert "d_hidden" not in full  # the paper's 1000 units at full scale


def test_the_cpu_scales_change_annealed_vaes_gamma_and_a_setting_still_wins():
    import dataclasses

    from dlib.scales import SCALES
    from dlib.studies.trainable import build_methods

    point = {"dataset": "dsprites", "method": "annealed_vae", "setting": {"c_max": 25.0}}
    for name in ("cpu", "cpu_short"):
        methods, options = build_methods(point, [0], 100, 64, (1, 32, 32), 1000, SCALES[name])
        assert options["gamma"] == 50.0 and methods[0].config.gamma == 50.0
        assert methods[0].config.c_max == 25.0 and options["iteration_threshold"] == 33
    _, full = build_methods(point, [0], 100, 64, (1, 64, 64), 1000, SCALES["full"])
    assert "gamma" not in full  # the study's 1000 at full scale
    with_gamma = {**point, "setting": {"c_max": 25.0, "gamma": 1000.0}}
    _, opts = build_methods(with_gamma, [0], 100, 64, (1, 32, 32), 1000, SCALES["cpu"])
    assert opts["gamma"] == 1000.0
    # a trial's config carries the scale as a dict: the method options survive the round trip
    cpu = SCALES["cpu"]
    assert type(cpu)(**dataclasses.asdict(cpu)).options_of("annealed_vae") == {"gamma": 50.0}
    assert cpu.options_of("beta_vae") == {}


def test_trials_run_method_by_method_and_seed_by_seed_over_the_grid():
    from dlib.studies.runner import trial_jobs
    from dlib.studies.trainable import trial_key

    study = studies.Study("t", "t", (studies.Arm("beta_vae", ({"beta": 1.0}, {"beta": 4.0})),
                                     studies.Arm("factor_vae", ({"gamma": 10.0},))),
                          seeds=(0, 1, 2))
    jobs = trial_jobs(study)
    assert [(j["point"]["method"], j["point"]["setting"], j["seeds"]) for j in jobs] == [
        ("beta_vae", {"beta": 1.0}, [0]), ("beta_vae", {"beta": 4.0}, [0]),
        ("beta_vae", {"beta": 1.0}, [1]), ("beta_vae", {"beta": 4.0}, [1]),
        ("beta_vae", {"beta": 1.0}, [2]), ("beta_vae", {"beta": 4.0}, [2]),
        ("factor_vae", {"gamma": 10.0}, [0]), ("factor_vae", {"gamma": 10.0}, [1]),
        ("factor_vae", {"gamma": 10.0}, [2])]
    done = {trial_key(jobs[0]["point"], 0), trial_key(jobs[0]["point"], 1)}
    left = trial_jobs(study, methods=["beta_vae"], done=done)
    assert len(left) == 4 and jobs[0] not in left and jobs[2] not in left
    two = studies.Study("t2", "t", study.arms, seeds=(0,), datasets=("dsprites", "shapes3d"))
    only = trial_jobs(two, methods=["factor_vae"], datasets=["shapes3d"])
    assert [(j["point"]["dataset"], j["point"]["method"]) for j in only] == [
        ("shapes3d", "factor_vae")]
    with pytest.raises(ValueError, match="no dataset"):
        studies.run(two, datasets=["mnist"], storage="/nonexistent")
    pairs = trial_jobs(study, seeds_per_trial=2, done=done)
    assert [j["seeds"] for j in pairs] == [[0, 1], [2], [2], [0, 1], [2]]
    assert pairs[0]["point"]["setting"] == {"beta": 4.0}  # β = 1's pair (0, 1) is done


def test_first_settings_start_before_the_rest_seed_by_seed():
    from dlib.studies.runner import parse_setting, trial_jobs

    study = studies.Study("t", "t", (studies.Arm("beta_vae", ({"beta": 1.0}, {"beta": 4.0})),
                                     studies.Arm("factor_vae", ({"gamma": 10.0},
                                                                {"gamma": 40.0}))),
                          seeds=(0, 1))
    first = [parse_setting("factor_vae:gamma=40"), parse_setting("beta_vae:beta=4")]
    jobs = trial_jobs(study, first=first)
    assert [(j["point"]["method"], j["point"]["setting"], j["seeds"]) for j in jobs] == [
        ("factor_vae", {"gamma": 40.0}, [0]), ("beta_vae", {"beta": 4.0}, [0]),
        ("factor_vae", {"gamma": 40.0}, [1]), ("beta_vae", {"beta": 4.0}, [1]),
        ("beta_vae", {"beta": 1.0}, [0]), ("beta_vae", {"beta": 1.0}, [1]),
        ("factor_vae", {"gamma": 10.0}, [0]), ("factor_vae", {"gamma": 10.0}, [1])]
    assert sorted(map(str, jobs)) == sorted(map(str, trial_jobs(study)))  # the same trials
    assert parse_setting("beta_vae") == ("beta_vae", {})
    assert [j["point"]["method"] for j in trial_jobs(study, first=[("beta_vae", {})])][:4] == [
        "beta_vae"] * 4
    with pytest.raises(ValueError, match="matches"):
        trial_jobs(study, first=[parse_setting("factor_vae:gamma=7")])
    # a key the setting leaves out takes the method's default: OAT's default rule alone
    oat = studies.Study("o", "o", (studies.Arm("oat", ({}, {"saturation_min_kl": 0.5})),),
                        seeds=(0, 1, 2))
    picked = trial_jobs(oat, first=[parse_setting("oat:saturation_min_kl=0")])
    assert [(j["point"]["setting"], j["seeds"]) for j in picked][:3] == [
        ({}, [0]), ({}, [1]), ({}, [2])]
    assert [j["point"]["setting"] for j in picked][3:] == [{"saturation_min_kl": 0.5}] * 3
    with pytest.raises(ValueError, match="key=value"):
        parse_setting("factor_vae:gamma")
    with pytest.raises(ValueError, match="not a number"):
        parse_setting("factor_vae:gamma=big")


def test_export_leaves_out_models_trained_before_the_scale_changed_their_options():
    from dlib.scales import SCALES
    from dlib.studies.runner import _current

    def rec(key, method, setting, options):
        return {"key": key, "method": method, "setting": setting, "options": options}, None

    records = [rec("old", "annealed_vae", {"c_max": 25.0}, {"c_max": 25.0, "lr": 1e-3}),
               rec("new", "annealed_vae", {"c_max": 25.0}, {"c_max": 25.0, "gamma": 50.0}),
               rec("own", "annealed_vae", {"gamma": 1000.0}, {"gamma": 1000.0}),  # its setting
               rec("other", "beta_vae", {"beta": 4.0}, {"beta": 4.0})]
    keep, stale = _current(records, SCALES["cpu"])
    assert [r["key"] for r, _ in keep] == ["new", "own", "other"] and stale == ["old"]
    keep, stale = _current(records, SCALES["full"])  # the full scale changes nothing
    assert len(keep) == 4 and stale == []


def test_exported_models_of_an_old_option_are_retrained_and_set_aside(tmp_path):
    """A model exported before the scale changed its method's options is not 'done' (the next
    run trains it again) and an export moves it to ``superseded/`` with its arrays."""
    import json

    from dlib.scales import SCALES
    from dlib.studies.runner import _exported_models, _set_aside, exported_keys

    cpu, study = SCALES["cpu"], studies.get("locatello")
    folder = tmp_path / "locatello"
    (folder / "runs").mkdir(parents=True)
    models = {"dsprites-annealed_vae-c_max5-seed0": ("annealed_vae", {"gamma": 250.0}),
              "dsprites-annealed_vae-c_max10-seed0": ("annealed_vae", {"gamma": 50.0}),
              "dsprites-beta_vae-beta4-seed0": ("beta_vae", {"beta": 4.0})}
    for key, (method, options) in models.items():
        (folder / "runs" / f"{key}.json").write_text(json.dumps(
            {"key": key, "method": method, "setting": {}, "options": options}))
        (folder / "runs" / f"{key}.npz").write_bytes(b"arrays")
    (folder / "runs" / "dsprites-annealed_vae-c_max5-seed0x.json").write_text("{}")  # a neighbour
    index = {"scale": {"name": "cpu"}, "steps": trial_steps(study, cpu), "models": list(models)}
    (folder / "index.json").write_text(json.dumps(index))
    current, old = _exported_models(study, cpu, None, tmp_path)
    assert old == ["dsprites-annealed_vae-c_max5-seed0"] and len(current) == 2
    assert exported_keys(study, cpu, None, tmp_path) == set(current)
    _set_aside(folder, old)
    assert sorted(p.name for p in (folder / "superseded").iterdir()) == [
        "dsprites-annealed_vae-c_max5-seed0.json", "dsprites-annealed_vae-c_max5-seed0.npz"]
    assert (folder / "runs" / "dsprites-annealed_vae-c_max5-seed0x.json").exists()
    assert _exported_models(study, cpu, None, tmp_path) == (current, [])


def test_run_options_follow_the_grid_point_and_stale_ones_are_retrained():
    """OAT's minimum time per z1 dimension is a share of the OAT phase per dimension, so the
    ablation's K = 5 gets twice K = 10's; a model trained with K = 10's schedule at K = 5 (the
    bug this guards against) is not current, and scale options are not touched. DEFT's record
    steps are the sum of its stages, so its options are checked against the requested steps
    where the record keeps them (older DEFT records cannot be checked)."""
    import json

    from dlib.methods.oat import schedule_for
    from dlib.scales import SCALES
    from dlib.studies.runner import is_current

    k5 = registry.run_options("oat", steps=13_333, setting={"num_z1": 5})
    assert k5 == schedule_for(13_333, num_z1=5) != registry.run_options("oat", steps=13_333)
    assert k5["min_dim_steps"] == 1_200 and registry.run_options(
        "oat", steps=13_333)["min_dim_steps"] == 600
    cpu = SCALES["cpu"]
    record = {"method": "oat", "steps": 13_333, "batch_size": 128, "dataset": "dsprites",
              "setting": {"num_z1": 5}, "options": {**k5, "num_z1": 5, "width": 0.5}}
    assert is_current(record, cpu)
    assert not is_current({**record, "options": {**record["options"], "min_dim_steps": 600}}, cpu)
    assert is_current({**record, "setting": {"num_z2": 5}, "options": {
        **schedule_for(13_333), "num_z2": 5}}, cpu)
    deft = {"method": "deft", "steps": 8_832, "batch_size": 64, "dataset": "dsprites",
            "setting": {}, "options": {"stage_steps": [768, 768, 1536, 5760],
                                       "pressure_scale": 0.25}}
    assert is_current(deft, cpu) and not is_current(
        {**deft, "options": {"stage_steps": [768, 768, 1536, 5760]}}, cpu)
    # a DEFT record that keeps its requested steps is checked against the stages they give
    derived = registry.run_options("deft", steps=10_000, dataset="dsprites", batch_size=64)
    assert list(derived["stage_steps"]) == [768, 768, 1536, 5760]
    kept = {**deft, "requested_steps": 10_000, "options": {
        **json.loads(json.dumps(derived)), "pressure_scale": 0.25}}
    assert is_current(kept, cpu)
    assert not is_current({**kept, "requested_steps": 20_000}, cpu)  # other stages
    for other in ({**kept["options"], "stage_steps": [678, 678, 1357, 5087]},
                  {**kept["options"], "gamma": 0.2}):
        assert not is_current({**kept, "options": other}, cpu)


def test_an_experiment_started_with_old_options_is_not_resumed(tmp_path):
    import json

    from dlib.scales import SCALES
    from dlib.studies.runner import options_changed

    cpu = SCALES["cpu"]

    def state(options):
        trial = {"status": "RUNNING", "config": {"scale": {"method_options": options}}}
        (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text(
            json.dumps({"trial_data": [[json.dumps(trial), "{}"]]}))

    state({**cpu.method_options, "annealed_vae": {"gamma": 250.0}})
    assert options_changed(tmp_path, cpu)
    state(cpu.method_options)
    assert not options_changed(tmp_path, cpu)
    assert not options_changed(tmp_path / "nothing", cpu)


def test_retraining_sets_aside_an_ended_experiment_and_resumes_an_unfinished_one(
        tmp_path, monkeypatch):
    """``--retrain`` on an experiment whose trials have all ended would restore it and train
    nothing: it is set aside for a new one. An unfinished one (a retraining cut short) resumes,
    and a plain run leaves an ended experiment alone."""
    import json

    from dlib.studies import runner

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):  # after the set-aside decision, before Ray starts
        raise Stop

    monkeypatch.setattr(runner, "_init_ray", stop)
    monkeypatch.setattr(runner, "tune_can_restore", lambda path: True)
    path = Path(runner.experiment_path("infogan", scale="quick", storage=tmp_path, seeds=[0]))

    def state(*statuses):
        path.mkdir(parents=True, exist_ok=True)
        trials = [[json.dumps({"status": s, "config": {"scale": {"method_options": {}}}}), "{}"]
                  for s in statuses]
        (path / "experiment_state-2026-01-01_00-00-00.json").write_text(
            json.dumps({"trial_data": trials}))

    state("TERMINATED", "TERMINATED")
    assert runner.experiment_finished(path)
    monkeypatch.setattr(runner, "options_changed", lambda path, sc: False)
    for retrain, set_aside in ((False, False), (True, True)):
        with pytest.raises(Stop):
            runner.run("infogan", scale="quick", seeds=[0], storage=tmp_path,
                       skip_exported=not retrain, out=tmp_path / "results")
        assert path.exists() != set_aside
        assert bool(list(tmp_path.glob(f"{path.name}.superseded-*"))) == set_aside
    state("TERMINATED", "RUNNING")
    assert not runner.experiment_finished(path)
    with pytest.raises(Stop):
        runner.run("infogan", scale="quick", seeds=[0], storage=tmp_path, skip_exported=False,
                   out=tmp_path / "results")
    assert path.exists() and len(list(tmp_path.glob(f"{path.name}.superseded-*"))) == 1
    assert not runner.experiment_finished(tmp_path / "nothing")


def test_the_cpu_scales_score_the_translation_metric_on_fewer_codes(monkeypatch):
    """The translation evaluator passes the scale's sizes (128 codes, one pair at the CPU
    scales) over its own defaults (512 codes, two pairs, kept at full scale)."""
    import dlib.metrics
    from dlib.scales import SCALES
    from dlib.studies.evaluators import Context, translation

    seen = []

    def fake_compute(name, data, represent, random_state, **options):
        seen.append((name, options))
        return {"translation_loss": 1.0, "num_dead_features": 0}

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def represent(self, x):
            return x.flatten(1)[:, :2]

        def decode_images(self, z):
            return z

    monkeypatch.setattr(dlib.metrics, "compute", fake_compute)
    study = studies.get("intervention")
    for name, want in (("cpu", (128, 128, 1)), ("cpu_short", (128, 128, 1)),
                       ("full", (512, 512, 2))):
        ctx = Context(Stub(), 0, 10, study, SCALES[name], None, None, "dsprites")
        out = translation(ctx)
        assert out["scores"]["translation_loss"] == 1.0
        options = seen[-1][1]
        assert seen[-1][0] == "translation"
        assert (options["num_train"], options["num_test"], options["num_pairs"]) == want


def test_failure_table_counts_mig_below_a_tenth_and_can_leave_out_untrained_arms(tmp_path):
    """Four DEFT models (one below 0.1) and two β-VAE models (both below) on dSprites: the
    rates, their Wilson intervals and the paper's column; trained_only drops the rest."""
    from dlib.results import Result
    from dlib.studies.reading import StudyResult, wilson_interval

    decl = studies.get("deft").to_dict()
    index = Result(tmp_path / "index.json", {"declaration": decl, "provenance": {}})
    migs = {"deft": (0.05, 0.2, 0.3, 0.15), "beta_vae": (0.02, 0.09)}
    runs = [Result(tmp_path / f"{m}{i}.json",
                   {"key": f"{m}-{i}", "method": m, "dataset": "dsprites", "setting": {},
                    "seed": i, "scores": {"mig": v}})
            for m, values in migs.items() for i, v in enumerate(values)]
    res = StudyResult(index, runs)
    assert res.failure_rate("deft", "dsprites") == (25.0, 4)
    assert res.failure_rate("beta_vae", "dsprites") == (100.0, 2)
    assert np.isnan(res.failure_rate("factor_vae", "dsprites")[0])
    full = res.failure_table(studies.DEFT_PAPER_TABLE2)
    assert len(full.rows) == 7 and len(full.header) == 1 + 2 * 2  # every arm, both datasets
    short = res.failure_table(studies.DEFT_PAPER_TABLE2, trained_only=True)
    assert short.header == ["method", "dsprites: ours", "dsprites: paper"]
    low, high = wilson_interval(1, 4)
    assert short.rows[0] == ["DEFT", f"25 % [{low:.0f}, {high:.0f}] (n=4)", "8.0 %"]
    assert short.rows[1][0] == "β-VAE" and short.rows[1][2] == "47.7 %"
    assert len(short.rows) == 2


def test_features_of_several_dimensions_reach_the_metrics_that_read_features():
    """The intervention-based model's code of K_Z features of D_Z dimensions is scored by
    feature where the metric reads features (SAP, the translation metric), and SAP then
    equals the grouped SAP computed by hand on the same codes."""
    from dlib.methods import Intervention
    from dlib.metrics.sap import sap
    from dlib.metrics.toy import FactorsAsObservations

    torch.manual_seed(0)
    grouped = Intervention((3, 32, 32), num_features=2, feature_dim=4).eval()
    plain = Intervention((3, 32, 32)).eval()
    assert _ctx(grouped).options("sap") == {"feature_dim": 4}
    assert _ctx(grouped).options("translation")["feature_dim"] == 4
    assert "feature_dim" not in _ctx(grouped).options("dci")  # reads dimensions
    assert _ctx(plain).options("sap") == {}

    class Images(FactorsAsObservations):  # the factors drawn as 3 × 32 × 32 images
        def sample_observations_from_factors(self, factors, random_state):
            x = super().sample_observations_from_factors(factors, random_state)
            v = x.reshape(len(x), -1)[:, [0, 1, 0]] / 4.0
            return np.ascontiguousarray(np.broadcast_to(v[:, None, None], (len(x), 32, 32, 3)))

    data = Images((3, 4))
    study = studies.Study("t", "t", (studies.Arm("intervention"),), metrics=("sap",))
    scale = Scale("tiny", "test", steps=8, metrics={"sap": {"num_train": 60, "num_test": 40}})
    ctx = Context(grouped, 0, 8, study, scale, data, None, "toy")
    got = EVALUATORS["metrics"].final(ctx)["scores"]["sap"]
    from dlib.metrics.utils import sample_codes_factors, torch_representation

    rs = np.random.RandomState(0)  # the metric's own draws, repeated
    represent = torch_representation(grouped.represent, device="cpu")
    z_tr, f_tr = sample_codes_factors(data, represent, 60, rs)
    z_te, f_te = sample_codes_factors(data, represent, 40, rs)
    assert got == pytest.approx(sap(z_tr, f_tr, z_te, f_te, feature_dim=4)["SAP_score"])


def test_an_export_during_a_run_names_that_run_not_the_previous_one():
    from dlib.studies.runner import unended_run

    ended = [{"command": "run 1", "commit": "aaa", "started_utc": "2026-12-03T10:00:00Z",
              "wall_s": 3600.0}]
    old = {"command": "run 1", "commit": "aaa", "started_utc": "2026-12-03T10:30:00Z"}
    new = [{"command": "run 2", "commit": "bbb", "started_utc": "2026-12-04T04:10:00Z"},
           {"command": "run 2", "commit": "bbb", "started_utc": "2026-12-04T03:38:06Z"}]
    assert unended_run(ended, [old]) is None  # every model belongs to an ended run
    going = unended_run(ended, [old, *new])
    assert going["commit"] == "bbb" and going["started_utc"] == "2026-12-04T03:38:06Z"
    assert going["ended"] is False and going["wall_s"] is None
    assert unended_run([], [old])["commit"] == "aaa"  # no run has ended yet
    # a model that started while run 1 was still going is run 1's
    assert unended_run(ended, [{**old, "started_utc": "2026-12-03T10:59:59Z"}]) is None


def test_status_counts_the_selection_it_was_given(tmp_path):
    """``status`` with ``methods``/``seeds`` counts that selection's models only (a run of one
    method once reported the whole study's exported models beside the selection's plan, and a
    negative remainder). Read against the committed CPU-scale results, whose seed-0 grid of
    every method is exported; ``tmp_path`` is an empty Ray storage (nothing started)."""
    where = {"scale": "cpu", "storage": tmp_path}
    one = studies.status("locatello", methods=["dip_vae_i"], seeds=[0], **where)
    assert (one["planned_models"], one["exported_models"], one["remaining_models"]) == (6, 6, 0)
    assert one["started"] is False
    every = studies.status("locatello", seeds=[0], **where)
    assert (every["planned_models"], every["exported_models"]) == (36, 36)
    retrain = studies.status("locatello", methods=["dip_vae_i"], seeds=[0], count_exported=False,
                             **where)
    assert (retrain["exported_models"], retrain["remaining_models"]) == (0, 6)
    whole = studies.status("locatello", **where)  # the study's own seeds: 6 × 6 × 3
    assert whole["planned_models"] == 108
    assert whole["remaining_models"] == 108 - whole["exported_models"] >= 0
