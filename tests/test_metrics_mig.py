"""MIG: hand-derived values, invariances it has and lacks, edge cases and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlib.metrics import compute
from dlib.metrics.mig import mig
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid


def score(codes, factors, **kw):
    return mig(codes, factors, **kw)["discrete_mig"]


GRID = full_grid((3, 5, 7), repeats=2)  # factors exactly independent


def test_identity_code_is_one():
    assert score(GRID.astype(float), GRID) == pytest.approx(1.0, abs=1e-12)


def test_twenty_bin_ceiling():
    """K = 40 values in 20 bins: two values per bin, so MI = log 20 and MIG = log 20 / log 40."""
    f = full_grid((40, 2))
    assert score(f.astype(float), f) == pytest.approx(
        (np.log(20) / np.log(40) + 1) / 2, abs=1e-12
    )
    assert score(f.astype(float), f, num_bins=40) == pytest.approx(1.0, abs=1e-12)


def test_duplicated_code_scores_zero_for_that_factor():
    codes = np.stack([GRID[:, 0], GRID[:, 0], GRID[:, 1], GRID[:, 2]], 1).astype(float)
    assert score(codes, GRID) == pytest.approx(2 / 3, abs=1e-12)


def test_dead_dimension_changes_nothing():
    codes = np.concatenate([GRID, np.full((len(GRID), 1), 4.2)], 1).astype(float)
    assert score(codes, GRID) == pytest.approx(1.0, abs=1e-12)


def test_rotation_entangles():
    f = full_grid((8, 8), repeats=4)
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rotated = f @ np.array([[c, -s], [s, c]])
    assert score(rotated, f) < 0.3


def test_pure_noise_is_near_zero():
    rs = np.random.RandomState(0)
    f = rs.randint(5, size=(10000, 3))
    assert score(rs.randn(10000, 4), f) < 0.02


def test_constant_factor_is_left_out_with_a_warning():
    f = np.concatenate([GRID, np.zeros((len(GRID), 1), int)], 1)
    with pytest.warns(UserWarning, match="constant"):
        assert score(GRID.astype(float), f) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="every factor is constant"):
        score(np.random.randn(10, 2), np.zeros((10, 2), int))


def test_errors():
    with pytest.raises(ValueError, match="at least 2 code dimensions"):
        score(GRID[:, :1].astype(float), GRID)
    with pytest.raises(ValueError, match="same number of points"):
        score(GRID[:-1].astype(float), GRID)
    with pytest.raises(TypeError, match="integer"):
        score(GRID.astype(float), GRID.astype(float))
    with pytest.raises(ValueError, match="NaN"):
        score(np.full((len(GRID), 2), np.nan), GRID)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.permutations(range(4)),
    st.lists(st.integers(-8, 8), min_size=4, max_size=4),
)
def test_invariant_to_permutation_and_power_of_two_rescaling(seed, perm, exps):
    rs = np.random.RandomState(seed)
    f = rs.randint(4, size=(400, 3))
    codes = np.concatenate([f + 0.3 * rs.randn(400, 3), rs.randn(400, 1)], 1)
    changed = codes[:, list(perm)] * (2.0 ** np.array(exps))  # exact in floating point
    assert score(changed, f) == pytest.approx(score(codes, f), abs=1e-12)


def test_not_invariant_to_monotone_warps():
    """Equal-width bins: a monotone warp of a perfect code moves values between bins."""
    f = full_grid((40, 4))
    warped = np.exp(f.astype(float))
    assert score(warped, f) < score(f.astype(float), f) - 0.2


def test_harness_matches_array_level_and_accepts_seeds():
    data = FactorsAsObservations((3, 6, 40))
    out = compute("mig", data, flat, 0, num_train=2000)
    from dlib.metrics.utils import sample_codes_factors

    codes, factors = sample_codes_factors(data, flat, 2000, np.random.RandomState(0))
    assert out == mig(codes, factors)
    assert compute("mig", data, flat, np.random.RandomState(0), num_train=2000) == out
    with pytest.raises(TypeError, match="unknown option"):
        compute("mig", data, flat, 0, num_tain=10)
    with pytest.raises(ValueError, match="unknown metric"):
        compute("nope", data, flat, 0)
