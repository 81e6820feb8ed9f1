"""Tests of the book's Sphinx extensions in book/_ext (no book build)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

docutils = pytest.importorskip("docutils")
from docutils import nodes  # noqa: E402
from docutils.frontend import get_default_settings  # noqa: E402
from docutils.utils import new_document  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import solution_markers  # noqa: E402

SKELETON = """import dlib.course

x = 3
# the answer, as a float
    # BEGIN SOLUTION
answer = float(x) ** 2
    # END SOLUTION
dlib.course.check("ex-a", answer)"""


def _document(*blocks: nodes.Node) -> nodes.document:
    doc = new_document("test", get_default_settings())
    for block in blocks:
        doc += block
    return doc


def test_markers_are_dropped_from_code_cells_only():
    cell = nodes.container(classes=["cell_input"])
    cell += nodes.literal_block(SKELETON, SKELETON)
    prose = nodes.literal_block("# BEGIN SOLUTION\n", "# BEGIN SOLUTION\n")  # a ```python block
    doc = _document(nodes.container("", cell, classes=["cell"]), prose)
    solution_markers.hide_markers(None, doc)
    shown = cell.children[0].astext()
    assert "SOLUTION" not in shown
    assert shown.splitlines() == [line for line in SKELETON.splitlines()
                                  if "SOLUTION" not in line]
    assert "answer = float(x) ** 2" in shown and shown.endswith('check("ex-a", answer)')
    assert prose.astext() == "# BEGIN SOLUTION\n"  # not a cell: left alone


def test_the_patterns_are_the_student_editions():
    from dlib.course import edition

    assert solution_markers.BEGIN is edition.BEGIN and solution_markers.END is edition.END
    assert solution_markers.without_markers("a\n## BEGIN SOLUTION (part 1)\nb\n# END SOLUTION") \
        == "a\nb"
