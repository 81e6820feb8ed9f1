"""Tests of dlib.experiments.tc_tracking against independent computations."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import dlib.data
from dlib.experiments import tc_tracking as tct
from dlib.methods import BetaVAE, FactorVAE
from dlib.train import fit

F64 = {"dtype": torch.float64}
MEAN = torch.tensor([[-1.2, -0.9], [0.1, 1.1], [1.4, -0.3], [0.8, 0.9]], **F64)
LOGVAR = 2 * torch.log(torch.tensor([[0.4, 0.5], [0.6, 0.3], [0.45, 0.4], [0.3, 0.5]], **F64))


def _grid_tc(mean: torch.Tensor, logvar: torch.Tensor, half_width=6.0, n=1201) -> float:
    """TC of a 2-D Gaussian mixture by numerical integration on a grid (midpoint rule)."""
    axis = np.linspace(-half_width, half_width, n)
    da = (axis[1] - axis[0]) ** 2
    z1, z2 = np.meshgrid(axis, axis, indexing="ij")
    q = np.zeros_like(z1)
    for m, lv in zip(mean.numpy(), logvar.numpy(), strict=True):
        s = np.exp(0.5 * lv)
        q += (np.exp(-0.5 * ((z1 - m[0]) / s[0]) ** 2 - 0.5 * ((z2 - m[1]) / s[1]) ** 2)
              / (2 * math.pi * s[0] * s[1]))
    q /= len(mean)
    q1 = q.sum(1, keepdims=True) * (axis[1] - axis[0])
    q2 = q.sum(0, keepdims=True) * (axis[1] - axis[0])
    mask = q > 1e-300
    return float(np.sum(q[mask] * np.log(q[mask] / (q1 * q2)[mask])) * da)


class OracleDiscriminator(nn.Module):
    """Logits [log q(z) − Σ_d log q(z_d), 0] of an explicit mixture: the Bayes-optimal
    discriminator's log-odds, computed with plain loops over components."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.logvar = mean, logvar
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.double()
        out = torch.zeros(len(z), 2, dtype=torch.float64)
        n, d = self.mean.shape
        for i in range(len(z)):
            comps = []
            dims = [[] for _ in range(d)]
            for k in range(n):
                s2 = self.logvar[k].exp()
                logs = -0.5 * (math.log(2 * math.pi) + self.logvar[k] + (z[i] - self.mean[k]) ** 2
                               / s2)
                comps.append(logs.sum())
                for j in range(d):
                    dims[j].append(logs[j])
            log_q = torch.logsumexp(torch.stack(comps), 0) - math.log(n)
            log_prod = sum(torch.logsumexp(torch.stack(v), 0) - math.log(n) for v in dims)
            out[i, 0] = log_q - log_prod
        return out.float()


def test_aggregate_tc_matches_numerical_integration():
    want = _grid_tc(MEAN, LOGVAR)
    tc, se = tct.aggregate_tc(MEAN, LOGVAR, samples_per_point=20_000,
                              generator=torch.Generator().manual_seed(0))
    assert want > 0.05  # the mixture is visibly dependent
    assert abs(tc - want) <= 4 * se + 1e-4, (tc, se, want)


def test_aggregate_tc_is_zero_for_a_product_of_identical_posteriors():
    mean, logvar = torch.zeros(10, 3, **F64), torch.full((10, 3), -1.0, **F64)
    tc, se = tct.aggregate_tc(mean, logvar, 5, torch.Generator().manual_seed(0))
    assert abs(tc) < 1e-9 and se < 1e-9


def test_oracle_discriminator_estimates_the_true_tc():
    # with the Bayes-optimal discriminator the density-ratio estimate is a plain Monte-Carlo
    # estimate of TC: it must agree with the exact mixture TC (grid integration)
    method = SimpleNamespace(discriminator=OracleDiscriminator(MEAN, LOGVAR))
    tc, se, acc = tct.discriminator_tc(method, MEAN, LOGVAR, num=1024, batch_size=64,
                                       generator=torch.Generator().manual_seed(1))
    want = _grid_tc(MEAN, LOGVAR)
    assert abs(tc - want) <= 4 * se, (tc, se, want)
    assert 0.5 < acc < 1.0


