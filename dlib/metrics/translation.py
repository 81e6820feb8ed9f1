"""The image-translation metric of the intervention paper (seed 002, Definition 1, Algorithm 1).

A representation is judged by how hard a *downstream translation* is. Pick a feature k of the
code and two values ``a`` and ``b`` drawn from its marginal p(z_k). For every code z of a set D,
decode it twice, once with z_k set to ``a`` (the input u) and once with z_k set to ``b`` (the
target v). A small translation network M is trained for ``s`` plain gradient-descent steps
(learning rate α) to map u to v on D, and the metric is its cross-entropy on a held-out set D̃::

    L̃_trans = E_{(ũ, ṽ) from D̃} crossentropy(ṽ, M(ũ)),      lower = easier = more disentangled.

If z_k controls one factor only, every pair differs in that factor alone and by the same change
(from ``a`` to ``b``), so M learns a simple, input-independent edit. If z_k is entangled with
other factors, the pairs differ in several factors, by amounts that depend on the rest of the
code, and part of the target cannot be predicted from the input at all.

What the paper leaves open and what we chose (each a documented argument, not the paper's):

* **M** starts as the *copy* translation: logits = g · logit(clip(u)) + R(u) with a learnable
  gain g = 1 and a residual R whose last layer is zero-initialised. The s steps then only learn
  the *change*, which is what the metric is about (a network that must first learn to copy an
  image would measure its own optimisation speed). R is a small conv encoder-decoder
  (``kind="conv"``, 64×64 → 16×16 → 64×64, receptive field wide enough for a dSprites shift)
  or a dense affine map of all pixels (``kind="affine"``, for tiny synthetic observations).
* **Inner loss** is the per-pixel *mean* cross-entropy (so α does not depend on image size);
  the reported L̃_trans is the per-image *sum* over pixels averaged over pairs (the library's
  reconstruction convention). Plain gradient descent on the whole set D, as Algorithm 1 says.
* **Values a, b** are the feature's values in two random codes of D (samples of p(z_k));
  if they coincide another code with a different value is taken. A feature the decoder
  ignores (or a constant one) gives u ≈ v, a trivially easy translation: the metric cannot see
  a collapsed dimension, which is why it is reported together with each feature's mean pixel
  change |u − v| and the number of dead features (change below ``inert_tol`` = 1e-3).
* **Every feature** is translated with the same pairs of code indices and the same initial M,
  so permuting the code dimensions permutes the per-feature losses and leaves the mean fixed.

The same routine (:func:`held_out_translation_loss`) is the training term L_diff of
:class:`dlib.methods.intervention.Intervention`, where gradients flow into the decoder.

Holds :func:`set_feature`, :class:`TranslationNet`, :func:`train_translation`,
:func:`held_out_translation_loss`, :func:`translation_pairs`, :func:`translation_loss`,
:func:`translation`, :func:`compute_translation` and :func:`onehot_toy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from dlib.metrics.utils import (
    Represent,
    as_codes,
    as_random_state,
    check_positive_int,
    sample_codes_factors,
)

__all__ = [
    "TranslationNet",
    "set_feature",
    "translation_pairs",
    "train_translation",
    "held_out_translation_loss",
    "translation_loss",
    "translation",
    "compute_translation",
    "Decode",
    "onehot_toy",
]

Decode = Callable[[Tensor], Tensor]
"""``decode(codes (B, D) float tensor) -> images (B, C, H, W) in [0, 1]`` (torch layout)."""

_CLIP = 1e-2  # logit(clip(u, 0.01, 0.99)) is the copy prior: ±4.6 nats for binary pixels


def set_feature(z: Tensor, feature: Tensor | int, value: Tensor, feature_dim: int = 1) -> Tensor:
    """Intervention on a representation: a copy of ``z`` whose feature ``feature`` is ``value``.

    ``z`` is (B, K·D_Z), made of K features of ``feature_dim`` = D_Z dimensions each;
    ``feature`` is one index for the whole batch (an int, range-checked) or a tensor of
    indices, one per row (B,) or one for all (not checked: no host synchronisation);
    ``value`` is (B, D_Z) or (D_Z,) (broadcast). Out-of-place and differentiable in ``z``
    and ``value``.
    """
    if z.dim() != 2:
        raise ValueError(f"codes must have shape (B, D), got {tuple(z.shape)}")
    b, d = z.shape
    if feature_dim < 1 or d % feature_dim:
        raise ValueError(f"code width {d} is not a multiple of feature_dim={feature_dim}")
    k_total = d // feature_dim
    if isinstance(feature, Tensor):  # indices on the device: not checked (no host sync)
        k = feature.to(device=z.device, dtype=torch.long)
    else:
        if not 0 <= int(feature) < k_total:
            raise ValueError(f"feature index {feature} out of range [0, {k_total})")
        k = torch.tensor(int(feature), device=z.device)
    if k.dim() == 0:
        k = k.expand(b)
    if k.shape != (b,):
        raise ValueError(f"feature must be an int or a (B,) tensor, got shape {tuple(k.shape)}")
    value = torch.as_tensor(value, device=z.device, dtype=z.dtype)
    if value.dim() == 1:
        value = value.expand(b, feature_dim)
    if value.shape != (b, feature_dim):
        raise ValueError(f"value must be (B, {feature_dim}) or ({feature_dim},), "
                         f"got {tuple(value.shape)}")
    blocks = z.reshape(b, k_total, feature_dim)
    # (B, K, 1) indicator of the replaced feature; a comparison, not F.one_hot (which checks
    # its indices on the host)
    mask = (torch.arange(k_total, device=z.device) == k[:, None]).to(z.dtype).unsqueeze(-1)
    out = blocks * (1 - mask) + value.unsqueeze(1) * mask
    return out.reshape(b, d)


class TranslationNet(nn.Module):
    """The translation model M of Algorithm 1: copy prior plus a learnt residual (logits out).

    ``kind="conv"`` needs images whose height and width are multiples of 4;
    ``kind="affine"`` is a dense map of all pixels (only for small observations).
    """

    def __init__(self, image_shape: tuple[int, int, int], kind: str = "auto",
                 width: int = 32) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(int(s) for s in image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        c, h, w = (int(s) for s in image_shape)
        if kind == "auto":
            kind = "conv" if h % 4 == 0 and w % 4 == 0 and min(h, w) >= 16 else "affine"
        if kind == "conv":
            if h % 4 or w % 4:
                raise ValueError(f"kind='conv' needs H and W divisible by 4, got {h}×{w}")
            last = nn.ConvTranspose2d(width, c, 4, 2, 1)
            self.residual = nn.Sequential(
                nn.Conv2d(c, width, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(width, width, 4, 2, 1), nn.ReLU(),
                nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ReLU(),
                last,
            )
        elif kind == "affine":
            p = c * h * w
            if p > 3 * 64 * 64:
                raise ValueError(f"kind='affine' on {p} pixels would need {p * p} weights")
            last = nn.Linear(p, p)
            self.residual = nn.Sequential(nn.Flatten(), last, nn.Unflatten(1, (c, h, w)))
        else:
            raise ValueError(f"kind must be 'auto', 'conv' or 'affine', got {kind!r}")
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.gain = nn.Parameter(torch.ones(()))
        self.kind = kind
        self.image_shape = (c, h, w)

    def forward(self, u: Tensor) -> Tensor:
        if u.dim() != 4 or tuple(u.shape[1:]) != self.image_shape:
            raise ValueError(f"M expects (B, {self.image_shape}), got {tuple(u.shape)}")
        copy = torch.logit(u.clamp(_CLIP, 1 - _CLIP))
        return self.gain * copy + self.residual(u)


def _pixel_mean_ce(logits: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


def train_translation(
    net: TranslationNet,
    params: dict[str, Tensor],
    u: Tensor,
    v: Tensor,
    steps: int,
    lr: float,
    unroll: bool = False,
) -> dict[str, Tensor]:
    """The loop of Algorithm 1: ``steps`` plain gradient-descent steps θ ← θ − α∇L_trans(θ).

    ``params`` are M's starting parameters (name → tensor). With ``unroll=False`` the pairs are
    treated as constants and the result is detached (first-order); with ``unroll=True`` the
    graph of every step is kept, so the returned parameters are differentiable functions of
    ``u`` and ``v`` (and of ``params``).
    """
    if steps < 0 or lr <= 0:
        raise ValueError(f"need steps >= 0 and lr > 0, got {steps}, {lr}")
    if not unroll:
        u, v = u.detach(), v.detach()
        params = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    else:  # stored starting points that take no gradient become differentiable leaves
        params = {n: p if p.requires_grad else p.detach().requires_grad_(True)
                  for n, p in params.items()}
    names = list(params)
    with torch.enable_grad():
        for _ in range(steps):
            loss = _pixel_mean_ce(functional_call(net, params, (u,)), v)
            grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=unroll)
            if unroll:
                params = {n: params[n] - lr * g for n, g in zip(names, grads, strict=True)}
            else:
                params = {n: (params[n] - lr * g).detach().requires_grad_(True)
                          for n, g in zip(names, grads, strict=True)}
    return params


def held_out_translation_loss(
    net: TranslationNet,
    params: dict[str, Tensor],
    u: Tensor,
    v: Tensor,
    u_test: Tensor,
    v_test: Tensor,
    steps: int,
    lr: float,
    unroll: bool = False,
) -> Tensor:
    """Algorithm 1's return value: train M on (u, v), then its held-out cross-entropy on
    (ũ, ṽ), summed over pixels and averaged over pairs. Differentiable in ``u_test``,
    ``v_test`` (and, with ``unroll=True``, in ``u``, ``v``)."""
    trained = train_translation(net, params, u, v, steps, lr, unroll)
    logits = functional_call(net, trained, (u_test,))
    ce = F.binary_cross_entropy_with_logits(logits, v_test, reduction="none")
    return ce.flatten(1).sum(1).mean()


def translation_pairs(
    decode: Decode, codes: Tensor, feature: int, value_a: Tensor, value_b: Tensor,
    feature_dim: int = 1, check: bool = True,
) -> tuple[Tensor, Tensor]:
    """Definition 1's pairs: u = x̂(z_k = a), v = x̂(z_k = b) for every code of ``codes``.

    ``check=False`` skips the value checks of the decoded images (they synchronise the host).
    """
    u = decode(set_feature(codes, feature, value_a, feature_dim))
    v = decode(set_feature(codes, feature, value_b, feature_dim))
    if not check:
        return u, v
    for name, t in (("u", u), ("v", v)):
        if t.dim() != 4 or t.shape[0] != codes.shape[0]:
            raise ValueError(f"decode must return (B, C, H, W) images, got {tuple(t.shape)}")
        if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
            raise ValueError(f"decoded images ({name}) must be finite and lie in [0, 1]")
    return u, v


def _initial_params(image_shape: tuple[int, int, int], kind: str, seed: int,
                    device: torch.device) -> tuple[TranslationNet, dict[str, Tensor]]:
    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=g)))
        net = TranslationNet(image_shape, kind).to(device)
    return net, {n: p.detach().clone() for n, p in net.named_parameters()}


def translation_loss(
    decode: Decode,
    codes_train: Any,
    codes_test: Any,
    feature: int,
    value_a: Any,
    value_b: Any,
    *,
    feature_dim: int = 1,
    steps: int = 200,
    lr: float = 1.0,
    kind: str = "auto",
    seed: int = 0,
    device: torch.device | str | None = None,
) -> float:
    """Algorithm 1 for one feature ``k`` and values ``a``, ``b``: the held-out L̃_trans.

    ``codes_train`` (D) and ``codes_test`` (D̃) are (N, D) arrays or tensors; ``decode`` maps
    codes to images in [0, 1]. M starts from the initialisation drawn with ``seed``.
    """
    return _loss_and_change(decode, codes_train, codes_test, feature, value_a, value_b,
                            feature_dim, steps, lr, kind, seed, device)[0]


def _loss_and_change(decode, codes_train, codes_test, feature, value_a, value_b, feature_dim,
                     steps, lr, kind, seed, device) -> tuple[float, float]:
    """The held-out loss and the mean absolute pixel change |u − v| on D."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    z_tr = torch.as_tensor(as_codes(codes_train, "codes_train"), dtype=torch.float32, device=dev)
    z_te = torch.as_tensor(as_codes(codes_test, "codes_test"), dtype=torch.float32, device=dev)
    if z_tr.shape[1] != z_te.shape[1]:
        raise ValueError("codes_train and codes_test must have the same width")
    a = torch.as_tensor(np.asarray(value_a, dtype=np.float32).reshape(-1), device=dev)
    b = torch.as_tensor(np.asarray(value_b, dtype=np.float32).reshape(-1), device=dev)
    check_positive_int(steps, "steps", 0)
    with torch.no_grad():
        u, v = translation_pairs(decode, z_tr, feature, a, b, feature_dim)
        u_te, v_te = translation_pairs(decode, z_te, feature, a, b, feature_dim)
    net, params = _initial_params(tuple(u.shape[1:]), kind, seed, dev)
    loss = held_out_translation_loss(net, params, u, v, u_te, v_te, steps, lr)
    return float(loss.detach()), float((u - v).abs().mean())


