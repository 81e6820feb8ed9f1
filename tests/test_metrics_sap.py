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


# ---- features of several dimensions (the intervention-based paper's CMNIST code) -------------
DIGITS = full_grid((10, 10), repeats=6)  # digit × colour, 600 points


def grouped(factors, mix, rng, d=16, noise=0.05):
    """A code of two features of ``d`` dimensions: feature k is a random linear embedding of
    the factors weighted by row k of ``mix``, plus noise."""
    f = (factors - factors.mean(0)) / factors.std(0)
    blocks = [(f @ mix[k][:, None]) @ rng.normal(size=(1, d)) + noise * rng.normal(size=(len(f), d))
              for k in range(2)]
    return np.concatenate(blocks, 1)


def test_grouped_r2_is_the_least_squares_fit_on_each_feature():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(600, 8)) + DIGITS @ rng.normal(size=(2, 8))
    s = sap_score_matrix(codes, DIGITS, continuous_factors=True, feature_dim=4)
    for k in range(2):
        for j in range(2):
            block = codes[:, 4 * k:4 * k + 4]
            want = LinearRegression().fit(block, DIGITS[:, j]).score(block, DIGITS[:, j])
            assert s[k, j] == pytest.approx(want, rel=1e-9)
    # one dimension per feature: the squared correlation of the usual SAP
    np.testing.assert_allclose(sap_score_matrix(codes, DIGITS, continuous_factors=True,
                                                feature_dim=1),
                               sap_score_matrix(codes, DIGITS, continuous_factors=True))


def test_grouped_svm_is_one_classifier_per_feature():
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(1)
    codes = grouped(DIGITS, np.array([[1.0, 0.0], [0.0, 1.0]]), rng, d=3)
    s = sap_score_matrix(codes[::2], DIGITS[::2], codes[1::2], DIGITS[1::2], feature_dim=3)
    clf = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
    clf.fit(codes[::2, 3:], DIGITS[::2, 1])
    assert s.shape == (2, 2)
    assert s[1, 1] == pytest.approx(np.mean(clf.predict(codes[1::2, 3:]) == DIGITS[1::2, 1]))


@pytest.mark.parametrize("mix, low, high", [
    ([[1.0, 0.0], [0.0, 1.0]], 0.95, 1.0),  # each factor in its own feature
    ([[0.0, 1.0], [1.0, 0.0]], 0.95, 1.0),  # the features swapped: the same score
    ([[1.0, 1.0], [1.0, -1.0]], 0.0, 0.05),  # both factors in both features
    ([[0.0, 0.0], [0.0, 0.0]], 0.0, 0.05),  # noise only
])
def test_grouped_sap_on_codes_of_known_score(mix, low, high):
    rng = np.random.default_rng(2)
    codes = grouped(DIGITS, np.array(mix), rng)
    score = sap(codes, DIGITS, continuous_factors=True, feature_dim=16)["SAP_score"]
    assert low <= score <= high


def test_grouped_sap_errors():
    codes = np.random.default_rng(3).normal(size=(600, 32))
    with pytest.raises(ValueError, match="whole number of features"):
        sap(codes, DIGITS, continuous_factors=True, feature_dim=5)
    with pytest.raises(ValueError, match="at least 2 code dimensions or features"):
        sap(codes, DIGITS, continuous_factors=True, feature_dim=32)
    with pytest.raises(ValueError, match="positive integer"):
        sap(codes, DIGITS, continuous_factors=True, feature_dim=0)