def test_discriminator_tc_equals_a_per_code_loop():
    m = FactorVAE((1, 64, 64), seed=0, d_hidden=32, d_depth=2, num_latents=4)
    mean = torch.randn(30, 4, generator=torch.Generator().manual_seed(0), **F64)
    logvar = torch.full((30, 4), -2.0, **F64)
    tc, se, acc = tct.discriminator_tc(m, mean, logvar, num=128, batch_size=32,
                                       generator=torch.Generator().manual_seed(5))
    # replay the same draws: index, noise and the four batch permutations
    g = torch.Generator().manual_seed(5)
    idx = torch.randint(30, (128,), generator=g)
    z = (mean[idx] + torch.exp(0.5 * logvar[idx]) * torch.randn(128, 4, generator=g,
                                                                 **F64)).float()
    diffs, right = [], 0
    with torch.no_grad():
        for i in range(128):
            logit = m.discriminator(z[i:i + 1])[0]
            diffs.append(float(logit[0] - logit[1]))
            right += int(logit[0] > logit[1])
        for b in range(4):
            keys = torch.rand(32, 4, generator=g)
            block = z[32 * b:32 * (b + 1)]
            perm = torch.stack([block[keys[:, j].argsort(), j] for j in range(4)], 1)
            for i in range(32):
                logit = m.discriminator(perm[i:i + 1])[0]
                right += int(logit[1] > logit[0])
    assert tc == pytest.approx(np.mean(diffs), abs=1e-5)
    assert se == pytest.approx(np.std(diffs, ddof=1) / math.sqrt(128), rel=1e-4)
    assert acc == pytest.approx(right / 256)


def test_discriminator_tc_needs_a_discriminator():
    with pytest.raises(TypeError, match="discriminator"):
        tct.discriminator_tc(BetaVAE((1, 64, 64)), MEAN, LOGVAR)


@pytest.fixture(scope="module")
def tiny():
    ds = dlib.data.load("dsprites")
    return ds.to_device(num=256, seed=0), ds.to_device(num=40, seed=1)


def _small_factor_vae() -> FactorVAE:
    return FactorVAE((1, 64, 64), seed=0, gamma=10.0, d_hidden=32, d_depth=2)


def test_encode_posteriors_matches_the_encoder(tiny):
    _, ev = tiny
    m = _small_factor_vae()
    mean, logvar = tct.encode_posteriors(m, ev, batch_size=7)
    with torch.no_grad():
        want_mean, want_logvar = m.encode(ev.images.float())
    assert mean.dtype == torch.float64 and mean.shape == (40, 10)
    assert torch.allclose(mean, want_mean.double(), atol=1e-6)
    assert torch.allclose(logvar, want_logvar.double(), atol=1e-6)


