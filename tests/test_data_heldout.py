"""dlib.data.HeldOut: a metric sampler restricted to the rows of a test split."""

import numpy as np
import pytest

from dlib.data import HeldOut, load


def test_held_out_draws_only_its_rows_and_renders_them_as_the_data_does():
    data = load("dsprites")
    index = np.array([5, 70_000, 123_456, 700_000])
    held = HeldOut(data, index)
    assert held.num_factors == data.num_factors
    assert held.factors_num_values == list(data.factor_sizes)
    factors, images = held.sample(50, np.random.RandomState(3))
    assert set(data.classes_to_index(factors)) <= set(index.tolist())
    # the same stream by hand: rows first, then the images of their factors
    rs = np.random.RandomState(3)
    rows = index[rs.randint(len(index), size=50)]
    np.testing.assert_array_equal(factors, data.index_to_classes(rows))
    np.testing.assert_array_equal(images, data.sample_observations_from_factors(factors, rs))
    again = held.sample_observations(50, np.random.RandomState(3))
    np.testing.assert_array_equal(again, images)


def test_held_out_refuses_an_empty_index():
    with pytest.raises(ValueError, match="non-empty"):
        HeldOut(load("dsprites"), np.array([], dtype=int))
