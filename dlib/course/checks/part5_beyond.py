"""Self-checks of Part V · Beyond independence and luck: OAT, the intervention-based
framework and DEFT (chapters/30_oat, chapters/31_intervention, chapters/32_deft).

The expected answers are recomputed with the methods' own rules
(:meth:`dlib.methods.oat.OAT.apply_rules`,
:func:`dlib.methods.intervention.intervened_distribution`) on fresh inputs, or in closed form
(Adam's first step, MIG from an NMI matrix), so no target is stored here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlib.course.checks.core import WrongForm, as_array, as_number, compare, exercise_check

# chapters/30_oat: OAT ----------------------------------------------------------------------------


def _reference(script: np.ndarray, start: int, check_every: int, min_steps: int, tol: float,
               floor: float) -> list[int]:
    """Switch-on steps of each dimension under OAT's rule, computed by the method itself."""
    import torch

    from dlib.methods.oat import OAT

    k_max = script.shape[1]
    m = OAT((1, 64, 64), num_z1=k_max, num_z2=1, pretrain_steps=start,
            check_every=check_every, min_dim_steps=min_steps, saturation_tol=tol,
            saturation_floor=floor, z2_zero_kl=-1.0)
    m.start_oat(start)
    for i, row in enumerate(script):
        m.kl_z1_ema.copy_(torch.as_tensor(row, dtype=torch.float32) * m.mask)
        m.apply_rules(start + (i + 1) * check_every)
    return [int(s) for s in m.switch_steps.tolist() if s >= 0]


def _scripts() -> list[tuple[np.ndarray, dict[str, Any]]]:
    rng = np.random.RandomState(30)
    cases = []
    for k_max, check, min_steps, tol, floor in ((4, 10, 20, 0.05, 0.2), (6, 100, 100, 0.1, 0.5),
                                                (5, 25, 75, 0.02, 0.1), (3, 1, 3, 0.2, 1.0)):
        growth = rng.uniform(0, 0.5, size=(30, k_max)) * (rng.uniform(size=(30, k_max)) < 0.5)
        script = np.cumsum(growth, axis=0).astype(np.float32)
        cases.append((script, dict(start=1000, check_every=check, min_steps=min_steps, tol=tol,
                                   floor=floor)))
    # slow, steady growth: a relative and an absolute tolerance disagree here
    script = np.cumsum(rng.uniform(0.0, 0.12, size=(30, 4)), axis=0).astype(np.float32)
    cases.append((script, dict(start=500, check_every=50, min_steps=100, tol=0.1, floor=0.2)))
    return cases


@exercise_check("ex-m30-switch",
                answer="a function switch_steps(kl_at_checks, start, check_every, min_steps, "
                       "tol, floor) of an array (checks, K) that returns a list of ints")
def _ex_m30_switch(answer: Any) -> list[str]:
    if not callable(answer):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    problems = []
    for n, (script, kw) in enumerate(_scripts()):
        want = _reference(script, **kw)
        try:
            got = answer(script.copy(), **kw)
        except NotImplementedError:
            raise
        except Exception as err:  # the learner's function failed
            return [f"switch_steps raised {type(err).__name__}: {err}"]
        try:
            got = [int(s) for s in got]
        except (TypeError, ValueError):
            raise WrongForm(f"switch_steps returned {type(got).__name__}, "
                             "not a list of integers.") from None
        if got == want:
            continue
        where = f"on scripted sequence {n + 1} (K = {script.shape[1]}, {kw})"
        if not got or got[0] != kw["start"]:
            problems.append(f"{where}: the list must start with the first OAT step "
                            f"({kw['start']}), when dimension 1 is switched on.")
        elif len(got) > len(want):
            problems.append(f"{where}: you switch on {len(got)} dimensions, more than the rule "
                            "allows; check the minimum time per dimension and that the "
                            "comparison after a switch starts from the new dimension's KL.")
        elif len(got) < len(want):
            problems.append(f"{where}: you switch on {len(got)} dimensions, fewer than the rule; "
                            "is the tolerance relative to max(previous KL, floor)?")
        else:
            problems.append(f"{where}: the same number of switches but at other steps.")
        break
    return problems


def _joints() -> list[np.ndarray]:
    rng = np.random.RandomState(31)
    shapes = [(3, 4), (2, 3, 4), (4, 2, 2, 3), (5, 5)]
    out = [rng.uniform(size=s) ** 4 for s in shapes]
    band = np.exp(-((np.arange(6)[:, None] / 5 - np.arange(8)[None] / 7) ** 2) / 0.08)
    out.append(band)
    return [p / p.sum() for p in out]


@exercise_check("ex-m31-intervened",
                answer="a function intervened(p) of a K-dimensional probability array that "
                       "returns an array of the same shape")
def _ex_m31_intervened(answer: Any) -> list[str]:
    from dlib.methods.intervention import intervened_distribution

    if not callable(answer):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    for n, p in enumerate(_joints()):
        want = intervened_distribution(p)
        try:
            got = np.asarray(answer(p.copy()), dtype=np.float64)
        except NotImplementedError:
            raise
        except Exception as err:  # the learner's function failed
            return [f"intervened raised {type(err).__name__}: {err}"]
        where = f"on joint {n + 1} (shape {p.shape})"
        if got.shape != p.shape:
            return [f"{where}: the result has shape {got.shape}, not {p.shape}."]
        if np.allclose(got, want, rtol=1e-9, atol=1e-12):
            continue
        total = float(got.sum())
        if abs(total - p.ndim) < 1e-6:
            return [f"{where}: the result sums to K = {p.ndim}; average over k, do not add."]
        if abs(total - 1.0) > 1e-6:
            return [f"{where}: the result sums to {total:.4g}, not 1."]
        product = np.ones_like(p)
        for k in range(p.ndim):
            product = product * p.sum(axis=tuple(a for a in range(p.ndim) if a != k),
                                      keepdims=True)
        if np.allclose(got, product):
            return [f"{where}: that is the product of all marginals (every factor intervened "
                    "at once); Eq. (1) intervenes on one factor k and keeps the others' joint."]
        return [f"{where}: the values differ from (1/K) Σ_k p(g without k) p(g_k)."]
    return []


