"""Tests of the set-up and test scripts in tools/: test.sh's stages, the constraints file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_SETUP = """
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dlib_setup() {
  [[ -z "${FAIL_SETUP:-}" ]] || return 3
  PY="$REPO_ROOT/bin/python"; PATH="$REPO_ROOT/bin:$PATH"; export PATH
}
dlib_browser_setup() { :; }
"""
# a python that logs what it was asked to run and fails where FAIL names it
FAKE_PYTHON = """#!/usr/bin/env bash
echo "ran: $*" >>"$(dirname "$0")/../log"
case "$*" in *"${FAIL:-none}"*) exit 1 ;; esac
"""


@pytest.fixture
def fake_repo(tmp_path):
    """A copy of tools/test.sh beside a set-up that installs nothing and stand-in commands."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "x.ipynb").write_text("{}")
    shutil.copy(ROOT / "tools" / "test.sh", tmp_path / "tools" / "test.sh")
    (tmp_path / "tools" / "setup.sh").write_text(FAKE_SETUP)
    for name in ("python", "jupyter-book"):
        (tmp_path / "bin" / name).write_text(FAKE_PYTHON)
        (tmp_path / "bin" / name).chmod(0o755)
    return tmp_path


def run_test_sh(repo: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("FAIL", "FAIL_SETUP")}
    return subprocess.run(["bash", str(repo / "tools" / "test.sh")], capture_output=True,
                          text=True, env={**environ, **env}, timeout=60)


def summary_lines(out: str) -> list[str]:
    return out.split("== summary ==", 1)[1].strip().splitlines()


def test_test_sh_runs_every_stage_and_reports_each(fake_repo):
    done = run_test_sh(fake_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = summary_lines(done.stdout)
    stages = ["set-up", "browser set-up", "ruff", "chapter pairs", "book build", "browser check",
              "unit tests", "chapters (nbval"]
    for stage, line in zip(stages, lines, strict=False):
        assert stage in line and line.endswith("passed"), line
    assert lines[-1] == "all 8 stages passed"
    log = (fake_repo / "log").read_text()
    assert "-m ruff check ." in log and "tools/check_pairs.py" in log and "--nbval" in log
    assert "tools/check_browser.py" in log and "-m browser" in log


def test_a_failing_stage_does_not_stop_the_others(fake_repo):
    done = run_test_sh(fake_repo, FAIL="ruff")
    assert done.returncode != 0
    lines = summary_lines(done.stdout)
    assert re.search(r"ruff\s+FAILED \(exit 1\)", lines[2]), lines
    assert all(line.endswith("passed") for line in lines[3:8]), lines  # still ran, and passed
    assert lines[-1] == "FAILED: ruff"
    assert "--nbval" in (fake_repo / "log").read_text()  # the last stage ran
    done = run_test_sh(fake_repo, FAIL="tests -n 2")  # the unit tests
    assert done.returncode != 0 and summary_lines(done.stdout)[-1] == "FAILED: unit tests"
    done = run_test_sh(fake_repo, FAIL="-m browser")  # the browser check's own tests
    assert summary_lines(done.stdout)[-1] == "FAILED: browser check"
    assert "tools/check_browser.py" in (fake_repo / "log").read_text()  # the page check still ran


def test_a_failed_set_up_stops_everything(fake_repo):
    done = run_test_sh(fake_repo, FAIL_SETUP="1")
    assert done.returncode != 0
    assert "set-up" in summary_lines(done.stdout)[0] and "FAILED" in done.stdout
    assert "no other stage can run" in done.stderr
    assert not (fake_repo / "log").exists()


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_constraints_pin_every_declared_requirement_exactly():
    """constraints.txt (tools/lock.sh) pins, with ==, each requirement of dlib[book,test]."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), line
            pins[name.lower().replace("_", "-")] = version
    project = _project()
    required = list(project["dependencies"])
    extras, seen = ["book", "test"], set()
    while extras:  # an extra may name others of this package (dlib[studies])
        extra = extras.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for r in project["optional-dependencies"][extra]:
            if _name(r) == "dlib":
                extras += re.findall(r"\w+", r.split("[", 1)[1])
            else:
                required.append(r)
    names = {_name(r) for r in required} - {"torch"}  # torch: tools/setup.sh pins it
    assert not names - set(pins), f"not locked: {sorted(names - set(pins))}; run tools/lock.sh"
    assert "torch" not in pins and pins["disentanglement-lib"] == "1.5"
    setup = (ROOT / "tools" / "setup.sh").read_text()
    assert setup.count('-c "$lock"') == 3 and '"torch==2.13.0"' in setup


def test_lock_sh_locks_every_extra_that_is_not_an_alias():
    """tools/lock.sh reads the extras from pyproject.toml (dev = book + test is left out)."""
    extras = set(_project()["optional-dependencies"]) - {"dev"}
    script = (ROOT / "tools" / "lock.sh").read_text()
    code = script.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    done = subprocess.run([sys.executable, "-", str(ROOT / "pyproject.toml")], input=code,
                          capture_output=True, text=True, check=True)
    assert set(done.stdout.strip().split(",")) == extras and {"book", "test"} <= extras


def test_set_up_makes_jupyterlab_open_markdown_as_a_notebook(tmp_path):
    """The settings file tools/setup.sh writes is read by JupyterLab's server as an override of
    the document manager's default viewers, and names the viewer jupytext's extension adds."""
    settings_utils = pytest.importorskip("jupyterlab_server.settings_utils")
    setup = (ROOT / "tools" / "setup.sh").read_text()
    m = re.search(r'viewer="\$prefix/(\S+)"', setup)
    assert m and "-m jupytext_config --settings-file \"$viewer\" set-default-viewer" in setup
    settings = tmp_path / m.group(1)
    args = setup.split('--settings-file "$viewer" set-default-viewer', 1)[1].split("\\")[0].split()
    subprocess.run([sys.executable, "-m", "jupytext_config", "--settings-file", str(settings),
                    "set-default-viewer", *args], check=True, capture_output=True)
    assert settings.parent.name == "overrides.d"
    overrides, error = settings_utils._get_overrides(str(settings.parent.parent))
    assert not error
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == viewers["myst"] == "Jupytext Notebook"
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-jupytext"
    if not extension.is_dir():
        pytest.skip("jupytext's JupyterLab extension is not installed here")
    assert any('"Jupytext Notebook"' in js.read_text(errors="replace")
               for js in extension.rglob("*.js"))
