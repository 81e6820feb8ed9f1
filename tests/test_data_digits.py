"""Tests of dlib.data.digits: coloured scikit-learn digits, the MNIST idx reader."""

import colorsys
import gzip

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from dlib.data import DATASETS, ColoredDigits, MnistColored, load
from dlib.data.digits import digit_colours, read_idx, write_idx

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return ColoredDigits()


@pytest.fixture(scope="module")
def sklearn_digits():
    return load_digits()


def observe_all(data, classes, example):
    """Observations (N, 3, 64, 64) of classes with chosen examples, via the stored layout."""
    stored = data.images_from_classes(torch.as_tensor(classes), CPU)
    return data._paint(stored, torch.as_tensor(example))


# ---- the grid and the painting ------------------------------------------------------------------
def test_grid_and_registration(data, sklearn_digits):
    assert DATASETS["colored_digits"] is ColoredDigits and DATASETS["mnist_colored"] is MnistColored
    assert data.factor_names == ("digit", "color") and data.factor_sizes == (10, 10)
    assert data.observation_shape == (64, 64, 3) and data.num_observations == 100
    np.testing.assert_array_equal(data.factor_values[0], np.arange(10))
    np.testing.assert_allclose(data.factor_values[1], np.arange(10) / 10)
    k = np.bincount(sklearn_digits.target).min()
    assert data.per_digit == k == 174
    assert data.stored.shape == (100, k + 3, 8, 8) and data.stored.dtype == np.uint8


def test_colours_are_the_3dshapes_hues():
    expected = [colorsys.hsv_to_rgb(h / 10, 1.0, 1.0) for h in range(10)]
    np.testing.assert_allclose(digit_colours(), expected, atol=1e-12)


def test_examples_are_the_first_of_each_digit_in_file_order(data, sklearn_digits):
    for d in range(10):
        rows = [i for i, t in enumerate(sklearn_digits.target) if t == d][: data.per_digit]
        expected = np.round(sklearn_digits.images[rows] * 255 / 16).astype(np.uint8)
        np.testing.assert_array_equal(data.examples[d], expected)
        for c in range(10):  # every colour of the digit stores the same examples
            np.testing.assert_array_equal(data.stored[d * 10 + c, : data.per_digit], expected)


def test_painting_is_grey_times_colour(data, sklearn_digits):
    classes = np.array([[d, c] for d in range(10) for c in range(10)])
    example = np.arange(100) % data.per_digit
    x = observe_all(data, classes, example).numpy()
    assert x.shape == (100, 3, 64, 64) and x.min() >= 0 and x.max() <= 1
    # every colour has max channel 1, so the brightest channel is the grey digit itself ...
    grey = x.max(1)
    colours = digit_colours()
    for i, (_, c) in enumerate(classes):
        np.testing.assert_allclose(x[i], grey[i][None] * colours[c][:, None, None], atol=1e-6)
    # ... and it does not depend on the colour
    same_example = observe_all(data, np.array([[3, c] for c in range(10)]), np.zeros(10, int))
    assert torch.allclose(same_example.max(1).values, same_example[0].max(0).values, atol=1e-6)
    # the 48 x 48 upscale keeps the 8 x 8 digit: 6 x 6 block means give it back, margins black
    original = data.examples[classes[:, 0], example] / 255.0
    inner = grey[:, 8:56, 8:56].reshape(100, 8, 6, 8, 6).mean((2, 4))
    assert np.abs(inner - original).mean() < 0.06  # (bicubic smooths the strokes)
    assert np.corrcoef(inner.ravel(), original.ravel())[0, 1] > 0.97
    assert grey[:, :8].max() == grey[:, 56:].max() == 0


def test_each_factor_changes_the_image(data):
    x = observe_all(data, np.array([[d, 4] for d in range(10)]), np.zeros(10, int))
    diff = (x[:, None] - x[None]).abs().mean((2, 3, 4))
    assert diff[~torch.eye(10, dtype=torch.bool)].min() > 0.02  # ten different digits
    y = observe_all(data, np.array([[7, c] for c in range(10)]), np.zeros(10, int))
    mean_colour = y.sum((2, 3)) / y.max(1).values.sum((1, 2))[:, None]
    np.testing.assert_allclose(mean_colour.numpy(), digit_colours(), atol=1e-5)


def test_numpy_protocol_draws_the_example_after_the_factors(data):
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    factors, x = data.sample(16, ours)
    expected_factors = np.stack([theirs.randint(10, size=16), theirs.randint(10, size=16)], 1)
    example = theirs.randint(data.per_digit, size=16)
    np.testing.assert_array_equal(factors, expected_factors)
    expected = observe_all(data, factors, example).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(x, expected)
    assert x.dtype == np.float32 and x.shape == (16, 64, 64, 3)


def test_train_and_test_splits_share_no_handwriting(data, sklearn_digits):
    train, test = ColoredDigits(split="train"), ColoredDigits(split="test")
    assert (train.per_digit, test.per_digit) == (139, 35)  # 80 / 20 of the 174 per digit
    both = np.concatenate([train.source_index, test.source_index], axis=1)
    np.testing.assert_array_equal(both, data.source_index)  # the same examples, split in order
    assert not set(train.source_index.ravel()) & set(test.source_index.ravel())
    assert load("colored_digits", split="test").per_digit == 35
    with pytest.raises(ValueError, match="split"):
        ColoredDigits(split="valid")
    with pytest.raises(ValueError, match="cannot be split"):
        ColoredDigits(per_digit=2, split="test")  # 20 % of 2 rounds to 0


