"""Tests of dlib.theory: the KL decomposition and its estimators against independent computations.

Reference values come from numerical integration on a fine grid (2-D mixtures), from closed forms
(identical posteriors, correlated Gaussians) or from the exact mixture density.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dlib import theory
from dlib.distributions import gaussian_kl

# --- a small 2-D mixture and its terms by numerical integration --------------------------------

MEANS_2D = torch.tensor(
    [[0.0, 0.0], [1.5, 0.5], [-1.0, 1.2], [0.8, -1.5], [-1.6, -0.7]], dtype=torch.float64
)
LOGVARS_2D = torch.log(
    torch.tensor([[0.5, 0.3], [0.2, 0.6], [0.4, 0.4], [0.9, 0.2], [0.3, 0.8]], dtype=torch.float64)
    ** 2
)


def _normal_pdf(x: np.ndarray, mu: float, var: float) -> np.ndarray:
    return np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)


def grid_terms(mean: torch.Tensor, logvar: torch.Tensor, half_width: float = 8.0, num: int = 1601):
    """MI, TC, dimension-wise KL and KL(q(z)‖p) of a 2-D mixture by Riemann sums on a grid."""
    mu, var = mean.numpy(), np.exp(logvar.numpy())
    x = np.linspace(-half_width, half_width, num)
    h = x[1] - x[0]
    comp = [
        [_normal_pdf(x, mu[k, d], var[k, d]) for d in range(2)] for k in range(len(mu))
    ]  # per component, per dimension: 1-D densities on the axis
    q1 = np.mean([c[0] for c in comp], axis=0)
    q2 = np.mean([c[1] for c in comp], axis=0)
    q = np.mean([np.outer(c[0], c[1]) for c in comp], axis=0)
    p1 = _normal_pdf(x, 0.0, 1.0)

    def xlogy(a, b):
        return np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0) / np.where(b > 0, b, 1.0)), 0.0)

    ent_q = -np.sum(xlogy(q, np.ones_like(q))) * h * h
    ent_components = np.mean(0.5 * np.sum(np.log(2 * np.pi * np.e * var), axis=1))
    tc = np.sum(xlogy(q, np.outer(q1, q2))) * h * h
    dim_kl = (np.sum(xlogy(q1, p1)) + np.sum(xlogy(q2, p1))) * h
    marginal_kl = np.sum(xlogy(q, np.outer(p1, p1))) * h * h
    return {"mi": ent_q - ent_components, "tc": tc, "dim_kl": dim_kl, "marginal_kl": marginal_kl}


def test_grid_reference_is_self_consistent():
    ref = grid_terms(MEANS_2D, LOGVARS_2D)
    avg_kl = float(gaussian_kl(MEANS_2D, LOGVARS_2D).sum(1).mean())
    assert ref["mi"] + ref["tc"] + ref["dim_kl"] == pytest.approx(avg_kl, abs=1e-6)
    assert ref["tc"] + ref["dim_kl"] == pytest.approx(ref["marginal_kl"], abs=1e-6)


def test_kl_decomposition_matches_numerical_integration():
    ref = grid_terms(MEANS_2D, LOGVARS_2D)
    dec = theory.kl_decomposition(
        MEANS_2D, LOGVARS_2D, samples_per_point=40_000, generator=torch.Generator().manual_seed(0)
    )
    for name in ("mi", "tc", "dim_kl", "marginal_kl"):
        est = getattr(dec, name)
        assert abs(est.value - ref[name]) <= 4 * est.se + 1e-4, (name, est, ref[name])
    assert dec.num_samples == 5 * 40_000


def test_decomposition_identities():
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(40, 4, generator=g), torch.randn(40, 4, generator=g) - 1.0
    dec = theory.kl_decomposition(mean, logvar, samples_per_point=200, generator=g)
    # per sample the three terms telescope to log q(z|x) − log p(z): equal to rounding
    total = dec.mi.value + dec.tc.value + dec.dim_kl.value
    assert total == pytest.approx(dec.kl_mc.value, abs=1e-9)
    assert dec.tc.value + dec.dim_kl.value == pytest.approx(dec.marginal_kl.value, abs=1e-9)
    assert dec.dim_kl_per_dim.sum() == pytest.approx(dec.dim_kl.value, abs=1e-9)
    # ... and the Monte-Carlo KL estimates the closed form
    assert abs(dec.kl_mc.value - dec.kl) <= 4 * dec.kl_mc.se
    # I(n; z) is at most H(n) = log N; TC and the KLs are non-negative (up to noise)
    assert dec.mi.value <= math.log(40) + 4 * dec.mi.se
    for est in (dec.tc, dec.dim_kl, dec.marginal_kl):
        assert est.value >= -4 * est.se
    assert "total correlation" in dec.table()


def test_kl_decomposition_rejects_bad_input():
    with pytest.raises(ValueError, match="mean and logvar"):
        theory.kl_decomposition(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="samples_per_point"):
        theory.kl_decomposition(torch.zeros(3, 2), torch.zeros(3, 2), samples_per_point=1)


# --- the MSS importance weights ---------------------------------------------------------------


@pytest.mark.parametrize("batch_size, dataset_size", [(2, 10), (5, 5), (8, 1000), (64, 737_280)])
def test_mss_weights_sum_to_one_and_sit_on_the_diagonal(batch_size, dataset_size):
    w = theory.mss_log_weights(batch_size, dataset_size, dtype=torch.float64).exp()
    b, n, m = batch_size, dataset_size, batch_size - 1
    assert torch.allclose(w.sum(1), torch.ones(b, dtype=torch.float64))
    assert torch.allclose(torch.diagonal(w), torch.full((b,), 1.0 / n, dtype=torch.float64))
    strat = (n - m) / (n * m)
    rows = torch.arange(b)
    assert torch.allclose(w[rows, (rows + 1) % b], torch.full((b,), strat, dtype=torch.float64))
    if b > 2:  # every other entry is 1/M
        mask = torch.ones(b, b, dtype=torch.bool)
        mask[rows, rows] = False
        mask[rows, (rows + 1) % b] = False
        assert torch.allclose(w[mask], torch.full((int(mask.sum()),), 1.0 / m, dtype=torch.float64))


def test_mss_column0_reproduces_the_public_code_and_differs():
    b, n = 6, 100
    m = b - 1
    strat = (n - m) / (n * m)
    expected = np.full((b, b), 1.0 / m)  # the reference code's layout, written out
    expected[:, 0] = 1.0 / n
    expected[:, 1] = strat
    expected[m - 1, 0] = strat
    buggy = theory.mss_log_weights(b, n, placement="column0", dtype=torch.float64).exp()
    assert np.allclose(buggy.numpy(), expected)
    correct = theory.mss_log_weights(b, n, dtype=torch.float64).exp()
    assert not torch.allclose(buggy, correct)
    assert not torch.allclose(torch.diagonal(buggy)[1:], torch.full((b - 1,), 1.0 / n).double())
    assert not torch.allclose(buggy.sum(1), torch.ones(b, dtype=torch.float64))  # row M − 1


def test_mss_weights_reject_bad_sizes():
    with pytest.raises(ValueError, match="at least 2"):
        theory.mss_log_weights(1, 10)
    with pytest.raises(ValueError, match="larger than the data set"):
        theory.mss_log_weights(11, 10)
    with pytest.raises(ValueError, match="placement"):
        theory.mss_log_weights(4, 10, placement="diag")


def _density_estimates(estimator: str, num_batches: int = 3000):
    """Batch estimates of q(z*) for one fixed z* ~ q(z | x_0), x_0 at a random batch position."""
    g = torch.Generator().manual_seed(3)
    n, b = 12, 4
    mean = torch.randn(n, 2, generator=g, dtype=torch.float64)
    logvar = torch.full((n, 2), math.log(0.7**2), dtype=torch.float64)
    z_star = theory.sample_aggregate(mean[:1], logvar[:1], 1, g)[0]
    exact = torch.logsumexp(theory.log_density_matrix(z_star, mean, logvar).sum(2), 1).exp() / n
    values = []
    for _ in range(num_batches):
        others = (torch.randperm(n - 1, generator=g)[: b - 1] + 1).tolist()
        pos = int(torch.randint(b, (1,), generator=g))
        idx = others[:pos] + [0] + others[pos:]
        z = theory.sample_aggregate(mean[idx], logvar[idx], b, g)[0]
        z[pos] = z_star[0]
        log_qz, _ = theory.batch_log_qz(z, mean[idx], logvar[idx], n, estimator)
        values.append(float(log_qz[pos].exp()))
    values = np.array(values)
    return float(exact), values.mean(), values.std() / math.sqrt(len(values))


def test_mss_is_an_unbiased_density_estimate():
    exact, mean, se = _density_estimates("mss")
    assert abs(mean - exact) <= 4 * se, (exact, mean, se)


def test_mss_column0_is_a_biased_density_estimate():
    exact, mean, se = _density_estimates("mss-column0")
    assert abs(mean - exact) > 10 * se, (exact, mean, se)


# --- batch estimators --------------------------------------------------------------------------


def test_batch_estimators_on_identical_posteriors():
    """N copies of one Gaussian: q(z) is that Gaussian, so MI = TC = 0 exactly. MSS's weights sum
    to one and recover it; MWS is off by −log N per density, i.e. its TC is (D − 1)·log N."""
    g = torch.Generator().manual_seed(4)
    n, b, d = 500, 16, 5
    mean = torch.randn(1, d, generator=g, dtype=torch.float64).expand(b, d)
    logvar = torch.randn(1, d, generator=g, dtype=torch.float64).expand(b, d)
    z = theory.sample_aggregate(mean, logvar, b, g)[0]
    mss = theory.batch_kl_decomposition(z, mean, logvar, n, "mss")
    assert abs(float(mss["mi"])) < 1e-9 and abs(float(mss["tc"])) < 1e-9
    mws = theory.batch_kl_decomposition(z, mean, logvar, n, "mws")
    assert float(mws["tc"]) == pytest.approx((d - 1) * math.log(n), abs=1e-9)
    assert float(mws["mi"]) == pytest.approx(math.log(n), abs=1e-9)


def test_mws_has_the_log_nm_constant():
    g = torch.Generator().manual_seed(5)
    n, b, d = 1000, 8, 3
    mean, logvar = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g) - 1
    z = theory.sample_aggregate(mean, logvar, b, g)[0]
    log_qz, log_qz_dims = theory.batch_log_qz(z, mean, logvar, n, "mws")
    mat = theory.log_density_matrix(z, mean, logvar)
    assert torch.allclose(log_qz, torch.logsumexp(mat.sum(2), 1) - math.log(n * b))
    assert torch.allclose(log_qz_dims, torch.logsumexp(mat, 1) - math.log(n * b))


def test_log_density_matrix_matches_torch_distributions():
    g = torch.Generator().manual_seed(6)
    z, mean, logvar = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    mat = theory.log_density_matrix(z, mean, logvar)
    dist = torch.distributions.Normal(mean[None], (0.5 * logvar[None]).exp())
    assert torch.allclose(mat, dist.log_prob(z[:, None]))


@pytest.mark.parametrize("estimator", ["mws", "mss", "mss-column0"])
def test_batch_terms_telescope_and_are_differentiable(estimator):
    g = torch.Generator().manual_seed(7)
    mean = torch.randn(16, 4, generator=g, requires_grad=True)
    logvar = (torch.randn(16, 4, generator=g) - 1).requires_grad_()
    z = theory.sample_aggregate(mean, logvar, 16, g)[0]  # reparameterised: depends on both
    terms = theory.batch_kl_decomposition(z, mean, logvar, 1000, estimator)
    total = terms["mi"] + terms["tc"] + terms["dim_kl"]
    zero = torch.zeros_like(z)
    one_sample_kl = (
        theory.gaussian_log_density(z, mean, logvar) - theory.gaussian_log_density(z, zero, zero)
    ).sum(1).mean()
    assert torch.allclose(total, one_sample_kl, atol=1e-4)
    total.backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(logvar.grad).all()


def test_batch_estimators_against_exact_terms():
    """A 3-D mixture of 256 sharp components: MSS is close to the exact terms and its bias shrinks
    with the batch; the column-0 placement underestimates the mutual information by about
    log(N/B), MWS overestimates it by about log B."""
    g = torch.Generator().manual_seed(8)
    n, d = 256, 3
    mean = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.tensor([1.5, 1.0, 0.2])
    mean[:, 2] += 0.5 * mean[:, 0]  # a correlated pair: TC > 0
    logvar = torch.full((n, d), math.log(0.1**2), dtype=torch.float64)
    exact = theory.kl_decomposition(mean, logvar, samples_per_point=100, generator=g)
    assert exact.tc.value > 1.0

    def bias(batch_size, estimator):
        r = theory.batch_estimates(mean, logvar, batch_size, 60, estimator, g).mean(0)
        return float(r[0]) - exact.mi.value, float(r[1]) - exact.tc.value

    mss_small, mss_large = bias(16, "mss"), bias(128, "mss")
    assert abs(mss_large[0]) < 0.1 and abs(mss_large[1]) < 0.2, mss_large
    assert abs(mss_large[1]) < abs(mss_small[1]) and abs(mss_large[0]) < abs(mss_small[0])
    mi_column0, mi_mws = bias(32, "mss-column0")[0], bias(32, "mws")[0]
    assert mi_column0 < -1.0 and mi_column0 < -3 * abs(bias(32, "mss")[0])
    assert mi_mws > 3.0


def test_batch_estimators_reject_bad_input():
    z, mean = torch.zeros(4, 2), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="unknown estimator"):
        theory.batch_log_qz(z, mean, mean, 10, "nope")
    with pytest.raises(ValueError, match="needs z_i"):
        theory.batch_log_qz(torch.zeros(3, 2), mean, mean, 10, "mss")
    with pytest.raises(ValueError, match="dataset_size"):
        theory.batch_log_qz(z, mean, mean, None, "mws")
    with pytest.raises(ValueError, match="z must be"):
        theory.batch_log_qz(torch.zeros(4, 3), mean, mean, 10, "mws")
    with pytest.raises(ValueError, match="plain_batch_tc"):
        theory.batch_kl_decomposition(z, mean, mean, 10, "plain")


def test_plain_batch_estimate_goes_negative_for_sharp_posteriors():
    """FactorVAE's Appendix D: with z drawn independently of the batch, the plain batch estimate
    of TC is negative once the posteriors are sharp, although TC ≥ 0."""
    g = torch.Generator().manual_seed(9)
    n, d = 2000, 6
    mean = torch.randn(n, d, generator=g)
    tcs = []
    for sigma in (1.0, 0.1):
        logvar = torch.full((n, d), 2 * math.log(sigma))
        z = theory.sample_aggregate(mean, logvar, 256, g)[0]
        _, idx = theory.sample_aggregate(mean, logvar, 128, g, replace=False)
        tcs.append(float(theory.plain_batch_tc(z, mean[idx], logvar[idx]).mean()))
    assert tcs[1] < -10 and tcs[1] < tcs[0]


# --- density-ratio estimate ---------------------------------------------------------------------


def test_permute_dims_permutes_each_column_independently():
    g = torch.Generator().manual_seed(10)
    z = torch.arange(200.0).reshape(50, 4)
    zp = theory.permute_dims(z, g)
    assert zp.shape == z.shape
    for d in range(4):
        assert torch.equal(zp[:, d].sort().values, z[:, d])
    order = (zp - zp[:, :1]).abs()  # equal columns would mean one shared permutation
    assert order.sum() > 0
    ranks = [tuple(zp[:, d].argsort().tolist()) for d in range(4)]
    assert len(set(ranks)) == 4
    assert torch.equal(theory.permute_dims(z, torch.Generator().manual_seed(10)), zp)


def test_discriminator_estimates_the_tc_of_a_correlated_gaussian():
    """TC of a bivariate normal with correlation ρ is −½ log(1 − ρ²)."""
    rho = 0.8
    chol = torch.tensor([[1.0, 0.0], [rho, math.sqrt(1 - rho**2)]])

    def sampler(num, gen):
        return torch.randn(num, 2, generator=gen) @ chol.T

    disc = theory.fit_tc_discriminator(sampler, 2, steps=600, batch_size=256, hidden=64, layers=2,
                                       seed=0)
    z = sampler(20_000, torch.Generator().manual_seed(11))
    estimate = float(theory.density_ratio_tc(disc, z).mean())
    assert estimate == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.1)


# --- the impossibility construction (Locatello et al., Theorem 1) ------------------------------


DISTS = {
    "gaussian": theory.Factorised([theory.Normal(0, 1), theory.Normal(2, 0.5),
                                   theory.Normal(-1, 3)]),
    "uniform": theory.Factorised([theory.Uniform(0, 1), theory.Uniform(-2, 2),
                                  theory.Uniform(5, 6)]),
    "mixed": theory.Factorised([theory.GaussianMixture([-2, 0, 1, 3], 0.15),
                                theory.Uniform(0, 1), theory.Normal(0, 1)]),
}


@pytest.mark.parametrize("dim, alpha", [(2, 0.1), (3, 0.25), (10, 0.49), (10, 0.01)])
def test_householder_is_orthogonal_symmetric_without_zero_entries(dim, alpha):
    A = theory.householder(dim, alpha)
    assert torch.allclose(A.T @ A, torch.eye(dim, dtype=A.dtype), atol=1e-12)
    assert torch.allclose(A, A.T)
    assert (A.abs() > 1e-6).all()
    v = torch.full((dim,), math.sqrt((1 - alpha) / (dim - 1)), dtype=A.dtype)
    v[0] = math.sqrt(alpha)
    off = ~torch.eye(dim, dtype=torch.bool)
    assert torch.allclose(A[off], (-2 * torch.outer(v, v))[off])  # not −v_i v_j (paper's typo)


def test_householder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="d > 1"):
        theory.householder(1, 0.2)
    for alpha in (0.0, 0.5, 0.7):
        with pytest.raises(ValueError, match="alpha"):
            theory.householder(3, alpha)


def test_random_rotation_is_orthogonal():
    Q = theory.random_rotation(6, torch.Generator().manual_seed(0))
    assert torch.allclose(Q.T @ Q, torch.eye(6, dtype=Q.dtype), atol=1e-12)
    assert (Q.abs() > 0).all()


@pytest.mark.parametrize("name", sorted(DISTS))
def test_entangle_is_a_bijection(name):
    dist = DISTS[name]
    g = torch.Generator().manual_seed(1)
    z = dist.sample(2000, g)
    for A in (theory.householder(3, 0.2), theory.random_rotation(3, g)):
        fz = theory.entangle(z, dist, A)
        assert (fz - z).abs().max() > 0.1  # f moves points
        assert (theory.disentangle(fz, dist, A) - z).abs().max() < 1e-6
        assert (theory.entangle(theory.disentangle(z, dist, A), dist, A) - z).abs().max() < 1e-6


@pytest.mark.parametrize("name", sorted(DISTS))
def test_entangle_preserves_the_distribution(name):
    """Fixed seed: every marginal of f(z) passes a KS test against the true marginal; random
    one-dimensional projections of f(z) pass two-sample KS tests against fresh samples of z
    (Cramér–Wold); the coordinates of g(f(z)) are uncorrelated; and the change-of-variables
    identity holds with autograd's Jacobian determinant."""
    dist = DISTS[name]
    g = torch.Generator().manual_seed(2)
    A = theory.householder(3, 0.3)
    fz = theory.entangle(dist.sample(4000, g), dist, A)
    for i, m in enumerate(dist.marginals):
        p = stats.kstest(fz[:, i].numpy(), lambda x, m=m: m.cdf(torch.as_tensor(x)).numpy()).pvalue
        assert p > 0.001, (name, i, p)
    u = dist.cdf(fz)  # uniform with independent coordinates if f preserves the distribution
    corr = np.corrcoef(u.numpy().T)
    assert np.abs(corr - np.eye(3)).max() < 0.06
    fresh = dist.sample(4000, g)
    for direction in torch.randn(5, 3, generator=g, dtype=torch.float64):
        p = stats.ks_2samp((fz @ direction).numpy(), (fresh @ direction).numpy()).pvalue
        assert p > 0.001, (name, direction, p)
    # the change-of-variables identity p(f(z)) |det J_f(z)| = p(z), with autograd's determinant
    z = dist.sample(50, g)
    J = theory.jacobian(lambda t: theory.entangle(t, dist, A), z)
    logdet = torch.linalg.slogdet(J).logabsdet
    assert torch.allclose(logdet, theory.log_abs_det_jacobian(z, dist, A), atol=1e-6)


