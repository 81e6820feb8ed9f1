"""Tests of dlib.data.shapes3d: the factor grid, the look-alike renderer, the h5 reader."""

import colorsys
import math

import h5py
import numpy as np
import pytest
import torch

import dlib.data.shapes3d as s3d
from dlib.data import DATASETS, DeviceData, Shapes3D, load, save_shapes3d_h5
from dlib.data.official import md5sum

CPU = torch.device("cpu")
TINY = (2, 2, 2, 2, 4, 3)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLIB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def data():
    return Shapes3D()


def no_full_trace(*args, **kwargs):
    raise AssertionError("the 480 geometries must not all be traced here")


def render(data, classes):
    return data.images_from_classes(torch.as_tensor(np.asarray(classes)), CPU)


def hue_of(rgb: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(rgb / 255.0))[0]


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


# ---- the grid ---------------------------------------------------------------------------------
def test_grid_matches_the_official_file(data):
    assert data.name == "shapes3d" and "shapes3d" in DATASETS
    assert data.factor_names == (
        "floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation",
    )  # fmt: skip
    assert data.factor_sizes == (10, 10, 10, 8, 4, 15)
    assert data.num_observations == 480_000
    assert data.observation_shape == (64, 64, 3) and data.image_shape == (3, 64, 64)
    assert data.factor_bases.tolist() == [48000, 4800, 480, 60, 15, 1]
    values = data.factor_values
    for j in range(3):
        np.testing.assert_allclose(values[j], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(values[3], 0.75 + np.arange(8) * (0.5 / 7))
    np.testing.assert_array_equal(values[4], [0, 1, 2, 3])
    np.testing.assert_allclose(values[5], -30 + np.arange(15) * (60 / 14))
    assert s3d.SHAPES3D_SHAPES == ("cube", "cylinder", "sphere", "capsule")
    # orientation fastest, floor hue slowest; labels as in the file
    labels = data.labels
    assert labels.shape == (480_000, 6) and labels.dtype == np.float64
    np.testing.assert_allclose(labels[1], [0, 0, 0, 0.75, 0, -30 + 60 / 14])
    np.testing.assert_allclose(labels[15], [0, 0, 0, 0.75, 1, -30])
    np.testing.assert_allclose(labels[479_999], [0.9, 0.9, 0.9, 1.25, 3, 30])
    row = 3 * 48000 + 7 * 4800 + 1 * 480 + 5 * 60 + 2 * 15 + 9
    np.testing.assert_allclose(labels[row], [0.3, 0.7, 0.1, values[3][5], 2, values[5][9]])


def test_hsv_colours_match_colorsys():
    hues = np.arange(10) / 10
    expected = np.array([colorsys.hsv_to_rgb(h, 1.0, 1.0) for h in hues])
    np.testing.assert_allclose(s3d.hsv_colours(hues, CPU).numpy(), expected, atol=1e-6)


# ---- the renderer -----------------------------------------------------------------------------
def test_images_are_uint8_deterministic_and_independent_of_batching(data):
    rs = np.random.RandomState(0)
    classes = data.sample_factors(12, rs)
    images = render(data, classes)
    assert images.dtype == torch.uint8 and images.shape == (12, 3, 64, 64)
    assert torch.equal(images, render(Shapes3D(), classes))  # a fresh instance: same pixels
    # traced alone or together with other geometries: the same pixels
    alone = torch.cat([render(data, classes[i : i + 1]) for i in range(3)])
    assert torch.equal(alone, images[:3])


def test_the_scene_looks_like_3dshapes(data):
    """Sky on top, walls and floor in their hues, the object in its hue near the centre."""
    floor, wall, obj = 0, 3, 6  # red, cyan-green, blue-ish
    image = render(data, [[floor, wall, obj, 4, 2, 7]])[0].permute(1, 2, 0).numpy().astype(float)
    sky = image[1, 32]
    np.testing.assert_allclose(sky / 255, s3d.SKY_RGB, atol=0.02)
    assert sky[2] > sky[1] > sky[0]  # sky blue
    assert hue_distance(hue_of(image[62, 4]), 0.0) < 0.02  # floor (bottom-left corner)
    assert hue_distance(hue_of(image[30, 4]), 0.3) < 0.02  # wall (left, mid height)
    assert hue_distance(hue_of(image[44, 32]), 0.6) < 0.02  # object (centre, low)
    # walls are shaded: the two walls differ in brightness
    assert abs(image[30, 4].sum() - image[30, 60].sum()) > 20


def test_pixel_hues_follow_every_hue_factor(data):
    """Hue of a floor / wall / object pixel, read back with colorsys, is the factor value."""
    rs = np.random.RandomState(1)
    classes = np.zeros((10, 6), dtype=int)
    classes[:, :3] = np.stack([rs.permutation(10) for _ in range(3)], 1)
    classes[:, 3:] = [4, 0, 7]
    images = render(data, classes).permute(0, 2, 3, 1).numpy().astype(float)
    geometry = s3d.shapes3d_geometry(1.0, 0, 0.0, CPU)[0].numpy()
    pixels = [np.unravel_index(np.argmax(geometry[r] * (geometry[:3].sum(0) > 0)), (64, 64))
              for r in range(3)]  # fmt: skip
    for img, cls in zip(images, classes, strict=True):
        for region, (r, c) in enumerate(pixels):
            assert hue_distance(hue_of(img[r, c]), cls[region] / 10) < 0.02


def object_mask(scale: float, shape: int, azimuth: float) -> np.ndarray:
    return s3d.shapes3d_geometry(scale, shape, azimuth, CPU)[0, 2].numpy() > 0


def test_sphere_silhouette_matches_a_pinhole_projection():
    """Where the ray tracer puts the sphere vs. projecting its centre with a pinhole camera."""
    for azimuth in (-30.0, 0.0, 30.0):
        for scale in (0.75, 1.25):
            r = s3d.OBJECT_SIZE * scale / 2
            phi = math.radians(azimuth)
            eye = np.array([s3d.CAMERA_DISTANCE * math.sin(phi), s3d.CAMERA_HEIGHT,
                            s3d.CAMERA_DISTANCE * math.cos(phi)])  # fmt: skip
            fwd = np.array([0.0, s3d.LOOK_AT_HEIGHT, 0.0]) - eye
            fwd /= np.linalg.norm(fwd)
            right = np.cross(fwd, [0.0, 1.0, 0.0])
            right /= np.linalg.norm(right)
            up = np.cross(right, fwd)
            rel = np.array([0.0, r, 0.0]) - eye
            depth = rel @ fwd
            focal = 32 / math.tan(math.radians(s3d.FIELD_OF_VIEW) / 2)  # pixels
            col = 32 + focal * (rel @ right) / depth
            row = 32 - focal * (rel @ up) / depth
            radius = focal * r / math.sqrt(rel @ rel - r * r)  # apparent radius near the axis
            mask = object_mask(scale, 2, azimuth)
            rows, cols = np.nonzero(mask)
            assert abs(cols.mean() + 0.5 - col) < 0.5 and abs(rows.mean() + 0.5 - row) < 1.0
            # partly covered edge pixels count too: the area lies within a pixel of the disc
            assert math.pi * (radius - 1) ** 2 < mask.sum() < math.pi * (radius + 1) ** 2


def test_scale_grows_the_object_and_the_shapes_differ():
    areas = [object_mask(s, 0, 0.0).sum() for s in np.linspace(0.75, 1.25, 8)]
    assert np.all(np.diff(areas) > 0)
    assert areas[-1] / areas[0] > (1.25 / 0.75) ** 2 * 0.8  # area ~ scale^2
    masks = [object_mask(1.0, k, 0.0) for k in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert (masks[a] != masks[b]).sum() >= 25, (a, b)
    # the capsule is the tallest, the sphere the shortest
    heights = [m.any(1).sum() for m in masks]
    assert heights[3] == max(heights) and heights[2] == min(heights)


def test_orientation_turns_the_camera():
    """The room's corner sweeps across the image; the sphere stays; the cube turns."""
    corners, spheres = [], []
    for azimuth in (-30.0, -15.0, 0.0, 15.0, 30.0):
        geometry = s3d.shapes3d_geometry(1.0, 2, azimuth, CPU)[0]
        wall_row = geometry[1, 12].numpy()  # the two walls are lit differently
        corners.append(int(np.argmax(np.abs(np.diff(wall_row)))))
        spheres.append(geometry[2] > 0)
    assert np.all(np.diff(corners) >= 8), corners
    assert abs(corners[2] - 31) <= 1  # behind the object when the camera looks straight in
    assert all((s != spheres[2]).sum() <= 4 for s in spheres)  # (rasterisation only)
    cube = [object_mask(1.0, 0, a) for a in (-30.0, 0.0, 30.0)]
    assert (cube[0] != cube[1]).sum() > 10 and (cube[2] != cube[1]).sum() > 10
    # the room and the cube are mirror-symmetric, so -30 and +30 degrees are mirror views
    assert (cube[0] != cube[2][:, ::-1]).sum() <= 12


@pytest.mark.parametrize("factor", range(6))
def test_every_factor_visibly_changes_the_image(data, factor):
    base = np.array([2, 5, 8, 3, 1, 6])
    classes = np.repeat(base[None], data.factor_sizes[factor], 0)
    classes[:, factor] = np.arange(data.factor_sizes[factor])
    images = render(data, classes).float()
    diff = (images[:, None] - images[None, :]).abs().mean((2, 3, 4))  # mean |Δ| per pair
    off = diff[~torch.eye(len(images), dtype=torch.bool)]
    assert off.min() > 0.3, f"{data.factor_names[factor]}: two classes look the same"
    # the change stays where it belongs: hues only touch their region
    if factor < 3:
        geometry = s3d.shapes3d_geometry(data.factor_values[3][3], 1, data.factor_values[5][6], CPU)
        outside = (geometry[0, factor] == 0).expand(3, 64, 64)
        assert (images[:, outside] == images[0, outside]).all()


# ---- the torch and NumPy paths ------------------------------------------------------------------
def test_to_device_renders_only_the_requested_images(data, monkeypatch):
    monkeypatch.setattr(Shapes3D, "geometry", no_full_trace)
    dev = data.to_device(CPU, num=24, seed=3)
    assert isinstance(dev, DeviceData) and len(dev) == 24
    assert dev.images.dtype == torch.uint8 and dev.images.shape == (24, 3, 64, 64)
    x, factors = dev.sample_with_factors(8, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.shape == (8, 3, 64, 64)
    assert x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x, render(data, factors).float() / 255)


def test_numpy_protocol(data):
    factors, obs = data.sample(5, np.random.RandomState(2))
    np.testing.assert_array_equal(factors, data.sample_factors(5, np.random.RandomState(2)))
    assert obs.dtype == np.float32 and obs.shape == (5, 64, 64, 3)
    expected = render(data, factors).permute(0, 2, 3, 1).numpy() / 255.0
    np.testing.assert_allclose(obs, expected, atol=1e-7)
    with pytest.raises(ValueError, match="uint8"):
        data.observe(torch.zeros((2, 3, 64, 64)))


def test_render_rejects_bad_values():
    with pytest.raises(ValueError, match="shape"):
        s3d.shapes3d_geometry(1.0, 4, 0.0, CPU)
    with pytest.raises(ValueError, match="scale"):
        s3d.shapes3d_geometry(0.0, 0, 0.0, CPU)
    with pytest.raises(ValueError, match="orientation"):
        s3d.shapes3d_geometry(1.0, 0, 120.0, CPU)


def test_cached_geometry_is_used(data, monkeypatch, tmp_path):
    """With the 480 geometries cached, images come from the cache (stubbed small here)."""
    fake = torch.zeros((480, 6, 64, 64))
    fake[:, 3:] = 0.5  # grey everywhere
    monkeypatch.setattr(s3d.Shapes3D, "_trace_classes", lambda self, idx, dev: fake[idx])
    fresh = Shapes3D()
    geometry = fresh.geometry(CPU)
    assert geometry.shape == (480, 6, 64, 64)
    assert list((tmp_path / "cache").glob("shapes3d-geometry-*.npy"))
    images = fresh.images_from_classes(torch.tensor([[0, 0, 0, 0, 0, 0]]), CPU)
    assert (images == 128).all()
    # a request touching many geometries goes through the (now cached) 480 as well
    for path in (tmp_path / "cache").glob("shapes3d-geometry-*"):
        path.unlink()
    many = Shapes3D()
    classes = many.index_to_classes(np.arange(480) * 481)  # index % 480: all 480 geometries
    assert (many.images_from_classes(classes, CPU) == 128).all()
    assert list((tmp_path / "cache").glob("shapes3d-geometry-*.npy"))


def test_images_are_composed_a_chunk_at_a_time(monkeypatch, tmp_path):
    """Memory follows the images' bytes: no call composes (or shrinks) more than
    COMPOSE_CHUNK images, and chunking changes no pixel. Composing the 100,000 images of a
    correlated training set in one call took their 9.4 GiB of float weights at once."""
    fake = torch.rand((480, 6, 64, 64), generator=torch.Generator().manual_seed(0)) * 0.5
    monkeypatch.setattr(s3d.Shapes3D, "_trace_classes",
                        lambda self, idx, dev: fake[torch.as_tensor(idx)])
    few = Shapes3D().sample_factors(20, np.random.RandomState(0))  # traced on demand
    many = Shapes3D().sample_factors(300, np.random.RandomState(1))  # the cached 480
    assert len(np.unique(many[:, 3:] @ [60, 15, 1])) > s3d._ON_DEMAND_LIMIT
    values = Shapes3D().classes_to_values(few[:9])
    path = save_shapes3d_h5(tmp_path / "tiny.h5", TINY, device=CPU)
    on_file = load("shapes3d", path=path, md5=md5sum(path), image_size=32)
    tiny = on_file.sample_factors(17, np.random.RandomState(2))

    def draw() -> list[torch.Tensor]:
        drawn = [Shapes3D(image_size=size).images_from_classes(c, CPU)
                 for size in (64, 32) for c in (few, many)]
        return [*drawn, s3d.render_shapes3d(*values.T, device=CPU, image_size=32),
                on_file.images_from_classes(tiny, CPU)]

    whole = draw()
    seen: list[int] = []
    compose, shrink = s3d._compose, s3d._shrink
    monkeypatch.setattr(s3d, "_compose",
                        lambda g, *a, **k: seen.append(len(g)) or compose(g, *a, **k))
    monkeypatch.setattr(s3d, "_shrink", lambda x, *a: seen.append(len(x)) or shrink(x, *a))
    monkeypatch.setattr(s3d, "COMPOSE_CHUNK", 7)
    chunked = draw()
    assert all(torch.equal(a, b) for a, b in zip(whole, chunked, strict=True))
    assert max(seen) == 7 and len(seen) > 100


# ---- the official file ------------------------------------------------------------------------
def test_save_and_load_a_tiny_official_file(tmp_path, monkeypatch):
    path = save_shapes3d_h5(tmp_path / "tiny.h5", TINY, device=CPU)
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (192, 64, 64, 3) and f["images"].dtype == np.uint8
        assert f["labels"].shape == (192, 6) and f["labels"].dtype == np.float64
        labels, images = f["labels"][()], f["images"][()]
    monkeypatch.setattr(Shapes3D, "geometry", no_full_trace)
    data = load("shapes3d", path=path, md5=md5sum(path))
    assert data.factor_sizes == TINY and data.num_observations == 192
    np.testing.assert_allclose(data.factor_values[3], [0.75, 0.75 + 0.5 / 7])
    np.testing.assert_allclose(data.labels, labels)
    classes = data.sample_factors(20, np.random.RandomState(0))
    index = data.classes_to_index(classes)
    got = data.images_from_classes(classes, CPU).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got, images[index])
    # the file holds the procedural images of the same classes
    procedural = render(Shapes3D(), classes).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got, procedural)
    every = data.to_device(CPU)
    assert torch.equal(every.images.permute(0, 2, 3, 1), torch.as_tensor(images))


