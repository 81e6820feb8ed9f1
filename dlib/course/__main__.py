"""Command line of dlib.course; ``python -m dlib.course --help``.

    python -m dlib.course student --out DIR [--md] [CHAPTER ...]   student editions (default:
                                                                    every chapter but the guide)
    python -m dlib.course table                                     course table (Markdown)
    python -m dlib.course grade [--execute] NOTEBOOK ...            verdicts of the self-checks
    python -m dlib.course checks                                    exercises with a self-check
    python -m dlib.course hash LABEL NAME VALUE [--rtol R]          store a hidden answer
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _resolve(names: list[str]) -> list[Path]:
    """Chapter paths from paths or bare names (``01_vae_basics``, ``01``).

    No names: every chapter except the instructor's course guide (name it to get its edition).
    """
    from dlib.course.guide import GUIDE, chapter_sources

    known = chapter_sources()
    if not names:
        return [p for p in known if p.stem != GUIDE]
    found = []
    for name in names:
        path = Path(name)
        if path.with_suffix(".md").exists() or path.with_suffix(".ipynb").exists():
            found.append(path)
            continue
        matches = [p for p in known if p.stem == name or p.stem.startswith(f"{name}_")]
        if len(matches) != 1:
            raise SystemExit(f"dlib.course: no single chapter matches {name!r}")
        found.append(matches[0])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlib.course",
                                     description="Student editions, self-checks, course table.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("student", help="write student editions (solutions removed, stubs)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--md", action="store_true", help="also write a paired MyST .md")
    p.add_argument("chapters", nargs="*",
                   help="chapter files or names; default: all but the course guide")
    sub.add_parser("table", help="print the course table (chapters, exercises, compute)")
    p = sub.add_parser("grade", help="tabulate the self-check verdicts of notebooks")
    p.add_argument("--execute", action="store_true",
                   help="re-run each notebook in a fresh kernel first (runs students' code!)")
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout (s)")
    p.add_argument("notebooks", nargs="+", type=Path)
    sub.add_parser("checks", help="list the exercises that have a self-check")
    p = sub.add_parser("hash", help="digest of a hidden answer, for a check in dlib/course/checks/")
    p.add_argument("label")
    p.add_argument("name")
    p.add_argument("value", type=float)
    p.add_argument("--rtol", type=float, default=1e-3)
    args = parser.parse_args(argv)

    if args.command == "student":
        from dlib.course.edition import EditionError, write_student_edition

        failures = 0
        for chapter in _resolve(args.chapters):
            try:
                for path in write_student_edition(chapter, args.out, md=args.md):
                    print(path)
            except EditionError as err:
                print(f"dlib.course: {err}", file=sys.stderr)
                failures += 1
        return 1 if failures else 0
    if args.command == "table":
        from dlib.course.guide import compute_table

        print(compute_table())
        return 0
    if args.command == "grade":
        from dlib.course.grade import grade, markdown

        print(markdown(grade(args.notebooks, run=args.execute, timeout=args.timeout)))
        return 0
    if args.command == "checks":
        from dlib.course.checks import ANSWER_FORMS

        for label, form in sorted(ANSWER_FORMS.items()):
            print(f"{label}: {form}")
        return 0
    from dlib.course.checks import hide

    digest = hide(args.label, args.name, args.value, args.rtol)
    print(f'Hidden("{digest}", rtol={args.rtol:g})')
    return 0


if __name__ == "__main__":
    sys.exit(main())
