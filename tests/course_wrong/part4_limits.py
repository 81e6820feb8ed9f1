"""Wrong answers for the self-checks of Part IV (chapter 20):
:mod:`dlib.course.checks.part4_limits`."""

import math

import torch


def _imp(factor=2.0, alpha=0.3):
    """A = I - factor v v^T for d = 3, and f(z3), f(f(z3)) with it (ex-imp-involution)."""
    from dlib import theory

    dist = theory.Factorised([theory.Uniform(0, 1)] * 3)
    z = dist.sample(1_000, torch.Generator().manual_seed(3))
    v = torch.full((3,), math.sqrt((1 - alpha) / 2), dtype=torch.float64)
    v[0] = math.sqrt(alpha)
    a = torch.eye(3, dtype=torch.float64) - factor * torch.outer(v, v)
    once = theory.entangle(z, dist, a)
    return {"A": a, "once": once, "twice": theory.entangle(once, dist, a)}


WRONG_ANSWERS = {
    "ex-imp-involution": [
        _imp(1.0),  # A = I - v v^T: not orthogonal
        _imp(2.0, alpha=0.2),  # another alpha: a valid reflection, not the one asked for
        {**_imp(), "once": _imp()["twice"]},  # f not applied
        {**_imp(), "twice": _imp()["once"]},  # f applied once only
        {**_imp(), "once": _imp(2.0, alpha=0.2)["once"]},  # f with another matrix
        {"A": _imp()["A"], "twice": _imp()["twice"]},  # a missing part
    ],
}
