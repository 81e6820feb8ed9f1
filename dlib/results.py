"""Saving and loading the artifacts of long runs, each with its provenance.

Experiments that take longer than a chapter may (sweeps, many seeds at 300,000 steps) are run by
a ``dlib`` command; what they produce is small (scores, downsampled curves, a few traversal
images) and is kept in the repository under ``book/results/``, so a chapter shows it without
retraining. Every result file carries the record of the run that made it::

    {"provenance": {"command": ..., "commit": ..., "dirty": ..., "device": ..., "torch": ...,
                    "started_utc": ..., "wall_s": ...}, ...payload...}

and arrays (images) go into a ``.npz`` beside the ``.json``. :func:`load` returns ``None`` when
a result has not been produced yet, so chapters can say so instead of failing.

Holds :func:`results_dir`, :func:`write_stamp`, :func:`source_state`, :class:`Provenance`,
:class:`Result`, :class:`Table`, :func:`save`, :func:`load` and :func:`main`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["RESULTS_ENV", "STAMP_FILE", "results_dir", "Provenance", "Result", "Table", "save",
           "load", "source_state", "write_stamp", "main"]

#: environment variable naming another results folder (e.g. on Colab, a copy of book/results)
RESULTS_ENV = "DLIB_RESULTS_DIR"
_REPO = Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """``$DLIB_RESULTS_DIR`` if set, else ``book/results`` of the repository dlib runs from."""
    env = os.environ.get(RESULTS_ENV)
    return Path(env) if env else _REPO / "book" / "results"


def _git(*args: str, root: Path = _REPO) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                             check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    # not stripped: a porcelain status line starts with a space (" M path")
    return out.stdout


# ---- which code ran: git, or a stamp for copies of the tree without git ----------------------
#: written by ``python -m dlib.results stamp`` at the root of the tree; it travels with a copy of
#: the working tree to a machine that gets no ``.git`` (e.g. a lent GPU machine), where it tells
#: which commit the copy was made from and whether it was changed since
STAMP_FILE = ".dlib-source.json"


def _changed_paths(status: str) -> list[str]:
    """The paths of ``git status --porcelain`` lines (the new name of a rename)."""
    return [line[3:].split(" -> ")[-1].strip('"') for line in status.splitlines() if line]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_stamp(root: str | os.PathLike = _REPO) -> Path:
    """Record HEAD, whether the tree differs from it, and a hash of every file git would carry
    (tracked and untracked-not-ignored) in ``root/STAMP_FILE``. Needs git."""
    root = Path(root)
    commit = (_git("rev-parse", "--verify", "-q", "HEAD", root=root) or "").strip()
    if not commit:
        raise RuntimeError(f"{root} is not a git repository with a commit; nothing to stamp")
    listed = (_git("ls-files", "--cached", "--others", "--exclude-standard", root=root) or "")
    files = sorted({f for f in listed.splitlines() if f and f != STAMP_FILE
                    and (root / f).is_file()})
    status = _git("status", "--porcelain", "--untracked-files=all", root=root) or ""
    changed = [f for f in _changed_paths(status) if f != STAMP_FILE]
    stamp = {"commit": commit, "dirty": bool(changed), "changed": changed,
             "written_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "files": {f: _sha256(root / f) for f in files}}
    path = root / STAMP_FILE
    path.write_text(json.dumps(stamp, indent=0))
    return path


def source_state(root: str | os.PathLike = _REPO, ignore: tuple[str, ...] = (),
                 ignore_dirs: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{"commit", "dirty", "source"}`` of the code in ``root``.

    From git when ``root`` is a repository; otherwise from :data:`STAMP_FILE`, where ``dirty`` is
    true if the stamp says so or any stamped file is now missing or different; otherwise
    ``source="unknown"`` with ``commit`` and ``dirty`` None — never a silent "clean".
    ``ignore`` (paths) and ``ignore_dirs`` (prefixes such as ``"book/results/"``) name files a
    run is expected to change.
    """
    root = Path(root)

    def counts(path: str) -> bool:
        return path not in ignore and not any(path.startswith(d) for d in ignore_dirs)

    commit = (_git("rev-parse", "--verify", "-q", "HEAD", root=root) or "").strip()
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=all", root=root) or ""
        changed = [f for f in _changed_paths(status) if counts(f)]
        return {"commit": commit, "dirty": bool(changed), "source": "git"}
    path = root / STAMP_FILE
    if not path.exists():
        return {"commit": None, "dirty": None, "source": "unknown"}
    try:
        stamp = json.loads(path.read_text())
        files, stamped_commit = dict(stamp["files"]), str(stamp["commit"])
        stamped_changes = [f for f in stamp.get("changed", []) if counts(f)]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a source stamp ({err}); rewrite it with "
                         "python -m dlib.results stamp") from err
    differs = [f for f, digest in files.items() if counts(f)
               and (not (root / f).is_file() or _sha256(root / f) != digest)]
    return {"commit": stamped_commit, "dirty": bool(stamped_changes or differs),
            "source": "stamp"}


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} threads)"


