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
