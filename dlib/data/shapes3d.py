"""3D shapes: a procedural look-alike of DeepMind's ``3dshapes`` and a reader for the real file.

3dshapes (Burgess & Kim, 2018) shows an object in a room corner: every combination of
10 floor hues x 10 wall hues x 10 object hues x 8 scales x 4 shapes x 15 orientations,
480,000 RGB 64 x 64 images, orientation fastest. We cannot ship it, so :class:`Shapes3D`
draws a look-alike on the same factor grid, with the same label values and order; ``path=``
reads the official ``3dshapes.h5`` instead.

How the look-alike is drawn (a tiny ray tracer, vectorised in torch):

* the world has y up; a floor (y = 0), two walls meeting in a vertical corner behind the
  object, and a pale sky above the walls; a directional light casts the object's shadow;
* the object stands at the origin: cube, cylinder, sphere or capsule (shape classes 0-3),
  its size proportional to the scale value;
* the camera circles the object at a fixed height and distance; its azimuth is the
  orientation value (-30 ... 30 degrees), so the corner, the floor's edge and the object's
  visible faces move together, as in the real data;
* colours are HSV(hue, 1, 1) modulated by Lambert shading, a white highlight on the object,
  and a faint dotted texture on floor and walls; 3 x 3 samples per pixel smooth the edges.

The scene is *linear in the three colours*: a pixel is
``w_floor * floor_rgb + w_wall * wall_rgb + w_object * object_rgb + extra_rgb``, where the
weights (shading times coverage) and the extra light (sky, highlight) depend only on scale,
shape and orientation. So only 8 x 4 x 15 = 480 "geometries" are ray-traced (a few seconds,
cached on disk); any of the 480,000 images is then a cheap weighted sum, computed on demand.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlib import config
from dlib.data.base import GroundTruthData, cached_array
from dlib.data.official import check_file

__all__ = [
    "Shapes3D",
    "Shapes3DFile",
    "SHAPES3D_MD5",
    "SHAPES3D_FACTOR_NAMES",
    "SHAPES3D_SHAPES",
    "SHAPES3D_RENDERER_VERSION",
    "shapes3d_factor_values",
    "render_shapes3d",
    "shapes3d_geometry",
    "hsv_colours",
    "load_shapes3d_h5",
    "save_shapes3d_h5",
]

CANVAS = 64
#: sizes :class:`Shapes3D` draws at: the dataset's 64 × 64, and 32 × 32 for the book's CPU scale
IMAGE_SIZES = (64, 32)
SHAPES3D_FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_SHAPES = ("cube", "cylinder", "sphere", "capsule")
SHAPES3D_URL = "https://github.com/deepmind/3d-shapes (3dshapes.h5)"
SHAPES3D_MD5 = "099a2078d58cec4daad0702c55d06868"  # as listed by nmichlo/disent


def shapes3d_factor_values() -> list[np.ndarray]:
    """The label value of every class of every factor, as stored in the official file.

    Hues are 0.0, 0.1, ..., 0.9 (cyclic: 1.0 would repeat red); scale 0.75 ... 1.25 in 8
    steps; shape 0 ... 3; orientation -30 ... 30 degrees in 15 steps.
    """
    hues = np.arange(10) / 10.0
    return [
        hues.copy(),
        hues.copy(),
        hues.copy(),
        np.linspace(0.75, 1.25, 8),
        np.arange(4, dtype=np.float64),
        np.linspace(-30.0, 30.0, 15),
    ]


# ---- the scene (world units; change one and the cache name changes with it) --------------------
CAMERA_DISTANCE = 4.4  # horizontal distance of the camera from the object
CAMERA_HEIGHT = 2.0
LOOK_AT_HEIGHT = 0.95
FIELD_OF_VIEW = 50.0  # vertical, degrees
WALL_DISTANCE = 4.0  # each wall plane lies this far from the object (corner behind it)
WALL_HEIGHT = 2.6
SKY_RGB = (0.64, 0.84, 0.95)
LIGHT = (-0.3, 1.0, 0.8)  # direction towards the light (normalised below)
AMBIENT = 0.42
SPECULAR = (0.35, 24.0)  # strength and Phong exponent of the white highlight
TEXTURE = (2.2, 0.16, 0.07)  # dots per unit, dot radius (cell units), darkening
SUPERSAMPLE = 3
OBJECT_SIZE = 1.15  # world size at scale 1: cube side, sphere diameter, ...
_CONSTANTS = (
    CAMERA_DISTANCE, CAMERA_HEIGHT, LOOK_AT_HEIGHT, FIELD_OF_VIEW, WALL_DISTANCE, WALL_HEIGHT,
    SKY_RGB, LIGHT, AMBIENT, SPECULAR, TEXTURE, SUPERSAMPLE, OBJECT_SIZE,
)  # fmt: skip
SHAPES3D_RENDERER_VERSION = "s1-" + hashlib.sha1(repr(_CONSTANTS).encode()).hexdigest()[:8]

Tensor = torch.Tensor
_INF = float("inf")
_ON_DEMAND_LIMIT = 96  # more distinct geometries than this in one call: use the cached 480
#: images composed (or shrunk from the file) at a time: the (N, 6, 64, 64) float32 weights of a
#: whole request are 96 KiB an image, 9.4 GiB for the 100,000 of a correlated training set
COMPOSE_CHUNK = 2048
_EPS = 1e-9


def hsv_colours(hues: object, device: torch.device | str | None = None) -> Tensor:
    """RGB (N, 3) float32 of fully saturated, full-value HSV colours with these hues in [0, 1)."""
    h = torch.as_tensor(hues, dtype=torch.float64, device=config.device(device)).reshape(-1)
    k = torch.tensor([5.0, 3.0, 1.0], dtype=torch.float64, device=h.device)
    # the standard closed form of HSV -> RGB at s = v = 1
    p = torch.remainder(k + 6.0 * h[:, None], 6.0)
    rgb = 1.0 - torch.clamp(torch.minimum(p, 4.0 - p), 0.0, 1.0)
    return rgb.float()


def _normalise(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def _safe(d: Tensor) -> Tensor:
    """``d`` with exact zeros nudged away, so that 1 / d is finite (signs kept)."""
    return torch.where(d.abs() < _EPS, torch.full_like(d, _EPS), d)


def _hit_sphere(o: Tensor, d: Tensor, centre_y: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
    """First hit distance (G, M) of rays o + t d (G, M, 3) with spheres at (0, cy, 0)."""
    oc = o.clone()
    oc[..., 1] -= centre_y[:, None]
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - (r * r)[:, None]
    disc = b * b - c
    t = -b - torch.sqrt(torch.clamp(disc, min=0.0))
    t = torch.where((disc >= 0) & (t > 1e-6), t, torch.full_like(t, _INF))
    p = o + t.unsqueeze(-1) * d
    n = p.clone()
    n[..., 1] -= centre_y[:, None]
    return t, n / r[:, None, None]


def _hit_tube(o: Tensor, d: Tensor, r: Tensor, y0: Tensor, y1: Tensor) -> tuple[Tensor, Tensor]:
    """First hit of the side of vertical cylinders of radius r between heights y0 and y1."""
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
    c = o[..., 0] ** 2 + o[..., 2] ** 2 - (r * r)[:, None]
    disc = b * b - a * c
    t = (-b - torch.sqrt(torch.clamp(disc, min=0.0))) / torch.clamp(a, min=_EPS)
    y = o[..., 1] + t * d[..., 1]
    ok = (disc >= 0) & (t > 1e-6) & (y >= y0[:, None]) & (y <= y1[:, None])
    t = torch.where(ok, t, torch.full_like(t, _INF))
    p = o + torch.where(ok, t, torch.zeros_like(t)).unsqueeze(-1) * d
    n = torch.stack([p[..., 0], torch.zeros_like(t), p[..., 2]], -1) / r[:, None, None]
    return t, n


def _hit_disc(o: Tensor, d: Tensor, r: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Hit of horizontal discs of radius r at height y, seen from above."""
    t = (y[:, None] - o[..., 1]) / _safe(d[..., 1])
    p = o + torch.where(t > 0, t, torch.zeros_like(t)).unsqueeze(-1) * d
    ok = (t > 1e-6) & (p[..., 0] ** 2 + p[..., 2] ** 2 <= (r * r)[:, None]) & (d[..., 1] < 0)
    t = torch.where(ok, t, torch.full_like(t, _INF))
    n = torch.zeros_like(o)
    n[..., 1] = 1.0
    return t, n


