"""Tests of dlib.course: student editions, self-checks, the course table, the CLI.

For every chapter in chapters/ (new chapters are covered without changes here):

- its student edition builds, is valid nbformat, keeps the Colab set-up cell, and contains no
  solution text (solution cells, BEGIN/END SOLUTION regions and solution markdown are searched
  for, with an independent parser from tests/test_notebooks.py);
- every exercise skeleton lies inside a solution region and becomes a stub that raises the
  "Your turn" error;
- it has at least three exercises, each with a solution (the course guide excepted);
- the student notebook executes in the quick profile up to and including its first stub (chapters
  whose recorded quick run is long are marked slow; the slow suite also runs every student
  edition top to bottom and allows only "Your turn" errors).

For every self-check: it passes on its chapter's instructor solution (executed here after the
chapter's import cells, and in the stored outputs), fails on the wrong answers in
WRONG_ANSWERS, and the instructor's numbers appear neither in the student edition nor in the
checks' source.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
from IPython.core.inputtransformer2 import TransformerManager

matplotlib.use("Agg")

from test_notebooks import canonical_setup_cell, solution_cells  # noqa: E402

import dlib.course  # noqa: E402
from dlib.course import checks, edition, grade, guide  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = guide.chapter_sources(ROOT)
TEACHING = [md for md in CHAPTERS if md.stem != guide.GUIDE]
MIN_EXERCISES = 3
FAST_CHAPTER_S = 15.0  # executing a student edition of a chapter slower than this is "slow"
YOUR_TURN = "Your turn"


#: label -> wrong answers that the check must reject: one file per module of
#: dlib.course.checks, of the same name, in tests/course_wrong/
WRONG_ANSWERS: dict = {}


def _ids(paths):
    return [p.stem for p in paths]


@cache
def instructor(md: Path):
    return edition.read_chapter(md)


@cache
def student(md: Path):
    return edition.student_notebook(instructor(md), source_name=md.name)


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _text(nb) -> str:
    """All sources and text outputs of a notebook, as one string."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")))
            for value in (out.get("data") or {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


def _code(source: str) -> str:
    return TransformerManager().transform_cell(source)


def exercise_cells(md: Path) -> list[int]:
    return [i for i, c in enumerate(instructor(md).cells)
            if c.cell_type == "code" and "exercise" in _tags(c)]


def import_cells(nb) -> list[str]:
    """Sources of the code cells made only of imports (the Colab set-up cell excepted)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "colab-setup" in _tags(cell):
            continue
        body = ast.parse(_code(cell.source)).body
        if body and all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body):
            found.append(cell.source)
    return found


# --- student editions ---------------------------------------------------------------------------


def test_there_are_chapters():
    assert TEACHING, "no chapters found in chapters/"


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_student_edition_is_valid(md: Path):
    nb = student(md)
    nbformat.validate(nb)
    nbformat.validate(nbformat.reads(nbformat.writes(nb), as_version=4))
    assert nb.metadata["dlib"]["edition"]["kind"] == "student"
    setup, _ = canonical_setup_cell()
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.strip() == setup, "the Colab set-up cell must stay first"


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_student_edition_keeps_other_cells(md: Path):
    """Cells outside solutions keep their source and stored outputs."""
    nb, removed = instructor(md), solution_cells(instructor(md))
    kept = {c.source: c for c in student(md).cells}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and i not in removed and "solution" not in _tags(cell):
            assert cell.source in kept, f"cell {i} is missing from the student edition"
            assert kept[cell.source].get("outputs") == cell.get("outputs")


def _solution_markdown_lines(nb) -> list[str]:
    """Lines of markdown between {solution-start} and {solution-end} (a plain line scan)."""
    lines, inside, example = [], False, None
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            fence = re.match(r"^(````+|::::+)", line)  # an outer fence shows MyST as an example
            if example:
                example = None if fence and fence.group(1) == example else example
            elif fence and not inside:
                example = fence.group(1)
            elif re.match(r"^(```|:::)\{solution-start\}", line):
                inside = True
            elif re.match(r"^(```|:::)\{solution-end\}", line):
                inside = False
            elif inside:
                lines.append(line.strip())
    return lines


def _directive_lines(nb) -> list[str]:
    """Lines that open a solution directive (outside example fences)."""
    found, example = [], None
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            fence = re.match(r"^(````+|::::+)", line)
            if example:
                example = None if fence and fence.group(1) == example else example
            elif fence:
                example = fence.group(1)
            elif re.match(r"^(```|:::)\{solution(-start|-end)?\}", line):
                found.append(line)
    return found


def _solution_code_lines(nb) -> list[str]:
    lines = []
    for i in solution_cells(nb) | {i for i, c in enumerate(nb.cells) if "solution" in _tags(c)}:
        cell = nb.cells[i]
        if "exercise" not in _tags(cell):
            lines += [ln.strip() for ln in cell.source.splitlines()]
            continue
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif inside:
                lines.append(line.strip())
    return lines


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_student_edition_has_no_solution_text(md: Path):
    nb = instructor(md)
    removed = set(_solution_markdown_lines(nb)) | set(_solution_code_lines(nb))
    # lines that also occur outside the solutions (e.g. "plt.show()") prove nothing
    outside = copy.deepcopy(nb)
    outside.cells = [c for i, c in enumerate(nb.cells)
                     if c.cell_type == "code" and i not in solution_cells(nb)
                     and not {"solution", "exercise"} & set(_tags(c))]
    common = {ln.strip() for ln in _text(outside).splitlines()}
    distinctive = [ln for ln in removed if len(ln) >= 20 and ln not in common
                   and not ln.startswith(("```", ":::"))]
    text = _text(student(md))
    leaked = [ln for ln in distinctive if ln in text]
    assert not leaked, f"solution text in the student edition of {md.name}: {leaked[:3]}"
    code = "\n".join(c.source for c in student(md).cells if c.cell_type == "code")
    assert not re.search(r"^\s*#+\s*(BEGIN|END) SOLUTION", code, re.MULTILINE)
    assert _solution_markdown_lines(student(md)) == []
    assert not _directive_lines(student(md))


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_exercise_cells_become_stubs(md: Path):
    nb = instructor(md)
    inside = solution_cells(nb)
    for i in exercise_cells(md):
        assert i in inside, (f"{md.name} cell {i}: a cell tagged 'exercise' must lie inside its "
                             "solution region, so the book shows its code only in the dropdown")
    stubs = [c for c in student(md).cells if "exercise" in _tags(c)]
    assert len(stubs) == len(exercise_cells(md))
    for cell in stubs:
        assert "raise NotImplementedError" in cell.source and YOUR_TURN in cell.source
        assert "raises-exception" in _tags(cell)
        assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("md", TEACHING, ids=_ids(TEACHING))
def test_at_least_three_exercises_with_solutions(md: Path):
    found = edition.exercises(instructor(md))
    assert len(found) >= MIN_EXERCISES, (
        f"{md.name} has {len(found)} exercises; every chapter needs at least {MIN_EXERCISES} "
        "(a check of understanding, a derivation, a small experiment)")
    unsolved = [label for label, e in found.items() if not e.has_solution]
    assert not unsolved, f"{md.name}: exercises without a solution: {unsolved}"
    unlabelled = [label for label in found if label.startswith("(unlabelled")]
    assert not unlabelled, f"{md.name}: exercises need a :label:"


def test_stub_source():
    source = "x = 1\ndef f(a):\n    # BEGIN SOLUTION\n    return a\n    # END SOLUTION\nf(2)"
    out = edition.stub_source(source, "ex-1")
    assert "return a" not in out and out.startswith("x = 1\ndef f(a):\n")
    assert "    raise NotImplementedError('Your turn: exercise ex-1" in out
    assert out.endswith("f(2)")
    for bad in ("# BEGIN SOLUTION\nx", "x\n# END SOLUTION", "x = 1"):
        with pytest.raises(edition.EditionError):
            edition.stub_source(bad, "ex-1")


def test_student_edition_of_a_toy_notebook():
    """All forms: solution regions across cells, {solution} blocks, tagged cells, skeletons."""
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# T\n\n```{exercise}\n:label: ex-a\n\nDo A.\n```\n\n"
                             "```{solution-start} ex-a\n:class: dropdown\n```\n\nSECRET-1"),
        v4.new_code_cell("secret_2 = 1", metadata={"tags": ["solution"]}),
        v4.new_code_cell("pre = 1\n# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION\nprint(answer)",
                         metadata={"tags": ["exercise"]}),
        v4.new_code_cell("untagged_inside = 1"),
        v4.new_markdown_cell("```{solution-end}\n```\n\nAfter.\n\n"
                             "```{solution} ex-b\nSECRET-3\n```\n\nEnd."),
        v4.new_code_cell("kept = 2", metadata={"tags": ["solution-free"]}),
        v4.new_code_cell("tagged = 3", metadata={"tags": ["solution"]}),
    ])
    out = edition.student_notebook(nb)
    text = _text(out)
    for secret in ("SECRET-1", "secret_2", "answer = 42", "untagged_inside", "SECRET-3",
                   "tagged = 3", "solution-start", "solution-end"):
        assert secret not in text
    assert [c.cell_type for c in out.cells] == ["markdown", "code", "markdown", "code"]
    assert "Do A." in out.cells[0].source and out.cells[2].source == "After.\n\nEnd."
    assert "pre = 1" in out.cells[1].source and "exercise ex-a" in out.cells[1].source
    assert out.cells[3].source == "kept = 2"


# --- executing student editions -----------------------------------------------------------------


def _run(nb, cwd: Path, stop_after_first_stub: bool):
    """Execute ``nb`` in a fresh kernel (quick profile); returns the executed copy."""
    nb = copy.deepcopy(nb)
    if stop_after_first_stub:
        first = next((i for i, c in enumerate(nb.cells) if "exercise" in _tags(c)), None)
        if first is not None:
            nb.cells = nb.cells[: first + 1]
    env = {"DLIB_PROFILE": "quick", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return grade.execute(nb, cwd=cwd, timeout=600)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _errors(nb) -> list[tuple[int, str, str]]:
    return [(i, out.get("ename", ""), out.get("evalue", ""))
            for i, c in enumerate(nb.cells) for out in c.get("outputs", [])
            if out.get("output_type") == "error"]


def _only_your_turn(nb, md: Path) -> None:
    for i, ename, evalue in _errors(nb):
        cell = nb.cells[i]
        assert "exercise" in _tags(cell) and ename == "NotImplementedError" \
            and YOUR_TURN in evalue, f"{md.name} student edition, cell {i}: {ename}: {evalue}"


def _quick_wall(md: Path) -> float:
    run = guide.run_records(md.with_suffix(".ipynb")).get("quick") or {}
    return float(run.get("wall_s", math.inf))


FIRST_STUB = [pytest.param(md, marks=[pytest.mark.slow] if _quick_wall(md) > FAST_CHAPTER_S
                           else []) for md in CHAPTERS]


@pytest.mark.parametrize("md", FIRST_STUB, ids=_ids(CHAPTERS))
def test_student_edition_runs_to_first_stub(md: Path):
    nb = _run(student(md), md.parent, stop_after_first_stub=True)
    _only_your_turn(nb, md)
    if exercise_cells(md):
        assert _errors(nb), "the first stub must raise the 'Your turn' error"


@pytest.mark.slow
@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_student_edition_runs_top_to_bottom(md: Path):
    nb = _run(student(md), md.parent, stop_after_first_stub=False)
    _only_your_turn(nb, md)
    assert len(_errors(nb)) == len(exercise_cells(md))


# --- self-checks --------------------------------------------------------------------------------

CHECK_CELLS = [(md, i, label) for md in CHAPTERS for i in exercise_cells(md)
               for label in edition._CHECK_CALL.findall(instructor(md).cells[i].source)]


def _exec_cell(md: Path, source: str, answers: dict | None = None) -> dict:
    """Run the chapter's import cells and then ``source``; returns the namespace."""
    namespace = {"__name__": "__main__"}
    for imports in import_cells(instructor(md)):
        exec(compile(_code(imports), f"{md.name}:imports", "exec"), namespace)
    originals = dict(checks.CHECKS)
    if answers is not None:  # record what the cell passes to its checks
        for label, fn in originals.items():
            def recording(answer, fn=fn, label=label):
                answers[label] = answer
                return fn(answer)
            checks.CHECKS[label] = recording
    try:
        exec(compile(_code(source), f"{md.name}:exercise", "exec"), namespace)
    finally:
        checks.CHECKS.update(originals)
    return namespace


@cache
def instructor_answer(md: Path, i: int, label: str):
    """(problems, answer) of the instructor's solution; None when it needs chapter state."""
    answers: dict = {}
    try:
        _exec_cell(md, instructor(md).cells[i].source, answers)
    except NameError:
        return None
    assert label in answers, f"{md.name} cell {i} does not call check({label!r}, ...)"
    return checks.CHECKS[label](answers[label]), answers[label]


@pytest.mark.parametrize("md,i,label", CHECK_CELLS, ids=[c[2] for c in CHECK_CELLS])
def test_check_passes_on_instructor_solution(md: Path, i: int, label: str):
    found = instructor_answer(md, i, label)
    if found is None:
        pytest.skip("the exercise cell needs the chapter's state; see the stored verdicts")
    problems, _ = found
    assert problems == [], f"{label} fails on its own solution: {problems}"
    assert dlib.course.check(label, found[1])


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids(CHAPTERS))
def test_stored_verdicts_pass(md: Path):
    """The last execution of the instructor notebook shows a passing verdict for every check."""
    ipynb = md.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.skip("not executed yet")
    nb = nbformat.read(ipynb, as_version=4)
    expected = {label for _, _, label in CHECK_CELLS if _ == md}
    verdicts = grade.verdicts(nb)
    assert {k: v for k, v in verdicts.items() if k in expected} == dict.fromkeys(
        expected, "passed"), f"{ipynb.name}: re-run python tools/execute.py {md}"


@pytest.mark.parametrize("md,i,label", CHECK_CELLS, ids=[c[2] for c in CHECK_CELLS])
def test_stub_raises_your_turn(md: Path, i: int, label: str):
    stub = edition.stub_source(instructor(md).cells[i].source, label)
    try:
        _exec_cell(md, stub)
    except NotImplementedError as err:
        assert YOUR_TURN in str(err) and label in str(err)
    except NameError:
        pytest.skip("the exercise cell needs the chapter's state (covered by the slow test)")
    else:
        pytest.fail("the stub did not raise")


def _sibling_wrong_answers() -> dict:
    """Wrong answers of later chapters: ``WRONG_ANSWERS`` dicts in tests/course_wrong/*.py."""
    import importlib.util

    found = {}
    for path in sorted((Path(__file__).parent / "course_wrong").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"course_wrong_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        clash = set(found) & set(module.WRONG_ANSWERS) | set(WRONG_ANSWERS) & set(
            module.WRONG_ANSWERS)
        assert not clash, f"wrong answers for {sorted(clash)} are listed twice"
        found.update(module.WRONG_ANSWERS)
    return found


WRONG_ANSWERS.update(_sibling_wrong_answers())
WRONG = [(label, k) for label, answers in WRONG_ANSWERS.items() for k in range(len(answers))]


@pytest.mark.parametrize("label,k", WRONG, ids=[f"{a}-{k}" for a, k in WRONG])
def test_check_fails_on_wrong_answer(label: str, k: int):
    result = dlib.course.check(label, WRONG_ANSWERS[label][k])
    assert not result and result.problems, result
    assert str(result).startswith(f"✗ {label}: not yet:")


def test_every_check_is_used_and_has_wrong_answers():
    used = {label for _, _, label in CHECK_CELLS}
    assert set(checks.CHECKS) <= used, (
        f"checks no chapter calls: {sorted(set(checks.CHECKS) - used)}")
    assert used <= set(checks.CHECKS), f"chapters call unknown checks: {used - set(checks.CHECKS)}"
    missing = sorted(set(checks.CHECKS) - set(WRONG_ANSWERS))
    assert not missing, f"add wrong answers to WRONG_ANSWERS for: {missing}"


def _numbers(answer) -> list[float]:
    if isinstance(answer, dict):
        return [float(v) for v in answer.values() if isinstance(v, (int, float))]
    return [float(answer)] if isinstance(answer, (int, float)) else []


@pytest.mark.parametrize("md,i,label", CHECK_CELLS, ids=[c[2] for c in CHECK_CELLS])
def test_answer_not_revealed(md: Path, i: int, label: str):
    found = instructor_answer(md, i, label)
    if found is None:
        pytest.skip("the exercise cell needs the chapter's state")
    sources = "\n".join(p.read_text(encoding="utf-8")
                        for p in Path(checks.__file__).parent.glob("*.py"))
    nb = student(md)
    written = "\n".join(cell.source for cell in nb.cells)
    text = _text(nb)
    for value in _numbers(found[1]):
        for digits in (4, 5, 6):
            shown = f"{value:.{digits}g}"
            if len(shown.replace(".", "").lstrip("0")) >= 4:
                assert shown not in sources, f"{label}: {shown} appears in dlib/course"
                assert shown not in written, f"{label}: {shown} appears in the student edition"
                # the stored outputs print thousands of 4-digit numbers (training logs of the
                # quick profile), so a 4-digit match there is chance (ex-m15-bound-gap's answer
                # once matched a logged g_adv=0.4513); from 5 digits on a match is a leak
                if digits >= 5:
                    assert shown not in text, (f"{label}: {shown} appears in the student "
                                               "edition's outputs")


def test_check_api():
    with pytest.raises(KeyError, match="no self-check"):
        dlib.course.check("no-such-exercise", 1)
    result = dlib.course.check("pre-ex-beta", {})
    assert not result and "lacks" in result.message
    assert dlib.course.results()["pre-ex-beta"] is result
    data, meta = result._repr_mimebundle_()
    assert data["text/plain"].startswith("✗") and meta["dlib"]["check"]["passed"] is False


def test_hidden_tolerance():
    digest = checks.hide("t", "x", 100.0, rtol=0.01)
    hidden = checks.Hidden(digest, rtol=0.01)
    assert hidden.problems("t", "x", 100.0) == []
    assert hidden.problems("t", "x", 100.85) == []  # within rtol
    assert hidden.problems("t", "x", 101.2) != []  # beyond 1.1 rtol
    assert "sign" in hidden.problems("t", "x", -100.0)[0]
    assert "factor of 2" in hidden.problems("t", "x", 200.0)[0]
    assert hidden.problems("u", "x", 100.0) != []  # the label salts the digest


def test_compare_helper():

    want = np.arange(1.0, 7.0).reshape(2, 3)
    assert checks.compare(want.copy(), want) == []
    assert "shape" in checks.compare(want.T, want)[0]
    assert "sign" in checks.compare(-want, want)[0]
    assert "factor of 2" in checks.compare(2 * want, want)[0]
    bad = want.copy()
    bad[1, 2] += 1
    assert "(1, 2)" in checks.compare(bad, want)[0]
    assert "non-finite" in checks.compare(want * np.nan, want)[0]


# --- course table and plan ----------------------------------------------------------------------


def _fake_book(tmp_path: Path) -> Path:
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: Part I\n    chapters:\n"
        "      - file: chapters/01_vae_basics.ipynb\n", encoding="utf-8")
    md = "# A title\n\n```{exercise}\n:label: ex-x\n\nQ.\n```\n"
    for stem, meta in (("01_vae_basics", {"run": {"profile": "quick", "device": "cpu",
                                                  "wall_s": 12.3},
                                          "runs": {"full": {"profile": "full",
                                                            "device": "cuda", "wall_s": 301}}}),
                       ("07_mig", {"run": {"profile": "full", "device": "cuda", "wall_s": 60}}),
                       (guide.GUIDE, {})):
        (tmp_path / "chapters" / f"{stem}.md").write_text(md, encoding="utf-8")
        nb = nbformat.v4.new_notebook(metadata={"dlib": meta})
        nbformat.write(nb, tmp_path / "chapters" / f"{stem}.ipynb")
    return tmp_path


