"""Profiles, device choice, seeding and progress bars.

Every chapter runs in one of two *profiles*:

``quick``
    small enough to execute every cell on a 2-core CPU in about a minute (CI, readers without a
    GPU). Its numbers only show that the code runs; they are never results.
``full``
    the real experiment, sized for one GPU.

``DLIB_PROFILE=quick|full`` wins; otherwise the profile is ``full`` when CUDA is available and
``quick`` when it is not. A chapter states its sizes for both profiles in one visible cell with
:func:`by_profile`.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch

Profile = Literal["quick", "full"]
PROFILES: tuple[Profile, ...] = ("quick", "full")
T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def profile() -> Profile:
    """The active profile: ``$DLIB_PROFILE`` if set, else ``full`` with CUDA, else ``quick``."""
    value = os.environ.get("DLIB_PROFILE", "").strip().lower()
    if value:
        if value not in PROFILES:
            raise ValueError(f"DLIB_PROFILE must be one of {PROFILES}, got {value!r}")
        return value  # type: ignore[return-value]
    return "full" if torch.cuda.is_available() else "quick"


def is_quick() -> bool:
    """True in the quick profile."""
    return profile() == "quick"


def by_profile(quick: T, full: T) -> T:
    """Return ``quick`` or ``full`` according to the active profile.

    Chapters write their experiment sizes with it, so both sizes stay visible side by side:
    ``steps = by_profile(quick=300, full=30_000)``.
    """
    return quick if is_quick() else full


def device(name: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``name`` if given, else ``$DLIB_DEVICE``, else CUDA if present.

    An explicit request for CUDA on a machine without it is an error rather than a silent
    fallback to the CPU.
    """
    name = name if name is not None else os.environ.get("DLIB_DEVICE") or None
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> np.random.RandomState:
    """Seed Python's, NumPy's and torch's global generators; return a fresh ``RandomState(seed)``.

    dlib itself never relies on global state (it passes generators explicitly), but readers'
    own cells do, and this makes a chapter re-run identically.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.RandomState(seed % 2**32)


def generator(seed: int, dev: torch.device | str | None = None) -> torch.Generator:
    """A torch generator on ``dev`` seeded with ``seed`` (dlib passes these explicitly)."""
    gen = torch.Generator(device=device(dev))
    gen.manual_seed(int(seed))
    return gen


def cache_dir() -> Path:
    """Where generated datasets are cached: ``$DLIB_CACHE`` or ``~/.cache/dlib``."""
    root = os.environ.get("DLIB_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "dlib"
    path.mkdir(parents=True, exist_ok=True)
    return path


def progress_disabled() -> bool:
    """True when ``$TQDM_DISABLE`` asks for no progress bars (CI, stored notebook outputs)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in _TRUE


def progress(iterable: Iterable[T] | None = None, **kwargs) -> Iterable[T]:
    """A notebook-aware tqdm bar that honours ``$TQDM_DISABLE`` also inside Jupyter kernels.

    ``tqdm.auto`` ignores the environment variable in notebooks (it passes ``disable``
    explicitly), so we pass it ourselves.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", progress_disabled())
    return tqdm(iterable, **kwargs)


def describe() -> dict[str, str]:
    """Profile, device and library versions, for the 'outputs from' notes of the chapters."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {
        "profile": profile(),
        "device": name,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (network construction) under a fixed torch seed without touching global state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
