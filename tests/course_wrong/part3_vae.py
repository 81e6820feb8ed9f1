"""Wrong answers for the self-checks of chapters 10 (β-VAE) and 11 (AnnealedVAE)."""

import math

WRONG_ANSWERS = {
    "ex-m10-channel": [
        lambda kl: math.exp(-2 * kl),  # the variance instead of the standard deviation
        lambda kl: math.exp(-kl / 2),  # KL taken as -½ log σ
        lambda kl: 1.0 / (1.0 + kl),  # not the channel formula at all
        lambda kl: -math.exp(-kl),  # negative
        "exp(-kl)",  # not a function
    ],
}
