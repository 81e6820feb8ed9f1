"""Cross-check against disentanglement_lib's own metric functions on the same inputs.

Skipped when disentanglement_lib is not importable; install it (no TensorFlow needed) with
``pip install disentanglement-lib==1.5 --no-deps gin-config==0.4.0 six absl-py``.
"""

import warnings

import numpy as np
import pytest

from dlib.metrics import compute
from dlib.metrics.fast_gbt import HAVE_NUMBA
from dlib.metrics.reference import INSTALL, load_reference
from dlib.metrics.toy import FactorsAsObservations, flat

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        REF = load_reference()
except ImportError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"disentanglement_lib not importable ({err}); {INSTALL}", allow_module_level=True)

DATA = FactorsAsObservations(noise=0.05)  # dSprites' factor sizes, nuisance drawn from the rs


def mixed(seed: int, dims: int = 7):
    """A partly entangled float32 code: a random linear mix plus a warped copy of one factor."""
    a = np.random.RandomState(seed).randn(5, dims).astype(np.float32)
    a[:, :5] += 3 * np.eye(5, dtype=np.float32)
    scale = np.array([3, 6, 40, 32, 32], np.float32)

    def rep(x):
        z = (flat(x) / scale) @ a
        z[:, -1] = np.tanh(z[:, -1])
        return z

    return rep


def same(ours: dict, theirs: dict, tol: float, keys=None):
    for key in keys or theirs:
        assert ours[key] == pytest.approx(float(theirs[key]), abs=tol), key


@pytest.mark.parametrize("seed", [0, 1])
def test_mig(seed):
    rep = mixed(seed)
    theirs = REF.mig.compute_mig(DATA, rep, np.random.RandomState(seed), num_train=10000)
    same(compute("mig", DATA, rep, seed), theirs, 1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_factor_vae(seed):
    rep = mixed(seed)
    kw = dict(batch_size=64, num_train=2000, num_eval=1000, num_variance_estimate=5000)
    theirs = REF.factor_vae.compute_factor_vae(DATA, rep, np.random.RandomState(seed), **kw)
    ours = compute("factor_vae", DATA, rep, seed, **kw)
    same(ours, theirs, 1e-12, ["train_accuracy", "eval_accuracy"])
    assert ours["num_active_dims"] == 7 == theirs["num_active_dims"]


def test_factor_vae_active_dims_bug_is_fixed():
    def rep(x):
        z = mixed(0)(x)
        z[:, 3] = 0.0  # a dead dimension
        return z

    kw = dict(batch_size=64, num_train=500, num_eval=500, num_variance_estimate=2000)
    theirs = REF.factor_vae.compute_factor_vae(DATA, rep, np.random.RandomState(0), **kw)
    ours = compute("factor_vae", DATA, rep, 0, **kw)
    assert theirs["num_active_dims"] == 7 and ours["num_active_dims"] == 6
    same(ours, theirs, 1e-12, ["train_accuracy", "eval_accuracy"])


def test_beta_vae():
    rep = mixed(2)
    kw = dict(batch_size=64, num_train=1000, num_eval=500)
    theirs = REF.beta_vae.compute_beta_vae_sklearn(DATA, rep, np.random.RandomState(0), **kw)
    same(compute("beta_vae", DATA, rep, 0, **kw), theirs, 1e-12)


@pytest.mark.parametrize("continuous", [True, False])
def test_sap(continuous):
    rep = mixed(0)
    kw = dict(num_train=10000 if continuous else 3000, num_test=2000)
    theirs = REF.sap_score.compute_sap(
        DATA, rep, np.random.RandomState(0), continuous_factors=continuous, **kw
    )
    same(compute("sap", DATA, rep, 0, continuous_factors=continuous, **kw), theirs, 1e-9)


SMALL_DATA = FactorsAsObservations((3, 6, 8), noise=0.05)


def small_mixed(x):
    a = np.array([[1.0, 0.2, 0.0, 0.1], [0.3, 1.0, 0.1, 0.0], [0.0, 0.4, 1.0, 0.5]], np.float32)
    return flat(x) @ a


def test_dci_seeded_like_ours_is_identical(monkeypatch):
    """With the same GBT seed both libraries grow the same trees: agreement is exact."""
    from sklearn.ensemble import GradientBoostingClassifier

    monkeypatch.setattr(
        REF.dci.ensemble, "GradientBoostingClassifier",
        lambda: GradientBoostingClassifier(random_state=0),
    )
    kw = dict(num_train=1000, num_test=500)
    theirs = REF.dci.compute_dci(SMALL_DATA, small_mixed, np.random.RandomState(0), **kw)
    same(compute("dci", SMALL_DATA, small_mixed, 0, model="gbt", **kw), theirs, 1e-12)
    if HAVE_NUMBA:  # the sorted-once GBT: same trees up to rounding-level ties
        same(compute("dci", SMALL_DATA, small_mixed, 0, model="fast_gbt", **kw), theirs, 2e-3)


def test_dci_unseeded_reference_within_noise():
    """The reference's GBT is unseeded (global np.random), so ties between equally good splits
    break differently. At this size the reference alone spans ~4e-3 in D across global seeds."""
    kw = dict(num_train=1000, num_test=500)
    np.random.seed(123)
    theirs = REF.dci.compute_dci(SMALL_DATA, small_mixed, np.random.RandomState(0), **kw)
    same(compute("dci", SMALL_DATA, small_mixed, 0, **kw), theirs, 1e-2)


def test_modularity_explicitness():
    rep = mixed(1)
    kw = dict(num_train=5000, num_test=2000)
    theirs = REF.modularity_explicitness.compute_modularity_explicitness(
        DATA, rep, np.random.RandomState(0), **kw
    )
    same(compute("modularity_explicitness", DATA, rep, 0, **kw), theirs, 1e-6)


@pytest.mark.parametrize("quantile", [0.99, 1.0])
def test_irs(quantile):
    rep = mixed(0)
    theirs = REF.irs.compute_irs(
        DATA, rep, np.random.RandomState(0), diff_quantile=quantile, num_train=10000,
        batch_size=16,
    )
    ours = compute("irs", DATA, rep, 0, diff_quantile=quantile)
    same(ours, theirs, 1e-6, ["IRS"])
    assert ours["num_active_dims"] == 7 != theirs["num_active_dims"]  # the reference's bug


@pytest.mark.parametrize("seed", [0, 1])
def test_unsupervised(seed):
    rep = mixed(seed)
    theirs = REF.unsupervised_metrics.unsupervised_metrics(
        DATA, rep, np.random.RandomState(seed), num_train=10000
    )
    same(compute("unsupervised", DATA, rep, seed), theirs, 1e-6)
