"""The course guide's live table: chapters, exercises and compute, read from the notebooks.

Nothing here is typed in by hand. Parts and order come from ``_toc.yml``; titles and exercises
from each chapter's ``.md``; the compute from the run record that ``tools/execute.py`` stores in
each ``.ipynb`` under ``metadata.dlib.run`` (``profile``, ``device``, ``wall_s``). A notebook
holds the record of its *last* run only, so a chapter shows a number for the profile it was last
executed in; records of other profiles are read from ``metadata.dlib.runs[<profile>]`` when
present, and are otherwise reported as "not recorded".
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

PROFILES = ("quick", "full")
#: file stem of the course guide page (a notebook in chapters/, but not a chapter with exercises)
GUIDE = "90_course_guide"
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def markdown_table_html(table: str) -> str:
    """A Markdown pipe table (as the tables here write them) as an HTML table.

    The book renders notebook outputs' text/markdown as plain CommonMark, which has no tables,
    so the tables also offer HTML (which Jupyter and the book both prefer).
    """
    def inline(text: str) -> str:
        text = html.escape(text.strip())
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
        return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)

    lines = [ln for ln in table.strip().splitlines() if ln.startswith("|")]
    if len(lines) < 2:
        return f"<p>{inline(table)}</p>"
    split = [[c for c in ln.strip().strip("|").split("|")] for ln in lines]
    head = "".join(f"<th>{inline(c)}</th>" for c in split[0])
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>"
                   for row in split[2:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def book_root(start: str | Path | None = None) -> Path | None:
    """The book's root (the folder with ``_toc.yml`` and ``chapters/``), or None outside a clone.

    Looked for from ``start`` (default: the working directory) upwards, then beside the
    installed package (an editable install in a clone).
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents, _PACKAGE_ROOT):
        if (folder / "_toc.yml").exists() and (folder / "chapters").is_dir():
            return folder
    return None


def chapter_sources(root: str | Path | None = None) -> list[Path]:
    """Every chapter source ``chapters/*.md`` of the book (hidden files excluded)."""
    base = book_root(root)
    if base is None:
        return []
    return sorted(p for p in (base / "chapters").glob("*.md") if not p.name.startswith("."))


