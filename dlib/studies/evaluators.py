"""Named evaluators: what a study computes on each trained model, and during training.

An :class:`Evaluator` has a ``final`` function, called on the trained model, and optionally a
``track`` function called at the steps ``stops`` gives while the model trains (through
:func:`dlib.train.fit_in_stages`); what ``track`` returns is kept in the trial's checkpoint,
so a resumed trial keeps what it measured, and handed to ``final`` as ``ctx.tracks[name]``.
``final`` returns a dict: its ``"scores"`` (floats) join the model's scores, its ``"arrays"``
(small numpy arrays) are saved beside the model's record as ``.npy``, everything else joins
the record. A study names its evaluators; a new one is a function and one line in
:data:`EVALUATORS` (e.g. a metric path that encodes the dataset once and looks codes up).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Context", "Evaluator", "EVALUATORS", "HEADLINE", "SAMPLED_HEADLINE", "FAILURE_MIG",
           "UDR_POINTS", "recon_and_kl", "encoded_metrics"]

FAILURE_MIG = 0.1  #: DEFT's definition: a model with MIG below this has failed

#: the score(s) a metric contributes to a model's flat ``scores``: name → result key
HEADLINE: dict[str, dict[str, str]] = {
    "factor_vae": {"factor_vae": "eval_accuracy"},
    "beta_vae": {"beta_vae": "eval_accuracy"},
    "mig": {"mig": "discrete_mig"},
    "dci": {"dci": "disentanglement", "dci_completeness": "completeness",
            "dci_informativeness": "informativeness_test"},
    "sap": {"sap": "SAP_score"},
    "irs": {"irs": "IRS"},
    "modularity_explicitness": {"modularity": "modularity_score",
                                "explicitness": "explicitness_score_test"},
    "unsupervised": {"gaussian_tc": "gaussian_total_correlation",
                     "gaussian_wc": "gaussian_wasserstein_correlation_norm",
                     "mutual_info": "mutual_info_score"},
    # Locatello et al.'s Sec. 5.4: mean test accuracy over the factors from 10 ... 10,000 codes
    "downstream_task": {f"downstream_lr_{n}": f"{n}:mean_test_accuracy"
                        for n in (10, 100, 1000, 10000)},
    "downstream_task_gbt": {f"downstream_gbt_{n}": f"{n}:mean_test_accuracy"
                            for n in (10, 100, 1000, 10000)},
}


@dataclass
class Context:
    """What an evaluator sees: the model, its data, the scale and the study."""

    method: Any
    seed: int
    steps: int  # the steps the model is trained for
    study: Any  # a dlib.studies.Study
    scale: Any  # a dlib.scales.Scale
    data: Any  # the ground-truth sampler the metrics draw from (held-out set where there is one)
    train: Any  # the DeviceData the model trains on
    dataset: str
    history: Any = None  # a dlib.train.History, once trained
    tracks: dict[str, list] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # what earlier evaluators returned
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_seed(self) -> int:
        """The RandomState seed of every metric (the study's, or the model's seed)."""
        return self.seed if self.study.metric_seed is None else int(self.study.metric_seed)

    @property
    def device(self) -> torch.device:
        return next(self.method.parameters()).device

    @property
    def feature_dim(self) -> int:
        """Dimensions per code feature (D_Z of the intervention-based model; 1 elsewhere)."""
        return int(getattr(getattr(self.method, "config", None), "feature_dim", 1))

    def options(self, name: str, **defaults: Any) -> dict[str, Any]:
        """The scale's options of metric/evaluator ``name`` over ``defaults``, and
        ``feature_dim`` where the code's features have several dimensions and metric ``name``
        reads features (SAP, the translation metric)."""
        from dlib.metrics import METRICS

        opts = {**defaults, **self.scale.metric_options(name)}
        metric = METRICS.get(name)
        if (self.feature_dim > 1 and metric is not None
                and "feature_dim" in inspect.signature(metric).parameters):
            opts["feature_dim"] = self.feature_dim
        return opts

    def represent(self) -> Callable[[np.ndarray], np.ndarray]:
        """The model's representation as the metrics call it (images in, codes out)."""
        from dlib.metrics.utils import torch_representation

        calibrate = getattr(self.method, "calibrate_representation", None)
        if calibrate is not None:  # a code read through real images' batch-norm statistics
            images = getattr(self.train, "images", None)  # (InfoGAN's D/Q)
            if images is None:  # no stored training set: real images from the metrics' sampler
                obs = self.data.sample_observations(2_000, np.random.RandomState(self.seed))
                images = torch.as_tensor(np.ascontiguousarray(obs)).permute(0, 3, 1, 2).float()
            self.cache["calibrated"] = calibrate(images.to(self.device))
        self.method.eval()
        return torch_representation(self.method.represent, device=self.device)


