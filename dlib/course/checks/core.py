"""Self-checks for the exercises: ``check(label, answer)`` says right, or what is off.

A check is a function of the learner's answer registered under the exercise's label (labels are
unique book-wide, e.g. ``"ex-vae-kl-multivariate"``). It either recomputes what it needs from
the libraries (the KL of given inputs with ``torch.distributions``, say) or compares numbers
against *hidden* targets: a salted hash of the value's bucket on a log scale, so the expected
number does not appear in this file. Feedback names what is off (a missing key, a shape, a sign,
a constant factor, a known mistake, a tolerance) without printing the expected value.

This is a teaching aid, not an exam system: the book is public and shows every solution in a
dropdown, and anyone who loops over candidate values can recover a hidden number from its hash.
The hashes only keep the answer from being read off the check's source at a glance.

Holds the registry (:data:`CHECKS`, :data:`ANSWER_FORMS`, :func:`exercise_check`), the entry
points :func:`check` and :func:`results` with :class:`CheckResult`, and the helpers that checks
are written with: :class:`WrongForm`, :func:`parts`, :func:`as_number`, :func:`as_array`,
:func:`hide` / :class:`Hidden` and :func:`compare`. The checks themselves live in one module per
part of the book (:mod:`dlib.course.checks`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_SALT = "dlib.course/v1"
_BUCKETS_PER_RTOL = 10  # a hidden value passes within about rtol (between 0.9 and 1.1 rtol)

#: label -> check function; filled by :func:`exercise_check`
CHECKS: dict[str, Callable[[Any], list[str]]] = {}
#: label -> one line saying what the answer must be (shown when the answer has the wrong form)
ANSWER_FORMS: dict[str, str] = {}
_RESULTS: dict[str, CheckResult] = {}


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check. True when right; displays as one line in a notebook.

    The notebook output also carries ``{"dlib": {"check": {...}}}`` in its metadata, which
    ``python -m dlib.course grade`` reads back from executed notebooks.
    """

    label: str
    passed: bool
    problems: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.passed

    @property
    def message(self) -> str:
        if self.passed:
            return "correct."
        return "not yet: " + " ".join(self.problems)

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        return f"{mark} {self.label}: {self.message}"

    __repr__ = __str__

    def _repr_mimebundle_(self, include=None, exclude=None):
        meta = {"dlib": {"check": {"label": self.label, "passed": self.passed}}}
        return {"text/plain": str(self)}, meta


def exercise_check(label: str, answer: str) -> Callable:
    """Register ``fn(answer) -> list of problems`` (empty when right) as the check of ``label``."""

    def register(fn: Callable[[Any], list[str]]) -> Callable[[Any], list[str]]:
        if label in CHECKS:
            raise ValueError(f"a check for exercise {label!r} is already registered")
        CHECKS[label] = fn
        ANSWER_FORMS[label] = answer
        return fn

    return register


def check(label: str, answer: Any) -> CheckResult:
    """Check the answer to exercise ``label``; returns a :class:`CheckResult` (true when right).

    Call it as the last line of the exercise's cell so that the notebook shows the verdict.
    ``NotImplementedError`` raised by the learner's code (the "your turn" stub) propagates.
    """
    if label not in CHECKS:
        known = ", ".join(sorted(CHECKS)) or "none"
        raise KeyError(f"no self-check for exercise {label!r}; exercises with checks: {known}")
    try:
        problems = list(CHECKS[label](answer))
    except NotImplementedError:
        raise
    except WrongForm as err:
        problems = [f"{err} Expected {ANSWER_FORMS[label]}."]
    result = CheckResult(label, not problems, tuple(problems))
    _RESULTS[label] = result
    return result


def results() -> dict[str, CheckResult]:
    """The latest result of every check called in this Python session, by label."""
    return dict(_RESULTS)


# --- helpers for writing checks -----------------------------------------------------------------


class WrongForm(ValueError):
    """The answer does not have the form the exercise asks for (missing key, not a number, ...)."""


def parts(answer: Any, keys: Iterable[str]) -> dict[str, Any]:
    """The named parts of a dict answer; a clear message when one is missing."""
    keys = list(keys)
    if not isinstance(answer, Mapping):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a dict.")
    missing = [k for k in keys if k not in answer]
    if missing:
        raise WrongForm(f"The answer lacks {', '.join(map(repr, missing))}.")
    return {k: answer[k] for k in keys}


