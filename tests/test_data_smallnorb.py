"""Tests of dlib.data.smallnorb on tiny files in the official binary-matrix format."""

import gzip
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from dlib.data import DATASETS, SmallNORB, load, smallnorb
from dlib.data.smallnorb import (
    NORB_MAGIC,
    SMALLNORB_PARTS,
    SMALLNORB_SHA256,
    load_smallnorb,
    read_norb_matrix,
    write_norb_matrix,
)

CPU = torch.device("cpu")
SIDE = 8  # the fixture's photographs are 8 x 8 (the real ones 96 x 96): same code path
INSTANCES = {"training": [4, 6, 7, 8, 9], "testing": [0, 1, 2, 3, 5]}


def write_part(directory, part, seed, suffix=".mat"):
    """One part's dat/cat/info files: every (category, instance, elevation, azimuth, lighting)
    of its five instances once, in shuffled order; the right camera is the left inverted."""
    kind = "training" if part.endswith("training") else "testing"
    grid = np.stack(
        np.meshgrid(range(5), INSTANCES[kind], range(9), range(18), range(6), indexing="ij"), -1
    ).reshape(-1, 5)
    rs = np.random.RandomState(seed)
    grid = grid[rs.permutation(len(grid))]
    left = rs.randint(0, 256, size=(len(grid), SIDE, SIDE)).astype(np.uint8)
    dat = np.stack([left, 255 - left], 1)
    info = np.stack([grid[:, 1], grid[:, 2], 2 * grid[:, 3], grid[:, 4]], 1).astype(np.int32)
    write_norb_matrix(directory / f"{part}-dat{suffix}", dat)
    write_norb_matrix(directory / f"{part}-cat{suffix}", grid[:, 0].astype(np.int32))
    write_norb_matrix(directory / f"{part}-info{suffix}", info)
    return grid, left


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    directory = tmp_path_factory.mktemp("norb")
    parts = [write_part(directory, part, seed) for seed, part in enumerate(SMALLNORB_PARTS)]
    features = np.concatenate([p[0] for p in parts])
    left = np.concatenate([p[1] for p in parts])
    return directory, features, left


@pytest.fixture(scope="module")
def data(fixture):
    return SmallNORB(path=fixture[0])


def resized(img: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((64, 64), Image.Resampling.LANCZOS))


# ---- the binary-matrix format -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["u1", "<i2", "<i4", "<f4", "<f8"])
@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (2, 2, 3, 5)])
def test_matrix_round_trip(tmp_path, dtype, shape):
    arr = (np.random.RandomState(0).rand(*shape) * 100).astype(dtype)
    for name in ("m.mat", "m.mat.gz"):
        np.testing.assert_array_equal(
            read_norb_matrix(write_norb_matrix(tmp_path / name, arr)), arr
        )


def test_matrix_header_is_the_official_one(tmp_path):
    raw = write_norb_matrix(tmp_path / "dat.mat", np.zeros((3, 2, 4, 4), np.uint8)).read_bytes()
    assert np.frombuffer(raw[:24], "<i4").tolist() == [507333717, 4, 3, 2, 4, 4]  # 0x1E3D4C55
    assert len(raw) == 24 + 3 * 2 * 4 * 4
    # one-dimensional matrices still write three sizes (the unused ones are 1)
    raw = write_norb_matrix(tmp_path / "cat.mat", np.arange(5, dtype=np.int32)).read_bytes()
    assert np.frombuffer(raw[:20], "<i4").tolist() == [507333716, 1, 5, 1, 1]  # 0x1E3D4C54
    assert len(raw) == 20 + 5 * 4
    assert {hex(m) for m in NORB_MAGIC} >= {"0x1e3d4c51", "0x1e3d4c53", "0x1e3d4c54", "0x1e3d4c55"}


