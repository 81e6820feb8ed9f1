"""The image-translation metric (seed 002, Algorithm 1) against independent computations.

The toy generator renders factor classes as concatenated one-hot blocks. A *disentangled* code
is the standardised factors; an *entangled* one rotates them. Decoding rounds back to classes,
so the encoder/decoder pair is exact on the grid.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlib.metrics import METRICS, compute
from dlib.metrics.toy import FactorsAsObservations, flat, full_grid
from dlib.metrics.translation import (
    TranslationNet,
    held_out_translation_loss,
    set_feature,
    train_translation,
    translation,
    translation_loss,
    translation_pairs,
)

SIZES = (5, 6)
GRID = full_grid(SIZES).astype(np.float32)
MU, SD = GRID.mean(0), GRID.std(0)


def rotation(angle):
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                    dtype=np.float32)


def toy(angle, perm=(0, 1)):
    """Codes of the full grid and the exact decoder for a code rotated by ``angle`` (and its
    dimensions permuted by ``perm``)."""
    r = rotation(angle)
    p = list(perm)
    codes = (((GRID - MU) / SD) @ r)[:, p]
    inv = np.argsort(p)
    rt, mu, sd = torch.tensor(r), torch.tensor(MU), torch.tensor(SD)

    def decode(z):
        g = (z[:, inv] @ rt.T) * sd + mu
        cls = [g[:, j].round().clamp(0, SIZES[j] - 1).long() for j in range(len(SIZES))]
        onehot = torch.cat([F.one_hot(c, s).float() for c, s in zip(cls, SIZES, strict=True)], 1)
        return onehot.reshape(len(z), 1, 1, -1)

    return codes, decode


def conditional_entropy(u, v):
    """H(V | U) in nats of the empirical joint of rows of u and v (brute force counting)."""
    keys_u = [tuple(r) for r in u.reshape(len(u), -1).tolist()]
    keys_uv = [k + tuple(r) for k, r in zip(keys_u, v.reshape(len(v), -1).tolist(), strict=True)]
    n = len(u)
    h = 0.0
    for kuv in set(keys_uv):
        n_uv = keys_uv.count(kuv)
        n_u = keys_u.count(kuv[: len(keys_u[0])])
        h -= n_uv / n * math.log(n_uv / n_u)
    return h


# ---- the intervention on codes ------------------------------------------------------------------
def test_set_feature_matches_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 6, generator=g)
    k = torch.randint(0, 3, (7,), generator=g)
    value = torch.randn(7, 2, generator=g)
    got = set_feature(z, k, value, feature_dim=2)
    ref = z.clone()
    for i in range(7):
        for d in range(2):
            ref[i, 2 * int(k[i]) + d] = value[i, d]
    assert torch.equal(got, ref)
    one = set_feature(z, 1, torch.tensor([5.0, 6.0]), feature_dim=2)
    assert torch.equal(one[:, 2:4], torch.tensor([[5.0, 6.0]] * 7))
    assert torch.equal(one[:, [0, 1, 4, 5]], z[:, [0, 1, 4, 5]])


def test_set_feature_errors():
    z = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="multiple"):
        set_feature(z, 0, torch.zeros(3), feature_dim=3)
    with pytest.raises(ValueError, match="out of range"):
        set_feature(z, 4, torch.zeros(1))
    with pytest.raises(ValueError, match="value"):
        set_feature(z, 0, torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        set_feature(torch.zeros(3), 0, torch.zeros(1))


# ---- Algorithm 1's inner loop -------------------------------------------------------------------
def test_inner_loop_is_plain_gradient_descent():
    """train_translation equals torch.optim.SGD on an ordinary copy of M."""
    torch.manual_seed(0)
    net = TranslationNet((1, 1, 6), "affine")
    g = torch.Generator().manual_seed(1)
    u = torch.rand(9, 1, 1, 6, generator=g)
    v = (torch.rand(9, 1, 1, 6, generator=g) > 0.5).float()
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    got = train_translation(net, start, u, v, steps=7, lr=0.3)
    ref = TranslationNet((1, 1, 6), "affine")
    ref.load_state_dict(start)
    opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    for _ in range(7):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(ref(u), v).backward()
        opt.step()
    for n, p in ref.named_parameters():
        torch.testing.assert_close(got[n], p.detach())
    # M starts as the copy translation: logit(clip(u))
    torch.testing.assert_close(net(u), torch.logit(u.clamp(0.01, 0.99)))


def test_held_out_loss_is_summed_cross_entropy_and_unrolled_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = TranslationNet((1, 1, 3), "affine").double()
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    g = torch.Generator().manual_seed(2)
    u = torch.rand(4, 1, 1, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.rand(4, 1, 1, 3, generator=g, dtype=torch.float64)
    ut = torch.rand(5, 1, 1, 3, generator=g, dtype=torch.float64)
    vt = torch.rand(5, 1, 1, 3, generator=g, dtype=torch.float64)
    # with zero steps the held-out loss is the copy prior's summed cross-entropy, by hand
    p = np.clip(ut.numpy(), 0.01, 0.99)
    hand = -(vt.numpy() * np.log(p) + (1 - vt.numpy()) * np.log(1 - p)).reshape(5, -1).sum(1)
    loss0 = held_out_translation_loss(net, start, u, v, ut, vt, steps=0, lr=1.0)
    assert float(loss0.detach()) == pytest.approx(hand.mean(), rel=1e-9)

    def f(uu, unroll=True):
        return held_out_translation_loss(net, start, uu, v, ut, vt, steps=3, lr=0.5,
                                         unroll=unroll)

    (grad,) = torch.autograd.grad(f(u), u)
    eps = 1e-6
    fd = torch.zeros_like(u)
    for idx in np.ndindex(*u.shape):
        du = torch.zeros_like(u)
        du[idx] = eps
        fd[idx] = (f(u.detach() + du) - f(u.detach() - du)) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-8)
    assert grad.abs().max() > 1e-4
    # first-order: the training pairs are constants
    assert torch.autograd.grad(f(u, unroll=False), u, allow_unused=True)[0] is None


# ---- the metric on the toy generator ------------------------------------------------------------
def test_disentangled_toy_translates_perfectly_and_entangled_hits_its_entropy_floor():
    codes_d, dec_d = toy(0.0)
    codes_e, dec_e = toy(math.pi / 4)
    train_d, train_e = np.tile(codes_d, (3, 1)), np.tile(codes_e, (3, 1))
    # disentangled: feature 0 between classes 1 and 3 of factor 0
    a, b = codes_d[6 * 1, 0], codes_d[6 * 3, 0]
    dis = translation_loss(dec_d, train_d, codes_d, 0, a, b, steps=300, lr=10.0)
    assert dis < 0.02  # of a copy prior that starts at ~0.1 nats per pixel
    with torch.no_grad():
        u, v = translation_pairs(dec_d, torch.tensor(codes_d), 0, torch.tensor([a]),
                                 torch.tensor([b]))
    assert conditional_entropy(u.numpy(), v.numpy()) == 0.0  # v is a function of u
    # entangled: the held-out loss can never beat H(V|U) of the test grid (exact, by counting)
    a, b = codes_e[0, 0], codes_e[-1, 0]
    with torch.no_grad():
        u, v = translation_pairs(dec_e, torch.tensor(codes_e), 0, torch.tensor([a]),
                                 torch.tensor([b]))
    floor = conditional_entropy(u.numpy(), v.numpy())
    assert floor > 0.3
    for lr in (1.0, 10.0):
        ent = translation_loss(dec_e, train_e, codes_e, 0, a, b, steps=300, lr=lr)
        assert ent >= floor - 1e-6
        assert ent > 20 * dis
    # the averaged metric orders the two codes the same way
    r_d = translation(dec_d, train_d, codes_d, 0, num_pairs=2, steps=300, lr=10.0)
    r_e = translation(dec_e, train_e, codes_e, 0, num_pairs=2, steps=300, lr=10.0)
    assert r_d["translation_loss"] < 0.05 < 0.3 < r_e["translation_loss"]
    assert r_d["num_dead_features"] == 0


def test_invariant_to_permuting_code_dimensions():
    codes, dec = toy(0.4)
    codes_p, dec_p = toy(0.4, perm=(1, 0))
    r = translation(dec, codes, codes, 3, num_pairs=2, steps=50, lr=2.0)
    rp = translation(dec_p, codes_p, codes_p, 3, num_pairs=2, steps=50, lr=2.0)
    assert rp["translation_loss"] == pytest.approx(r["translation_loss"], rel=1e-5)
    np.testing.assert_allclose(rp["translation_loss_per_feature"],
                               r["translation_loss_per_feature"][::-1], rtol=1e-5)


def test_dead_feature_is_counted_and_translates_trivially():
    codes, dec = toy(0.0)
    dead = np.concatenate([codes, np.zeros((len(codes), 1), np.float32)], 1)

    def dec3(z):
        return dec(z[:, :2])

    r = translation(dec3, dead, dead, 0, steps=0, lr=1.0)
    assert r["num_dead_features"] == 1
    # a feature that varies but that the decoder ignores is just as dead
    noisy = dead.copy()
    noisy[:, 2] = np.random.RandomState(0).randn(len(noisy))
    r2 = translation(dec3, noisy, noisy, 0, steps=0, lr=1.0)
    assert r2["num_dead_features"] == 1 and r2["image_change_per_feature"][2] == 0.0
    # mean |u − v| by hand for feature 0: a and b are different classes of factor 0, so each
    # pair differs in exactly two of the 11 one-hot pixels
    assert r2["image_change_per_feature"][0] == pytest.approx(2 / 11)
    # u = v for the dead feature: the copy prior's loss, −log 0.99 per pixel, by hand
    assert r["translation_loss_per_feature"][2] == pytest.approx(-11 * math.log(0.99), rel=1e-5)


def test_bad_input_gives_clear_errors():
    codes, dec = toy(0.0)
    with pytest.raises(ValueError, match="NaN"):
        translation(dec, np.full_like(codes, np.nan), codes)
    with pytest.raises(ValueError, match="same width"):
        translation(dec, codes, codes[:, :1])
    with pytest.raises(ValueError, match="multiple"):
        translation(dec, codes, codes, feature_dim=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        translation(lambda z: 2 * dec(z), codes, codes, steps=1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        translation(lambda z: dec(z).flatten(1), codes, codes, steps=1)
    with pytest.raises(ValueError, match="num_pairs"):
        translation(dec, codes, codes, num_pairs=0)
    with pytest.raises(ValueError, match="kind"):
        TranslationNet((1, 8, 8), "mlp")
    with pytest.raises(ValueError, match="divisible"):
        TranslationNet((1, 10, 10), "conv")
    with pytest.raises(ValueError, match="decode"):
        compute("translation", FactorsAsObservations((3, 4)), flat, 0)


def test_harness_registration_and_consistency():
    assert "translation" in METRICS
    data = FactorsAsObservations((3, 4))

    def decode(z):  # the identity generator of the toy data, pixel values scaled into [0, 1]
        return (z / 3.0).clamp(0, 1).reshape(len(z), 1, 1, -1)

    def represent(x):
        return flat(x)

    got = compute("translation", data, represent, 5, decode=decode, num_train=40, num_test=30,
                  steps=5, lr=1.0)
    rs = np.random.RandomState(5)
    from dlib.metrics.utils import sample_codes_factors

    z_tr, _ = sample_codes_factors(data, represent, 40, rs, 16)
    z_te, _ = sample_codes_factors(data, represent, 30, rs, 16)
    ref = translation(decode, z_tr, z_te, rs, steps=5, lr=1.0)
    assert got == ref
    assert set(got) == {"translation_loss", "translation_loss_per_feature",
                        "image_change_per_feature", "num_dead_features"}


def test_library_toy_equals_the_test_toy():
    from dlib.metrics.translation import onehot_toy

    for angle in (0.0, 0.7):
        codes, dec = onehot_toy(SIZES, angle)
        ref_codes, ref_dec = toy(angle)
        np.testing.assert_allclose(codes, ref_codes, atol=1e-6)
        z = torch.tensor(codes)
        assert torch.equal(dec(z), ref_dec(z))
        # exact pair: decoding the codes renders the one-hot observations of the grid
        want = np.concatenate([np.eye(s)[GRID[:, j].astype(int)] for j, s in enumerate(SIZES)],
                              1)
        np.testing.assert_array_equal(dec(z).reshape(len(z), -1).numpy(), want)
    with pytest.raises(ValueError):
        onehot_toy((5,))
