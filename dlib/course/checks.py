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


# chapters/01_vae_basics: variational autoencoders ----------------------------------------------

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


# chapters/02_kl_decompositions: KL decompositions ----------------------------------------------

@exercise_check("ex-kld-mws-constant",
                answer="a dict with 'tc_mws' and 'tc_free', the MWS estimate of TC on the given "
                       "batch and the same estimate without the constant (numbers)")
def _ex_kld_mws_constant(answer: Any) -> list[str]:
    values = {k: as_number(v, k) for k, v in parts(answer, ("tc_mws", "tc_free")).items()}
    targets = {
        "tc_mws": Hidden(
            "de22254bb84d3c493074", rtol=1e-4, positive=True, mistakes={
                "65d5d7e19a04f33943f7": "the aggregate term also carries a −log N: the "
                                        "result has D − 1 copies of log N, not D.",
            }),
        "tc_free": Hidden(
            "4f42b7e1e73c1ce15c37", rtol=1e-4, mistakes={
                "4ec98c6783af532163bb": "count the log M terms: the joint's one and the D "
                                        "marginals' leave D − 1 of them, not D.",
                "fbf193c7ed6f0caaabbf": "subtract (D − 1) log(NM) from the MWS estimate, not "
                                        "from zero.",
            }),
    }
    return [p for key, hidden in targets.items()
            for p in hidden.problems("ex-kld-mws-constant", key, values[key])]


# chapters/03_ground_truth_data: ground-truth data ----------------------------------------------

@exercise_check("ex-gt-orientations",
                answer="a dict mapping (shape name, scale) for every name in "
                       "dsprites.SHAPE_NAMES and scales 1.0 and 0.5 to a number of distinct images")
def _ex_gt_orientations(answer: Any) -> list[str]:
    import torch

    import dlib.data
    from dlib.data import dsprites

    data = dlib.data.load("dsprites")
    angles, centre = data.factor_values[2], data.factor_values[3][16]
    keys = [(name, scale) for name in dsprites.SHAPE_NAMES for scale in (1.0, 0.5)]
    got = {k: as_number(v, f"counts[{k[0]!r}, {k[1]}]") for k, v in parts(answer, keys).items()}
    problems = []
    for s, name in enumerate(dsprites.SHAPE_NAMES):
        for scale in (1.0, 0.5):
            value = got[name, scale]
            img = dsprites.render_dsprites(s, scale, angles, centre, centre, device="cpu")
            want = len(torch.unique(img.reshape(len(angles), -1), dim=0))
            if value == want:
                continue
            where = f"counts[{name!r}, {scale}] = {value:g}"
            if value >= len(angles):
                problems.append(f"{where}, but orientation classes 0 and 39 are the same angle "
                                "(0 and 2π), so there are at most 39 distinct images.")
            elif value < 3:
                problems.append(f"{where} is far too small: count distinct whole images "
                                "(rows of the images flattened to (40, 4096), "
                                "torch.unique(..., dim=0)), not distinct pixel values.")
            elif value > want:
                problems.append(f"{where} is too large: some of these images are identical "
                                "pixel for pixel; compare whole rasterised images.")
            else:
                problems.append(f"{where} is too small: use the 40 orientation values of "
                                "factor 2 and the centre position class 16 for x and y.")
    return problems


# chapters/20_impossibility: the impossibility theorem ------------------------------------------

@exercise_check("ex-imp-involution",
                answer="a dict with 'A' (the 3 × 3 Householder matrix for α = 0.3), 'once' "
                       "(f(z3)) and 'twice' (f(f(z3))), arrays or tensors")
def _ex_imp_involution(answer: Any) -> list[str]:
    import numpy as np
    import torch

    from dlib import theory

    got = {k: as_array(v, k) for k, v in parts(answer, ("A", "once", "twice")).items()}
    dist = theory.Factorised([theory.Uniform(0, 1)] * 3)
    z = dist.sample(1_000, torch.Generator().manual_seed(3))
    A = theory.householder(3, 0.3)
    once = theory.entangle(z, dist, A)
    if got["A"].shape == (3, 3) and np.all(np.isfinite(got["A"])):
        a = got["A"]
        if not np.allclose(a, a.T, atol=1e-9):
            return ["A is not symmetric: A = I − 2vvᵀ is."]
        if not np.allclose(a @ a, np.eye(3), atol=1e-9):
            return ["A·A is not the identity: check that v has unit norm and the factor 2 in "
                    "A = I − 2vvᵀ."]
    problems = compare(got["A"], A, "A", rtol=1e-9, atol=1e-12)
    if problems:
        return problems + ["Use v₁ = √α and vᵢ = √((1 − α)/(d − 1)) for i ≥ 2, with α = 0.3."]
    z_np = z.numpy()
    if got["once"].shape == z_np.shape and np.allclose(got["once"], z_np, atol=1e-12):
        return ["once equals z3: apply f (theory.entangle) to it."]
    problems = compare(got["once"], once, "once", rtol=1e-7, atol=1e-9)
    if got["twice"].shape == z_np.shape and np.allclose(got["twice"], once.numpy(), atol=1e-12):
        problems.append("twice equals once: apply f a second time, to once.")
    else:
        problems += compare(got["twice"], z, "twice", rtol=1e-7, atol=1e-9)
    return problems


