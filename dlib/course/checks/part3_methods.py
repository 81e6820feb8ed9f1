"""Self-checks of Part III · Methods: β-VAE, AnnealedVAE, FactorVAE, β-TCVAE, DIP-VAE
and InfoGAN / InfoWGAN-GP (chapters/10_beta_vae to chapters/15_infogan).

Each check recomputes the expected answer (closed forms with ``torch.distributions``, exact
probabilities, the exercise's seeded inputs), so no target number is stored here.
"""

from __future__ import annotations

import math
from typing import Any

from dlib.course.checks.core import WrongForm, as_number, compare, exercise_check, parts

# chapters/10_beta_vae: β-VAE ---------------------------------------------------------------------


@exercise_check("ex-m10-channel",
                answer="a function sigma_for_kl(kl) of a number of nats that returns the "
                       "posterior standard deviation (one number)")
def _ex_m10_channel(answer: Any) -> list[str]:
    if not callable(answer):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    kls = [0.05, 0.5, 1.0, 2.3, 5.0]
    try:
        got = [as_number(answer(k), f"sigma_for_kl({k})") for k in kls]
    except WrongForm:
        raise
    except Exception as err:  # the learner's function failed
        return [f"sigma_for_kl raised {type(err).__name__}: {err}"]
    want = [math.exp(-k) for k in kls]
    if any(g <= 0 for g in got):
        return ["a standard deviation must be positive."]
    if all(math.isclose(g, math.exp(-2 * k), rel_tol=1e-6) for g, k in zip(got, kls,
                                                                             strict=True)):
        return ["that is σ² (the variance) for the given KL; the question asks for σ."]
    if all(math.isclose(g, math.exp(-k / 2), rel_tol=1e-6) for g, k in zip(got, kls,
                                                                            strict=True)):
        return ["the KL is −log σ, not −½ log σ: the ½ cancels against σ² inside the log."]
    return compare(got, want, "sigma_for_kl at KL = 0.05, 0.5, 1, 2.3, 5 nats", rtol=1e-6)
# chapters/11_annealed_vae: AnnealedVAE -----------------------------------------------------------


@exercise_check("ex-m11-nats",
                answer="a dict with 'H_factors', 'H_position' and 'excess' (numbers, in nats)")
def _ex_m11_nats(answer: Any) -> list[str]:
    values = {k: as_number(v, k)
              for k, v in parts(answer, ("H_factors", "H_position", "excess")).items()}
    sizes = (3, 6, 40, 32, 32)  # dSprites: shape, scale, orientation, posX, posY
    h_factors = sum(math.log(k) for k in sizes)
    h_position = math.log(32 * 32)
    want = {"H_factors": h_factors, "H_position": h_position, "excess": 25.0 - h_factors}
    problems = []
    for key, target in want.items():
        got = values[key]
        if math.isclose(got, target, rel_tol=1e-4, abs_tol=1e-6):
            continue
        if math.isclose(got * math.log(2), target, rel_tol=1e-4) or (
                key == "excess" and math.isclose(25.0 - got, h_factors / math.log(2),
                                                 rel_tol=1e-4)):
            problems.append(f"{key} is in bits: use natural logarithms (nats).")
        elif key == "H_factors" and math.isclose(got, math.log(sum(sizes)), rel_tol=1e-4):
            problems.append("H_factors: the entropies of independent uniform factors add, so "
                            "it is log of the *product* of the numbers of values.")
        elif key == "excess" and math.isclose(got, -(25.0 - h_factors), rel_tol=1e-4):
            problems.append("excess has the wrong sign: it is C_max minus the factors' entropy.")
        else:
            problems.append(f"{key} = {got:.6g} is not right; every factor is uniform and "
                            "independent of the others.")
    return problems


# chapters/12_factor_vae: FactorVAE ---------------------------------------------------------------


@exercise_check("ex-m12-optimal-logit",
                answer="a function optimal_logit(z, rho) of a float64 tensor z of shape (B, 2) "
                       "and a correlation rho that returns the B log-odds")
def _ex_m12_optimal_logit(answer: Any) -> list[str]:
    import torch

    if not callable(answer):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
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
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
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


# chapters/13_beta_tcvae: β-TCVAE -----------------------------------------------------------------


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


# chapters/14_dip_vae: DIP-VAE --------------------------------------------------------------------


def _m14_sigma():
    import numpy as np

    rs = np.random.RandomState(0)
    b = rs.standard_normal((6, 6))
    return np.eye(6) + 0.05 * (b + b.T)


@exercise_check("ex-m14-second-order",
                answer="a dict with 'kl' (the exact Gaussian KL) and 'quarter_penalty' (DIP's "
                       "penalty with both weights 1/4), two numbers")
