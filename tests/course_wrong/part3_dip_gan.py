"""Wrong answers for the self-checks of chapters 14 (DIP-VAE) and 15 (InfoGAN)."""

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
