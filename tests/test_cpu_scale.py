"""The CPU scale: 32×32 dSprites, the narrow network, the bench's CPU limit, compact
checkpoints, and the scale's pipeline end to end at tiny size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlib.data import load, render_dsprites
from dlib.nets import Decoder, Encoder, channels, num_parameters

# ---- 32×32 rendering ---------------------------------------------------------------------------


def test_square_at_32_matches_an_independent_pixel_centre_test():
    # orientation 0 squares: a pixel is on iff its centre lies within 4.8·scale px (half of
    # 9.6 at 64×64) of the centre 8 + 16·pos, in output pixels
    rs = np.random.RandomState(0)
    scale = rs.choice(np.linspace(0.5, 1, 6), 20)
    px, py = rs.choice(np.linspace(0, 1, 32), (2, 20))
    img = render_dsprites(np.zeros(20), scale, np.zeros(20), px, py, "cpu", image_size=32)
    c = np.arange(32) + 0.5
    for i in range(20):
        cx, cy, h = 8 + 16 * px[i], 8 + 16 * py[i], 4.8 * scale[i]
        want = (np.abs(c[None, :] - cx) < h) & (np.abs(c[:, None] - cy) < h)
        np.testing.assert_array_equal(img[i].numpy().astype(bool), want)


def test_32_agrees_with_the_64_image_pooled():
    data64, data32 = load("dsprites"), load("dsprites", image_size=32)
    rs = np.random.RandomState(1)
    f = data64.sample_factors(300, rs)
    a = data64.images_from_classes(torch.as_tensor(f), "cpu").float()
    b = data32.images_from_classes(torch.as_tensor(f), "cpu").float()
    assert b.shape == (300, 1, 32, 32)
    pooled = torch.nn.functional.avg_pool2d(a, 2)
    # where all four 64-px pixels agree, the 32-px pixel (sampled at their shared corner)
    # nearly always agrees; disagreements lie on the shape's boundary only
    sure = (pooled == 0) | (pooled == 1)
    agree = (b == pooled)[sure].float().mean()
    assert agree > 0.995
    # same area (up to the boundary) and same centre of mass (within half an output pixel)
    area64, area32 = a.sum((1, 2, 3)) / 4, b.sum((1, 2, 3))
    assert ((area32 - area64).abs() / area64).max() < 0.25
    grid = torch.arange(32) + 0.5
    com32 = (b[:, 0].sum(1) * grid).sum(1) / area32
    grid64 = (torch.arange(64) + 0.5) / 2
    com64 = (a[:, 0].sum(1) * grid64).sum(1) / a.sum((1, 2, 3))
    assert (com32 - com64).abs().max() < 0.5


def test_32_needs_the_procedural_renderer_and_plain_dsprites(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        render_dsprites([0], [1.0], [0.0], [0.5], [0.5], "cpu", image_size=48)
    with pytest.raises(ValueError, match="drawn at"):
        load("noisy_dsprites", image_size=32)
    from dlib.data import save_dsprites_npz

    path = save_dsprites_npz(tmp_path / "t.npz", (1, 1, 1, 2, 2, 2), device="cpu")
    with pytest.raises(ValueError, match="procedural"):
        load("dsprites", path=path, md5=None, image_size=32)
    data = load("dsprites", image_size=32)
    assert data.observation_shape == (32, 32, 1) and data.image_shape == (1, 32, 32)
    with pytest.raises(ValueError, match="32, 32"):
        data.observe(torch.zeros(2, 1, 64, 64, dtype=torch.uint8))


def test_color_dsprites_at_32_is_the_32_px_sprite_in_one_colour_per_image():
    grey, color = load("dsprites", image_size=32), load("color_dsprites", image_size=32)
    assert color.observation_shape == (32, 32, 3) and color.factor_sizes == grey.factor_sizes
    f = grey.sample_factors(200, np.random.RandomState(3))
    binary = grey.images_from_classes(torch.as_tensor(f), "cpu")
    x = color.observe(binary, torch.Generator().manual_seed(0))
    assert x.shape == (200, 3, 32, 32)
    mask = binary.bool().expand(-1, 3, -1, -1)
    assert (x[~mask] == 0).all()  # black background
    # every channel of every sprite pixel holds that image's one colour, in [0.5, 1)
    lo = x.masked_fill(~mask, 2.0).amin((2, 3))
    hi = x.masked_fill(~mask, -1.0).amax((2, 3))
    assert torch.equal(lo, hi) and lo.min() >= 0.5 and hi.max() < 1.0
    assert lo.std(0).min() > 0.1  # the colour varies between images
    rs = np.random.RandomState(0)
    obs = color.sample_observations_from_factors(f[:5], rs)
    assert obs.shape == (5, 32, 32, 3)


# ---- the narrow network ------------------------------------------------------------------------
def test_default_network_is_the_reference():
    enc, dec = Encoder((1, 64, 64)), Decoder((1, 64, 64))
    shapes = [tuple(p.shape) for p in enc.parameters()] + [tuple(p.shape)
                                                           for p in dec.parameters()]
    assert shapes[:8] == [(32, 1, 4, 4), (32,), (32, 32, 4, 4), (32,), (64, 32, 2, 2), (64,),
                          (64, 64, 2, 2), (64,)]
    assert num_parameters(enc) + num_parameters(dec) == 690_517


@pytest.mark.parametrize("size,width", [(32, 0.5), (32, 1.0), (64, 0.5), (32, 0.25)])
def test_narrow_network_shapes(size, width):
    c1, c2, units = channels(width)
    assert (c1, c2, units) == (round(32 * width), round(64 * width), round(256 * width))
    enc, dec = Encoder((1, size, size), 10, width=width), Decoder((1, size, size), 10,
                                                                   width=width)
    convs = [m for m in enc.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == (4 if size == 64 else 3)
    assert convs[-1].out_channels == c2
    x = torch.rand(5, 1, size, size)
    mean, logvar = enc(x)
    assert mean.shape == logvar.shape == (5, 10)
    assert dec(mean).shape == (5, 1, size, size)
    with pytest.raises(ValueError, match="64×64 or 32×32"):
        Encoder((1, 48, 48), width=width)
    with pytest.raises(ValueError, match="width"):
        Encoder((1, size, size), width=0)


# ---- the bench's FLOP count --------------------------------------------------------------------
def test_layer_macs_by_hand():
    from dlib.bench import layer_macs, step_flops

    enc = [32 * 32 * 32 * 16, 32 * 16 * 16 * 32 * 16, 64 * 8 * 8 * 32 * 4, 64 * 4 * 4 * 64 * 4,
           1024 * 256, 256 * 10, 256 * 10]
    dec = [10 * 256, 256 * 1024, 64 * 4 * 4 * 64 * 16, 64 * 8 * 8 * 32 * 16,
           32 * 16 * 16 * 32 * 16, 32 * 32 * 32 * 1 * 16]
    got_e = [n for _, n in layer_macs(Encoder((1, 64, 64)), torch.zeros(1, 1, 64, 64))]
    got_d = [n for _, n in layer_macs(Decoder((1, 64, 64)), torch.zeros(1, 10))]
    assert sorted(got_e) == sorted(enc) and got_d == dec
    # backward = 2 × forward, except that the images need no gradient (first layer: 1 ×)
    assert step_flops((1, 64, 64), 2) == 2 * 2 * (3 * (sum(enc) + sum(dec)) - enc[0])


def test_bench_quick_reports_the_cpu_limit(tmp_path):
    import dlib.bench

    out = tmp_path / "b.json"
    assert dlib.bench.main(["--quick", "--methods", "beta_vae", "--json", str(out)]) == 0
    rec = dlib.bench.load(out)
    lim = rec["cpu_limit"]
    assert lim["matmul"]["gflops_best"] >= lim["matmul"]["gflops_median"] > 0
    assert lim["conv"]["gflops_best"] > 0 and len(lim["load_before"]) == 3
    for r in rec["rows"]:
        assert r["fraction_of_conv_limit"] == pytest.approx(
            r["gflops"] / lim["conv"]["gflops_best"], abs=2e-3)
    assert "commit" in rec["provenance"]


# ---- compact checkpoints -----------------------------------------------------------------------
def test_compact_round_trip(tmp_path):
    from dlib.compact import check_compact, load_compact, save_compact
    from dlib.data import save_dsprites_npz
    from dlib.methods import build
    from dlib.metrics import compute
    from dlib.metrics.encoded import EncodedData, encode_dataset
    from dlib.train import fit

    data = load("dsprites", path=save_dsprites_npz(tmp_path / "t.npz", (1, 3, 2, 4, 6, 6),
                                                   device="cpu"), md5=None)
    model = build("factor_vae", data.image_shape, seed=1, width=0.5)
    fit(model, data.to_device("cpu"), 30, batch_size=32, seed=0, show_progress=False)
    model.eval()

    def score(m):
        enc = EncodedData(data, encode_dataset(m.encode, data))
        return compute("factor_vae", enc, enc.mean, np.random.RandomState(0), num_train=50,
                       num_eval=50, batch_size=16, num_variance_estimate=512,
                       threshold=0.0)["eval_accuracy"]

    stored = score(model)
    path = save_compact(tmp_path / "m.pt", model, data, scores={"factor_vae": stored})
    # float16 encoder + decoder only (no discriminator, no optimiser state) + a 512×10 probe
    nets = num_parameters(model.encoder) + num_parameters(model.decoder)
    assert path.stat().st_size < 2 * nets + 40_000 < num_parameters(model) // 4
    again, record = load_compact(path)
    assert type(again).__name__ == "FactorVAE" and again.config == model.config
    assert record["scores"]["factor_vae"] == stored
    err = check_compact(again, record, data)
    assert 0 < err < 5e-3  # float16 weights: small but not zero
    assert abs(score(again) - stored) <= 0.06
    # a model with other weights fails the check clearly
    other = build("factor_vae", data.image_shape, seed=2, width=0.5).eval()
    assert check_compact(other, record, data) > 0.1
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="compact checkpoint"):
        load_compact(tmp_path / "bad.pt")


# ---- the scale end to end at tiny size ---------------------------------------------------------
TINY_METRICS = {
    "beta_vae": {"num_train": 20, "num_eval": 8, "batch_size": 8},
    "factor_vae": {"num_train": 20, "num_eval": 8, "batch_size": 8,
                   "num_variance_estimate": 256, "threshold": 0.0},
    "mig": {"num_train": 256}, "dci": {"num_train": 256, "num_test": 128},
    "sap": {"num_train": 256, "num_test": 128},
    "modularity_explicitness": {"num_train": 256, "num_test": 128},
    "irs": {"num_train": 256}, "unsupervised": {"num_train": 256},
}


def test_cpu_scale_end_to_end_tiny(tmp_path):
    from dlib.compact import load_compact
    from dlib.cpu_scale import train_and_score
    from dlib.scales import get

    cpu = get("cpu").replace(steps=6)
    payload, arrays = train_and_score(
        "beta_vae", {"beta": 4.0}, 0, image_size=cpu.image_size, width=cpu.width,
        steps=cpu.steps, batch_size=cpu.batch_size, lr=cpu.learning_rate, metrics=TINY_METRICS,
        threads=None, log_every=3, compact=tmp_path / "c.pt")
    s = payload["scores"]
    assert set(s) >= {"factor_vae", "mig", "dci", "sap", "irs", "gaussian_tc_mean",
                      "gaussian_tc_sampled", "recon", "active_dims"}
    assert all(np.isfinite(v) for v in s.values())
    assert payload["history"]["step"] == [3, 6]
    r2 = np.asarray(payload["factor_latent_r2"])
    assert r2.shape == (5, 10) and (r2 >= 0).all() and (r2 <= 1 + 1e-9).all()
    assert arrays["traversal"].shape == (10, 9, 1, cpu.image_size, cpu.image_size)
    assert set(payload["phases"]) == {"data", "train", "encode", "score", "extras"}
    model, record = load_compact(tmp_path / "c.pt")
    assert model.image_shape == (1, cpu.image_size, cpu.image_size)


def test_factor_latent_r2_by_hand():
    from dlib.cpu_scale import factor_latent_r2

    sizes = (2, 3)
    f = np.stack(np.unravel_index(np.arange(6), sizes), axis=1).astype(float)
    codes = np.stack([f[:, 0], f[:, 1], f[:, 0] + f[:, 1]], axis=1)
    r2 = factor_latent_r2(codes, sizes)
    np.testing.assert_allclose(r2[:, 0], [1, 0])
    np.testing.assert_allclose(r2[:, 1], [0, 1])
    v0, v1 = np.var([0, 1]), np.var([0, 1, 2])
    np.testing.assert_allclose(r2[:, 2], [v0 / (v0 + v1), v1 / (v0 + v1)])


def test_cpu_scale_entry_and_caption():
    from dlib.scales import get

    cpu = get("cpu")
    assert (cpu.image_size, cpu.width, cpu.batch_size) == (32, 0.5, 64)
    cap = cpu.caption()
    assert "32×32" in cap and "× 0.5" in cap and "first conv layer" in cap
    assert "chosen by measurement" in cpu.description and "not the papers'" in cpu.description
    short = get("cpu_short")
    assert short.replace(steps=cpu.steps) == cpu.replace(name="cpu_short",
                                                         description=short.description)
    assert short.steps == cpu.steps // 2 and "20,000 steps" in short.caption()
    assert "first conv" not in get("full").caption()


def test_recipe_card_reads_probes_at_the_scale(tmp_path):
    import json

    from dlib.cpu_scale import recipe_card
    from dlib.scales import get

    cpu = get("cpu")
    folder = tmp_path / "cpu_scale"
    folder.mkdir()
    assert recipe_card(root=tmp_path)["status"].startswith("no probe")

    def probe(seed, fvae, mig, steps=cpu.steps):
        scores = {"factor_vae": fvae, "mig": mig, "dci": 0.3, "beta_vae": 0.8, "recon": 30.0,
                  "kl": 6.0, "active_dims": 5}
        phase = {"seconds": 100.0, "load_before": [1.0, 1, 1], "load_after": [1.0, 1, 1]}
        d = {"provenance": {"device": "cpu (x, 2 threads)"}, "method": "beta_vae",
             "setting": {"beta": 4.0}, "seed": seed, "scores": scores, "model_seconds": 300,
             "scale": {"image_size": cpu.image_size, "width": cpu.width, "steps": steps,
                       "batch_size": cpu.batch_size, "learning_rate": cpu.learning_rate,
                       "threads": 1},
             "phases": {p: phase for p in ("train", "encode", "score")}}
        (folder / f"p{seed}_{steps}.json").write_text(json.dumps(d))

    probe(0, 0.7, 0.2)
    probe(1, 0.5, 0.1)
    probe(2, 0.9, 0.9, steps=cpu.steps + 1)  # another scale: not counted
    card = recipe_card(root=tmp_path)
    assert card["seeds"] == 2 and card["factor_vae"] == [0.6, 0.141]  # sample sd (n − 1)
    assert card["gates"]["factor_vae"] == "missed (only 2 seed(s))"
    probe(3, 0.8, 0.3)
    card = recipe_card(root=tmp_path)
    assert card["factor_vae"][0] == 0.667 and card["mig"][0] == 0.2  # rounded to 3 places
    assert card["gates"] == {"factor_vae": "met", "mig": "met"}
    assert card["score_seconds"] == [200.0, 0.0]

    # the summaries the book shows, over the same probes (seed 2 is at another step count)
    from dlib.cpu_scale import gate_rows, method_rows, results_table, shown_scale, sweep_rows

    rows = gate_rows(root=tmp_path)
    assert [(r["steps"], r["seeds"], r["gates"]) for r in rows] == [
        (cpu.steps, [0, 1, 3], "met"), (cpu.steps + 1, [2], "too few seeds")]
    assert rows[0]["core_minutes"] == pytest.approx(300 / 60)  # wall time: no CPU time recorded
    (sweep,) = sweep_rows(root=tmp_path)
    assert sweep["beta"] == 4.0 and sweep["mig"][0] == pytest.approx(0.2)
    assert sweep["factor_vae"][1] == pytest.approx(np.std([0.7, 0.5, 0.8], ddof=1))
    assert shown_scale(root=tmp_path) == "cpu_short"  # FactorVAE and β-TCVAE have no models
    for method, setting in (("factor_vae", {"gamma": 40.0}), ("beta_tc_vae", {"beta": 6.0})):
        for seed in (0, 1):
            d = json.loads((folder / f"p{seed}_{cpu.steps}.json").read_text())
            d.update(method=method, setting=setting)
            (folder / f"{method}_{seed}.json").write_text(json.dumps(d))
        assert shown_scale(root=tmp_path) == ("cpu" if method == "beta_tc_vae" else "cpu_short")
        assert shown_scale(3, root=tmp_path) == "cpu_short"  # one of them has two seeds only
    for method in ("factor_vae", "beta_tc_vae"):
        for seed in (0, 1):
            (folder / f"{method}_{seed}.json").unlink()
    (row,) = method_rows(root=tmp_path)
    assert row["label"] == "β-VAE (β = 4)" and row["seeds"] == [0, 1, 3]
    table = results_table([row], "label", "method")
    assert table.rows[0][:3] == ["β-VAE (β = 4)", "3", "0.667 ± 0.153"]


def test_the_study_models_replace_the_probes_of_their_seed(tmp_path):
    """Where the study has a model of a setting and seed at the scale, the book's tables show
    it (in the probes' form); the probes of seeds and settings the study has not trained yet
    stay."""
    import dataclasses
    import json

    from dlib import results
    from dlib.cpu_scale import models, seed_traversal, study_models, sweep_rows
    from dlib.scales import get
    from dlib.studies.reading import INDEX_FORMAT

    cpu = get("cpu")
    folder = tmp_path / "cpu_scale"
    folder.mkdir()
    for beta, seed in ((4.0, 0), (4.0, 2), (8.0, 0)):  # the study below trains β = 4, seeds 0, 1
        d = {"method": "beta_vae", "setting": {"beta": beta}, "seed": seed,
             "scores": {"factor_vae": 0.7 if seed == 2 else 0.1, "mig": 0.1, "dci": 0.1,
                        "recon": 50.0, "kl": 3.0,
                        "active_dims": 3},
             "scale": {"image_size": cpu.image_size, "width": cpu.width, "steps": cpu.steps,
                       "batch_size": cpu.batch_size, "learning_rate": cpu.learning_rate},
             "phases": {"train": {"seconds": 1.0}}, "kl_dims": [1.0] * 3 + [0.0] * 7}
        (folder / f"b{beta:g}_s{seed}.json").write_text(json.dumps(d))
    prov = {"command": "test", "commit": "0" * 40, "device": "cpu", "started_utc": "x",
            "wall_s": 1.0}
    keys = []
    r2 = np.zeros((5, 10))
    r2[3, 0], r2[4, 1], r2[1, 2], r2[4, 5] = 0.9, 0.8, 0.7, 0.3  # posX, posY, scale; posY twice
    for seed, fvae in ((0, 0.6), (1, 0.8)):
        key = f"dsprites-beta_vae-beta4-seed{seed}"
        kl_all = [3.0, 2.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
        record = {"key": key, "dataset": "dsprites", "method": "beta_vae",
                  "setting": {"beta": 4.0}, "seed": seed, "options": {"lr": cpu.learning_rate},
                  "steps": cpu.steps, "batch_size": cpu.batch_size, "scale": "cpu",
                  "scores": {"factor_vae": fvae, "mig": 0.2, "dci": 0.3, "recon": 30.0,
                             "gaussian_tc": 1.5},
                  "kl": [9.0] * 10, "kl_all": kl_all, "factor_latent_r2": r2.tolist(),
                  "arrays": ["traversal"]}
        trav = np.full((10, 9, 1, 32, 32), seed, np.uint8)
        results.save(f"locatello/runs/{key}", record, {**prov, "trial_wall_s": 900.0},
                     {"traversal": trav}, root=tmp_path)
        keys.append(key)
    index = {"format": INDEX_FORMAT, "study": "locatello", "description": "test",
             "declaration": {"arms": [{"method": "beta_vae", "settings": [{"beta": 4.0}]}]},
             "scale": dataclasses.asdict(cpu), "steps": cpu.steps, "planned_models": 2,
             "finished_models": 2, "complete": True, "models": keys}
    results.save("locatello/index", index, prov, root=tmp_path)

    study = study_models(root=tmp_path)
    assert len(study) == 2 and study[0]["scores"]["kl"] == pytest.approx(6.5)
    assert study[0]["scores"]["active_dims"] == 4 and study[0]["scores"]["gaussian_tc_mean"] == 1.5
    moves = study[0]["moves_in_one_latent"]
    assert moves["posX"] == {"latent": 0, "r2": 0.9, "second_r2": 0.0}
    assert moves["posY"]["latent"] == 1 and moves["posY"]["second_r2"] == pytest.approx(0.3)
    assert study_models("cpu_short", root=tmp_path) == []  # another scale's export: none
    every = models(root=tmp_path)
    assert sorted((d["setting"]["beta"], d["seed"], str(d.get("source"))) for d in every) == [
        (4.0, 0, "locatello"), (4.0, 1, "locatello"), (4.0, 2, "None"), (8.0, 0, "None")]
    rows = sweep_rows(root=tmp_path)
    assert [(r["beta"], r["seeds"]) for r in rows] == [(4.0, [0, 1, 2]), (8.0, [0])]
    assert rows[0]["factor_vae"][0] == pytest.approx(0.7)
    from dlib.cpu_scale import results_table

    table = results_table(rows, "beta", "β")
    assert table.rows[0][2] == "0.700 ± 0.100" and table.rows[1][2] == "0.100"  # one seed
    assert rows[0]["factor_vae"][1] == pytest.approx(np.std([0.6, 0.8, 0.7], ddof=1))
    from dlib.cpu_scale import spread_rows

    (spread,) = spread_rows(root=tmp_path)  # the β = 8 probe has no R² map: left out
    assert spread["beta"] == 4.0 and spread["seeds"] == 2
    # active latents 0, 1, 2, 5: posX in latent 0, posY in 1 and 5, scale in 2, none of shape
    assert (spread["posX"], spread["posY"], spread["scale"], spread["shape"]) == (1, 2, 1, 0)
    images, run = seed_traversal("beta_vae", {"beta": 4.0}, "worst", root=tmp_path)
    assert run["seed"] == 0 and images.shape == (4, 9, 1, 32, 32) and images.max() == 0


# ---- the checkpoints the book ships -------------------------------------------------------------
def _shipped() -> list:
    from dlib.results import results_dir

    return sorted((results_dir() / "cpu_scale").glob("*.pt"))


def test_the_book_ships_checkpoints_within_budget():
    shipped = _shipped()
    assert shipped, "book/results/cpu_scale/ holds no compact checkpoint"
    total = sum(p.stat().st_size for p in shipped)
    assert total < 20 * 2**20, f"shipped checkpoints take {total / 2**20:.1f} MB (budget 20 MB)"


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.stem)
def test_shipped_checkpoint_loads_and_matches_its_probe(path):
    """Every shipped checkpoint: loads into its method, has a clean-tree result beside it, and
    reproduces the full-precision codes stored at training time (float16 weights)."""
    from dlib.compact import check_compact, load_beside
    from dlib.results import load as load_result

    result = load_result(f"cpu_scale/{path.stem}")
    assert result is not None, f"{path.name} has no result JSON beside it"
    assert result.provenance["dirty"] is False and len(result.provenance["commit"]) == 40
    model, record = load_beside(result)
    assert record["scores"] == pytest.approx(result.data["scores"])
    data = load(record["dataset"]["name"], image_size=record["dataset"]["image_size"])
    assert check_compact(model, record, data) < 5e-3


def test_shipped_checkpoint_reproduces_its_stored_scores():
    """The model chapter 20 builds its twin from: MIG and SAP recomputed from the float16
    checkpoint, on the same samples as the stored study-settings suite (each metric's own
    RandomState(0), encoding on demand), agree with the stored scores."""
    from dlib.compact import load_beside
    from dlib.metrics import compute, torch_representation
    from dlib.results import load as load_result

    result = load_result("cpu_scale/beta_vae_beta4_px32_w0.5_n40000_lr0.001_b64_s0")
    model, record = load_beside(result)
    data = load("dsprites", image_size=record["dataset"]["image_size"])
    rep = torch_representation(model.represent)
    suite = result.data["suite"]
    mig = compute("mig", data, rep, np.random.RandomState(0))["discrete_mig"]
    assert mig == pytest.approx(suite["mig"]["discrete_mig"], abs=0.01)
    sap = compute("sap", data, rep, np.random.RandomState(0))["SAP_score"]
    assert sap == pytest.approx(suite["sap"]["SAP_score"], abs=0.01)


def test_cpu_variants_measure_each_variant():
    from dlib.bench import cpu_variants

    rows = cpu_variants(batch_size=4, steps=1, warmup=1, repeats=1,
                        networks=(("tiny", 32, 0.25),),
                        variants=(("eager", 1), ("channels_last", 1), ("nonsense", 1)))
    assert [r["variant"] for r in rows] == ["eager", "channels_last", "nonsense"]
    assert rows[0]["it_per_s"] > 0 and rows[1]["it_per_s"] > 0
    assert "unknown CPU variant" in rows[2]["error"]
    assert all(len(r["load"]) == 2 for r in rows)


def test_factor_kl_rows_credit_each_latent_to_its_factor(tmp_path):
    """Per-factor KL against AnnealedVAE's capacity, by hand: each active latent's KL goes to the
    factor of its best R² (or to "none"); settings and the method's other values are grouped."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    from dlib.cpu_scale import factor_kl_rows, method_rows, plot_factor_kl, plot_sweep
    from dlib.scales import get

    cpu = get("cpu")
    folder = tmp_path / "cpu_scale"
    folder.mkdir()
    names = ["shape", "scale", "orientation", "posX", "posY"]
    r2 = np.zeros((5, 10))
    r2[3, 0], r2[4, 1], r2[1, 2] = 0.9, 0.8, 0.5  # posX, posY, scale; latent 3 explains nothing
    for c_max, seed, kl in ((25.0, 0, [10, 8, 4, 2]), (25.0, 1, [12, 8, 2, 1]), (5.0, 0, [3, 2])):
        kl_dims = kl + [0.001] * (10 - len(kl))
        d = {"method": "annealed_vae", "setting": {"c_max": c_max}, "seed": seed,
             "scores": {"factor_vae": 0.5 + seed / 10, "mig": 0.2, "dci": 0.3,
                        "recon": 30.0 - c_max / 5, "kl": float(sum(kl_dims)),
                        "active_dims": len(kl)},
             "scale": {"image_size": cpu.image_size, "width": cpu.width, "steps": cpu.steps,
                       "batch_size": cpu.batch_size, "learning_rate": cpu.learning_rate},
             "phases": {"train": {"seconds": 1.0}}, "kl_dims": kl_dims,
             "factor_latent_r2": r2.tolist(), "factor_names": names}
        (folder / f"a{c_max:g}_s{seed}.json").write_text(json.dumps(d))
    low, high = factor_kl_rows(root=tmp_path)
    assert (low["c_max"], low["seeds"], high["seeds"]) == (5.0, [0], [0, 1])
    assert (low["posX"], low["posY"], low["scale"], low["none"]) == (3.0, 2.0, 0.0, 0.0)
    assert (high["posX"], high["posY"], high["scale"], high["none"]) == (11.0, 8.0, 3.0, 1.5)
    assert high["total"][0] == pytest.approx(23.5 + 0.006)  # inactive latents count in the total
    assert high["shape"] == high["orientation"] == 0.0
    (row,) = method_rows(root=tmp_path, settings=(("annealed_vae", {"c_max": 25.0}),
                                                  ("dip_vae_i", {"lambda_od": 10.0})))
    assert row["label"] == "AnnealedVAE (C_max = 25)" and row["seeds"] == [0, 1]
    assert factor_kl_rows("dip_vae_i", "lambda_od", root=tmp_path) == []
    ax = plot_factor_kl(root=tmp_path)
    assert len(ax.patches) == 2 * 6  # two capacities × (five factors + "none")
    rows = factor_kl_rows(root=tmp_path, by_seed=True)  # one row per model, no averaging
    assert [(r["c_max"], r["seeds"]) for r in rows] == [(5.0, [0]), (25.0, [0]), (25.0, [1])]
    assert (rows[1]["posX"], rows[1]["none"], rows[2]["posX"], rows[2]["none"]) == (10, 2, 12, 1)
    assert rows[2]["total"][0] == pytest.approx(23.006) and np.isnan(rows[2]["total"][1])
    ax = plot_factor_kl(root=tmp_path, by_seed=True)
    assert len(ax.patches) == 3 * 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5\ns0", "25\ns0", "25\ns1"]
    ax = plot_sweep("annealed_vae", "c_max", root=tmp_path)
    assert len(ax.collections) == 3 + 1  # three models + the legend's handle


def test_annealed_gamma_trace_follows_one_continuous_run():
    """The γ check logs each stage's batch means and the code's spread at the same steps, and
    builds the model with the CPU scale's sizes and the asked γ (not the scale's own)."""
    from dlib.cpu_scale import annealed_gamma_trace

    r = annealed_gamma_trace(1000.0, 0, steps=40, eval_every=20, num_eval=64)
    assert r["step"] == [20, 40] and len(r["recon"]) == len(r["spread"]) == 2
    assert r["options"]["gamma"] == 1000.0 and r["options"]["width"] == 0.5
    assert r["options"]["iteration_threshold"] == 13_333  # the 40k-step run's ramp
    assert r["capacity"][1] == pytest.approx(25.0 * 29.5 / 13_333)  # mean over steps 20–39
    assert all(np.isfinite(r["spread"])) and min(r["spread"]) > 0


def test_capacity_check_traces_the_asked_capacity():
    """The capacity check's runs ramp towards their own C_max (not the study's 25) and the
    grid holds every γ × C_max × seed once."""
    from dlib.cpu_scale import CAPACITY_CHECK, annealed_gamma_trace

    assert len(set(CAPACITY_CHECK)) == len(CAPACITY_CHECK) == 3 * 3 * 2
    r = annealed_gamma_trace(50.0, 1, steps=20, eval_every=20, num_eval=32, c_max=100.0)
    assert r["options"]["c_max"] == 100.0 and r["options"]["gamma"] == 50.0
    assert r["capacity"][0] == pytest.approx(100.0 * 9.5 / 13_333)  # mean over steps 0–19


def test_rate_check_trains_at_the_asked_learning_rate():
    """The rate check's grid holds each (γ, learning rate, seed) once at C_max = 25, and a
    trace at 10⁻⁴ builds its model with that rate (the scale's 10⁻³ otherwise)."""
    from dlib.cpu_scale import RATE_CHECK, annealed_gamma_trace

    assert len(set(RATE_CHECK)) == len(RATE_CHECK) == 12
    assert {c for _, c, _, _ in RATE_CHECK} == {25.0}
    slow = annealed_gamma_trace(50.0, 0, steps=20, eval_every=20, num_eval=32, lr=1e-4)
    fast = annealed_gamma_trace(50.0, 0, steps=20, eval_every=20, num_eval=32)
    assert slow["options"]["lr"] == 1e-4 and fast["options"]["lr"] == 1e-3
    assert slow["recon"][0] != fast["recon"][0]  # the rate reached the optimiser


def test_every_dsprites_factor_changes_a_quarter_of_the_pixels_at_32x32():
    """The count behind the CPU scale's DEFT pressures (``dlib.scales``): by hand on one
    traversal, and the ratio of the two sizes for every factor."""
    from dlib.cpu_scale import pixels_changed

    big, small = pixels_changed(64, traversals=3), pixels_changed(32, traversals=3)
    assert set(big) == set(small) == {"shape", "scale", "orientation", "posX", "posY"}
    for name in big:
        assert big[name] > 0 and 0.2 < small[name] / big[name] < 0.3, (name, big, small)
    # the first traversal of posX at 64×64, counted directly
    data = load("dsprites")
    rs = np.random.RandomState(0)
    classes = np.repeat(data.sample_factors(1, rs), 32, 0)
    classes[:, 3] = np.arange(32)
    images = data.images_from_classes(torch.as_tensor(classes), "cpu").numpy().astype(int)
    first = np.mean([np.sum(images[i + 1] != images[i]) for i in range(31)])
    assert first > 0
    # the count is over the same kind of traversal: one traversal's own count is close to the
    # mean over three (a sprite's outline is about the same length at every base)
    assert 0.5 < first / big["posX"] < 2.0


def test_best_r2_and_latents_per_factor_read_the_factor_latent_map():
    from dlib import cpu_scale

    run = {"factor_names": ["a", "b", "c"],
           "factor_latent_r2": [[0.9, 0.05, 0.2, 0.3],  # a: one strong latent, two weak above 0.1
                                [0.0, 0.02, 0.01, 0.0],  # b: not encoded
                                [0.0, 0.6, 0.0, 0.5]],  # c: two latents, one of them inactive
           "kl_dims": [2.0, 1.0, 0.5, 0.001]}
    assert cpu_scale.best_r2(run) == {"a": 0.9, "b": 0.02, "c": 0.6}
    assert cpu_scale.latents_per_factor(run) == {"a": 2, "b": 0, "c": 1}
    assert cpu_scale.latents_per_factor(run, threshold=0.5) == {"a": 1, "b": 0, "c": 1}
