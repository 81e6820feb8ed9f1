"""DEFT (seed 004): multi-group encoder, per-group learning rates, staged pressures, the anneal
test and max-m NMI tracking — each checked against an independent computation."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlib.data import load
from dlib.experiments.deft import (
    NMIProbe,
    anneal_test,
    factor_subset,
    factor_thresholds,
    track_nmi,
)
from dlib.methods import DEFT, DEFT_PRESETS, DEFTConfig, deft_config
from dlib.methods.deft import (
    AnnealTest,
    GroupEncoder,
    MultiGroupEncoder,
    anneal_beta,
    information_threshold,
    split_latents,
    stage_steps_from_epochs,
)
from dlib.metrics.mig import mig
from dlib.metrics.nmi import max_m_nmi
from dlib.nets import Encoder, num_parameters
from dlib.scales import SCALES
from dlib.studies.trainable import build_methods
from dlib.train import fit


def _x(n=6, seed=0, c=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, 64, 64, generator=g) > 0.85).float()


@pytest.fixture(scope="module")
def dsprites_small():
    return load("dsprites").to_device("cpu", num=256, seed=0)


# ---- Table 1 and the schedule --------------------------------------------------------------------
def test_presets_are_table_1():
    table = {  # dataset: (groups, epochs, pressures); gamma is always 0.1
        "dsprites": (4, (2, 2, 4, 15), (70, 30, 12, 1)),
        "color_dsprites": (4, (2, 2, 4, 15), (160, 105, 30, 1)),
        "scream_dsprites": (2, (4, 15), (140, 1)),
        "smallnorb": (4, (20, 40, 40, 400), (30, 5, 3, 1)),
    }
    assert set(DEFT_PRESETS) == set(table)
    for name, (groups, epochs, pressures) in table.items():
        p = DEFT_PRESETS[name]
        assert p["groups"] == groups and tuple(p["epochs"]) == epochs
        assert tuple(p["pressures"]) == pressures and p["gamma"] == 0.1
    cfg = deft_config("dsprites", batch_size=64)
    assert cfg.stage_steps == (23_040, 23_040, 46_080, 172_800)  # 737,280 / 64 = 11,520 / epoch
    assert cfg == DEFTConfig()  # the defaults are the dSprites row at batch 64
    assert deft_config("dsprites", batch_size=256).stage_steps == (5_760, 5_760, 11_520, 43_200)
    assert deft_config("scream_dsprites", batch_size=64, seed=3).seed == 3
    assert stage_steps_from_epochs((1, 0.5), 1000, 10) == (100, 50)
    with pytest.raises(ValueError, match="unknown DEFT preset"):
        deft_config("shapes3d")


@pytest.mark.parametrize("name", sorted(DEFT_PRESETS))
def test_pressures_follow_table_1_at_every_stage_boundary(name):
    cfg = deft_config(name, batch_size=64)
    m = DEFT((3 if "color" in name or "scream" in name else 1, 64, 64), cfg)
    starts = np.concatenate([[0], np.cumsum(cfg.stage_steps)[:-1]])
    pressures = DEFT_PRESETS[name]["pressures"]
    for j, s in enumerate(starts):
        assert float(m.pressure_at(int(s))) == pressures[j]  # first step of stage j
        if j:
            assert float(m.pressure_at(int(s) - 1)) == pressures[j - 1]  # last of stage j − 1
    assert float(m.pressure_at(10**9)) == pressures[-1]  # the last stage lasts for ever


def test_pressure_scale_multiplies_the_pressures_above_one_but_keeps_the_elbo():
    from dlib.methods.deft import effective_pressures

    assert effective_pressures((70.0, 30.0, 12.0, 1.0), 0.25) == (17.5, 7.5, 3.0, 1.0)
    assert effective_pressures((160.0, 105.0, 30.0, 1.0), 0.25) == (40.0, 26.25, 7.5, 1.0)
    assert effective_pressures((2.0, 1.0, 0.5), 0.25) == (1.0, 1.0, 0.5)  # never below 1
    assert effective_pressures((70.0, 1.0), 1.0) == (70.0, 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="pressure_scale"):
            effective_pressures((70.0,), bad)
    m = DEFT((1, 32, 32), stage_steps=(2, 2, 2, 2), pressure_scale=0.25, width=0.5)
    assert [float(m.pressure_at(t)) for t in range(0, 10, 2)] == [17.5, 7.5, 3.0, 1.0, 1.0]
    x = torch.rand(4, 1, 32, 32)
    out = m.terms(x, torch.Generator().manual_seed(0))
    assert float(out["beta"]) == 17.5
    with pytest.raises(ValueError, match="pressure_scale"):
        DEFT((1, 32, 32), pressure_scale=0.0)


def test_stage_and_pressure_by_plain_loop():
    m = DEFT((1, 64, 64), stage_steps=(5, 3, 4, 2)).double()
    x = _x(4).double()
    expected_stage = []
    for j, n in enumerate((5, 3, 4, 2)):
        expected_stage += [j] * n
    for t in range(20):
        stage = expected_stage[t] if t < len(expected_stage) else 3
        assert m.stage_of(t) == stage
        m.step.fill_(t)
        out = m.terms(x, torch.Generator().manual_seed(0))
        assert float(out["beta"]) == (70.0, 30.0, 12.0, 1.0)[stage]
        assert int(out["stage"]) == stage
        torch.testing.assert_close(out["loss"], out["recon"] + out["beta"] * out["kl"])


def test_stage_switching_and_learning_rates_at_the_right_step():
    m = DEFT((1, 64, 64), stage_steps=(3, 2, 2, 1), lr=1e-3, gamma=0.1, seed=0)
    x, g = _x(4), torch.Generator().manual_seed(0)
    for t in range(10):
        m.train_step(x, g)
        stage = m.stage_of(t)  # the step just taken used this stage
        lrs = {pg["name"]: pg["lr"] for pg in m.optimizers["main"].param_groups}
        want = {f"encoder{k}": (1e-3 if k == min(stage, 3) else 1e-4) for k in range(4)}
        assert lrs == pytest.approx({"decoder": 1e-3, **want})
        assert int(m.stage) == stage
    assert [m.stage_of(t) for t in range(10)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_stage_switching_through_the_engine(dsprites_small):
    m = DEFT((1, 64, 64), stage_steps=(3, 2, 2, 1), seed=0)
    h = fit(m, dsprites_small, 10, batch_size=8, log_every=1, show_progress=False)
    assert h["stage"].tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert h["beta"].tolist() == [70, 70, 70, 30, 30, 12, 12, 1, 1, 1]
    assert h["kl_groups"].shape == (10, 4)
    np.testing.assert_allclose(h["kl_groups"].sum(1), h["kl"], rtol=1e-5)


# ---- the multi-group encoder ---------------------------------------------------------------------
def test_split_latents_and_bad_configs():
    assert split_latents(10, 4) == (3, 3, 2, 2)
    assert split_latents(10, 2) == (5, 5)
    assert DEFT((1, 64, 64)).group_sizes == (3, 3, 2, 2)
    assert DEFT((1, 64, 64), groups=2, group_sizes=(4, 6), pressures=(9.0, 1.0),
                stage_steps=(2, 2)).group_sizes == (4, 6)
    with pytest.raises(ValueError, match="split"):
        split_latents(3, 4)
    with pytest.raises(ValueError, match="group_sizes"):
        DEFT((1, 64, 64), group_sizes=(5, 5))
    with pytest.raises(ValueError, match="one pressure per stage"):
        DEFT((1, 64, 64), pressures=(70.0, 1.0))
    with pytest.raises(ValueError, match="gamma"):
        DEFT((1, 64, 64), gamma=1.5)
    with pytest.raises(ValueError, match="stage lengths"):
        DEFT((1, 64, 64), stage_steps=(1, 0, 1, 1))
    with pytest.raises(TypeError, match="unknown option"):
        DEFT((1, 64, 64), betas=(1.0,))


def test_one_group_is_the_reference_encoder():
    for arch in ("conv", "conv4"):
        ref = Encoder((1, 64, 64), 10, arch)
        grp = GroupEncoder((1, 64, 64), 10, arch, divisor=1)
        grp.load_state_dict(ref.state_dict())  # same layers, same names, same shapes
        x = _x(5)
        for a, b in zip(grp(x), ref(x), strict=True):
            torch.testing.assert_close(a, b)


def _block_diag_forward(enc: MultiGroupEncoder, x: torch.Tensor) -> tuple:
    """The same encoder written as ONE wide network whose weights are block-diagonal across
    groups (the first conv sees the shared input): the single-encoder layout of the paper's
    Fig. 4 with its channels divided among the groups."""
    groups = list(enc.groups)
    convs = [[m for m in g.body if isinstance(m, torch.nn.Conv2d)] for g in groups]
    dense = [[m for m in g.body if isinstance(m, torch.nn.Linear)][0] for g in groups]
    h = x
    for layer in range(len(convs[0])):  # 4 convs at 64×64, 3 at 32×32
        layers = [c[layer] for c in convs]
        if layer == 0:
            w = torch.cat([c.weight for c in layers])
        else:
            out_ch = sum(c.out_channels for c in layers)
            in_ch = sum(c.in_channels for c in layers)
            w = torch.zeros(out_ch, in_ch, *layers[0].kernel_size)
            o = i = 0
            for c in layers:
                w[o:o + c.out_channels, i:i + c.in_channels] = c.weight
                o, i = o + c.out_channels, i + c.in_channels
        b = torch.cat([c.bias for c in layers])
        h = F.relu(F.conv2d(h, w, b, stride=2, padding=layers[0].padding))
    # flatten each group's channel block, as each group flattens its own output
    sizes = [c[-1].out_channels for c in convs]
    h = torch.cat([blk.flatten(1) for blk in h.split(sizes, 1)], 1)
    h = F.relu(h @ torch.block_diag(*[d.weight for d in dense]).T
               + torch.cat([d.bias for d in dense]))
    mean = h @ torch.block_diag(*[g.mean.weight for g in groups]).T + torch.cat(
        [g.mean.bias for g in groups])
    logvar = h @ torch.block_diag(*[g.logvar.weight for g in groups]).T + torch.cat(
        [g.logvar.bias for g in groups])
    return mean, logvar


def test_concatenated_groups_equal_one_block_diagonal_encoder():
    for arch in ("conv", "conv4"):
        enc = MultiGroupEncoder((1, 64, 64), (3, 3, 2, 2), arch)
        widths = [m.out_channels for m in enc.groups[0].body
                  if isinstance(m, torch.nn.Conv2d)]
        assert widths == [8, 8, 16, 16]  # channels of the reference encoder divided by 4
        x = _x(4)
        with torch.no_grad():
            got = enc(x)
            want = _block_diag_forward(enc, x)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    m = DEFT((1, 64, 64), seed=0)
    mean, logvar = m.encode(x)
    parts = [g(x) for g in m.encoder.groups]
    torch.testing.assert_close(mean[:, 3:6], parts[1][0])
    torch.testing.assert_close(logvar[:, 8:], parts[3][1])


# ---- per-group learning rates with Adam: the key tests ---------------------------------------
def _adam_by_hand(grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Parameter change after Adam steps on a sequence of gradients (plain numpy, fresh state)."""
    m = np.zeros_like(grads[0])
    v = np.zeros_like(grads[0])
    delta = np.zeros_like(grads[0])
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        delta -= lr[t - 1] * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return delta


