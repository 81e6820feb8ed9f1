"""OAT (one factor at a time): each piece against an independent computation."""

import math

import numpy as np
import pytest
import torch

from dlib.data import load
from dlib.methods import OAT, OATConfig
from dlib.methods.oat import (
    ImageDiscriminator,
    beta_schedule,
    intervene,
    masked_kl,
    saturation_rule,
    schedule_for,
    z2_exhausted,
)
from dlib.nets import num_parameters
from dlib.scales import SCALES
from dlib.studies.trainable import build_methods
from dlib.train import fit


def _x(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.85).float()


@pytest.fixture(scope="module")
def data():
    return load("dsprites").to_device("cpu", num=256, seed=0)


# ---- β schedule ---------------------------------------------------------------------------------
def test_beta_schedule_is_one_in_pretraining_then_linear():
    pre, ramp, b0, b1 = 100, 400, 1.0, 9.0
    steps = np.arange(0, 800)
    got = np.array([beta_schedule(int(s), pre, b0, b1, ramp) for s in steps])
    assert (got[:pre] == 1.0).all()
    # the line through (pre, b0) and (pre + ramp, b1), flat afterwards: np.interp is the reference
    np.testing.assert_allclose(got[pre:], np.interp(steps[pre:], [pre, pre + ramp], [b0, b1]),
                               rtol=0, atol=1e-12)
    assert np.ptp(np.diff(got[pre:pre + ramp])) < 1e-12  # constant increments: linear
    assert got[pre + ramp] == b1 == got[-1]
    assert beta_schedule(5, 0, 2.0, 3.0, 0) == 3.0


def test_method_uses_the_schedule():
    m = OAT((1, 64, 64), pretrain_steps=10, beta_start=2.0, beta_end=4.0, beta_ramp_steps=20)
    assert m.beta(0) == 1.0 and m.beta(10) == 2.0 and m.beta(20) == 3.0 and m.beta(99) == 4.0


# ---- masked KL and the step-1 objective ---------------------------------------------------------
def test_masked_kl_equals_a_loop():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 4, generator=g, dtype=torch.float64)
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    got = masked_kl(mean, logvar, mask)
    for b in range(5):
        for i in range(4):
            mu, lv = float(mean[b, i]), float(logvar[b, i])
            want = 0.5 * (mu * mu + math.exp(lv) - lv - 1.0) if mask[i] else 0.0
            assert float(got[b, i]) == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_step1_terms_by_hand():
    m = OAT((1, 64, 64), num_z1=4, num_z2=3, seed=0).double()
    m.start_oat(0)
    m.n_active.fill_(2)
    m.mask.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    x = _x(5).double()
    t = m.step1_terms(x, 3.5, torch.Generator().manual_seed(7))
    mean, logvar = m.encoder(x)
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7), dtype=mean.dtype)
    z = mean + torch.exp(0.5 * logvar) * eps
    z[:, 2:4] = 0.0  # inactive z1 dimensions enter the decoder as 0
    torch.testing.assert_close(t["z"], z)
    logits = m.decoder(z)
    recon = -(x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits)))
    recon = recon.flatten(1).sum(1).mean()
    kl = 0.5 * (mean**2 + logvar.exp() - logvar - 1)
    kl_z1 = kl[:, :2].sum(1).mean()  # only the two active dims
    kl_z2 = kl[:, 4:].sum(1).mean()
    torch.testing.assert_close(t["recon"], recon)
    torch.testing.assert_close(t["kl_z1"], kl_z1)
    torch.testing.assert_close(t["kl_z2"], kl_z2)
    torch.testing.assert_close(t["kl_z1_dims"][2:], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(t["loss_step1"], recon + 3.5 * kl_z2 + kl_z1)
    # the effective posterior that encode() reports: inactive dims are the prior
    em, el = m.encode(x)
    assert torch.equal(em[:, 2:4], torch.zeros(5, 2, dtype=torch.float64))
    assert torch.equal(el[:, 2:4], torch.zeros(5, 2, dtype=torch.float64))
    torch.testing.assert_close(em[:, 4:], mean[:, 4:])


# ---- intervention -------------------------------------------------------------------------------
def test_intervene_replaces_exactly_one_active_dimension():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(3000, 6, generator=g)
    new, k, c = intervene(z1, torch.tensor(3), torch.Generator().manual_seed(1))
    counts = np.zeros(6)
    for b in range(z1.shape[0]):
        changed = [j for j in range(6) if float(new[b, j]) != float(z1[b, j])]
        assert changed == [int(k[b])]  # exactly one dimension, the reported one
        assert int(k[b]) < 3  # and an active one
        assert float(new[b, int(k[b])]) == float(c[b])
        counts[int(k[b])] += 1
    # uniform over the three active dimensions (5 standard errors)
    p = counts[:3] / counts.sum()
    assert np.abs(p - 1 / 3).max() < 5 * math.sqrt(1 / 3 * 2 / 3 / 3000)
    # the values are prior draws: mean 0, variance 1 (5 standard errors)
    assert abs(float(c.mean())) < 5 / math.sqrt(3000)
    assert abs(float(c.var()) - 1) < 5 * math.sqrt(2 / 3000)
    # with one active dimension, it is always dimension 0
    _, k1, _ = intervene(z1[:50], torch.tensor(1), g)
    assert (k1 == 0).all()


def test_method_intervention_keeps_z2_and_inactive_dims():
    m = OAT((1, 64, 64), num_z1=5, num_z2=3, seed=0)
    m.start_oat(0)
    m.n_active.fill_(2)
    m.mask.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]))
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    z_tilde, x_tilde, k = m.intervention(z, torch.Generator().manual_seed(2))
    assert not z_tilde.requires_grad  # the target of step 2 is a sample, not a function of φ
    assert torch.equal(z_tilde[:, 5:], z[:, 5:].detach())  # z2 untouched
    assert torch.equal(z_tilde[:, 2:5], torch.zeros(64, 3))  # inactive dims stay 0
    for b in range(64):
        for j in range(2):
            if j != int(k[b]):
                assert float(z_tilde[b, j]) == float(z[b, j].detach())
    assert set(k.tolist()) <= {0, 1}
    assert x_tilde.shape == (64, 1, 64, 64) and float(x_tilde.detach().min()) >= 0.0


