"""Self-checks of the intervention-based framework for correlated factors
(chapters/31_intervention).

Registered on import (``dlib.course.checks`` imports every ``checks_*`` sibling). Expected
answers are recomputed with :func:`dlib.methods.intervention.intervened_distribution` on fresh
random joints, so no target is stored here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlib.course.checks import _WrongForm, exercise_check


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
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
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
