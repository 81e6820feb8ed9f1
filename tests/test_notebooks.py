"""Infrastructure tests of the chapters; fast, no kernel is started.

- each chapter pair (.md source, .ipynb with outputs) is paired by jupytext's configuration, in
  sync, executed, with provenance; opening the .md in Jupyter shows the outputs, and saving it
  updates the .ipynb;
- quick-profile runs stay within the CI time budget;
- chapters define no top-level functions or classes outside exercise solutions (library code
  belongs in dlib and is shown with inspect.getsource);
- every chapter starts with the Colab set-up cell of book/colab_setup_cell.md;
- no markup that renders other than meant: a wrapped line read as a list, a role in a fence's
  opening line;
- every {cite} key exists in book/references.bib;
- _toc.yml lists every chapter notebook, and every file it lists exists.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from markdown_it import MarkdownIt
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_pairs  # noqa: E402  (tools/ is not a package)

QUICK_BUDGET_S = 90.0
COLAB_TAG = "colab-setup"
SOLUTION_TAG = "solution"

CHAPTERS = check_pairs.chapter_sources()
NOTEBOOKS = [md.with_suffix(".ipynb") for md in CHAPTERS if md.with_suffix(".ipynb").exists()]


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@cache
def _read(path: Path):
    return jupytext.read(path)


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


# --- pairs, execution, provenance (the functions of tools/check_pairs.py) ----------------------


def test_every_notebook_has_a_source():
    assert check_pairs.orphan_problems() == []


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_paired_by_jupytext(md: Path):
    assert check_pairs.pairing_problems(md) == []


def test_pairing_problems_without_a_configuration(tmp_path):
    (tmp_path / "x.md").write_text("# A title\n")
    assert "no jupytext pairing" in check_pairs.pairing_problems(tmp_path / "x.md")[0]
    (tmp_path / "jupytext.toml").write_text('formats = "ipynb,py:percent"\n')
    assert check_pairs.pairing_problems(tmp_path / "x.md") != []


def test_saving_the_md_in_jupyter_updates_the_ipynb(tmp_path):
    """What the README promises, through jupytext's contents manager (the one JupyterLab uses):
    a chapter's .md opens with the .ipynb's outputs, and saving it writes the edited inputs
    into the .ipynb and keeps its outputs and run record."""
    from jupytext import TextFileContentsManager

    md = min(NOTEBOOKS, key=lambda p: p.stat().st_size).with_suffix(".md")  # the smallest
    (tmp_path / "chapters").mkdir()
    for path in (md, md.with_suffix(".ipynb"), ROOT / "chapters" / "jupytext.toml"):
        (tmp_path / "chapters" / path.name).write_bytes(path.read_bytes())
    stored = jupytext.read(md.with_suffix(".ipynb"))
    outputs = [c.outputs for c in stored.cells if c.cell_type == "code"]
    assert any(outputs), f"{md.name}: no stored outputs to look for"

    cm = TextFileContentsManager(root_dir=str(tmp_path))
    name = f"chapters/{md.name}"
    nb = cm.get(name)["content"]
    assert [c.outputs for c in nb.cells if c.cell_type == "code"] == outputs
    last = max(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    nb.cells[last].source += "\n\nAn edit made in JupyterLab."
    cm.save({"type": "notebook", "format": "json", "content": nb}, name)

    saved = jupytext.read(tmp_path / name.replace(".md", ".ipynb"))
    assert saved.cells[last].source.endswith("An edit made in JupyterLab.")
    assert [c.outputs for c in saved.cells if c.cell_type == "code"] == outputs
    assert saved.metadata["dlib"]["run"] == stored.metadata["dlib"]["run"]
    assert "An edit made in JupyterLab." in (tmp_path / name).read_text(encoding="utf-8")
    assert check_pairs.drift_problems(tmp_path / name) == []  # still a pair, inputs equal


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_pair_in_sync(md: Path):
    assert check_pairs.drift_problems(md) == []


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_executed(ipynb: Path):
    assert check_pairs.execution_problems(ipynb) == []


def test_the_course_guide_runs_after_the_chapters_it_tabulates():
    import execute

    mds = sorted((ROOT / "chapters").glob("*.md"))
    order = execute.run_order(mds)
    assert order[-1].stem == execute.COURSE_GUIDE and sorted(order) == mds
    assert [p.stem for p in order[:-1]] == [p.stem for p in mds if p.stem != execute.COURSE_GUIDE]


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_split_stream_outputs(ipynb: Path):
    assert check_pairs.split_stream_problems(ipynb) == []


def test_coalesce_streams_merges_consecutive_streams_of_one_name(tmp_path: Path):
    import execute

    out = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("print('a'); print('b')")
    cell.outputs = [out("stream", name="stdout", text="a"), out("stream", name="stdout", text="\n"),
                    out("stream", name="stderr", text="w\n"),
                    out("display_data", data={"text/plain": "fig"}),
                    out("stream", name="stdout", text="b\n"),
                    out("stream", name="stdout", text="c\n")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert "split stream" in check_pairs.split_stream_problems(path)[0]
    assert execute.coalesce_streams(nb) == 2
    assert [(o.output_type, o.get("name"), o.get("text")) for o in cell.outputs] == [
        ("stream", "stdout", "a\n"), ("stream", "stderr", "w\n"), ("display_data", None, None),
        ("stream", "stdout", "b\nc\n")]
    nbformat.write(nb, path)
    assert check_pairs.split_stream_problems(path) == []


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_provenance(ipynb: Path):
    assert check_pairs.provenance_problems(ipynb) == []


def test_provenance_rejects_a_dirty_tree(tmp_path: Path):
    run = {"profile": "quick", "device": "cpu", "commit": "abc", "dirty": False,
           "started_utc": "2026-01-01T00:00:00Z", "wall_s": 1.0, "torch": "2"}
    path = tmp_path / "x.ipynb"
    for dirty, expected in ((False, []), (True, ["executed from a dirty tree"]),
                            ("no", ["dirty is not a bool"])):
        nb = nbformat.v4.new_notebook(metadata={"dlib": {"run": {**run, "dirty": dirty}}})
        nbformat.write(nb, path)
        problems = check_pairs.provenance_problems(path)
        assert len(problems) == len(expected)
        assert all(e in p for e, p in zip(expected, problems, strict=True))


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_quick_profile_time_budget(ipynb: Path):
    run = check_pairs.run_record(ipynb) or {}
    if run.get("profile") != "quick":
        pytest.skip(f"stored outputs are from a {run.get('profile')!r} run")
    assert run["wall_s"] <= QUICK_BUDGET_S, (
        f"{ipynb.name} took {run['wall_s']} s in the quick profile; the budget is "
        f"{QUICK_BUDGET_S:.0f} s (shrink its by_profile(quick=...) sizes)"
    )


# --- chapter conventions ------------------------------------------------------------------------

_md = MarkdownIt("commonmark").use(colon_fence_plugin)


def _directives(markdown: str) -> list[str]:
    """Names of the top-level MyST directives of a markdown cell, in order."""
    names = []
    for token in _md.parse(markdown):
        if token.type in ("fence", "colon_fence"):
            m = re.match(r"\{([\w:-]+)\}", token.info.strip())
            if m:
                names.append(m.group(1))
    return names


def solution_cells(nb) -> set[int]:
    """Indices of code cells that belong to an exercise solution.

    A code cell is a solution cell when it is tagged ``solution`` or lies between a
    ``{solution-start}`` and a ``{solution-end}`` directive.
    """
    inside, found = False, set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for name in _directives(cell.source):
                if name == "solution-start":
                    inside = True
                elif name == "solution-end":
                    inside = False
        elif cell.cell_type == "code" and (inside or SOLUTION_TAG in _tags(cell)):
            found.add(i)
    return found


def top_level_definitions(source: str) -> list[str]:
    """Names of functions and classes defined at the top level of a (IPython) code cell."""
    tree = ast.parse(TransformerManager().transform_cell(source))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node.name for node in tree.body if isinstance(node, kinds)]


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_no_library_code_in_chapters(md: Path):
    nb = _read(md)
    solutions = solution_cells(nb)
    offenders = [
        f"cell {i}: {', '.join(names)}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and i not in solutions
        and (names := top_level_definitions(cell.source))
    ]
    assert not offenders, (
        f"{md.name} defines functions/classes outside exercise solutions ({'; '.join(offenders)}). "
        "Put them in dlib and show them with inspect.getsource."
    )


@cache
def canonical_setup_cell() -> tuple[str, list[str]]:
    """(source, tags) of the code cell documented in book/colab_setup_cell.md."""
    doc = jupytext.read(ROOT / "book" / "colab_setup_cell.md", fmt="md:myst")
    cells = [c for c in doc.cells if c.cell_type == "code"]
    assert len(cells) == 1, "book/colab_setup_cell.md must hold exactly one code cell"
    return cells[0].source.strip(), _tags(cells[0])


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_first_code_cell_is_colab_setup(md: Path):
    source, tags = canonical_setup_cell()
    first = next((c for c in _read(md).cells if c.cell_type == "code"), None)
    assert first is not None, f"{md.name} has no code cell"
    assert COLAB_TAG in _tags(first), f"{md.name}: first code cell is not tagged {COLAB_TAG!r}"
    assert first.source.strip() == source and _tags(first) == tags, (
        f"{md.name}: the first code cell differs from book/colab_setup_cell.md (copy it verbatim)"
    )


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_starts_with_one_title(md: Path):
    first = next((c for c in _read(md).cells if c.cell_type == "markdown"), None)
    assert first is not None
    headings = [ln for ln in first.source.splitlines() if ln.startswith("#")]
    assert headings and re.match(r"# \S", headings[0]), f"{md.name} must start with '# Title'"


# --- markup that renders other than meant -----------------------------------------------------

# the block structure the book's parser sees (MyST adds its directives on top of CommonMark)
_myst = (MarkdownIt("commonmark").use(colon_fence_plugin).use(dollarmath_plugin)
         .use(amsmath_plugin).enable("table"))
_FENCE_OPENING = re.compile(r"^\s*(`{3,}|:{3,})\{[\w:-]+\}(.*)$")


def markup_problems(text: str, first_line: int = 1) -> list[str]:
    """Lines whose markup the reader would see broken.

    * a list that starts right after a paragraph line: a wrapped line that begins with ``- ``,
      ``+ ``, ``* `` or ``1)`` becomes a list item and cuts the sentence (and its math) in two,
      so a real list needs a blank line before it;
    * a directive whose opening line holds a role (``{cite:p}`key```): a backtick fence's opening
      line may not contain backticks, so the directive becomes plain text.

    Directive bodies (exercises, solutions, admonitions) are checked too.
    """
    problems = []
    for n, line in enumerate(text.splitlines()):
        m = _FENCE_OPENING.match(line)
        if m and re.search(r"`|\{(cite|ref|doc|eq|numref)", m.group(2)):
            problems.append(f"line {first_line + n}: a role in a directive's opening line")
    lines = text.splitlines()
    paragraph_end: dict[int, int] = {}  # level -> line after the last paragraph at that level
    for token in _myst.parse(text):
        if token.type == "paragraph_open" and token.map:
            paragraph_end[token.level] = token.map[1]
        elif token.type in ("bullet_list_open", "ordered_list_open") and token.map:
            start = token.map[0]
            if paragraph_end.get(token.level) == start:
                problems.append(f"line {first_line + start}: a list right after a paragraph "
                                f"line (a wrapped line read as a list?): {lines[start][:60]!r}")
        elif token.type in ("fence", "colon_fence") and token.map and re.match(
            r"\{(?!code)[\w:-]+\}", token.info.strip()
        ):
            body = token.content.splitlines()
            skip = 0
            while skip < len(body) and body[skip].startswith(":"):  # the directive's options
                skip += 1
            problems += markup_problems("\n".join(body[skip:]), first_line + token.map[0] + 1
                                        + skip)
    return problems


def test_markup_problems_finds_the_known_kinds():
    wrapped = "the average is $\\tfrac12(1 - \\log\\sigma^2\n- 1)$, as claimed.\n"
    assert markup_problems(wrapped) == [
        "line 2: a list right after a paragraph line (a wrapped line read as a list?): "
        "'- 1)$, as claimed.'"
    ]
    assert len(markup_problems("after `start + (j +\n1) * every` steps\n")) == 1
    assert markup_problems("$$\na\n+ b\n$$\n") == []  # inside display math: no list
    assert markup_problems("Steps:\n\n- one\n- two\n") == []
    table = "```{list-table} Rates in Table 2 {cite:p}`key`\n* - a\n  - b\n```\n"
    found = markup_problems(table)  # the fence is not one: its first row follows a paragraph
    assert found[0] == "line 1: a role in a directive's opening line" and len(found) == 2
    assert markup_problems(table.replace(" {cite:p}`key`", "")) == []
    inside = "```{solution-start} ex\n:class: dropdown\n```\n\n:::{note}\ntext\n+ more\n:::\n"
    assert len(markup_problems(inside)) == 1


@pytest.mark.parametrize(
    "page", CHAPTERS + sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.name
)
def test_no_markup_that_renders_broken(page: Path):
    problems = markup_problems(page.read_text(encoding="utf-8"))
    assert not problems, f"{page.name}: " + "; ".join(problems)


# --- references to chapters: what the reader sees -----------------------------------------------

# "chapter 30" names a file number, which is not the number the book shows (file 30 renders as
# chapter 16; dlib.course.guide.chapter_numbers); refer by a {doc}/{ref} link, a title or a path
_BARE_NUMBER = re.compile(r"\b[Cc]hapters? \d+\b|\b[Cc]hapters \d+ (?:and|or|to)\b")


def _reader_facing() -> list[Path]:
    """Text a reader or a chapter's displayed source shows: chapters, book pages, READMEs, dlib."""
    return (CHAPTERS + sorted((ROOT / "book").rglob("*.md")) + [ROOT / "README.md"]
            + sorted((ROOT / "dlib").rglob("*.py")) + sorted((ROOT / "tools").glob("*.py")))


