"""Tests of dlib.data: the factor grid, the dSprites renderer, the variants, the loaders."""

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dlib.data.dsprites as dsprites_module
from dlib import config
from dlib.data import (
    DATASETS,
    ColorDSprites,
    DeviceData,
    DSprites,
    NoisyDSprites,
    ScreamDSprites,
    cached_array,
    load,
    procedural_scream,
    render_dsprites,
    save_dsprites_npz,
)
from dlib.data.official import md5sum

SCALES = np.linspace(0.5, 1, 6)
POSITIONS = np.linspace(0, 1, 32)
CPU = torch.device("cpu")
VARIANTS = ["dsprites", "color_dsprites", "noisy_dsprites", "scream_dsprites"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache, so nothing leaks in from (or out to) ~/.cache."""
    monkeypatch.setenv("DLIB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def data():
    return DSprites()


@pytest.fixture(scope="module")
def variants():
    return {name: load(name) for name in VARIANTS}


def no_full_render(*args, **kwargs):
    raise AssertionError("the full dSprites set must not be rendered here")


# ---- the factor grid --------------------------------------------------------------------------
def test_grid_matches_the_official_file(data):
    assert data.name == "dsprites"
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert data.factor_sizes == (3, 6, 40, 32, 32)
    assert data.factors_num_values == [3, 6, 40, 32, 32]
    assert data.num_factors == 5
    assert data.num_observations == 737_280
    assert data.observation_shape == (64, 64, 1) and data.image_shape == (1, 64, 64)
    assert data.factor_bases.tolist() == [245760, 40960, 1024, 32, 1]
    np.testing.assert_array_equal(data.factor_values[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(data.factor_values[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(data.factor_values[2][[0, 1, 39]], [0, 2 * np.pi / 39, 2 * np.pi])
    assert data.index_to_classes(1).tolist() == [[0, 0, 0, 0, 1]]
    assert data.index_to_classes(32).tolist() == [[0, 0, 0, 1, 0]]
    assert data.classes_to_index([[2, 5, 39, 31, 31]]).tolist() == [737_279]


def test_official_latent_tables(data):
    classes, values = data.latents_classes, data.latents_values
    assert classes.shape == values.shape == (737_280, 6)
    assert classes.dtype == np.int64 and values.dtype == np.float64
    official_bases = np.array([737280, 245760, 40960, 1024, 32, 1])
    np.testing.assert_array_equal(classes @ official_bases, np.arange(737_280))
    assert classes[1].tolist() == [0, 0, 0, 0, 0, 1]
    assert (classes[:, 0] == 0).all() and (values[:, 0] == 1.0).all()
    row = 2 * 245760 + 3 * 40960 + 39 * 1024 + 5 * 32 + 31
    np.testing.assert_allclose(values[row], [1.0, 3.0, 0.8, 2 * np.pi, 5 / 31, 1.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 737_279), min_size=1, max_size=20))
def test_index_classes_round_trip(index):
    data = DSprites()
    classes = data.index_to_classes(index)
    assert (classes >= 0).all() and (classes < np.array(data.factor_sizes)).all()
    np.testing.assert_array_equal(data.classes_to_index(classes), index)


def test_bad_classes_are_rejected(data):
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        data.classes_to_index(np.zeros((3, 6), dtype=int))
    with pytest.raises(ValueError, match="out of range: scale = 6"):
        data.classes_to_index([[0, 6, 0, 0, 0]])
    with pytest.raises(ValueError, match="out of range"):
        data.classes_to_index([[-1, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="integers"):
        data.classes_to_index(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="indices"):
        data.index_to_classes([737_280])
    with pytest.raises(ValueError, match="out of range"):
        data.sample_observations_from_factors(np.array([[3, 0, 0, 0, 0]]), np.random.RandomState(0))
    with pytest.raises(ValueError, match="out of range"):
        data.images_from_classes(torch.tensor([[0, 0, 40, 0, 0]]), CPU)


def test_sample_factors_draws_one_column_at_a_time(data):
    factors = data.sample_factors(100, np.random.RandomState(3))
    rs = np.random.RandomState(3)
    expected = np.stack([rs.randint(size, size=100) for size in (3, 6, 40, 32, 32)], axis=1)
    np.testing.assert_array_equal(factors, expected)
    assert factors.dtype == np.int64


# ---- the renderer -----------------------------------------------------------------------------
def bbox(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height (N,) of the on-pixels of (N, 64, 64) images."""
    return images.any(1).sum(1), images.any(2).sum(1)


def test_axis_aligned_square_boxes():
    images = render_dsprites(0, SCALES, 0.0, 0.0, 0.0, device=CPU)
    width, height = bbox(images)
    assert width.tolist() == height.tolist() == [10, 12, 14, 16, 18, 20]
    assert images.sum((1, 2)).tolist() == [100, 144, 196, 256, 324, 400]  # solid boxes
    # the centre at (16, 16): the 20 px box covers columns 6..25
    assert images[-1, 16].nonzero().squeeze(1).tolist() == list(range(6, 26))
    # off the integer grid the sampled box loses at most one row/column
    s, p, q = (a.ravel() for a in np.meshgrid(SCALES, POSITIONS, POSITIONS, indexing="ij"))
    width, height = bbox(render_dsprites(0, s, 0.0, p, q, device=CPU))
    nominal = torch.as_tensor(np.round(s * 20)).long()
    assert ((nominal - width) >= 0).all() and ((nominal - width) <= 1).all()
    assert ((nominal - height) >= 0).all() and ((nominal - height) <= 1).all()


def random_values(n: int, seed: int = 0):
    rs = np.random.RandomState(seed)
    return (
        rs.choice(SCALES, n),
        rs.uniform(0, 2 * np.pi, n),
        rs.choice(POSITIONS, n),
        rs.choice(POSITIONS, n),
    )


def test_square_has_four_fold_and_ellipse_two_fold_symmetry():
    scale, theta, px, py = random_values(2000)
    square = render_dsprites(0, scale, theta, px, py, device=CPU)
    turned = render_dsprites(0, scale, theta + np.pi / 2, px, py, device=CPU)
    assert (square != turned).sum((1, 2)).max() <= 1
    ellipse = render_dsprites(1, scale, theta, px, py, device=CPU)
    assert torch.equal(ellipse, render_dsprites(1, scale, theta + np.pi, px, py, device=CPU))
    # ...but the ellipse is not square-symmetric: a quarter turn changes it
    quarter = render_dsprites(1, scale, theta + np.pi / 2, px, py, device=CPU)
    assert (ellipse != quarter).sum((1, 2)).float().mean() > 20


def test_orientation_classes_0_and_39_are_the_same_image(data):
    rs = np.random.RandomState(1)
    classes = data.sample_factors(500, rs)
    classes[:, 2] = 0
    first = data.images_from_classes(torch.as_tensor(classes), CPU)
    classes[:, 2] = 39
    assert torch.equal(first, data.images_from_classes(torch.as_tensor(classes), CPU))


def test_ellipse_is_horizontal_and_turns_counter_clockwise():
    flat = render_dsprites(1, 1.0, 0.0, 0.5, 0.5, device=CPU)
    width, height = bbox(flat)
    assert width.item() > height.item()
    turned = render_dsprites(1, 1.0, np.pi / 4, 0.5, 0.5, device=CPU)[0]
    rows, cols = turned.nonzero().double().unbind(1)
    # counter-clockwise on screen (row 0 at the top): the right end rises, so cov(x, y) < 0
    assert ((cols - cols.mean()) * (rows - rows.mean())).mean() < -5


def test_heart_is_mirror_symmetric_with_lobes_up():
    hearts = render_dsprites(2, SCALES, 0.0, 0.0, 0.5, device=CPU)
    left = hearts[:, :, :32]  # the centre is at x = 16, so columns c and 31 - c mirror
    assert torch.equal(left, left.flip(2))
    assert hearts[:, :, 32:].sum() == 0
    assert hearts.sum((1, 2)).tolist() == sorted(hearts.sum((1, 2)).tolist())
    rows = hearts[-1].any(1).nonzero().squeeze(1)
    top, bottom = hearts[-1, rows[0]], hearts[-1, rows[-1]]
    runs = lambda row: int((row[1:] > row[:-1]).sum() + row[0])  # noqa: E731
    assert runs(top) == 2 and runs(bottom) == 1  # two lobes above, a tip below
    assert bottom.sum() < 5


def test_centre_of_mass_tracks_position():
    scale, theta, px, py = random_values(1500, seed=2)
    centre = torch.arange(64, dtype=torch.float64) + 0.5
    for shape in (0, 1):
        images = render_dsprites(shape, scale, theta, px, py, device=CPU).double()
        mass = images.sum((1, 2))
        com_x = (images * centre).sum((1, 2)) / mass
        com_y = (images * centre[:, None]).sum((1, 2)) / mass
        assert (com_x - torch.as_tensor(16 + 32 * px)).abs().max() < 0.6
        assert (com_y - torch.as_tensor(16 + 32 * py)).abs().max() < 0.6
    hearts = render_dsprites(2, 1.0, 0.0, POSITIONS, 0.5, device=CPU).double()
    com_x = (hearts * centre).sum((1, 2)) / hearts.sum((1, 2))
    assert (com_x - torch.as_tensor(16 + 32 * POSITIONS)).abs().max() < 0.2


def test_images_are_binary_and_stay_on_the_canvas():
    extremes = np.array([0.0, 1.0])
    s, t, p, q = (
        a.ravel()
        for a in np.meshgrid(
            [0, 1, 2], np.linspace(0, np.pi / 2, 9), extremes, extremes, indexing="ij"
        )
    )
    images = render_dsprites(s, 1.0, t, p, q, device=CPU)
    assert images.dtype == torch.uint8 and images.shape == (len(s), 64, 64)
    assert set(images.unique().tolist()) == {0, 1}
    assert images[:, :2].sum() == images[:, -2:].sum() == 0
    assert images[:, :, :2].sum() == images[:, :, -2:].sum() == 0
    assert (images.sum((1, 2)) > 200).all()


def brute_force(shape: int, scale: float, theta: float, px: float, py: float) -> np.ndarray:
    """The rendering rules of notes 3.1.4 evaluated on the whole canvas in float64."""
    centre = np.arange(64) + 0.5
    dx = centre[None, :] - (16 + 32 * px)
    dy = centre[:, None] - (16 + 32 * py) + (0.25 if shape == 2 else 0.0)
    u = (np.cos(theta) * dx - np.sin(theta) * dy) / scale
    v = (np.sin(theta) * dx + np.cos(theta) * dy) / scale
    if shape == 0:
        return (np.abs(u) < 9.6) & (np.abs(v) < 9.6)
    if shape == 1:
        return (u / 12.8) ** 2 + (v / 7.2) ** 2 < 1
    lobes = (np.abs(u) - 4.25) ** 2 + (v + 3.7) ** 2 < 5.4**2
    return (np.abs(u) + np.abs(v) < 8.6) | lobes


def test_window_renderer_matches_a_whole_canvas_evaluation():
    scale, theta, px, py = random_values(300, seed=7)
    shapes = np.arange(300) % 3
    scale[:30], px[:30], py[:30] = 1.0, 0.0, 1.0  # the largest sprites in a corner
    theta[:30] = np.linspace(0, np.pi / 2, 30)
    # 45-degree squares whose corner (13.6 px out, on a pixel-centre row or column) falls just
    # inside a pixel centre, at several sub-pixel offsets: the window must not cut them
    offsets = 0.5 + np.array([0.03, 0.47, 0.53, 0.97]) / 32
    px[30:34], py[30:34] = offsets, 16.5 / 32
    px[34:38], py[34:38] = 16.5 / 32, offsets
    shapes[30:38], scale[30:38], theta[30:38] = 0, 1.0, np.pi / 4
    images = render_dsprites(shapes, scale, theta, px, py, device=CPU).numpy().astype(bool)
    expected = np.stack(
        [brute_force(*args) for args in zip(shapes, scale, theta, px, py, strict=True)]
    )
    assert (images != expected).sum() == 0  # float32 could flip a near-tie; none occur here


def test_render_rejects_bad_values():
    with pytest.raises(ValueError, match="shape"):
        render_dsprites(3, 1.0, 0.0, 0.5, 0.5, device=CPU)
    with pytest.raises(ValueError, match="scale"):
        render_dsprites(0, 1.5, 0.0, 0.5, 0.5, device=CPU)
    with pytest.raises(ValueError, match="pos_x"):
        render_dsprites(0, 1.0, 0.0, 1.2, 0.5, device=CPU)


# ---- observations: NumPy protocol ---------------------------------------------------------------
def binary_of(data, factors) -> np.ndarray:
    """Stored images (N, 64, 64, 1) float32 of factor classes, re-rendered."""
    images = data.images_from_classes(torch.as_tensor(factors), CPU)
    return images[:, 0, :, :, None].numpy().astype(np.float32)


def reference_observations(name: str, data, num: int, rs: np.random.RandomState) -> np.ndarray:
    """disentanglement_lib's draws from ``rs``, recomputed by hand in its order."""
    factors = np.stack([rs.randint(size, size=num) for size in (3, 6, 40, 32, 32)], axis=1)
    rs.randint(1, size=num)  # the constant colour latent
    x = binary_of(data, factors)
    if name == "dsprites":
        return x
    x = np.repeat(x, 3, axis=3)
    if name == "color_dsprites":
        return (x * rs.uniform(0.5, 1, [num, 1, 1, 3])).astype(np.float32)
    if name == "noisy_dsprites":
        return np.minimum(x + rs.uniform(0, 1, [num, 64, 64, 3]), 1.0).astype(np.float32)
    background = data.background
    for i in range(num):
        r = rs.randint(0, background.shape[0] - 64)
        c = rs.randint(0, background.shape[1] - 64)
        patch = (background[r : r + 64, c : c + 64] + rs.uniform(0, 1, size=3)) / 2
        patch[x[i] == 1] = 1 - patch[x[i] == 1]
        x[i] = patch
    return x


def stream_position(rs: np.random.RandomState) -> tuple:
    _, key, pos, has_gauss, gauss = rs.get_state()
    return key.tobytes(), pos, has_gauss, gauss


@pytest.mark.parametrize("name", VARIANTS)
def test_numpy_path_follows_the_reference_draw_order(name, variants):
    data = variants[name]
    ours, theirs = np.random.RandomState(11), np.random.RandomState(11)
    factors, observations = data.sample(24, ours)
    expected = reference_observations(name, data, 24, theirs)
    assert observations.dtype == np.float32
    assert observations.shape == (24, *data.observation_shape)
    np.testing.assert_array_equal(observations, expected)
    np.testing.assert_array_equal(factors, data.sample_factors(24, np.random.RandomState(11)))
    # both streams are left in the same place, so the next draws agree too
    assert stream_position(ours) == stream_position(theirs)
    if name != "dsprites":  # the nuisance really consumes the stream
        fresh = np.random.RandomState(11)
        data.sample_factors(24, fresh)
        assert stream_position(ours) != stream_position(fresh)


@pytest.mark.parametrize("name", VARIANTS)
def test_numpy_and_torch_nuisance_behave_alike(name, variants):
    data = variants[name]
    factors, x_np = data.sample(64, np.random.RandomState(5))
    stored = data.images_from_classes(torch.as_tensor(factors), CPU)
    x_t = data.observe(stored, torch.Generator().manual_seed(5)).permute(0, 2, 3, 1).numpy()
    sprite = np.broadcast_to(stored.permute(0, 2, 3, 1).numpy() == 1, x_np.shape)
    for x in (x_np, x_t):
        assert x.shape == (64, *data.observation_shape)
        assert x.min() >= 0 and x.max() <= 1
        if name == "dsprites":
            assert set(np.unique(x)) == {0.0, 1.0}
        elif name == "color_dsprites":
            assert (x[~sprite] == 0).all()
            assert x[sprite].min() >= 0.5
            # one colour per sample: all sprite pixels of an image share it
            for i in range(8):
                assert len(np.unique(x[i][sprite[i]].reshape(-1, 3), axis=0)) == 1
        elif name == "noisy_dsprites":
            assert (x[sprite] == 1).all()
            assert x[~sprite].max() < 1 and x[~sprite].std() > 0.25
        else:
            # a half-bright background: (painting + colour) / 2, inverted under the sprite
            background = x[~sprite]
            assert background.std() > 0.05
            assert not np.array_equal(x[0], x[1])
    plain = np.broadcast_to(sprite, x_np.shape).astype(np.float32)
    assert np.array_equal(x_np, plain) == (name == "dsprites")  # the nuisance did something


def test_scream_inverts_the_background_under_the_sprite():
    data = ScreamDSprites()
    gen = torch.Generator().manual_seed(0)
    empty = torch.zeros((4, 1, 64, 64), dtype=torch.uint8)
    full = torch.ones_like(empty)
    state = gen.get_state()
    plain = data.observe(empty, gen)
    gen.set_state(state)
    inverted = data.observe(full, gen)
    torch.testing.assert_close(inverted, 1 - plain)
    # the background is a crop of the painting averaged with a colour: check one sample
    gen.set_state(state)
    row = torch.randint(274 - 64, (4, 1), generator=gen)
    col = torch.randint(221 - 64, (4, 1), generator=gen)
    colour = torch.rand((4, 1, 1, 3), generator=gen)
    crop = torch.as_tensor(
        data.background[row[0, 0] : row[0, 0] + 64, col[0, 0] : col[0, 0] + 64], dtype=torch.float32
    )
    torch.testing.assert_close(plain[0].permute(1, 2, 0), (crop + colour[0]) / 2)


def test_procedural_scream_is_a_fixed_colourful_texture():
    a, b = procedural_scream(), procedural_scream()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (274, 221, 3) and a.min() >= 0 and a.max() <= 1
    assert a.std(axis=(0, 1)).min() > 0.05  # every channel varies
    assert not np.array_equal(procedural_scream(seed=1), a)


def test_scream_from_an_image_file(tmp_path):
    from PIL import Image

    rgb = (np.random.RandomState(0).rand(300, 400, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "scream.png")
    data = load("scream_dsprites", scream_path=tmp_path / "scream.png")
    height, width, channels = data.background.shape  # thumbnailed to fit 350 x 274
    assert width == 350 and height in (262, 263) and channels == 3
    assert data.sample_observations(3, np.random.RandomState(0)).shape == (3, 64, 64, 3)
    Image.fromarray(rgb[:50, :50]).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="larger than 64"):
        load("scream_dsprites", scream_path=tmp_path / "small.png")


# ---- the torch path -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_to_device_renders_only_the_requested_images(name, variants, monkeypatch):
    monkeypatch.setattr(dsprites_module, "full_dsprites_packed", no_full_render)
    data = variants[name]
    dev = data.to_device(CPU, num=300, seed=4)
    assert isinstance(dev, DeviceData) and dev.data is data and len(dev) == 300
    assert dev.device == CPU
    assert dev.images.dtype == torch.uint8 and dev.images.shape == (300, 1, 64, 64)
    assert dev.factors.dtype == torch.long and dev.factors.shape == (300, 5)
    assert len(np.unique(data.classes_to_index(dev.factors), axis=0)) == 300
    assert torch.equal(dev.images, data.images_from_classes(dev.factors, CPU))  # re-render
    again = data.to_device(CPU, num=300, seed=4)
    assert torch.equal(again.factors, dev.factors)
    assert not torch.equal(data.to_device(CPU, num=300, seed=5).factors, dev.factors)

    x = dev.sample(32, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.shape == (32, *data.image_shape)
    assert x.min() >= 0 and x.max() <= 1
    y = dev.sample(32, torch.Generator().manual_seed(0))
    assert torch.equal(x, y)
    assert not torch.equal(x, dev.sample(32, torch.Generator().manual_seed(1)))
    x, factors = dev.sample_with_factors(16, torch.Generator().manual_seed(2))
    assert factors.shape == (16, 5) and factors.dtype == torch.long
    stored = data.images_from_classes(factors, CPU)
    if name == "dsprites":
        assert torch.equal(x, stored.float())
    elif name == "noisy_dsprites":
        assert ((x == 1) | (stored == 0)).all()


def test_to_device_rejects_bad_sizes(data):
    with pytest.raises(ValueError, match="num"):
        data.to_device(CPU, num=0)
    with pytest.raises(ValueError, match="num"):
        data.to_device(CPU, num=737_281)


def test_observe_checks_its_input(data):
    with pytest.raises(ValueError, match="uint8"):
        data.observe(torch.zeros((2, 1, 64, 64)))
    with pytest.raises(ValueError, match="uint8"):
        data.observe(torch.zeros((2, 3, 64, 64), dtype=torch.uint8))


def test_cached_array_verifies_its_checksum(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return np.arange(1000, dtype=np.uint8).reshape(10, 100)

    path = tmp_path / "thing.npy"
    first = cached_array(path, build)
    second = cached_array(path, build)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # flip the bits of the last stored byte
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        third = cached_array(path, build)
    assert len(calls) == 2
    np.testing.assert_array_equal(third, first)
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding"):
        cached_array(path, build)
    assert len(calls) == 3


# ---- the official file ------------------------------------------------------------------------
SMALL_SIZES = [1, 3, 2, 4, 4, 4]


def write_dsprites_npz(path, sizes=SMALL_SIZES, **overrides):
    """A small npz with the official file's schema; ``overrides`` replace (None: drop) arrays."""
    save_dsprites_npz(path, sizes, device=CPU)
    if overrides:
        with np.load(path, allow_pickle=True) as f:
            arrays = {k: f[k] for k in f.files}
        arrays.update(overrides)
        np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_saved_metadata_is_python2_picklable(tmp_path):
    path = save_dsprites_npz(tmp_path / "t.npz", SMALL_SIZES, device=CPU)
    with np.load(path, allow_pickle=True, encoding="latin1") as f:
        meta = f["metadata"][()]
    pickle.dumps(meta, protocol=2)
    assert list(meta["latents_sizes"]) == SMALL_SIZES
    with pytest.raises(ValueError, match="sizes"):
        save_dsprites_npz(tmp_path / "u.npz", (2, 3, 2, 4, 4, 4))


def test_load_a_small_official_file(tmp_path, monkeypatch):
    monkeypatch.setattr(dsprites_module, "full_dsprites_packed", no_full_render)
    path = write_dsprites_npz(tmp_path / "tiny.npz")
    data = load("dsprites", path=path, md5=md5sum(path))
    assert data.factor_sizes == (3, 2, 4, 4, 4) and data.num_observations == 384
    assert data.factor_bases.tolist() == [128, 64, 16, 4, 1]
    np.testing.assert_allclose(data.factor_values[3], np.linspace(0, 1, 4))
    with np.load(path, allow_pickle=True, encoding="latin1") as npz:
        np.testing.assert_array_equal(data.latents_classes, npz["latents_classes"])
        np.testing.assert_array_equal(data.latents_values, npz["latents_values"])
        imgs = npz["imgs"]
    classes = data.sample_factors(50, np.random.RandomState(0))
    index = data.classes_to_index(classes)
    np.testing.assert_array_equal(data.images_from_classes(classes, CPU)[:, 0].numpy(), imgs[index])
    x = data.sample_observations_from_factors(classes, np.random.RandomState(0))
    np.testing.assert_array_equal(x[..., 0], imgs[index])
    every = data.to_device(CPU)
    assert torch.equal(every.images[:, 0], torch.as_tensor(imgs))
    assert torch.equal(every.factors, torch.as_tensor(data.latents_classes[:, 1:]))
    colour = load("color_dsprites", path=path, md5=None)
    assert colour.sample_observations(2, np.random.RandomState(0)).shape == (2, 64, 64, 3)


def test_loader_errors(tmp_path):
    missing = tmp_path / "nothing.npz"
    with pytest.raises(FileNotFoundError, match="deepmind/dsprites-dataset.*needs no file"):
        load("dsprites", path=missing)
    good = write_dsprites_npz(tmp_path / "good.npz")
    with pytest.raises(ValueError, match="MD5"):
        load("dsprites", path=good)  # the official checksum
    bad = {
        "missing key": dict(latents_classes=None),
        "must be uint8": dict(imgs=np.zeros((10, 64, 64), dtype=np.uint8)),
        "must be \\(384, 6\\)": dict(latents_values=np.zeros((384, 5))),
        "row-major": dict(
            latents_classes=np.stack(np.unravel_index(np.arange(384)[::-1], SMALL_SIZES), axis=1)
        ),
        "binary": dict(imgs=np.full((384, 64, 64), 255, dtype=np.uint8)),
        "latents_sizes": dict(metadata=np.array({"latents_sizes": [3, 2, 4, 4, 4]}, dtype=object)),
    }
    for i, (message, override) in enumerate(bad.items()):
        path = write_dsprites_npz(tmp_path / f"bad{i}.npz", **override)
        with pytest.raises(ValueError, match=message):
            load("dsprites", path=path, md5=None)


def test_load_knows_its_names():
    assert set(VARIANTS) <= set(DATASETS)  # (Part V's datasets are registered too)
    with pytest.raises(ValueError, match="unknown dataset 'shapes'.*color_dsprites"):
        load("shapes")
    assert isinstance(load("color_dsprites"), ColorDSprites)
    assert isinstance(load("noisy_dsprites"), NoisyDSprites)
    assert load("noisy_dsprites").observation_shape == (64, 64, 3)


# ---- the full set and the GPU -------------------------------------------------------------------
def test_full_set_is_rendered_once_then_loaded_from_the_cache(data, monkeypatch):
    """full_dsprites_packed renders every image once, in index order, and then only loads.

    The renderer is replaced by a cheap stand-in that writes the bits of its five inputs into the
    image (distinct inputs, distinct images) and counts its calls; the real renderer's pixels are
    tested above, and its speed is measured by ``python tools/bench_data.py``, not here.
    """
    calls = []

    def stand_in(shape, scale, theta, px, py, device=None, image_size=64):
        assert image_size == 64
        columns = [torch.as_tensor(np.asarray(shape), dtype=torch.float32)]
        columns += [torch.as_tensor(v, dtype=torch.float32) for v in (scale, theta, px, py)]
        bits = torch.stack(columns, 1).view(torch.int32)  # (N, 5): each input's float32 bits
        calls.append(len(bits))
        out = torch.zeros((len(bits), 64, 64), dtype=torch.uint8, device=device)
        out[:, :5, :32] = ((bits[..., None] >> torch.arange(32)) & 1).to(torch.uint8)
        return out

    monkeypatch.setattr(dsprites_module, "render_dsprites", stand_in)
    packed = dsprites_module.full_dsprites_packed(CPU)
    assert packed.shape == (737_280, 512) and packed.dtype == np.uint8
    assert sum(calls) == 737_280  # every image rendered exactly once
    index = np.random.RandomState(0).choice(737_280, 3000, replace=False)
    classes = torch.as_tensor(data.index_to_classes(index))
    expected = data.images_from_classes(classes, CPU).view(3000, -1).numpy()
    np.testing.assert_array_equal(packed[index], np.packbits(expected, axis=1))  # index order
    unpacked = dsprites_module.unpack_images(torch.from_numpy(packed[index]))
    assert torch.equal(unpacked, data.images_from_classes(classes, CPU))

    cache = config.cache_dir() / f"dsprites-{dsprites_module.RENDERER_VERSION}.npy"
    assert cache.exists() and cache.with_name(cache.name + ".json").exists()
    rendered = sum(calls)
    again = dsprites_module.full_dsprites_packed(CPU)
    assert sum(calls) == rendered  # loaded, not rendered again
    assert again.tobytes() == packed.tobytes()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu(variants):
    cuda = torch.device("cuda")
    scale, theta, px, py = random_values(3000, seed=9)
    shapes = np.random.RandomState(9).randint(3, size=3000)
    on_gpu = render_dsprites(shapes, scale, theta, px, py, device=cuda)
    assert on_gpu.device.type == "cuda"
    assert torch.equal(on_gpu.cpu(), render_dsprites(shapes, scale, theta, px, py, device=CPU))
    for data in variants.values():
        dev = data.to_device(cuda, num=1000)
        x, factors = dev.sample_with_factors(64, torch.Generator(cuda).manual_seed(0))
        assert x.device.type == factors.device.type == "cuda"
        assert x.shape == (64, *data.image_shape)