# chapters/05_intervention_metrics: intervention metrics ---------------------------------------

@exercise_check("ex-m05-duplicated",
                answer="the vote matrix, an array of shape (5, 6) (factors × codes) of vote "
                       "counts from 1,000 votes")
def _ex_m05_duplicated(answer: Any) -> list[str]:
    import numpy as np

    votes = as_array(answer, "votes")
    if votes.shape == (6, 5):
        return ["votes has shape (6, 5): rows are the 5 factors, columns the 6 codes."]
    if votes.shape != (5, 6):
        raise _WrongForm(f"votes has shape {votes.shape}.")
    if not np.all(np.isfinite(votes)) or np.any(votes < 0) or np.any(votes != np.round(votes)):
        return ["votes should hold counts: non-negative whole numbers."]
    if votes.sum() != 1000:
        return [f"votes holds {votes.sum():g} votes; the exercise asks for 1,000."]
    problems = []
    if votes[:, 5].sum() > 0:
        problems.append("the copy z5 receives votes: when shape is fixed, z0 and z5 both have "
                        "zero variance, and the argmin takes the first of them.")
    if np.any(votes[:, :5] != np.diag(np.diag(votes[:, :5]))):
        problems.append("there are votes off the diagonal: fixing factor k freezes code k of "
                        "this code, while the other codes keep their variance.")
    expected, spread = 1000 / 5, 5 * math.sqrt(1000 * 0.2 * 0.8)
    rows = votes.sum(1)
    if not problems and np.any(np.abs(rows - expected) > spread):
        problems.append(f"the factors received {rows.astype(int).tolist()} votes; each vote "
                        "fixes a factor drawn uniformly, so about 200 each.")
    return problems


# chapters/06_information_metrics: information metrics ----------------------------------------

@exercise_check("ex-m06-ceiling",
                answer="an array of shape (99,): the normalised ceiling I / log K for "
                       "K = 2, ..., 100")
