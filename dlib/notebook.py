"""Small helpers for the chapters: show dlib's real source code in a notebook.

A chapter never carries a second copy of library code; it imports the object and shows its
source with :func:`show_source`, so what the reader sees is what runs.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any


def source(*objects: Any) -> str:
    """The source code of functions, classes or methods, dedented and joined by blank lines."""
    if not objects:
        raise ValueError("source() needs at least one object")
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects)


def show_source(*objects: Any) -> Any:
    """Display the source of ``objects`` with syntax highlighting (plain text outside Jupyter)."""
    text = source(*objects)
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - IPython comes with every notebook install
        print(text)
        return None
    return Code(text, language="python")
