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
    except _WrongForm as err:
        problems = [f"{err} Expected {ANSWER_FORMS[label]}."]
    result = CheckResult(label, not problems, tuple(problems))
    _RESULTS[label] = result
    return result


def results() -> dict[str, CheckResult]:
    """The latest result of every check called in this Python session, by label."""
    return dict(_RESULTS)


# --- helpers for writing checks -----------------------------------------------------------------


class _WrongForm(ValueError):
    """The answer does not have the form the exercise asks for (missing key, not a number, ...)."""


def parts(answer: Any, keys: Iterable[str]) -> dict[str, Any]:
    """The named parts of a dict answer; a clear message when one is missing."""
    keys = list(keys)
    if not isinstance(answer, Mapping):
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a dict.")
    missing = [k for k in keys if k not in answer]
    if missing:
        raise _WrongForm(f"The answer lacks {', '.join(map(repr, missing))}.")
    return {k: answer[k] for k in keys}


def as_number(value: Any, name: str) -> float:
    """A Python float from a number, a NumPy scalar or a one-element array or tensor."""
    shape = tuple(getattr(value, "shape", ()))
    if shape and math.prod(shape) != 1:
        raise _WrongForm(f"{name} should be a single number, not an array of shape {shape}.")
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        kind = type(value).__name__
        raise _WrongForm(f"{name} should be a number, not of type {kind}.") from None
    if not math.isfinite(number):
        raise _WrongForm(f"{name} is {number}.")
    return number