def test_matrix_errors(tmp_path):
    path = write_norb_matrix(tmp_path / "a.mat", np.zeros((4, 5), np.int32))
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_norb_matrix(path)
    path.write_bytes(np.array([123456], "<i4").tobytes() + raw[4:])
    with pytest.raises(ValueError, match="magic number 123456"):
        read_norb_matrix(path)
    path.write_bytes(raw[:10])
    with pytest.raises(ValueError, match="too short"):
        read_norb_matrix(path)
    zipped = gzip.compress(raw)
    path.write_bytes(zipped[: len(zipped) // 2])
    with pytest.raises(ValueError, match="gzip"):
        read_norb_matrix(path)
    with pytest.raises(ValueError, match="NORB matrices hold"):
        write_norb_matrix(tmp_path / "b.mat", np.zeros(3, np.int64))


# ---- the dataset ------------------------------------------------------------------------------
def test_grid_follows_disentanglement_lib(data):
    assert DATASETS["smallnorb"] is SmallNORB and data.name == "smallnorb"
    assert data.factor_names == ("category", "elevation", "azimuth", "lighting")
    assert data.factor_sizes == (5, 9, 18, 6) and data.num_observations == 4860
    assert data.observation_shape == (64, 64, 1)
    np.testing.assert_allclose(data.factor_values[1], np.arange(30, 71, 5))
    np.testing.assert_allclose(data.factor_values[2], np.arange(0, 341, 20))
    assert data.stored.shape == (4860, 10, 64, 64) and data.stored.dtype == np.uint8


def test_images_are_the_resized_left_camera(data, fixture):
    _, features, left = fixture
    rs = np.random.RandomState(0)
    for row in rs.choice(len(features), 25, replace=False):
        category, instance, elevation, azimuth, lighting = features[row]
        index = data.classes_to_index([[category, elevation, azimuth, lighting]])[0]
        np.testing.assert_array_equal(data.stored[index, instance], resized(left[row]))
    # both parts are merged: instances 0-9 all appear for every category
    files = data.files
    assert files.features.shape == (48_600, 5)
    assert sorted(set(files.features[:, 1])) == list(range(10))


def test_numpy_protocol_draws_the_instance_like_disentanglement_lib(data, fixture):
    _, features, left = fixture
    ours, theirs = np.random.RandomState(7), np.random.RandomState(7)
    factors, x = data.sample(12, ours)
    expected_factors = np.stack([theirs.randint(s, size=12) for s in (5, 9, 18, 6)], 1)
    np.testing.assert_array_equal(factors, expected_factors)
    instance = theirs.randint(10, size=12)  # the nuisance, drawn after the factors
    full = np.column_stack([factors[:, 0], instance, factors[:, 1:]])
    for k in range(12):  # look the photograph up in the file's own rows
        row = np.flatnonzero((features == full[k]).all(1))
        assert len(row) == 1
        np.testing.assert_allclose(x[k, :, :, 0], resized(left[row[0]]) / 255.0, atol=1e-7)
    assert x.dtype == np.float32 and x.shape == (12, 64, 64, 1)


def test_torch_path(data):
    dev = data.to_device(CPU, num=50, seed=1)
    assert dev.images.shape == (50, 10, 64, 64)
    x, factors = dev.sample_with_factors(40, torch.Generator().manual_seed(0))
    assert x.shape == (40, 1, 64, 64) and x.dtype == torch.float32
    stored = data.images_from_classes(factors, CPU).float() / 255
    match = (stored - x).abs().amax((2, 3)) == 0  # (40, 10): which instance was shown
    assert match.any(1).all()
    with pytest.raises(ValueError, match="uint8"):
        data.observe(torch.zeros((2, 10, 64, 64)))


# ---- checks and errors ------------------------------------------------------------------------
def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gzipped_files_and_checksums(tmp_path, fixture, monkeypatch):
    for seed, part in enumerate(SMALLNORB_PARTS):
        write_part(tmp_path, part, seed, suffix=".mat.gz")
    for f in fixture[0].iterdir():  # the same matrices as the uncompressed fixture
        np.testing.assert_array_equal(
            read_norb_matrix(tmp_path / f"{f.name}.gz"), read_norb_matrix(f)
        )
    name = f"{SMALLNORB_PARTS[0]}-cat.mat.gz"
    assert name in SMALLNORB_SHA256  # the official digests apply to the official names
    with pytest.raises(ValueError, match="SHA-256"):
        load_smallnorb(tmp_path)
    digests = {p.name: sha256(p) for p in tmp_path.iterdir()}
    monkeypatch.setattr(smallnorb, "_resize", lambda img: img[:, :1, :1])  # (skip the slow part)
    files = load_smallnorb(tmp_path, sha256=digests)
    assert len(files.images) == len(files.features) == 48_600
    digests[name] = "0" * 64
    with pytest.raises(ValueError, match=f"{name} has SHA-256"):
        load_smallnorb(tmp_path, sha256=digests)


def test_loader_errors(tmp_path, fixture, monkeypatch):
    """Every check fires before the slow resize (which is stubbed out to make sure)."""
    monkeypatch.setattr(smallnorb, "_resize", lambda img: pytest.fail("resized a bad file"))
    with pytest.raises(ValueError, match="path="):
        load("smallnorb")
    with pytest.raises(FileNotFoundError, match="not found"):
        load("smallnorb", path=tmp_path / "nowhere")
    directory = tmp_path / "norb"
    directory.mkdir()
    with pytest.raises(FileNotFoundError, match="training-dat.mat.*never downloads"):
        load("smallnorb", path=directory)
    source = fixture[0]
    for f in source.iterdir():
        (directory / f.name).write_bytes(f.read_bytes())
    info = directory / f"{SMALLNORB_PARTS[1]}-info.mat"
    good = read_norb_matrix(info)
    duplicated = good.copy()
    duplicated[1] = duplicated[0]
    write_norb_matrix(info, duplicated)
    with pytest.raises(ValueError, match="exactly once"):
        load("smallnorb", path=directory)
    odd = good.copy()
    odd[0, 2] = 3
    write_norb_matrix(info, odd)
    with pytest.raises(ValueError, match="even"):
        load("smallnorb", path=directory)
    out_of_range = good.copy()
    out_of_range[0, 1] = 9  # elevation 9 of 0-8
    write_norb_matrix(info, out_of_range)
    with pytest.raises(ValueError, match="out of range"):
        load("smallnorb", path=directory)
    write_norb_matrix(info, good[:, :3])
    with pytest.raises(ValueError, match="info"):
        load("smallnorb", path=directory)
    write_norb_matrix(info, good)
    dat = directory / f"{SMALLNORB_PARTS[1]}-dat.mat"
    raw = dat.read_bytes()
    dat.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ValueError, match="truncated"):
        load("smallnorb", path=directory)
    write_norb_matrix(dat, np.zeros((24300, 2, 8, 8), np.int32))
    with pytest.raises(ValueError, match="uint8"):
        load("smallnorb", path=directory)