def _call(fn: Any, name: str, *args: Any) -> Any:
    if not callable(fn):
        raise WrongForm(f"The answer is of type {type(fn).__name__}, not a function.")
    return fn(*args)


@exercise_check("ex-m32-adam-step",
                answer="a function adam_first_step(g, lr, eps) of a gradient array that "
                       "returns the parameter change of Adam's first step (an array)")
def _ex_m32_adam_step(answer: Any) -> list[str]:
    import numpy as np

    g = np.array([3.0, -0.2, 1e-8, -5e-9, 0.0, 2e-6, -40.0])
    problems: list[str] = []
    for lr, eps in ((1e-3, 1e-8), (0.5, 1e-6)):
        try:
            got = as_array(_call(answer, "adam_first_step", g.copy(), lr, eps),
                           "adam_first_step(g, lr, eps)")
        except WrongForm:
            raise
        except Exception as err:  # the learner's function failed
            return [f"adam_first_step raised {type(err).__name__}: {err}"]
        want = -lr * g / (np.abs(g) + eps)
        if got.shape == want.shape and np.allclose(got, -lr * np.sign(g), rtol=1e-6, atol=0):
            return ["that is −lr·sign(g): right for large gradients, but ε matters where |g| "
                    "is comparable to it (here g = 1e-8)."]
        if got.shape == want.shape and np.allclose(got, -lr * g, rtol=1e-6, atol=1e-12):
            return ["that is the SGD step −lr·g; Adam divides m̂ by √v̂ + ε."]
        problems += compare(got, want, f"adam_first_step(g, lr={lr:g}, eps={eps:g})",
                            rtol=1e-6, atol=1e-12)
        if problems:
            return problems
    return problems


@exercise_check("ex-m32-stage-of",
                answer="a function stage_of(step, stage_steps) returning the 0-based stage "
                       "(an int) of a 0-based step")
def _ex_m32_stage_of(answer: Any) -> list[str]:
    cases = [((5, 3, 4, 2), range(0, 20)), ((2, 2, 4, 15), (0, 1, 2, 3, 4, 7, 8, 22, 23, 100)),
             ((1,), (0, 1, 5)), ((3, 1), (2, 3, 4))]
    for stage_steps, steps in cases:
        ends, total = [], 0
        for length in stage_steps:
            total += length
            ends.append(total)
        for t in steps:
            want = next((j for j, e in enumerate(ends) if t < e), len(ends) - 1)
            try:
                got = as_number(_call(answer, "stage_of", t, tuple(stage_steps)),
                                f"stage_of({t}, {stage_steps})")
            except WrongForm:
                raise
            except Exception as err:
                return [f"stage_of({t}, {stage_steps}) raised {type(err).__name__}: {err}"]
            if got != want:
                hint = ""
                if t in ends and got == want - 1:
                    hint = " A stage of length L covers steps [start, start + L): the step " \
                           "equal to a stage's end already belongs to the next stage."
                if t >= total and got >= len(ends):
                    hint = " After the last stage ends, training stays in the last stage."
                return [f"stage_of({t}, {stage_steps}) = {got:g} is wrong.{hint}"]
    return []


@exercise_check("ex-m32-mig-from-nmi",
                answer="a function mig_from_nmi(nmi) of a (D, F) NMI matrix (latents × factors) "
                       "returning a dict with 'max1' (F,), 'max2' (F,) and 'mig' (a number)")
def _ex_m32_mig_from_nmi(answer: Any) -> list[str]:
    import numpy as np

    rs = np.random.RandomState(32)
    nmi = rs.uniform(0, 1, size=(7, 4)) ** 3
    try:
        out = _call(answer, "mig_from_nmi", nmi.copy())
    except WrongForm:
        raise
    except Exception as err:
        return [f"mig_from_nmi raised {type(err).__name__}: {err}"]
    if not isinstance(out, dict) or not {"max1", "max2", "mig"} <= set(out):
        raise WrongForm("The answer must return a dict with keys 'max1', 'max2' and 'mig'.")
    top = -np.sort(-nmi, axis=0)
    max1, max2 = top[0], top[1]
    got1 = as_array(out["max1"], "max1")
    if got1.shape == (7,):
        return ["max1 has one entry per latent; max-m NMI is taken over the latents, one value "
                "per factor (sort each column)."]
    problems = compare(got1, max1, "max1", rtol=1e-9) + compare(out["max2"], max2, "max2",
                                                                 rtol=1e-9)
    if problems:
        got2 = as_array(out["max2"], "max2")
        if got2.shape == max2.shape and np.allclose(got2, nmi.min(0)):
            return ["max2 is the second largest NMI of a factor, not the smallest."]
        return problems
    mig = as_number(out["mig"], "mig")
    if abs(mig - float(np.mean(max1 - max2))) > 1e-9:
        if abs(mig - float(np.sum(max1 - max2))) < 1e-9:
            return ["MIG is the *mean* gap over the factors (eq. 6), not the sum."]
        return ["mig should be the mean over factors of max1 − max2."]
    return []
