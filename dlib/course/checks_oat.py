"""Self-checks of chapters/30_oat (OAT: disentangling one factor at a time).

Registered on import (``dlib.course.checks`` imports every ``checks_*`` sibling). The expected
answers are recomputed with the method's own rule (:meth:`dlib.methods.oat.OAT.apply_rules`) on
fresh scripted KL sequences, so no target is stored here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlib.course.checks import _WrongForm, exercise_check

# chapters/30_oat: OAT ---------------------------------------------------------------------------


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
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
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
            raise _WrongForm(f"switch_steps returned {type(got).__name__}, "
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
