"""Encode-once scoring (dlib.metrics.encoded) gives exactly the scores of on-demand encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlib.data import load, save_dsprites_npz
from dlib.methods import build
from dlib.metrics import compute
from dlib.metrics.encoded import EncodedData, encode_dataset, score_suite
from dlib.metrics.utils import sampled_representation, torch_representation

SIZES = (1, 3, 3, 4, 6, 6)  # 1,296 images: every factor varies


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = save_dsprites_npz(tmp_path_factory.mktemp("enc") / "t.npz", SIZES, device="cpu")
    data = load("dsprites", path=path, md5=None)
    torch.manual_seed(0)
    model = build("beta_vae", data.image_shape, seed=3).eval()
    # a few steps so that the codes are not those of the initialisation alone
    from dlib.train import fit

    fit(model, data.to_device("cpu"), 20, batch_size=32, seed=0, show_progress=False)
    return data, model.eval()


# every batch the metrics encode has a multiple of 8 images, as at the study's settings (the
# CPU's GEMM kernels round odd-sized batches differently in the last bit; see encoded.py)
SMALL = {
    "beta_vae": {"num_train": 40, "num_eval": 24, "batch_size": 8},
    "factor_vae": {"num_train": 40, "num_eval": 24, "num_variance_estimate": 320,
                   "batch_size": 8, "threshold": 0.0},
    "mig": {"num_train": 304},
    "dci": {"num_train": 208, "num_test": 96},
    "sap": {"num_train": 208, "num_test": 96},
    "modularity_explicitness": {"num_train": 304, "num_test": 160},
    "irs": {"num_train": 304},
    "unsupervised": {"num_train": 304},
}


def test_codes_equal_on_demand_encoding(tiny):
    data, model = tiny
    codes = encode_dataset(model.encode, data, batch_size=432)
    rs = np.random.RandomState(5)
    index = rs.randint(data.num_observations, size=40)
    x = torch.as_tensor(data.sample_observations_from_factors(
        data.index_to_classes(index), np.random.RandomState(0)))
    with torch.no_grad():
        mean, logvar = torch_representation(model.encode)(x.numpy())
    np.testing.assert_array_equal(codes.mean[index], mean.numpy())
    np.testing.assert_array_equal(codes.logvar[index], logvar.numpy())


def test_every_metric_scores_exactly_as_on_demand(tiny):
    data, model = tiny
    enc = EncodedData(data, encode_dataset(model.encode, data, batch_size=648))
    for seed in (0, 1):
        on_demand = {
            "mean": torch_representation(model.represent),
            "sampled": sampled_representation(torch_representation(model.encode), seed=seed),
        }
        lookup = {"mean": enc.mean, "sampled": enc.sampled(seed=seed)}
        a = score_suite(data, on_demand, seed, SMALL)
        b = score_suite(enc, lookup, seed, SMALL)
        a.pop("seconds"), b.pop("seconds")
        assert a.keys() == b.keys()
        for name in a:
            assert a[name] == b[name], name  # bit-for-bit the same dicts


def test_sampled_lookup_draws_noise_like_on_demand(tiny):
    data, model = tiny
    enc = EncodedData(data, encode_dataset(model.encode, data, batch_size=648))
    a = compute("mig", data, sampled_representation(torch_representation(model.encode), 7),
                np.random.RandomState(2), num_train=208)
    b = compute("mig", enc, enc.sampled(7), np.random.RandomState(2), num_train=208)
    c = compute("mig", enc, enc.sampled(8), np.random.RandomState(2), num_train=208)
    assert a == b
    assert a != c  # the noise matters, so the equality above is not vacuous


def test_random_stream_advances_as_with_images(tiny):
    data, _ = tiny
    enc = EncodedData(data, encode_dataset(lambda x: (x.flatten(1)[:, :3],) * 2, data))
    r1, r2 = np.random.RandomState(4), np.random.RandomState(4)
    f1, x1 = data.sample(50, r1)
    f2, idx = enc.sample(50, r2)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(data.index_to_classes(idx), f1)
    assert r1.randint(1 << 30) == r2.randint(1 << 30)


@pytest.mark.parametrize("name", ["noisy_dsprites", "color_dsprites", "scream_dsprites"])
def test_random_observations_are_refused(name):
    data = load(name)
    codes = np.zeros((data.num_observations, 1), np.float32)
    from dlib.metrics.encoded import EncodedCodes

    with pytest.raises(ValueError, match="random given"):
        EncodedData(data, EncodedCodes(codes, codes))
    with pytest.raises(ValueError, match="random given"):
        encode_dataset(lambda x: (x, x), data)


def test_representations_refuse_images(tiny):
    data, model = tiny
    enc = EncodedData(data, encode_dataset(model.encode, data, batch_size=648))
    with pytest.raises(TypeError, match="indices"):
        enc.mean(np.zeros((2, 64, 64, 1), np.float32))
    with pytest.raises(ValueError, match="rows"):
        from dlib.metrics.encoded import EncodedCodes

        EncodedData(data, EncodedCodes(enc.codes.mean[:5], enc.codes.logvar[:5]))
