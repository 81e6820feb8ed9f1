"""Sphinx extension: an "outputs from" note under the title of every executed chapter.

tools/execute.py records in each chapter notebook, under ``metadata.dlib.run``, the run that
produced its stored outputs (profile, device, commit, ...). This extension reads that record
and shows it, so a reader always knows whether a number comes from a full GPU run or from the
quick profile (whose numbers are never results). Pages without a record get no note.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes


def describe_run(run: dict) -> str:
    """One sentence saying which run produced a page's outputs."""
    commit = run.get("commit")
    where = f"commit {commit[:10]}" if commit else "an uncommitted tree"
    if commit and run.get("dirty"):
        where += " with uncommitted changes"
    versions = ", ".join(f"{k} {run[k]}" for k in ("torch", "dlib") if run.get(k))
    text = (f"Outputs from a {run.get('profile', '?')}-profile run on {run.get('device', '?')}"
            f"{f' ({versions})' if versions else ''}, {where}, "
            f"started {run.get('started_utc', '?')}, {run.get('wall_s', '?')} s.")
    if run.get("profile") != "full":
        text += (" Quick-profile numbers only show that the code runs; they are not results."
                 " Run the chapter on a GPU (full profile) to reproduce the experiment.")
    return text


def add_note(app, doctree) -> None:
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb":
        return
    try:
        run = json.loads(path.read_text(encoding="utf-8"))["metadata"]["dlib"]["run"]
    except (KeyError, TypeError, ValueError):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(run, dict):
        return
    note = nodes.admonition(classes=["note", "dlib-provenance"])
    note += nodes.title(text="Where the outputs come from")
    note += nodes.paragraph(text=describe_run(run))
    title = next(iter(section.findall(nodes.title)), None)
    section.insert(section.index(title) + 1 if title is not None else 0, note)


def setup(app):
    app.connect("doctree-read", add_note)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
