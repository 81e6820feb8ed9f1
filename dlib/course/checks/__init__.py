"""Self-checks for the exercises: ``check(label, answer)`` says right, or what is off.

The machinery (registry, verdicts, helpers for writing checks) is :mod:`dlib.course.checks.core`;
the checks live in one module per part of the book, each registering its checks on import:

* :mod:`~dlib.course.checks.part0_getting_started` (preface),
* :mod:`~dlib.course.checks.part1_foundations` (chapters/01-02),
* :mod:`~dlib.course.checks.part2_measuring` (chapters/03-08),
* :mod:`~dlib.course.checks.part3_methods` (chapters/10-15),
* :mod:`~dlib.course.checks.part4_limits` (chapters/20_impossibility),
* :mod:`~dlib.course.checks.part5_beyond` (chapters/30-32),
* :mod:`~dlib.course.checks.part9_appendix` (chapters/91_engine).

A new check goes into its part's module with ``@exercise_check(label, answer=...)``; its wrong
answers go into ``tests/course_wrong/<the same module name>.py``.
"""

from dlib.course.checks import (  # noqa: F401  (imported to register their checks)
    part0_getting_started,
    part1_foundations,
    part2_measuring,
    part3_methods,
    part4_limits,
    part5_beyond,
    part9_appendix,
)
from dlib.course.checks.core import (
    ANSWER_FORMS,
    CHECKS,
    CheckResult,
    Hidden,
    WrongForm,
    as_array,
    as_number,
    check,
    compare,
    exercise_check,
    hide,
    parts,
    results,
)

__all__ = ["ANSWER_FORMS", "CHECKS", "CheckResult", "Hidden", "WrongForm", "as_array",
           "as_number", "check", "compare", "exercise_check", "hide", "parts", "results"]
