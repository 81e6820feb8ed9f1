"""Shared metric machinery: input checks, the sampling stream, binning and information."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import mutual_info_score

from dlib.metrics import utils
from dlib.metrics.toy import FactorsAsObservations, flat


def test_sampling_stream_is_disentanglement_libs():
    """Chunks of 16 via data.sample, factor columns one at a time: the expected stream by hand."""
    data = FactorsAsObservations((3, 5, 7))
    codes, factors = utils.sample_codes_factors(data, flat, 40, np.random.RandomState(7), 16)
    rs = np.random.RandomState(7)
    expected = []
    for n in (16, 16, 8):
        expected.append(np.stack([rs.randint(k, size=n) for k in (3, 5, 7)], axis=1))
    expected = np.concatenate(expected)
    np.testing.assert_array_equal(factors, expected)
    np.testing.assert_array_equal(codes, expected.astype(np.float32))
    assert codes.dtype == np.float32 and factors.dtype == np.int64


def test_one_big_batch_is_a_different_stream():
    data = FactorsAsObservations((3, 5, 7))
    _, a = utils.sample_codes_factors(data, flat, 40, np.random.RandomState(7), 16)
    _, b = utils.sample_codes_factors(data, flat, 40, np.random.RandomState(7), 40)
    assert not np.array_equal(a, b)


def test_torch_outputs_are_gathered_and_converted_once():
    data = FactorsAsObservations((3, 5))
    calls = []

    def rep(x):
        calls.append(1)
        return torch.as_tensor(flat(x), dtype=torch.bfloat16)

    codes, factors = utils.sample_codes_factors(data, rep, 33, np.random.RandomState(0))
    assert len(calls) == 3 and codes.dtype == np.float32
    np.testing.assert_array_equal(codes, factors)


def test_bad_representation_outputs():
    data = FactorsAsObservations((3, 5))
    rs = np.random.RandomState(0)
    with pytest.raises(ValueError, match=r"shape \(batch, D\)"):
        utils.sample_codes_factors(data, lambda x: flat(x)[:1], 20, rs)
    with pytest.raises(ValueError, match="NaN"):
        utils.sample_codes_factors(data, lambda x: flat(x) * np.nan, 20, rs)
    widths = iter([2, 3])
    with pytest.raises(ValueError, match="changed its width"):
        utils.sample_codes_factors(data, lambda x: np.zeros((len(x), next(widths))), 20, rs)
    with pytest.raises(ValueError, match="num_points"):
        utils.sample_codes_factors(data, flat, 0, rs)


@pytest.mark.parametrize(
    ("codes", "error", "match"),
    [
        (np.zeros((0, 3)), ValueError, "empty"),
        (np.zeros((4, 0)), ValueError, "empty"),
        (np.zeros(4), ValueError, r"shape \(N, D\)"),
        (np.zeros((4, 2), dtype=bool), TypeError, "real numbers"),
        (np.zeros((4, 2), dtype=complex), TypeError, "real numbers"),
        (np.array([[0.0, np.inf]]), ValueError, r"dimension\(s\) \[1\]"),
    ],
)
def test_as_codes_errors(codes, error, match):
    with pytest.raises(error, match=match):
        utils.as_codes(codes)


def test_as_factors_and_pair_errors():
    with pytest.raises(TypeError, match="integer factor classes"):
        utils.as_factors(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same number of points"):
        utils.check_pair(np.zeros((3, 2)), np.zeros((4, 2), dtype=int))
    with pytest.raises(TypeError, match="RandomState"):
        utils.as_random_state(np.random.default_rng(0))
    assert isinstance(utils.as_random_state(3), np.random.RandomState)


def test_histogram_discretize_by_hand():
    # 40 evenly spaced values: two per bin; the maximum lands in bin 20; constant -> 11.
    x = np.stack([np.arange(40.0), np.full(40, 3.0)], axis=1)
    d = utils.histogram_discretize(x, 20)
    np.testing.assert_array_equal(d[:, 0], np.repeat(np.arange(1, 21), 2))
    np.testing.assert_array_equal(d[:, 1], 11)
    # an outlier squeezes everything else into the first bin
    y = np.append(np.arange(10.0), 1000.0)[:, None]
    assert set(utils.histogram_discretize(y, 20)[:-1, 0]) == {1}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(1, 9))
def test_mutual_info_equals_sklearn(seed, ka, kb):
    rs = np.random.RandomState(seed)
    a = rs.randint(ka, size=(200, 2)) * 3 - 5  # arbitrary integer labels
    b = np.stack([rs.randint(kb, size=200), a[:, 0] % 2], axis=1)
    m = utils.discrete_mutual_info(a, b)
    for i in range(2):
        for j in range(2):
            assert m[i, j] == pytest.approx(mutual_info_score(b[:, j], a[:, i]), abs=1e-12)
    h = utils.discrete_entropy(b)
    assert h[0] == pytest.approx(mutual_info_score(b[:, 0], b[:, 0]), abs=1e-12)


def test_mutual_info_known_values():
    # on a full grid two factors are exactly independent; a label with itself has MI = H
    a = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 3)
    m = utils.discrete_mutual_info(a, a)
    np.testing.assert_allclose(m, np.diag([np.log(2)] * 2), atol=1e-15)
    np.testing.assert_allclose(utils.discrete_entropy(a), [np.log(2)] * 2)


def test_normalize_codes_guards_constant_columns():
    z, mean, std = utils.normalize_codes(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(z, [[-1.0, 0.0], [1.0, 0.0]])


def test_sampled_representation_uses_its_own_stream():
    data = FactorsAsObservations((3, 5))

    def encode(x):
        return flat(x), np.zeros_like(flat(x))

    rep = utils.sampled_representation(encode, seed=1)
    codes, factors = utils.sample_codes_factors(data, rep, 32, np.random.RandomState(0))
    _, f2 = utils.sample_codes_factors(data, flat, 32, np.random.RandomState(0))
    np.testing.assert_array_equal(factors, f2)  # the metric's stream is untouched
    assert 0.5 < np.std(codes - factors) < 1.5  # unit noise was added
