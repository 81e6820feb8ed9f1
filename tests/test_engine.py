"""The batched engine (dlib.engine.fit_many) against separate eager runs of dlib.train.fit.

Model i of a batched run must see the batches and noise of ``fit(methods[i], seed=seeds[i])``
and end with the same losses, weights and optimiser states. Most tests swap in small MLP
networks (the engine is generic over the networks) so that they take a few seconds on a CPU;
one test runs the study's convolutional architecture through the vmapped path the GPU uses.
"""

import numpy as np
import pytest
import torch
from torch import nn

from dlib.data import load
from dlib.engine import check_compatible, fit_fast, fit_many, kernel_for
from dlib.engine.batched import BatchedTrainer
from dlib.methods import (
    AAE,
    DIPVAE,
    AnnealedVAE,
    BetaTCVAE,
    BetaVAE,
    FactorVAE,
    FactorVAEPrior,
    InfoGAN,
    seeded,
)
from dlib.train import History, TrainingDiverged, fit, load_checkpoint


@pytest.fixture(scope="module")
def data():
    return load("dsprites").to_device("cpu", num=128, seed=0)


class _Enc(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64 * 64, 24), nn.ReLU())
        self.mean, self.logvar = nn.Linear(24, d), nn.Linear(24, d)

    def forward(self, x):
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class _Dec(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 24), nn.ReLU(), nn.Linear(24, 64 * 64),
                                  nn.Unflatten(1, (1, 64, 64)))

    def forward(self, z):
        return self.body(z)


def small(cls, **kw):
    """A method of ``cls`` with small MLP networks (same objective, same training step)."""
    kw = {"num_latents": 3, "lr": 1e-3, **kw}
    if issubclass(cls, FactorVAE):
        kw = {"d_hidden": 16, "d_depth": 2, **kw}
    m = cls((1, 64, 64), **kw)
    with seeded(m.config.seed + 100):
        m.encoder, m.decoder = _Enc(m.config.num_latents), _Dec(m.config.num_latents)
    return m


def params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


