"""Read-only check of the chapter pairs: ``chapters/NN_topic.md`` <-> ``chapters/NN_topic.ipynb``.

For every chapter it checks that

* the ``.md`` (the source a human edits) has a paired ``.ipynb`` and every ``.ipynb`` has a ``.md``;
* jupytext pairs them (``chapters/jupytext.toml``), so Jupyter opens the ``.md`` with the
  ``.ipynb``'s outputs and saving one updates the other;
* both hold the same inputs: cell types, sources and cell metadata (volatile keys excepted);
* every code cell of the ``.ipynb`` was executed (nbval silently skips unexecuted cells);
* the ``.ipynb`` records the run that produced its outputs in ``metadata.dlib.run``.

Usage: ``python tools/check_pairs.py [chapters-dir]``. Exits 1 with a list of problems.
Nothing is written. ``tests/test_notebooks.py`` imports these functions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

#: cell metadata that Jupyter front ends change while a reader works; not part of the inputs
VOLATILE_CELL_METADATA = frozenset(
    {"execution", "collapsed", "scrolled", "ExecuteTime", "jp-MarkdownHeadingCollapsed"}
)
#: keys of ``metadata.dlib.run`` (written by tools/execute.py)
RUN_KEYS = ("profile", "device", "commit", "dirty", "started_utc", "wall_s", "torch")
PROFILES = ("quick", "full")


def _rel(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (shorter messages)."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _visible(path: Path, root: Path) -> bool:
    """False for files under hidden or build folders (``.ipynb_checkpoints``, ``_build``)."""
    parts = path.relative_to(root).parts[:-1]
    return not any(p.startswith((".", "_")) for p in parts)


def chapter_sources(root: Path = CHAPTERS) -> list[Path]:
    """The chapter sources: every ``*.md`` under ``root``, sorted."""
    return sorted(p for p in root.rglob("*.md") if _visible(p, root))


def chapter_notebooks(root: Path = CHAPTERS) -> list[Path]:
    """Every ``*.ipynb`` under ``root`` (checkpoints excluded), sorted."""
    return sorted(p for p in root.rglob("*.ipynb") if _visible(p, root))


def inputs(nb: nbformat.NotebookNode) -> list[tuple[str, str, dict]]:
    """What a human wrote: per cell its type, stripped source and non-volatile metadata."""
    return [
        (
            cell.cell_type,
            cell.source.strip(),
            {k: v for k, v in cell.metadata.items() if k not in VOLATILE_CELL_METADATA},
        )
        for cell in nb.cells
    ]


def _first_difference(a: str, b: str) -> str:
    """The first line where two sources differ, as ``line N: 'md' vs 'ipynb'``."""
    la, lb = a.splitlines(), b.splitlines()
    for n, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
        if x != y:
            return f"line {n}: {x[:50]!r} vs {y[:50]!r}"
    return f"{len(la)} vs {len(lb)} lines"


def drift_problems(md: Path) -> list[str]:
    """Differences between the inputs of ``md`` and of its paired ``.ipynb``."""
    ipynb = md.with_suffix(".ipynb")
    if not ipynb.exists():
        return [f"{_rel(md)}: no paired notebook {ipynb.name} "
                f"(run: python tools/execute.py {_rel(md)})"]
    a, b = inputs(jupytext.read(md)), inputs(jupytext.read(ipynb))
    for i, (ca, cb) in enumerate(zip(a, b, strict=False)):
        if ca != cb:
            if ca[0] != cb[0]:
                detail = f"cell type {ca[0]} vs {cb[0]}"
            elif ca[1] != cb[1]:
                detail = f"source, {_first_difference(ca[1], cb[1])}"
            else:
                detail = f"metadata {ca[2]} vs {cb[2]}"
            return [f"{_rel(md)}: cell {i} differs from {ipynb.name} ({detail}); "
                    f"run: python tools/execute.py {_rel(md)}"]
    if len(a) != len(b):
        return [f"{_rel(md)}: {len(a)} cells, but {ipynb.name} has {len(b)}"]
    return []


def pairing_problems(md: Path) -> list[str]:
    """Whether jupytext's configuration pairs ``md`` with its ``.ipynb`` (``ipynb,md:myst``)."""
    from jupytext.config import load_jupytext_config
    from jupytext.paired_paths import paired_paths

    config = load_jupytext_config(str(md.resolve()))
    formats = config.default_formats(str(md.resolve())) if config is not None else None
    if not formats:
        return [f"{_rel(md)}: no jupytext pairing (chapters/jupytext.toml: "
                'formats = "ipynb,md:myst")']
    try:
        paths = {Path(p) for p, _ in paired_paths(str(md.resolve()), "md:myst", formats)}
    except Exception as err:  # noqa: BLE001 - any failure: the pairing does not apply here
        return [f"{_rel(md)}: jupytext's pairing {formats!r} does not apply ({err})"]
    want = {md.resolve(), md.resolve().with_suffix(".ipynb")}
    if paths != want:
        return [f"{_rel(md)}: jupytext pairs it as {formats!r}, with "
                f"{sorted(_rel(p) for p in paths - want)}, not with its .ipynb alone"]
    return []


