"""BetaVAE score: hand-derived cases, its K-1 failure mode, and the classifier knob."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from dlib.metrics import compute
from dlib.metrics.beta_vae import difference_features
from dlib.metrics.toy import FactorsAsObservations, flat

DATA = FactorsAsObservations((3, 6, 10, 8))
SMALL = dict(batch_size=32, num_train=300, num_eval=200)


def run(rep, **kw):
    return compute("beta_vae", DATA, rep, 0, **{**SMALL, **kw})


def test_identity_scores_one():
    assert run(lambda x: flat(x) / np.array([3, 6, 10, 8], np.float32))["eval_accuracy"] == 1.0


def test_one_factor_missing_still_scores_one():
    """The K-1 failure mode: the missing factor is recognised by having no zero feature."""
    out = run(lambda x: flat(x)[:, :3] / np.array([3, 6, 10], np.float32))
    assert out["eval_accuracy"] > 0.95


def test_pure_noise_is_near_chance():
    noise = np.random.RandomState(3)
    out = run(lambda x: noise.randn(len(x), 4).astype(np.float32))
    assert out["eval_accuracy"] < 0.45  # chance 1/4


def test_features_by_hand_and_vectorised_mean_is_exact():
    rs = np.random.RandomState(0)
    feats, labels = difference_features(DATA, flat, 16, 20, rs)
    # the fixed factor's feature is exactly 0, the others are positive
    assert np.all(feats[np.arange(20), labels] == 0)
    x = np.random.RandomState(1).randn(30, 64, 5).astype(np.float32)
    np.testing.assert_array_equal(np.mean(x, axis=1), np.stack([np.mean(b, axis=0) for b in x]))


def test_model_knob_and_errors():
    out = run(flat, model=lambda rs: LogisticRegression(C=1e-6, random_state=rs))
    assert out["eval_accuracy"] < run(flat)["eval_accuracy"]
    with pytest.raises(ValueError, match="num_train"):
        run(flat, num_train=0)