def test_no_chapter_is_named_by_its_file_number():
    found = [f"{path.relative_to(ROOT)}:{n}: {m.group(0)!r}"
             for path in _reader_facing()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             for m in _BARE_NUMBER.finditer(line)]
    assert not found, ("chapters named by a number (the book numbers them differently from the "
                       "files; use {doc}/{ref} links, titles or paths):\n" + "\n".join(found))
    assert _BARE_NUMBER.search("as chapter 2 showed") and _BARE_NUMBER.search("Chapters 14 and")
    assert not _BARE_NUMBER.search("see chapters/30_oat and {doc}`02_kl_decompositions`")


def test_intro_names_the_parts_as_the_table_of_contents_does():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    captions = [p["caption"] for p in toc["parts"] if p["caption"].startswith("Part ")]
    named = re.findall(r"^- \*\*(Part [^*]+)\*\*", (ROOT / "book" / "intro.md").read_text(
        encoding="utf-8"), re.MULTILINE)
    assert named == captions


# --- citations and table of contents ------------------------------------------------------------

_CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
_BIBKEY = re.compile(r"^@\w+\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)


def bib_keys() -> set[str]:
    return set(_BIBKEY.findall((ROOT / "book" / "references.bib").read_text(encoding="utf-8")))


def test_bib_keys_unique():
    keys = _BIBKEY.findall((ROOT / "book" / "references.bib").read_text(encoding="utf-8"))
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


@pytest.mark.parametrize(
    "page", CHAPTERS + sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.name
)
def test_cited_keys_exist(page: Path):
    used = {k.strip() for group in _CITE.findall(page.read_text(encoding="utf-8"))
            for k in group.split(",")}
    missing = sorted(used - bib_keys())
    assert not missing, f"{page.name} cites keys missing from book/references.bib: {missing}"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    files.append(toc["root"])
    walk({k: v for k, v in toc.items() if k != "root"})
    return files


def test_toc_files_exist():
    missing = [f for f in toc_files()
               if not any((ROOT / (f + ext)).exists() for ext in ("", ".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_toc_lists_every_chapter():
    listed = set(toc_files())
    notebooks = [nb.relative_to(ROOT).as_posix() for nb in check_pairs.chapter_notebooks()]
    unlisted = [nb for nb in notebooks if nb not in listed]
    assert not unlisted, f"chapters missing from _toc.yml (list them as .ipynb): {unlisted}"


def test_at_most_one_unnumbered_page_numbers_exercises_or_equations():
    """Sphinx numbers the exercises and equations of every page outside the numbered parts with
    one counter, so a second such page would continue the first's count (Exercise 4 in an
    appendix that has three). Put such a page in a numbered part."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    numbered_things = re.compile(r"^(```+|:::+)\{(exercise|math)\}|^\$\$\s*\([\w:-]+\)\s*$",
                                 re.MULTILINE)
    pages = [entry["file"] for part in toc["parts"] if not part.get("numbered")
             for entry in part.get("chapters", []) if "file" in entry]
    counting = [f for f in pages
                if (md := (ROOT / f).with_suffix(".md")).exists()
                and numbered_things.search(md.read_text(encoding="utf-8"))]
    assert len(counting) <= 1, f"unnumbered pages sharing one exercise/equation count: {counting}"

