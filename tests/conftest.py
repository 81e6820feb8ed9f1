"""Shared pytest set-up: tests marked ``slow`` or ``browser`` run only when asked for.

``pytest --run-slow`` (or ``DLIB_RUN_SLOW=1``, or selecting them with ``-m slow``) runs the slow
ones; otherwise they are skipped, so the default suite stays fast on a 2-core CPU. Tests marked
``browser`` (headless Chromium) run only when selected with ``-m browser``, as tools/test.sh's
browser stage does.
"""

import os

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
