"""Wrong answers for the self-checks of Part I (chapters 1-2):
:mod:`dlib.course.checks.part1_foundations`."""

import math

import torch


def _z(n=1_000_000, seed=3):
    return 0.7 + 1.3 * torch.randn(n, generator=torch.Generator().manual_seed(seed),
                                   dtype=torch.float64)


def _kl(m, s):
    return 0.5 * (torch.trace(s) + m @ m - len(m) - torch.logdet(s))


WRONG_ANSWERS = {
    "ex-vae-kl-multivariate": [
        lambda m, s: 2 * _kl(m, s),
        lambda m, s: _kl(m, torch.diag(torch.diag(s))),  # only the diagonal
        lambda m, s: 0.5 * (torch.trace(s) - len(m) - torch.logdet(s)),  # no mean term
        lambda m, s: 0.5 * (torch.trace(s) + m @ m - torch.logdet(s)),  # no -D
        lambda m, s: _kl(m, s) * torch.ones(2),  # not a scalar
        "0.5 * (tr + m'm - D - logdet)",  # not a function
    ],
    "ex-vae-reparam-variance": [
        {"reparam": 2 * _z(), "score": _z() ** 2 * (_z() - 0.7)},  # forgot 1/sigma^2: biased
        {"reparam": 2 * _z(1000), "score": _z(1000) ** 2 * (_z(1000) - 0.7) / 1.69},  # too few
        {"reparam": 2 * _z(), "score": 2 * _z() ** 2 * (_z() - 0.7) / 1.69 - 1.4},  # var x4
        {"reparam": _z() + 0.7, "score": _z() ** 2 * (_z() - 0.7) / 1.69},  # var of reparam /4
        {"reparam": 2 * _z()},
    ],
    "ex-kld-mws-constant": [
        {"tc_mws": 10 * math.log(1000), "tc_free": -9 * math.log(32)},  # D log N, not (D-1)
        {"tc_mws": 9 * math.log(1000), "tc_free": -9 * math.log(32_000)},  # subtracted from 0
        {"tc_mws": 9 * math.log(1000), "tc_free": -10 * math.log(32)},  # D log M
        {"tc_mws": -9 * math.log(1000), "tc_free": 9 * math.log(32)},  # signs
        {"tc_mws": 0.0, "tc_free": 0.0},  # the true TC, not its estimate
        {"tc_mws": 9 * math.log(1000)},  # a missing part
    ],
}
