"""Wrong answers for the self-checks of DIP-VAE and InfoGAN (chapters/14_dip_vae, 15_infogan)."""

import numpy as np


def _m14():
    rs = np.random.RandomState(0)
    b = rs.standard_normal((6, 6))
    sigma = np.eye(6) + 0.05 * (b + b.T)
    kl = 0.5 * (np.trace(sigma) - 6 - np.linalg.slogdet(sigma)[1])
    off = (sigma**2).sum() - (np.diag(sigma) ** 2).sum()
    diag = ((np.diag(sigma) - 1) ** 2).sum()
    return sigma, kl, off, diag


_S, _KL, _OFF, _DIAG = _m14()

WRONG_ANSWERS = {
    "ex-m14-second-order": [
        {"kl": 0.25 * (_OFF + _DIAG), "quarter_penalty": _KL},  # swapped
        {"kl": 2 * _KL, "quarter_penalty": 0.25 * (_OFF + _DIAG)},  # no ½
        {"kl": _KL, "quarter_penalty": _OFF + _DIAG},  # weights 1
        {"kl": _KL, "quarter_penalty": 0.25 * _OFF},  # no diagonal part
        {"kl": 0.5 * (np.trace(_S) - 6), "quarter_penalty": 0.25 * (_OFF + _DIAG)},  # no logdet
        {"kl": _KL},  # missing key
    ],
}


def _m15(s=0.5):
    import math

    bound = math.log(2) - 0.5 * math.log(2 * math.pi * math.e * s**2)
    grid = np.linspace(-6, 6, 24_001)
    cdf = np.vectorize(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))))
    p_x = 0.5 * (cdf((grid + 1) / s) - cdf((grid - 1) / s))
    h_x = -float(np.sum(p_x * np.log(np.maximum(p_x, 1e-300))) * (grid[1] - grid[0]))
    return bound, h_x, 0.5 * math.log(2 * math.pi * math.e * s**2), math.log(2 * math.pi * s**2)


_B, _HX, _HN, _L2PI = _m15()
_E = _HX - _HN

WRONG_ANSWERS["ex-m15-bound-gap"] = [
    {"bound": _B, "exact": _E, "gap": _B - _E},  # negative gap
    {"bound": np.log(2) - 0.5 * _L2PI, "exact": _E, "gap": _E - np.log(2) + 0.5 * _L2PI},  # no e
    {"bound": _B, "exact": _HX, "gap": _HX - _B},  # h(x) instead of I
    {"bound": _B, "exact": _E},  # missing key
]
