"""Wrong answers for the self-checks of Part II (chapters 3-8):
:mod:`dlib.course.checks.part2_measuring`."""

import math

import numpy as np

_SHAPES = ("square", "ellipse", "heart")


def _votes(shape_copy=0):
    """A (5, 6) FactorVAE vote matrix of 1,000 votes; ``shape_copy`` shape votes go to z5."""
    votes = np.zeros((5, 6), dtype=int)
    votes[range(5), range(5)] = 200
    votes[0, 0] -= shape_copy
    votes[0, 5] += shape_copy
    return votes


def _ceilings():
    """The normalised 20-bin MI ceiling for K = 2..100 (ex-m06-ceiling), exact arithmetic."""
    out = []
    for k in range(2, 101):
        p = np.bincount(np.minimum(20 * np.arange(k) // (k - 1), 19)) / k
        p = p[p > 0]
        out.append(-(p * np.log(p)).sum() / np.log(k))
    return np.array(out)


def _m04(full=False):
    """The diagonal MI (nats) of the four codes of ex-m04-binning-symmetries (or whole MI)."""
    from dlib.metrics import mutual_info_matrix
    from dlib.metrics.toy import DSPRITES_SIZES, FactorsAsObservations

    y = FactorsAsObservations(DSPRITES_SIZES).sample_factors(5000, np.random.RandomState(0))
    z = y / (np.array(DSPRITES_SIZES) - 1.0)
    codes = {"identity": z, "3z - 7": 3 * z - 7, "-2z + 1": -2 * z + 1, "exp(3z)": np.exp(3 * z)}
    return {k: mutual_info_matrix(c, y) if full else np.diag(mutual_info_matrix(c, y))
            for k, c in codes.items()}


def _tc_gaps(noise=1.0):
    """TC(Σ) − TC(Σ + noise Λ) for the 1,000 seeded pairs of ex-m08-tc-noise."""
    from dlib.metrics import unsupervised

    tc = unsupervised.gaussian_total_correlation
    rs = np.random.RandomState(0)
    gaps = []
    for _ in range(1000):
        a = rs.standard_normal((6, 6))
        sigma = a @ a.T + 1e-3 * np.eye(6)
        lam = np.diag(rs.exponential(size=6) * rs.binomial(1, 0.7, size=6))
        gaps.append(tc(sigma) - tc(sigma + noise * lam))
    return np.array(gaps)


WRONG_ANSWERS = {
    "ex-gt-orientations": [
        {(n, sc): 40 for n in _SHAPES for sc in (1.0, 0.5)},  # counted orientations, not images
        {(n, sc): 39 for n in _SHAPES for sc in (1.0, 0.5)},  # the upper bound, not a count
        {(n, sc): 2 for n in _SHAPES for sc in (1.0, 0.5)},  # distinct pixel values
        {("square", 1.0): 39, ("heart", 1.0): 39},  # missing keys
        [39] * 6,  # not a dict
    ],
    "ex-m04-binning-symmetries": [
        {**_m04(), "exp(3z)": _m04()["identity"]},  # binned z, not exp(3z)
        {k: v / math.log(2) for k, v in _m04().items()},  # in bits
        {**_m04(), "-2z + 1": _m04()["exp(3z)"]},  # a mix-up
        {**_m04(full=True)},  # whole MI matrices, not their diagonals
        {k: v for k, v in _m04().items() if k != "identity"},  # a missing part
    ],
    "ex-m05-duplicated": [
        _votes(shape_copy=100),  # shape votes split between z0 and its copy z5
        _votes().T,  # codes x factors
        _votes() // 2,  # 500 votes
        _votes() + np.pad([[-10, 10]], ((0, 4), (0, 4))),  # shape votes on the scale code
        200 * np.eye(5),  # no column for the copy
    ],
    "ex-m06-ceiling": [
        np.ones(99),  # no bins shared
        _ceilings() * np.log(np.arange(2, 101)),  # in nats
        np.r_[1.0, _ceilings()[:-1]],  # off by one in K
        _ceilings()[:98],  # K = 2..99
    ],
    "ex-m07-two-in-one": [
        {"D": (3 + 1 - math.log(2) / math.log(5)) / 5, "C": 1.0},  # unweighted mean
        {"D": 1.0, "C": 0.6 + 0.4 * (1 - math.log(2) / math.log(5))},  # D and C swapped
        {"D": (3 + 1 - math.log(2) / math.log(5)) / 4, "C": 1.0},  # mean of the live codes
        {"D": 0.6, "C": 1.0},  # the position code counted as 0
        {"D": 0.6 + 0.4 * (1 - math.log(2) / math.log(5))},  # a missing part
    ],
    "ex-m08-tc-noise": [
        -_tc_gaps(),  # TC(Σ + Λ) − TC(Σ)
        _tc_gaps(noise=0.0),  # no noise added: all zero
        _tc_gaps(noise=2.0),  # twice the noise
        np.sort(_tc_gaps()),  # not in the order of the pairs
        _tc_gaps()[:100],  # too few
    ],
}
