import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dlib import plots  # noqa: E402
from dlib.methods import BetaVAE  # noqa: E402
from dlib.train import History  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return BetaVAE((1, 64, 64), num_latents=4, seed=0).eval()


def test_image_layouts():
    t = torch.rand(2, 3, 5, 6)
    a = plots.to_numpy_images(t)
    assert a.shape == (2, 5, 6, 3)
    np.testing.assert_allclose(a[1, 2, 3], t[1, :, 2, 3].numpy())
    assert plots.to_numpy_images(np.zeros((4, 5, 6))).shape == (4, 5, 6, 1)
    with pytest.raises(ValueError):
        plots.to_numpy_images(np.zeros((4, 5, 6, 2)))


def test_kl_order():
    assert list(plots.kl_order([0.1, 3.0, 0.0, 3.0])) == [1, 3, 0, 2]


def test_traversal_changes_only_the_chosen_dimension(model):
    x = torch.rand(1, 1, 64, 64)
    values = [-2.0, 0.0, 2.0]
    imgs = plots.traversal_images(model, x, [2, 0], values)
    assert imgs.shape == (2, 3, 1, 64, 64)
    mean = model.encode(x)[0][0]
    for r, d in enumerate([2, 0]):
        for c, v in enumerate(values):
            z = mean.clone()
            z[d] = v
            expected = torch.sigmoid(model.decode(z[None]))[0]
            torch.testing.assert_close(imgs[r, c], expected.detach())
    with pytest.raises(ValueError):
        plots.traversal_images(model, torch.rand(2, 1, 64, 64), [0], values)


def test_posterior_kl_matches_closed_form(model):
    x = torch.rand(10, 1, 64, 64)
    mean, logvar = model.encode(x)
    expected = (0.5 * (mean**2 + logvar.exp() - logvar - 1)).mean(0).detach().numpy()
    got = plots.posterior_kl(model, x, batch_size=3)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_figures_draw(model):
    x = torch.rand(6, 1, 64, 64)
    h = History()
    for s in range(1, 4):
        h.append(s, float(s), {"recon": np.float32(10 - s), "kl": np.float32(s),
                               "kl_dims": np.arange(4, dtype=np.float32) * s})
    figs = [
        plots.image_grid(x, ncols=3, titles=list("abcdef")),
        plots.reconstructions(model, x, n=4),
        plots.latent_traversals(model, x[:1], n_values=5),
        plots.training_curves(h),
        plots.kl_bars(np.array([0.5, 2.0, 0.0, 1.0])).figure,
        plots.kl_dims_curves(h).figure,
    ]
    assert len(figs[0].axes) == 6
    assert len(figs[2].axes) == 4 * 5
    plt.close("all")


def test_oat_trace_draws_each_switched_on_dimension():
    record = {"step": [0, 10, 20], "kl_z1_dims": [[0, 0, 0], [0.5, 0, 0], [1.0, 0.2, 0]],
              "kl_z2": [5.0, 4.0, 3.0], "beta": [1.0, 2.0, 3.0]}
    fig = plots.oat_trace(record, [5, 15, -1])
    assert len(fig.axes[0].lines) == 2 + 2  # two dimensions with KL, two switch-on lines
    with pytest.raises(ValueError, match="kl_z1_dims"):
        plots.oat_trace({**record, "kl_z1_dims": [0.0, 1.0, 2.0]}, [5])
    plt.close("all")


def test_explorer_builds_a_widget():
    m = BetaVAE((1, 64, 64), num_latents=4, seed=0).eval()
    with torch.no_grad():  # make the decoder sensitive to z so a slider move shows in the PNG
        m.decoder.body[0].weight.mul_(50)
    w = plots.traversal_explorer(m, torch.rand(1, 1, 64, 64), max_dims=3)
    sliders = w.children[0].children
    assert len(sliders) == 3
    before = bytes(w.children[1].value)
    sliders[0].value = 2.9 if sliders[0].value < 0 else -2.9
    assert bytes(w.children[1].value) != before  # the image follows the slider