@dataclass(frozen=True)
class Evaluator:
    """A named measurement: ``final(ctx)``; optionally ``track(ctx, step)`` at ``stops(ctx)``."""

    name: str
    final: Callable[[Context], dict[str, Any]]
    track: Callable[[Context, int], Any] | None = None
    stops: Callable[[Context], list[int]] | None = None


# ---- scores ---------------------------------------------------------------------------------
def metric_scores(ctx: Context) -> dict[str, Any]:
    """Every metric of the study with :func:`dlib.metrics.compute`, each with its own
    ``RandomState(metric_seed)`` and the scale's options: every scalar result (``metrics``)
    and the headline scores (``scores``)."""
    from dlib.metrics import compute

    represent = ctx.represent()
    scores: dict[str, float] = {}
    full: dict[str, dict[str, float]] = {}
    for name in ctx.study.metrics:
        out = compute(name, ctx.data, represent, np.random.RandomState(ctx.metric_seed),
                      **ctx.options(name))
        full[name] = {k: float(v) for k, v in out.items() if np.ndim(v) == 0}
        for score, key in HEADLINE.get(name, {}).items():
            if key in out:  # (a downstream run at a scale's smaller sizes lacks the others)
                scores[score] = float(out[key])
    out: dict[str, Any] = {"scores": scores, "metrics": full}
    if "calibrated" in ctx.cache:  # how many real images set the code's batch-norm statistics
        out["calibration_images"] = ctx.cache["calibrated"]
    return out


#: the unsupervised scores of the *sampled* code (``encoded_metrics``): name → result key
SAMPLED_HEADLINE = {"gaussian_tc_sampled": "gaussian_total_correlation",
                    "gaussian_wc_sampled": "gaussian_wasserstein_correlation_norm"}
UDR_POINTS = 1000  #: images whose codes a model keeps for UDR across seeds (the study's 1,000)


def encoded_metrics(ctx: Context) -> dict[str, Any]:
    """The study's metrics on the codes of every image, encoded once
    (:mod:`dlib.metrics.encoded`): the same scores and random streams as ``metrics`` at the
    cost of one pass over the data. Where the study scores ``unsupervised``, the Gaussian TC
    and WC of the sampled code join the scores (``gaussian_tc_sampled``, ...). The record gets
    the KL of each latent averaged over the whole dataset (``kl_all``) and the exact factor ×
    latent R² map (``factor_latent_r2``); the arrays keep the means and log-variances
    (float16) of :data:`UDR_POINTS` fixed images, the same for every model of a dataset, for
    UDR across seeds. A method whose evaluated code is a part of its latent encodes that part
    (``encode_representation``: OAT's z1). A model without an encoder, or data whose images
    are random given the factors, is scored on demand by ``metrics`` instead
    (``"encoded": False``)."""
    from dlib.distributions import gaussian_kl
    from dlib.metrics import compute
    from dlib.metrics.encoded import EncodedData, encode_dataset, factor_latent_r2

    method, data = ctx.method, ctx.data
    if not hasattr(method, "encode") or not getattr(data, "deterministic_observations", False):
        return {**metric_scores(ctx), "encoded": False}
    method.eval()
    # a method whose evaluated code is part of its latent (OAT's z1) says which part
    codes = encode_dataset(getattr(method, "encode_representation", method.encode), data)
    enc = EncodedData(data, codes)
    scores: dict[str, float] = {}
    full: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for name in ctx.study.metrics:
        start = time.perf_counter()
        out = compute(name, enc, enc.mean, np.random.RandomState(ctx.metric_seed),
                      **ctx.options(name))
        seconds[name] = round(time.perf_counter() - start, 2)
        full[name] = {k: float(v) for k, v in out.items() if np.ndim(v) == 0}
        for score, key in HEADLINE.get(name, {}).items():
            if key in out:  # (a downstream run at a scale's smaller sizes lacks the others)
                scores[score] = float(out[key])
    if "unsupervised" in ctx.study.metrics:
        out = compute("unsupervised", enc, enc.sampled(seed=ctx.metric_seed),
                      np.random.RandomState(ctx.metric_seed),
                      **ctx.options("unsupervised"))
        full["unsupervised_sampled"] = {k: float(v) for k, v in out.items() if np.ndim(v) == 0}
        scores.update({s: float(out[k]) for s, k in SAMPLED_HEADLINE.items()})
    mean, logvar = torch.from_numpy(codes.mean), torch.from_numpy(codes.logvar)
    kl_all = gaussian_kl(mean, logvar).double().mean(0).tolist()
    index = np.sort(np.random.RandomState(1234).choice(
        data.num_observations, size=min(UDR_POINTS, data.num_observations), replace=False))
    return {"scores": scores, "metrics": full, "encoded": True,
            "encode_seconds": round(codes.seconds, 2), "metric_seconds": seconds,
            "kl_all": kl_all,
            "factor_latent_r2": factor_latent_r2(codes.mean, tuple(data.factor_sizes)).tolist(),
            "arrays": {"udr_index": index.astype(np.int64),
                       "udr_mean": codes.mean[index].astype(np.float16),
                       "udr_logvar": codes.logvar[index].astype(np.float16)}}


