"""Self-checks of Part III's total-correlation chapters: FactorVAE and β-TCVAE
(chapters/12_factor_vae, chapters/13_beta_tcvae).

Imported by :mod:`dlib.course.checks`, which registers every ``checks_*`` sibling module. Each
check recomputes what it needs (closed forms with ``torch.distributions``, exact probabilities),
so no expected number is stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks import _WrongForm, as_number, exercise_check, parts

# chapters/12_factor_vae: FactorVAE --------------------------------------------------------------


@exercise_check("ex-m12-optimal-logit",
                answer="a function optimal_logit(z, rho) of a float64 tensor z of shape (B, 2) "
                       "and a correlation rho that returns the B log-odds")
def _ex_m12_optimal_logit(answer: Any) -> list[str]:
    import torch

    if not callable(answer):
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    g = torch.Generator().manual_seed(12)
    problems: list[str] = []
    for rho in (0.0, 0.3, -0.6, 0.9):
        cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
        joint = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
        marginal = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), 1.0)
        z = 2 * torch.randn(64, 2, generator=g, dtype=torch.float64)
        want = joint.log_prob(z) - marginal.log_prob(z).sum(1)
        try:
            got = answer(z.clone(), rho)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure of the learner's code
            return [f"For rho = {rho} your function raised {type(err).__name__}: {err}"]
        got = torch.as_tensor(got, dtype=torch.float64).detach().cpu().reshape(-1)
        if got.shape != want.shape:
            return [f"For a batch of 64 codes your function returns shape {tuple(got.shape)}; "
                    "it should return one log-odds per code, shape (64,)."]
        if not torch.isfinite(got).all():
            return [f"For rho = {rho} your function returns non-finite values."]
        if torch.allclose(got, want, rtol=1e-6, atol=1e-8):
            continue
        if torch.allclose(-got, want, rtol=1e-6, atol=1e-8):
            return ["Your log-odds have the wrong sign: it is log q(z) minus the log marginals."]
        diff = got - want
        if torch.allclose(diff, diff[0].expand_as(diff), atol=1e-6):
            problems.append(f"For rho = {rho} your log-odds are off by the constant "
                            f"{float(diff[0]):+.4g}: check the log-determinant term.")
        else:
            problems.append(f"For rho = {rho} your log-odds differ from the exact ones, e.g. "
                            f"{float(got[0]):.6g} instead of {float(want[0]):.6g} for "
                            f"z = {z[0].tolist()}: check the quadratic form.")
        break
    return problems


@exercise_check("ex-m12-prior-split",
                answer="a function kl_parts(mean, cov) of float64 tensors of shapes (d,) and "
                       "(d, d) that returns a dict with the keys 'kl', 'tc' and 'dim_kl'")
def _ex_m12_prior_split(answer: Any) -> list[str]:
    import torch

    if not callable(answer):
        raise _WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    g = torch.Generator().manual_seed(120)
    for d in (1, 2, 4):
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        cov = a @ a.T + 0.3 * torch.eye(d, dtype=torch.float64)
        mean = torch.randn(d, generator=g, dtype=torch.float64)
        q = torch.distributions.MultivariateNormal(mean, cov)
        p = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=torch.float64),
                                                   torch.eye(d, dtype=torch.float64))
        sd = cov.diagonal().sqrt()
        marg = torch.distributions.kl_divergence(torch.distributions.Normal(mean, sd),
                                                 torch.distributions.Normal(0.0, 1.0)).sum()
        # TC from a Monte-Carlo-free identity of its own: the KL between q and the product
        # of its marginals (a Gaussian with the same means and a diagonal covariance)
        product = torch.distributions.MultivariateNormal(mean, torch.diag(cov.diagonal()))
        want = {"kl": float(torch.distributions.kl_divergence(q, p)),
                "tc": float(torch.distributions.kl_divergence(q, product)),
                "dim_kl": float(marg)}
        try:
            got = answer(mean.clone(), cov.clone())
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure of the learner's code
            return [f"For d = {d} your function raised {type(err).__name__}: {err}"]
        mine = {k: as_number(v, k) for k, v in parts(got, want).items()}
        problems = [f"For d = {d}, {key} = {mine[key]:.6g} is not the closed form ({value:.6g})."
                    for key, value in want.items()
                    if not math.isclose(mine[key], value, rel_tol=1e-6, abs_tol=1e-9)]
        if problems:
            if d == 1 and abs(mine["tc"]) > 1e-9:
                problems.append("In one dimension there is nothing to correlate: the TC is 0.")
            return problems
    return []


@exercise_check("ex-m12-unpermuted",
                answer="a dict with keys (8, 2) and (8, 3), each the simulated fraction of "
                       "permuted rows that equal an original row (a number)")
def _ex_m12_unpermuted(answer: Any) -> list[str]:
    values = {k: as_number(v, f"the fraction for (B, D) = {k}")
              for k, v in parts(answer, [(8, 2), (8, 3)]).items()}
    problems = []
    for (b, d), got in values.items():
        want = b ** (1 - d)
        if not 0 <= got <= 1:
            problems.append(f"The fraction for (B, D) = {(b, d)} is {got:.4g}; a fraction lies "
                            "in [0, 1].")
        elif math.isclose(got, b ** (-d), rel_tol=0.15):
            problems.append(f"The fraction for (B, D) = {(b, d)} looks like B^(-D): the common "
                            "index can be any of the B rows.")
        elif abs(got - want) > 0.1 * want + 0.002:
            problems.append(f"The fraction for (B, D) = {(b, d)} is {got:.4g}, too far from the "
                            "exact probability for a simulation of 20,000 batches: count a row "
                            "when all D of its coordinates come from the same original row.")
    return problems


# chapters/13_beta_tcvae: β-TCVAE ----------------------------------------------------------------


def _m13_tensors(seed: int, sharp: bool):
    """The posteriors and samples the exercise cells of chapters/13_beta_tcvae draw (same seeds,
    same order)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    f64 = {"dtype": torch.float64}
    if sharp:
        mean = torch.randn(64, 10, generator=g, **f64)
        logvar = torch.full((64, 10), -2.4, **f64)
    else:
        mean = torch.randn(32, 10, generator=g, **f64)
        logvar = -2 + torch.randn(32, 10, generator=g, **f64)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g, **f64)
    return z, mean, logvar


