"""SAP: continuous and discrete modes by hand, invariances, edge cases, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlib.metrics import compute
from dlib.metrics.sap import sap, sap_score_matrix
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid

GRID = full_grid((3, 5, 7), repeats=2)


def cont(codes, factors=GRID):
    return sap(codes, factors, continuous_factors=True)["SAP_score"]


def test_continuous_known_values():
    assert cont(GRID.astype(float)) == pytest.approx(1.0, abs=1e-12)
    s = sap_score_matrix(GRID.astype(float), GRID, continuous_factors=True)
    np.testing.assert_allclose(s, np.eye(3), atol=1e-12)
    dup = GRID[:, [0, 0, 1, 2]].astype(float)
    assert cont(dup) == pytest.approx(2 / 3, abs=1e-12)
    dead = np.concatenate([GRID, np.ones((len(GRID), 1))], 1).astype(float)
    assert cont(dead) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 100), min_size=3, max_size=3),
       st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3),
       st.lists(st.floats(-100, 100), min_size=3, max_size=3), st.permutations(range(3)))
def test_continuous_invariant_to_affine_maps_and_permutation(scale, sign, shift, perm):
    rs = np.random.RandomState(0)
    codes = GRID + 0.5 * rs.randn(*GRID.shape)
    moved = (codes * np.array(scale) * np.array(sign) + np.array(shift))[:, list(perm)]
    assert cont(moved) == pytest.approx(cont(codes), abs=1e-9)


def test_continuous_not_invariant_to_monotone_warps():
    assert cont(np.exp(GRID.astype(float))) < 0.95


def test_discrete_mode_is_not_chance_corrected():
    """Binary factors: the own code is 100 % accurate, the other code 50 % (chance), gap 0.5."""
    f = full_grid((2, 2), repeats=50)
    half = len(f) // 2
    c = f.astype(float)
    s = sap_score_matrix(c[:half], f[:half], c[half:], f[half:])
    np.testing.assert_array_equal(s, [[1.0, 0.5], [0.5, 1.0]])
    assert sap(c[:half], f[:half], c[half:], f[half:])["SAP_score"] == 0.5


def test_discrete_mode_underrates_many_valued_factors_and_depends_on_scale():
    f = full_grid((10, 2), repeats=20)
    f = f[np.random.RandomState(0).permutation(len(f))]
    half = len(f) // 2

    def matrix(scale):
        c = f * scale
        return sap_score_matrix(c[:half], f[:half], c[half:], f[half:])

    s = matrix(1.0)
    assert s[0, 0] < 0.6  # a perfect code of a 10-valued factor, yet a 1-D linear SVM fails
    assert s[1, 1] == 1.0
    assert matrix(0.1)[0, 0] < s[0, 0] - 0.1  # C = 0.01 regularises: the scale matters


def test_constant_factor_and_errors():
    f = np.concatenate([GRID, np.zeros((len(GRID), 1), int)], 1)
    with pytest.warns(UserWarning, match="constant"):
        assert cont(GRID.astype(float), f) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 2 code"):
        cont(GRID[:, :1].astype(float))
    with pytest.raises(ValueError, match="needs codes_test"):
        sap(GRID.astype(float), GRID)
    with pytest.raises(ValueError, match="same number of points"):
        cont(GRID[:-1].astype(float))


def test_harness_modes():
    data = FactorsAsObservations((2, 3))
    out = compute("sap", data, flat, 0, num_train=300, num_test=200, continuous_factors=True)
    assert out["SAP_score"] > 0.95
    assert compute("sap", data, flat, 0, num_train=300, num_test=200)["SAP_score"] > 0.4