@torch.no_grad()
def recon_and_kl(method: Any, images: torch.Tensor, seed: int) -> tuple[float, list[float]]:
    """Mean reconstruction NLL per image (one posterior sample drawn with ``seed``) and the KL
    per latent dimension, averaged over ``images`` (N, C, H, W), 500 at a time."""
    from dlib.distributions import bernoulli_nll, gaussian_kl, reparameterise

    gen = torch.Generator(device=images.device).manual_seed(int(seed))
    nll, kl, n = 0.0, None, 0
    for i in range(0, len(images), 500):
        x = images[i:i + 500]
        mean, logvar = method.encode(x)
        z = reparameterise(mean, logvar, gen)
        nll += float(bernoulli_nll(method.decode(z), x).sum())
        k = gaussian_kl(mean, logvar).sum(0)
        kl = k if kl is None else kl + k
        n += len(x)
    if kl is None:
        raise ValueError("recon_and_kl needs at least one image")
    return nll / n, (kl / n).cpu().tolist()


def recon_kl(ctx: Context) -> dict[str, Any]:
    """Reconstruction NLL per image (one posterior sample) and the KL per latent dimension, on
    ``num`` draws from the evaluation data (``RandomState(metric_seed + 1)``); ``None`` and
    ``[]`` for a model without an encoder (a GAN)."""
    method = ctx.method
    if not hasattr(method, "encode"):
        return {"scores": {"recon": None}, "kl": []}
    method.eval()
    num = int(ctx.options("recon", num=10_000)["num"])
    obs = ctx.data.sample_observations(num, np.random.RandomState(ctx.metric_seed + 1))
    images = torch.as_tensor(np.ascontiguousarray(obs), device=ctx.device).permute(0, 3, 1, 2)
    recon, kl = recon_and_kl(method, images.float(), ctx.metric_seed)
    return {"scores": {"recon": recon}, "kl": kl}


def _probe_image(ctx: Context) -> torch.Tensor:
    obs = ctx.data.sample_observations(1, np.random.RandomState(ctx.metric_seed + 2))
    return torch.as_tensor(np.ascontiguousarray(obs), device=ctx.device).permute(0, 3, 1, 2)[0]


