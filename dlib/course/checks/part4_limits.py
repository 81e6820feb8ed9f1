"""Self-checks of Part IV · Limits: the impossibility theorem (chapters/20_impossibility).

The check recomputes what it needs with :mod:`dlib.theory`, so no target number is stored here.
"""

from __future__ import annotations

from typing import Any

from dlib.course.checks.core import as_array, compare, exercise_check, parts

# chapters/20_impossibility: the impossibility theorem --------------------------------------------

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