def test_inactive_groups_step_with_gamma_lr_like_a_hand_written_adam():
    """Record the gradients DEFT's optimiser sees; its parameter changes must equal a plain
    Adam with lr for the active group and γ·lr for the others — across a stage change."""
    lr, gamma = 1e-3, 0.1
    m = DEFT((1, 64, 64), stage_steps=(2, 2, 1, 1), lr=lr, gamma=gamma, seed=0).double()
    m.setup_optimizers()
    opt = m.optimizers["main"]
    grads: list[dict[str, np.ndarray]] = []
    original = opt.step

    def spy(*a, **k):
        grads.append({n: p.grad.detach().numpy().copy() for n, p in m.named_parameters()})
        return original(*a, **k)

    opt.step = spy
    start = {n: p.detach().numpy().copy() for n, p in m.named_parameters()}
    g, x = torch.Generator().manual_seed(0), _x(4).double()
    for _ in range(4):  # stages 0, 0, 1, 1: group 1 turns active at the third step
        m.train_step(x, g)
    for name, p in m.named_parameters():
        if name.startswith("encoder.groups."):
            k = int(name.split(".")[2])
            lrs = [lr if k == m.active_group(m.stage_of(t)) else gamma * lr for t in range(4)]
        else:
            lrs = [lr] * 4
        want = _adam_by_hand([gr[name] for gr in grads], lrs)
        np.testing.assert_allclose(p.detach().numpy() - start[name], want, rtol=1e-6,
                                   atol=1e-12, err_msg=name)