@pytest.mark.parametrize("name", sorted(DISTS))
def test_jacobian_has_no_zero_entries(name):
    dist = DISTS[name]
    g = torch.Generator().manual_seed(3)
    z = dist.sample(200, g)
    A = theory.householder(3, 0.1)
    J = theory.jacobian(lambda t: theory.entangle(t, dist, A), z)
    assert J.shape == (200, 3, 3)
    assert (J.abs() > 1e-10).all()
    # and it has the closed form diag(φ(y)/p(f)) A diag(p(z)/φ(h(g(z)))) of the proof
    h = theory.std_normal_icdf(dist.cdf(z))
    y = h @ A.T
    fz = theory.entangle(z, dist, A)
    log_phi = theory.Normal().log_prob
    left = torch.stack([log_phi(y[:, i]) - m.log_prob(fz[:, i])
                        for i, m in enumerate(dist.marginals)], 1).exp()
    right = torch.stack([m.log_prob(z[:, i]) - log_phi(h[:, i])
                         for i, m in enumerate(dist.marginals)], 1).exp()
    assert torch.allclose(J, left[:, :, None] * A[None] * right[:, None, :], rtol=1e-5, atol=1e-8)


def test_gaussian_prior_makes_f_linear():
    """For N(0, I), h ∘ g is the identity and f(z) = A z."""
    dist = theory.Factorised([theory.Normal()] * 4)
    A = theory.householder(4, 0.2)
    z = dist.sample(100, torch.Generator().manual_seed(4))
    assert torch.allclose(theory.entangle(z, dist, A), z @ A.T, atol=1e-9)


