"""Grading with the self-checks: read the verdicts from executed student notebooks.

Every ``dlib.course.check`` call displays its verdict with ``{"dlib": {"check": {...}}}`` in the
output's metadata. :func:`grade` reads those back, per notebook and exercise:

* ``passed`` / ``failed`` — the check's verdict;
* ``todo`` — the cell still raises the "Your turn" stub error;
* ``error`` — the exercise's cell raised some other error;
* ``-`` — the exercise's cell was not run (or its check call was removed).

With ``execute=True`` each notebook is first re-run in a fresh kernel of this Python (errors do
not stop the run), so the verdicts are the checks' own and not whatever the file stored. That
runs the students' code on your machine: do it in a throw-away environment.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from dlib.course.edition import _CHECK_CALL

STATUSES = ("passed", "failed", "todo", "error", "-")


def verdicts(nb) -> dict[str, str]:
    """Exercise label -> status for one (executed) notebook."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        labels = _CHECK_CALL.findall(cell.source)
        for label in labels:
            found.setdefault(label, "-")
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("dlib", {}).get("check")
            if isinstance(meta, dict) and "label" in meta:
                found[meta["label"]] = "passed" if meta.get("passed") else "failed"
            elif out.get("output_type") == "error":
                todo = out.get("ename") == "NotImplementedError" and "Your turn" in str(
                    out.get("evalue", ""))
                for label in labels:
                    found[label] = "todo" if todo else "error"
    return found


def execute(nb, cwd: Path, timeout: int = 600):
    """A copy of ``nb`` run top to bottom in a fresh kernel of this Python; errors go on."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    nb = copy.deepcopy(nb)
    os.environ.setdefault("TQDM_DISABLE", "1")
    km = KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())
    NotebookClient(nb, km=km, timeout=timeout, allow_errors=True, record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute(cleanup_kc=True)
    return nb


def grade(paths: list[str | Path], run: bool = False,
          timeout: int = 600) -> dict[str, dict[str, str]]:
    """Notebook path -> {exercise label -> status} for the given notebooks."""
    import nbformat

    table = {}
    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=4)
        if run:
            nb = execute(nb, cwd=path.parent, timeout=timeout)
        table[str(path)] = verdicts(nb)
    return table


def markdown(table: dict[str, dict[str, str]]) -> str:
    """The grades as a Markdown table: one row per notebook, one column per exercise."""
    labels = list(dict.fromkeys(label for row in table.values() for label in row))
    lines = ["| notebook | " + " | ".join(labels) + " | passed |",
             "|---|" + "---|" * (len(labels) + 1)]
    for path, row in table.items():
        cells = [row.get(label, "-") for label in labels]
        passed = sum(c == "passed" for c in cells)
        lines.append(f"| {path} | " + " | ".join(cells) + f" | {passed}/{len(labels)} |")
    return "\n".join(lines)
