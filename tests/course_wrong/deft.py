"""Wrong answers for the self-checks of the DEFT chapter (chapters/32_deft)."""

import numpy as np

WRONG_ANSWERS = {
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
