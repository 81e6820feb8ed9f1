"""Wrong answers for the self-checks of β-VAE and AnnealedVAE.

(chapters/10_beta_vae, chapters/11_annealed_vae)
"""

import math

WRONG_ANSWERS = {
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
}
