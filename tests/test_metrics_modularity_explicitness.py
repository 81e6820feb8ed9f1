"""Modularity and Explicitness: hand-derived values, quirks, treatments, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlib.metrics import compute
from dlib.metrics.modularity_explicitness import explicitness, modularity, modularity_from_mi
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid

GRID = full_grid((2, 3, 4), repeats=4)


def test_modularity_by_hand():
    assert modularity(GRID.astype(float), GRID) == pytest.approx(1.0, abs=1e-12)
    assert modularity_from_mi(np.array([[1.0, 0.5]])) == pytest.approx(0.75)
    # a code carrying two binary factors equally: delta = 1, modularity 0
    f = full_grid((2, 2), repeats=3)
    assert modularity((2 * f[:, :1] + f[:, 1:]).astype(float), f) == pytest.approx(0, abs=1e-12)
    # two good codes and a dead one: the dead code counts 0 -> 2/3 (the reference's rule)
    dead = np.concatenate([f, np.zeros((len(f), 1))], 1).astype(float)
    assert modularity(dead, f) == pytest.approx(2 / 3, abs=1e-12)


def test_modularity_of_noise_is_high():
    rs = np.random.RandomState(0)
    f = rs.randint(4, size=(5000, 3))
    assert modularity(rs.randn(5000, 3), f) > 0.3  # the quirk: uneven tiny MIs look modular


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(3)), st.lists(st.integers(-5, 5), min_size=3, max_size=3))
def test_modularity_invariant_to_permutation_and_rescaling(perm, exps):
    rs = np.random.RandomState(1)
    codes = GRID + 0.4 * rs.randn(*GRID.shape)
    moved = codes[:, list(perm)] * 2.0 ** np.array(exps)
    assert modularity(moved, GRID) == pytest.approx(modularity(codes, GRID), abs=1e-12)


def test_explicitness_known_values_and_dead_code():
    f = full_grid((2, 2), repeats=10)
    c = f.astype(float)
    assert explicitness(c, f, c, f) == (1.0, 1.0)
    dead = np.concatenate([c, np.ones((len(c), 1))], 1)
    assert explicitness(dead, f, dead, f) == (1.0, 1.0)  # the reference crashes (NaN input)
    rs = np.random.RandomState(0)
    noise = rs.randn(2000, 2)
    _, test = explicitness(noise[:1000], rs.randint(3, size=(1000, 2)), noise[1000:],
                           rs.randint(3, size=(1000, 2)))
    assert abs(test - 0.5) < 0.05


def test_explicitness_missing_test_class_is_handled():
    f = full_grid((3, 2), repeats=10)
    c = f.astype(float)
    keep = f[:, 0] != 2  # class 2 of factor 0 absent from the test split
    train, test = explicitness(c, f, c[keep], f[keep])
    assert train == 1.0 and test == 1.0


def test_errors():
    c = GRID.astype(float)
    with pytest.raises(ValueError, match="same code and factor widths"):
        explicitness(c, GRID, c[:, :2], GRID)
    with pytest.raises(ValueError, match="at least 2 factors"):
        modularity(c, GRID[:, :1])
    with pytest.raises(ValueError, match="same number of points"):
        modularity(c[:-1], GRID)


def test_harness():
    out = compute("modularity_explicitness", FactorsAsObservations((2, 3)), flat, 0,
                  num_train=500, num_test=200)
    assert out["modularity_score"] > 0.99 and out["explicitness_score_test"] > 0.99
