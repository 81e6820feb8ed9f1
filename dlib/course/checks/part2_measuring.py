"""Self-checks of Part II · Measuring disentanglement: chapters/03 to chapters/08.

Each check recomputes what it needs from dlib's data and metrics or from closed forms, or
compares with a hidden digest, so no target number is stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks.core import (
    Hidden,
    WrongForm,
    as_array,
    as_number,
    compare,
    exercise_check,
    parts,
)

# chapters/03_ground_truth_data: ground-truth data ------------------------------------------------

@exercise_check("ex-gt-orientations",
                answer="a dict mapping (shape name, scale) for every name in "
                       "dsprites.SHAPE_NAMES and scales 1.0 and 0.5 to a number of distinct images")
def _ex_gt_orientations(answer: Any) -> list[str]:
    import torch

    import dlib.data
    from dlib.data import dsprites

    data = dlib.data.load("dsprites")
    angles, centre = data.factor_values[2], data.factor_values[3][16]
    keys = [(name, scale) for name in dsprites.SHAPE_NAMES for scale in (1.0, 0.5)]
    got = {k: as_number(v, f"counts[{k[0]!r}, {k[1]}]") for k, v in parts(answer, keys).items()}
    problems = []
    for s, name in enumerate(dsprites.SHAPE_NAMES):
        for scale in (1.0, 0.5):
            value = got[name, scale]
            img = dsprites.render_dsprites(s, scale, angles, centre, centre, device="cpu")
            want = len(torch.unique(img.reshape(len(angles), -1), dim=0))
            if value == want:
                continue
            where = f"counts[{name!r}, {scale}] = {value:g}"
            if value >= len(angles):
                problems.append(f"{where}, but orientation classes 0 and 39 are the same angle "
                                "(0 and 2π), so there are at most 39 distinct images.")
            elif value < 3:
                problems.append(f"{where} is far too small: count distinct whole images "
                                "(rows of the images flattened to (40, 4096), "
                                "torch.unique(..., dim=0)), not distinct pixel values.")
            elif value > want:
                problems.append(f"{where} is too large: some of these images are identical "
                                "pixel for pixel; compare whole rasterised images.")
            else:
                problems.append(f"{where} is too small: use the 40 orientation values of "
                                "factor 2 and the centre position class 16 for x and y.")
    return problems


# chapters/04_what_metrics_measure: what metrics measure ------------------------------------------

@exercise_check("ex-m04-binning-symmetries",
                answer="a dict with 'identity', '3z - 7', '-2z + 1' and 'exp(3z)', each the "
                       "diagonal (shape (5,)) of that code's MI matrix with the factors, in nats")
def _ex_m04_binning_symmetries(answer: Any) -> list[str]:
    import numpy as np

    from dlib.metrics import mutual_info_matrix
    from dlib.metrics.toy import DSPRITES_SIZES, FactorsAsObservations

    names = ("identity", "3z - 7", "-2z + 1", "exp(3z)")
    got = parts(answer, names)
    y = FactorsAsObservations(DSPRITES_SIZES).sample_factors(5000, np.random.RandomState(0))
    z = y / (np.array(DSPRITES_SIZES) - 1.0)
    codes = dict(zip(names, (z, 3 * z - 7, -2 * z + 1, np.exp(3 * z)), strict=True))
    want = {name: np.diag(mutual_info_matrix(code, y)) for name, code in codes.items()}
    problems = []
    identity_right = not compare(got["identity"], want["identity"], rtol=1e-6, atol=1e-9)
    for name in names:
        found = compare(got[name], want[name], f"the diagonal for {name!r}", rtol=1e-6,
                        atol=1e-9)
        value = as_array(got[name], name)
        if not found or value.shape != (5,):
            problems += found
        elif name == "exp(3z)" and np.allclose(value, want["identity"], rtol=1e-6):
            problems.append("the diagonal for 'exp(3z)' equals the identity's: bin exp(3z) "
                            "itself, with equal-width bins of its own range.")
        elif name != "identity" and identity_right and name != "exp(3z)":
            problems += found + [f"{name} is an affine map of z with a ≠ 0: the bin edges move "
                                 "with the values, so the MI should not change."]
        else:
            problems += found
    return problems


# chapters/05_intervention_metrics: intervention metrics ------------------------------------------

@exercise_check("ex-m05-duplicated",
                answer="the vote matrix, an array of shape (5, 6) (factors × codes) of vote "
                       "counts from 1,000 votes")
def _ex_m05_duplicated(answer: Any) -> list[str]:
    import numpy as np

    votes = as_array(answer, "votes")
    if votes.shape == (6, 5):
        return ["votes has shape (6, 5): rows are the 5 factors, columns the 6 codes."]
    if votes.shape != (5, 6):
        raise WrongForm(f"votes has shape {votes.shape}.")
    if not np.all(np.isfinite(votes)) or np.any(votes < 0) or np.any(votes != np.round(votes)):
        return ["votes should hold counts: non-negative whole numbers."]
    if votes.sum() != 1000:
        return [f"votes holds {votes.sum():g} votes; the exercise asks for 1,000."]
    problems = []
    if votes[:, 5].sum() > 0:
        problems.append("the copy z5 receives votes: when shape is fixed, z0 and z5 both have "
                        "zero variance, and the argmin takes the first of them.")
    if np.any(votes[:, :5] != np.diag(np.diag(votes[:, :5]))):
        problems.append("there are votes off the diagonal: fixing factor k freezes code k of "
                        "this code, while the other codes keep their variance.")
    expected, spread = 1000 / 5, 5 * math.sqrt(1000 * 0.2 * 0.8)
    rows = votes.sum(1)
    if not problems and np.any(np.abs(rows - expected) > spread):
        problems.append(f"the factors received {rows.astype(int).tolist()} votes; each vote "
                        "fixes a factor drawn uniformly, so about 200 each.")
    return problems


# chapters/06_information_metrics: information metrics --------------------------------------------

@exercise_check("ex-m06-ceiling",
                answer="an array of shape (99,): the normalised ceiling I / log K for "
                       "K = 2, ..., 100")
def _ex_m06_ceiling(answer: Any) -> list[str]:
    import numpy as np

    from dlib.metrics import histogram_discretize

    ceilings = as_array(answer, "ceilings")
    ks = np.arange(2, 101)
    if ceilings.shape != ks.shape:
        raise WrongForm(f"ceilings has shape {ceilings.shape}.")

    def normalised_entropy(bins, k):
        p = np.bincount(bins) / k
        p = p[p > 0]
        return -(p * np.log(p)).sum() / np.log(k)

    # dlib's bins, and exact arithmetic (they differ where c / (K - 1) lies on a bin edge)
    binned = np.array([normalised_entropy(histogram_discretize(
        (np.arange(k) / (k - 1))[:, None])[:, 0], k) for k in ks])
    exact = np.array([normalised_entropy(np.minimum(20 * np.arange(k) // (k - 1), 19), k)
                      for k in ks])
    ok = np.isclose(ceilings, binned, rtol=1e-6, atol=1e-9) | np.isclose(
        ceilings, exact, rtol=1e-6, atol=1e-9)
    if ok.all():
        return []
    logk = np.log(ks)
    if np.allclose(ceilings, binned * logk, rtol=1e-6) or np.allclose(ceilings, exact * logk,
                                                                       rtol=1e-6):
        return ["ceilings are in nats: divide each by log K."]
    if np.allclose(ceilings[ks > 20], 1):
        return ["for K > 20 there are more classes than bins, so some classes share a bin and "
                "the ceiling is below 1."]
    bad = ks[~ok]
    small = bad[bad <= 20]
    if len(small):
        return [f"the ceiling for K = {int(small[0])} should be 1: with K ≤ 20 every class "
                "has its own bin."]
    return [f"ceilings differ from the entropy of the bin occupancy for {len(bad)} values of "
            f"K, e.g. K = {int(bad[0])}: class c has value c / (K − 1) and falls into one of "
            "20 equal-width bins of [0, 1]."]


# chapters/07_predictor_metrics: predictor metrics ------------------------------------------------

@exercise_check("ex-m07-two-in-one", answer="a dict with 'D' and 'C', two numbers")
def _ex_m07_two_in_one(answer: Any) -> list[str]:
    values = {k: as_number(v, k) for k, v in parts(answer, ("D", "C")).items()}
    swapped = "that is the other score: rows of R are codes, columns factors."
    targets = {
        "D": Hidden("c18f6d9364e8585b8aee", rtol=1e-4, positive=True, mistakes={
            "abdc91311a4fa2221ab5": "a plain mean over all five codes; weight each code by "
                                    "its share ρᵢ of the total importance.",
            "3910e8b267840d921598": "a plain mean over the four live codes; weight each code "
                                    "by its share ρᵢ of the total importance.",
            "1dfd95e21fa6cbce16d2": swapped,
        }),
        "C": Hidden("8e8d1628da17c0bdce75", rtol=1e-4, positive=True, mistakes={
            "b84311628beddc7cdf49": swapped,
        }),
    }
    return [p for key, hidden in targets.items()
            for p in hidden.problems("ex-m07-two-in-one", key, values[key])]


# chapters/08_irs_and_unsupervised: IRS and unsupervised scores -----------------------------------

@exercise_check("ex-m08-tc-noise",
                answer="an array of shape (1000,): TC(Σ) − TC(Σ + Λ) for each of the given "
                       "pairs, in order")
def _ex_m08_tc_noise(answer: Any) -> list[str]:
    import numpy as np

    def gaussian_tc(cov):  # sum of the marginal entropies minus the joint entropy, in nats
        return 0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1])

    rs = np.random.RandomState(0)
    want = []
    for _ in range(1000):
        a = rs.standard_normal((6, 6))
        sigma = a @ a.T + 1e-3 * np.eye(6)
        lam = np.diag(rs.exponential(size=6) * rs.binomial(1, 0.7, size=6))
        want.append(gaussian_tc(sigma) - gaussian_tc(sigma + lam))
    gaps = as_array(answer, "gaps")
    if gaps.ndim == 1 and len(gaps) == len(want) and np.all(np.isfinite(gaps)) and np.any(
            gaps < -1e-8) and not np.allclose(gaps, -np.array(want), rtol=1e-6, atol=1e-8):
        return ["some gaps are negative, which the inequality rules out: compute "
                "TC(Σ) − TC(Σ + Λ) with the Gaussian TC of each covariance."]
    return compare(gaps, np.array(want), "gaps", rtol=1e-6, atol=1e-8)
