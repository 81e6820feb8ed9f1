"""Self-checks of Part I · Foundations: VAE basics and KL decompositions
(chapters/01_vae_basics, chapters/02_kl_decompositions).

Each check recomputes what it needs (``torch.distributions``, closed forms) or compares with a
hidden digest, so no target number is stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks.core import Hidden, WrongForm, as_array, as_number, exercise_check, parts

# chapters/01_vae_basics: variational autoencoders ------------------------------------------------

@exercise_check("ex-vae-kl-multivariate",
                answer="a function kl(m, Sigma) of a mean of shape (D,) and a covariance of "
                       "shape (D, D) (float64 tensors) that returns one number")
def _ex_vae_kl_multivariate(answer: Any) -> list[str]:
    import torch

    if not callable(answer):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    g = torch.Generator().manual_seed(2024)
    f64 = {"dtype": torch.float64}

    def full(d):
        a = torch.randn(d, d, generator=g, **f64)
        return torch.randn(d, generator=g, **f64), a @ a.T + 0.2 * torch.eye(d, **f64)

    def diagonal(d):
        return (torch.randn(d, generator=g, **f64),
                torch.diag(torch.rand(d, generator=g, **f64) * 2 + 0.1))

    cases = {
        "μ = 0, Σ = I (D = 2)": ("trivial", (torch.zeros(2, **f64), torch.eye(2, **f64))),
        "diagonal Σ (D = 1)": ("diagonal", diagonal(1)),
        "diagonal Σ (D = 4)": ("diagonal", diagonal(4)),
        "μ = 0, full Σ (D = 3)": ("zero-mean", (torch.zeros(3, **f64), full(3)[1])),
        "full Σ (D = 3)": ("full", full(3)),
        "full Σ (D = 5)": ("full", full(5)),
    }
    got, want = {}, {}
    for case, (_, (m, cov)) in cases.items():
        q = torch.distributions.MultivariateNormal(m, cov)
        p = torch.distributions.MultivariateNormal(torch.zeros_like(m), torch.eye(len(m), **f64))
        want[case] = torch.distributions.kl_divergence(q, p).item()
        try:
            out = answer(m.clone(), cov.clone())
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure of the learner's code
            return [f"For {case} your function raised {type(err).__name__}: {err}"]
        got[case] = as_number(out.detach() if hasattr(out, "detach") else out,
                              f"The value for {case}")
    wrong = [c for c in cases if not math.isclose(got[c], want[c], rel_tol=1e-6, abs_tol=1e-9)]
    if not wrong:
        return []
    kinds = {cases[c][0] for c in wrong}
    nonzero = [c for c in cases if abs(want[c]) > 1e-9]
    ratios = [got[c] / want[c] for c in nonzero]
    diffs = [got[c] - want[c] for c in cases]
    if all(math.isclose(r, -1, rel_tol=1e-6) for r in ratios):
        return ["Your KL has the wrong sign (a KL divergence is never negative)."]
    if all(math.isclose(r, ratios[0], rel_tol=1e-6) for r in ratios):
        return [f"Your KL is off by a constant factor of {ratios[0]:.4g}."]
    if all(math.isclose(d, diffs[0], abs_tol=1e-6) for d in diffs):
        return [f"Your KL is off by a constant {diffs[0]:+.4g} for every input."]
    per_dim = [d / len(cases[c][1][0]) for c, d in zip(cases, diffs, strict=True)]
    if all(math.isclose(x, per_dim[0], abs_tol=1e-6) for x in per_dim):
        return [f"Your KL is off by {per_dim[0]:+.4g} per dimension: check the constant term."]
    example = wrong[0]
    hint = ""
    if kinds <= {"full", "zero-mean"}:
        hint = (" It is right for diagonal covariances but not for full ones: use the whole "
                "matrix (its trace and log-determinant), not only its diagonal.")
    elif "trivial" not in kinds and "zero-mean" not in kinds and "full" in kinds:
        hint = " It is right when μ = 0: check the term in μ."
    return [f"Your KL differs from the exact one for {len(wrong)} of {len(cases)} test inputs, "
            f"e.g. for {example} you return {got[example]:.6g}, the KL is {want[example]:.6g}."
            + hint]


@exercise_check("ex-vae-reparam-variance",
                answer="a dict with 'reparam' and 'score', each a 1-D array or tensor of "
                       "single-sample estimates of the derivative with respect to μ")
def _ex_vae_reparam_variance(answer: Any) -> list[str]:
    import numpy as np

    mu, min_samples = 0.7, 100_000
    estimates = {k: as_array(v, k) for k, v in parts(answer, ("reparam", "score")).items()}
    targets = {
        "reparam": Hidden("cbc6a623af3b3fa22772", rtol=0.05, positive=True),
        "score": Hidden("e9972e4cda9cb9622ad9", rtol=0.1, positive=True),
    }
    problems = []
    for name, x in estimates.items():
        if x.ndim != 1:
            problems.append(f"{name} should be a 1-D array of per-sample estimates, "
                            f"not shape {x.shape}.")
            continue
        if len(x) < min_samples:
            problems.append(f"{name} has {len(x):,} samples; use at least {min_samples:,} "
                            "(the variance of a variance estimate is large).")
            continue
        if not np.all(np.isfinite(x)):
            problems.append(f"{name} has non-finite entries.")
            continue
        mean, se = x.mean(), x.std() / math.sqrt(len(x))
        if abs(mean - 2 * mu) > 5 * se:
            problems.append(f"{name} has mean {mean:.4f} ± {se:.4f}, but both estimators are "
                            f"unbiased for the exact derivative 2μ = {2 * mu:g}.")
            continue
        problems += targets[name].problems("ex-vae-reparam-variance", f"the variance of {name}",
                                           float(x.var()))
    return problems


# chapters/02_kl_decompositions: KL decompositions ------------------------------------------------

@exercise_check("ex-kld-mws-constant",
                answer="a dict with 'tc_mws' and 'tc_free', the MWS estimate of TC on the given "
                       "batch and the same estimate without the constant (numbers)")
def _ex_kld_mws_constant(answer: Any) -> list[str]:
    values = {k: as_number(v, k) for k, v in parts(answer, ("tc_mws", "tc_free")).items()}
    targets = {
        "tc_mws": Hidden(
            "de22254bb84d3c493074", rtol=1e-4, positive=True, mistakes={
                "65d5d7e19a04f33943f7": "the aggregate term also carries a −log N: the "
                                        "result has D − 1 copies of log N, not D.",
            }),
        "tc_free": Hidden(
            "4f42b7e1e73c1ce15c37", rtol=1e-4, mistakes={
                "4ec98c6783af532163bb": "count the log M terms: the joint's one and the D "
                                        "marginals' leave D − 1 of them, not D.",
                "fbf193c7ed6f0caaabbf": "subtract (D − 1) log(NM) from the MWS estimate, not "
                                        "from zero.",
            }),
    }
    return [p for key, hidden in targets.items()
            for p in hidden.problems("ex-kld-mws-constant", key, values[key])]
