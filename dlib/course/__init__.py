"""The book as a course: student editions, self-checking exercises, the course table.

``dlib.course.check(label, answer)`` is what a learner calls at the end of an exercise cell; it
needs nothing beyond dlib's own dependencies (it works on Colab). Everything else (student
editions, the course table, grading) reads notebooks and needs the ``book`` extra.

Conventions for authors (the course guide, chapters/90_course_guide.md, says the same)
-------------------------------------------------------------------------------------
* **Exercises** are ``{exercise}`` directives with a ``:label:`` unique in the book; each has a
  full solution between ``{solution-start} <label>`` (``:class: dropdown``) and
  ``{solution-end}``, so the public book shows it behind a toggle. Every chapter has at least
  three exercises across levels (check of understanding, derivation, small experiment), each
  marked in bold at its start, e.g. ``**(Derivation.)**``.
* **Solution code** cells inside the region are tagged ``solution``: removed from the student
  edition.
* **Exercise skeletons** are code cells tagged ``exercise`` *inside* the solution region (the
  book shows their full code in the dropdown). The part the learner writes lies between
  ``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines (nbgrader's markers); the student edition
  replaces each such region by ``raise NotImplementedError("Your turn: exercise <label> ...")``
  and keeps the lines around it, typically set-up above and the check call below. A skeleton
  runs with only the chapter's import cells before it, when it can (tests execute it so).
* **Self-checks**: the skeleton's last line is ``dlib.course.check("<label>", answer)``; the check
  is registered with ``exercise_check`` in its part's module of :mod:`dlib.course.checks`
  (e.g. ``part3_methods``), and ``tests/course_wrong/`` (the file of the same name) lists at
  least one wrong answer for it. Checks recompute what they
  need (e.g. a KL with ``torch.distributions``) or compare with a ``Hidden``
  digest (``python -m dlib.course hash LABEL NAME VALUE --rtol R`` prints one), so the expected
  number never appears in the student edition or in the check's source. Trade-off, stated
  honestly: the book is public and its solutions are in dropdowns, and a loop over candidate
  values recovers a hidden number from its digest; the digests only stop spoilers at a glance.

Design decisions
----------------
* The student edition is generated from the ``.md`` (the reviewed source) combined with the
  outputs stored in the ``.ipynb``; it is written as ``.ipynb`` (and optionally a paired ``.md``),
  keeps the Colab set-up cell and every output of the cells it keeps. See
  :mod:`dlib.course.edition` for the exact rules.
* Stubs are tagged ``raises-exception``: JupyterLab's and the classic notebook's "Run all",
  nbclient and nbval go on past an unsolved exercise, so a learner sees every "Your turn" error
  at once; Colab ignores the tag and stops at the first stub, after the chapter's main text has
  run. The error is raised where the learner's code is missing, never later.
* Verdicts are displayed as one line (``✓ label: correct.`` / ``✗ label: not yet: ...``) and carry
  machine-readable metadata that ``python -m dlib.course grade`` collects.
"""

from dlib.course.checks import CHECKS, CheckResult, Hidden, check, results
from dlib.course.guide import compute_table

__all__ = ["CHECKS", "CheckResult", "Hidden", "check", "compute_table", "results",
           "student_notebook", "write_student_edition"]


def __getattr__(name):  # the notebook tools need nbformat/jupytext: import them on demand
    if name in ("student_notebook", "write_student_edition", "read_chapter", "exercises"):
        from dlib.course import edition

        return getattr(edition, name)
    raise AttributeError(f"module 'dlib.course' has no attribute {name!r}")
