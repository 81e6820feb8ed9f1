"""Execute chapters and store their outputs with a record of the run that produced them.

    python tools/execute.py [--profile quick|full] [chapters/NN_topic.md ...]

With no chapters, all of ``chapters/*.md``. For each chapter:

1. ``jupytext --to ipynb --update`` brings the ``.md`` inputs into the ``.ipynb`` (cell ids and
   old outputs are kept, so diffs stay small);
2. nbclient executes it in a ``python3`` kernel of *this* Python (working directory
   ``chapters/``, ``DLIB_PROFILE=<profile>``, ``TQDM_DISABLE=1``, no per-cell timestamps);
3. ``metadata.dlib.run`` (copied to ``runs[<profile>]``, the last run of each profile) records
   profile, device, commit, dirty, started_utc, wall_s, torch and
   dlib versions; the notebook is written and the ``.md`` touched so it stays the newer file.

Consecutive stream outputs of a cell are merged into one (:func:`coalesce_streams`);
``--coalesce`` does only that to the stored notebooks, executing nothing.

A failing cell stops that chapter (its notebook is not written), the others still run, and the
exit status is 1 with the chapter and cell named. Without ``--profile`` the profile is
``$DLIB_PROFILE`` or, failing that, ``full`` with CUDA and ``quick`` without (dlib.config).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
TIMEOUT_S = 1800  # per cell
COURSE_GUIDE = "90_course_guide"  # runs after the chapters whose records it reads


class CurrentEnvKernelSpecs(KernelSpecManager):
    """``python3`` always means this interpreter, whatever kernels the user has installed."""

    def get_kernel_spec(self, kernel_name):
        if kernel_name == "python3":
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES,
                **ipykernel.kernelspec.get_kernel_dict(),
            )
        return super().get_kernel_spec(kernel_name)


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def git_state(ignore: set[Path]) -> tuple[str | None, bool | None]:
    """(HEAD commit or None, whether the tree differs from it, ``ignore``d files excepted).

    From git, or from the source stamp (``python -m dlib.results stamp``) in a copy of the tree
    without git; (None, None) when neither says.
    """
    sys.path.insert(0, str(ROOT))
    from dlib.results import source_state

    ignored = tuple(p.resolve().relative_to(ROOT).as_posix() for p in ignore)
    state = source_state(ROOT, ignore=ignored)
    return state["commit"], state["dirty"]


def environment_record(env: dict[str, str]) -> dict:
    """dlib.config.describe() and versions, computed by this Python under the kernels' env."""
    code = ("import json, dlib, dlib.config as c; d = c.describe(); "
            "d['dlib'] = dlib.__version__; print(json.dumps(d))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=CHAPTERS,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sync_inputs(md: Path) -> Path:
    """md -> ipynb, keeping the notebook's cell ids and outputs; returns the notebook path."""
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--update", "-q", str(md)],
                   check=True)
    return md.with_suffix(".ipynb")


def execute(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Run every cell of ``nb`` in place in a fresh kernel; raises CellExecutionError."""
    km = KernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnvKernelSpecs())
    NotebookClient(nb, km=km, timeout=TIMEOUT_S, record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute(cleanup_kc=True)


def coalesce_streams(nb: nbformat.NotebookNode) -> int:
    """Merge each run of consecutive stream outputs of one name (stdout, stderr) into one, in
    place; returns how many outputs were merged away. A kernel may send one ``print`` in
    several messages, which a notebook stores as several outputs and the book renders as
    several boxes (an empty one for a lone newline); Jupyter's front ends and nbval show them
    joined. Outputs of another kind between two streams keep them apart."""
    merged = 0
    for cell in nb.cells:
        outputs = cell.get("outputs")
        if not outputs:
            continue
        kept: list = []
        for out in outputs:
            last = kept[-1] if kept else None
            if (out.get("output_type") == "stream" and last is not None
                    and last.get("output_type") == "stream" and last.name == out.name):
                last.text += out.text
                merged += 1
            else:
                kept.append(out)
        cell.outputs = kept
    return merged


def failing_cell(nb: nbformat.NotebookNode) -> str:
    """Index and first line of the cell whose output holds an error."""
    for i, cell in enumerate(nb.cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            return f"cell {i} ({first[:60]!r})"
    return "an unknown cell"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("quick", "full"), default=None,
                        help="DLIB_PROFILE for the kernels (default: $DLIB_PROFILE, else by CUDA)")
    parser.add_argument("--coalesce", action="store_true",
                        help="execute nothing: only merge the split stream outputs of the stored "
                             "notebooks (what Jupyter shows anyway); their run records stay")
    parser.add_argument("chapters", nargs="*", type=Path,
                        help="chapter .md (or .ipynb) files; default: all of chapters/*.md")
    return parser.parse_args(argv)


def run_order(mds: list[Path]) -> list[Path]:
    """The chapters in the order given, the course guide last: it tabulates the other chapters'
    run records, so it must run after them."""
    return sorted(mds, key=lambda p: p.stem == COURSE_GUIDE)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    mds = [p.with_suffix(".md") for p in args.chapters] or sorted(CHAPTERS.glob("*.md"))
    mds = run_order(mds)
    missing = [str(p) for p in mds if not p.exists()]
    if missing:
        print(f"execute: no such chapter source: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not mds:
        print("execute: no chapters found")
        return 0

    if args.coalesce:
        for md in mds:
            ipynb = md.with_suffix(".ipynb")
            nb = nbformat.read(ipynb, as_version=4)
            merged = coalesce_streams(nb)
            if merged:
                nbformat.write(nb, ipynb)
                os.utime(md)
            print(f"{merged:4d} split stream output(s) merged  {_rel(ipynb)}")
        return 0

    env = dict(os.environ, TQDM_DISABLE="1")
    if args.profile:
        env["DLIB_PROFILE"] = args.profile
    described = environment_record(env)
    env["DLIB_PROFILE"] = described["profile"]  # the kernels run exactly the recorded profile
    os.environ.update(env)  # kernels inherit this process's environment
    print(f"execute: profile={described['profile']} device={described['device']} "
          f"torch={described['torch']} dlib={described['dlib']}")

    notebooks = {md.with_suffix(".ipynb") for md in mds}
    commit, dirty = git_state(ignore=notebooks)
    failures, total = [], time.perf_counter()
    for md in mds:
        ipynb = sync_inputs(md)
        nb = nbformat.read(ipynb, as_version=4)
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        try:
            execute(nb, cwd=ipynb.parent)
        except CellExecutionError as err:
            where = failing_cell(nb)
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # no terminal colours
            summary = text.splitlines()[-1] if text else repr(err)
            print(f"FAILED {_rel(md)}: {where}: {summary}", file=sys.stderr)
            failures.append(f"{_rel(md)}: {where}")
            continue
        wall = time.perf_counter() - t0
        coalesce_streams(nb)
        meta = nb.metadata.setdefault("dlib", {})
        meta["run"] = {
            "profile": described["profile"],
            "device": described["device"],
            "commit": commit,
            "dirty": dirty,
            "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "wall_s": round(wall, 1),
            "torch": described["torch"],
            "dlib": described["dlib"],
        }
        # the last run of each profile stays on record (the course guide's compute table)
        meta.setdefault("runs", {})[described["profile"]] = dict(meta["run"])
        nbformat.write(nb, ipynb)
        os.utime(md)  # the .md stays the newer file of the pair (jupytext --sync direction)
        print(f"{wall:7.1f} s  {_rel(md)}")
    print(f"{time.perf_counter() - total:7.1f} s  total ({len(mds)} chapter(s))")
    if failures:
        print("execute: failing chapters:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