def test_first_step_of_an_inactive_group_is_gamma_times_the_full_step():
    x = _x(4).double()
    deltas = {}
    for gamma in (1.0, 0.1):
        m = DEFT((1, 64, 64), lr=1e-3, gamma=gamma, seed=0).double()
        before = [p.detach().clone() for p in m.encoder.groups[2].parameters()]
        m.train_step(x, torch.Generator().manual_seed(0))
        deltas[gamma] = torch.cat([(p.detach() - b).flatten()
                                   for p, b in zip(m.encoder.groups[2].parameters(), before,
                                                   strict=True)])
    assert deltas[1.0].abs().max() > 0
    torch.testing.assert_close(deltas[0.1], 0.1 * deltas[1.0], rtol=1e-9, atol=1e-15)


def test_scaling_gradients_does_not_change_adams_step():
    """Why DEFT needs learning rates: Adam's step m̂/(√v̂+ε) is invariant to a constant gradient
    scale, while SGD's step scales with it."""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=50) for _ in range(6)]
    ends = {}
    for opt_name in ("adam", "sgd"):
        for scale in (1.0, 0.1):
            w = torch.zeros(50, dtype=torch.float64, requires_grad=True)
            opt = (torch.optim.Adam([w], lr=1e-2) if opt_name == "adam"
                   else torch.optim.SGD([w], lr=1e-2))
            for gr in grads:
                w.grad = torch.as_tensor(gr) * scale  # the "naive" secondary rate
                opt.step()
            ends[opt_name, scale] = w.detach().numpy().copy()
    np.testing.assert_allclose(ends["adam", 0.1], ends["adam", 1.0], rtol=1e-5)
    np.testing.assert_allclose(ends["adam", 1.0], _adam_by_hand(grads, [1e-2] * 6), rtol=1e-9)
    np.testing.assert_allclose(ends["sgd", 0.1], 0.1 * ends["sgd", 1.0], rtol=1e-12)