def as_number(value: Any, name: str) -> float:
    """A Python float from a number, a NumPy scalar or a one-element array or tensor."""
    shape = tuple(getattr(value, "shape", ()))
    if shape and math.prod(shape) != 1:
        raise WrongForm(f"{name} should be a single number, not an array of shape {shape}.")
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        kind = type(value).__name__
        raise WrongForm(f"{name} should be a number, not of type {kind}.") from None
    if not math.isfinite(number):
        raise WrongForm(f"{name} is {number}.")
    return number


def as_array(value: Any, name: str):
    """A float64 NumPy array from a list, array or tensor (detached, on the CPU)."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise WrongForm(f"{name} should be an array of numbers, "
                         f"not of type {type(value).__name__}.") from None
    return array


def _bucket(value: float, rtol: float) -> tuple[str, int]:
    width = math.log1p(rtol) / _BUCKETS_PER_RTOL
    if value == 0:
        return "0", 0
    return ("+" if value > 0 else "-"), round(math.log(abs(value)) / width)


def _digest(label: str, name: str, sign: str, bucket: int) -> str:
    text = f"{_SALT}|{label}|{name}|{sign}|{bucket}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def hide(label: str, name: str, value: float, rtol: float) -> str:
    """The digest that stores ``value`` for :class:`Hidden` (``python -m dlib.course hash``)."""
    sign, bucket = _bucket(float(value), rtol)
    return _digest(label, name, sign, bucket)


def _matches(label: str, name: str, value: float, digest: str, rtol: float) -> bool:
    sign, bucket = _bucket(value, rtol)
    return any(_digest(label, name, sign, bucket + k) == digest
               for k in range(-_BUCKETS_PER_RTOL, _BUCKETS_PER_RTOL + 1))


@dataclass(frozen=True)
class Hidden:
    """A number stored as a digest: ``value`` passes when within about ``rtol`` of the target.

    ``mistakes`` maps digests of known wrong answers (made with :func:`hide` under the same
    label, name and rtol) to a hint. ``positive`` says the quantity cannot be negative.
    """

    digest: str
    rtol: float = 1e-3
    mistakes: Mapping[str, str] = field(default_factory=dict)
    positive: bool = False

    def problems(self, label: str, name: str, value: float) -> list[str]:
        if _matches(label, name, value, self.digest, self.rtol):
            return []
        if _matches(label, name, -value, self.digest, self.rtol):
            return [f"{name} has the wrong sign."]
        for digest, hint in self.mistakes.items():
            if _matches(label, name, value, digest, self.rtol):
                return [f"{name} = {value:.6g} is a known mistake: {hint}"]
        if self.positive and value <= 0:
            return [f"{name} = {value:.6g}, but it must be positive."]
        for factor in (2.0, 0.5, 10.0, 0.1):
            if _matches(label, name, value * factor, self.digest, self.rtol):
                return [f"{name} = {value:.6g} is off by a constant factor of "
                        f"{1 / factor:g}."]
        return [f"{name} = {value:.6g} is not within {self.rtol:.0e} (relative) "
                "of the expected value."]


def compare(answer: Any, expected: Any, name: str = "the answer", rtol: float = 1e-5,
            atol: float = 1e-8, max_listed: int = 3) -> list[str]:
    """Problems of an array answer against a recomputed ``expected`` array (empty when close).

    Says what is off: the type, the shape, non-finite entries, a flipped sign, a constant factor,
    or which entries differ, and by how much.
    """
    import numpy as np

    got, want = as_array(answer, name), as_array(expected, "expected")
    if got.shape != want.shape:
        return [f"{name} has shape {got.shape}; it should have shape {want.shape}."]
    if not np.all(np.isfinite(got)):
        return [f"{name} has {int((~np.isfinite(got)).sum())} non-finite entries (nan or inf)."]
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    if close.all():
        return []
    if np.allclose(-got, want, rtol=rtol, atol=atol):
        return [f"{name} has the wrong sign."]
    nonzero = np.abs(want) > atol
    if nonzero.any():
        ratios = got[nonzero] / want[nonzero]
        if np.allclose(ratios, ratios.flat[0], rtol=1e-3) and np.allclose(
                got[~nonzero], 0, atol=atol):
            return [f"{name} is off by a constant factor of {ratios.flat[0]:.4g}."]
    bad = np.argwhere(~close)
    listed = ", ".join(str(tuple(int(i) for i in idx)) if got.ndim else "()"
                       for idx in bad[:max_listed])
    worst = float(np.max(np.abs(got - want)))
    return [f"{name} differs in {len(bad)} of {got.size} entries (e.g. at {listed}); the "
            f"largest difference is {worst:.3g} (tolerance rtol={rtol:g}, atol={atol:g})."]