@torch.no_grad()
def traversal(ctx: Context, n_values: int = 9, limit: float = 2.0) -> dict[str, Any]:
    """uint8 traversals (rows, n_values, C, H, W) of one held-out image: a VAE's dimensions by
    decreasing KL (``recon_kl`` must come first), OAT's switched-on z1 dimensions in order,
    InfoGAN's continuous codes over [−1, 1] with the rest of z fixed."""
    from dlib.plots import kl_order, traversal_images

    method = ctx.method
    method.eval()
    image = _probe_image(ctx).float()
    if hasattr(method, "n_active"):  # OAT: the active z1 dimensions, in the order switched on
        order = list(range(int(method.n_active)))
    elif hasattr(method, "encode"):
        if not ctx.record.get("kl"):
            raise ValueError("the traversal evaluator needs recon_kl before it (KL order)")
        order = list(kl_order(np.asarray(ctx.record["kl"])))
    else:
        order = []
    if hasattr(method, "encode"):
        if not order:
            return {"arrays": {"traversal": np.zeros((0, n_values, *image.shape), np.uint8)}}
        imgs = traversal_images(method, image[None], order,
                                np.linspace(-limit, limit, n_values))
    else:  # InfoGAN
        gen = torch.Generator(device=image.device).manual_seed(0)
        _, _, z = method.sample_latents(1, gen)
        k = method.config.num_continuous
        codes = z.repeat(k * n_values, 1).view(k, n_values, -1)
        for d in range(k):
            codes[d, :, d] = torch.linspace(-1, 1, n_values, device=z.device)
        imgs = method.generator(codes.view(k * n_values, -1)).view(k, n_values, *image.shape)
    arr = (imgs.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return {"arrays": {"traversal": arr}}


def oat_state(ctx: Context) -> dict[str, Any]:
    """OAT's procedure state: dimensions switched on, whether and when switching stopped."""
    m = ctx.method
    return {"n_active": int(m.n_active), "stopped": bool(m.stopped),
            "switch_steps": m.switch_steps.cpu().tolist(), "stop_step": int(m.stop_step)}


def _decoder(method: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    if hasattr(method, "decode_images"):
        return method.decode_images
    return lambda z: torch.sigmoid(method.decode(z))


def translation(ctx: Context) -> dict[str, Any]:
    """The image-translation loss (:mod:`dlib.metrics.translation`) and its dead features."""
    from dlib.metrics import compute

    opts = ctx.options("translation", num_train=512, num_test=512, num_pairs=2)
    out = compute("translation", ctx.data, ctx.represent(),
                  np.random.RandomState(ctx.metric_seed), decode=_decoder(ctx.method),
                  device=ctx.device, **opts)
    return {"scores": {"translation_loss": float(out["translation_loss"]),
                       "dead_features": float(out["num_dead_features"])}}


def loss_tail(ctx: Context) -> dict[str, Any]:
    """Mean reconstruction term and KL over the last ~5 % of the logged training history."""
    h = ctx.history
    tail = slice(-max(1, len(h) // 20), None)
    return {"scores": {"train_recon": float(np.mean(h["recon"][tail])),
                       "train_kl": float(np.mean(h["kl"][tail]))}}


# ---- measured during training -----------------------------------------------------------------
def _stage_ends(ctx: Context) -> list[int]:
    ends = getattr(ctx.method, "_ends", None)  # DEFT's stage ends (cumulative stage lengths)
    return [int(e) for e in ends if 0 < int(e) <= ctx.steps] if ends else []


def _mig(ctx: Context, step: int) -> float:
    from dlib.metrics import compute

    out = compute("mig", ctx.data, ctx.represent(), np.random.RandomState(ctx.metric_seed),
                  **ctx.options("mig"))
    ctx.method.train()
    return float(out["discrete_mig"])


def stage_mig(ctx: Context) -> dict[str, Any]:
    """MIG at the end of every DEFT stage (empty for a model without stages)."""
    return {"stage_ends": _stage_ends(ctx),
            "stage_mig": [v for _, v in ctx.tracks.get("stage_mig", [])]}


def _trace_stops(ctx: Context) -> list[int]:
    n = int(ctx.options("nmi_trace", points=24)["points"])
    return sorted({max(1, round(ctx.steps * (i + 1) / n)) for i in range(n)})


def _nmi(ctx: Context, step: int) -> dict[str, Any]:
    from dlib.experiments.deft import NMIProbe

    if "nmi_probe" not in ctx.cache:
        opts = ctx.options("nmi_trace", num=10_000)
        ctx.cache["nmi_probe"] = NMIProbe(ctx.train, num=min(int(opts["num"]), len(ctx.train)),
                                          seed=1234)
    p = ctx.cache["nmi_probe"](ctx.method)
    return {"step": int(step), "max1": p["max1"].tolist(), "max2": p["max2"].tolist(),
            "mig": float(p["mig"])}


def nmi_trace(ctx: Context) -> dict[str, Any]:
    """max-1 / max-2 NMI per factor (and their MIG) traced over training, on one fixed sample
    of the training images (the DEFT paper's Fig. 2)."""
    rows = [v for _, v in ctx.tracks.get("nmi_trace", [])]
    trace = {key: [r[key] for r in rows] for key in ("step", "max1", "max2", "mig")}
    return {"trace": trace, "factor_names": list(ctx.train.data.factor_names)}


EVALUATORS: dict[str, Evaluator] = {e.name: e for e in (
    Evaluator("metrics", metric_scores),
    Evaluator("encoded_metrics", encoded_metrics),
    Evaluator("recon_kl", recon_kl),
    Evaluator("traversal", traversal),
    Evaluator("oat_state", oat_state),
    Evaluator("translation", translation),
    Evaluator("loss_tail", loss_tail),
    Evaluator("stage_mig", stage_mig, track=_mig, stops=_stage_ends),
    Evaluator("nmi_trace", nmi_trace, track=_nmi, stops=_trace_stops),
)}
