"""dlib.experiments.gan against plain loops and direct calls of the generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlib.data
from dlib.experiments import gan
from dlib.methods import InfoGAN


def test_pairwise_diversity_all_pairs_by_loop():
    rs = np.random.RandomState(0)
    x = (rs.uniform(size=(7, 1, 4, 4)) > 0.5).astype(np.float64)
    by_loop = [np.abs(x[i] - x[j]).mean() for i in range(7) for j in range(i + 1, 7)]
    assert gan.pairwise_diversity(x) == pytest.approx(np.mean(by_loop), rel=1e-12)
    # sampled pairs estimate the same number
    assert gan.pairwise_diversity(x, num_pairs=20_000, seed=1) == pytest.approx(
        np.mean(by_loop), abs=0.01)
    # identical images (a collapsed generator) have zero diversity
    assert gan.pairwise_diversity(np.repeat(x[:1], 5, 0)) == 0.0
    assert gan.pairwise_diversity(np.repeat(x[:1], 5, 0), num_pairs=50) == 0.0
    with pytest.raises(ValueError):
        gan.pairwise_diversity(x[:1])
    with pytest.raises(ValueError):
        gan.pairwise_diversity(np.full((3, 2), np.nan))


def test_sampled_pairs_are_never_identical_indices():
    # two very different images: every valid pair has difference 1, a self-pair would give 0
    x = np.stack([np.zeros(4), np.ones(4)])
    assert gan.pairwise_diversity(x, num_pairs=500, seed=3) == 1.0


def test_traversal_latents_change_one_code_each():
    m = InfoGAN((1, 64, 64), variant="gan", num_continuous=3, num_categories=4, num_noise=2,
                seed=0)
    cont, cat = gan.traversal_latents(m, n_values=5, limit=0.8, seed=2)
    assert cont.shape == (3, 5, 3 + 4 + 2) and cat.shape == (4, 9)
    base = cont[0, 0].clone()
    base[0] = cont[1, 0, 0]  # the base value of code 0 is what row 1 keeps there
    values = torch.linspace(-0.8, 0.8, 5)
    for k in range(3):
        for i in range(5):
            expected = base.clone()
            expected[k] = values[i]
            torch.testing.assert_close(cont[k, i], expected)
    for j in range(4):
        expected = base.clone()
        expected[3:7] = F.one_hot(torch.tensor(j), 4).float()
        torch.testing.assert_close(cat[j], expected)
    # the base latent is a draw from the model's prior with that seed
    _, _, z = m.sample_latents(1, torch.Generator().manual_seed(2))
    torch.testing.assert_close(base[7:], z[0, 7:])
    no_cat = InfoGAN((1, 64, 64), variant="gan", num_categories=0, seed=0)
    assert gan.traversal_latents(no_cat, 3)[1] is None
    with pytest.raises(ValueError):
        gan.traversal_latents(m, n_values=1)


def test_code_traversals_are_the_generator_on_those_latents():
    m = InfoGAN((1, 64, 64), variant="wgan-gp", seed=1)
    m.train()
    imgs, cat = gan.code_traversals(m, n_values=4, seed=5)
    assert m.training  # restored
    cont, cat_z = gan.traversal_latents(m, n_values=4, seed=5)
    m.eval()
    with torch.no_grad():
        ref = m.generator(cont.reshape(-1, cont.shape[-1])).view(4, 4, 1, 64, 64)
        torch.testing.assert_close(imgs, ref)
        torch.testing.assert_close(cat, m.generator(cat_z))


def test_fit_seeds_trains_each_seed_like_fit():
    from dlib.train import fit

    data = dlib.data.load("dsprites").to_device("cpu", num=64, seed=0)
    runs = gan.fit_seeds("gan", data, 2, seeds=[3, 4], batch_size=8, log_every=1)
    assert sorted(runs) == [3, 4]
    assert all(r.diverged is None and len(r.history) == 2 for r in runs.values())
    # seed 3 equals a direct fit with seed 3 (same initialisation, same stream)
    ref = InfoGAN((1, 64, 64), variant="gan", seed=3)
    fit(ref, data, 2, batch_size=8, seed=3, log_every=1, show_progress=False)
    for a, b in zip(runs[3].model.state_dict().values(), ref.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(runs[3].model.generator.body[0].weight,
                              runs[4].model.generator.body[0].weight)
    with pytest.raises(ValueError):
        gan.fit_seeds("gan", data, 2, seeds=[])


def test_fit_seeds_records_divergence_instead_of_raising():
    data = dlib.data.load("dsprites").to_device("cpu", num=32, seed=0)
    runs = gan.fit_seeds("gan", data, 2, seeds=[0], batch_size=8, log_every=1,
                         info_weight=float("nan"))
    assert runs[0].diverged is not None and "NaN" in runs[0].diverged
    assert runs[0].history is None
