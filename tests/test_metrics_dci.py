"""DCI: the D and C formulas by hand, predictor options, invariances, edge cases, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dlib.metrics import compute
from dlib.metrics.dci import completeness, dci, disentanglement
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid

GRID = full_grid((3, 4, 2), repeats=4)
SPLIT = len(GRID) // 2


def run(codes, factors=GRID, **kw):
    perm = np.random.RandomState(0).permutation(len(codes))
    c, f = codes[perm], factors[perm]
    return dci(c[:SPLIT], f[:SPLIT], c[SPLIT:], f[SPLIT:], **kw)


def test_formulas_by_hand():
    eye = np.eye(3)
    assert disentanglement(eye) == pytest.approx(1.0, abs=1e-8)
    assert completeness(eye) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-12)
    assert completeness(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-12)
    # a factor split over two codes: C = (1 + (1 - log 2 / log 3)) / 2, D stays 1
    r = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]])
    assert completeness(r) == pytest.approx(1 - np.log(2) / (2 * np.log(3)), abs=1e-8)
    assert disentanglement(r) == pytest.approx(1.0, abs=1e-8)
    # a dead code (zero row) gets weight 0; an all-zero matrix gives 0
    assert disentanglement(np.vstack([eye, np.zeros(3)])) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement(np.zeros((3, 3))) == pytest.approx(0.0, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (4, 3), elements=st.floats(0.01, 10)), st.permutations(range(4)),
       st.permutations(range(3)), st.floats(0.1, 10))
def test_formula_invariances(r, rows, cols, scale):
    d, c = disentanglement(r), completeness(r)
    moved = r[list(rows)][:, list(cols)] * scale
    # invariant up to the 1e-11 added to every entry (relative to the scale of R)
    assert disentanglement(moved) == pytest.approx(d, abs=1e-7)
    assert completeness(moved) == pytest.approx(c, abs=1e-7)
    assert disentanglement(r) == pytest.approx(completeness(r.T), abs=1e-12)


def test_identity_code_with_gbt():
    out = run(GRID.astype(float))
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert out["informativeness_train"] == out["informativeness_test"] == 1.0


def test_duplicated_and_rotated_codes():
    dup = GRID[:, [0, 0, 1, 2]].astype(float)
    assert run(dup)["completeness"] < 0.9
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    f = full_grid((6, 6), repeats=4)
    rot = f @ np.array([[c, -s], [s, c]])
    perm = np.random.RandomState(0).permutation(len(f))
    out = dci(rot[perm][:72], f[perm][:72], rot[perm][72:], f[perm][72:])
    assert out["disentanglement"] < 0.5


def test_lasso_and_random_forest_options():
    f = GRID.astype(float)
    lasso = run(f + 0.01 * np.random.RandomState(1).randn(*f.shape), model="lasso")
    assert lasso["disentanglement"] > 0.99 and lasso["completeness"] > 0.99
    assert lasso["informativeness_test"] > 0.9 and lasso["prediction_error_test"] < 0.3
    forest = run(f, model="random_forest")
    assert forest["disentanglement"] > 0.95 and "prediction_error_test" in forest


def test_seeded_runs_repeat_and_noise_scores_low():
    noise = np.random.RandomState(2).randn(len(GRID), 3)
    a, b = run(noise), run(noise)
    assert a == b
    assert a["informativeness_test"] < 0.6


def test_constant_factor_and_dead_code():
    f = np.concatenate([GRID, np.zeros((len(GRID), 1), int)], 1)
    with pytest.warns(UserWarning, match="constant"):
        out = run(GRID.astype(float), f)
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    dead = np.concatenate([GRID, np.ones((len(GRID), 1))], 1).astype(float)
    assert run(dead)["disentanglement"] == pytest.approx(1.0, abs=1e-6)


def test_errors():
    c = GRID.astype(float)
    with pytest.raises(ValueError, match="same number of points"):
        dci(c, GRID[:-1], c, GRID)
    with pytest.raises(ValueError, match="widths differ"):
        dci(c, GRID, c[:, :2], GRID)
    with pytest.raises(ValueError, match="unknown model"):
        run(c, model="svm")
    with pytest.raises(TypeError, match="integer"):
        dci(c, c, c, GRID)


def test_harness():
    data = FactorsAsObservations((3, 4))
    out = compute("dci", data, flat, 0, num_train=300, num_test=100)
    assert out["disentanglement"] > 0.99 and out["informativeness_test"] == 1.0
