"""Sphinx extension: the exercise skeletons' solution markers are not shown in the book.

A code cell tagged ``exercise`` marks the lines a learner writes with ``# BEGIN SOLUTION`` and
``# END SOLUTION`` (nbgrader's markers); ``python -m dlib.course student`` replaces each region
by a "your turn" stub. In the instructor's notebook the markers stay; on the book's pages, where
the cell sits in a solution dropdown, they are noise, so they are dropped from the code cells'
displayed source (not from other code blocks, e.g. the course guide's description of them).
The marker patterns are those of :mod:`dlib.course.edition`.
"""

from __future__ import annotations

from docutils import nodes

from dlib.course.edition import BEGIN, END


def without_markers(source: str) -> str:
    """``source`` without its ``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines."""
    return "\n".join(line for line in source.split("\n")
                     if not (BEGIN.match(line) or END.match(line)))


def _is_cell_input(node: nodes.Node) -> bool:
    parent = node.parent
    return isinstance(parent, nodes.container) and "cell_input" in parent.get("classes", [])


def hide_markers(app, doctree: nodes.document) -> None:
    """Drop the marker lines from every code cell's source in ``doctree``."""
    for block in list(doctree.findall(nodes.literal_block)):
        if not _is_cell_input(block):
            continue
        text = block.astext()
        shown = without_markers(text)
        if shown != text:
            block.children = []
            block += nodes.Text(shown)
            block.rawsource = shown


def setup(app):
    app.connect("doctree-read", hide_markers)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