def translation(
    decode: Decode,
    codes_train: Any,
    codes_test: Any,
    random_state: np.random.RandomState | int = 0,
    *,
    num_pairs: int = 1,
    feature_dim: int = 1,
    steps: int = 200,
    lr: float = 1.0,
    kind: str = "auto",
    device: torch.device | str | None = None,
    inert_tol: float = 1e-3,
) -> dict[str, Any]:
    """The translation metric over every feature: ``{"translation_loss", ...}`` (lower=better).

    For each of ``num_pairs`` draws, two code indices (and a fallback order) are drawn from
    ``random_state`` and one initial M is drawn; every feature k uses them (value a, b = the
    k-th features of the two codes), so a permutation of the features permutes
    ``translation_loss_per_feature`` and leaves the mean unchanged. Returns the mean over
    features and draws, the per-feature means, the mean absolute pixel change |u − v| of each
    feature's pairs, and the number of *dead* features: those whose change is below
    ``inert_tol`` (the decoder ignores them, so their translation is trivially easy).
    """
    rs = as_random_state(random_state)
    z_tr = as_codes(codes_train, "codes_train")
    z_te = as_codes(codes_test, "codes_test")
    num_pairs = check_positive_int(num_pairs, "num_pairs")
    feature_dim = check_positive_int(feature_dim, "feature_dim")
    if z_tr.shape[1] != z_te.shape[1]:
        raise ValueError("codes_train and codes_test must have the same width")
    if z_tr.shape[1] % feature_dim:
        raise ValueError(f"code width {z_tr.shape[1]} is not a multiple of {feature_dim}")
    k_total = z_tr.shape[1] // feature_dim
    blocks = z_tr.reshape(len(z_tr), k_total, feature_dim)
    losses = np.zeros((k_total, num_pairs))
    change = np.zeros((k_total, num_pairs))
    for r in range(num_pairs):
        order = rs.permutation(len(z_tr))
        seed = int(rs.randint(2**31 - 1))
        ia = order[0]
        for k in range(k_total):
            a = blocks[ia, k]
            differs = np.flatnonzero(np.any(blocks[order, k] != a, axis=1))
            b = blocks[order[differs[0]], k] if len(differs) else a
            losses[k, r], change[k, r] = _loss_and_change(
                decode, z_tr, z_te, k, a, b, feature_dim, steps, lr, kind, seed, device)
    per_feature = losses.mean(axis=1)
    change_per_feature = change.mean(axis=1)
    return {
        "translation_loss": float(per_feature.mean()),
        "translation_loss_per_feature": per_feature.tolist(),
        "image_change_per_feature": change_per_feature.tolist(),
        "num_dead_features": int((change_per_feature < inert_tol).sum()),
    }