FAMILIES = {
    "beta_vae": (BetaVAE, [dict(beta=1.0, seed=0), dict(beta=4.0, seed=1),
                           dict(beta=16.0, seed=2)]),
    "factor_vae": (FactorVAE, [dict(gamma=10.0, seed=0), dict(gamma=40.0, seed=1)]),
    "factor_vae_same": (FactorVAE, [dict(gamma=5.0, seed=0, permute="same"),
                                    dict(gamma=50.0, seed=3, permute="same", d_lr=3e-4)]),
    "beta_tc_vae": (BetaTCVAE, [dict(beta=2.0, seed=0, dataset_size=128),
                                dict(beta=8.0, seed=1, dataset_size=128)]),
    "beta_tc_vae_mws": (BetaTCVAE, [dict(beta=6.0, estimator="mws", dataset_size=1000),
                                    dict(beta=1.0, estimator="mws", dataset_size=1000, seed=4)]),
    "dip_vae_i": (DIPVAE, [dict(lambda_od=1.0, seed=0), dict(lambda_od=20.0, seed=1)]),
    "dip_vae_ii": (DIPVAE, [dict(lambda_od=2.0, dip_type="ii"),
                            dict(lambda_od=10.0, dip_type="ii", seed=1, lr=3e-4)]),
    "factor_vae_prior": (FactorVAEPrior, [dict(gamma=10.0, seed=0), dict(gamma=40.0, seed=1)]),
    "aae": (AAE, [dict(gamma=1.0, seed=0), dict(gamma=5.0, beta=0.5, seed=2)]),
    "annealed_vae": (AnnealedVAE, [dict(c_max=5.0, iteration_threshold=8),
                                   dict(c_max=25.0, gamma=100.0, iteration_threshold=30,
                                        seed=1)]),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_batched_equals_separate_runs(data, name):
    """Same batches and noise → the same loss history, weights and Adam states (loop path)."""
    cls, kws = FAMILIES[name]
    seeds = [10 + i for i in range(len(kws))]
    ref = [small(cls, **k) for k in kws]
    h_ref = [fit(m, data, 24, batch_size=8, seed=s, log_every=6, show_progress=False)
             for m, s in zip(ref, seeds, strict=True)]
    bat = [small(cls, **k) for k in kws]
    h_bat = fit_many(bat, data, 24, batch_size=8, seeds=seeds, log_every=6,
                     show_progress=False)
    assert len(h_bat) == len(bat)
    for a, b, ha, hb in zip(ref, bat, h_ref, h_bat, strict=True):
        assert ha.keys() == hb.keys()
        assert hb.steps == ha.steps == [6, 12, 18, 24]
        for key in ha.keys():
            np.testing.assert_allclose(hb[key], ha[key], rtol=1e-5, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(params(b), params(a), rtol=1e-5, atol=1e-6)
        assert int(b.step) == 24 and not b.training
        for opt_name, opt in a.optimizers.items():
            sa, sb = opt.state_dict(), b.optimizers[opt_name].state_dict()
            assert sa["state"].keys() == sb["state"].keys()
            for k, st in sa["state"].items():
                assert float(sb["state"][k]["step"]) == float(st["step"]) == 24
                for field in ("exp_avg", "exp_avg_sq"):
                    scale = float(st[field].abs().max())
                    torch.testing.assert_close(sb["state"][k][field], st[field],
                                               rtol=1e-4, atol=1e-4 * scale)
    # the histories are separable: the models' hyperparameters make them differ
    losses = [h["loss"] for h in h_bat]
    assert not np.allclose(losses[0], losses[1])


@pytest.mark.parametrize("name", ["beta_vae", "factor_vae", "beta_tc_vae", "dip_vae_ii",
                                  "annealed_vae", "factor_vae_prior"])
def test_vmapped_path_matches(data, name):
    """The vmapped computation (what runs on a GPU) follows the eager runs to float tolerance."""
    cls, kws = FAMILIES[name]
    seeds = [3 + i for i in range(len(kws))]
    ref = [small(cls, **k) for k in kws]
    h_ref = [fit(m, data, 12, batch_size=8, seed=s, log_every=4, show_progress=False)
             for m, s in zip(ref, seeds, strict=True)]
    bat = [small(cls, **k) for k in kws]
    h_bat = fit_many(bat, data, 12, batch_size=8, seeds=seeds, log_every=4,
                     show_progress=False, vectorize="vmap")
    for a, b, ha, hb in zip(ref, bat, h_ref, h_bat, strict=True):
        for key in ha.keys():
            np.testing.assert_allclose(hb[key], ha[key], rtol=1e-4, atol=1e-4, err_msg=key)
        # Adam moves every weight by about lr per step; differences stay far below that
        np.testing.assert_allclose(params(b), params(a), atol=1e-4)


def test_vmapped_conv_architecture(data):
    """The study's conv encoder/decoder batched by vmap (grouped convolutions)."""
    kws = [dict(beta=1.0, seed=0), dict(beta=6.0, seed=1)]
    ref = [BetaVAE((1, 64, 64), num_latents=4, **k) for k in kws]
    h_ref = [fit(m, data, 4, batch_size=4, seed=i, log_every=2, show_progress=False)
             for i, m in enumerate(ref)]
    bat = [BetaVAE((1, 64, 64), num_latents=4, **k) for k in kws]
    h_bat = fit_many(bat, data, 4, batch_size=4, seeds=[0, 1], log_every=2,
                     show_progress=False, vectorize="vmap")
    for a, b, ha, hb in zip(ref, bat, h_ref, h_bat, strict=True):
        np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-4)
        np.testing.assert_allclose(params(b), params(a), atol=1e-5)


def test_default_seeds_are_the_configs(data):
    ms = [small(BetaVAE, seed=s) for s in (5, 6)]
    hs = fit_many(ms, data, 4, batch_size=4, log_every=2, show_progress=False)
    ref = small(BetaVAE, seed=6)
    h = fit(ref, data, 4, batch_size=4, seed=6, log_every=2, show_progress=False)
    np.testing.assert_allclose(hs[1]["loss"], h["loss"], rtol=1e-6)


def test_checkpoints_resume_and_interoperate(data, tmp_path):
    """10 + 10 steps through checkpoints == 20 steps in one go; fit resumes fit_many's files."""
    kws = [dict(beta=2.0, seed=0), dict(beta=8.0, seed=1)]
    straight = [small(BetaVAE, **k) for k in kws]
    h_straight = fit_many(straight, data, 20, batch_size=8, seeds=[1, 2], log_every=5,
                          show_progress=False)
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    first = [small(BetaVAE, **k) for k in kws]
    fit_many(first, data, 10, batch_size=8, seeds=[1, 2], log_every=5, checkpoints=paths,
             show_progress=False)
    resumed = [small(BetaVAE, **k) for k in kws]  # fresh objects: all state from the files
    h_resumed = fit_many(resumed, data, 20, batch_size=8, seeds=[1, 2], log_every=5,
                         checkpoints=paths, show_progress=False)
    for s, r, hs, hr in zip(straight, resumed, h_straight, h_resumed, strict=True):
        assert torch.equal(params(s), params(r))
        assert hr.steps == hs.steps == [5, 10, 15, 20]
        np.testing.assert_array_equal(hr["loss"], hs["loss"])
    # each file is an ordinary dlib checkpoint
    for k, p, s in zip(kws, paths, straight, strict=True):
        m, h = small(BetaVAE, **k), History()
        state = load_checkpoint(p, m, history=h)
        assert state["step"] == 20 and state["extra"] == {"batch_size": 8,
                                                         "seed": [1, 2][kws.index(k)]}
        assert torch.equal(params(m), params(s)) and h.steps == [5, 10, 15, 20]
    # fit continues a checkpoint written by fit_many exactly as it continues its own
    solo_paths = [tmp_path / "solo.pt"]
    fit_many([small(BetaVAE, **kws[0])], data, 10, batch_size=8, seeds=[1], log_every=5,
             checkpoints=solo_paths, show_progress=False)
    m = small(BetaVAE, **kws[0])
    fit(m, data, 20, batch_size=8, seed=1, log_every=5, checkpoint=solo_paths[0],
        show_progress=False)
    torch.testing.assert_close(params(m), params(straight[0]), rtol=0, atol=1e-6)
    # asking again for 20 steps is a no-op that returns the stored histories
    again = [small(BetaVAE, **k) for k in kws]
    h_again = fit_many(again, data, 20, batch_size=8, seeds=[1, 2], log_every=5,
                       checkpoints=paths, show_progress=False)
    assert h_again[0].steps == [5, 10, 15, 20]


def test_fit_fast_on_cpu_is_the_engine(data):
    a, b = small(DIPVAE, lambda_od=5.0), small(DIPVAE, lambda_od=5.0)
    ha = fit(a, data, 6, batch_size=8, seed=4, log_every=3, show_progress=False)
    hb = fit_fast(b, data, 6, batch_size=8, seed=4, log_every=3, show_progress=False)
    np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="CUDA"):
        fit_fast(small(BetaVAE), data, 2, fast=True, show_progress=False)


