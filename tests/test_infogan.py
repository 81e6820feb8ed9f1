import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlib.data import load
from dlib.methods import InfoGAN, InfoGANConfig
from dlib.methods.infogan import (
    gradient_penalty,
    info_log_likelihood,
    running_statistics_check,
    squares_and_noise,
)
from dlib.nets import num_parameters
from dlib.scales import SCALES
from dlib.studies.trainable import build_methods
from dlib.train import fit


def test_latents_and_shapes():
    m = InfoGAN((1, 64, 64), seed=0)
    c, cat, z = m.sample_latents(500, torch.Generator().manual_seed(0))
    assert z.shape == (500, 4 + 3 + 5)
    assert c.min() >= -1 and c.max() <= 1 and c.std() > 0.5
    assert set(cat.tolist()) == {0, 1, 2}
    torch.testing.assert_close(z[:, 4:7], F.one_hot(cat, 3).float())
    m.eval()
    img = m.generate(3)
    assert img.shape == (3, 1, 64, 64) and img.min() >= 0 and img.max() <= 1
    assert m.represent(img).shape == (3, 5)


def test_info_log_likelihood_by_hand():
    g = torch.Generator().manual_seed(1)
    c = torch.rand(4, 2, generator=g) * 2 - 1
    mean, log_std = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g) * 0.3
    logits, cat = torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 1])
    normal = torch.distributions.Normal(mean, log_std.exp())
    expected = (normal.log_prob(c).sum(1) + torch.log_softmax(logits, 1)[range(4), cat]).mean()
    torch.testing.assert_close(info_log_likelihood(c, cat, mean, log_std, logits), expected)
    only_cont = normal.log_prob(c).sum(1).mean()
    torch.testing.assert_close(info_log_likelihood(c, None, mean, log_std, logits), only_cont)


def test_gradient_penalty_of_a_linear_critic():
    """For D(x) = w·x the gradient is w everywhere, so the penalty is (‖w‖ − 1)² exactly."""
    w = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.rand(5, 3, 8, 8), torch.rand(5, 3, 8, 8)
    gp = gradient_penalty(critic, real, fake)
    assert float(gp) == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


def test_wgan_critic_has_no_batch_norm():
    wgan = InfoGAN((1, 64, 64), variant="wgan-gp").discriminator
    gan = InfoGAN((1, 64, 64), variant="gan").discriminator
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in wgan.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in wgan.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gan.modules()) == 3


@pytest.mark.parametrize("variant", ["gan", "wgan-gp"])
def test_training_step_and_engine(variant):
    data = load("dsprites").to_device("cpu", num=64, seed=0)
    m = InfoGAN((1, 64, 64), variant=variant, seed=0)
    m.setup_optimizers()
    g_ids = {id(p) for p in m.optimizers["main"].param_groups[0]["params"]}
    d_ids = {id(p) for p in m.optimizers["discriminator"].param_groups[0]["params"]}
    assert not g_ids & d_ids and g_ids == {id(p) for p in m.generator.parameters()}
    h = fit(m, data, 4, batch_size=8, log_every=2, show_progress=False)
    assert all(np.isfinite(h[k]).all() for k in h.keys())
    extra = "gradient_penalty" if variant == "wgan-gp" else "d_accuracy"
    assert {"loss", "info", "d_loss", extra} <= set(h.keys())


def test_info_term_rewards_recoverable_codes():
    """A Q that reads the codes perfectly (sharp, centred) beats one that ignores them."""
    c = torch.rand(64, 2) * 2 - 1
    cat = torch.randint(3, (64,))
    sharp = info_log_likelihood(c, cat, c, torch.full_like(c, math.log(0.05)),
                                F.one_hot(cat, 3).float() * 20)
    blind = info_log_likelihood(c, cat, torch.zeros_like(c), torch.zeros_like(c),
                                torch.zeros(64, 3))
    assert sharp > blind


def test_bad_config():
    with pytest.raises(ValueError, match="variant"):
        InfoGAN((1, 64, 64), variant="vae")
    with pytest.raises(ValueError, match="64×64"):
        InfoGAN((1, 48, 48))
    with pytest.raises(ValueError, match="width"):
        InfoGAN((1, 64, 64), width=-1.0)