def compute_translation(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    decode: Decode | None = None,
    num_train: int = 256,
    num_test: int = 256,
    num_pairs: int = 1,
    feature_dim: int = 1,
    steps: int = 200,
    lr: float = 1.0,
    kind: str = "auto",
    batch_size: int = 16,
    device: torch.device | str | None = None,
    inert_tol: float = 1e-3,
) -> dict[str, Any]:
    """The translation metric with the harness's sampling: D then D̃ drawn from ``data``,
    encoded with ``represent``; ``decode`` (required) maps codes back to images.

    The metric needs no ground-truth factors (it is the paper's *unsupervised* score); the
    factors the harness draws are ignored. Defaults are our choices (see the module text).
    """
    if decode is None or not callable(decode):
        raise ValueError("the translation metric needs decode=<codes (B, D) tensor -> images "
                         "(B, C, H, W) in [0, 1]>, e.g. lambda z: torch.sigmoid(model.decode(z))")
    rs = as_random_state(random_state)
    check_positive_int(num_train, "num_train")
    check_positive_int(num_test, "num_test")
    z_tr, _ = sample_codes_factors(data, represent, num_train, rs, batch_size)
    z_te, _ = sample_codes_factors(data, represent, num_test, rs, batch_size)
    return translation(decode, z_tr, z_te, rs, num_pairs=num_pairs, feature_dim=feature_dim,
                       steps=steps, lr=lr, kind=kind, device=device, inert_tol=inert_tol)


