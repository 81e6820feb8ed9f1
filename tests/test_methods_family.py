import math

import numpy as np
import pytest
import torch
from torch import nn

from dlib.data import load
from dlib.methods import (
    DIPVAE,
    STUDY_METHODS,
    AnnealedVAE,
    BetaTCVAE,
    FactorVAE,
    build,
    capacity,
    dip_covariance,
    dip_penalty,
    permute_dims,
    study_grid,
)
from dlib.methods.vae import gaussian_kl
from dlib.nets import Discriminator
from dlib.train import fit


def _x(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.85).float()


# ---- AnnealedVAE ---------------------------------------------------------------------------------
def test_capacity_ramp():
    got = [float(capacity(t, 25.0, 100)) for t in (0, 50, 100, 250)]
    assert got == [0.0, 12.5, 25.0, 25.0]


def test_annealed_objective_by_hand():
    m = AnnealedVAE((1, 64, 64), c_max=20.0, gamma=1000.0, iteration_threshold=10, seed=0).double()
    x = _x().double()
    m.step.fill_(4)  # C = 8 nats
    t = m.terms(x, torch.Generator().manual_seed(0))
    assert float(t["capacity"]) == pytest.approx(8.0)
    torch.testing.assert_close(t["loss"], t["recon"] + 1000.0 * (t["kl"] - 8.0).abs())


# ---- DIP-VAE -------------------------------------------------------------------------------------
def test_dip_covariances_match_numpy_and_total_covariance():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(200, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g,
                                                                               dtype=torch.float64)
    logvar = torch.randn(200, 4, generator=g, dtype=torch.float64)
    cov_i = dip_covariance(mean, logvar, "i")
    np.testing.assert_allclose(cov_i.numpy(), np.cov(mean.numpy().T, ddof=0), rtol=1e-10)
    cov_ii = dip_covariance(mean, logvar, "ii")
    expected = np.cov(mean.numpy().T, ddof=0) + np.diag(np.exp(logvar.numpy()).mean(0))
    np.testing.assert_allclose(cov_ii.numpy(), expected, rtol=1e-10)
    # Monte Carlo: the covariance of z ~ q(z) = mean_x N(mu(x), sigma^2(x)) is Cov_ii (total cov.)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(500, *mean.shape, generator=g,
                                                     dtype=torch.float64)
    mc = np.cov(z.reshape(-1, 4).numpy().T, ddof=0)
    np.testing.assert_allclose(mc, expected, atol=0.05 * np.abs(expected).max())


def test_dip_ii_catches_the_scalar_mean_variance_mistake():
    """A popular library adds mean(diag(var)) — one scalar — to every entry. Ours must not."""
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(32, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(32, 5, generator=g, dtype=torch.float64)
    var = logvar.exp()
    centred = mean - mean.mean(0)
    wrong = centred.T @ centred / 32 + torch.diag(var).mean()  # the published mistake
    ours = dip_covariance(mean, logvar, "ii")
    assert not torch.allclose(ours, wrong)
    # off-diagonal entries of type II equal those of type I: only the diagonal changes
    torch.testing.assert_close(ours - ours.diagonal().diag(),
                               (centred.T @ centred / 32) - (centred.T @ centred / 32).diagonal()
                               .diag())
    torch.testing.assert_close(ours.diagonal() - (centred**2).mean(0), var.mean(0))


def test_dip_penalty_by_hand_and_study_lambdas():
    cov = torch.tensor([[2.0, 0.5], [-1.0, 1.0]])
    assert float(dip_penalty(cov, 3.0, 7.0)) == pytest.approx(3.0 * (0.25 + 1.0) + 7.0 * 1.0)
    assert DIPVAE((1, 64, 64), dip_type="i", lambda_od=5.0).lambda_d == 50.0
    assert DIPVAE((1, 64, 64), dip_type="ii", lambda_od=5.0).lambda_d == 5.0
    with pytest.raises(ValueError):
        dip_covariance(torch.zeros(3, 2), torch.zeros(3, 2), "iii")


def test_dip_objective_adds_penalty_to_full_kl():
    m = DIPVAE((1, 64, 64), dip_type="ii", lambda_od=2.0, seed=0).double()
    x = _x(8).double()
    t = m.terms(x, torch.Generator().manual_seed(0))
    mean, logvar = m.encode(x)
    pen = dip_penalty(dip_covariance(mean, logvar, "ii"), 2.0, 2.0)
    torch.testing.assert_close(t["dip_penalty"], pen)
    torch.testing.assert_close(t["loss"], t["recon"] + t["kl"] + pen)


# ---- FactorVAE -----------------------------------------------------------------------------------
def test_permute_dims_keeps_marginals_and_breaks_dependence():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 1, generator=g)
    z = torch.cat([a, a + 0.1 * torch.randn(4000, 1, generator=g), -a], 1)
    p = permute_dims(z, g)
    for j in range(3):
        assert torch.equal(p[:, j].sort().values, z[:, j].sort().values)
    corr = np.corrcoef(p.numpy().T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.06
    assert abs(np.corrcoef(z.numpy().T)[0, 1]) > 0.99


def test_discriminator_architecture():
    d = Discriminator(10)
    linears = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1000] * 6 + [2]
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 6 and all(a.negative_slope == 0.2 for a in acts)