def _ex_m14_second_order(answer: Any) -> list[str]:
    import numpy as np

    got = {k: as_number(v, k) for k, v in parts(answer, ("kl", "quarter_penalty")).items()}
    sigma = _m14_sigma()
    kl = 0.5 * (np.trace(sigma) - 6 - np.linalg.slogdet(sigma)[1])
    off = float((sigma**2).sum() - (np.diag(sigma) ** 2).sum())
    diag = float(((np.diag(sigma) - 1) ** 2).sum())
    quarter = 0.25 * off + 0.25 * diag
    problems = []
    if math.isclose(got["kl"], quarter, rel_tol=1e-9) and math.isclose(
            got["quarter_penalty"], kl, rel_tol=1e-9):
        return ["the two numbers are swapped."]
    if not math.isclose(got["kl"], kl, rel_tol=1e-6):
        if math.isclose(got["kl"], 2 * kl, rel_tol=1e-6):
            problems.append("kl is twice the KL: the Gaussian KL has a factor ½ in front.")
        elif math.isclose(got["kl"], 0.5 * (np.trace(sigma) - 6), rel_tol=1e-6, abs_tol=1e-12):
            problems.append("kl lacks the −log det Σ term.")
        else:
            problems.append(f"kl = {got['kl']:.6g} is not ½(tr Σ − D − log det Σ) for the "
                            "given Σ.")
    if not math.isclose(got["quarter_penalty"], quarter, rel_tol=1e-6):
        if math.isclose(got["quarter_penalty"], 4 * quarter, rel_tol=1e-6):
            problems.append("quarter_penalty uses weights 1, not ¼.")
        elif math.isclose(got["quarter_penalty"], 0.25 * off, rel_tol=1e-6):
            problems.append("quarter_penalty lacks the diagonal part ¼ Σ (Σ_ii − 1)².")
        elif math.isclose(got["quarter_penalty"], 0.25 * off / 2, rel_tol=1e-6):
            problems.append("quarter_penalty counts each off-diagonal pair once; the sum runs "
                            "over i ≠ j, both orders.")
        else:
            problems.append(f"quarter_penalty = {got['quarter_penalty']:.6g} is not "
                            "¼ Σ_{i≠j} Σ_ij² + ¼ Σ_i (Σ_ii − 1)² for the given Σ.")
    return problems


# chapters/15_infogan: InfoGAN and InfoWGAN-GP ----------------------------------------------------


def _m15_toy(s: float = 0.5) -> tuple[float, float]:
    """(H(c) + L for the Gaussian Q, exact I(c; x)) for x = c + s·n, c ~ U[−1, 1]."""
    import numpy as np

    bound = math.log(2) - 0.5 * math.log(2 * math.pi * math.e * s**2)
    grid = np.linspace(-6, 6, 24_001)
    dx = grid[1] - grid[0]
    cdf = np.vectorize(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))))
    p_x = 0.5 * (cdf((grid + 1) / s) - cdf((grid - 1) / s))
    h_x = -float(np.sum(p_x * np.log(np.maximum(p_x, 1e-300))) * dx)
    return bound, h_x - 0.5 * math.log(2 * math.pi * math.e * s**2)


@exercise_check("ex-m15-bound-gap",
                answer="a dict with 'bound' (H(c) + L for the Gaussian Q), 'exact' (I(c; x)) "
                       "and 'gap' (exact − bound), three numbers in nats")
def _ex_m15_bound_gap(answer: Any) -> list[str]:
    got = {k: as_number(v, k) for k, v in parts(answer, ("bound", "exact", "gap")).items()}
    bound, exact = _m15_toy()
    problems = []
    if not math.isclose(got["bound"], bound, rel_tol=1e-6, abs_tol=1e-9):
        if math.isclose(got["bound"], math.log(2) - 0.5 * math.log(2 * math.pi * 0.25),
                        rel_tol=1e-6):
            problems.append("bound lacks the e inside the log: E(c − x)²/(2s²) = ½ adds ½ "
                            "nat.")
        else:
            problems.append(f"bound = {got['bound']:.6g} is not log 2 − ½ log(2πe s²) at "
                            "s = 0.5.")
    if not math.isclose(got["exact"], exact, rel_tol=1e-4, abs_tol=1e-6):
        if math.isclose(got["exact"], exact + 0.5 * math.log(2 * math.pi * math.e * 0.25),
                        rel_tol=1e-4):
            problems.append("exact is h(x); subtract the noise entropy h(s·n) to get I(c; x).")
        else:
            problems.append(f"exact = {got['exact']:.6g} is not h(x) − h(s·n) at s = 0.5.")
    if got["gap"] < 0:
        problems.append("gap is negative: it is exact − bound, a KL, never below zero.")
    elif not math.isclose(got["gap"], got["exact"] - got["bound"], rel_tol=1e-6,
                          abs_tol=1e-9):
        problems.append("gap should be exact − bound.")
    return problems
