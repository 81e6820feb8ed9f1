"""Self-checks of Part III, DIP-VAE and InfoGAN / InfoWGAN-GP
(chapters/14_dip_vae, chapters/15_infogan).

Registered on import (``dlib.course.checks`` imports every ``checks_*`` sibling). Each check
recomputes the expected answer from the exercise's seeded inputs, so no target number is
stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks import as_number, exercise_check, parts

# chapters/14_dip_vae: DIP-VAE ------------------------------------------------------------------


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


# chapters/15_infogan: InfoGAN and InfoWGAN-GP --------------------------------------------------


def _m15_toy(s: float = 0.5) -> tuple[float, float]:
    """(H(c) + L for the Gaussian Q, exact I(c; x)) for x = c + s·n, c ~ U[−1, 1]."""
    import numpy as np

    bound = math.log(2) - 0.5 * math.log(2 * math.pi * math.e * s**2)
    grid = np.linspace(-6, 6, 24_001)
    dx = grid[1] - grid[0]
    cdf = np.vectorize(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))))
    p_x = 0.5 * (cdf((grid + 1) / s) - cdf((grid - 1) / s))
    h_x = -float(np.sum(p_x * np.log(np.maximum(p_x, 1e-300))) * dx)
    return bound, h_x - 0.5 * math.log(2 * math.pi * math.e * s**2)


@exercise_check("ex-m15-bound-gap",
                answer="a dict with 'bound' (H(c) + L for the Gaussian Q), 'exact' (I(c; x)) "
                       "and 'gap' (exact − bound), three numbers in nats")
def _ex_m15_bound_gap(answer: Any) -> list[str]:
    got = {k: as_number(v, k) for k, v in parts(answer, ("bound", "exact", "gap")).items()}
    bound, exact = _m15_toy()
    problems = []
    if not math.isclose(got["bound"], bound, rel_tol=1e-6, abs_tol=1e-9):
        if math.isclose(got["bound"], math.log(2) - 0.5 * math.log(2 * math.pi * 0.25),
                        rel_tol=1e-6):
            problems.append("bound lacks the e inside the log: E(c − x)²/(2s²) = ½ adds ½ "
                            "nat.")
        else:
            problems.append(f"bound = {got['bound']:.6g} is not log 2 − ½ log(2πe s²) at "
                            "s = 0.5.")
    if not math.isclose(got["exact"], exact, rel_tol=1e-4, abs_tol=1e-6):
        if math.isclose(got["exact"], exact + 0.5 * math.log(2 * math.pi * math.e * 0.25),
                        rel_tol=1e-4):
            problems.append("exact is h(x); subtract the noise entropy h(s·n) to get I(c; x).")
        else:
            problems.append(f"exact = {got['exact']:.6g} is not h(x) − h(s·n) at s = 0.5.")
    if got["gap"] < 0:
        problems.append("gap is negative: it is exact − bound, a KL, never below zero.")
    elif not math.isclose(got["gap"], got["exact"] - got["bound"], rel_tol=1e-6,
                          abs_tol=1e-9):
        problems.append("gap should be exact − bound.")
    return problems