def rewrite(path, images=None, labels=None, drop=None):
    with h5py.File(path, "r") as f:
        arrays = {"images": f["images"][()], "labels": f["labels"][()]}
    if images is not None:
        arrays["images"] = images
    if labels is not None:
        arrays["labels"] = labels
    if drop:
        del arrays[drop]
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="3d-shapes.*needs no file"):
        load("shapes3d", path=tmp_path / "missing.h5")
    good = save_shapes3d_h5(tmp_path / "good.h5", (1, 1, 2, 2, 1, 2), device=CPU)
    with pytest.raises(ValueError, match="MD5"):
        load("shapes3d", path=good)  # the official checksum
    raw = good.read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="HDF5"):
        load("shapes3d", path=tmp_path / "cut.h5", md5=None)
    with h5py.File(good, "r") as f:
        images, labels = f["images"][()], f["labels"][()]
    cases = [
        ("missing datasets", dict(drop="labels")),
        ("must be uint8", dict(images=images.astype(np.float32))),
        ("to match the labels", dict(images=images[:7])),
        ("labels must be", dict(labels=labels[:, :5])),
        ("official order", dict(labels=labels[::-1].copy())),
        ("official order", dict(labels=np.concatenate([labels[:-1], labels[:1]]))),  # a repeat
        ("official grid", dict(labels=labels + np.array([0, 0, 0, 0.01, 0, 0]))),
        ("exactly once", dict(images=images[:-1], labels=labels[:-1])),
        ("NaN", dict(labels=np.where(np.arange(6) == 5, np.nan, labels))),
    ]
    for i, (message, change) in enumerate(cases):
        path = tmp_path / f"bad{i}.h5"
        path.write_bytes(raw)
        rewrite(path, **change)
        with pytest.raises(ValueError, match=message):
            load("shapes3d", path=path, md5=None)
    with pytest.raises(ValueError, match="sizes"):
        save_shapes3d_h5(tmp_path / "x.h5", (11, 1, 1, 1, 1, 1))