def toc_parts(root: Path) -> dict[str, str]:
    """Chapter path (``chapters/NN_x``, no suffix) -> caption of its part in ``_toc.yml``."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with jupyter-book
        return {}
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")) or {}
    found = {}
    for part in toc.get("parts", []):
        for entry in part.get("chapters", []) or []:
            if "file" in entry:
                found[re.sub(r"\.(md|ipynb)$", "", entry["file"])] = part.get("caption", "")
    return found


def chapter_numbers(root: str | Path | None = None) -> dict[str, int]:
    """Chapter path (``chapters/NN_x``, no suffix) -> the number the rendered book shows for it.

    The file numbers are not the reader's: Jupyter Book numbers the chapters of the parts marked
    ``numbered: true`` in ``_toc.yml`` 1, 2, 3, ... in order, continuing across parts (its
    ``html.use_multitoc_numbering``, on by default; when ``_config.yml`` turns it off, each part
    starts at 1). Chapters of the other parts (the preface, the course guide) have no number and
    are not in the mapping. Refer to a chapter by its title or a link; use this where a number is
    needed.
    """
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with jupyter-book
        return {}
    base = book_root(root)
    if base is None:
        return {}
    toc = yaml.safe_load((base / "_toc.yml").read_text(encoding="utf-8")) or {}
    config_file = base / "_config.yml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    continuous = ((config or {}).get("html") or {}).get("use_multitoc_numbering", True)
    numbers, n = {}, 0
    for part in toc.get("parts", []):
        if not continuous:
            n = 0
        if not part.get("numbered"):
            continue
        for entry in part.get("chapters", []) or []:
            if "file" in entry:
                n += 1
                numbers[re.sub(r"\.(md|ipynb)$", "", entry["file"])] = n
    return numbers


def run_records(ipynb: Path) -> dict[str, dict]:
    """The recorded runs of a notebook by profile (``metadata.dlib.run`` and ``.runs``)."""
    if not ipynb.exists():
        return {}
    meta = json.loads(ipynb.read_text(encoding="utf-8")).get("metadata", {}).get("dlib", {})
    records = {p: r for p, r in (meta.get("runs") or {}).items() if isinstance(r, dict)}
    run = meta.get("run")
    if isinstance(run, dict) and run.get("profile"):
        records[run["profile"]] = run
    return records


def _title(md: Path) -> str:
    m = re.search(r"^# (.+)$", md.read_text(encoding="utf-8"), re.MULTILINE)
    return m.group(1).strip() if m else md.stem


@dataclass
class ChapterRow:
    """One chapter of the table."""

    path: str
    title: str
    part: str
    exercises: int
    solved: int
    checked: int
    skeletons: int
    runs: dict[str, dict] = field(default_factory=dict)
    number: int | None = None  # the chapter number the rendered book shows, if any

    def compute(self, profile: str) -> str:
        run = self.runs.get(profile)
        if not run or not isinstance(run.get("wall_s"), (int, float)):
            return "not recorded"
        return f"{run['wall_s']:.0f} s on {run.get('device', '?')}"


@dataclass
class ComputeTable:
    """The rows of the course table; renders as Markdown in a notebook and on the terminal."""

    rows: list[ChapterRow]

    def markdown(self) -> str:
        if not self.rows:
            return "*No chapter notebooks found: this table needs a clone of the repository.*"
        head = ("| part | chapter | exercises (with a self-check, with a skeleton) "
                "| quick profile | full profile |\n|---|---|---|---|---|")
        lines = [head]
        for r in self.rows:
            title = f"{r.number}. {r.title}" if r.number else r.title
            lines.append(f"| {r.part or '(not in the table of contents)'} | {title} "
                         f"(`{r.path}`) | {r.exercises} ({r.checked}, {r.skeletons}) "
                         f"| {r.compute('quick')} | {r.compute('full')} |")
        totals = []
        for profile in PROFILES:
            walls = [r.runs[profile]["wall_s"] for r in self.rows if profile in r.runs]
            if len(walls) == len(self.rows):
                totals.append(f"{sum(walls) / 60:.1f} min")
            else:
                totals.append(f"{len(walls)} of {len(self.rows)} recorded")
        lines.append(f"| **total** | {len(self.rows)} chapters "
                     f"| {sum(r.exercises for r in self.rows)} | {totals[0]} | {totals[1]} |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        return markdown_table_html(self.markdown())

    def __str__(self) -> str:
        return self.markdown()


def compute_table(root: str | Path | None = None,
                  exclude: tuple[str, ...] = (GUIDE,)) -> ComputeTable:
    """The course table of every chapter: part, title, exercises, recorded compute per profile.

    ``exclude``: chapter file names (stems) to leave out; by default the course guide itself.
    """
    import jupytext

    from dlib.course.edition import exercises

    base = book_root(root)
    if base is None:
        return ComputeTable([])
    parts = toc_parts(base)
    numbers = chapter_numbers(base)
    rows = []
    for md in chapter_sources(base):
        if md.stem in exclude:
            continue
        found = exercises(jupytext.read(md)).values()
        key = md.relative_to(base).with_suffix("").as_posix()
        rows.append(ChapterRow(
            path=md.relative_to(base).with_suffix(".ipynb").as_posix(),
            title=_title(md),
            part=parts.get(key, ""),
            exercises=len(found),
            solved=sum(e.has_solution for e in found),
            checked=sum(e.checked for e in found),
            skeletons=sum(bool(e.skeleton_cells) for e in found),
            runs=run_records(md.with_suffix(".ipynb")),
            number=numbers.get(key),
        ))
    order = list(dict.fromkeys(parts.values()))
    rows.sort(key=lambda r: (order.index(r.part) if r.part in order else len(order), r.path))
    return ComputeTable(rows)


# --- the course plan: topics of the planned parts, and whether a chapter exists for them --------

#: (part, topic, chapter file stems without their number, in the two-week module?), after
#: DESIGN.md §5. A topic is covered by the chapters whose file ``chapters/NN_<stem>.md`` exists;
#: a part's label is the caption ``_toc.yml`` gives its chapters where they are listed there.
PLAN: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("Part I · Foundations", "Variational autoencoders, the ELBO, β-VAE", ("vae_basics",), True),
    ("Part I · Foundations", "KL decompositions (ELBO surgery, total correlation)",
     ("kl_decompositions",), True),
    ("Part II · Measuring disentanglement", "Data with ground-truth factors",
     ("ground_truth_data",), True),
    ("Part II · Measuring disentanglement", "What a disentanglement metric should measure",
     ("what_metrics_measure",), False),
    ("Part II · Measuring disentanglement", "BetaVAE and FactorVAE scores",
     ("intervention_metrics",), False),
    ("Part II · Measuring disentanglement", "MIG, Modularity and max-m NMI",
     ("information_metrics",), True),
    ("Part II · Measuring disentanglement", "DCI, SAP and Explicitness",
     ("predictor_metrics",), False),
    ("Part II · Measuring disentanglement", "IRS, unsupervised scores and UDR",
     ("irs_and_unsupervised",), False),
    ("Part III · Methods", "β-VAE and AnnealedVAE", ("beta_vae", "annealed_vae"), True),
    ("Part III · Methods", "FactorVAE", ("factor_vae",), False),
    ("Part III · Methods", "β-TCVAE", ("beta_tcvae",), False),
    ("Part III · Methods", "DIP-VAE", ("dip_vae",), False),
    ("Part III · Methods", "InfoGAN and InfoWGAN-GP", ("infogan",), False),
    ("Part IV · Limits", "The impossibility theorem", ("impossibility",), True),
    ("Part IV · Limits", "The large-scale study: seeds vs hyperparameters, model selection, "
     "downstream tasks", ("large_scale_study",), True),
    ("Part V · Beyond independence and luck", "Disentangling one factor at a time (OAT)",
     ("oat",), False),
    ("Part V · Beyond independence and luck",
     "Correlated factors and intervention-based learning", ("intervention",), False),
    ("Part V · Beyond independence and luck", "DEFT: distilling factors stage by stage",
     ("deft",), False),
)
#: chapters that are not topics of a course part: the preface, this guide, the appendix
NOT_TOPICS = ("preface", "course_guide", "engine", "cpu_scale")
NOT_PLANNED = "not in the plan"


@dataclass
class PlanTable:
    """The course plan with, per topic, the chapter that covers it or "planned"."""

    rows: list[tuple[str, str, str, bool]]

    def markdown(self) -> str:
        lines = ["| part | topic | chapter | two-week module |", "|---|---|---|---|"]
        for part, topic, chapter, short in self.rows:
            lines.append(f"| {part} | {topic} | {chapter} | {'yes' if short else ''} |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        return markdown_table_html(self.markdown())

    def __str__(self) -> str:
        return self.markdown()


def course_plan(root: str | Path | None = None) -> PlanTable:
    """The planned topics; each names the chapter files that exist for it, or says "planned".

    Read from the files: a topic's chapter is listed when ``chapters/NN_<stem>.md`` exists, a
    part is named by its caption in ``_toc.yml``, and a chapter that no topic names (other than
    the preface, this guide and the appendix) gets a row of its own, marked "not in the plan".
    """
    sources = chapter_sources(root)
    base = book_root(root)
    parts = toc_parts(base) if base is not None else {}
    by_stem = {re.sub(r"^\d+_", "", md.stem): md for md in sources}

    def part_of(md: Path) -> str:
        return parts.get(f"chapters/{md.stem}", "")

    rows, named = [], set()
    for part, topic, stems, short in PLAN:
        found = [by_stem[s] for s in stems if s in by_stem]
        named.update(stems)
        part = next((part_of(md) for md in found if part_of(md)), part)
        cell = ", ".join(f"`{md.with_suffix('.ipynb').name}`" for md in found) or "planned"
        rows.append((part, topic, cell, short))
    for stem, md in by_stem.items():
        if stem not in named and stem not in NOT_TOPICS:
            rows.append((part_of(md) or "(not in the table of contents)",
                         f"{_title(md)} ({NOT_PLANNED})", f"`{md.with_suffix('.ipynb').name}`",
                         False))
    return PlanTable(rows)