# ---- the CPU scale: width and 32×32 images ---------------------------------------------------
def test_width_one_at_64x64_is_the_papers_network():
    assert InfoGANConfig().width == 1.0
    # the counts before width existed
    assert num_parameters(InfoGAN((1, 64, 64), variant="gan")) == 517_133
    assert num_parameters(InfoGAN((1, 64, 64), variant="wgan-gp")) == 516_813
    assert num_parameters(InfoGAN((3, 64, 64), variant="gan")) == 519_183


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("variant", ["gan", "wgan-gp"])
def test_half_width_on_32x32_images_trains(variant, channels, images_32):
    shape = (channels, 32, 32)
    m = InfoGAN(shape, variant=variant, width=0.5, seed=0)
    assert num_parameters(m) < num_parameters(InfoGAN(shape, variant=variant)) / 3
    convs = [layer for layer in m.discriminator.trunk if isinstance(layer, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 32] and convs[0].in_channels == channels
    # the input layer stays unnormalised, as at 64×64
    assert not isinstance(m.discriminator.trunk[2], nn.BatchNorm2d)
    h = fit(m, images_32(channels), 4, batch_size=8, log_every=2, show_progress=False)
    assert all(np.isfinite(h[k]).all() for k in h.keys())
    m.eval()
    img = m.generate(3)
    assert img.shape == (3, *shape) and img.min() >= 0 and img.max() <= 1
    assert m.represent(img).shape == (3, 5)


@pytest.mark.parametrize("setting", [{}, {"variant": "gan"}])
def test_the_cpu_scale_builds_infogan_through_the_study_path(setting):
    point = {"dataset": "dsprites", "method": "infogan", "setting": setting}
    methods, options = build_methods(point, [0], 100, 64, (1, 32, 32), 1000, SCALES["cpu"])
    assert options["width"] == 0.5 and methods[0].config.width == 0.5
    assert methods[0].image_shape == (1, 32, 32)
    want = InfoGAN((1, 32, 32), width=0.5, **setting)
    assert num_parameters(methods[0]) == num_parameters(want)


@pytest.mark.parametrize("image_size", [32, 64])
def test_discriminator_separates_real_and_fake_batches(image_size):
    """D sees real and fake images in separate batches (as in train_step). With the batch norm
    after the activation, directly before D's output layer, the mean logit of every batch is the
    same constant and D stays at chance whatever it is shown; normalising before the activation
    lets it learn black-background sprites from grey noise in a few dozen steps."""
    real, fake = squares_and_noise(32, image_size)
    m = InfoGAN((1, image_size, image_size), variant="gan", width=0.5, seed=0)
    opt = torch.optim.Adam(m.discriminator.parameters(), lr=1e-3)
    for _ in range(30):
        d_real, d_fake = m.discriminator(real)[0], m.discriminator(fake)[0]
        loss = m._d_real_fake(d_real, d_fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    d_real, d_fake = m.discriminator(real)[0], m.discriminator(fake)[0]
    accuracy = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
    assert accuracy > 0.9
    assert m._d_real_fake(d_real, d_fake).item() < 0.75 * 2 * math.log(2)  # chance: 2 log 2


def test_batch_separation_check_tells_the_two_layer_orders_apart():
    """The chapter's layer-order check: activation → norm → output cannot separate two batches
    seen apart (gap 0, loss 2 log 2); norm → activation can."""
    import math

    from dlib.methods.infogan import batch_separation_check

    gap, loss = batch_separation_check(False)
    assert abs(gap) < 1e-3 and loss == pytest.approx(2 * math.log(2), abs=1e-3)
    gap, loss = batch_separation_check(True)
    assert gap > 1.0 and loss < 1.0


def test_calibration_reads_real_images_through_their_own_statistics():
    """After D learns real from fake in separate batches, its running statistics mix the two,
    and Q's eval-mode code of real images differs from the code under real images' batch
    statistics. Calibration on those images makes the eval-mode code equal the batch-statistics
    code (up to the unbiased variance's n/(n−1)) and leaves momentum and mode as they were."""
    real, fake = squares_and_noise(256)
    m = InfoGAN((1, 32, 32), variant="gan", width=0.5, seed=0)
    opt = torch.optim.Adam(m.discriminator.parameters(), lr=1e-3)
    for step in range(30):
        batch = slice(32 * (step % 8), 32 * (step % 8 + 1))
        loss = m._d_real_fake(m.discriminator(real[batch])[0], m.discriminator(fake[batch])[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        m.discriminator.train()
        _, want, _, logits = m.discriminator(real)  # real images' own batch statistics
        want = torch.cat([want, logits.argmax(1, keepdim=True).float()], 1)
    m.eval()
    before = m.represent(real)
    assert (before[:, :-1] - want[:, :-1]).abs().max() > 0.1  # the mixed statistics
    assert m.calibrate_representation(real, batch_size=256) == 256
    assert not m.discriminator.training
    norms = [x for x in m.discriminator.modules() if isinstance(x, nn.BatchNorm2d | nn.BatchNorm1d)]
    assert norms and all(x.momentum == 0.1 for x in norms)
    after = m.represent(real)
    torch.testing.assert_close(after[:, :-1], want[:, :-1], atol=2e-2, rtol=0)
    # four batches give a cumulative average: close to one batch of all (the batches' means
    # scatter a little, which the average of their variances leaves out)
    m.calibrate_representation((real * 255).to(torch.uint8), batch_size=64)
    torch.testing.assert_close(m.represent(real)[:, :-1], after[:, :-1], atol=5e-2, rtol=0)
    assert m.calibrate_representation(real, max_images=100) == 100
    with pytest.raises(ValueError, match="images must be"):
        m.calibrate_representation(real[:, :, :16])
    assert InfoGAN((1, 32, 32), variant="wgan-gp", width=0.5).calibrate_representation(real) == 0


def test_the_studies_score_infogan_after_calibrating_it():
    """The evaluators' representation (every InfoGAN score) calibrates D/Q on the training
    images first and says on how many."""
    from types import SimpleNamespace

    from dlib.studies.evaluators import Context

    real, _ = squares_and_noise(64)
    m = InfoGAN((1, 32, 32), variant="gan", width=0.5, seed=0)
    train = SimpleNamespace(images=(real * 255).to(torch.uint8))
    ctx = Context(m, 0, 1, None, None, None, train, "dsprites")
    codes = ctx.represent()(real.permute(0, 2, 3, 1).numpy())  # the metrics pass NHWC
    assert ctx.cache["calibrated"] == 64 and codes.shape == (64, 5)
    torch.testing.assert_close(codes, m.represent(real))  # the calibrated, eval-mode code


def test_running_statistics_check_shows_what_calibration_repairs():
    """The chapter's check: eval mode after training on separate batches moves D's verdict on
    real images and Q's code away from the batch-statistics reading; calibration brings both
    back (to the unbiased variance's n/(n−1))."""
    out = running_statistics_check()
    batch, running, calibrated = (out[k] for k in ("batch statistics", "running statistics",
                                                   "calibrated"))
    assert running["code_gap"] > 5 * calibrated["code_gap"] and calibrated["code_gap"] < 0.02
    assert abs(calibrated["d_real"] - batch["d_real"]) < 0.01
    assert abs(running["d_real"] - batch["d_real"]) > 0.05