def test_track_tc_equals_one_uninterrupted_run(tiny):
    train, ev = tiny
    m = _small_factor_vae()
    trace = tct.track_tc(m, train, ev, [0, 3, 6], batch_size=16, seed=2, log_every=3,
                         samples_per_point=4, num_codes=64, show_progress=False)
    ref = _small_factor_vae()
    fit(ref, train, 6, batch_size=16, seed=2, log_every=3, show_progress=False)
    for (name, a), b in zip(m.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert list(trace.steps) == [0, 3, 6] and trace.num_points == 40
    for arr in (trace.true_tc, trace.discriminator_tc, trace.d_accuracy, trace.kl):
        assert arr.shape == (3,) and np.all(np.isfinite(arr))
    assert np.all(trace.true_tc >= -4 * trace.true_tc_se)
    # the decomposition adds up: MI + TC + dim-KL estimates the closed-form KL
    total = trace.mi + trace.true_tc + trace.dim_kl
    assert np.all(np.abs(total - trace.kl) < 0.5 + 0.2 * trace.kl)
    assert "step" in trace.table() and len(trace.table().splitlines()) == 4


def test_track_tc_rejects_bad_input(tiny):
    train, ev = tiny
    with pytest.raises(ValueError, match="increasing"):
        tct.track_tc(_small_factor_vae(), train, ev, [3, 3], show_progress=False)
    with pytest.raises(TypeError, match="FactorVAE"):
        tct.track_tc(BetaVAE((1, 64, 64)), train, ev, [0], show_progress=False)
    with pytest.raises(ValueError, match="empty"):
        tct.track_tc(_small_factor_vae(), train, ev, [], show_progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_track_tc_runs_on_cuda():
    # the full profile of chapters/12_factor_vae: data, model, posteriors, generators on the GPU
    ds = dlib.data.load("dsprites")
    cuda = torch.device("cuda")
    train, ev = ds.to_device(cuda, num=256, seed=0), ds.to_device(cuda, num=40, seed=1)
    m = _small_factor_vae()
    trace = tct.track_tc(m, train, ev, [0, 4], batch_size=16, seed=2, log_every=2,
                         samples_per_point=4, num_codes=64, show_progress=False)
    assert next(m.parameters()).device.type == "cuda"
    assert np.all(np.isfinite(trace.true_tc)) and np.all(np.isfinite(trace.discriminator_tc))
    mean, logvar = tct.encode_posteriors(m, ev)
    assert mean.device.type == "cuda"
    # the exact TC does not depend on where it is computed (up to Monte-Carlo error)
    tc_gpu, se_gpu = tct.aggregate_tc(mean, logvar, 50, torch.Generator(cuda).manual_seed(0))
    tc_cpu, se_cpu = tct.aggregate_tc(mean.cpu(), logvar.cpu(), 50,
                                      torch.Generator().manual_seed(0))
    assert abs(tc_gpu - tc_cpu) <= 4 * math.hypot(se_gpu, se_cpu) + 1e-9


def test_factor_vae_step_leaks_no_discriminator_gradient_into_the_encoder():
    # the pitfall of chapters/12_factor_vae: after one train_step the encoder's gradient is exactly
    # that of the VAE loss under the *updated* discriminator; the discriminator loss (on
    # non-detached codes, as in the leaky ports) would add a visibly different gradient
    import copy

    from dlib.methods import reparameterise
    from dlib.theory.kl import permute_dims

    m = FactorVAE((1, 64, 64), seed=0, gamma=40.0, d_hidden=32, d_depth=2)
    replica = copy.deepcopy(m)
    x = torch.bernoulli(torch.full((16, 1, 64, 64), 0.2),
                        generator=torch.Generator().manual_seed(4))
    m.train_step(x, torch.Generator().manual_seed(5))
    # the same iteration by hand on the replica: same draws, D first on detached codes
    g = torch.Generator().manual_seed(5)
    replica.setup_optimizers()
    x_vae, x_perm = x.chunk(2)
    mean, logvar = replica.encode(x_vae)
    z = reparameterise(mean, logvar, g)
    with torch.no_grad():
        z_perm = permute_dims(reparameterise(*replica.encode(x_perm), g), g)
    d_opt = replica.optimizers["discriminator"]
    d_opt.zero_grad()
    replica.discriminator_loss(z.detach(), z_perm)[0].backward()
    d_opt.step()
    for a, b in zip(m.discriminator.parameters(), replica.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    enc = list(replica.encoder.parameters())
    vae_loss = replica._objective(x_vae, mean, logvar, z)["loss"]
    want = torch.autograd.grad(vae_loss, enc, retain_graph=True)
    for p, w in zip(m.encoder.parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, w)
    leak = torch.autograd.grad(replica.discriminator_loss(z, z_perm)[0], enc)
    assert sum(float(v.abs().sum()) for v in leak) > 0  # the leaky variant would differ