def test_gaussian_mixture_icdf_inverts_cdf_with_the_right_derivative():
    m = theory.GaussianMixture([-2, 0, 1, 3], [0.15, 0.3, 0.15, 0.5], weights=[1, 2, 1, 1])
    u = torch.linspace(0.001, 0.999, 201, dtype=torch.float64, requires_grad=True)
    x = m.icdf(u)
    assert torch.allclose(m.cdf(x), u, atol=1e-12)
    (grad,) = torch.autograd.grad(x.sum(), u)
    assert torch.allclose(grad, 1 / m.log_prob(x).exp(), rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        theory.GaussianMixture([0, 1], [0.1, -0.1])


def test_permute_dims_with_keys_permutes_each_batch_of_a_stack():
    g = torch.Generator().manual_seed(0)
    z, keys = torch.randn(3, 6, 2, generator=g), torch.rand(3, 6, 2, generator=g)
    stacked = theory.permute_dims(z, keys=keys)
    for i in range(3):
        order = keys[i].argsort(dim=0)
        for d in range(2):
            assert torch.equal(stacked[i, :, d], z[i, order[:, d], d])
        assert torch.equal(stacked[i].sort(0).values, z[i].sort(0).values)
    with pytest.raises(ValueError, match="shape of z"):
        theory.permute_dims(z, keys=keys[:, :5])
