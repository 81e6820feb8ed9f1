"""Tests of dlib.data.correlated: the band joint, the resampled split, its device view."""

import numpy as np
import pytest
import torch
from scipy import stats

from dlib.data import ColoredDigits, DSprites, Shapes3D, band_joint, correlated_split
from dlib.data.correlated import (
    PAPER_SETUPS,
    ResampledDeviceData,
    joint_histogram,
    plot_joint,
    total_variation,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dsprites():
    return DSprites()


@pytest.fixture(scope="module")
def split(dsprites):
    """Seed 002's dSprites split: posX and scale correlated, 200,000 / 50,000."""
    return correlated_split(dsprites, sigma=0.15, seed=0)


@pytest.fixture(scope="module")
def digits():
    return ColoredDigits()


# ---- the band ---------------------------------------------------------------------------------
def test_band_joint_matches_the_formula():
    n1, n2, sigma = 7, 4, 0.3
    p = band_joint(n1, n2, sigma)
    expected = np.zeros((n1, n2))
    for a in range(n1):
        for b in range(n2):
            expected[a, b] = np.exp(-((a / (n1 - 1) - b / (n2 - 1)) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(p, expected / expected.sum())
    # the diagonal band: each row's mass peaks on the columns nearest to it on [0, 1]. Rows 1, 3
    # and 5 (a/6 = 1/6, 1/2, 5/6) lie midway between two columns (b/3): exact ties, both peaks
    peaks = [np.flatnonzero(np.isclose(row, row.max(), rtol=1e-12, atol=0)).tolist() for row in p]
    assert peaks == [[0], [0, 1], [1], [1, 2], [2], [2, 3], [3]]
    # and it falls off with the distance |a/(n1-1) - b/(n2-1)| alone (the same distance, the same p)
    q = band_joint(7, 5, 0.3)  # a/6 is never midway between two b/4: no ties
    assert q.argmax(1).tolist() == [0, 1, 1, 2, 3, 3, 4]
    distance = np.abs(np.arange(7)[:, None] / 6 - np.arange(5)[None, :] / 4).ravel()
    order = np.argsort(distance, kind="stable")
    assert np.all(np.diff(q.ravel()[order]) <= 1e-15)
    np.testing.assert_allclose(band_joint(5, 3, np.inf), np.full((5, 3), 1 / 15))

    # narrower bands are more correlated: the mutual information grows as sigma shrinks
    def mutual_information(q):
        outer = q.sum(1, keepdims=True) * q.sum(0, keepdims=True)
        return float((q * np.log(q / outer)).sum())

    mis = [mutual_information(band_joint(10, 10, s)) for s in (1.0, 0.3, 0.1, 0.03)]
    assert np.all(np.diff(mis) > 0) and mis[0] < 0.05 and mis[-1] > 1.5
    with pytest.raises(ValueError, match="sigma"):
        band_joint(3, 3, 0.0)
    with pytest.raises(ValueError, match="positive"):
        band_joint(0, 3, 0.1)


# ---- the split --------------------------------------------------------------------------------
def test_sizes_and_pairs_follow_the_paper(split, dsprites):
    assert PAPER_SETUPS["dsprites"]["factors"] == ("posX", "scale")
    assert (PAPER_SETUPS["dsprites"]["train_size"], PAPER_SETUPS["dsprites"]["test_size"]) == (
        200_000,
        50_000,
    )
    assert PAPER_SETUPS["shapes3d"]["factors"] == ("floor_hue", "wall_hue")
    assert split.pair == (3, 1) and split.pair_names == ("posX", "scale")
    assert split.train_index.shape == split.independent_index.shape == (200_000,)
    assert split.test_index.shape == (50_000,)
    assert len(np.unique(split.test_index)) == 50_000  # held out without replacement
    # the test set never leaks into either training set
    assert not np.isin(split.train_index, split.test_index).any()
    assert not np.isin(split.independent_index, split.test_index).any()
    shapes = correlated_split(Shapes3D(), sigma=0.2, seed=1)  # index arithmetic only
    assert shapes.pair_names == ("floor_hue", "wall_hue")
    assert (len(shapes.train_index), len(shapes.test_index)) == (100_000, 50_000)


def test_the_pair_follows_the_target_joint(split):
    observed = split.histogram("train")
    expected = split.joint * observed.sum()
    assert (observed[expected == 0] == 0).all()
    assert total_variation(observed, split.joint) < 0.01
    # chi-square over the cells with enough expected counts, the rest pooled
    big = expected >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    # and it really is correlated: far from the product of its marginals
    outer = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    assert total_variation(observed, outer) > 0.3


def test_other_factors_stay_uniform_and_independent_of_the_pair(split, dsprites):
    classes = split.classes("train")
    i, j = split.pair
    cell_group = classes[:, i] // 8  # coarse groups of the pair, enough counts per cell
    for k, size in enumerate(dsprites.factor_sizes):
        if k in (i, j):
            continue
        counts = np.bincount(classes[:, k], minlength=size)
        assert stats.chisquare(counts).pvalue > 1e-3, dsprites.factor_names[k]
        table = np.zeros((4, size))
        np.add.at(table, (cell_group, classes[:, k]), 1)
        assert stats.chi2_contingency(table).pvalue > 1e-3, dsprites.factor_names[k]


def test_test_set_and_independent_set_are_independent_and_uniform(split, dsprites):
    for which in ("test", "independent"):
        classes = split.classes(which)
        for k, size in enumerate(dsprites.factor_sizes):
            counts = np.bincount(classes[:, k], minlength=size)
            assert stats.chisquare(counts).pvalue > 1e-3, (which, dsprites.factor_names[k])
        pair = split.histogram(which)
        assert stats.chi2_contingency(pair).pvalue > 1e-3, which
        assert total_variation(pair, np.ones_like(pair)) < 0.03


def test_splits_are_reproducible(dsprites, split):
    again = correlated_split(dsprites, sigma=0.15, seed=0)
    np.testing.assert_array_equal(again.train_index, split.train_index)
    np.testing.assert_array_equal(again.test_index, split.test_index)
    other = correlated_split(dsprites, sigma=0.15, seed=1)
    assert not np.array_equal(other.train_index, split.train_index)


def test_a_custom_joint_and_factor_numbers(digits):
    """Digit = colour exactly: the training set has only the diagonal."""
    split = correlated_split(digits, (0, 1), joint=np.eye(10), train_size=500, test_size=0)
    classes = split.classes("train")
    assert (classes[:, 0] == classes[:, 1]).all()
    assert set(classes[:, 0]) == set(range(10))


def test_bad_requests_raise(dsprites, digits):
    with pytest.raises(ValueError, match="unknown factor 'posx'.*posX"):
        correlated_split(dsprites, ("posx", "scale"))
    with pytest.raises(ValueError, match="exactly two"):
        correlated_split(dsprites, ("posX",))
    with pytest.raises(ValueError, match="must differ"):
        correlated_split(dsprites, ("posX", "posX"))
    with pytest.raises(ValueError, match="out of range"):
        correlated_split(dsprites, (0, 5))
    with pytest.raises(ValueError, match="shape \\(32, 6\\)"):
        correlated_split(dsprites, ("posX", "scale"), joint=np.ones((6, 32)))
    with pytest.raises(ValueError, match="non-negative"):
        correlated_split(digits, joint=-np.eye(10), train_size=10, test_size=0)
    with pytest.raises(ValueError, match="test_size"):
        correlated_split(digits, train_size=10, test_size=100)
    with pytest.raises(ValueError, match="no training images left"):
        correlated_split(digits, train_size=10, test_size=99)
    with pytest.raises(ValueError, match="name the two"):
        correlated_split(DSpritesRenamed(), train_size=10, test_size=0)


class DSpritesRenamed(DSprites):
    name = "not_in_the_paper"


def test_joint_histogram_counts_pairs():
    classes = np.array([[0, 1, 2], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(joint_histogram(classes, (0, 2), (2, 3)), [[1, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(
        joint_histogram(torch.as_tensor(classes), (1, 0), (2, 2), normalise=True),
        [[0, 1 / 3], [2 / 3, 0]],
    )


# ---- the device view --------------------------------------------------------------------------
def test_training_view_draws_the_correlated_multiset(digits, dsprites):
    split = correlated_split(digits, sigma=0.1, train_size=3000, test_size=0, seed=2)
    view = split.to_device("train", CPU)
    assert isinstance(view, ResampledDeviceData) and len(view) == 3000
    assert view.images.shape[0] == len(np.unique(split.train_index))
    x, factors = view.sample_with_factors(5_000, torch.Generator().manual_seed(0))
    assert x.shape == (5_000, 3, 64, 64)
    drawn = joint_histogram(factors, (0, 1), (10, 10))
    assert total_variation(drawn, split.histogram("train")) < 0.06  # 5,000 draws
    assert total_variation(drawn, split.joint) < 0.08  # 3,000 training draws: TV noise ~0.04
    test = correlated_split(dsprites, train_size=10, test_size=30).to_device("test", CPU)
    assert not isinstance(test, ResampledDeviceData) and len(test) == 30
    with pytest.raises(ValueError, match="which"):
        split.to_device("validation", CPU)
    with pytest.raises(ValueError, match="no test set"):
        split.to_device("test", CPU)


def test_fit_trains_on_the_correlated_view(digits):
    from dlib.methods import BetaVAE
    from dlib.train import fit

    split = correlated_split(digits, sigma=0.1, train_size=200, seed=3)
    view = split.to_device("train", CPU)
    method = BetaVAE((3, 64, 64), seed=0)
    history = fit(method, view, 2, batch_size=4, seed=0, log_every=1, show_progress=False)
    assert history.steps == [1, 2] and np.isfinite(history["loss"]).all()


def test_plot_joint(split):
    import matplotlib.pyplot as plt

    fig = plot_joint(split)
    assert len(fig.axes) == 4  # target, train, test, colour bar
    image = fig.axes[1].images[0].get_array()
    np.testing.assert_allclose(image, split.histogram("train") / split.histogram("train").max())
    plt.close(fig)