@exercise_check("ex-m13-beta1",
                answer="a number: the batch mean of log q(z|x) − log p(z) for the given "
                       "posteriors and samples")
def _ex_m13_beta1(answer: Any) -> list[str]:
    import torch

    got = as_number(answer, "one_sample_kl")
    z, mean, logvar = _m13_tensors(13, sharp=False)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    want = float((q.log_prob(z) - p.log_prob(z)).sum(1).mean())
    if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-8):
        return []
    if math.isclose(got, -want, rel_tol=1e-6):
        return ["one_sample_kl has the wrong sign: it is log q(z|x) minus log p(z)."]
    closed = float((0.5 * (mean**2 + logvar.exp() - logvar - 1)).sum(1).mean())
    if math.isclose(got, closed, rel_tol=1e-6):
        return ["That is the closed-form KL; the exercise asks for the one-sample estimate at "
                "the given samples z."]
    if math.isclose(got, want * 10, rel_tol=1e-6) or math.isclose(got, want / 32, rel_tol=1e-6):
        return ["Sum over the 10 latent dimensions and average over the 32 samples."]
    return [f"one_sample_kl = {got:.6g} is not the one-sample KL of the given batch: evaluate "
            "both log-densities at z, sum over dimensions, average over the batch."]


@exercise_check("ex-m13-dataset-size",
                answer="a dict with 'mi' and 'tc', the MSS terms with N = 737,280 minus those "
                       "with N = 4,096 (numbers)")
def _ex_m13_dataset_size(answer: Any) -> list[str]:
    from dlib.theory.kl import batch_kl_decomposition

    got = {k: as_number(v, k) for k, v in parts(answer, ("mi", "tc")).items()}
    z, mean, logvar = _m13_tensors(14, sharp=True)
    right = batch_kl_decomposition(z, mean, logvar, 4_096, "mss")
    wrong = batch_kl_decomposition(z, mean, logvar, 737_280, "mss")
    want = {k: float(wrong[k] - right[k]) for k in ("mi", "tc")}
    if all(math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-8) for k in want):
        return []
    if all(math.isclose(got[k], -want[k], rel_tol=1e-6) for k in want):
        return ["Both changes have the wrong sign: subtract the terms with N = 4,096 from those "
                "with N = 737,280."]
    if math.isclose(got["mi"], want["tc"], rel_tol=1e-6) and math.isclose(
            got["tc"], want["mi"], rel_tol=1e-6):
        return ["'mi' and 'tc' are swapped."]
    approx = math.log(737_280 / 4_096)
    if any(math.isclose(abs(got[k]), approx, rel_tol=1e-4) for k in got):
        return ["log(737280/4096) is the approximation for infinitely sharp posteriors; compute "
                "the terms on the given posteriors with theory.batch_kl_decomposition."]
    bad = [k for k in want if not math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-8)]
    return [f"The change of {', '.join(bad)} differs from the MSS terms of the given batch "
            "computed with both values of N."]