def test_code_nll_by_hand():
    for lik in ("unit", "posterior"):
        m = OAT((1, 64, 64), num_z1=3, num_z2=2, code_likelihood=lik, seed=0).double()
        m.start_oat(0)
        x = _x(4).double()
        target = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        target[:, 1:3] = 0.0
        got = m.code_nll(x, target)
        with torch.no_grad():
            mean, logvar = m.encoder(x)
        total = 0.0
        for b in range(4):
            for j in (0, 3, 4):  # the active z1 dimension and z2
                d2 = float(mean[b, j] - target[b, j]) ** 2
                if lik == "unit":
                    total += 0.5 * d2
                else:
                    lv = float(logvar[b, j])
                    total += 0.5 * (lv + d2 / math.exp(lv) + math.log(2 * math.pi))
        assert float(got.detach()) == pytest.approx(total / 4, rel=1e-10)


# ---- the switching and stopping rules -----------------------------------------------------------
def _reference_switches(kl_at_checks, check_every, min_steps, tol, floor, k_max, start):
    """Plain-Python statement of the rule: at each check, if the current dimension's running KL
    grew by ≤ tol·max(previous, floor) and it has been on for ≥ min_steps, the next one starts;
    a newly switched-on dimension's previous KL is 0 (it carried nothing while masked)."""
    n, last, prev, starts = 1, start, 0.0, [start]
    for i, value in enumerate(kl_at_checks):
        taken = start + (i + 1) * check_every
        now = value[n - 1]
        if now - prev <= tol * max(prev, floor) and taken - last >= min_steps and n < k_max:
            n, last = n + 1, taken
            starts.append(taken)
            prev = 0.0
        else:
            prev = now
    return starts


def test_saturation_rule_pure_function():
    t = torch.tensor
    args = dict(num_z1=4, tol=0.1, floor=0.5, min_steps=10)
    no = t(False)
    # grew 1.0 → 1.05 (5 % < 10 %): saturated
    assert saturation_rule(t(1.05), t(1.0), t(10), t(1), no, **args)
    # grew 1.0 → 1.2: not saturated
    assert not saturation_rule(t(1.2), t(1.0), t(10), t(1), no, **args)
    # tiny KLs use the floor: 0.0 → 0.04 ≤ 0.1·0.5
    assert saturation_rule(t(0.04), t(0.0), t(10), t(1), no, **args)
    assert not saturation_rule(t(0.06), t(0.0), t(10), t(1), no, **args)
    # too early, stopped, or no dimension left
    assert not saturation_rule(t(1.0), t(1.0), t(9), t(1), no, **args)
    assert not saturation_rule(t(1.0), t(1.0), t(10), t(1), t(True), **args)
    assert not saturation_rule(t(1.0), t(1.0), t(10), t(4), no, **args)
    assert z2_exhausted(t(0.05), 0.1) and not z2_exhausted(t(0.2), 0.1)


