import math

import numpy as np
import pytest
import torch
from torch import nn

from dlib.data import load
from dlib.methods import VAE, BetaVAE, Method, seeded
from dlib.train import History, TrainingDiverged, fit, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def data():
    return load("dsprites").to_device("cpu", num=256, seed=0)


class _Linear(nn.Module):
    def __init__(self, d_in, d_out, shape=None, split=False):
        super().__init__()
        self.lin, self.shape, self.split = nn.Linear(d_in, d_out), shape, split

    def forward(self, x):
        y = self.lin(x.flatten(1))
        if self.split:
            return y.chunk(2, dim=1)
        return y.view(-1, *self.shape) if self.shape else y


class TinyVAE(VAE):
    """The engine is generic; a linear VAE makes the exact-resume test fast on a CPU."""

    def __init__(self, image_shape, **overrides):
        super().__init__(image_shape, **overrides)
        with seeded(self.config.seed):
            k = self.config.num_latents
            self.encoder = _Linear(int(np.prod(image_shape)), 2 * k, split=True)
            self.decoder = _Linear(k, int(np.prod(image_shape)), image_shape)


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_resume_gives_identical_weights(data, tmp_path):
    """2,000 steps in one go == 1,000 steps, checkpoint, a fresh process state, 1,000 more."""
    kw = dict(num_latents=4, beta=2.0, lr=1e-3, seed=3)
    straight = TinyVAE((1, 64, 64), **kw)
    h_straight = fit(straight, data, 2000, batch_size=16, seed=11, log_every=250)
    ckpt = tmp_path / "run.pt"
    first = TinyVAE((1, 64, 64), **kw)
    fit(first, data, 1000, batch_size=16, seed=11, log_every=250, checkpoint=ckpt)
    resumed = TinyVAE((1, 64, 64), **kw)  # new object: everything must come from the file
    h_resumed = fit(resumed, data, 2000, batch_size=16, seed=11, log_every=250, checkpoint=ckpt)
    assert int(resumed.step) == 2000
    assert torch.equal(_params(straight), _params(resumed))
    assert h_resumed.steps == h_straight.steps == list(range(250, 2001, 250))
    np.testing.assert_array_equal(h_resumed["loss"], h_straight["loss"])
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temporary file


def test_resume_reference_network(data, tmp_path):
    straight = BetaVAE((1, 64, 64), seed=0)
    fit(straight, data, 6, batch_size=4, seed=1, log_every=2)
    part = BetaVAE((1, 64, 64), seed=0)
    fit(part, data, 2, batch_size=4, seed=1, log_every=2, checkpoint=tmp_path / "c.pt")
    rest = BetaVAE((1, 64, 64), seed=0)
    fit(rest, data, 6, batch_size=4, seed=1, log_every=2, checkpoint=tmp_path / "c.pt")
    assert torch.equal(_params(straight), _params(rest))
    # optimiser state came back too (Adam's step count)
    state = rest.optimizers["main"].state_dict()["state"]
    assert all(int(s["step"]) == 6 for s in state.values())


def test_history_holds_interval_means(data):
    m = TinyVAE((1, 64, 64), num_latents=3, seed=0)
    h = fit(m, data, 10, batch_size=8, log_every=5)
    assert h.steps == [5, 10] and h["kl_dims"].shape == (2, 3)
    assert set(h.keys()) >= {"loss", "recon", "kl", "elbo", "kl_dims"}
    # the logged loss is the mean of the five per-step losses of its interval
    m2 = TinyVAE((1, 64, 64), num_latents=3, seed=0)
    per_step = fit(m2, data, 10, batch_size=8, log_every=1)["loss"]
    np.testing.assert_allclose(h["loss"], [per_step[:5].mean(), per_step[5:].mean()], rtol=1e-5)
    assert isinstance(h.last("loss"), float) and "History(2 points" in repr(h)
    with pytest.raises(KeyError, match="no term"):
        h["tc"]


class Exploding(Method):
    """A method whose loss becomes NaN at its 7th step."""

    def __init__(self):
        from dlib.methods.vae import VAEConfig

        super().__init__(VAEConfig())
        self.image_shape = (1, 64, 64)
        self.w = nn.Parameter(torch.ones(()))

    def terms(self, x, generator=None):
        bad = torch.where(self.step >= 6, torch.tensor(math.nan), torch.tensor(0.0))
        return {"loss": self.w * x.mean() + bad}


def test_nan_stops_training_with_the_step(data):
    with pytest.raises(TrainingDiverged, match="at step 7"):
        fit(Exploding(), data, 50, batch_size=4, log_every=10)


def test_bad_arguments(data, tmp_path):
    m = TinyVAE((1, 64, 64), seed=0)
    with pytest.raises(ValueError, match="steps"):
        fit(m, data, -1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit(m, data, 10, log_every=4, checkpoint_every=6)
    with pytest.raises(ValueError, match="expects images"):
        fit(BetaVAE((3, 64, 64)), data, 1)
    with pytest.raises(TypeError, match="cannot train"):
        fit(m, [1, 2, 3], 1)
    fit(m, data, 4, batch_size=4, log_every=2, checkpoint=tmp_path / "a.pt")
    with pytest.raises(ValueError, match="already taken 4 steps"):
        fit(m, data, 2, batch_size=4, log_every=2)
    other = TinyVAE((1, 64, 64), seed=0, beta=5.0)
    with pytest.raises(ValueError, match="differs"):
        fit(other, data, 8, batch_size=4, log_every=2, checkpoint=tmp_path / "a.pt")
    same = TinyVAE((1, 64, 64), seed=0)
    with pytest.raises(ValueError, match="batch_size/seed"):
        fit(same, data, 8, batch_size=8, log_every=2, checkpoint=tmp_path / "a.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt", TinyVAE((1, 64, 64)))
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", TinyVAE((1, 64, 64)))


def test_save_and_load_roundtrip(tmp_path, data):
    m = TinyVAE((1, 64, 64), seed=1)
    h = fit(m, data, 3, batch_size=4, log_every=1)
    g = torch.Generator().manual_seed(5)
    save_checkpoint(tmp_path / "x.pt", m, h, g)
    m2, g2, h2 = TinyVAE((1, 64, 64), seed=1), torch.Generator(), History()
    load_checkpoint(tmp_path / "x.pt", m2, g2, h2)
    assert torch.equal(_params(m), _params(m2)) and int(m2.step) == 3
    assert torch.equal(g.get_state(), g2.get_state()) and h2.steps == h.steps


def test_a_real_vae_learns(data):
    """100 steps of the reference β-VAE: the loss falls and beats the best constant-pixel model."""
    m = BetaVAE((1, 64, 64), beta=1.0, seed=0, lr=1e-3)
    h = fit(m, data, 100, batch_size=32, log_every=25, show_progress=False)
    p = data.images.float().mean()  # fraction of 'on' pixels
    constant = -4096 * (p * torch.log(p) + (1 - p) * torch.log(1 - p))
    assert h["recon"][-1] < 0.5 * h["recon"][0]
    assert h["recon"][-1] < float(constant)