def _ex_m06_ceiling(answer: Any) -> list[str]:
    import numpy as np

    from dlib.metrics import histogram_discretize

    ceilings = as_array(answer, "ceilings")
    ks = np.arange(2, 101)
    if ceilings.shape != ks.shape:
        raise _WrongForm(f"ceilings has shape {ceilings.shape}.")

    def normalised_entropy(bins, k):
        p = np.bincount(bins) / k
        p = p[p > 0]
        return -(p * np.log(p)).sum() / np.log(k)

    # dlib's bins, and exact arithmetic (they differ where c / (K - 1) lies on a bin edge)
    binned = np.array([normalised_entropy(histogram_discretize(
        (np.arange(k) / (k - 1))[:, None])[:, 0], k) for k in ks])
    exact = np.array([normalised_entropy(np.minimum(20 * np.arange(k) // (k - 1), 19), k)
                      for k in ks])
    ok = np.isclose(ceilings, binned, rtol=1e-6, atol=1e-9) | np.isclose(
        ceilings, exact, rtol=1e-6, atol=1e-9)
    if ok.all():
        return []
    logk = np.log(ks)
    if np.allclose(ceilings, binned * logk, rtol=1e-6) or np.allclose(ceilings, exact * logk,
                                                                       rtol=1e-6):
        return ["ceilings are in nats: divide each by log K."]
    if np.allclose(ceilings[ks > 20], 1):
        return ["for K > 20 there are more classes than bins, so some classes share a bin and "
                "the ceiling is below 1."]
    bad = ks[~ok]
    small = bad[bad <= 20]
    if len(small):
        return [f"the ceiling for K = {int(small[0])} should be 1: with K ≤ 20 every class "
                "has its own bin."]
    return [f"ceilings differ from the entropy of the bin occupancy for {len(bad)} values of "
            f"K, e.g. K = {int(bad[0])}: class c has value c / (K − 1) and falls into one of "
            "20 equal-width bins of [0, 1]."]


# chapters/07_predictor_metrics: predictor metrics ---------------------------------------------

@exercise_check("ex-m07-two-in-one", answer="a dict with 'D' and 'C', two numbers")
def _ex_m07_two_in_one(answer: Any) -> list[str]:
    values = {k: as_number(v, k) for k, v in parts(answer, ("D", "C")).items()}
    swapped = "that is the other score: rows of R are codes, columns factors."
    targets = {
        "D": Hidden("c18f6d9364e8585b8aee", rtol=1e-4, positive=True, mistakes={
            "abdc91311a4fa2221ab5": "a plain mean over all five codes; weight each code by "
                                    "its share ρᵢ of the total importance.",
            "3910e8b267840d921598": "a plain mean over the four live codes; weight each code "
                                    "by its share ρᵢ of the total importance.",
            "1dfd95e21fa6cbce16d2": swapped,
        }),
        "C": Hidden("8e8d1628da17c0bdce75", rtol=1e-4, positive=True, mistakes={
            "b84311628beddc7cdf49": swapped,
        }),
    }
    return [p for key, hidden in targets.items()
            for p in hidden.problems("ex-m07-two-in-one", key, values[key])]


# chapters/04_what_metrics_measure: what metrics measure ---------------------------------------

@exercise_check("ex-m04-binning-symmetries",
                answer="a dict with 'identity', '3z - 7', '-2z + 1' and 'exp(3z)', each the "
                       "diagonal (shape (5,)) of that code's MI matrix with the factors, in nats")
def _ex_m04_binning_symmetries(answer: Any) -> list[str]:
    import numpy as np

    from dlib.metrics import mutual_info_matrix
    from dlib.metrics.toy import DSPRITES_SIZES, FactorsAsObservations

    names = ("identity", "3z - 7", "-2z + 1", "exp(3z)")
    got = parts(answer, names)
    y = FactorsAsObservations(DSPRITES_SIZES).sample_factors(5000, np.random.RandomState(0))
    z = y / (np.array(DSPRITES_SIZES) - 1.0)
    codes = dict(zip(names, (z, 3 * z - 7, -2 * z + 1, np.exp(3 * z)), strict=True))
    want = {name: np.diag(mutual_info_matrix(code, y)) for name, code in codes.items()}
    problems = []
    identity_right = not compare(got["identity"], want["identity"], rtol=1e-6, atol=1e-9)
    for name in names:
        found = compare(got[name], want[name], f"the diagonal for {name!r}", rtol=1e-6,
                        atol=1e-9)
        value = as_array(got[name], name)
        if not found or value.shape != (5,):
            problems += found
        elif name == "exp(3z)" and np.allclose(value, want["identity"], rtol=1e-6):
            problems.append("the diagonal for 'exp(3z)' equals the identity's: bin exp(3z) "
                            "itself, with equal-width bins of its own range.")
        elif name != "identity" and identity_right and name != "exp(3z)":
            problems += found + [f"{name} is an affine map of z with a ≠ 0: the bin edges move "
                                 "with the values, so the MI should not change."]
        else:
            problems += found
    return problems


# chapters/08_irs_and_unsupervised: IRS and unsupervised scores ---------------------------------

@exercise_check("ex-m08-tc-noise",
                answer="an array of shape (1000,): TC(Σ) − TC(Σ + Λ) for each of the given "
                       "pairs, in order")
def _ex_m08_tc_noise(answer: Any) -> list[str]:
    import numpy as np

    def gaussian_tc(cov):  # sum of the marginal entropies minus the joint entropy, in nats
        return 0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1])

    rs = np.random.RandomState(0)
    want = []
    for _ in range(1000):
        a = rs.standard_normal((6, 6))
        sigma = a @ a.T + 1e-3 * np.eye(6)
        lam = np.diag(rs.exponential(size=6) * rs.binomial(1, 0.7, size=6))
        want.append(gaussian_tc(sigma) - gaussian_tc(sigma + lam))
    gaps = as_array(answer, "gaps")
    if gaps.ndim == 1 and len(gaps) == len(want) and np.all(np.isfinite(gaps)) and np.any(
            gaps < -1e-8) and not np.allclose(gaps, -np.array(want), rtol=1e-6, atol=1e-8):
        return ["some gaps are negative, which the inequality rules out: compute "
                "TC(Σ) − TC(Σ + Λ) with the Gaussian TC of each covariance."]
    return compare(gaps, np.array(want), "gaps", rtol=1e-6, atol=1e-8)


# Checks of later chapters live in sibling modules ``dlib/course/checks_<part>.py`` (one per
# author, so that chapters can be written side by side); importing them registers their checks.
def _register_sibling_modules() -> None:
    import importlib
    import pkgutil
    from pathlib import Path

    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("checks_"):
            importlib.import_module(f"dlib.course.{info.name}")


_register_sibling_modules()