def test_saturation_rule_min_kl_and_patience():
    """The optional gate: an almost empty dimension has not saturated until its patience runs
    out; an informative one switches as before; min_kl = 0 is the default rule exactly."""
    t = torch.tensor
    args = dict(num_z1=4, tol=0.1, floor=0.5, min_steps=10)
    no = t(False)
    flat_empty = (t(0.1), t(0.1))  # flat at 0.1 nats
    assert saturation_rule(*flat_empty, t(10), t(1), no, **args)  # the default rule switches
    gated = dict(args, min_kl=1.0, max_steps=50)
    assert not saturation_rule(*flat_empty, t(10), t(1), no, **gated)
    assert not saturation_rule(*flat_empty, t(49), t(1), no, **gated)
    assert saturation_rule(*flat_empty, t(50), t(1), no, **gated)  # patience ran out
    assert saturation_rule(t(2.05), t(2.0), t(10), t(1), no, **gated)  # informative, flat
    assert not saturation_rule(t(2.5), t(2.0), t(10), t(1), no, **gated)  # still growing
    # without patience an empty dimension waits for good
    assert not saturation_rule(*flat_empty, t(10**6), t(1), no, **dict(args, min_kl=1.0))
    # every flat or growing case agrees with the default rule when min_kl = 0
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        now, prev = torch.rand(2, generator=g) * 3
        steps = t(int(torch.randint(0, 30, (1,), generator=g)))
        assert bool(saturation_rule(now, prev, steps, t(2), no, **args)) == bool(
            saturation_rule(now, prev, steps, t(2), no, **dict(args, min_kl=0.0, max_steps=None)))
    with pytest.raises(ValueError, match="saturation_min_kl"):
        OAT((1, 64, 64), saturation_min_kl=-1.0)
    with pytest.raises(ValueError, match="max_dim_steps"):
        OAT((1, 64, 64), min_dim_steps=100, max_dim_steps=50)


def test_switching_on_a_scripted_kl_sequence():
    """Feed scripted running KLs to the method's buffers; dimensions switch on exactly when the
    plain-Python rule says so."""
    k_max, check, min_steps, tol, floor = 5, 10, 20, 0.05, 0.2
    m = OAT((1, 64, 64), num_z1=k_max, pretrain_steps=30, check_every=check,
            min_dim_steps=min_steps, saturation_tol=tol, saturation_floor=floor, z2_zero_kl=-1.0)
    m.start_oat(30)
    rng = np.random.RandomState(0)
    # each dimension's KL rises for a while then flattens; the rise lengths differ
    script = []
    level = np.zeros(k_max)
    for _ in range(40):
        level = level + rng.uniform(0, 0.6, size=k_max) * (rng.uniform(size=k_max) < 0.5)
        script.append(level.copy())
    expected = _reference_switches(script, check, min_steps, tol, floor, k_max, 30)
    got_starts, n_seq = [30], []
    for i, value in enumerate(script):
        masked = torch.as_tensor(value, dtype=torch.float32) * m.mask  # inactive dims have KL 0
        m.kl_z1_ema.copy_(masked)
        before = int(m.n_active)
        m.apply_rules(30 + (i + 1) * check)
        if int(m.n_active) > before:
            got_starts.append(30 + (i + 1) * check)
        n_seq.append(int(m.n_active))
    assert got_starts == expected
    assert len(expected) > 2 and len(expected) <= k_max  # the script exercises the rule
    assert m.switch_steps.tolist()[: len(expected)] == expected
    assert torch.equal(m.mask, (torch.arange(k_max) < n_seq[-1]).float())
    assert all(b >= a for a, b in zip(n_seq, n_seq[1:], strict=False))


def test_stopping_rule_freezes_the_number_of_dimensions():
    m = OAT((1, 64, 64), num_z1=6, pretrain_steps=0, check_every=1, min_dim_steps=0,
            saturation_tol=1e9, z2_zero_kl=0.5)
    m.start_oat(0)
    z2 = [3.0, 2.0, 1.0, 0.4, 2.0, 0.1]
    n = []
    for i, v in enumerate(z2):
        m.kl_z2_ema.fill_(v)
        m.apply_rules(i + 1)
        n.append(int(m.n_active))
    # every check switches one on until z2's KL is below 0.5 at the 4th check; then frozen,
    # even when z2's KL rises again
    assert n == [2, 3, 4, 4, 4, 4]
    assert bool(m.stopped) and int(m.stop_step) == 4 and int(m.phase) == 2


