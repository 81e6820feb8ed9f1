"""FactorVAE score: hand-derived values, invariances, the fixed active-dimension count."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlib.metrics import compute
from dlib.metrics.factor_vae import active_dims, vote_accuracy, vote_matrix
from dlib.metrics.toy import FactorsAsObservations, flat

DATA = FactorsAsObservations((3, 6, 10, 8))
SMALL = dict(num_train=300, num_eval=200, num_variance_estimate=1000)


def run(rep, threshold=0.0, seed=0, **kw):
    return compute("factor_vae", DATA, rep, seed, threshold=threshold, **{**SMALL, **kw})


def test_identity_and_permutation_score_one():
    assert run(flat)["eval_accuracy"] == 1.0
    out = run(lambda x: flat(x)[:, [2, 0, 3, 1]])
    assert out["train_accuracy"] == out["eval_accuracy"] == 1.0
    assert out["num_active_dims"] == 4


def test_duplicated_code_still_scores_one():
    """Fixing f0 zeroes both copies; argmin takes the first. The score ignores compactness."""
    assert run(lambda x: flat(x)[:, [0, 0, 1, 2, 3]])["eval_accuracy"] == 1.0


def test_missing_factor_caps_the_score():
    """Votes for the missing factor land on some dimension whose majority is another factor."""
    out = run(lambda x: flat(x)[:, :3], num_train=1000, num_eval=1000)
    assert 0.7 < out["eval_accuracy"] < 0.8  # ~3/4 (+ a few lucky votes)


def test_rotation_entangles():
    c = np.cos(np.pi / 4)

    def rep(x):
        z = flat(x)[:, [2, 3]] / np.array([10.0, 8.0], np.float32)
        return np.concatenate([flat(x)[:, :2], z @ np.array([[c, -c], [c, c]], np.float32)], 1)

    assert run(rep)["eval_accuracy"] < 0.85


def test_pure_noise_is_near_chance():
    noise = np.random.RandomState(5)
    out = run(lambda x: noise.randn(len(x), 4).astype(np.float32), num_train=1000)
    assert out["eval_accuracy"] < 0.45  # chance is 1/4


def test_dead_dimension_is_dropped_and_counted():
    """disentanglement_lib with threshold 0 sends every vote to a constant dimension (NaN
    argmin) and reports num_active_dims = D; dlib drops it and counts D - 1."""

    def rep(x):
        return np.concatenate([flat(x), np.ones((len(x), 1), np.float32)], 1)

    out = run(rep)
    assert out["eval_accuracy"] == 1.0 and out["num_active_dims"] == 4


def test_threshold_prunes_small_scale_dims_and_no_active_dims_gives_zero():
    out = run(lambda x: flat(x) * np.array([1, 1, 1, 0.001], np.float32), threshold=0.05)
    assert out["num_active_dims"] == 3 and out["eval_accuracy"] < 0.85
    out = run(lambda x: flat(x) * 1e-4, threshold=0.05)
    assert out == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(-6, 6), min_size=4, max_size=4), st.permutations(range(4)))
def test_invariant_to_rescaling_and_permutation_without_threshold(exps, perm):
    noise = 0.3 * np.random.RandomState(1).randn(4).astype(np.float32)

    def base(x):
        return flat(x) + noise * flat(x)[:, ::-1]

    scale = (2.0 ** np.array(exps)).astype(np.float32)
    changed = run(lambda x: (base(x) * scale)[:, list(perm)], num_train=100, num_eval=100)
    assert changed == run(base, num_train=100, num_eval=100)


def test_vote_arithmetic_by_hand():
    variances = np.array([1.0, 4.0, 1.0])
    local = np.array([[0.1, 4.0, 0.5], [1.0, 0.1, 1.0], [1.0, 4.0, 0.5], [0.2, 4.0, 0.5]])
    labels = np.array([0, 1, 1, 0])
    votes = vote_matrix(local, labels, variances, np.array([True, True, True]), 2)
    np.testing.assert_array_equal(votes, [[2, 0, 0], [0, 1, 1]])
    assert vote_accuracy(votes, votes) == (1.0, 1.0)
    # the winner is reported by its real latent index even when a dimension is pruned
    votes = vote_matrix(local, labels, variances, np.array([False, True, True]), 2)
    np.testing.assert_array_equal(votes, [[0, 0, 2], [0, 1, 1]])
    np.testing.assert_array_equal(active_dims(np.array([0.0, 1e-4, 1.0]), 0.0), [0, 1, 1])


def test_batched_variances_equal_per_batch_variances():
    """The vectorised variance is bit-identical to disentanglement_lib's per-batch np.var."""
    x = np.random.RandomState(0).randn(50, 64, 7).astype(np.float32) * 3 + 1
    per_batch = np.stack([np.var(b, axis=0, ddof=1) for b in x])
    np.testing.assert_array_equal(np.var(x, axis=1, ddof=1), per_batch)


def test_errors():
    with pytest.raises(ValueError, match="batch_size"):
        run(flat, batch_size=1)
    with pytest.raises(ValueError, match="shape"):
        run(lambda x: flat(x)[0])
