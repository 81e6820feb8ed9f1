"""Wrong answers for the self-checks of Part V (chapters 30-32):
:mod:`dlib.course.checks.part5_beyond`."""

import numpy as np


def _rule(kl_at_checks, start, check_every, min_steps, tol, floor, *, relative=True,
          use_min=True, reset=True):
    k_max = kl_at_checks.shape[1]
    n, last, prev, starts = 1, start, 0.0, [start]
    for i, row in enumerate(kl_at_checks):
        taken = start + (i + 1) * check_every
        now = float(row[n - 1])
        limit = tol * max(prev, floor) if relative else tol
        ok = now - prev <= limit and (taken - last >= min_steps or not use_min)
        if ok and n < k_max:
            n, last = n + 1, taken
            starts.append(taken)
            prev = 0.0 if reset else now  # the new dimension carried nothing yet
        else:
            prev = now
    return starts


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
    "ex-m30-switch": [
        # ignores the minimum time a dimension must be trained
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor, use_min=False),
        # an absolute tolerance in nats instead of a relative one
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor, relative=False),
        # after a switch, keeps comparing with the previous dimension's KL
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor, reset=False),
        # forgets the first dimension (switched on when OAT starts)
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor)[1:],
        # the number of switches instead of their steps
        lambda kl, start, check_every, min_steps, tol, floor: len(_rule(
            kl, start, check_every, min_steps, tol, floor)),
        "switch on when the KL stops growing",  # not a function
    ],
    "ex-m31-intervened": [
        lambda p: _eq1(p, average=False),  # sums over k instead of averaging
        _product,  # intervenes on every factor at once
        lambda p: _eq1(p, keep_rest=False),  # forgets p(g without k)
        lambda p: p,  # no intervention at all
        lambda p: _eq1(p)[..., 0],  # wrong shape
        "the product of the marginals",  # not a function
    ],
    "ex-m32-adam-step": [
        lambda g, lr, eps: -lr * g,  # the SGD step
        lambda g, lr, eps: -lr * np.sign(g),  # ε left out
        lambda g, lr, eps: -lr * g / np.sqrt(g**2 + eps),  # ε inside the square root
        lambda g, lr, eps: lr * g / (np.abs(g) + eps),  # wrong sign
        "-lr * g / (|g| + eps)",  # not a function
    ],
    "ex-m32-stage-of": [
        lambda t, steps: int(np.searchsorted(np.cumsum(steps), t, side="left")),  # off by one
        lambda t, steps: int(np.searchsorted(np.cumsum(steps), t, side="right")),  # no clamp
        lambda t, steps: min(int(np.searchsorted(steps, t, side="right")), len(steps) - 1),
        lambda t, steps: min(t // steps[0], len(steps) - 1),  # assumes equal stages
    ],
    "ex-m32-mig-from-nmi": [
        lambda nmi: {"max1": nmi.max(1), "max2": np.sort(nmi, 1)[:, -2],
                     "mig": float(np.mean(nmi.max(1) - np.sort(nmi, 1)[:, -2]))},  # wrong axis
        lambda nmi: {"max1": nmi.max(0), "max2": nmi.min(0),
                     "mig": float(np.mean(nmi.max(0) - nmi.min(0)))},  # smallest, not 2nd
        lambda nmi: {"max1": nmi.max(0), "max2": np.sort(nmi, 0)[-2],
                     "mig": float(np.sum(nmi.max(0) - np.sort(nmi, 0)[-2]))},  # sum
        lambda nmi: {"max1": nmi.max(0)},  # missing keys
    ],
}
