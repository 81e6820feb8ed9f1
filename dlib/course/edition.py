"""Student editions of the chapters, generated from the instructor's source (never kept by hand).

The rules (the course guide's "for authors" section says the same):

* The chapter's ``.md`` (MyST, the source humans edit) gives the inputs; outputs stored in its
  paired ``.ipynb`` are kept for every cell whose input is unchanged (jupytext's
  ``combine_inputs_with_outputs``), so figures and tables of the chapter stay in the student
  edition.
* Removed: every region from a ``{solution-start}`` directive to its ``{solution-end}`` (the
  markdown and the code cells in between, across cells), every ``{solution}`` directive, and
  every code cell tagged ``solution``.
* Kept as a stub: a code cell tagged ``exercise`` (it lies inside the solution region, so the
  book shows its full code in the dropdown). Each ``# BEGIN SOLUTION`` ... ``# END SOLUTION``
  region of it becomes ``raise NotImplementedError("Your turn: exercise <label> ...")`` at the
  marker's indentation; the lines around it (set-up, the ``dlib.course.check`` call) stay. Its
  outputs are cleared and it gets the tag ``raises-exception``, so nbclient, nbval, the classic
  notebook and JupyterLab's "Run all" go on past an unsolved exercise (Colab stops there; the
  exercises come last in a chapter, so everything else has run).
* Everything else is unchanged; ``metadata.dlib.edition`` records the source.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
STUB_TAGS = ("raises-exception",)
BEGIN = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*BEGIN SOLUTION\b.*$")
END = re.compile(r"^[ \t]*#+[ \t]*END SOLUTION\b.*$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
_LABEL = re.compile(r"^\s*:label:\s*(\S+)\s*$", re.MULTILINE)
_CHECK_CALL = re.compile(r"""(?<!\w)check\(\s*["']([^"']+)["']""")


class EditionError(ValueError):
    """A chapter breaks the exercise conventions (e.g. an exercise cell without markers)."""


def stub_message(label: str) -> str:
    return (f"Your turn: exercise {label} is not solved yet. Replace this line with your code, "
            "then run the cell again.")


# --- reading MyST blocks ------------------------------------------------------------------------


@dataclass
class Block:
    """A top-level block of a markdown cell: lines [start, end) and its directive, if any."""

    start: int
    end: int
    directive: str | None = None
    arg: str = ""
    content: str = ""


def blocks(markdown: str) -> list[Block]:
    """Top-level blocks (paragraphs, fences, directives, ...) of a markdown cell, in order."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin

    found = []
    for token in MarkdownIt("commonmark").use(colon_fence_plugin).parse(markdown):
        if token.level != 0 or token.map is None or token.nesting < 0:
            continue
        block = Block(*token.map)
        if token.type in ("fence", "colon_fence"):
            m = _DIRECTIVE.match(token.info.strip())
            if m:
                block.directive, block.arg, block.content = m["name"], m["arg"].strip(), \
                    token.content
        found.append(block)
    return found


@dataclass
class ExerciseInfo:
    """An exercise of a chapter: its label, whether it has a solution, skeleton and check cells."""

    label: str
    has_solution: bool = False
    skeleton_cells: list[int] = field(default_factory=list)
    checked: bool = False


def exercises(nb) -> dict[str, ExerciseInfo]:
    """The exercises of a notebook by label, in order, with their solutions and skeletons."""
    found: dict[str, ExerciseInfo] = {}
    current = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for block in blocks(cell.source):
                if block.directive in ("exercise", "exercise-start"):
                    m = _LABEL.search(block.content)
                    label = m.group(1) if m else f"(unlabelled exercise in cell {i})"
                    current = found.setdefault(label, ExerciseInfo(label))
                elif block.directive in ("solution", "solution-start") and block.arg:
                    found.setdefault(block.arg, ExerciseInfo(block.arg)).has_solution = True
                    current = found[block.arg]
        elif cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            if EXERCISE_TAG in tags and current is not None:
                current.skeleton_cells.append(i)
            for label in _CHECK_CALL.findall(cell.source):
                found.setdefault(label, ExerciseInfo(label)).checked = True
    return found


# --- building the student edition ---------------------------------------------------------------


def stub_source(source: str, label: str) -> str:
    """``source`` with every BEGIN/END SOLUTION region replaced by a "your turn" stub."""
    lines, out, inside, regions = source.split("\n"), [], False, 0
    for n, line in enumerate(lines, start=1):
        if not inside and (m := BEGIN.match(line)):
            indent, inside, regions = m["indent"], True, regions + 1
            out.append(f"{indent}# YOUR CODE HERE (exercise {label})")
            out.append(f"{indent}raise NotImplementedError({stub_message(label)!r})")
        elif inside and END.match(line):
            inside = False
        elif END.match(line):
            raise EditionError(f"line {n}: END SOLUTION without BEGIN SOLUTION")
        elif inside and BEGIN.match(line):
            raise EditionError(f"line {n}: BEGIN SOLUTION inside another region")
        elif not inside:
            out.append(line)
    if inside:
        raise EditionError("BEGIN SOLUTION without END SOLUTION")
    if not regions:
        raise EditionError("a cell tagged 'exercise' has no '# BEGIN SOLUTION' region")
    return "\n".join(out)


def _strip_markdown(source: str, inside: bool) -> tuple[str, bool, str | None]:
    """(kept text, inside-a-solution state after the cell, label of a region opened here)."""
    lines = source.split("\n")
    keep = [not inside] * len(lines)
    opened, pos = None, 0
    for block in blocks(source):
        for k in range(pos, block.start):  # blank lines between blocks follow the state
            keep[k] = not inside
        if block.directive == "solution-start":
            inside, opened, drop = True, block.arg or None, True
        elif block.directive == "solution-end":
            inside, drop = False, True
        else:
            drop = inside or block.directive == "solution"
        for k in range(block.start, min(block.end, len(lines))):
            keep[k] = not drop
        pos = block.end
    for k in range(pos, len(lines)):
        keep[k] = not inside
    text = "\n".join(line for line, k in zip(lines, keep, strict=True) if k)
    return re.sub(r"\n{3,}", "\n\n", text).strip(), inside, opened


def student_notebook(nb, source_name: str = "") -> Any:
    """The student edition of an instructor notebook (a new ``nbformat`` notebook)."""
    import nbformat

    nb = copy.deepcopy(nb)
    cells, inside, label = [], False, None
    for i, cell in enumerate(nb.cells):
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown":
            for block in blocks(cell.source):
                if block.directive in ("exercise", "exercise-start"):
                    m = _LABEL.search(block.content)
                    label = m.group(1) if m else label
            text, inside, opened = _strip_markdown(cell.source, inside)
            label = opened or label
            if text:
                cell.source = text
                cells.append(cell)
        elif cell.cell_type == "code" and EXERCISE_TAG in tags:
            calls = _CHECK_CALL.findall(cell.source)
            name = label or (calls[0] if calls else "in this cell")
            try:
                cell.source = stub_source(cell.source, name)
            except EditionError as err:
                raise EditionError(f"{source_name} cell {i}: {err}") from None
            cell.outputs, cell.execution_count = [], None
            keep = [t for t in tags if t != SOLUTION_TAG and not t.startswith("nbval-")]
            cell.metadata["tags"] = keep + [t for t in STUB_TAGS if t not in keep]
            cell.metadata.pop("execution", None)
            cells.append(cell)
        elif cell.cell_type == "code" and (inside or SOLUTION_TAG in tags):
            continue
        else:
            cells.append(cell)
    if inside:
        raise EditionError(f"{source_name}: a {{solution-start}} has no {{solution-end}}")
    nb.cells = cells
    nb.metadata.get("jupytext", {}).pop("formats", None)  # no pairing in the handout
    nb.metadata.setdefault("dlib", {})["edition"] = {
        "kind": "student",
        "source": source_name,
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    nbformat.validate(nb)
    return nb


def read_chapter(path: str | Path):
    """The instructor notebook of a chapter: inputs from the ``.md``, outputs from the ``.ipynb``.

    ``path`` may name either file of the pair. With only one of them, that one is read.
    """
    import jupytext
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    path = Path(path)
    md, ipynb = path.with_suffix(".md"), path.with_suffix(".ipynb")
    if md.exists() and ipynb.exists():
        nb = combine_inputs_with_outputs(jupytext.read(md), nbformat.read(ipynb, as_version=4))
    elif md.exists():
        nb = jupytext.read(md)
    elif ipynb.exists():
        nb = nbformat.read(ipynb, as_version=4)
    else:
        raise FileNotFoundError(f"no chapter {path} (.md or .ipynb)")
    if nb.get("nbformat_minor", 0) >= 5:  # 4.5 wants cell ids; older files have none
        for cell in nb.cells:
            cell.setdefault("id", nbformat.v4.new_code_cell().id)
    return nb


def write_student_edition(chapter: str | Path, out: str | Path, md: bool = False) -> list[Path]:
    """Write the student edition of ``chapter`` into the folder ``out``; returns the files."""
    import jupytext
    import nbformat

    chapter, out = Path(chapter), Path(out)
    nb = student_notebook(read_chapter(chapter), source_name=chapter.with_suffix(".md").name)
    out.mkdir(parents=True, exist_ok=True)
    target = out / chapter.with_suffix(".ipynb").name
    if md:
        nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,md:myst"
    nbformat.write(nb, target)
    written = [target]
    if md:
        jupytext.write(nb, target.with_suffix(".md"), fmt="md:myst")
        written.append(target.with_suffix(".md"))
    return written
