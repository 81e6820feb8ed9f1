"""FactorVAE's prior variant (Kim & Mnih Eq. 12) and the AAE (Eq. 7) against independent
computations: the density-ratio KL against the Gaussian closed form, the loss terms by hand, and
the reference samples against a replayed generator."""

import math

import numpy as np
import pytest
import torch

from dlib.data import load
from dlib.distributions import bernoulli_nll, gaussian_kl
from dlib.methods import AAE, FactorVAE, FactorVAEPrior
from dlib.train import fit


def _x(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.7).float()


def _closed_form_kl(mean, cov):
    """KL(N(mean, cov) ‖ N(0, I)) = ½ [tr Σ + μᵀμ − d − log det Σ]."""
    d = len(mean)
    return 0.5 * (np.trace(cov) + mean @ mean - d - np.log(np.linalg.det(cov)))


@pytest.mark.parametrize("case", ["shifted_scaled", "correlated"])
def test_density_ratio_kl_matches_the_gaussian_closed_form(case):
    """Train the method's own D (small) on codes ~ q against its reference samples ~ N(0, I):
    the batch mean of logit_q − logit_p converges to KL(q(z) ‖ p(z)). The correlated case has
    standard normal marginals, so all of its KL is total correlation."""
    if case == "shifted_scaled":
        mean, cov = np.array([1.0, -0.5]), np.diag([0.25, 2.25])
    else:
        mean, cov = np.zeros(2), np.array([[1.0, 0.8], [0.8, 1.0]])
    exact = _closed_form_kl(mean, cov)
    m = FactorVAEPrior((1, 64, 64), num_latents=2, d_hidden=64, d_depth=2, seed=0)
    opt = torch.optim.Adam(m.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(0)
    chol = torch.tensor(np.linalg.cholesky(cov), dtype=torch.float32)
    mu = torch.tensor(mean, dtype=torch.float32)

    def q(n):
        return mu + torch.randn(n, 2, generator=g) @ chol.T

    for _ in range(1500):
        z = q(256)
        loss, _ = m.discriminator_loss(z, m.reference_codes(z, z, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        est = float(m.kl_estimate(q(20_000)))
    assert abs(est - exact) < 0.1 * max(1.0, exact), (est, exact)


def test_reference_codes_are_prior_samples_from_the_generator():
    m = FactorVAEPrior((1, 64, 64), num_latents=4, seed=0)
    z = 5.0 + torch.randn(1000, 4)
    g = torch.Generator().manual_seed(7)
    ref = m.reference_codes(_x(1000), z, g)
    torch.testing.assert_close(ref, torch.randn(1000, 4, generator=torch.Generator()
                                                 .manual_seed(7)))
    assert abs(float(ref.mean())) < 0.1 and abs(float(ref.var()) - 1) < 0.1  # not the codes
    assert m.batch_multiplier == 1  # no second batch is drawn


def test_train_step_shows_d_the_codes_and_prior_samples_in_the_eager_order():
    """Replay the step's random stream by hand: batch noise for z first, then the prior."""
    m = FactorVAEPrior((1, 64, 64), gamma=10.0, seed=0)
    m.setup_optimizers()
    seen = {}
    original = m.discriminator_loss

    def spy(z, z_ref):
        seen["z"], seen["ref"] = z.clone(), z_ref.clone()
        return original(z, z_ref)

    m.discriminator_loss = spy
    x = _x(8)
    with torch.no_grad():
        mean, logvar = m.encode(x)
    out = m.train_step(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    eps = torch.randn(8, 10, generator=g)
    torch.testing.assert_close(seen["z"], mean + torch.exp(0.5 * logvar) * eps)
    torch.testing.assert_close(seen["ref"], torch.randn(8, 10, generator=g))
    assert set(out) >= {"loss", "kl_qz_pz", "d_loss", "d_accuracy", "kl_dims"}
    assert "tc" not in out  # the estimate is a KL to the prior, and is logged as such


@pytest.mark.parametrize("cls,beta,gamma", [(FactorVAEPrior, 1.0, 7.0), (AAE, 0.0, 3.0)])
def test_terms_by_hand(cls, beta, gamma):
    m = cls((1, 64, 64), gamma=gamma, seed=0).double()
    assert m.config.beta == beta  # AAE's default drops the per-image KL
    x = _x().double()
    t = m.terms(x, torch.Generator().manual_seed(3))
    mean, logvar = m.encode(x)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(
        mean.shape, dtype=mean.dtype, generator=torch.Generator().manual_seed(3))
    recon = bernoulli_nll(m.decode(z), x).mean()
    kl = gaussian_kl(mean, logvar).sum(1).mean()
    logits = m.discriminator(z)
    est = (logits[:, 0] - logits[:, 1]).mean()
    torch.testing.assert_close(t["recon"], recon)
    torch.testing.assert_close(t["kl"], kl)
    torch.testing.assert_close(t["kl_qz_pz"], est)
    torch.testing.assert_close(t["loss"], recon + beta * kl + gamma * est)


def test_aae_gradient_ignores_the_per_image_kl():
    """With γ = 0 the AAE is a plain autoencoder with a noisy code: its encoder gradient equals
    that of the reconstruction term alone (and differs from the VAE's)."""
    x = _x()

    def grads(m):
        t = m.terms(x, torch.Generator().manual_seed(1))
        m.zero_grad()
        t["loss"].backward()
        return torch.cat([p.grad.flatten() for p in m.encoder.parameters()])

    aae = AAE((1, 64, 64), gamma=0.0, seed=0)
    ref = AAE((1, 64, 64), gamma=0.0, seed=0)
    t = ref.terms(x, torch.Generator().manual_seed(1))
    ref.zero_grad()
    t["recon"].backward()
    recon_only = torch.cat([p.grad.flatten() for p in ref.encoder.parameters()])
    torch.testing.assert_close(grads(aae), recon_only)
    vae_like = FactorVAEPrior((1, 64, 64), gamma=0.0, seed=0)
    assert not torch.allclose(grads(vae_like), recon_only)


def test_trains_and_rejects_permute():
    data = load("dsprites").to_device("cpu", num=128, seed=0)
    for cls in (FactorVAEPrior, AAE):
        h = fit(cls((1, 64, 64), seed=0), data, 4, batch_size=8, log_every=2,
                show_progress=False)
        assert np.isfinite(h["kl_qz_pz"]).all() and np.isfinite(h["loss"]).all()
    with pytest.raises(ValueError, match="permute"):
        FactorVAEPrior((1, 64, 64), permute="same")
    # FactorVAE itself is unchanged by the hook: it still logs its TC estimate
    h = fit(FactorVAE((1, 64, 64), seed=0), data, 2, batch_size=8, log_every=1,
            show_progress=False)
    assert "tc" in h and math.isfinite(float(h["tc"][-1]))