def test_density_ratio_tc_matches_the_gaussian_closed_form():
    """Train a small discriminator on correlated Gaussian codes: logit_real − logit_perm → TC.

    For a bivariate normal with correlation rho, TC = −½ log(1 − rho²)."""
    rho = 0.8
    exact = -0.5 * math.log(1 - rho**2)
    m = FactorVAE((1, 64, 64), num_latents=2, d_hidden=64, d_depth=2, d_lr=2e-3, seed=0)
    opt = torch.optim.Adam(m.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(0)
    chol = torch.tensor([[1.0, 0.0], [rho, math.sqrt(1 - rho**2)]])
    for _ in range(1500):
        z = torch.randn(256, 2, generator=g) @ chol.T
        loss, _ = m.discriminator_loss(z, permute_dims(torch.randn(256, 2, generator=g) @ chol.T,
                                                       g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        est = float(m.tc_estimate(torch.randn(20000, 2, generator=g) @ chol.T))
    assert abs(est - exact) < 0.1, (est, exact)


def test_factor_vae_step_updates_d_first_and_keeps_optimisers_apart():
    m = FactorVAE((1, 64, 64), gamma=10.0, seed=0)
    m.setup_optimizers()
    vae_ids = {id(p) for g in m.optimizers["main"].param_groups for p in g["params"]}
    d_ids = {id(p) for g in m.optimizers["discriminator"].param_groups for p in g["params"]}
    assert not vae_ids & d_ids
    assert d_ids == {id(p) for p in m.discriminator.parameters()}
    seen = {}
    original = m.tc_estimate

    def spy(z):
        seen["d_weight"] = m.discriminator.body[0].weight.detach().clone()
        return original(z)

    before = m.discriminator.body[0].weight.detach().clone()
    m.tc_estimate = spy
    out = m.train_step(_x(16), torch.Generator().manual_seed(0))  # 8 for the VAE + 8 to permute
    assert not torch.equal(seen["d_weight"], before)  # the TC term used the updated D
    assert set(out) >= {"loss", "tc", "d_loss", "d_accuracy", "kl_dims"}
    assert int(m.step) == 1


def test_factor_vae_terms_by_hand():
    m = FactorVAE((1, 64, 64), gamma=7.0, seed=0).double()
    x = _x().double()
    t = m.terms(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(t["loss"], t["recon"] + t["kl"] + 7.0 * t["tc"])
    mean, logvar = m.encode(x)
    torch.testing.assert_close(t["kl"], gaussian_kl(mean, logvar).sum(1).mean())


def test_factor_vae_trains_through_the_engine():
    data = load("dsprites").to_device("cpu", num=128, seed=0)
    for permute in ("second", "same"):
        m = FactorVAE((1, 64, 64), gamma=10.0, permute=permute, seed=0)
        h = fit(m, data, 4, batch_size=8, log_every=2, show_progress=False)
        assert "d_loss" in h and np.isfinite(h["tc"]).all()
    with pytest.raises(ValueError, match="permute"):
        FactorVAE((1, 64, 64), permute="other")


# ---- registry ---------------------------------------------------------------------------------
def test_study_grids():
    assert set(STUDY_METHODS) == {"beta_vae", "annealed_vae", "factor_vae", "dip_vae_i",
                                "dip_vae_ii", "beta_tc_vae"}
    assert [c.beta for c in study_grid("beta_tc_vae")] == [1, 2, 4, 6, 8, 10]
    assert [c.beta for c in study_grid("beta_vae")] == [1, 2, 4, 6, 8, 16]
    assert [c.c_max for c in study_grid("annealed_vae")] == [5, 10, 25, 50, 75, 100]
    assert all(c.gamma == 1000 for c in study_grid("annealed_vae"))
    assert [c.gamma for c in study_grid("factor_vae")] == [10, 20, 30, 40, 50, 100]
    assert [c.dip_type for c in study_grid("dip_vae_ii")] == ["ii"] * 6
    assert study_grid("dip_vae_i", seed=3)[0].seed == 3
    m = build("dip_vae_ii", (1, 64, 64), lambda_od=20.0)
    assert isinstance(m, DIPVAE) and m.config.dip_type == "ii" and m.lambda_d == 20.0
    with pytest.raises(ValueError, match="unknown method"):
        build("vae_gan", (1, 64, 64))
    with pytest.raises(ValueError, match="no study grid"):
        study_grid("infogan")


# ---- beta-TCVAE ----------------------------------------------------------------------------------
def test_beta_tcvae_terms_sum_to_a_one_sample_kl():
    """MI + TC + dim-KL = log q(z|x) − log p(z) per sample, whatever the estimator; with
    β = 1 the objective is recon + that KL estimate, whose batch mean tracks the closed form."""
    from dlib.theory.kl import gaussian_log_density

    for estimator in ("mss", "mws"):
        m = BetaTCVAE((1, 64, 64), beta=5.0, estimator=estimator, dataset_size=1000,
                      seed=0).double()
        x = _x(16).double()
        t = m.terms(x, torch.Generator().manual_seed(0))
        mean, logvar = m.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(
            mean.shape, generator=torch.Generator().manual_seed(0), dtype=mean.dtype)
        one_sample = (gaussian_log_density(z, mean, logvar).sum(1)
                      - gaussian_log_density(z, 0 * z, 0 * z).sum(1)).mean()
        torch.testing.assert_close(t["mi"] + t["tc"] + t["dim_kl"], one_sample)
        torch.testing.assert_close(t["loss"], t["recon"] + t["mi"] + 5.0 * t["tc"] + t["dim_kl"])
    with pytest.raises(ValueError, match="estimator"):
        BetaTCVAE((1, 64, 64), estimator="mss-column0").terms(_x(4))


def test_beta_tcvae_trains_through_the_engine():
    data = load("dsprites").to_device("cpu", num=128, seed=0)
    m = BetaTCVAE((1, 64, 64), dataset_size=128, seed=0)
    h = fit(m, data, 4, batch_size=8, log_every=2, show_progress=False)
    assert {"mi", "tc", "dim_kl"} <= set(h.keys()) and np.isfinite(h["loss"]).all()