def as_array(value: Any, name: str):
    """A float64 NumPy array from a list, array or tensor (detached, on the CPU)."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _WrongForm(f"{name} should be an array of numbers, "
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


# --- the checks, by chapter ---------------------------------------------------------------------

# Preface ----------------------------------------------------------------------------------------

@exercise_check("pre-ex-beta", answer="a dict with 'beta_sum_shapes' and 'beta_mean_dsprites'")
def _pre_ex_beta(answer: Any) -> list[str]:
    values = {k: as_number(v, k)
              for k, v in parts(answer, ("beta_sum_shapes", "beta_mean_dsprites")).items()}
    targets = {
        "beta_sum_shapes": Hidden(
            "a51aadc78bf1dec6048d", positive=True, mistakes={
                "a1321093a6b6841b5291": "that is the conversion in the other direction "
                                        "(β_mean from β_sum).",
                "af00c568a7c9c3f0ef01": "count all three colour channels in P = H·W·C.",
            }),
        "beta_mean_dsprites": Hidden(
            "e59fb761510755b61ee5", positive=True, mistakes={
                "ff2281ce0132e54eb136": "that is the conversion in the other direction "
                                        "(β_sum from β_mean).",
            }),
    }
    return [p for key, hidden in targets.items()
            for p in hidden.problems("pre-ex-beta", key, values[key])]


# Chapter 1: variational autoencoders -----------------------------------------------------------

@exercise_check("ex-vae-kl-multivariate",
                answer="a function kl(m, Sigma) of a mean of shape (D,) and a covariance of "
                       "shape (D, D) (float64 tensors) that returns one number")
def _ex_vae_kl_multivariate(answer: Any) -> list[str]:
    import torch

    if not callable(answer):
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    g = torch.Generator().manual_seed(2024)
    f64 = {"dtype": torch.float64}

    def full(d):
        a = torch.randn(d, d, generator=g, **f64)
        return torch.randn(d, generator=g, **f64), a @ a.T + 0.2 * torch.eye(d, **f64)

    def diagonal(d):
        return (torch.randn(d, generator=g, **f64),
                torch.diag(torch.rand(d, generator=g, **f64) * 2 + 0.1))

    cases = {
        "μ = 0, Σ = I (D = 2)": ("trivial", (torch.zeros(2, **f64), torch.eye(2, **f64))),
        "diagonal Σ (D = 1)": ("diagonal", diagonal(1)),
        "diagonal Σ (D = 4)": ("diagonal", diagonal(4)),
        "μ = 0, full Σ (D = 3)": ("zero-mean", (torch.zeros(3, **f64), full(3)[1])),
        "full Σ (D = 3)": ("full", full(3)),
        "full Σ (D = 5)": ("full", full(5)),
    }
    got, want = {}, {}
    for case, (_, (m, cov)) in cases.items():
        q = torch.distributions.MultivariateNormal(m, cov)
        p = torch.distributions.MultivariateNormal(torch.zeros_like(m), torch.eye(len(m), **f64))
        want[case] = torch.distributions.kl_divergence(q, p).item()
        try:
            out = answer(m.clone(), cov.clone())
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure of the learner's code
            return [f"For {case} your function raised {type(err).__name__}: {err}"]
        got[case] = as_number(out.detach() if hasattr(out, "detach") else out,
                              f"The value for {case}")
    wrong = [c for c in cases if not math.isclose(got[c], want[c], rel_tol=1e-6, abs_tol=1e-9)]
    if not wrong:
        return []
    kinds = {cases[c][0] for c in wrong}
    nonzero = [c for c in cases if abs(want[c]) > 1e-9]
    ratios = [got[c] / want[c] for c in nonzero]
    diffs = [got[c] - want[c] for c in cases]
    if all(math.isclose(r, -1, rel_tol=1e-6) for r in ratios):
        return ["Your KL has the wrong sign (a KL divergence is never negative)."]
    if all(math.isclose(r, ratios[0], rel_tol=1e-6) for r in ratios):
        return [f"Your KL is off by a constant factor of {ratios[0]:.4g}."]
    if all(math.isclose(d, diffs[0], abs_tol=1e-6) for d in diffs):
        return [f"Your KL is off by a constant {diffs[0]:+.4g} for every input."]
    per_dim = [d / len(cases[c][1][0]) for c, d in zip(cases, diffs, strict=True)]
    if all(math.isclose(x, per_dim[0], abs_tol=1e-6) for x in per_dim):
        return [f"Your KL is off by {per_dim[0]:+.4g} per dimension: check the constant term."]
    example = wrong[0]
    hint = ""
    if kinds <= {"full", "zero-mean"}:
        hint = (" It is right for diagonal covariances but not for full ones: use the whole "
                "matrix (its trace and log-determinant), not only its diagonal.")
    elif "trivial" not in kinds and "zero-mean" not in kinds and "full" in kinds:
        hint = " It is right when μ = 0: check the term in μ."
    return [f"Your KL differs from the exact one for {len(wrong)} of {len(cases)} test inputs, "
            f"e.g. for {example} you return {got[example]:.6g}, the KL is {want[example]:.6g}."
            + hint]


@exercise_check("ex-vae-reparam-variance",
                answer="a dict with 'reparam' and 'score', each a 1-D array or tensor of "
                       "single-sample estimates of the derivative with respect to μ")
def _ex_vae_reparam_variance(answer: Any) -> list[str]:
    import numpy as np

    mu, min_samples = 0.7, 100_000
    estimates = {k: as_array(v, k) for k, v in parts(answer, ("reparam", "score")).items()}
    targets = {
        "reparam": Hidden("cbc6a623af3b3fa22772", rtol=0.05, positive=True),
        "score": Hidden("e9972e4cda9cb9622ad9", rtol=0.1, positive=True),
    }
    problems = []
    for name, x in estimates.items():
        if x.ndim != 1:
            problems.append(f"{name} should be a 1-D array of per-sample estimates, "
                            f"not shape {x.shape}.")
            continue
        if len(x) < min_samples:
            problems.append(f"{name} has {len(x):,} samples; use at least {min_samples:,} "
                            "(the variance of a variance estimate is large).")
            continue
        if not np.all(np.isfinite(x)):
            problems.append(f"{name} has non-finite entries.")
            continue
        mean, se = x.mean(), x.std() / math.sqrt(len(x))
        if abs(mean - 2 * mu) > 5 * se:
            problems.append(f"{name} has mean {mean:.4f} ± {se:.4f}, but both estimators are "
                            f"unbiased for the exact derivative 2μ = {2 * mu:g}.")
            continue
        problems += targets[name].problems("ex-vae-reparam-variance", f"the variance of {name}",
                                           float(x.var()))
    return problems
