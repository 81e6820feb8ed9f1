"""IRS: hand-derived values, the binning quirk, dead codes and the fixed active count."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlib.metrics import compute
from dlib.metrics.irs import irs
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid

GRID = full_grid((3, 5, 7), repeats=2)


def test_identity_scores_one_and_counts_active_dims():
    out = irs(GRID.astype(float), GRID)
    assert out == {"IRS": pytest.approx(1.0, abs=1e-12), "num_active_dims": 3}
    dead = np.concatenate([GRID, np.full((len(GRID), 1), 5.0)], 1)
    assert irs(dead, GRID) == {"IRS": pytest.approx(1.0, abs=1e-12), "num_active_dims": 3}
    assert irs(np.ones((10, 2)), GRID[:10]) == {"IRS": 0.0, "num_active_dims": 0}


def test_factor_binning_lowers_perfect_codes_of_many_valued_factors():
    f = full_grid((40, 2))
    assert irs(f.astype(float), f)["IRS"] < 0.99
    assert irs(f.astype(float), f, num_bins=40)["IRS"] == pytest.approx(1.0, abs=1e-12)


def test_entangled_code_by_hand():
    """z = f0 + f1 with binary factors, quantile 1: fixing either factor leaves |dev| = 0.5,
    the maximal deviation is 1, so IRS = 1 - 0.5 = 0.5."""
    f = full_grid((2, 2), repeats=5)
    z = (f[:, :1] + f[:, 1:]).astype(float)
    assert irs(z, f, diff_quantile=1.0)["IRS"] == pytest.approx(0.5)


def test_noise_is_not_zero():
    rs = np.random.RandomState(0)
    assert 0.2 < irs(rs.randn(5000, 3), rs.randint(5, size=(5000, 2)))["IRS"] < 0.5


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(3)), st.floats(0.1, 10),
       st.lists(st.floats(-10, 10), min_size=3, max_size=3))
def test_invariant_to_permutation_shift_and_global_scale(perm, scale, shift):
    rs = np.random.RandomState(2)
    codes = GRID + 0.5 * rs.randn(*GRID.shape)
    moved = (codes * scale + np.array(shift))[:, list(perm)]
    assert irs(moved, GRID)["IRS"] == pytest.approx(irs(codes, GRID)["IRS"], abs=1e-9)


def test_not_invariant_to_per_dimension_rescaling():
    """Per-code scores are averaged with weights = maximal deviation, so stretching one code
    shifts the average towards it."""
    rs = np.random.RandomState(2)
    codes = GRID + np.array([0.1, 2.0, 0.1]) * rs.randn(*GRID.shape)
    stretched = codes * np.array([1.0, 10.0, 1.0])
    assert irs(stretched, GRID)["IRS"] < irs(codes, GRID)["IRS"] - 0.05


def test_errors_and_harness():
    with pytest.raises(ValueError, match="diff_quantile"):
        irs(GRID.astype(float), GRID, diff_quantile=1.5)
    with pytest.raises(ValueError, match="same number of points"):
        irs(GRID[:-1].astype(float), GRID)
    out = compute("irs", FactorsAsObservations((3, 4)), flat, 0, num_train=500)
    assert out["IRS"] == pytest.approx(1.0) and out["num_active_dims"] == 2
