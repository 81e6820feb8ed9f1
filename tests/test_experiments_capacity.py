"""Tests of dlib.experiments.capacity against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dlib.data
from dlib.experiments import capacity as cap
from dlib.methods import AnnealedVAE, BetaVAE
from dlib.plots import posterior_kl
from dlib.train import History, fit


def _loop_mi(code: np.ndarray, factor: np.ndarray, num_bins: int) -> float:
    """Plug-in MI (nats) with plain loops: equal-width bins of the code's range, counts, sums."""
    lo, hi = code.min(), code.max()
    if hi == lo:
        return 0.0
    width = (hi - lo) / num_bins
    bins = [min(int((c - lo) / width), num_bins - 1) for c in code]
    n = len(code)
    joint: dict[tuple[int, int], int] = {}
    for b, f in zip(bins, factor, strict=True):
        joint[(b, int(f))] = joint.get((b, int(f)), 0) + 1
    pb: dict[int, int] = {}
    pf: dict[int, int] = {}
    for (b, f), c in joint.items():
        pb[b] = pb.get(b, 0) + c
        pf[f] = pf.get(f, 0) + c
    return sum(c / n * math.log(c * n / (pb[b] * pf[f])) for (b, f), c in joint.items())


def test_factor_information_matches_a_plain_loop():
    rs = np.random.RandomState(0)
    factors = np.stack([rs.randint(3, size=800), rs.randint(32, size=800)], 1)
    codes = np.stack([factors[:, 0] + 0.3 * rs.randn(800), rs.randn(800),
                      np.sin(factors[:, 1] / 5.0) + 0.1 * rs.randn(800)], 1)
    mi, entropy = cap.factor_information(codes, factors, num_bins=20)
    assert mi.shape == (3, 2)
    for d in range(3):
        for j in range(2):
            assert mi[d, j] == pytest.approx(_loop_mi(codes[:, d], factors[:, j], 20), abs=1e-10)
    for j in range(2):
        p = np.bincount(factors[:, j]) / 800
        p = p[p > 0]
        assert entropy[j] == pytest.approx(-(p * np.log(p)).sum())


def test_factor_information_closed_forms():
    # a code that copies a factor with K <= 20 values carries all of its entropy; an
    # independent one carries (almost) none
    factors = np.repeat(np.arange(4), 250)[:, None]
    codes = np.stack([factors[:, 0] * 1.0, np.tile(np.arange(250.0), 4)], 1)
    mi, entropy = cap.factor_information(codes, factors)
    assert entropy[0] == pytest.approx(math.log(4))
    assert mi[0, 0] == pytest.approx(math.log(4))
    assert mi[1, 0] == pytest.approx(0.0, abs=1e-12)


def test_factor_information_rejects_bad_input():
    with pytest.raises(ValueError):
        cap.factor_information(np.zeros((5, 2)), np.zeros((4, 1), dtype=int))
    with pytest.raises(ValueError):
        cap.factor_information(np.full((5, 2), np.nan), np.zeros((5, 1), dtype=int))


def _tiny(method_cls, **kw):
    data = dlib.data.load("dsprites")
    train = data.to_device("cpu", num=256, seed=0)
    evals = data.to_device("cpu", num=200, seed=1)
    return method_cls(data.image_shape, seed=0, **kw), train, evals


def test_encode_with_factors_matches_the_encoder():
    method, _, evals = _tiny(BetaVAE)
    codes, factors, kl = cap.encode_with_factors(method, evals, batch_size=64)
    x = evals.data.observe(evals.images)
    with torch.no_grad():
        mean, _ = method.encode(x)
    np.testing.assert_allclose(codes, mean.double().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(factors, evals.factors.numpy())
    np.testing.assert_allclose(kl, posterior_kl(method, x), rtol=1e-5, atol=1e-7)


def test_track_information_equals_an_uninterrupted_run(tmp_path):
    method, train, evals = _tiny(AnnealedVAE, c_max=5.0, iteration_threshold=6)
    trace = cap.track_information(method, train, evals, [0, 3, 8], batch_size=16, seed=2,
                                  log_every=2, show_progress=False, workdir=tmp_path)
    reference, _, _ = _tiny(AnnealedVAE, c_max=5.0, iteration_threshold=6)
    fit(reference, train, 8, batch_size=16, seed=2, log_every=2, show_progress=False)
    for (name, a), b in zip(method.state_dict().items(), reference.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    # the last evaluation is the reference model's
    codes, factors, kl = cap.encode_with_factors(reference, evals)
    np.testing.assert_allclose(trace.kl[-1], kl)
    np.testing.assert_allclose(trace.mi[-1], cap.factor_information(codes, factors)[0])
    assert trace.mi.shape == (3, 10, 5) and trace.kl.shape == (3, 10)
    assert trace.factor_names == tuple(evals.data.factor_names)
    # C(t) = min(C_max, C_max t / T)
    np.testing.assert_allclose(trace.capacity, [0.0, 2.5, 5.0])
    assert isinstance(trace.history, History) and trace.history.steps[-1] == 8
    assert trace.normalised.shape == (3, 5) and np.all(trace.normalised >= 0)


def test_track_information_without_capacity_and_bad_steps():
    method, train, evals = _tiny(BetaVAE)
    trace = cap.track_information(method, train, evals, [2], batch_size=8, log_every=1,
                                  show_progress=False)
    assert np.isnan(trace.capacity).all()
    for bad in ([], [3, 3], [-1, 2], [5, 4]):
        with pytest.raises(ValueError):
            cap.track_information(BetaVAE((1, 64, 64)), train, evals, bad, show_progress=False)
    with pytest.raises(ValueError, match="already taken"):
        cap.track_information(method, train, evals, [1], show_progress=False)


def _synthetic_trace(normalised: np.ndarray) -> cap.InformationTrace:
    k, f = normalised.shape
    entropy = np.full(f, 2.0)
    mi = np.zeros((k, 3, f))
    mi[:, 1, :] = normalised * entropy
    return cap.InformationTrace(np.arange(k) * 100, np.full(k, np.nan), np.zeros((k, 3)), mi,
                                entropy, tuple(f"f{j}" for j in range(f)), History())


def test_onset_and_order():
    trace = _synthetic_trace(np.array([[0.0, 0.0, 0.0, 0.0],
                                       [0.5, 0.1, 0.0, 0.0],
                                       [0.6, 0.3, 0.4, 0.0],
                                       [0.7, 0.4, 0.5, 0.1]]))
    np.testing.assert_allclose(trace.normalised[2], [0.6, 0.3, 0.4, 0.0])
    assert trace.onset(0.25) == {"f0": 100, "f1": 200, "f2": 200, "f3": None}
    assert trace.order(0.25) == ["f0", "f2", "f1"]  # tie at step 200: more information first
    assert (trace.best_dims()[trace.normalised > 0] == 1).all()  # where there is information
    assert "step" in trace.table().splitlines()[0]
    with pytest.raises(ValueError):
        trace.onset(0.0)