def _hit_box(o: Tensor, d: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    """First hit of axis-aligned boxes [-h, h] x [0, 2h] x [-h, h] (slab method)."""
    inv = 1.0 / _safe(d)
    lo = torch.stack([-half, torch.zeros_like(half), -half], -1)[:, None, :]
    hi = torch.stack([half, 2 * half, half], -1)[:, None, :]
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    near, far = torch.minimum(t1, t2), torch.maximum(t1, t2)
    t_near, axis = near.max(-1)
    t_far = far.min(-1).values
    ok = (t_far >= t_near) & (t_near > 1e-6)
    t = torch.where(ok, t_near, torch.full_like(t_near, _INF))
    # the normal points against the ray along the axis whose slab was entered last
    n = torch.zeros_like(o)
    n.scatter_(-1, axis.unsqueeze(-1), -torch.sign(d).gather(-1, axis.unsqueeze(-1)))
    return t, n


def _hit_object(o: Tensor, d: Tensor, shape: int, scale: Tensor) -> tuple[Tensor, Tensor]:
    """First hit distance (G, M) and unit normal (G, M, 3) of the object ``shape``."""
    size = OBJECT_SIZE * scale
    if shape == 0:  # cube of side `size`
        return _hit_box(o, d, size / 2)
    if shape == 1:  # cylinder: diameter `size`, height `size`
        r = size / 2
        side, n_side = _hit_tube(o, d, r, torch.zeros_like(r), size)
        top, n_top = _hit_disc(o, d, r, size)
        use_top = top < side
        return torch.where(use_top, top, side), torch.where(use_top[..., None], n_top, n_side)
    if shape == 2:  # sphere of diameter `size`, resting on the floor
        r = size / 2
        return _hit_sphere(o, d, r, r)
    # capsule: radius 0.4 size, total height 1.4 size, standing up
    r = 0.4 * size
    y0, y1 = r, 1.4 * size - r
    hits = [_hit_tube(o, d, r, y0, y1), _hit_sphere(o, d, y0, r), _hit_sphere(o, d, y1, r)]
    t = torch.stack([h[0] for h in hits])
    best = t.argmin(0)
    normals = torch.stack([h[1] for h in hits])
    n = normals.gather(0, best[None, ..., None].expand(1, *normals.shape[1:]))[0]
    return t.min(0).values, n


def _cameras(azimuth_deg: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Camera position, forward, right and up vectors (G, 3) for azimuths in degrees."""
    phi = torch.deg2rad(azimuth_deg)
    pos = torch.stack(
        [
            CAMERA_DISTANCE * torch.sin(phi),
            torch.full_like(phi, CAMERA_HEIGHT),
            CAMERA_DISTANCE * torch.cos(phi),
        ],
        -1,
    )
    target = torch.zeros_like(pos)
    target[:, 1] = LOOK_AT_HEIGHT
    fwd = _normalise(target - pos)
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=pos.dtype, device=pos.device).expand_as(fwd)
    right = _normalise(torch.linalg.cross(fwd, world_up))
    up = torch.linalg.cross(right, fwd)
    return pos, fwd, right, up


def _dots(u: Tensor, v: Tensor) -> Tensor:
    """1 on a regular grid of small dots in the (u, v) plane, else 0 (the faint texture)."""
    per_unit, radius, _ = TEXTURE
    fu = torch.remainder(u * per_unit, 1.0) - 0.5
    fv = torch.remainder(v * per_unit, 1.0) - 0.5
    return (fu * fu + fv * fv < radius * radius).to(u.dtype)


def _trace(shape: int, scale: Tensor, azimuth: Tensor) -> Tensor:
    """Weights (G, 6, 64, 64) float32 of G geometries of one shape: floor, wall, object weights
    and the extra RGB light, averaged over the supersamples of each pixel."""
    dev, dt = scale.device, torch.float32
    g = scale.numel()
    s = SUPERSAMPLE
    n_side = CANVAS * s
    ramp = (torch.arange(n_side, device=dev, dtype=dt) + 0.5) / n_side * 2.0 - 1.0
    tan = math.tan(math.radians(FIELD_OF_VIEW) / 2)
    sy, sx = torch.meshgrid(-ramp * tan, ramp * tan, indexing="ij")  # row 0 at the top
    pos, fwd, right, up = _cameras(azimuth)
    d = (
        fwd[:, None, :]
        + sx.reshape(1, -1, 1) * right[:, None, :]
        + sy.reshape(1, -1, 1) * up[:, None, :]
    )
    d = _normalise(d)  # (G, M, 3)
    o = pos[:, None, :].expand_as(d)
    light = _normalise(torch.tensor(LIGHT, dtype=dt, device=dev))

    # the room: floor y = 0, walls n_k . p = -WALL_DISTANCE with inward normals n_k
    walls = torch.tensor([[1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], dtype=dt, device=dev) / math.sqrt(2)
    t_floor = torch.where(
        d[..., 1] < 0, -o[..., 1] / _safe(d[..., 1]), torch.full_like(d[..., 0], _INF)
    )
    wall_t = []
    for k in range(2):
        nd = d @ walls[k]
        t = (-WALL_DISTANCE - o @ walls[k]) / _safe(nd)
        wall_t.append(torch.where((nd < 0) & (t > 0), t, torch.full_like(t, _INF)))
    t_wall, which_wall = torch.stack(wall_t).min(0)
    wall_y = o[..., 1] + torch.where(t_wall.isfinite(), t_wall, 0.0) * d[..., 1]
    t_wall = torch.where(wall_y <= WALL_HEIGHT, t_wall, torch.full_like(t_wall, _INF))
    t_obj, n_obj = _hit_object(o, d, shape, scale)

    t_all = torch.stack([t_floor, t_wall, t_obj])  # (3, G, M)
    t_best, region = t_all.min(0)
    region = torch.where(t_best.isfinite(), region, torch.full_like(region, 3))  # 3 = sky
    p = o + torch.where(t_best.isfinite(), t_best, 0.0).unsqueeze(-1) * d

    # shadows: is the light blocked by the object from this floor / wall point?
    lit_dir = light.expand_as(p).contiguous()
    start = p + 1e-4 * lit_dir
    t_block, _ = _hit_object(start, lit_dir, shape, scale)
    visible = (~t_block.isfinite()).to(dt)

    floor_tex = 1.0 - TEXTURE[2] * _dots(p[..., 0], p[..., 2])
    wall_n = walls[which_wall]  # (G, M, 3)
    along = p[..., 0] * wall_n[..., 2] - p[..., 2] * wall_n[..., 0]  # coordinate along the wall
    wall_tex = 1.0 - TEXTURE[2] * _dots(along, p[..., 1])
    diffuse = 1.0 - AMBIENT
    w_floor = (AMBIENT + diffuse * light[1] * visible) * floor_tex
    w_wall = (AMBIENT + diffuse * torch.clamp(wall_n @ light, min=0.0) * visible) * wall_tex
    lambert = torch.clamp((n_obj * light).sum(-1), min=0.0)
    w_obj = AMBIENT + diffuse * lambert
    reflect = 2 * lambert.unsqueeze(-1) * n_obj - light
    strength, power = SPECULAR
    spec = strength * torch.clamp(-(reflect * d).sum(-1), min=0.0) ** power * (lambert > 0)

    weights = torch.zeros((g, 6, n_side * n_side), dtype=dt, device=dev)
    weights[:, 0] = torch.where(region == 0, w_floor, 0.0)
    weights[:, 1] = torch.where(region == 1, w_wall, 0.0)
    weights[:, 2] = torch.where(region == 2, w_obj, 0.0)
    sky = torch.tensor(SKY_RGB, dtype=dt, device=dev)
    extra = (region == 3).to(dt).unsqueeze(-1) * sky + torch.where(
        region == 2, spec, 0.0
    ).unsqueeze(-1)
    weights[:, 3:] = extra.transpose(1, 2)
    # average each s x s block of samples into its pixel
    weights = weights.view(g, 6, CANVAS, s, CANVAS, s).mean((3, 5))
    return weights.float()


def shapes3d_geometry(
    scale: object, shape: object, orientation: object, device: torch.device | str | None = None
) -> Tensor:
    """Ray-traced weights (G, 6, 64, 64) float32 of G (scale, shape, orientation) triples.

    Channels 0-2 multiply the floor, wall and object colours; channels 3-5 are added light
    (sky and highlight). ``scale`` and ``orientation`` (degrees) are values, ``shape`` the
    class 0-3; arrays or scalars, broadcast to one length.
    """
    dev = config.device(device)
    args = [
        torch.as_tensor(a, device=dev).double().reshape(-1) for a in (scale, shape, orientation)
    ]
    scale_, shape_, azim = torch.broadcast_tensors(*args)
    if not bool(((shape_ == 0) | (shape_ == 1) | (shape_ == 2) | (shape_ == 3)).all()):
        raise ValueError("shape must be a class in {0, 1, 2, 3} (cube, cylinder, sphere, capsule)")
    if not bool(((scale_ > 0) & (scale_ <= 2)).all()):
        raise ValueError("scale must lie in (0, 2]")
    if not bool((azim.abs() <= 90).all()):
        raise ValueError("orientation must lie in [-90, 90] degrees")
    out = torch.empty((scale_.numel(), 6, CANVAS, CANVAS), dtype=torch.float32, device=dev)
    chunk = 64 if dev.type == "cuda" else 4
    for k in range(4):
        members = (shape_ == k).nonzero().squeeze(1)
        for start in range(0, members.numel(), chunk):
            i = members[start : start + chunk]
            out[i] = _trace(k, scale_[i].float(), azim[i].float())
    return out


def _compose(geometry: Tensor, colours: Tensor, out: Tensor | None = None,
             image_size: int = CANVAS) -> Tensor:
    """Images (N, 3, S, S) uint8 from weights (N, 6, 64, 64) and colours (N, 3 regions, 3);
    at S < 64 the clipped 64 × 64 image is averaged over blocks before it is rounded to bytes
    (:func:`_shrink`)."""
    rgb = geometry[:, 3:].clone()
    for region in range(3):
        rgb.addcmul_(geometry[:, region : region + 1], colours[:, region, :, None, None])
    rgb = _shrink(rgb.mul_(255.0).clamp_(0, 255), image_size).round_()
    if out is None:
        return rgb.to(torch.uint8)
    out.copy_(rgb)
    return out


def _compose_rows(geometry: Tensor, rows: Tensor, colours: Tensor, image_size: int) -> Tensor:
    """:func:`_compose` of N images whose weights are ``geometry[rows]``, :data:`COMPOSE_CHUNK`
    images at a time into one uint8 tensor, so that memory grows with the images' bytes, not
    with their float weights."""
    size = int(image_size)
    out = torch.empty((len(rows), 3, size, size), dtype=torch.uint8, device=geometry.device)
    for start in range(0, len(rows), COMPOSE_CHUNK):
        part = slice(start, start + COMPOSE_CHUNK)
        _compose(geometry[rows[part]], colours[part], out[part], size)
    return out


def _shrink(x: Tensor, image_size: int) -> Tensor:
    """(N, C, 64, 64) float images averaged over square blocks to (N, C, S, S): the
    area-average that a camera with 4 × fewer, larger pixels would record."""
    if image_size == CANVAS:
        return x
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
    return torch.nn.functional.avg_pool2d(x, CANVAS // image_size)


def render_shapes3d(
    floor_hue: object,
    wall_hue: object,
    object_hue: object,
    scale: object,
    shape: object,
    orientation: object,
    device: torch.device | str | None = None,
    image_size: int = CANVAS,
) -> Tensor:
    """Draw look-alike 3dshapes images (N, 3, S, S) uint8 from factor values.

    Hues in [0, 1), scale in (0, 2], shape the class 0-3, orientation in degrees; arrays,
    tensors or scalars, broadcast to one length. Each distinct (scale, shape, orientation)
    is ray-traced once. ``image_size`` S is 64 or 32 (the 64 × 64 image averaged over 2 × 2
    blocks before rounding, :func:`_shrink`).
    """
    if image_size not in IMAGE_SIZES:  # before any tracing
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
    dev = config.device(device)
    args = [
        torch.as_tensor(a, device=dev).double().reshape(-1)
        for a in (floor_hue, wall_hue, object_hue, scale, shape, orientation)
    ]
    fh, wh, oh, sc, sh, az = torch.broadcast_tensors(*args)
    triples = torch.stack([sc, sh, az], 1)
    unique, inverse = torch.unique(triples, dim=0, return_inverse=True)
    geometry = shapes3d_geometry(*unique.T, device=dev)
    colours = torch.stack([hsv_colours(h, dev) for h in (fh, wh, oh)], 1)
    return _compose_rows(geometry, inverse, colours, image_size)


# ---- the official file --------------------------------------------------------------------------
@dataclass(frozen=True)
class Shapes3DFile:
    """The arrays of a ``3dshapes.h5`` file (or a smaller one with its schema), validated."""

    images: np.ndarray  # (N, 64, 64, 3) uint8
    labels: np.ndarray  # (N, 6) float64
    sizes: tuple[int, ...]  # classes per factor, read off the labels
    values: list[np.ndarray]  # the sorted label values of each factor
    classes: np.ndarray  # (N, 6) int64


def load_shapes3d_h5(path: str | Path, md5: str | None = SHAPES3D_MD5) -> Shapes3DFile:
    """Read and validate ``3dshapes.h5``: datasets ``images`` (N, 64, 64, 3) uint8 and ``labels``
    (N, 6) float64, every combination of the label values exactly once, orientation fastest.

    A reduced grid (fewer values per factor, each among the official ones) passes the same
    checks, so tests and examples can use tiny files. The whole file is read into memory
    (random access into the h5 is slow).
    """
    import h5py

    hint = (
        f"{SHAPES3D_URL}; the procedural look-alike, dlib.data.load('shapes3d') without "
        "path=, needs no file"
    )
    path = check_file(path, md5, "the 3dshapes h5 file", hint)
    try:
        with h5py.File(path, "r") as f:
            missing = {"images", "labels"} - set(f.keys())
            if missing:
                raise ValueError(
                    f"{path} is not a 3dshapes file: missing datasets {sorted(missing)}"
                )
            images = f["images"][()]
            labels = np.asarray(f["labels"][()], dtype=np.float64)
    except OSError as err:
        raise ValueError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?): {err}"
        ) from err
    if labels.ndim != 2 or labels.shape[1] != 6:
        raise ValueError(f"{path}: labels must be (N, 6), got {labels.shape}")
    n = labels.shape[0]
    if images.dtype != np.uint8 or images.shape != (n, CANVAS, CANVAS, 3):
        raise ValueError(
            f"{path}: images must be uint8 ({n}, 64, 64, 3) to match the labels, "
            f"got {images.dtype} {images.shape}"
        )
    if not np.isfinite(labels).all():
        raise ValueError(f"{path}: labels contain NaN or infinity")
    official = shapes3d_factor_values()
    values, classes = [], np.zeros((n, 6), dtype=np.int64)
    for j, name in enumerate(SHAPES3D_FACTOR_NAMES):
        col = labels[:, j]
        vals = np.unique(col)
        near = np.abs(vals[:, None] - official[j][None, :]).min(1)
        if (near > 1e-4).any():
            raise ValueError(
                f"{path}: {name} takes values {vals[near > 1e-4][:5]} that the official grid "
                f"does not have ({np.round(official[j], 4).tolist()})"
            )
        values.append(vals)
        classes[:, j] = np.searchsorted(vals, col)
    sizes = tuple(len(v) for v in values)
    if int(np.prod(sizes)) != n:
        raise ValueError(
            f"{path}: {n} rows but the label values form a grid of {int(np.prod(sizes))} "
            f"({' x '.join(map(str, sizes))}); every combination must appear exactly once"
        )
    bases = np.concatenate([np.cumprod(np.asarray(sizes)[::-1])[::-1][1:], [1]])
    if not np.array_equal(classes @ bases, np.arange(n)):
        raise ValueError(
            f"{path}: rows are not in the official order (floor hue slowest, orientation "
            "fastest); the images could not be looked up by their factors"
        )
    return Shapes3DFile(images, labels, sizes, values, classes)


def save_shapes3d_h5(
    path: str | Path,
    sizes: tuple[int, ...] = (10, 10, 10, 8, 4, 15),
    device: torch.device | str | None = None,
) -> Path:
    """Write look-alike images in the official file's schema (``images``, ``labels``).

    ``sizes`` keeps the first ``sizes[j]`` classes of each factor (the official values), so
    ``(2, 2, 2, 2, 4, 3)`` makes a tiny file for tests; the default writes all 480,000 images
    (5.5 GiB, like the original).
    """
    import h5py

    sizes = tuple(int(s) for s in sizes)
    full = (10, 10, 10, 8, 4, 15)
    if len(sizes) != 6 or any(not 1 <= s <= m for s, m in zip(sizes, full, strict=True)):
        raise ValueError(f"sizes must be 6 entries between 1 and {full}, got {sizes}")
    vals = [v[:s] for v, s in zip(shapes3d_factor_values(), sizes, strict=True)]
    n = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(n), sizes), axis=1)
    labels = np.stack([v[classes[:, j]] for j, v in enumerate(vals)], axis=1)
    # the first classes of each factor keep their official class numbers: trace each needed
    # geometry once, then compose block by block
    dev = config.device(device)
    data = Shapes3D()
    needed = np.unique((classes[:, 3] * 4 + classes[:, 4]) * 15 + classes[:, 5])
    if len(needed) == 480:
        data.geometry(dev)
    else:
        geometry = torch.zeros((480, 6, CANVAS, CANVAS), device=dev)
        geometry[torch.as_tensor(needed, device=dev)] = data._trace_classes(needed, dev)
        data._geometry[dev] = geometry
    path = Path(path)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (n, CANVAS, CANVAS, 3), dtype=np.uint8)
        for start in range(0, n, 4800):
            block = data.images_from_classes(classes[start : start + 4800], dev)
            images[start : start + len(block)] = block.permute(0, 2, 3, 1).cpu().numpy()
        f.create_dataset("labels", data=labels)
    return path


# ---- the dataset --------------------------------------------------------------------------------
class Shapes3D(GroundTruthData):
    """3dshapes with its six factors (disentanglement_lib's ``shapes3d``), RGB (S, S, 3).

    ``path=None`` draws the procedural look-alike (module docstring); ``path=`` reads the
    official ``3dshapes.h5`` (checked against ``md5``; ``md5=None`` skips the check). No
    nuisance: an observation is the stored image scaled to [0, 1]. ``image_size`` S is the
    dataset's 64 or 32 (the book's CPU scale): the 64 × 64 images averaged over 2 × 2 blocks
    (:func:`_shrink`), drawn or read from the official file.
    """

    name = "shapes3d"
    image_sizes: tuple[int, ...] = IMAGE_SIZES

    def __init__(self, path: str | Path | None = None, md5: str | None = SHAPES3D_MD5,
                 image_size: int = CANVAS):
        self.image_size = self._checked_image_size(image_size)
        self.file: Shapes3DFile | None = None if path is None else load_shapes3d_h5(path, md5)
        if self.file is None:
            self._values = shapes3d_factor_values()
        else:
            self._values = [v.copy() for v in self.file.values]
        self._sizes = tuple(len(v) for v in self._values)
        self._geometry: dict[torch.device, Tensor] = {}

    # -- the grid
    @property
    def factor_names(self) -> tuple[str, ...]:
        return SHAPES3D_FACTOR_NAMES

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self._sizes

    @property
    def factor_values(self) -> list[np.ndarray]:
        return [v.copy() for v in self._values]

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)

    @property
    def labels(self) -> np.ndarray:
        """(N, 6) float64 label values in index order, as in the official file."""
        if self.file is not None:
            return self.file.labels
        return self.classes_to_values(self.index_to_classes(np.arange(self.num_observations)))

    # -- stored images
    def geometry(self, device: torch.device | str | None = None) -> Tensor:
        """The 480 ray-traced 64 × 64 geometries (scale, shape, orientation) in index order,
        cached.

        Cached on disk under ``dlib.config.cache_dir()`` (name carries
        :data:`SHAPES3D_RENDERER_VERSION`, checksum verified) and in memory per device.
        """
        dev = config.device(device)
        if dev not in self._geometry:

            def build() -> np.ndarray:
                return self._trace_classes(np.arange(480), dev).cpu().numpy()

            path = config.cache_dir() / f"shapes3d-geometry-{SHAPES3D_RENDERER_VERSION}.npy"
            self._geometry[dev] = torch.from_numpy(cached_array(path, build)).to(dev)
        return self._geometry[dev]

    def _trace_classes(self, geo_index: np.ndarray, dev: torch.device) -> Tensor:
        sc, sh, az = np.unravel_index(geo_index, (8, 4, 15))
        values = shapes3d_factor_values()
        return shapes3d_geometry(values[3][sc], sh, values[5][az], device=dev)

    def _file_images(self, index: Tensor, dev: torch.device) -> Tensor:
        """Images of the official file (N, 3, S, S) uint8, averaged over blocks at S < 64."""
        images = torch.from_numpy(self.file.images)[index].permute(0, 3, 1, 2).contiguous()
        if self.image_size != CANVAS:
            small = torch.empty((len(images), 3, self.image_size, self.image_size),
                                dtype=torch.uint8)
            for start in range(0, len(images), COMPOSE_CHUNK):
                part = slice(start, start + COMPOSE_CHUNK)
                small[part] = _shrink(images[part].float(), self.image_size).round_()
            images = small
        return images.to(dev)

    def images_from_classes(
        self, classes: torch.Tensor, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """RGB images (N, 3, S, S) uint8: drawn, or looked up in the official file.

        Drawing traces only the geometries needed when they are few (a quick run never waits
        for all 480); with many, or once loaded, the cached 480 of :meth:`geometry` are used.
        """
        dev = config.device(device)
        arr = self.check_classes(classes)
        if self.file is not None:
            return self._file_images(torch.as_tensor(arr @ self.factor_bases), dev)
        if len(arr) == 0:
            size = self.image_size
            return torch.zeros((0, 3, size, size), dtype=torch.uint8, device=dev)
        geo_index = (arr[:, 3] * 4 + arr[:, 4]) * 15 + arr[:, 5]
        unique, inverse = np.unique(geo_index, return_inverse=True)
        if dev in self._geometry or len(unique) > _ON_DEMAND_LIMIT:
            geometry, rows = self.geometry(dev), geo_index
        else:  # a few geometries: trace just those (nothing is cached)
            geometry, rows = self._trace_classes(unique, dev), inverse
        palette = hsv_colours(self._values[0], dev)  # all three hue factors share the grid
        colours = palette[torch.as_tensor(arr[:, :3], device=dev)]
        rows = torch.as_tensor(rows.reshape(-1), device=dev)
        return _compose_rows(geometry, rows, colours, self.image_size)

    def all_images(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Every image (480000, 3, S, S) uint8 (5.5 GiB at 64 × 64, 1.4 GiB at 32 × 32): the
        file, or composed from the cached geometries in chunks."""
        dev = config.device(device)
        if self.file is not None:
            return self._file_images(torch.arange(self.num_observations), dev)
        geometry = self.geometry(dev)
        size = self.image_size
        out = torch.empty((self.num_observations, 3, size, size), dtype=torch.uint8, device=dev)
        palette = hsv_colours(self._values[0], dev)
        block = 480 * 10  # one (floor hue, wall hue) pair: every object hue and geometry
        tiled = geometry.repeat(10, 1, 1, 1)  # object hue slowest, then the 480 geometries
        object_colours = palette.repeat_interleave(480, 0)
        for start in config.progress(
            range(0, self.num_observations, block), desc="drawing 3D shapes", unit_scale=block
        ):
            f, w = divmod(start // block, 10)
            colours = torch.stack(
                [
                    palette[f].expand(block, 3),
                    palette[w].expand(block, 3),
                    object_colours,
                ],
                1,
            )
            _compose(tiled, colours, out[start : start + block], self.image_size)
        return out

    # -- observations
    #: no nuisance: an observation is its stored image (codes may be looked up by index)
    deterministic_observations = True

    def skip_observation_draws(self, num: int, random_state: np.random.RandomState) -> None:
        """Nothing: drawing observations consumes no randomness."""

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        images = self.images_from_classes(self.check_classes(factors), "cpu")
        return images.permute(0, 2, 3, 1).numpy().astype(np.float32) / np.float32(255.0)

    def observe(
        self, stored: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        size = self.image_size
        if stored.dtype != torch.uint8 or tuple(stored.shape[1:]) != (3, size, size):
            raise ValueError(
                f"stored images must be uint8 (N, 3, {size}, {size}), got {stored.dtype} "
                f"{tuple(stored.shape)}"
            )
        return stored.float() / 255.0
