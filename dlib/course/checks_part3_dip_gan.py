"""Self-checks of Part III, chapters 14 (DIP-VAE) and 15 (InfoGAN and InfoWGAN-GP).

Registered on import (``dlib.course.checks`` imports every ``checks_*`` sibling). Each check
recomputes the expected answer from the exercise's seeded inputs, so no target number is
stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks import as_number, exercise_check, parts

# Chapter 14: DIP-VAE ----------------------------------------------------------------------------


def _m14_sigma():
    import numpy as np

    rs = np.random.RandomState(0)
    b = rs.standard_normal((6, 6))
    return np.eye(6) + 0.05 * (b + b.T)


@exercise_check("ex-m14-second-order",
                answer="a dict with 'kl' (the exact Gaussian KL) and 'quarter_penalty' (DIP's "
                       "penalty with both weights 1/4), two numbers")
def _ex_m14_second_order(answer: Any) -> list[str]:
    import numpy as np

    got = {k: as_number(v, k) for k, v in parts(answer, ("kl", "quarter_penalty")).items()}
    sigma = _m14_sigma()
    kl = 0.5 * (np.trace(sigma) - 6 - np.linalg.slogdet(sigma)[1])
    off = float((sigma**2).sum() - (np.diag(sigma) ** 2).sum())
    diag = float(((np.diag(sigma) - 1) ** 2).sum())
    quarter = 0.25 * off + 0.25 * diag
    problems = []
    if math.isclose(got["kl"], quarter, rel_tol=1e-9) and math.isclose(
            got["quarter_penalty"], kl, rel_tol=1e-9):
        return ["the two numbers are swapped."]
    if not math.isclose(got["kl"], kl, rel_tol=1e-6):
        if math.isclose(got["kl"], 2 * kl, rel_tol=1e-6):
            problems.append("kl is twice the KL: the Gaussian KL has a factor ½ in front.")
        elif math.isclose(got["kl"], 0.5 * (np.trace(sigma) - 6), rel_tol=1e-6, abs_tol=1e-12):
            problems.append("kl lacks the −log det Σ term.")
        else:
            problems.append(f"kl = {got['kl']:.6g} is not ½(tr Σ − D − log det Σ) for the "
                            "given Σ.")
    if not math.isclose(got["quarter_penalty"], quarter, rel_tol=1e-6):
        if math.isclose(got["quarter_penalty"], 4 * quarter, rel_tol=1e-6):
            problems.append("quarter_penalty uses weights 1, not ¼.")
        elif math.isclose(got["quarter_penalty"], 0.25 * off, rel_tol=1e-6):
            problems.append("quarter_penalty lacks the diagonal part ¼ Σ (Σ_ii − 1)².")
        elif math.isclose(got["quarter_penalty"], 0.25 * off / 2, rel_tol=1e-6):
            problems.append("quarter_penalty counts each off-diagonal pair once; the sum runs "
                            "over i ≠ j, both orders.")
        else:
            problems.append(f"quarter_penalty = {got['quarter_penalty']:.6g} is not "
                            "¼ Σ_{i≠j} Σ_ij² + ¼ Σ_i (Σ_ii − 1)² for the given Σ.")
    return problems
