"""UDR and DEFT's max-m NMI: hand-derived cases, quirks, errors, reference (when available)."""

import functools
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from dlib.metrics import compute
from dlib.metrics.mig import mig
from dlib.metrics.nmi import max_m_nmi, nmi_matrix
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid
from dlib.metrics.udr import relative_strength, udr

RS = np.random.RandomState(0)
Z = RS.randn(1000, 4)
KL = np.ones(4)


def test_relative_strength_by_hand():
    assert relative_strength(np.eye(3)[[2, 0, 1]]) == 1.0
    assert relative_strength(np.ones((4, 4))) == pytest.approx(0.25)
    assert relative_strength(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="no informative latent"):
        relative_strength(np.zeros((0, 3)))


def test_lasso_identical_models_score_point_nine_and_unrelated_zero():
    same = udr([Z, Z[:, [2, 0, 3, 1]] * [1, -1, 1, 2]], [KL, KL])
    assert 0.85 < same["model_scores"][0] < 0.95  # the quirk: not 1
    other = udr([Z, RS.randn(1000, 4)], [KL, KL])
    assert other["model_scores"] == [0.0, 0.0]
    assert same["pairwise_disentanglement_scores"].shape == (2, 2, 1)
    assert same["raw_correlations"].shape == (2, 2, 4, 4)


def test_spearman_identical_permuted_models():
    out = udr([Z, -Z[:, ::-1], Z], [KL, KL, KL], correlation_matrix="spearman")
    assert all(0.8 < s < 1 for s in out["model_scores"])


def test_entangled_model_scores_lower_and_kl_filter():
    c = np.cos(np.pi / 4)
    rot = Z.copy()
    rot[:, :2] = Z[:, :2] @ np.array([[c, -c], [c, c]])
    good = udr([Z, Z], [KL, KL], correlation_matrix="spearman")["model_scores"][0]
    bad = udr([Z, rot], [KL, KL], correlation_matrix="spearman")["model_scores"][0]
    assert bad < good - 0.1
    # a dead latent (KL 0) in both models is zeroed and filtered: same score as without it
    dead = np.concatenate([Z, np.ones((1000, 1))], 1)
    kl = np.append(KL, 0.0)
    with_dead = udr([dead, dead], [kl, kl], correlation_matrix="spearman")["model_scores"][0]
    assert with_dead == pytest.approx(good, abs=1e-12)


def test_udr_errors():
    with pytest.raises(ValueError, match=">= 2 models"):
        udr([Z], [KL])
    with pytest.raises(ValueError, match="entries for"):
        udr([Z, Z], [KL, KL[:2]])
    with pytest.raises(ValueError, match="same N"):
        udr([Z, Z[:10]], [KL, KL])
    with pytest.raises(ValueError, match="lasso' or 'spearman"):
        udr([Z, Z], [KL, KL], correlation_matrix="pearson")
    data = FactorsAsObservations((3, 4))
    with pytest.raises(ValueError, match="multiple of batch_size"):
        compute("udr", data, [], 0, num_data_points=15)


def models():
    def make(perm, scale):
        return lambda x: (flat(x)[:, perm] * scale, np.ones(len(perm)))

    return [make([0, 1, 2], 1.0), make([2, 0, 1], -2.0), make([1, 2, 0], 0.5)]


def test_udr_harness():
    out = compute("udr", FactorsAsObservations((5, 6, 7)), models(), 0,
                  correlation_matrix="spearman")
    assert len(out["model_scores"]) == 3 and min(out["model_scores"]) > 0.8


@functools.cache  # gin refuses to register the same configurable twice
def _reference_udr():
    path = Path(os.environ.get("DLIB_UDR_REFERENCE", "/tmp/ref/udr/udr.py"))
    if not path.exists():
        return None
    try:
        from dlib.metrics.reference import load_reference

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_reference()  # aliases gin.tf
            spec = importlib.util.spec_from_file_location("udr_reference", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return module
    except Exception:  # noqa: BLE001
        return None


@pytest.mark.parametrize("corr", ["lasso", "spearman"])
def test_udr_against_reference(corr):
    """Only when disentanglement_lib's evaluation/udr/metrics/udr.py (not in the wheel) has been
    saved at $DLIB_UDR_REFERENCE (default /tmp/ref/udr/udr.py)."""
    ref = _reference_udr()
    if ref is None:
        pytest.skip("disentanglement_lib's udr.py is not available (it is not in the wheel)")
    data = FactorsAsObservations((5, 6, 7), noise=0.3)
    kw = dict(batch_size=10, num_data_points=500, correlation_matrix=corr)
    theirs = ref.compute_udr_sklearn(data, models(), np.random.RandomState(0), **kw)
    ours = compute("udr", data, models(), 0, **kw)
    np.testing.assert_allclose(ours["model_scores"], theirs["model_scores"], atol=1e-9)
    np.testing.assert_allclose(ours["pairwise_disentanglement_scores"],
                               theirs["pairwise_disentanglement_scores"], atol=1e-9)


def test_max_m_nmi_by_hand_and_mig_identity():
    f = full_grid((3, 5, 7), repeats=2)
    codes = f[:, [0, 0, 1, 2]].astype(float)  # factor 0 leaks fully into a second dimension
    np.testing.assert_allclose(max_m_nmi(codes, f, 1), [1, 1, 1], atol=1e-12)
    np.testing.assert_allclose(max_m_nmi(codes, f, 2), [1, 0, 0], atol=1e-12)
    rs = np.random.RandomState(0)
    f = rs.randint(6, size=(3000, 3))
    z = f + rs.randn(3000, 3) @ rs.randn(3, 3)
    gap = np.mean(max_m_nmi(z, f, 1) - max_m_nmi(z, f, 2))
    assert gap == pytest.approx(mig(z, f)["discrete_mig"], abs=1e-12)
    assert nmi_matrix(z, f).shape == (3, 3)
    with pytest.raises(ValueError, match="exceeds"):
        max_m_nmi(z, f, 4)
