"""The intervention-based framework (seed 002) against independent computations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlib.data import load
from dlib.methods import Intervention, InterventionConfig
from dlib.methods.intervention import (
    LAMBDAS,
    LAMBDAS_DSPRITES,
    ImageCritic,
    intervene,
    normalised_weights,
    weighted_adversarial_value,
)
from dlib.nets import num_parameters
from dlib.scales import SCALES
from dlib.studies.trainable import build_methods
from dlib.train import fit, load_checkpoint

SHAPE = (1, 64, 64)


def _x(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *SHAPE, generator=g) > 0.85).float()


def _small(**kw):
    return Intervention(SHAPE, seed=0, diff_steps=2, **kw)


# ---- the two interventions ----------------------------------------------------------------------
def test_intervene_matches_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    for d_z in (1, 3):
        z, z_r = torch.randn(6, 4 * d_z, generator=g), torch.randn(6, 4 * d_z, generator=g)
        k = torch.randint(0, 4, (6,), generator=g)
        got = intervene(z, z_r, k, d_z)
        for i in range(6):
            for j in range(4 * d_z):
                want = z_r[i, j] if j // d_z == int(k[i]) else z[i, j]
                assert got[i, j] == want
    with pytest.raises(ValueError, match="differ"):
        intervene(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))


def test_interventions_do_what_the_paper_says():
    """I1: feature k of z := z^r_k, decode. I2: encode that, feature k := z_k, decode. Reference
    built by hand, one example at a time."""
    m = _small().double()
    x, x_r = _x(4, 0).double(), _x(4, 1).double()
    g = torch.Generator().manual_seed(7)
    f = m.interventions(x, x_r, g)
    k = torch.randint(0, 10, (4,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(f["k"], k)
    for i in range(4):
        z = m.encode(x[i : i + 1])[0].clone()
        z_r = m.encode(x_r[i : i + 1])[0]
        z1 = z.clone()
        z1[int(k[i])] = z_r[int(k[i])]
        x1 = m.decode(z1[None])
        torch.testing.assert_close(f["intervened"][i : i + 1], x1)
        z2 = m.encode(torch.sigmoid(x1))[0].clone()
        z2[int(k[i])] = z[int(k[i])]
        torch.testing.assert_close(f["restored"][i : i + 1], m.decode(z2[None]))
        torch.testing.assert_close(f["recon"][i : i + 1], m.decode(z[None]))


def test_l_in_and_l_rec_by_hand():
    m = _small(lambda_diff=0.0).double()
    x = _x(8).double()
    t = m.terms(x, torch.Generator().manual_seed(3))
    f = m.interventions(x[:4], x[4:], torch.Generator().manual_seed(3))

    def ce(logits, target):  # −Σ_pixels [x log σ(l) + (1 − x) log(1 − σ(l))], mean over images
        p = 1 / (1 + np.exp(-logits.detach().numpy()))
        xt = target.numpy()
        return float(np.mean(-(xt * np.log(p) + (1 - xt) * np.log1p(-p)).reshape(4, -1).sum(1)))

    assert float(t["in"].detach()) == pytest.approx(ce(f["restored"], x[:4]), rel=1e-9)
    assert float(t["recon"].detach()) == pytest.approx(ce(f["recon"], x[:4]), rel=1e-9)
    lam_in, lam_adv = m.config.lambda_in, m.config.lambda_adv
    torch.testing.assert_close(t["loss"], t["recon"] + lam_in * t["in"] + lam_adv * t["adv"])


# ---- the weight network and L_adv ---------------------------------------------------------------
def test_normalised_weights_average_one_and_ignore_scale():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(16, generator=g) * 5
    wn = normalised_weights(w)
    assert float(wn.mean()) == pytest.approx(1.0, abs=1e-6)
    assert float(wn.sum()) == pytest.approx(16.0, abs=1e-5)
    real, fake = torch.randn(16, generator=g), torch.randn(16, generator=g)
    torch.testing.assert_close(weighted_adversarial_value(real, fake, w),
                               weighted_adversarial_value(real, fake, 3.7 * w))
    with pytest.raises(ValueError):
        normalised_weights(torch.ones(2, 2))


def test_uniform_weights_give_the_unweighted_gan_value():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.1, 1.5])
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    by_hand = (np.mean([math.log(sig(r)) for r in real.tolist()])
               + np.mean([math.log(1 - sig(f)) for f in fake.tolist()]))
    for c in (1.0, 0.2, 50.0):
        got = weighted_adversarial_value(real, fake, torch.full((3,), c))
        assert float(got) == pytest.approx(by_hand, rel=1e-6)


def test_weight_network_starts_at_one_and_its_gradient_favours_realistic_fakes():
    w_net = ImageCritic(SHAPE, "exp")
    assert torch.equal(w_net(_x(3)), torch.ones(3))
    # minimising Σ (w_i/N) log(1 − D_i) moves weight onto fakes the critic finds real (high D)
    w = torch.ones(4, requires_grad=True)
    fake_logits = torch.tensor([-3.0, -1.0, 1.0, 3.0])
    (weighted_adversarial_value(torch.zeros(4), fake_logits, w)).backward()
    assert (torch.diff(-w.grad) > 0).all()  # descent raises the weights of higher D
    assert float(w.grad.sum()) == pytest.approx(0.0, abs=1e-7)  # normalisation: no net shrink


def test_lambda_presets_are_the_papers():
    assert LAMBDAS_DSPRITES == (0.25, 10.0, 1.0)
    assert LAMBDAS["shapes3d"] == (0.25, 10.0, 1.0)
    assert LAMBDAS["cmnist"] == (1.0, 10.0, 1.0)
    assert LAMBDAS["flowers102"] == (1.0, 100.0, 1.0)
    cfg = InterventionConfig()
    assert (cfg.lambda_in, cfg.lambda_adv, cfg.lambda_diff) == LAMBDAS_DSPRITES
    assert (cfg.lr, cfg.d_lr, cfg.w_lr) == (1e-4, 1e-4, 1e-5)
    assert (cfg.num_features, cfg.feature_dim) == (10, 1)


def test_config_errors():
    with pytest.raises(ValueError, match="gan_loss"):
        Intervention(SHAPE, gan_loss="wgan")
    with pytest.raises(ValueError, match="λ"):
        Intervention(SHAPE, lambda_adv=-1.0)
    with pytest.raises(ValueError, match="64"):
        Intervention((1, 48, 48))
    with pytest.raises(ValueError, match="width"):
        Intervention(SHAPE, width=0.0)
    with pytest.raises(TypeError, match="unknown option"):
        Intervention(SHAPE, gamma=3.0)
    with pytest.raises(ValueError, match="even batch"):
        _small().train_step(_x(5))


# ---- optimisation -------------------------------------------------------------------------------
def test_each_optimiser_step_sees_gradients_only_on_its_own_parameters():
    m = _small()
    m.setup_optimizers()
    names = {id(p): n for n, p in m.named_parameters()}
    seen = {}
    for key, opt in m.optimizers.items():
        original = opt.step

        def spy(*a, _key=key, _orig=original, **kw):
            seen[_key] = {names[id(p)].split(".")[0] for p in m.parameters()
                          if p.grad is not None and p.grad.abs().sum() > 0}
            return _orig(*a, **kw)

        opt.step = spy
    # real sprites (random pixel noise gives near-identical codes and a zero W gradient)
    x = load("dsprites").to_device("cpu", num=8, seed=0).images.float()
    out = m.train_step(x, torch.Generator().manual_seed(0))
    assert seen["discriminator"] == {"discriminator"}
    assert seen["weight"] == {"weight_net"}
    assert seen["main"] == {"encoder", "decoder"}
    assert all(p.grad is None for p in m.translator.parameters())
    assert set(out) >= {"loss", "recon", "in", "adv", "diff", "d_loss", "w_loss",
                        "w_raw_mean", "w_norm_max", "d_real", "d_fake"}
    assert int(m.step) == 1


def test_l_diff_reaches_the_decoder_and_its_inner_loop_is_optional_to_unroll():
    x = load("dsprites").to_device("cpu", num=8, seed=0).images.double()
    grads = {}
    for unroll in (False, True):
        m = _small(diff_unroll=unroll).double()
        z = m.encode(x[:4])
        loss = m.diff_loss(z, m.encode(x[4:]), torch.Generator().manual_seed(0))
        assert torch.isfinite(loss)
        grads[unroll] = torch.autograd.grad(loss, m.decoder.net[0].weight)[0]
        assert grads[unroll].abs().sum() > 0
    gap = (grads[False] - grads[True]).abs().max()
    # unrolling adds the path through the training pairs (small at initialisation, where the
    # decoder hardly depends on z, but far above float64 rounding)
    assert gap > 1e-6 * grads[True].abs().max()


def test_exact_resume_through_the_engine(tmp_path):
    data = load("dsprites").to_device("cpu", num=64, seed=0)
    a = _small(gan_loss="nonsaturating")
    ha = fit(a, data, 4, batch_size=4, log_every=2, show_progress=False)
    b = _small(gan_loss="nonsaturating")
    fit(b, data, 2, batch_size=4, log_every=2, checkpoint=tmp_path / "c.pt",
        show_progress=False)
    c = _small(gan_loss="nonsaturating")
    hc = fit(c, data, 4, batch_size=4, log_every=2, checkpoint=tmp_path / "c.pt",
             show_progress=False)
    for (n, p), q in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        assert torch.equal(p, q), n
    np.testing.assert_array_equal(ha["loss"], hc["loss"])
    np.testing.assert_array_equal(ha["w_loss"], hc["w_loss"])
    with pytest.raises(ValueError, match="differs"):
        load_checkpoint(tmp_path / "c.pt", _small(lambda_in=1.0))


def test_short_cpu_run_is_finite_and_lowers_the_reconstruction():
    data = load("dsprites").to_device("cpu", num=256, seed=0)
    m = Intervention(SHAPE, seed=0, diff_steps=2, lr=1e-3)
    h = fit(m, data, 24, batch_size=8, log_every=6, show_progress=False)
    for k in h.keys():
        assert np.isfinite(h[k]).all(), k
    assert h["recon"][-1] < 0.8 * h["recon"][0]
    assert np.allclose(h["w_raw_mean"], h["w_raw_mean"][0], rtol=0.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_step_on_cuda_matches_shapes_and_is_finite():
    data = load("dsprites").to_device("cuda", num=256, seed=0)
    m = Intervention(SHAPE, seed=0)
    h = fit(m, data, 10, batch_size=32, log_every=5, show_progress=False)
    assert np.isfinite(h["loss"]).all() and next(m.parameters()).is_cuda


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_step_does_not_synchronise_with_the_host():
    m = Intervention(SHAPE, seed=0).cuda()
    x = load("dsprites").to_device("cuda", num=64, seed=0).images.float()
    gen = torch.Generator(device="cuda").manual_seed(0)
    m.train_step(x, gen)  # warm-up: optimiser states are created
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        m.train_step(x, gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_w_network_clamp_keeps_weights_finite():
    w_net = ImageCritic(SHAPE, "exp", clamp=2.0)
    with torch.no_grad():
        w_net.head.bias.fill_(100.0)
    w = w_net(_x(2))
    torch.testing.assert_close(w, torch.full((2,), math.exp(2.0)))
    assert F.logsigmoid(torch.tensor(-80.0)).isfinite()


# ---- the CPU scale: width and 32×32 images ---------------------------------------------------
def test_width_one_at_64x64_is_the_papers_network():
    assert InterventionConfig().width == 1.0
    assert num_parameters(Intervention(SHAPE)) == 990_157  # the count before width existed
    assert num_parameters(Intervention((3, 64, 64))) == 994_255


@pytest.mark.parametrize("channels", [1, 3])
def test_half_width_on_32x32_images_trains(channels, images_32):
    shape = (channels, 32, 32)
    m = Intervention(shape, seed=0, diff_steps=2, width=0.5)
    assert num_parameters(m) < num_parameters(Intervention(shape)) / 3
    convs = [layer for layer in m.encoder.net[0] if isinstance(layer, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 32] and convs[0].in_channels == channels
    assert m.encoder.net[1].out_features == 64  # hidden = 128 · 0.5
    assert m.weight_net.head.in_features == 64 and m.discriminator.head.in_features == 64
    assert m.translator.residual[0].out_channels == 16
    h = fit(m, images_32(channels), 6, batch_size=8, log_every=2, show_progress=False)
    for k in h.keys():
        assert np.isfinite(h[k]).all(), k
    assert (h["diff"] > 0).all()  # L_diff ran on the 32×32 decoded pairs
    x = images_32(channels).sample(3)
    assert m.reconstruct(x).shape == (3, *shape) and m.represent(x).shape == (3, 10)


def test_the_cpu_scale_builds_intervention_through_the_study_path():
    point = {"dataset": "dsprites", "method": "intervention", "setting": {}}
    methods, options = build_methods(point, [0], 100, 64, (1, 32, 32), 1000, SCALES["cpu"])
    assert options["width"] == 0.5 and methods[0].config.width == 0.5
    assert methods[0].image_shape == (1, 32, 32)
    assert num_parameters(methods[0]) == num_parameters(Intervention((1, 32, 32), width=0.5))


# ---- Eq. (1) and Proposition 2 on an exact grid --------------------------------------------------
def test_intervened_distribution_matches_a_plain_loop_and_the_ratio_restores_p():
    from dlib.methods.intervention import density_ratio, intervened_distribution

    rs = np.random.RandomState(0)
    p = rs.uniform(size=(3, 4, 2)) ** 3
    p /= p.sum()
    q = intervened_distribution(p)
    ref = np.zeros_like(p)
    for idx in np.ndindex(*p.shape):
        for k in range(3):
            marg_k = sum(p[j] for j in np.ndindex(*p.shape) if j[k] == idx[k])
            others = sum(p[j] for j in np.ndindex(*p.shape)
                         if all(j[a] == idx[a] for a in range(3) if a != k))
            ref[idx] += marg_k * others / 3
    np.testing.assert_allclose(q, ref, rtol=1e-12)
    assert q.sum() == pytest.approx(1.0)
    w = density_ratio(p)
    np.testing.assert_allclose(q * w, p, rtol=1e-12)  # Proposition 2: w ∘ ṗ = p
    # independent factors: ṗ = p and every weight is 1
    ind = np.einsum("i,j,k->ijk", rs.dirichlet(np.ones(3)), rs.dirichlet(np.ones(4)),
                    rs.dirichlet(np.ones(2)))
    np.testing.assert_allclose(density_ratio(ind), 1.0, rtol=1e-10)
    with pytest.raises(ValueError):
        intervened_distribution(-p)