def onehot_toy(sizes: tuple[int, ...] = (5, 6), angle: float = 0.0, repeats: int = 1
               ) -> tuple[np.ndarray, Decode]:
    """A tiny exact generator for checking the metric: codes of the full factor grid and their
    decoder.

    An observation is the concatenation of one one-hot block per factor, (1, 1, Σ sizes). The
    code is the standardised factor classes with the first two factors rotated by ``angle``
    (0: disentangled); ``decode`` undoes the rotation, rounds to the nearest class (clipped to
    the grid) and renders the blocks, so ``decode(codes)`` reproduces the observations exactly.
    """
    from dlib.metrics.toy import full_grid

    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 2:
        raise ValueError(f"need at least two factors of at least two classes, got {sizes}")
    grid = np.tile(full_grid(sizes), (check_positive_int(repeats, "repeats"), 1))
    grid = grid.astype(np.float32)
    mu, sd = grid.mean(0), grid.std(0)
    rot = np.eye(len(sizes), dtype=np.float32)
    c, s = np.cos(angle), np.sin(angle)
    rot[:2, :2] = [[c, -s], [s, c]]
    codes = ((grid - mu) / sd) @ rot
    rot_t, mu_t, sd_t = torch.tensor(rot.T), torch.tensor(mu), torch.tensor(sd)

    def decode(z: Tensor) -> Tensor:
        g = (z.float().cpu() @ rot_t) * sd_t + mu_t
        blocks = [F.one_hot(g[:, j].round().clamp(0, n - 1).long(), n).float()
                  for j, n in enumerate(sizes)]
        return torch.cat(blocks, 1).reshape(len(z), 1, 1, -1).to(z.device)

    return codes.astype(np.float32), decode