def test_naive_gradient_scaling_inside_deft_is_a_no_op():
    """The public port's variant — multiply the inactive groups' gradients by γ after backward,
    one Adam learning rate — trains like γ = 1, not like γ = 0.1. (ε is made negligible here:
    with ε = 1e-8 the two differ only on parameters whose gradients are ~1e-7 or smaller.)"""
    x = _x(4).double()

    def run(gamma, scale_grads):
        m = DEFT((1, 64, 64), lr=1e-3, gamma=gamma, adam_eps=1e-15, seed=0).double()
        m.setup_optimizers()
        opt = m.optimizers["main"]
        original = opt.step

        def scaled_step(*a, **k):
            if scale_grads:
                for grp in list(m.encoder.groups)[1:]:
                    for p in grp.parameters():
                        p.grad.mul_(0.1)
            return original(*a, **k)

        opt.step = scaled_step
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            m.train_step(x, g)
        return torch.cat([p.detach().flatten() for p in m.encoder.groups[1].parameters()])

    naive, full, deft = run(1.0, True), run(1.0, False), run(0.1, False)
    torch.testing.assert_close(naive, full, rtol=1e-6, atol=1e-12)
    assert (deft - full).abs().max() > 100 * (naive - full).abs().max()


# ---- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize("split", [4, 5])
def test_exact_resume_across_a_stage_boundary(tmp_path, dsprites_small, split):
    cfg = DEFTConfig(stage_steps=(5, 2, 2, 1), seed=1)
    straight = DEFT((1, 64, 64), cfg)
    h1 = fit(straight, dsprites_small, 10, batch_size=8, seed=3, log_every=1, show_progress=False)
    ckpt = tmp_path / "deft.pt"
    first = DEFT((1, 64, 64), cfg)
    fit(first, dsprites_small, split, batch_size=8, seed=3, log_every=1, checkpoint=ckpt,
        show_progress=False)
    resumed = DEFT((1, 64, 64), cfg)  # a fresh object: everything comes from the checkpoint
    h2 = fit(resumed, dsprites_small, 10, batch_size=8, seed=3, log_every=1, checkpoint=ckpt,
             show_progress=False)
    for (n, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)
    assert int(resumed.stage) == 3 and h2["stage"].tolist() == h1["stage"].tolist()
    np.testing.assert_array_equal(h1["loss"], h2["loss"])
    lrs = [pg["lr"] for pg in resumed.optimizers["main"].param_groups]
    assert lrs == [pg["lr"] for pg in straight.optimizers["main"].param_groups]


