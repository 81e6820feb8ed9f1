"""dlib.experiments.dip against plain loops, NumPy and direct calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlib.data
from dlib.experiments import dip
from dlib.methods import DIPVAE, dip_covariance


def _moments(n=300, d=4, seed=0):
    rs = np.random.RandomState(seed)
    mean = rs.standard_normal((n, d)) @ rs.standard_normal((d, d))
    logvar = rs.standard_normal((n, d))
    return mean, logvar


def test_moment_covariances_by_loops():
    mean, logvar = _moments()
    cov, var = dip.moment_covariances(mean, logvar)
    n, d = mean.shape
    mu = [sum(mean[k, i] for k in range(n)) / n for i in range(d)]
    for i in range(d):
        assert var[i] == pytest.approx(sum(np.exp(logvar[k, i]) for k in range(n)) / n)
        for j in range(d):
            by_hand = sum((mean[k, i] - mu[i]) * (mean[k, j] - mu[j]) for k in range(n)) / n
            assert cov[i, j] == pytest.approx(by_hand, rel=1e-10, abs=1e-12)


def test_aggregate_covariance_is_the_covariance_of_posterior_samples():
    """Law of total covariance, by Monte Carlo: z ~ q(z) = mean over x of N(μ(x), σ²(x))."""
    mean, logvar = _moments(n=200, seed=1)
    cov, var = dip.moment_covariances(mean, logvar)
    rs = np.random.RandomState(2)
    z = mean + np.exp(0.5 * logvar) * rs.standard_normal((400, *mean.shape))
    mc = np.cov(z.reshape(-1, mean.shape[1]).T, ddof=0)
    np.testing.assert_allclose(mc, cov + np.diag(var), atol=0.04 * np.abs(mc).max())
    # and it is what DIP-VAE-II penalises (the method's own function, on the same rows)
    ii = dip_covariance(torch.as_tensor(mean), torch.as_tensor(logvar), "ii").numpy()
    np.testing.assert_allclose(ii, cov + np.diag(var), rtol=1e-10)


def test_off_diagonal_mass_and_diagonal_error_by_loops():
    rs = np.random.RandomState(3)
    c = rs.standard_normal((5, 5))
    off = sum(c[i, j] ** 2 for i in range(5) for j in range(5) if i != j)
    diag = sum((c[i, i] - 1) ** 2 for i in range(5))
    assert dip.off_diagonal_mass(c) == pytest.approx(off)
    assert dip.diagonal_error(c) == pytest.approx(diag)
    assert dip.off_diagonal_mass(np.diag([3.0, 0.1])) == 0.0
    assert dip.diagonal_error(np.eye(4)) == 0.0
    with pytest.raises(ValueError, match="square"):
        dip.off_diagonal_mass(np.ones((2, 3)))


def test_moment_covariances_rejects_bad_input():
    with pytest.raises(ValueError, match="finite"):
        dip.moment_covariances(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        dip.moment_covariances(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="two rows"):
        dip.moment_covariances(np.zeros((1, 2)), np.zeros((1, 2)))


@pytest.fixture(scope="module")
def tiny():
    data = dlib.data.load("dsprites")
    dd = data.to_device("cpu", num=64, seed=0)
    probe = data.to_device("cpu", num=40, seed=1)
    images = probe.data.observe(probe.images, None)
    return dd, images


def test_encoder_moments_batches_equal_one_pass(tiny):
    _, images = tiny
    m = DIPVAE((1, 64, 64), dip_type="i", seed=0)
    m.train()
    mean, logvar = dip.encoder_moments(m, images, batch_size=7)
    assert m.training  # restored
    with torch.no_grad():
        m.eval()
        ref_mean, ref_logvar = m.encode(images)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(logvar, ref_logvar)
    with pytest.raises(ValueError):
        dip.encoder_moments(m, images[0])


def test_fit_tracking_covariances_snapshots(tiny):
    dd, images = tiny
    m = DIPVAE((1, 64, 64), dip_type="ii", lambda_od=10.0, seed=0)
    fresh = DIPVAE((1, 64, 64), dip_type="ii", lambda_od=10.0, seed=0)
    trace = dip.fit_tracking_covariances(m, dd, 6, images, snapshots=3, seed=0, batch_size=8)
    assert trace.steps == [0, 2, 4, 6] and int(m.step) == 6
    assert trace.cov_mean.shape == (4, 10, 10) and trace.expected_var.shape == (4, 10)
    # the first snapshot is the untrained model, the last the trained one
    c0, v0 = dip.moment_covariances(*dip.encoder_moments(fresh, images))
    np.testing.assert_allclose(trace.cov_mean[0], c0, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(trace.expected_var[0], v0, rtol=1e-6)
    c6, v6 = dip.moment_covariances(*dip.encoder_moments(m, images))
    np.testing.assert_allclose(trace.cov_aggregate[-1], c6 + np.diag(v6), rtol=1e-6, atol=1e-9)
    assert not np.allclose(trace.cov_mean[0], trace.cov_mean[-1])  # training moved the code
    curve = trace.curve("aggregate", "diagonal")
    assert curve[-1] == pytest.approx(dip.diagonal_error(c6 + np.diag(v6)), rel=1e-6)
    # the history covers the whole run, steps increasing
    assert trace.history.steps[-1] == 6 and np.all(np.diff(trace.history.steps) > 0)
    assert "dip_penalty" in trace.history.keys()
    with pytest.raises(ValueError, match="untrained"):
        dip.fit_tracking_covariances(m, dd, 8, images, snapshots=2)
    with pytest.raises(ValueError, match="snapshots"):
        dip.fit_tracking_covariances(fresh, dd, 3, images, snapshots=5)
    with pytest.raises(ValueError):
        trace.curve("sampled")
