"""Time the procedural datasets' full sets: render from scratch, then load from the cache.

    python tools/bench_data.py                      # dSprites and 3D Shapes, 2 torch threads
    python tools/bench_data.py --datasets dsprites --threads 1

Each dataset renders into an empty temporary cache (``DLIB_CACHE``), so the first number is a
real render; the second is the cached load. Prints wall and CPU seconds. A benchmark, not a test:
the unit tests check what is rendered and cached, and assert no times.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import torch

CPU = torch.device("cpu")


def _dsprites() -> Callable[[], object]:
    from dlib.data import dsprites

    return lambda: dsprites.full_dsprites_packed(CPU)


def _shapes3d() -> Callable[[], object]:
    from dlib.data import Shapes3D

    # the 480 ray-traced geometries are cached; the 480,000 composed images (5.5 GiB) are not
    return lambda: Shapes3D().all_images(CPU)


DATASETS = {"dsprites": _dsprites, "shapes3d": _shapes3d}


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for name in args.datasets:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["DLIB_CACHE"] = cache
            build = DATASETS[name]()
            for label in ("render", "cached"):
                wall, cpu = timed(build)
                print(f"{name:10s} {label:7s} {wall:7.1f} s wall {cpu:7.1f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