# ---- training on dSprites ------------------------------------------------------------------------
def test_short_cpu_run_is_finite_and_lowers_the_loss(dsprites_small):
    m = DEFT((1, 64, 64), stage_steps=(1000, 1, 1, 1), seed=0)  # all steps in stage 0, β = 70
    h = fit(m, dsprites_small, 40, batch_size=16, log_every=10, show_progress=False)
    assert all(np.isfinite(h[k]).all() for k in h.keys())
    assert h["loss"][-1] < 0.8 * h["loss"][0]
    m2 = DEFT((1, 64, 64), stage_steps=(3, 3, 3, 3), seed=0)  # through every stage
    h2 = fit(m2, dsprites_small, 14, batch_size=8, log_every=2, show_progress=False)
    assert all(np.isfinite(h2[k]).all() for k in h2.keys())


# ---- the anneal test ---------------------------------------------------------------------------
def test_anneal_beta_and_threshold_rule_by_hand():
    b = [float(anneal_beta(t, 200.0, 1.0, 15.0, 1000)) for t in (0, 1000)]
    assert b[0] == pytest.approx(200.0) and b[1] == pytest.approx(1 + 199 * np.exp(-15))
    betas = np.array([90, 80, 70, 60, 50, 40.0])
    assert information_threshold(betas, np.array([0.5, 0.05, 0.02, 0.3, 0.8, 1.0])) == (60.0, 3)
    assert information_threshold(betas, np.array([0.0, 0.0, 0.0, 0.09, 0.11, 1])) == (50.0, 4)
    assert np.isnan(information_threshold(betas, np.full(6, 0.01))[0])
    assert np.isnan(information_threshold(betas, np.full(6, 0.5))[0])  # never shut
    with pytest.raises(ValueError, match="NaN"):
        information_threshold(betas, np.array([0, 0, np.nan, 0, 0, 0.0]))
    m = AnnealTest((1, 64, 64), beta_max=50.0, anneal_steps=10, seed=0)
    m.step.fill_(5)
    out = m.terms(_x(3), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["loss"], out["recon"] + out["beta"] * out["kl"])
    assert float(out["beta"]) == pytest.approx(1 + 49 * np.exp(-7.5))


class _TwoImages:
    """Two 8×8 binary images that differ in exactly ``n`` pixels (A has them on, B off).

    With a Bernoulli decoder the β-VAE objective near a shut code is, per image,
    n·ln 2 − n·I + β·I to leading order (the decoder's best guess on the n pixels improves by
    the information I the code carries, which costs β·I): the code opens exactly when β < n.
    """

    def __init__(self, n: int) -> None:
        x = torch.zeros(2, 1, 8, 8)
        x.view(2, -1)[0, :n] = 1.0
        x.view(2, -1)[:, 40:45] = 1.0  # pixels both images share
        self.x = x
        self.images = (x * 255).to(torch.uint8)
        self.device = torch.device("cpu")
        self.data = SimpleNamespace(image_shape=(1, 8, 8))

    def sample(self, batch_size, generator=None):
        return self.x[torch.randint(2, (batch_size,), generator=generator)]


@pytest.mark.slow  # ~30 s on a shared 2-core CPU
def test_anneal_test_finds_the_known_threshold_of_a_toy_case():
    opts = dict(batch_size=32, arch="mlp", hidden=32, rate=3.0, lr=1e-3, log_every=10)
    found = {}
    for n in (8, 20):
        r = anneal_test(_TwoImages(n), 6000, beta_max=3.0 * n, **opts)
        found[n] = r.threshold
        # opens below the theoretical n; the lag of a finite anneal keeps it within 30 %
        assert 0.7 * n <= r.threshold <= 1.02 * n, (n, r.threshold)
        assert r.kls[-1] > 0.3
    # the threshold moves with n as the theory says
    assert found[20] / found[8] == pytest.approx(20 / 8, rel=0.2)