def test_32_pixel_canvas_is_the_64_pixel_picture_pooled():
    big, small = ColoredDigits(), ColoredDigits(image_size=32)
    assert small.observation_shape == (32, 32, 3) and small.inner_size == 24
    classes = np.array([[d, c] for d in range(10) for c in (0, 3, 7)])
    xb = big.sample_observations_from_factors(classes, np.random.RandomState(1))
    xs = small.sample_observations_from_factors(classes, np.random.RandomState(1))
    assert xs.shape == (30, 32, 32, 3)
    pooled = torch.nn.functional.avg_pool2d(torch.tensor(xb).permute(0, 3, 1, 2), 2)
    diff = np.abs(pooled.permute(0, 2, 3, 1).numpy() - xs)
    # the same digit, placed alike: bicubic resampling differs only at the strokes' edges
    assert diff.mean() < 0.02 * xs.mean() and diff.max() < 0.5
    with pytest.raises(ValueError, match="drawn at"):
        ColoredDigits(image_size=48)


def test_torch_path_picks_one_of_the_examples(data):
    dev = data.to_device(CPU)
    assert dev.images.shape == (100, 177, 8, 8)
    x, factors = dev.sample_with_factors(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 3, 64, 64) and x.dtype == torch.float32
    for i in range(0, 64, 8):  # each observation is one of the K painted examples of its class
        candidates = observe_all(
            data, np.repeat(factors[i : i + 1].numpy(), data.per_digit, 0), np.arange(174)
        )
        assert (candidates - x[i]).abs().amax((1, 2, 3)).min() < 1e-6
    with pytest.raises(ValueError, match="uint8"):
        data.observe(torch.zeros((2, 177, 8, 8)))
    with pytest.raises(ValueError, match="per_digit"):
        ColoredDigits(per_digit=175)
    assert ColoredDigits(per_digit=5).stored.shape == (100, 8, 8, 8)


# ---- MNIST idx files --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    arr = (np.random.RandomState(0).rand(3, 4, 5) * 100).astype(dtype)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, arr)), arr)


def test_idx_header_is_the_official_one(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])  # 0x00000803: unsigned bytes, three dimensions
    assert np.frombuffer(raw[4:16], ">i4").tolist() == [2, 28, 28]
    assert len(raw) == 16 + 2 * 28 * 28
    path = write_idx(tmp_path / "y", np.zeros(5, np.uint8))
    assert path.read_bytes()[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 5])  # labels: 0x00000801


def write_mnist(directory, per_digit=3, split="train", gz=True, seed=0):
    rs = np.random.RandomState(seed)
    labels = rs.permutation(np.repeat(np.arange(10), per_digit)).astype(np.uint8)
    labels = np.append(labels, [1, 1]).astype(np.uint8)  # extra ones: the rarest digit sets K
    images = (rs.rand(len(labels), 28, 28) * 255).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    directory.mkdir(exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_tiny_idx_files(tmp_path, gz):
    images, labels = write_mnist(tmp_path / "mnist", gz=gz)
    data = load("mnist_colored", path=tmp_path / "mnist", md5={})
    assert data.per_digit == 3 and data.stored.shape == (100, 6, 28, 28)
    for d in range(10):
        np.testing.assert_array_equal(data.examples[d], images[np.flatnonzero(labels == d)[:3]])
    x = data.sample_observations(4, np.random.RandomState(0))
    assert x.shape == (4, 64, 64, 3) and x.max() <= 1
    write_mnist(tmp_path / "mnist", split="test", gz=gz, seed=1)
    test = load("mnist_colored", path=tmp_path / "mnist", split="test", md5={})
    assert not np.array_equal(test.examples, data.examples)


def test_mnist_errors(tmp_path):
    with pytest.raises(ValueError, match="path="):
        load("mnist_colored")
    with pytest.raises(FileNotFoundError, match="not found"):
        load("mnist_colored", path=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*never downloads"):
        load("mnist_colored", path=tmp_path / "empty")
    directory = tmp_path / "mnist"
    write_mnist(directory)
    with pytest.raises(ValueError, match="MD5"):
        load("mnist_colored", path=directory)  # the official checksums
    with pytest.raises(ValueError, match="split"):
        load("mnist_colored", path=directory, split="valid", md5={})
    images_path = directory / "train-images-idx3-ubyte.gz"
    good = images_path.read_bytes()
    images_path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="gzip"):
        load("mnist_colored", path=directory, md5={})
    raw = gzip.decompress(good)
    images_path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(ValueError, match="truncated"):
        load("mnist_colored", path=directory, md5={})
    images_path.write_bytes(gzip.compress(b"\x00\x00\x99\x03" + raw[4:]))
    with pytest.raises(ValueError, match="not an idx file"):
        load("mnist_colored", path=directory, md5={})
    write_idx(images_path, np.zeros((31, 28, 28), np.uint8))  # one image fewer than labels
    with pytest.raises(ValueError, match="labels must be"):
        load("mnist_colored", path=directory, md5={})
    write_idx(images_path, np.zeros((32, 28, 28), np.uint8))
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.full(32, 3, np.uint8))
    with pytest.raises(ValueError, match="every digit"):
        load("mnist_colored", path=directory, md5={})
