"""Ground-truth datasets behind one interface (:class:`GroundTruthData`).

``load(name, **options)`` is the entry point::

    data = dlib.data.load("dsprites")                 # drawn procedurally, no download
    data = dlib.data.load("dsprites", path="dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    factors, x = data.sample(16, np.random.RandomState(0))   # disentanglement_lib's protocol
    train = data.to_device(num=20_000)                       # uint8 images on the device
    batch = train.sample(64, dlib.config.generator(0))        # (64, C, 64, 64) float32
"""

from __future__ import annotations

from dlib.data.base import DeviceData, GroundTruthData, cached_array
from dlib.data.correlated import CorrelatedSplit, band_joint, correlated_split, joint_histogram
from dlib.data.digits import ColoredDigits, MnistColored, load_mnist
from dlib.data.dsprites import (
    RENDERER_VERSION,
    ColorDSprites,
    DSprites,
    NoisyDSprites,
    ScreamDSprites,
    procedural_scream,
    render_dsprites,
    save_dsprites_npz,
)
from dlib.data.heldout import HeldOut
from dlib.data.official import DSPRITES_MD5, load_dsprites_npz
from dlib.data.shapes3d import Shapes3D, load_shapes3d_h5, render_shapes3d, save_shapes3d_h5
from dlib.data.smallnorb import SmallNORB, load_smallnorb

__all__ = [
    "load",
    "DATASETS",
    "GroundTruthData",
    "DeviceData",
    "HeldOut",
    "DSprites",
    "ColorDSprites",
    "NoisyDSprites",
    "ScreamDSprites",
    "render_dsprites",
    "procedural_scream",
    "load_dsprites_npz",
    "save_dsprites_npz",
    "cached_array",
    "DSPRITES_MD5",
    "RENDERER_VERSION",
    "Shapes3D",
    "render_shapes3d",
    "load_shapes3d_h5",
    "save_shapes3d_h5",
    "ColoredDigits",
    "MnistColored",
    "load_mnist",
    "SmallNORB",
    "load_smallnorb",
    "CorrelatedSplit",
    "correlated_split",
    "band_joint",
    "joint_histogram",
]

DATASETS: dict[str, type[GroundTruthData]] = {
    "dsprites": DSprites,
    "color_dsprites": ColorDSprites,
    "noisy_dsprites": NoisyDSprites,
    "scream_dsprites": ScreamDSprites,
    "shapes3d": Shapes3D,
    "colored_digits": ColoredDigits,
    "mnist_colored": MnistColored,
    "smallnorb": SmallNORB,
}


def load(name: str, **options) -> GroundTruthData:
    """The dataset called ``name``; ``options`` go to its class.

    dSprites and its variants take ``path=`` (the official npz; without it they are drawn
    procedurally) and ``md5=`` (the expected checksum, ``None`` to skip); ``scream_dsprites``
    also takes ``scream_path=`` (an image file for the background).
    ``shapes3d`` is drawn procedurally unless ``path=`` names ``3dshapes.h5`` (``md5=``);
    ``colored_digits`` needs no file; ``mnist_colored`` (``path=``, ``split=``) and
    ``smallnorb`` (``path=``, a directory) read files you supply.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](**options)
