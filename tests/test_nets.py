import pytest
import torch
from torch import nn

from dlib.nets import Decoder, Discriminator, Encoder, num_parameters


@pytest.mark.parametrize("arch", ["conv", "conv4", "fc"])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(arch, channels):
    enc = Encoder((channels, 64, 64), 7, arch)
    dec = Decoder((channels, 64, 64), 7, arch)
    x = torch.rand(5, channels, 64, 64)
    mean, logvar = enc(x)
    assert mean.shape == logvar.shape == (5, 7)
    assert dec(mean).shape == (5, channels, 64, 64)


def test_study_encoder_uses_two_2x2_kernels():
    kernels = [m.kernel_size for m in Encoder((1, 64, 64)).modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [(4, 4), (4, 4), (2, 2), (2, 2)]
    kernels4 = [m.kernel_size for m in Encoder((1, 64, 64), arch="conv4").modules()
                if isinstance(m, nn.Conv2d)]
    assert kernels4 == [(4, 4)] * 4


def test_parameter_count_by_hand():
    # encoder: convs 1→32 (4x4), 32→32 (4x4), 32→64 (2x2), 64→64 (2x2),
    # dense 1024→256, two heads 256→10
    enc = (1 * 32 * 16 + 32) + (32 * 32 * 16 + 32) + (32 * 64 * 4 + 64) + (64 * 64 * 4 + 64) \
        + (1024 * 256 + 256) + 2 * (256 * 10 + 10)
    # decoder: dense 10→256, 256→1024, deconvs 64→64, 64→32, 32→32, 32→1 (all 4x4)
    dec = (10 * 256 + 256) + (256 * 1024 + 1024) + (64 * 64 * 16 + 64) + (64 * 32 * 16 + 32) \
        + (32 * 32 * 16 + 32) + (32 * 1 * 16 + 1)
    assert num_parameters(Encoder((1, 64, 64))) == enc
    assert num_parameters(Decoder((1, 64, 64))) == dec


def test_tf_initialisation_zero_biases():
    enc = Encoder((1, 64, 64), init="tf")
    assert all(torch.all(m.bias == 0) for m in enc.modules() if isinstance(m, nn.Linear))
    enc_t = Encoder((1, 64, 64), init="torch")
    assert any(torch.any(m.bias != 0) for m in enc_t.modules() if isinstance(m, nn.Linear))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="64×64 or 32×32"):
        Encoder((1, 48, 48))  # 32×32 is the CPU scale's variant (tests/test_cpu_scale.py)
    with pytest.raises(ValueError, match="unknown architecture"):
        Encoder((1, 64, 64), arch="resnet")
    with pytest.raises(ValueError, match="encoder expects"):
        Encoder((1, 64, 64))(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="decoder expects"):
        Decoder((1, 64, 64), 10)(torch.rand(2, 9))
    with pytest.raises(ValueError):
        Encoder((1, 64, 64), init="glorot")


def test_one_logit_discriminator_is_the_plain_mlp_with_torch_init():
    """logits=1, init="torch": the same layers, drawn in the same order, as a hand-built MLP."""
    torch.manual_seed(3)
    d = Discriminator(4, hidden=16, depth=2, init="torch", logits=1)
    torch.manual_seed(3)
    ref = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.LeakyReLU(0.2),
                        nn.Linear(16, 1))
    z = torch.randn(5, 4)
    assert torch.equal(d(z), ref(z))
    assert Discriminator(4, 8, 1)(z).shape == (5, 2)
    with pytest.raises(ValueError, match="logits must be 1 or 2"):
        Discriminator(4, logits=3)
    with pytest.raises(ValueError, match="expects"):
        d(torch.randn(5, 3))

