import numpy as np
import pytest

from dlib.metrics.gallery import DESCRIPTIONS, GALLERY, as_representation, make_gallery
from dlib.metrics.mig import mig
from dlib.metrics.toy import DSPRITES_SIZES

SIZES = (3, 6, 8, 10)


@pytest.fixture(scope="module")
def classes():
    rs = np.random.RandomState(0)
    return np.stack([rs.randint(s, size=4000) for s in SIZES], 1)


def test_entries_and_shapes(classes):
    g = make_gallery(SIZES)
    assert tuple(g) == GALLERY and set(DESCRIPTIONS) == set(GALLERY)
    dims = {name: fn(classes).shape[1] for name, fn in g.items()}
    assert dims["identity"] == 4 and dims["one factor missing"] == 3
    assert dims["duplicated"] == 5 and dims["dead dimension"] == 5


def test_constructions(classes):
    g = make_gallery(SIZES, seed=3)
    ident = g["identity"](classes)
    assert ident.min() == 0 and ident.max() == 1
    perm = g["permuted"](classes)
    assert not np.array_equal(perm, ident)
    assert sorted(map(tuple, perm.T)) == sorted(map(tuple, ident.T))
    # rescaled: every code an affine function of exactly its own factor
    res = g["rescaled"](classes)
    for j in range(4):
        a, b = np.polyfit(ident[:, j], res[:, j], 1)
        np.testing.assert_allclose(a * ident[:, j] + b, res[:, j], atol=1e-9)
    # warped codes are strictly monotone in their factor
    warped = g["monotone-warped"](classes)
    for col, j in zip(range(4), [0, 2, 1, 3], strict=True):
        order = np.argsort(classes[:, j], kind="stable")
        assert np.all(np.diff(warped[order, col]) >= 0)
    # rotated: an orthogonal mix with no zero entry; distances are preserved
    rot = g["rotated"](classes)
    corr = np.abs(np.corrcoef(np.concatenate([rot, classes], 1).T)[:4, 4:])
    assert corr.min() > 0.02
    part = g["partly entangled"](classes)
    # both are rotations of the same standardised factors: row norms agree
    np.testing.assert_allclose(np.linalg.norm(rot, axis=1), np.linalg.norm(part, axis=1))
    np.testing.assert_allclose(np.abs(np.corrcoef(part[:, 0], classes[:, 0])[0, 1]), 1.0)
    assert np.all(g["dead dimension"](classes)[:, -1] == 0)


def test_mig_orders_the_gallery(classes):
    """Sanity: MIG ranks identity and its symmetries above entangled codes above noise."""
    g = make_gallery(SIZES)
    score = {name: mig(fn(classes), classes)["discrete_mig"]
             for name, fn in g.items() if name != "dead dimension"}
    for good in ("identity", "permuted", "rescaled", "monotone-warped"):
        assert score[good] > 0.9
    assert score["rotated"] < 0.3 < score["partly entangled"] < score["identity"]
    assert score["noise"] < 0.02 and score["duplicated"] < score["identity"]


def test_as_representation_reads_factor_observations():
    from dlib.metrics.toy import FactorsAsObservations

    data = FactorsAsObservations(DSPRITES_SIZES)
    rs = np.random.RandomState(0)
    y, x = data.sample(10, rs)
    codes = as_representation(make_gallery(DSPRITES_SIZES)["identity"])(x)
    np.testing.assert_allclose(codes, y / (np.asarray(DSPRITES_SIZES) - 1))


def test_score_gallery_table():
    from dlib.metrics import compute_factor_vae, compute_mig
    from dlib.metrics.gallery import score_gallery

    calls = []

    def mig_fn(data, represent, rs, n):
        calls.append((type(data).__name__, n, rs.get_state()[1][0]))
        return compute_mig(data, represent, rs, num_train=n)["discrete_mig"]

    fns = {
        "MIG": mig_fn,
        "FactorVAE": lambda d, r, rs, n: {
            "FactorVAE": compute_factor_vae(d, r, rs, num_train=n // 10, num_eval=n // 20,
                                            num_variance_estimate=n)["eval_accuracy"],
            "dims": compute_factor_vae(d, r, rs, num_train=2, num_eval=2,
                                       num_variance_estimate=n)["num_active_dims"]},
    }
    table = score_gallery(fns, SIZES, 2000, seed=1)
    assert tuple(table) == GALLERY
    assert all(list(row) == ["MIG", "FactorVAE", "dims"] for row in table.values())
    # each call gets the dataset, num_points and a fresh RandomState(seed)
    fresh = np.random.RandomState(1).get_state()[1][0]
    assert calls == [("FactorsAsObservations", 2000, fresh)] * len(GALLERY)
    assert table["identity"]["MIG"] > 0.9 and table["noise"]["MIG"] < 0.05
    assert table["identity"]["FactorVAE"] == 1.0 and table["dead dimension"]["dims"] == 4
    # deterministic, and the noise entry does not depend on what ran before it
    again = score_gallery({"MIG": fns["MIG"]}, SIZES, 2000, seed=1)
    assert again["noise"]["MIG"] == table["noise"]["MIG"]
    with pytest.raises(ValueError):
        score_gallery(fns, SIZES, 0)
    with pytest.raises(ValueError):
        score_gallery({}, SIZES, 10)
