import math

import numpy as np
import pytest
import torch

from dlib.methods import VAE, BetaVAE, BetaVAEConfig, bernoulli_nll, gaussian_kl, reparameterise


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(50, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(50, 4, generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    torch.testing.assert_close(gaussian_kl(mean, logvar), torch.distributions.kl_divergence(q, p))


def test_gaussian_kl_matches_monte_carlo():
    # KL = E_q[log q(z) - log p(z)] from 400k samples; must agree within 5 standard errors
    mean, logvar = torch.tensor([1.3, -0.4], dtype=torch.float64), torch.tensor([-1.2, 0.7],
                                                                             dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    z = reparameterise(mean.expand(400_000, 2), logvar.expand(400_000, 2), g)
    log_q = -0.5 * (((z - mean) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi))
    log_p = -0.5 * (z**2 + math.log(2 * math.pi))
    samples = log_q - log_p
    est, se = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
    exact = gaussian_kl(mean, logvar)
    assert torch.all((est - exact).abs() < 5 * se), (est, exact, se)


def test_kl_zero_iff_posterior_is_prior():
    assert torch.all(gaussian_kl(torch.zeros(3), torch.zeros(3)) == 0)
    assert torch.all(gaussian_kl(torch.tensor([0.1, 0.0]), torch.tensor([0.0, 0.2])) > 0)


def test_bernoulli_nll_by_hand():
    logits = torch.tensor([[[[0.3, -2.0], [1.5, 0.0]]]], dtype=torch.float64)
    x = torch.tensor([[[[1.0, 0.0], [0.25, 1.0]]]], dtype=torch.float64)
    p = torch.sigmoid(logits)
    by_hand = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum()
    torch.testing.assert_close(bernoulli_nll(logits, x), by_hand.reshape(1))
    with pytest.raises(ValueError, match="differ"):
        bernoulli_nll(logits, x[..., :1])


def test_reparameterise_moments():
    g = torch.Generator().manual_seed(2)
    z = reparameterise(torch.full((200_000, 1), 2.0), torch.full((200_000, 1), math.log(0.25)), g)
    assert abs(z.mean().item() - 2.0) < 0.01 and abs(z.std().item() - 0.5) < 0.01


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.8).float()


def test_vae_terms_are_consistent():
    m = BetaVAE((1, 64, 64), beta=3.0, seed=0)
    x = _batch()
    t = m.terms(x, torch.Generator().manual_seed(0))
    assert set(t) >= {"loss", "recon", "kl", "elbo", "kl_dims"}
    assert t["kl_dims"].shape == (10,)
    torch.testing.assert_close(t["kl"], t["kl_dims"].sum())
    torch.testing.assert_close(t["loss"], t["recon"] + 3.0 * t["kl"])
    torch.testing.assert_close(t["elbo"], -(t["recon"] + t["kl"]))
    # the reconstruction term is the batch mean of the per-sample summed NLL
    mean, logvar = m.encode(x)
    z = reparameterise(mean, logvar, torch.Generator().manual_seed(0))
    torch.testing.assert_close(t["recon"], bernoulli_nll(m.decode(z), x).mean())


def test_beta_only_scales_the_kl():
    x, g = _batch().double(), lambda: torch.Generator().manual_seed(5)
    t1 = BetaVAE((1, 64, 64), beta=1.0, seed=4).double().terms(x, g())
    t8 = BetaVAE((1, 64, 64), beta=8.0, seed=4).double().terms(x, g())
    torch.testing.assert_close(t8["loss"] - t1["loss"], 7.0 * t1["kl"])
    assert VAE((1, 64, 64)).config.beta == 1.0
    assert BetaVAE((1, 64, 64)).config.beta == 4.0


def test_seeded_initialisation_is_deterministic_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b, c = VAE((1, 64, 64), seed=7), VAE((1, 64, 64), seed=7), VAE((1, 64, 64), seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_config_handling():
    cfg = BetaVAEConfig(beta=6.0, num_latents=5)
    m = BetaVAE((3, 64, 64), cfg, seed=1)
    assert m.config.beta == 6.0 and m.config.num_latents == 5 and m.config.seed == 1
    assert m.config_dict()["method"] == "BetaVAE"
    with pytest.raises(TypeError, match="unknown option"):
        BetaVAE((1, 64, 64), betta=4)


def test_train_step_decreases_loss_on_a_fixed_batch():
    m = BetaVAE((1, 64, 64), beta=1.0, lr=1e-3, seed=0)
    x = _batch(8)
    losses = [float(m.train_step(x, torch.Generator().manual_seed(0))["loss"]) for _ in range(30)]
    assert int(m.step) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