def test_compute_table_reads_run_records(tmp_path: Path):
    table = dlib.course.compute_table(_fake_book(tmp_path))
    assert [r.path for r in table.rows] == ["chapters/01_vae_basics.ipynb",
                                            "chapters/07_mig.ipynb"]
    first, second = table.rows
    assert first.part == "Part I" and first.title == "A title" and first.exercises == 1
    assert first.compute("quick") == "12 s on cpu" and first.compute("full") == "301 s on cuda"
    assert second.compute("quick") == "not recorded" and second.compute("full") == "60 s on cuda"
    text = table.markdown()
    assert "(not in the table of contents)" in text and "1 of 2 recorded" in text
    assert "6.0 min" in text  # 301 s + 60 s, both full runs recorded
    assert table._repr_markdown_() == text
    html = table._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 4  # head, 2 chapters, total
    assert "<code>chapters/07_mig.ipynb</code>" in html


def test_compute_table_of_this_book():
    table = dlib.course.compute_table(ROOT)
    assert {r.path for r in table.rows} == {
        md.relative_to(ROOT).with_suffix(".ipynb").as_posix() for md in TEACHING}
    for row in table.rows:
        run = guide.run_records(ROOT / row.path)
        for profile, record in run.items():
            assert row.compute(profile) == f"{record['wall_s']:.0f} s on {record['device']}"


