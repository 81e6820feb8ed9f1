"""The sorted-once GBT against sklearn's GradientBoostingClassifier with the same seed."""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from dlib.metrics.fast_gbt import HAVE_NUMBA, FastGradientBoosting

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (pip install numba)")


def problem(n, k, d, seed=0):
    rs = np.random.RandomState(seed)
    y = rs.randint(k, size=n)
    x = (y[:, None] * rs.randn(1, d) + rs.randn(n, d)).astype(np.float32)
    return x, y


@pytest.mark.parametrize(("k", "stages"), [(2, 15), (3, 8), (5, 4)])
def test_same_trees_as_sklearn_before_any_tie(k, stages):
    """Few stages (no tiny nodes yet): identical trees, leaf values and importances."""
    x, y = problem(300, k, 4)
    ours = FastGradientBoosting(n_estimators=stages, random_state=0).fit(x, y)
    theirs = GradientBoostingClassifier(n_estimators=stages, random_state=0).fit(x, y)
    np.testing.assert_allclose(ours.feature_importances_, theirs.feature_importances_,
                               atol=1e-12)
    np.testing.assert_allclose(ours.decision_function(x).squeeze(),
                               theirs.decision_function(x), atol=1e-12)
    for s in range(stages):
        for c, (feat, thr, _, _, value) in enumerate(ours._trees[s]):
            tree = theirs.estimators_[s, c].tree_
            count = tree.node_count
            np.testing.assert_array_equal(feat[:count], np.maximum(tree.feature, -1))
            leaf = feat[:count] < 0
            np.testing.assert_array_equal(thr[:count][~leaf], tree.threshold[~leaf])
            np.testing.assert_allclose(value[:count][leaf], tree.value.ravel()[leaf],
                                       atol=1e-13)


def test_close_to_sklearn_at_default_settings():
    x, y = problem(1000, 6, 5, seed=1)
    xt, yt = problem(500, 6, 5, seed=2)
    ours = FastGradientBoosting(random_state=0).fit(x, y)
    theirs = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert np.abs(ours.feature_importances_ - theirs.feature_importances_).max() < 5e-3
    assert abs(np.mean(ours.predict(xt) == yt) - np.mean(theirs.predict(xt) == yt)) < 0.02


def test_labels_constant_features_and_errors():
    x, y = problem(200, 3, 3)
    x[:, 1] = 7.0  # a constant feature is never split on
    labels = np.array(["a", "b", "c"])[y]
    model = FastGradientBoosting(n_estimators=10, random_state=0).fit(x, labels)
    assert model.feature_importances_[1] == 0.0
    assert set(model.predict(x)) <= {"a", "b", "c"}
    with pytest.raises(ValueError, match="at least 2 classes"):
        FastGradientBoosting().fit(x, np.zeros(len(x), int))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 300, 1000, 4099])
def test_pairwise_sum_is_numpys_sum_to_the_bit(n):
    """The leaf values' means must round as np.average's do, or the trees drift from sklearn's."""
    from dlib.metrics.fast_gbt import _pairwise_sum

    rng = np.random.default_rng(n)
    for offset in (0, 3):
        a = rng.normal(size=n) * 10.0 ** rng.uniform(-6, 6, size=n)
        padded = np.concatenate([rng.normal(size=offset), a, rng.normal(size=2)])
        assert _pairwise_sum(padded, offset, n) == np.sum(a)
        assert _pairwise_sum(padded, offset, n) / n == np.average(a, weights=np.ones(n))


def test_newton_values_match_a_per_leaf_numpy_loop():
    from dlib.metrics.fast_gbt import _newton_values

    rng = np.random.default_rng(5)
    n, cap, factor = 700, 15, 2 / 3
    feat = np.array([0, 1, 2, -1, -1, -1, -1] + [0] * 8)  # three splits, four leaves (3..6)
    leaves = rng.choice([3, 4, 5, 6], size=n, p=[0.05, 0.15, 0.3, 0.5])
    target, yi = rng.normal(scale=0.3, size=n), rng.integers(0, 3, n)
    value = np.zeros(cap)
    _newton_values(leaves, target, yi, 1, feat, 7, factor, value)
    for leaf in range(cap):
        idx = np.nonzero(leaves == leaf)[0]
        if feat[leaf] >= 0 or leaf >= 7:
            assert value[leaf] == 0.0
            continue
        g = target[idx]
        prob = (yi[idx] == 1).astype(float) - g
        num = np.average(g, weights=np.ones(len(idx))) * factor
        den = np.average(prob * (1 - prob), weights=np.ones(len(idx)))
        assert value[leaf] == num / den