# ---- gradients ----------------------------------------------------------------------------------
def _grads(module):
    return [p.grad for p in module.parameters()]


def test_gradients_reach_what_they_should():
    m = OAT((1, 64, 64), num_z1=4, num_z2=3, seed=0)
    m.start_oat(0)
    m.n_active.fill_(2)
    m.mask.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    x = _x(8)
    gen = torch.Generator().manual_seed(0)
    # step 1: inactive z1 head rows get exactly zero gradient, active rows and z2 do not
    s1 = m.step1_terms(x, 2.0, gen)
    s1["loss_step1"].backward()
    for head in (m.encoder.mean, m.encoder.logvar):
        g = head.weight.grad
        assert torch.count_nonzero(g[2:4]) == 0
        assert torch.count_nonzero(g[0:2]) > 0 and torch.count_nonzero(g[4:]) > 0
    assert all(g is None for g in _grads(m.discriminator))
    m.zero_grad(set_to_none=True)
    # D's loss (on detached fakes) does not reach the encoder or the decoder
    z_tilde, x_tilde, _ = m.intervention(s1["z"], gen)
    d_loss, _ = m.discriminator_loss(x, x_tilde)
    d_loss.backward()
    assert all(g is None for g in _grads(m.encoder)) and all(g is None for g in _grads(m.decoder))
    assert all(g is not None for g in _grads(m.discriminator))
    m.zero_grad(set_to_none=True)
    # the generator-side adversarial term reaches the decoder, not D
    adv = m.generator_adv(x_tilde)
    adv.backward(retain_graph=True)
    assert all(g is None for g in _grads(m.discriminator))
    assert any(g is not None and torch.count_nonzero(g) > 0 for g in _grads(m.decoder))
    assert all(p.requires_grad for p in m.discriminator.parameters())  # flags restored
    m.zero_grad(set_to_none=True)
    # the code reconstruction reaches encoder and decoder (through x̃), never D
    m.code_nll(x_tilde, z_tilde).backward()
    assert any(g is not None and torch.count_nonzero(g) > 0 for g in _grads(m.decoder))
    assert any(g is not None and torch.count_nonzero(g) > 0 for g in _grads(m.encoder))
    assert all(g is None for g in _grads(m.discriminator))


def test_optimisers_are_disjoint_and_d_moves_only_in_its_own_step():
    m = OAT((1, 64, 64), num_z1=3, num_z2=2, pretrain_steps=1, seed=0)
    m.setup_optimizers()
    main_ids = {id(p) for g in m.optimizers["main"].param_groups for p in g["params"]}
    d_ids = {id(p) for g in m.optimizers["discriminator"].param_groups for p in g["params"]}
    assert not main_ids & d_ids
    assert d_ids == {id(p) for p in m.discriminator.parameters()}
    assert main_ids == {id(p) for p in [*m.encoder.parameters(), *m.decoder.parameters()]}
    d_before = [p.detach().clone() for p in m.discriminator.parameters()]
    gen = torch.Generator().manual_seed(0)
    m.train_step(_x(8), gen)  # pre-training: D untouched
    assert all(torch.equal(a, b) for a, b in zip(d_before, m.discriminator.parameters(),
                                                 strict=True))
    out = m.train_step(_x(8, 1), gen)  # OAT: D takes one step
    assert not all(torch.equal(a, b) for a, b in zip(d_before, m.discriminator.parameters(),
                                                     strict=True))
    assert float(out["d_loss"]) > 0 and int(m.step) == 2
    # Adam counted one D update and two encoder/decoder updates per OAT iteration (+1 before)
    d_state = m.optimizers["discriminator"].state_dict()["state"]
    assert all(int(s["step"]) == 1 for s in d_state.values())
    # the unit-variance code loss of step 2 does not involve the log-variance head
    logvar_ids = {id(p) for p in m.encoder.logvar.parameters()}
    for p in [*m.encoder.parameters(), *m.decoder.parameters()]:
        count = int(m.optimizers["main"].state[p]["step"])
        assert count == (2 if id(p) in logvar_ids else 3)


