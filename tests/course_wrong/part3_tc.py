"""Wrong answers for the self-checks of FactorVAE and β-TCVAE.

(chapters/12_factor_vae, chapters/13_beta_tcvae)
"""

import math

import torch


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


WRONG_ANSWERS = {
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
}

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
