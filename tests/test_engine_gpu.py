"""The CUDA-graph fast path against the eager reference (needs a GPU: ``pytest -m gpu``).

Run on a machine with CUDA::

    python -m pytest tests/test_engine_gpu.py -m gpu -q

TF32 is switched off in these tests so that the eager and the graphed computation are both
plain fp32 and may be compared tightly.
"""

import numpy as np
import pytest
import torch

from dlib.data import load
from dlib.engine import fit_fast, fit_many
from dlib.engine.batched import BatchedTrainer
from dlib.engine.graphs import can_register_generators
from dlib.engine.kernels import kernel_for
from dlib.methods import BetaTCVAE, BetaVAE, FactorVAE, FactorVAEPrior
from dlib.train import TrainingDiverged, fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SHAPE = (1, 64, 64)


@pytest.fixture(scope="module")
def data():
    return load("dsprites").to_device("cuda", num=20_000, seed=0)


@pytest.fixture(autouse=True)
def strict_fp32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


METHODS = {
    "beta_vae": lambda seed, **kw: BetaVAE(SHAPE, seed=seed, **kw),
    "factor_vae": lambda seed, **kw: FactorVAE(SHAPE, seed=seed, **kw),
    "beta_tc_vae": lambda seed, **kw: BetaTCVAE(SHAPE, seed=seed, **kw),
    "factor_vae_prior": lambda seed, **kw: FactorVAEPrior(SHAPE, seed=seed, **kw),
}


def _trainers(make, n, data, rng):
    """Two trainers on identical models and generators: one graphed, one eager."""
    out = []
    for graphs in (True, False):
        ms = [make(i) for i in range(n)]
        for m in ms:
            m.to(data.device)
            m.setup_optimizers()
            m.train()
        gens = [torch.Generator(device=data.device).manual_seed(100 + i) for i in range(n)]
        out.append(BatchedTrainer(ms, data, 64, gens, kernel_for(ms[0]), graphs=graphs,
                                  rng=rng, vectorize="vmap"))
    return out


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("n", [1, 4])
def test_graph_replay_equals_eager_step_on_the_same_inputs(data, name, n):
    """Feed the eager step the batch and noise each replay used: same losses, 200 steps."""
    make = METHODS[name]
    graphed, eager = _trainers(lambda i: make(i), n, data, "auto")
    for step in range(200):
        graphed.run(1)
        inputs = {k: v.clone() for k, v in graphed.graphed.inputs.items()}
        eager.compute(inputs)
        for k in ("loss", "recon", "kl"):
            torch.testing.assert_close(graphed.last[k], eager.last[k], rtol=1e-4, atol=1e-3,
                                       msg=f"{name} step {step} term {k}")
    graphed.sync()
    eager.sync()
    for a, b in zip(graphed.methods, eager.methods, strict=True):
        torch.testing.assert_close(params(a), params(b), rtol=0, atol=1e-4)


@pytest.mark.skipif(not can_register_generators(), reason="torch cannot register generators")
@pytest.mark.parametrize("name", ["beta_vae", "factor_vae"])
def test_graph_rng_reproduces_the_eager_stream(data, name):
    """Draws inside the graph equal what each model's generator gives eagerly."""
    graphed, eager = _trainers(lambda i: METHODS[name](i), 3, data, "graph")
    assert graphed.graphed.mode == "graph"
    for _ in range(5):
        graphed.run(1)
        drawn = eager.draw()
        for k, v in drawn.items():
            torch.testing.assert_close(graphed.graphed.inputs[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_fast_fit_follows_eager_fit(data, name):
    """fit_fast (CUDA graphs) and fit: same batches and noise, same losses over 300 steps."""
    a, b = METHODS[name](0), METHODS[name](0)
    ha = fit(a, data, 300, seed=7, log_every=50, show_progress=False)
    hb = fit_fast(b, data, 300, seed=7, log_every=50, show_progress=False, fast=True)
    assert hb.steps == ha.steps
    for k in ha.keys():
        # an accuracy counts argmax flips: a few flips of 128 decisions in 50 steps are rounding
        atol = 2e-2 if k == "d_accuracy" else 2e-3
        np.testing.assert_allclose(hb[k], ha[k], rtol=2e-3, atol=atol, err_msg=k)
    assert int(b.step) == 300


@pytest.mark.parametrize("name", ["beta_vae", "factor_vae"])
def test_fast_batched_follows_separate_fits(data, name):
    betas = dict(beta_vae=[dict(beta=b) for b in (1.0, 4.0, 8.0, 16.0)],
                 factor_vae=[dict(gamma=g) for g in (10.0, 20.0, 40.0, 100.0)])[name]
    ref = [METHODS[name](i, **kw) for i, kw in enumerate(betas)]
    h_ref = [fit(m, data, 300, seed=i, log_every=100, show_progress=False)
             for i, m in enumerate(ref)]
    bat = [METHODS[name](i, **kw) for i, kw in enumerate(betas)]
    h_bat = fit_many(bat, data, 300, seeds=list(range(4)), log_every=100, show_progress=False)
    for ha, hb in zip(h_ref, h_bat, strict=True):
        np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=2e-3)


def test_fast_resume_and_nan(data, tmp_path):
    a = BetaVAE(SHAPE, seed=0)
    fit_fast(a, data, 200, seed=1, log_every=50, show_progress=False)
    p = tmp_path / "b.pt"
    fit_fast(BetaVAE(SHAPE, seed=0), data, 100, seed=1, log_every=50, checkpoint=p,
             show_progress=False)
    b = BetaVAE(SHAPE, seed=0)
    fit_fast(b, data, 200, seed=1, log_every=50, checkpoint=p, show_progress=False)
    torch.testing.assert_close(params(b), params(a), rtol=0, atol=1e-5)
    bad = [BetaVAE(SHAPE, seed=i) for i in range(3)]
    with torch.no_grad():
        bad[2].decoder.body[0].bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="model 2 of 3"):
        fit_many(bad, data, 20, log_every=10, show_progress=False, fast=True)


def test_outside_rng_mode_matches_eager(data):
    """rng="outside" (draws before each replay, for torch without graph-safe generators)."""
    graphed, eager = _trainers(lambda i: METHODS["factor_vae"](i), 2, data, "outside")
    assert graphed.graphed.mode == "outside"
    for step in range(50):
        graphed.run(1)
        drawn = eager.draw()  # the same generator stream as the graphed trainer's draws
        for k, v in drawn.items():
            torch.testing.assert_close(graphed.graphed.inputs[k], v, rtol=0, atol=0)
        eager.compute(drawn)
        torch.testing.assert_close(graphed.last["loss"], eager.last["loss"], rtol=1e-4,
                                   atol=1e-3, msg=f"step {step}")