def execution_problems(ipynb: Path) -> list[str]:
    """Code cells of ``ipynb`` that were never executed (nbval would not check them)."""
    nb = nbformat.read(ipynb, as_version=4)
    missing = [i for i, c in enumerate(nb.cells)
               if c.cell_type == "code" and c.get("execution_count") is None]
    if missing:
        return [f"{_rel(ipynb)}: code cells {missing} were not executed "
                f"(run: python tools/execute.py {_rel(ipynb.with_suffix('.md'))})"]
    return []


def split_stream_problems(ipynb: Path) -> list[str]:
    """Cells of ``ipynb`` with two consecutive stream outputs of one name: the book renders
    them as separate boxes (tools/execute.py merges them)."""
    nb = nbformat.read(ipynb, as_version=4)
    split = []
    for i, cell in enumerate(nb.cells):
        outs = cell.get("outputs", [])
        if any(a.get("output_type") == b.get("output_type") == "stream"
               and a.get("name") == b.get("name") for a, b in zip(outs, outs[1:], strict=False)):
            split.append(i)
    if split:
        return [f"{_rel(ipynb)}: cells {split} hold split stream outputs "
                f"(run: python tools/execute.py --coalesce {_rel(ipynb.with_suffix('.md'))})"]
    return []


def run_record(ipynb: Path) -> dict | None:
    """``metadata.dlib.run`` of a notebook, or None."""
    with open(ipynb, encoding="utf-8") as f:
        meta = json.load(f).get("metadata", {})
    run = meta.get("dlib", {}).get("run")
    return run if isinstance(run, dict) else None


def provenance_problems(ipynb: Path) -> list[str]:
    """Problems with the run record ``metadata.dlib.run`` of ``ipynb``."""
    run = run_record(ipynb)
    if run is None:
        return [f"{_rel(ipynb)}: no metadata.dlib.run (execute it with tools/execute.py)"]
    problems = []
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        problems.append(f"{_rel(ipynb)}: metadata.dlib.run lacks {missing}")
    if "profile" in run and run["profile"] not in PROFILES:
        problems.append(f"{_rel(ipynb)}: metadata.dlib.run.profile is {run['profile']!r}, "
                        f"not one of {PROFILES}")
    if "wall_s" in run and not isinstance(run["wall_s"], (int, float)):
        problems.append(f"{_rel(ipynb)}: metadata.dlib.run.wall_s is not a number")
    if "dirty" in run and not isinstance(run["dirty"], bool):
        problems.append(f"{_rel(ipynb)}: metadata.dlib.run.dirty is not a bool")
    elif run.get("dirty") is True:  # outputs of code that no commit holds
        problems.append(f"{_rel(ipynb)}: executed from a dirty tree (commit {run.get('commit')} "
                        "plus uncommitted changes); commit, then re-execute from a clean checkout")
    return problems


def orphan_problems(root: Path = CHAPTERS) -> list[str]:
    """Notebooks without a ``.md`` source."""
    return [f"{_rel(nb)}: no {nb.with_suffix('.md').name} source (the .md is what humans edit)"
            for nb in chapter_notebooks(root) if not nb.with_suffix(".md").exists()]


def check(root: Path = CHAPTERS) -> list[str]:
    """All problems of all chapters under ``root``."""
    problems = orphan_problems(root)
    for md in chapter_sources(root):
        problems += pairing_problems(md) + drift_problems(md)
        ipynb = md.with_suffix(".ipynb")
        if ipynb.exists():
            problems += (execution_problems(ipynb) + provenance_problems(ipynb)
                         + split_stream_problems(ipynb))
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else CHAPTERS
    problems = check(root)
    n = len(chapter_sources(root))
    if problems:
        print(f"check_pairs: {len(problems)} problem(s) in {_rel(root)}:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"check_pairs: {n} chapter pair(s) paired, in sync, executed, with provenance")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