class Provenance:
    """Records the run that produces a result: start it before the work, ``finish()`` after.

    ``dirty`` is true when the working tree differs from the commit (files git ignores and the
    results folder itself excepted), so a reader can tell whether the numbers came from
    committed code.
    """

    def __init__(self, command: str | None = None) -> None:
        self.command = command if command is not None else shlex.join(
            [Path(sys.executable).name, *sys.argv])
        self.started = time.time()
        self.started_utc = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def finish(self, **extra: Any) -> dict[str, Any]:
        """The provenance record (a JSON-able dict), with the wall time up to now.

        ``extra`` entries are added and win: a command that was told its profile (``--profile``)
        passes ``profile=`` so the record says what ran, not what the environment defaults to.
        """
        state = source_state(ignore_dirs=("book/results/",))
        from dlib import config

        return {
            "command": self.command,
            "commit": state["commit"],
            "dirty": state["dirty"],
            "source": state["source"],
            "device": _device_name(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "profile": config.profile(),
            "started_utc": self.started_utc,
            "wall_s": round(time.time() - self.started, 1),
            **extra,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().numpy())
    return value


class Result:
    """A saved result: ``data`` (the JSON payload), ``provenance`` and lazily loaded ``arrays``."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = Path(path)
        self.data = data
        self.provenance: dict[str, Any] = data.get("provenance", {})
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays saved beside the JSON (empty when there are none)."""
        if self._arrays is None:
            npz = self.path.with_suffix(".npz")
            if npz.exists():
                with np.load(npz, allow_pickle=False) as f:
                    self._arrays = {k: f[k] for k in f.files}
            else:
                self._arrays = {}
        return self._arrays

    def note(self) -> str:
        """One line saying which run produced this result. The profile is named only where it
        sized the run: a ``python -m dlib.…`` tool is sized by its command line, which the note
        shows (naming the profile there would make a CPU-scale result read as a smoke test)."""
        p = self.provenance
        dirty = p.get("dirty")
        state = " (dirty)" if dirty else (" (tree state unknown)" if dirty is None else "")
        commit = (p["commit"][:7] if p.get("commit") else "unknown commit") + state
        when = (p.get("started_utc") or "?")[:10]
        wall = p.get("wall_s")
        took = f", {wall / 60:.1f} min" if isinstance(wall, (int, float)) else ""
        command = str(p.get("command", "?"))
        profile = "" if command.startswith("python -m dlib.") else \
            f" ({p.get('profile', '?')} profile)"
        return (f"Results of `{command}` at {commit} on {p.get('device', '?')}, "
                f"{when}{took}{profile}.")

    def __repr__(self) -> str:
        return f"Result({self.path.name}: {self.note()})"


class Table:
    """A small table of strings: HTML in Jupyter, aligned text elsewhere."""

    def __init__(self, header: list[str], rows: list[list[str]]) -> None:
        self.header, self.rows = header, rows

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        widths = [max(len(str(r[i])) for r in [self.header, *self.rows])
                  for i in range(len(self.header))]
        return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
                         for r in [self.header, *self.rows])


def save(name: str, payload: dict[str, Any], provenance: dict[str, Any],
         arrays: dict[str, np.ndarray] | None = None, root: str | os.PathLike | None = None
         ) -> Path:
    """Write ``<root>/<name>.json`` (payload + provenance) and ``<name>.npz`` (arrays), atomically.

    ``name`` may contain ``/`` (a sub-folder such as ``beta_vae/index``).
    """
    if "provenance" in payload:
        raise ValueError("the payload must not contain a 'provenance' key")
    for key in ("command", "commit", "device", "started_utc", "wall_s"):
        if key not in provenance:
            raise ValueError(f"provenance lacks {key!r}: make it with Provenance(...).finish()")
    path = Path(root) if root is not None else results_dir()
    path = path / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"provenance": _jsonable(provenance), **_jsonable(payload)}, indent=1,
                      allow_nan=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    npz = path.with_suffix(".npz")
    if arrays:
        tmp_npz = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp_npz, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp_npz, npz)
    elif npz.exists():
        npz.unlink()  # a stale array file would not belong to the new JSON
    os.replace(tmp, path)
    return path


def load(name: str, root: str | os.PathLike | None = None) -> Result | None:
    """The result called ``name``, or ``None`` if it has not been produced yet.

    A file that exists but cannot be read is an error, not a silent ``None``.
    """
    path = (Path(root) if root is not None else results_dir()) / f"{name}.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or "provenance" not in data:
        raise ValueError(f"{path} is not a dlib result (no 'provenance' record)")
    return Result(path, data)


def main(argv: list[str] | None = None) -> int:
    """``python -m dlib.results stamp``: write the source stamp (see :func:`write_stamp`)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m dlib.results",
        description="Write .dlib-source.json, which tells a copy of this tree without git which "
                    "commit it was made from (carry it to the machine that runs the code).")
    parser.add_argument("action", choices=["stamp"])
    parser.parse_args(argv)
    path = write_stamp()
    stamp = json.loads(path.read_text())
    print(f"wrote {path}: commit {stamp['commit'][:7]}, dirty={stamp['dirty']}, "
          f"{len(stamp['files'])} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
