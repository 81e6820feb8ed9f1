"""Wrong answers for the self-check of the intervention-based framework.

(chapters/31_intervention)
"""

import numpy as np


def _marg(p, k):
    return p.sum(axis=tuple(a for a in range(p.ndim) if a != k), keepdims=True)


def _eq1(p, *, average=True, keep_rest=True):
    out = np.zeros_like(p)
    for k in range(p.ndim):
        rest = p.sum(axis=k, keepdims=True) if keep_rest else 1.0
        out = out + rest * _marg(p, k)
    return out / p.ndim if average else out


def _product(p):
    out = np.ones_like(p)
    for k in range(p.ndim):
        out = out * _marg(p, k)
    return out


WRONG_ANSWERS = {
    "ex-m31-intervened": [
        lambda p: _eq1(p, average=False),  # sums over k instead of averaging
        _product,  # intervenes on every factor at once
        lambda p: _eq1(p, keep_rest=False),  # forgets p(g without k)
        lambda p: p,  # no intervention at all
        lambda p: _eq1(p)[..., 0],  # wrong shape
        "the product of the marginals",  # not a function
    ],
}