def test_constant_pressure_brackets_the_toy_threshold():
    """Held fixed, β = 1.5 n keeps the code shut and β = 0.5 n opens it."""
    n = 12
    opts = dict(batch_size=32, arch="mlp", hidden=32, lr=1e-3, log_every=50)
    shut = anneal_test(_TwoImages(n), 2000, beta_max=1.5 * n, beta_end=1.5 * n, **opts)
    opened = anneal_test(_TwoImages(n), 2000, beta_max=0.5 * n, beta_end=0.5 * n, **opts)
    assert shut.kls[-5:].max() < 0.1
    assert opened.kls[-1] > 0.3


def test_factor_subset_varies_one_factor():
    data = load("dsprites")
    sub = factor_subset(data, "posX", [1, 2, 3, 4, 5], device="cpu")
    f = sub.factors.numpy()
    assert f.shape == (32, 5) and (f[:, 3] == np.arange(32)).all()
    assert (f[:, [0, 1, 2, 4]] == [1, 2, 3, 5]).all()
    torch.testing.assert_close(sub.images, data.images_from_classes(torch.as_tensor(f), "cpu"))
    with pytest.raises(ValueError):
        factor_subset(data, 7, [0, 0, 0, 0, 0])


# ---- max-m NMI tracking ------------------------------------------------------------------------
def test_nmi_probe_agrees_with_dlib_metrics(dsprites_small):
    m = DEFT((1, 64, 64), seed=0)
    probe = NMIProbe(dsprites_small, num=300, seed=0)
    got = probe(m)
    with torch.no_grad():
        codes = m.represent(probe.images).numpy()
    np.testing.assert_allclose(got["max1"], max_m_nmi(codes, probe.factors, 1))
    np.testing.assert_allclose(got["max2"], max_m_nmi(codes, probe.factors, 2))
    assert got["mig"] == pytest.approx(mig(codes, probe.factors)["discrete_mig"])
    assert (got["max1"] >= got["max2"]).all()


