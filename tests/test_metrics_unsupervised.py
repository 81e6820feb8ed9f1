"""Unsupervised scores: Gaussian TC / Wasserstein by hand, dead and duplicated codes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlib.metrics import compute
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid
from dlib.metrics.unsupervised import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised_scores,
)

GRID = full_grid((4, 4, 4), repeats=2).astype(float)


def test_independent_codes_score_zero():
    out = unsupervised_scores(GRID)
    assert out["gaussian_total_correlation"] == pytest.approx(0, abs=1e-12)
    assert out["gaussian_wasserstein_correlation"] == pytest.approx(0, abs=1e-9)
    assert out["mutual_info_score"] == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("r", [0.0, 0.3, -0.8])
def test_two_dim_formulas_by_hand(r):
    cov = np.array([[1.0, r], [r, 1.0]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * np.log(1 - r * r))
    w = 4 - 2 * (np.sqrt(1 + r) + np.sqrt(1 - r))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(w, abs=1e-12)


def test_sum_code_by_hand():
    """z = (a, a + b) with a, b independent of equal variance: rho = 1/sqrt 2, TC = log(2)/2."""
    z = np.stack([GRID[:, 0], GRID[:, 0] + GRID[:, 1]], 1)
    tc = unsupervised_scores(z)["gaussian_total_correlation"]
    assert tc == pytest.approx(0.5 * np.log(2), abs=1e-12)


def test_dead_and_duplicated_codes():
    dead = np.concatenate([GRID, np.ones((len(GRID), 1))], 1)
    out = unsupervised_scores(dead)
    assert out["gaussian_total_correlation"] == pytest.approx(0, abs=1e-12)  # reference: NaN
    assert np.isfinite(out["gaussian_wasserstein_correlation"])
    dup = GRID[:, [0, 0, 1]]
    assert unsupervised_scores(dup)["gaussian_total_correlation"] > 10  # +inf up to rounding


def test_sampling_noise_lowers_tc():
    rs = np.random.RandomState(0)
    a = rs.randn(5000)
    mean = np.stack([a, a + 0.5 * rs.randn(5000)], 1)
    sampled = mean + rs.randn(5000, 2)
    assert (unsupervised_scores(sampled)["gaussian_total_correlation"]
            < unsupervised_scores(mean)["gaussian_total_correlation"])
    assert 0 < unsupervised_scores(rs.randn(5000, 3))["mutual_info_score"] < 0.05


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.1, 10), min_size=3, max_size=3))
def test_tc_is_scale_invariant_wasserstein_is_not(scale):
    rs = np.random.RandomState(1)
    z = rs.randn(500, 3) @ rs.randn(3, 3)
    a, b = unsupervised_scores(z), unsupervised_scores(z * np.array(scale))
    assert b["gaussian_total_correlation"] == pytest.approx(a["gaussian_total_correlation"])
    assert b["mutual_info_score"] == pytest.approx(a["mutual_info_score"], abs=1e-12)
    if max(scale) / min(scale) > 1.5:
        assert b["gaussian_wasserstein_correlation_norm"] != pytest.approx(
            a["gaussian_wasserstein_correlation_norm"], rel=1e-3)


def test_errors_and_harness():
    with pytest.raises(ValueError, match="D >= 2"):
        unsupervised_scores(np.zeros((5, 1)) + np.arange(5)[:, None])
    with pytest.raises(ValueError, match="NaN"):
        unsupervised_scores(np.full((5, 2), np.nan))
    out = compute("unsupervised", FactorsAsObservations((3, 4)), flat, 0, num_train=500)
    assert abs(out["gaussian_total_correlation"]) < 0.02