def test_chapter_numbers_are_the_rendered_ones(tmp_path: Path):
    """Jupyter Book numbers the chapters of numbered parts on from 1 across parts (or per part
    when use_multitoc_numbering is off); unnumbered parts' chapters get none."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n"
        "  - caption: Start\n    chapters:\n      - file: chapters/00_preface.ipynb\n"
        "  - caption: One\n    numbered: true\n    chapters:\n"
        "      - file: chapters/01_a.ipynb\n      - file: chapters/02_b\n"
        "  - caption: Two\n    numbered: true\n    chapters:\n      - file: chapters/10_c.md\n"
        "  - caption: Appendix\n    chapters:\n      - file: chapters/91_d.ipynb\n",
        encoding="utf-8")
    assert guide.chapter_numbers(tmp_path) == {
        "chapters/01_a": 1, "chapters/02_b": 2, "chapters/10_c": 3}
    (tmp_path / "_config.yml").write_text("html:\n  use_multitoc_numbering: false\n")
    assert guide.chapter_numbers(tmp_path) == {
        "chapters/01_a": 1, "chapters/02_b": 2, "chapters/10_c": 1}
    numbers = guide.chapter_numbers(ROOT)  # this book: the file numbers skip 09, 16-19, 22-29
    assert numbers["chapters/01_vae_basics"] == 1 and numbers["chapters/10_beta_vae"] == 9
    assert numbers["chapters/21_large_scale_study"] == 16 and numbers["chapters/30_oat"] == 17
    table = dlib.course.compute_table(ROOT).markdown()
    assert "| 9. β-VAE" in table and "| 17. " in table


def test_course_plan(tmp_path: Path):
    plan = guide.course_plan(_fake_book(tmp_path))
    chapters = {topic: (part, chapter) for part, topic, chapter, _ in plan.rows}
    assert chapters["Variational autoencoders, the ELBO, β-VAE"] == (
        "Part I", "`01_vae_basics.ipynb`")  # the part's caption in _toc.yml
    assert chapters["MIG, Modularity and max-m NMI"] == (
        "Part II · Measuring disentanglement", "planned")
    # a chapter no topic names gets its own row; the guide is not a topic
    assert chapters[f"A title ({guide.NOT_PLANNED})"] == (
        "(not in the table of contents)", "`07_mig.ipynb`")
    assert len(plan.rows) == len(guide.PLAN) + 1
    assert "90_course_guide" not in plan.markdown()


def test_course_plan_of_this_book():
    """Every chapter that exists is in the plan, once, under its part in _toc.yml."""
    plan = guide.course_plan(ROOT)
    parts = guide.toc_parts(ROOT)
    cells = {topic: chapter for _, topic, chapter, _ in plan.rows}
    assert cells["BetaVAE and FactorVAE scores"] == "`05_intervention_metrics.ipynb`"
    assert cells["MIG, Modularity and max-m NMI"] == "`06_information_metrics.ipynb`"
    assert cells["DCI, SAP and Explicitness"] == "`07_predictor_metrics.ipynb`"
    assert cells["Correlated factors and intervention-based learning"] == (
        "`31_intervention.ipynb`")
    listed = [name for _, _, chapter, _ in plan.rows for name in re.findall(r"`([^`]+)`", chapter)]
    assert len(listed) == len(set(listed))
    teaching = {md.with_suffix(".ipynb").name for md in TEACHING
                if re.sub(r"^\d+_", "", md.stem) not in guide.NOT_TOPICS}
    assert set(listed) == teaching
    for part, _, chapter, _ in plan.rows:
        for name in re.findall(r"`([^`]+)`", chapter):
            assert part == parts["chapters/" + name.removesuffix(".ipynb")], (part, name)
    # the plan's own labels are _toc.yml's captions, so planned rows read like the others
    captions = set(parts.values())
    assert {part for part, *_ in guide.PLAN} <= captions


# --- command line -------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlib.course", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_student_without_names_makes_every_chapter_but_the_guide(monkeypatch):
    """`python -m dlib.course student --out DIR` hands out the chapters, not the instructor's
    guide; named explicitly, the guide still gets an edition."""
    from dlib.course import __main__ as cli

    monkeypatch.chdir(ROOT)
    chosen = cli._resolve([])
    assert [p.stem for p in chosen] == [md.stem for md in TEACHING]
    assert guide.GUIDE not in {p.stem for p in chosen}
    assert [p.stem for p in cli._resolve(["90"])] == [guide.GUIDE]


def test_cli_student_table_checks_hash_grade(tmp_path: Path):
    out = tmp_path / "handout"
    done = _cli("student", "--out", str(out), "--md", "00", str(CHAPTERS[0]))
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(out / "00_preface.ipynb", as_version=4)
    nbformat.validate(nb)
    assert (out / "00_preface.md").exists()
    assert "BEGIN SOLUTION" not in (out / "00_preface.md").read_text(encoding="utf-8")

    done = _cli("table")
    assert done.returncode == 0 and "| part | chapter |" in done.stdout

    done = _cli("checks")
    assert done.returncode == 0 and all(label in done.stdout for label in checks.CHECKS)

    done = _cli("hash", "t", "x", "100", "--rtol", "0.01")
    assert done.stdout.strip() == f'Hidden("{checks.hide("t", "x", 100.0, 0.01)}", rtol=0.01)'

    done = _cli("grade", str(ROOT / "chapters" / "00_preface.ipynb"), str(out / "00_preface.ipynb"))
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()
    assert "pre-ex-beta" in rows[0]
    assert "| passed |" in rows[2] and "| - |" in rows[3]

    done = _cli("student", "--out", str(out), "no-such-chapter")
    assert done.returncode != 0 and "no single chapter" in done.stderr


def test_grade_reads_verdicts():
    v4 = nbformat.v4
    ok = dlib.course.check("pre-ex-beta", {})
    data, meta = ok._repr_mimebundle_()
    nb = v4.new_notebook(cells=[
        v4.new_code_cell('dlib.course.check("pre-ex-beta", x)', outputs=[
            v4.new_output("execute_result", data=data, metadata=meta, execution_count=1)]),
        v4.new_code_cell('dlib.course.check("ex-a", x)', outputs=[
            v4.new_output("error", ename="NotImplementedError",
                          evalue="Your turn: exercise ex-a", traceback=[])]),
        v4.new_code_cell('dlib.course.check("ex-b", x)', outputs=[
            v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])]),
        v4.new_code_cell('dlib.course.check("ex-c", x)'),
    ])
    assert grade.verdicts(nb) == {"pre-ex-beta": "failed", "ex-a": "todo", "ex-b": "error",
                                  "ex-c": "-"}
    table = grade.markdown({"a.ipynb": grade.verdicts(nb)})
    assert "| a.ipynb | failed | todo | error | - | 0/4 |" in table