def test_clear_errors(data):
    with pytest.raises(ValueError, match="one class"):
        check_compatible([small(BetaVAE), small(FactorVAE)])
    with pytest.raises(ValueError, match="num_latents"):
        check_compatible([small(BetaVAE), small(BetaVAE, num_latents=5)])
    with pytest.raises(ValueError, match="dip_type"):
        check_compatible([small(DIPVAE), small(DIPVAE, dip_type="ii")])
    with pytest.raises(ValueError, match="architecture"):
        check_compatible([small(BetaVAE), BetaVAE((1, 64, 64), num_latents=3)])
    with pytest.raises(ValueError, match="at least one"):
        fit_many([], data, 3)
    with pytest.raises(ValueError, match="seeds"):
        fit_many([small(BetaVAE), small(BetaVAE)], data, 3, seeds=[1], show_progress=False)
    with pytest.raises(ValueError, match="images"):
        fit_many([BetaVAE((3, 64, 64))], data, 3, show_progress=False)
    lagging = [small(BetaVAE), small(BetaVAE, seed=1)]
    fit(lagging[0], data, 2, batch_size=4, show_progress=False)
    with pytest.raises(ValueError, match="different steps"):
        fit_many(lagging, data, 4, batch_size=4, show_progress=False)
    adamw = small(BetaVAE)
    adamw.optimizers = {"main": torch.optim.AdamW(adamw.parameters())}
    with pytest.raises(ValueError, match="Adam"):
        fit_many([adamw], data, 2, show_progress=False)


def test_nan_names_the_model_and_step(data):
    ms = [small(BetaVAE), small(BetaVAE, seed=1), small(BetaVAE, seed=2)]
    with torch.no_grad():
        ms[1].decoder.body[2].bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"model 1 of 3 .*step 1\b"):
        fit_many(ms, data, 4, batch_size=4, log_every=2, show_progress=False)