def test_track_nmi_follows_one_straight_fit(dsprites_small):
    cfg = DEFTConfig(stage_steps=(3, 3, 2, 2), seed=0)
    probe = NMIProbe(dsprites_small, num=200, seed=1)
    tracked = DEFT((1, 64, 64), cfg)
    trace = track_nmi(tracked, dsprites_small, 8, every=3, probe=probe, batch_size=8, log_every=1)
    assert trace.steps.tolist() == [0, 3, 6, 8]
    assert trace.max1.shape == trace.max2.shape == (4, 5) and trace.mig.shape == (4,)
    straight = DEFT((1, 64, 64), cfg)
    fit(straight, dsprites_small, 8, batch_size=8, log_every=1, show_progress=False)
    for a, b in zip(tracked.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    last = probe(straight)
    np.testing.assert_allclose(trace.max1[-1], last["max1"])
    assert trace.mig[-1] == pytest.approx(last["mig"])
    first = probe(DEFT((1, 64, 64), cfg))
    np.testing.assert_allclose(trace.max2[0], first["max2"])
    assert copy.deepcopy(trace.history["stage"]).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


# ---- the CPU scale: width and 32×32 images ---------------------------------------------------
def test_width_one_at_64x64_is_the_papers_network():
    assert DEFTConfig().width == 1.0
    assert num_parameters(DEFT((1, 64, 64))) == 459_349  # the count before width existed
    assert num_parameters(DEFT((3, 64, 64), groups=1, pressures=(1.0,), stage_steps=(5,))) \
        == 692_567


@pytest.mark.parametrize("channels", [1, 3])
def test_one_group_at_half_width_on_32x32_is_the_reference_encoder(channels):
    shape = (channels, 32, 32)
    for arch in ("conv", "conv4"):
        ref = Encoder(shape, 10, arch, width=0.5)
        grp = GroupEncoder(shape, 10, arch, divisor=1, width=0.5)
        grp.load_state_dict(ref.state_dict())  # same layers, same names, same shapes
        x = torch.rand(5, *shape)
        for a, b in zip(grp(x), ref(x), strict=True):
            torch.testing.assert_close(a, b)


def test_half_width_groups_on_32x32_equal_one_block_diagonal_encoder():
    enc = MultiGroupEncoder((1, 32, 32), (3, 3, 2, 2), "conv", width=0.5)
    g0 = enc.groups[0]
    assert [m.out_channels for m in g0.body if isinstance(m, torch.nn.Conv2d)] == [4, 8, 8]
    assert g0.body[0].in_channels == 1 and g0.mean.in_features == 32  # 128 units / 4 groups
    x = (torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) > 0.85).float()
    with torch.no_grad():
        for a, b in zip(enc(x), _block_diag_forward(enc, x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="64×64 or 32×32"):
        GroupEncoder((1, 48, 48), 2)
    with pytest.raises(ValueError, match="width"):
        GroupEncoder((1, 64, 64), 2, "fc", width=0.5)


@pytest.mark.parametrize("channels", [1, 3])
def test_half_width_on_32x32_images_trains(channels, images_32):
    shape = (channels, 32, 32)
    m = DEFT(shape, width=0.5, stage_steps=(2, 2, 2, 2), seed=0)  # through every stage
    assert num_parameters(m) < num_parameters(DEFT(shape)) / 3
    h = fit(m, images_32(channels), 10, batch_size=8, log_every=2, show_progress=False)
    assert all(np.isfinite(h[k]).all() for k in h.keys())
    assert h["stage"].tolist() == [0, 1, 2, 3, 3]
    x = images_32(channels).sample(3)
    assert m.reconstruct(x).shape == (3, *shape) and m.represent(x).shape == (3, 10)


def test_the_cpu_scale_builds_deft_through_the_study_path():
    point = {"dataset": "dsprites", "method": "deft", "setting": {}}
    methods, options = build_methods(point, [0], 100, 64, (1, 32, 32), 1000, SCALES["cpu"])
    assert options["width"] == 0.5 and methods[0].config.width == 0.5
    assert methods[0].image_shape == (1, 32, 32) and len(methods[0].encoder.groups) == 4
    assert num_parameters(methods[0]) == num_parameters(DEFT((1, 32, 32), width=0.5))
    # a quarter of the pixels: a quarter of each stage's β (the ELBO's 1 kept); full scale: 1
    assert options["pressure_scale"] == 0.25
    assert methods[0].pressures.tolist() == [17.5, 7.5, 3.0, 1.0]
    _, full = build_methods(point, [0], 100, 64, (1, 64, 64), 1000, SCALES["full"])
    assert "pressure_scale" not in full


# ---- CUDA (never run in a CPU session) ---------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deft_on_cuda_switches_stages_and_matches_the_cpu_schedule():
    data = load("dsprites").to_device("cuda", num=256, seed=0)
    m = DEFT((1, 64, 64), stage_steps=(3, 2, 2, 1), seed=0)
    h = fit(m, data, 10, batch_size=8, log_every=1, show_progress=False)
    assert m.stage_ends.device.type == "cuda" and int(m.stage) == 3
    assert h["stage"].tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert h["beta"].tolist() == [70, 70, 70, 30, 30, 12, 12, 1, 1, 1]
    lrs = {pg["name"]: pg["lr"] for pg in m.optimizers["main"].param_groups}
    assert lrs["encoder3"] == m.config.lr and lrs["encoder0"] == pytest.approx(0.1 * m.config.lr)
    assert all(np.isfinite(h[k]).all() for k in h.keys())
    probe = NMIProbe(data, num=200, seed=0)
    out = probe(m)
    with torch.no_grad():
        codes = m.represent(probe.images).cpu().numpy()
    np.testing.assert_allclose(out["max1"], max_m_nmi(codes, probe.factors, 1))


def test_factor_thresholds_runs_every_repeat_on_the_requested_device():
    data = load("dsprites")
    out = factor_thresholds(data, "scale", 2, 4, random_state=0, batch_size=8, log_every=1,
                            device="cpu")
    assert out.shape == (2,)


