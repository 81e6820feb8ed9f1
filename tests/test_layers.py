"""The import graph of dlib points down, and package names mean one thing.

Layers, lowest first: base → data/theory → metrics/methods → train/engine → studies → course. A
module may import modules of its own layer or of lower layers, never of a higher one, and no two
packages import each other (no cycle, e.g. between training and the engine). Every import
statement counts, also one inside a function (a lazy import is still a dependency). Packages
listed here that do not exist (yet) are fine; a dlib module missing from the table is an error,
so that a new module gets a place.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from collections import defaultdict
from pathlib import Path

import pytest

import dlib
import dlib.metrics

DLIB = Path(dlib.__file__).resolve().parent

#: top-level part of dlib (package or module) -> layer; higher layers may import lower ones
LAYERS: dict[str, int] = {
    # base: shared utilities with no dlib dependency above them
    "dlib": 0, "dlib.config": 0, "dlib.distributions": 0, "dlib.nets": 0, "dlib.notebook": 0,
    "dlib.plots": 0, "dlib.results": 0, "dlib.scales": 0,
    "dlib.data": 1, "dlib.theory": 1,
    "dlib.metrics": 2, "dlib.methods": 2,
    "dlib.train": 3, "dlib.engine": 3,
    # studies: experiments and the runs behind the book's stored results
    "dlib.studies": 4, "dlib.experiments": 4, "dlib.bench": 4, "dlib.cpu_scale": 4,
    "dlib.compact": 3,
    "dlib.course": 5,
}

#: upward imports that still exist, each with the issue that removes it; an entry that is no
#: longer needed makes the test fail, so that the list only shrinks
KNOWN_UPWARD: dict[tuple[str, str], str] = {
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(DLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(name: str) -> str:
    """The top-level part of dlib a dotted name is in (``dlib.metrics.dci`` → ``dlib.metrics``)."""
    pieces = name.split(".")
    return ".".join(pieces[:2]) if len(pieces) > 1 else pieces[0]


def _imports(path: Path) -> set[str]:
    """Every dlib module or package named by an import statement of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}: use absolute imports (from dlib... import ...)")
    return {n for n in found if n == "dlib" or n.startswith("dlib.")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(DLIB.rglob("*.py"))}


def test_every_module_has_a_layer():
    missing = sorted({_part(m) for m in _graph()} - set(LAYERS))
    assert not missing, f"give these parts of dlib a layer in LAYERS: {missing}"


def test_imports_point_down():
    upward, used = [], set()
    for module, targets in _graph().items():
        for target in sorted(targets):
            src, dst = _part(module), _part(target)
            if dst not in LAYERS or LAYERS[dst] <= LAYERS.get(src, 0):
                continue
            if (module, dst) in KNOWN_UPWARD:
                used.add((module, dst))
                continue
            upward.append(f"{module} (layer {LAYERS[src]}) imports {target} "
                          f"(layer {LAYERS[dst]})")
    assert not upward, "imports that point up:\n" + "\n".join(upward)
    stale = sorted(set(KNOWN_UPWARD) - used)
    assert not stale, f"remove these entries from KNOWN_UPWARD, they are gone: {stale}"


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the directed graph ``edges`` (as a path that ends where it starts), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(edges.get(node, ())):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(edges):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_cycle_between_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in _graph().items():
        for target in targets:
            src, dst = _part(module), _part(target)
            if src != dst and dst != "dlib" and (module, dst) not in KNOWN_UPWARD:
                edges[src].add(dst)
    cycle = _cycle(edges)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_cycle_finder():
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
    assert _cycle({"dlib.train": {"dlib.engine"}, "dlib.engine": {"dlib.train"}}) == [
        "dlib.engine", "dlib.train", "dlib.engine"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_the_layer_test_sees_an_upward_import(tmp_path):
    """The parser finds imports inside functions too (what the tests above rely on)."""
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef g():\n    from dlib.train import fit\n    import dlib.engine\n")
    assert _imports(f) == {"dlib.train", "dlib.engine"}


METRIC_MODULES = sorted(m.name for m in pkgutil.iter_modules(dlib.metrics.__path__))


@pytest.mark.parametrize("name", METRIC_MODULES)
def test_no_metric_name_shadows_its_submodule(name):
    module = importlib.import_module(f"dlib.metrics.{name}")
    assert getattr(dlib.metrics, name, module) is module, (
        f"dlib.metrics.{name} is {getattr(dlib.metrics, name)!r}, not the submodule")
    assert isinstance(module, types.ModuleType)
