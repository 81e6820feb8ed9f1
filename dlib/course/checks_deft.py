"""Self-checks of Part V, DEFT (chapters/32_deft).

Registered on import (``dlib.course.checks`` imports every ``checks_*`` sibling). Each check
recomputes the expected answer (Adam's first step in closed form, the stage of a step by a plain
loop, MIG from an NMI matrix by sorting), so no target number is stored here.
"""

from __future__ import annotations

from typing import Any

from dlib.course.checks import _WrongForm, as_array, as_number, compare, exercise_check


def _call(fn: Any, name: str, *args: Any) -> Any:
    if not callable(fn):
        raise _WrongForm(f"The answer is of type {type(fn).__name__}, not a function.")
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
        except _WrongForm:
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
            except _WrongForm:
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
    except _WrongForm:
        raise
    except Exception as err:
        return [f"mig_from_nmi raised {type(err).__name__}: {err}"]
    if not isinstance(out, dict) or not {"max1", "max2", "mig"} <= set(out):
        raise _WrongForm("The answer must return a dict with keys 'max1', 'max2' and 'mig'.")
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
