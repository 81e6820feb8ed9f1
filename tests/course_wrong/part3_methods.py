"""Wrong answers for the self-checks of Part III (chapters 10-15):
:mod:`dlib.course.checks.part3_methods`."""

import math

import numpy as np
import torch

WRONG_ANSWERS: dict = {}



def _logit(sign=1.0, logdet=True, linear=False):
    def f(z, rho):
        z1, z2 = z[:, 0], z[:, 1]
        r2 = abs(rho) if linear else rho**2
        const = -0.5 * math.log(1 - rho**2) if logdet else 0.0
        return sign * (const - (r2 * z1**2 - 2 * rho * z1 * z2 + r2 * z2**2) / (2 * (1 - rho**2)))
    return f


def _joint_only(z, rho):
    """log q(z) without subtracting the marginals."""
    z1, z2 = z[:, 0], z[:, 1]
    return (-math.log(2 * math.pi) - 0.5 * math.log(1 - rho**2)
            - (z1**2 - 2 * rho * z1 * z2 + z2**2) / (2 * (1 - rho**2)))


def _kl_parts(mean_term=True, tc_sign=1.0, marginal_means=True, keys=("kl", "tc", "dim_kl")):
    def f(mean, cov):
        var = cov.diagonal()
        logdet = torch.logdet(cov)
        m2 = mean @ mean if mean_term else 0.0
        mm = mean**2 if marginal_means else 0.0 * mean
        out = {"kl": 0.5 * (cov.trace() + m2 - len(mean) - logdet),
               "tc": tc_sign * 0.5 * (var.log().sum() - logdet),
               "dim_kl": 0.5 * (var + mm - 1 - var.log()).sum()}
        return {k: out[k] for k in keys}
    return f


_LOG180 = math.log(737_280 / 4_096)


WRONG_ANSWERS.update({
    "ex-m13-beta1": [
        0.0,  # "the terms cancel to nothing"
        -1.0,
        "a string",
        1e6,
    ],
    "ex-m13-dataset-size": [
        {"mi": _LOG180, "tc": -_LOG180},  # the sharp-posterior approximation, not the batch
        {"mi": -_LOG180, "tc": _LOG180},  # and with the signs flipped
        {"mi": 0.0, "tc": 0.0},  # "N does not matter"
        {"mi": 1.0},  # a key missing
    ],
})


def _m14():
    rs = np.random.RandomState(0)
    b = rs.standard_normal((6, 6))
    sigma = np.eye(6) + 0.05 * (b + b.T)
    kl = 0.5 * (np.trace(sigma) - 6 - np.linalg.slogdet(sigma)[1])
    off = (sigma**2).sum() - (np.diag(sigma) ** 2).sum()
    diag = ((np.diag(sigma) - 1) ** 2).sum()
    return sigma, kl, off, diag


_S, _KL, _OFF, _DIAG = _m14()


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


WRONG_ANSWERS.update({
    "ex-m10-channel": [
        lambda kl: math.exp(-2 * kl),  # the variance instead of the standard deviation
        lambda kl: math.exp(-kl / 2),  # KL taken as -½ log σ
        lambda kl: 1.0 / (1.0 + kl),  # not the channel formula at all
        lambda kl: -math.exp(-kl),  # negative
        "exp(-kl)",  # not a function
    ],
    "ex-m11-nats": [
        # bits instead of nats
        {"H_factors": math.log2(737_280), "H_position": math.log2(1024),
         "excess": 25 - math.log2(737_280)},
        # log of the sum of the numbers of values
        {"H_factors": math.log(3 + 6 + 40 + 32 + 32), "H_position": math.log(1024),
         "excess": 25 - math.log(737_280)},
        # the sign of the excess
        {"H_factors": math.log(737_280), "H_position": math.log(1024),
         "excess": math.log(737_280) - 25},
        # one position only
        {"H_factors": math.log(737_280), "H_position": math.log(32),
         "excess": 25 - math.log(737_280)},
        {"H_factors": math.log(737_280)},  # incomplete
    ],
    "ex-m12-optimal-logit": [
        _logit(sign=-1.0),  # flipped sign
        _logit(logdet=False),  # the -½ log(1 - ρ²) term forgotten
        _logit(linear=True),  # |ρ| instead of ρ² on the squares
        _joint_only,  # log q(z) instead of the log-odds
        "not a function",
    ],
    "ex-m12-prior-split": [
        _kl_parts(mean_term=False),  # μᵀμ forgotten in the joint KL
        _kl_parts(tc_sign=-1.0),  # TC with the wrong sign
        _kl_parts(marginal_means=False),  # the marginals' means forgotten
        _kl_parts(keys=("kl", "tc")),  # a key missing
        "not a function",
    ],
    "ex-m12-unpermuted": [
        {(8, 2): 1 / 64, (8, 3): 1 / 512},  # B^(-D)
        {(8, 2): 1 / 8, (8, 3): 1 / 8},  # 1/B for every D
        {(8, 2): 1 / 64, (8, 3): 1 / 8},  # swapped
        {(8, 2): 0.125},  # a key missing
    ],
    "ex-m14-second-order": [
        {"kl": 0.25 * (_OFF + _DIAG), "quarter_penalty": _KL},  # swapped
        {"kl": 2 * _KL, "quarter_penalty": 0.25 * (_OFF + _DIAG)},  # no ½
        {"kl": _KL, "quarter_penalty": _OFF + _DIAG},  # weights 1
        {"kl": _KL, "quarter_penalty": 0.25 * _OFF},  # no diagonal part
        {"kl": 0.5 * (np.trace(_S) - 6), "quarter_penalty": 0.25 * (_OFF + _DIAG)},  # no logdet
        {"kl": _KL},  # missing key
    ],
})