def test_unsupported_methods_fall_back_to_fit():
    assert kernel_for(InfoGAN((1, 64, 64))) is None
    assert kernel_for(small(FactorVAE)) is not None

    class Custom(BetaVAE):
        def regularizer(self, mean, logvar, z, kl_dims):
            return kl_dims.pow(2).sum(), {}

    # a subclass that changes the objective is not batched behind its back
    assert kernel_for(Custom((1, 64, 64))) is None

    class OtherReference(FactorVAE):
        def reference_codes(self, x_ref, z, generator=None):
            return -z.detach()

    assert kernel_for(OtherReference((1, 64, 64))) is None
    # the prior variants have their own kernel (FactorVAE's would permute codes instead)
    assert kernel_for(small(AAE)).__name__ == kernel_for(small(FactorVAEPrior)).__name__ == (
        "PriorKernel")
    assert kernel_for(small(FactorVAE)).__name__ == "FactorKernel"


@pytest.mark.parametrize("vectorize", ["loop", "vmap"])
def test_flat_adam_matches_per_tensor_adam(data, vectorize):
    """The flat (N, P) Adam of the GPU path against torch's per-tensor arithmetic (CPU path),
    with different Adam settings per model."""
    kws = [dict(gamma=10.0, seed=0, lr=1e-3), dict(gamma=40.0, seed=1, lr=3e-4, d_lr=3e-4)]
    outs = []
    for adam in ("per_tensor", "flat"):
        ms = [small(FactorVAE, **k) for k in kws]
        for m in ms:
            m.setup_optimizers()
            m.train()
        gens = [torch.Generator().manual_seed(5 + i) for i in range(len(ms))]
        trainer = BatchedTrainer(ms, data, 8, gens, kernel_for(ms[0]), vectorize=vectorize,
                                 adam=adam)
        trainer.run(10)
        trainer.sync()
        outs.append([params(m) for m in ms])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    with pytest.raises(ValueError, match="adam"):
        BatchedTrainer(ms, data, 8, gens, kernel_for(ms[0]), adam="sgd")


def test_graphs_refuse_a_cpu_clearly(data):
    from dlib.engine.graphs import GraphedIteration, can_register_generators

    assert isinstance(can_register_generators(), bool)
    ms = [small(BetaVAE)]
    ms[0].setup_optimizers()
    trainer = BatchedTrainer(ms, data, 4, [torch.Generator()], kernel_for(ms[0]))
    with pytest.raises(ValueError, match="CUDA"):
        GraphedIteration(trainer)
    with pytest.raises(ValueError, match="rng"):
        GraphedIteration(trainer, rng="host")


def test_bench_quick_writes_numbers_with_provenance(tmp_path, capsys):
    import dlib.bench

    out = tmp_path / "bench.json"
    assert dlib.bench.main(["--quick", "--methods", "beta_vae", "--json", str(out)]) == 0
    rec = dlib.bench.load(out)
    assert rec["quick"] is True and rec["settings"]["device"] == "cpu"
    assert {"command", "commit", "device", "torch", "started_utc"} <= set(rec["provenance"])
    modes = [(r["method"], r["mode"], r["models"]) for r in rec["rows"]]
    assert modes == [("beta_vae", "eager", 1), ("beta_vae", "fast", 1), ("beta_vae", "batched", 2)]
    for r in rec["rows"]:
        assert r["model_it_per_s"] == pytest.approx(r["models"] * r["steps"] / r["seconds"],
                                                    rel=1e-2)
        assert r["images_per_s"] == pytest.approx(r["model_it_per_s"] * 16, rel=1e-2)
    assert rec["rows"][0]["vs_eager"] == 1.0
    assert "beta_vae" in dlib.bench.table(rec) and "vs eager" in capsys.readouterr().out
    assert dlib.bench.load(tmp_path / "absent.json") is None


def test_every_study_method_of_the_registry_has_a_kernel():
    """The registry's grid methods are what the studies batch: each has a batched kernel."""
    from dlib.methods import registry

    for name in registry.STUDY_METHODS:
        spec = registry.get(name)
        m = registry.build(name, (1, 64, 64), **registry.run_options(name),
                           **{str(spec.swept): float(spec.grid[0])})
        assert kernel_for(m) is not None, name