# ---- engine: logging, resume, a short run -------------------------------------------------------
_FAST = dict(num_z1=4, num_z2=3, pretrain_steps=3, beta_end=4.0, beta_ramp_steps=6, check_every=2,
             min_dim_steps=2, saturation_tol=1e9, z2_zero_kl=-1.0, lr=1e-3, seed=0)


def _state(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_exact_resume_across_phase_and_mask_switches(data, tmp_path):
    straight = OAT((1, 64, 64), **_FAST)
    h_straight = fit(straight, data, 11, batch_size=4, seed=5, log_every=1, show_progress=False)
    assert straight.switch_steps.tolist() == [3, 5, 7, 9]  # the phase switch and three more
    for split in (2, 6):  # in pre-training; in the OAT phase between two mask switches
        ckpt = tmp_path / f"split{split}.pt"
        first = OAT((1, 64, 64), **_FAST)
        fit(first, data, split, batch_size=4, seed=5, log_every=1, checkpoint=ckpt,
            show_progress=False)
        resumed = OAT((1, 64, 64), **_FAST)  # a fresh object: all state comes from the file
        h = fit(resumed, data, 11, batch_size=4, seed=5, log_every=1, checkpoint=ckpt,
                show_progress=False)
        a, b = _state(straight), _state(resumed)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
        for term in ("loss", "n_active", "kl_z1_dims", "d_loss", "beta"):
            np.testing.assert_array_equal(h[term], h_straight[term])


def test_logged_terms(data):
    m = OAT((1, 64, 64), **_FAST)
    h = fit(m, data, 8, batch_size=4, seed=0, log_every=1, show_progress=False)
    assert {"loss", "recon", "kl_z1", "kl_z2", "kl_z1_dims", "kl_z2_dims", "beta", "n_active",
            "code_nll", "g_adv", "d_loss", "d_accuracy", "phase", "stopped"} <= set(h.keys())
    assert h["kl_z1_dims"].shape == (8, 4) and h["kl_z2_dims"].shape == (8, 3)
    np.testing.assert_array_equal(h["n_active"], [0, 0, 0, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(h["phase"], [0, 0, 0, 1, 1, 1, 1, 1])
    assert (h["d_loss"][:3] == 0).all() and (h["d_loss"][3:] > 0).all()
    # dimensions not yet switched on have exactly zero KL
    assert (h["kl_z1_dims"][:3] == 0).all() and (h["kl_z1_dims"][3, 1:] == 0).all()
    np.testing.assert_allclose(h["beta"], [1, 1, 1, 1, 1.5, 2, 2.5, 3], rtol=1e-6)


def test_short_cpu_run_learns_and_stays_finite(data):
    cfg = OATConfig(num_z1=4, num_z2=4, pretrain_steps=40, beta_ramp_steps=40, beta_end=2.0,
                    check_every=10, min_dim_steps=10, lr=5e-4, seed=0)
    m = OAT((1, 64, 64), cfg)
    h = fit(m, data, 80, batch_size=16, seed=0, log_every=10, show_progress=False)
    for term in h.keys():
        assert np.isfinite(h[term]).all(), term
    assert h["recon"][-1] < 0.7 * h["recon"][0]
    assert h["loss"][3] < h["loss"][0]  # the pre-training loss (no step-2 terms yet) decreases
    assert h["n_active"][-1] >= 1 and (h["code_nll"][4:] > 0).all()


def test_schedule_for_and_bad_config():
    s = schedule_for(100_000)
    assert s == {"pretrain_steps": 10_000, "beta_ramp_steps": 90_000, "check_every": 1000,
                 "min_dim_steps": 4500}
    assert schedule_for(1000, num_z1=2)["min_dim_steps"] == 225
    assert schedule_for(100, num_z1=10)["min_dim_steps"] == 4  # at least two checks
    for bad in (dict(num_z1=0), dict(check_every=0), dict(kl_decay=1.0),
                dict(code_likelihood="laplace"), dict(pretrain_steps=-1)):
        with pytest.raises(ValueError):
            OAT((1, 64, 64), **bad)
    with pytest.raises(TypeError, match="unknown option"):
        OAT((1, 64, 64), gamma=3.0)
    with pytest.raises(ValueError):
        schedule_for(0)


# ---- the CPU scale: width and 32×32 images ---------------------------------------------------
def test_width_one_at_64x64_is_the_papers_network():
    assert OATConfig().width == 1.0
    assert num_parameters(OAT((1, 64, 64))) == 944_938  # the count before width existed
    assert num_parameters(OAT((3, 64, 64))) == 948_012
    assert num_parameters(ImageDiscriminator(1)) == 246_721  # InfoGAN-CR's D


@pytest.mark.parametrize("channels", [1, 3])
def test_half_width_on_32x32_images_trains(channels, images_32):
    shape = (channels, 32, 32)
    m = OAT(shape, width=0.5, **_FAST)
    assert num_parameters(m) < num_parameters(OAT(shape, **_FAST)) / 3
    d = m.discriminator.body
    assert [layer.out_channels for layer in d if isinstance(layer, torch.nn.Conv2d)] == [16, 32, 32]
    assert d[0].in_channels == channels  # the first 64 → 32 conv is dropped
    h = fit(m, images_32(channels), 8, batch_size=8, seed=0, log_every=1, show_progress=False)
    for term in h.keys():
        assert np.isfinite(h[term]).all(), term
    assert (h["d_loss"][3:] > 0).all()  # step 2 and D ran
    x = images_32(channels).sample(4)
    assert m.reconstruct(x).shape == (4, *shape) and m.discriminator(x).shape == (4,)
    with pytest.raises(ValueError, match="32, 32"):
        m.discriminator(_x(2))


def test_image_discriminator_sizes_and_bad_options():
    with pytest.raises(ValueError, match="64×64 or 32×32"):
        ImageDiscriminator(1, image_size=48)
    with pytest.raises(ValueError, match="width"):
        ImageDiscriminator(1, width=0.0)
    with pytest.raises(ValueError, match="64"):
        ImageDiscriminator(1)(torch.zeros(2, 1, 32, 32))


def test_the_cpu_scale_builds_oat_through_the_study_path():
    point = {"dataset": "dsprites", "method": "oat", "setting": {}}
    methods, options = build_methods(point, [0], 100, 64, (1, 32, 32), 1000, SCALES["cpu"])
    assert options["width"] == 0.5 and methods[0].config.width == 0.5
    assert methods[0].image_shape == (1, 32, 32)
    assert num_parameters(methods[0]) == num_parameters(OAT((1, 32, 32), width=0.5))


# ---- GPU ----------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_step_does_not_synchronise_on_cuda():
    dd = load("dsprites").to_device("cuda", num=256, seed=0)
    m = OAT((1, 64, 64), **{**_FAST, "check_every": 1}).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    batches = [dd.sample(8, gen) for _ in range(9)]  # drawn first: only train_step is checked
    m.train_step(batches[0], gen)  # the first call reads the step counter once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for x in batches[1:]:  # across the phase switch and several mask switches
            m.train_step(x, gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert int(m.n_active) >= 2


def test_peeling_report_tells_peeling_from_its_absence():
    from dlib.methods.oat import peeling_report, scripted_peeling

    # the scripted world peels: each dimension absorbs its factor before the next is switched on
    run = scripted_peeling()
    switch = run["method"].switch_steps.numpy()
    rep = peeling_report(np.arange(len(run["kl_z1"])), run["kl_z1"], switch)
    assert rep["peels"] and len(rep["order"]) >= 3
    assert all(r["held"] >= 0.5 and 0 < r["share"] <= 1 for r in rep["rows"])

    # the failure of issue 18: all ten switched on early, each with a fraction of a nat
    steps = np.arange(0, 6000, 20)
    switch = np.array([600 + 320 * i for i in range(10)])
    kl = np.clip((steps[:, None] - switch[None]) / 4000, 0, None) * 0.66
    rep = peeling_report(steps, kl, switch)
    assert not rep["peels"] and not any(r["ok"] for r in rep["rows"])
    assert rep["order"] == list(range(10)) and len(rep["rows"]) == 9

    # one dimension switched on is no peeling either; the order follows the switch steps
    assert not peeling_report(steps, kl, np.array([600] + [-1] * 9))["peels"]
    big = np.zeros((len(steps), 3))
    big[steps >= 100, 2], big[steps >= 900, 0] = 2.0, 1.0
    rep = peeling_report(steps, big, np.array([800, -1, 50]))
    assert rep["order"] == [2, 0] and rep["rows"][0]["held"] == 2.0 and rep["peels"]
    with pytest.raises(ValueError, match="one entry per z1"):
        peeling_report(steps, kl, switch[:3])
    with pytest.raises(ValueError, match="T = len"):
        peeling_report(steps[:5], kl, switch)