def test_32_pixel_images_are_the_64_pixel_scene_averaged_over_2x2_blocks(tmp_path):
    """The CPU scale's 32 × 32 look-alike: the 64 × 64 images averaged over 2 × 2 blocks (up to
    the byte rounding of each), drawn on demand, from the cached geometries and from a file."""
    big, small = Shapes3D(), Shapes3D(image_size=32)
    assert small.observation_shape == (32, 32, 3) and small.factor_sizes == big.factor_sizes
    classes = big.sample_factors(40, np.random.RandomState(3))
    want = torch.nn.functional.avg_pool2d(render(big, classes).float(), 2)
    got = render(small, classes)
    assert got.shape == (40, 3, 32, 32) and got.dtype == torch.uint8
    assert (got.float() - want).abs().max() <= 1.0  # one byte of rounding at most
    assert (got.float() - want).abs().mean() < 0.5
    # the same images through the functional renderer and through the observations
    values = small.classes_to_values(classes)
    drawn = s3d.render_shapes3d(*values.T, device=CPU, image_size=32)
    assert torch.equal(drawn, got)
    obs = small.sample_observations_from_factors(classes, np.random.RandomState(0))
    assert obs.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(obs, got.permute(0, 2, 3, 1).numpy() / np.float32(255))
    assert small.observe(got).shape == (40, 3, 32, 32)
    with pytest.raises(ValueError, match="32, 32"):
        small.observe(render(big, classes[:2]))
    # a tiny official file is averaged the same way
    path = save_shapes3d_h5(tmp_path / "tiny.h5", TINY, device=CPU)
    from_file = load("shapes3d", path=path, md5=md5sum(path), image_size=32)
    tiny = from_file.sample_factors(10, np.random.RandomState(1))
    expect = torch.nn.functional.avg_pool2d(
        load("shapes3d", path=path, md5=md5sum(path)).images_from_classes(tiny, CPU).float(), 2)
    assert torch.equal(from_file.images_from_classes(tiny, CPU), expect.round().to(torch.uint8))
    for bad in (16, 48):
        with pytest.raises(ValueError, match="drawn at"):
            Shapes3D(image_size=bad)
    with pytest.raises(ValueError, match="image_size"):
        s3d.render_shapes3d(0, 0, 0, 1.0, 0, 0, device=CPU, image_size=16)


# ---- the full set and the GPU -------------------------------------------------------------------
@pytest.mark.slow
def test_full_set_composes_every_image_in_index_order(tmp_path, monkeypatch):
    """All 480 geometries traced and all 480,000 images composed (5.5 GiB), in index order.

    Its speed is measured by ``python tools/bench_data.py``; a unit test asserts no wall time.
    """
    monkeypatch.setenv("DLIB_CACHE", str(tmp_path))
    data = Shapes3D()
    images = data.all_images(CPU)
    assert images.shape == (480_000, 3, 64, 64) and images.dtype == torch.uint8
    index = np.random.RandomState(0).choice(480_000, 500, replace=False)
    assert torch.equal(images[index], render(Shapes3D(), data.index_to_classes(index)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu(data):
    classes = data.sample_factors(64, np.random.RandomState(4))
    on_gpu = data.images_from_classes(torch.as_tensor(classes), "cuda")
    assert on_gpu.device.type == "cuda"
    diff = (on_gpu.cpu().int() - render(data, classes).int()).abs()
    assert diff.float().mean() < 0.05 and diff.max() <= 255  # float32 ties at silhouette edges
    assert (diff > 2).float().mean() < 0.002
