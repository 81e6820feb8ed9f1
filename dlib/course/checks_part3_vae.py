"""Self-checks of Part III, β-VAE and AnnealedVAE
(chapters/10_beta_vae, chapters/11_annealed_vae).

Registered on import (``dlib.course.checks`` imports every ``checks_*`` sibling). Each check
recomputes the expected answer from a closed form, so no target number is stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks import _WrongForm, as_number, compare, exercise_check, parts

# chapters/10_beta_vae: β-VAE -------------------------------------------------------------------


@exercise_check("ex-m10-channel",
                answer="a function sigma_for_kl(kl) of a number of nats that returns the "
                       "posterior standard deviation (one number)")
def _ex_m10_channel(answer: Any) -> list[str]:
    if not callable(answer):
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    kls = [0.05, 0.5, 1.0, 2.3, 5.0]
    try:
        got = [as_number(answer(k), f"sigma_for_kl({k})") for k in kls]
    except _WrongForm:
        raise
    except Exception as err:  # the learner's function failed
        return [f"sigma_for_kl raised {type(err).__name__}: {err}"]
    want = [math.exp(-k) for k in kls]
    if any(g <= 0 for g in got):
        return ["a standard deviation must be positive."]
    if all(math.isclose(g, math.exp(-2 * k), rel_tol=1e-6) for g, k in zip(got, kls,
                                                                             strict=True)):
        return ["that is σ² (the variance) for the given KL; the question asks for σ."]
    if all(math.isclose(g, math.exp(-k / 2), rel_tol=1e-6) for g, k in zip(got, kls,
                                                                            strict=True)):
        return ["the KL is −log σ, not −½ log σ: the ½ cancels against σ² inside the log."]
    return compare(got, want, "sigma_for_kl at KL = 0.05, 0.5, 1, 2.3, 5 nats", rtol=1e-6)
# chapters/11_annealed_vae: AnnealedVAE ----------------------------------------------------------


@exercise_check("ex-m11-nats",
                answer="a dict with 'H_factors', 'H_position' and 'excess' (numbers, in nats)")
def _ex_m11_nats(answer: Any) -> list[str]:
    values = {k: as_number(v, k)
              for k, v in parts(answer, ("H_factors", "H_position", "excess")).items()}
    sizes = (3, 6, 40, 32, 32)  # dSprites: shape, scale, orientation, posX, posY
    h_factors = sum(math.log(k) for k in sizes)
    h_position = math.log(32 * 32)
    want = {"H_factors": h_factors, "H_position": h_position, "excess": 25.0 - h_factors}
    problems = []
    for key, target in want.items():
        got = values[key]
        if math.isclose(got, target, rel_tol=1e-4, abs_tol=1e-6):
            continue
        if math.isclose(got * math.log(2), target, rel_tol=1e-4) or (
                key == "excess" and math.isclose(25.0 - got, h_factors / math.log(2),
                                                 rel_tol=1e-4)):
            problems.append(f"{key} is in bits: use natural logarithms (nats).")
        elif key == "H_factors" and math.isclose(got, math.log(sum(sizes)), rel_tol=1e-4):
            problems.append("H_factors: the entropies of independent uniform factors add, so "
                            "it is log of the *product* of the numbers of values.")
        elif key == "excess" and math.isclose(got, -(25.0 - h_factors), rel_tol=1e-4):
            problems.append("excess has the wrong sign: it is C_max minus the factors' entropy.")
        else:
            problems.append(f"{key} = {got:.6g} is not right; every factor is uniform and "
                            "independent of the others.")
    return problems
