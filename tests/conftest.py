"""Shared pytest set-up: tests marked ``slow`` or ``browser`` run only when asked for.

``pytest --run-slow`` (or ``DLIB_RUN_SLOW=1``, or selecting them with ``-m slow``) runs the slow
ones; otherwise they are skipped, so the default suite stays fast on a 2-core CPU. Tests marked
``browser`` (headless Chromium) run only when selected with ``-m browser``, as tools/test.sh's
browser stage does.

The fixture ``images_32`` gives small 32×32 training sets (1 or 3 channels) for the methods'
CPU-scale tests.
"""

import os
from types import SimpleNamespace

import pytest


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    markexpr = (config.getoption("-m") or "").replace("not browser", "")
    if "browser" not in markexpr:
        skip_browser = pytest.mark.skip(reason="browser: run with -m browser (test.sh's stage)")
        for item in items:
            if item.get_closest_marker("browser") is not None:
                item.add_marker(skip_browser)
    wanted = (
        config.getoption("--run-slow")
        or os.environ.get("DLIB_RUN_SLOW", "").strip().lower() in {"1", "true", "yes", "on"}
        or "slow" in (config.getoption("-m") or "").replace("not slow", "")
    )
    if wanted:
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or DLIB_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class _Coloured:
    """A DeviceData stand-in: 32×32 dSprites with the sprite in a random colour per image (each
    channel in [0.5, 1]); no dataset is drawn in colour at 32×32, and the CPU-scale tests of
    the methods train on (3, 32, 32) images too."""

    def __init__(self, grey):
        self.grey, self.images, self.device = grey, grey.images, grey.device
        self.data = SimpleNamespace(image_shape=(3, 32, 32))

    def sample(self, batch_size, generator=None):
        import torch

        x = self.grey.sample(batch_size, generator)
        colour = torch.rand(batch_size, 3, 1, 1, device=x.device, generator=generator)
        return x * (0.5 + 0.5 * colour)


@pytest.fixture(scope="session")
def images_32():
    """``images_32(channels)``: 128 dSprites images at 32×32 (the CPU scale's size) to train
    on, with 1 channel (the dataset itself) or 3 (coloured, :class:`_Coloured`)."""
    from dlib.data import load

    grey = load("dsprites", image_size=32).to_device("cpu", num=128, seed=0)
    return lambda channels: grey if channels == 1 else _Coloured(grey)
