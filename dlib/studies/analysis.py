"""The analyses of the large-scale study (Locatello et al. 2019) on a study's models.

Each function takes the model records of an exported study (:attr:`StudyResult.runs`: dicts
with ``dataset``, ``method``, ``setting``, ``seed`` and ``scores``) and computes one finding:

* :func:`variance_explained` — the share of a score's variance that the method alone, or the
  method with its hyperparameter, explains (the R² of a regression on those categories; the rest
  is the seed's), as in the paper's Table 2 (a) and (b);
* :func:`variance_permutation_p` — how often shuffling the scores over the models explains as
  much (the chance level of :func:`variance_explained` with few models per group);
* :func:`seeded` — the models of the settings trained with several seeds: those whose
  variance :func:`variance_explained` can split between the setting and the seed;
* :func:`rank_correlations` — the Spearman rank correlation of every pair of scores over the
  models (the paper's Fig. 2);
* :func:`transfer_success` — how often a model trained with the hyperparameter chosen on one
  dataset / metric beats a random model on another (the paper's 80.7 / 59.3 / 54.9 %);
* :func:`rank_table` — the rank correlations of some scores with others, as a printable table
  with the number of models and the standard error (the paper's Fig. 5, scores against
  downstream accuracy);
* :func:`score_pairs` — two scores of every model side by side (e.g. the Gaussian total
  correlation of the mean against that of the sampled representation, the paper's Fig. 1);
* :func:`with_sample_efficiency` — each model's downstream sample efficiency: the accuracy of
  a predictor trained on 100 codes over that on 10,000 (the paper's Sec. 5.4, Fig. 9–10);
* :func:`factor_kl` — how a model's KL divides among the factors (each active latent counted
  for the factor it explains best), for AnnealedVAE's capacity story (Burgess et al., Fig. 3).

Models without a score are left out of what needs it; nothing is imputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlib.studies.declarations import setting_key

__all__ = ["score_pairs", "seeded", "variance_explained", "variance_permutation_p",
           "rank_correlations", "rank_table",
           "transfer_success", "transfer_by_method",
           "with_sample_efficiency", "factor_kl"]

Run = dict[str, Any]


def _value(run: Run, score: str) -> float | None:
    v = run.get("scores", {}).get(score)
    return None if v is None or not np.isfinite(v) else float(v)


def score_pairs(runs: Sequence[Run], x: str, y: str) -> tuple[np.ndarray, np.ndarray, list[Run]]:
    """``(x values, y values, runs)`` of the models that have both scores."""
    kept = [r for r in runs if _value(r, x) is not None and _value(r, y) is not None]
    return (np.array([_value(r, x) for r in kept]), np.array([_value(r, y) for r in kept]),
            kept)


def _group(run: Run, by: Sequence[str]) -> tuple:
    return tuple(setting_key(run["setting"]) if k == "setting" else run[k] for k in by)


def seeded(runs: Sequence[Run], min_seeds: int = 2) -> list[Run]:
    """The models whose (dataset, method, setting) has at least ``min_seeds`` of them: the only
    ones that say anything about the seed (a setting trained once has no seed-to-seed
    variance), in their original order."""
    groups: dict[tuple, int] = {}
    for r in runs:
        key = (r.get("dataset"), *_group(r, ("method", "setting")))
        groups[key] = groups.get(key, 0) + 1
    return [r for r in runs
            if groups[(r.get("dataset"), *_group(r, ("method", "setting")))] >= min_seeds]


def _score_groups(runs: Sequence[Run], score: str, by: Sequence[str],
                  caller: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores, group index of each) of the models that have ``score``."""
    values = [(v, _group(r, by)) for r in runs if (v := _value(r, score)) is not None]
    if len(values) < 2:
        raise ValueError(f"{caller} needs at least two models with {score!r}")
    y = np.array([v for v, _ in values])
    if float(((y - y.mean()) ** 2).sum()) == 0:
        raise ValueError(f"{score!r} does not vary over the models: nothing to explain")
    names = sorted({g for _, g in values}, key=repr)
    return y, np.array([names.index(g) for _, g in values])


def _r2(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """R² of the group means for each row of ``y`` (..., n): 1 − within SS / total SS."""
    total = ((y - y.mean(-1, keepdims=True)) ** 2).sum(-1)
    k = int(groups.max()) + 1
    onehot = np.eye(k)[groups]                              # (n, k)
    means = (y @ onehot) / onehot.sum(0)                    # (..., k) group means
    within = ((y - means[..., groups]) ** 2).sum(-1)
    return 1.0 - within / total


def variance_explained(runs: Sequence[Run], score: str,
                       by: Sequence[str] = ("method", "setting"),
                       adjusted: bool = False) -> float:
    """The share of ``score``'s variance over the models explained by the categories ``by``:
    1 − (sum of squares within the groups) / (total sum of squares), which is the R² of a
    least-squares regression of the score on one-hot indicators of the groups. With
    ``by=("method",)`` the objective alone; with ``("method", "setting")`` the objective and
    its regularisation strength; what is left is due to the seed.

    With k groups over n models, scores that do not depend on the group at all still give an
    R² of about (k − 1)/(n − 1) on average. ``adjusted=True`` returns the adjusted R²,
    1 − (within / (n − k)) / (total / (n − 1)), which is about 0 for such scores (and can be
    negative); it needs n > k."""
    y, groups = _score_groups(runs, score, by, "variance_explained")
    r2 = float(_r2(y, groups))
    if not adjusted:
        return r2
    n, k = len(y), int(groups.max()) + 1
    if n <= k:
        raise ValueError(f"the adjusted share needs more models ({n}) than groups ({k})")
    return 1.0 - (1.0 - r2) * (n - 1) / (n - k)


def variance_permutation_p(runs: Sequence[Run], score: str,
                           by: Sequence[str] = ("method", "setting"),
                           permutations: int = 9999, seed: int = 0) -> float:
    """How often a random assignment of the scores to the models explains at least as much of
    the variance as the groups ``by`` do: the scores are shuffled over the models (the groups
    kept) ``permutations`` times with ``numpy.random.default_rng(seed)``, and the p-value is
    (1 + number of shuffles whose :func:`variance_explained` is at least the observed one)
    / (1 + ``permutations``). Small values mean the groups explain more than chance."""
    if permutations < 1:
        raise ValueError("permutations must be a positive integer")
    y, groups = _score_groups(runs, score, by, "variance_permutation_p")
    observed = _r2(y, groups)
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(y) for _ in range(permutations)])
    null = _r2(shuffled, groups)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + permutations))


def rank_correlations(runs: Sequence[Run], scores: Sequence[str]) -> np.ndarray:
    """(S, S) Spearman rank correlations of ``scores`` over the models that have all of them
    (average ranks for ties; NaN where a score does not vary)."""
    from scipy.stats import spearmanr

    kept = [r for r in runs if all(_value(r, s) is not None for s in scores)]
    if len(kept) < 3:
        raise ValueError(f"rank_correlations needs at least three models with {list(scores)}")
    table = np.array([[_value(r, s) for s in scores] for r in kept])
    out = np.full((len(scores), len(scores)), np.nan)
    for i in range(len(scores)):
        for j in range(len(scores)):
            a, b = table[:, i], table[:, j]
            if np.ptp(a) > 0 and np.ptp(b) > 0:
                out[i, j] = float(spearmanr(a, b).statistic)
    return out


def rank_table(runs: Sequence[Run], rows: dict[str, str], columns: dict[str, str],
               who: str = "models") -> str:
    """The Spearman correlations of the ``rows`` scores with the ``columns`` scores over
    ``runs`` as text: a heading with the number of models and the standard error of one entry
    (about 1/√(n − 3), Fisher's approximation near ρ = 0) and one line per row. Both dicts map
    a score to its printed label; ``who`` names the models in the heading."""
    scores = (*rows, *columns)
    kept = [r for r in runs if all(_value(r, s) is not None for s in scores)]
    if len(kept) < 4:
        raise ValueError(f"rank_table needs at least four models with {list(scores)}")
    rho = rank_correlations(kept, scores)[:len(rows), len(rows):]
    width = max(len(label) for label in rows.values()) + 2
    lines = [f"Spearman ρ over {len(kept)} {who} (standard error ≈ "
             f"{1 / np.sqrt(len(kept) - 3):.2f})", "",
             " " * width + "".join(f"{label:>10}" for label in columns.values())]
    for label, row in zip(rows.values(), rho, strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>10.2f}" for v in row))
    return "\n".join(lines)


def with_sample_efficiency(runs: Sequence[Run], small: int = 100, large: int = 10_000,
                           predictors: Sequence[str] = ("lr", "gbt")) -> list[Run]:
    """Copies of ``runs`` whose scores gain ``downstream_<p>_efficiency``: the mean test
    accuracy of predictor ``p`` (``lr``: logistic regression, ``gbt``: gradient-boosted trees)
    trained on ``small`` codes divided by that on ``large`` codes. Locatello et al. call this
    ratio (100 over 10,000) the statistical efficiency; near 1 means a few labels already
    reach the accuracy of many. Models without both accuracies get no efficiency."""
    out = []
    for r in runs:
        scores = dict(r.get("scores", {}))
        for p in predictors:
            lo, hi = _value(r, f"downstream_{p}_{small}"), _value(r, f"downstream_{p}_{large}")
            if lo is not None and hi is not None and hi > 0:
                scores[f"downstream_{p}_efficiency"] = lo / hi
        out.append({**r, "scores": scores})
    return out


def _best_setting(runs: Sequence[Run], score: str) -> str | None:
    medians: dict[str, list[float]] = {}
    for r in runs:
        if (v := _value(r, score)) is not None:
            medians.setdefault(setting_key(r["setting"]), []).append(v)
    if not medians:
        return None
    return max(sorted(medians), key=lambda k: float(np.median(medians[k])))


def _beats(chosen: Sequence[float], pool: Sequence[float]) -> float:
    """P(a chosen model beats a random model of the pool), ties counted as half."""
    a, b = np.asarray(chosen)[:, None], np.asarray(pool)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())


def transfer_by_method(source: Sequence[Run], target: Sequence[Run], source_score: str,
                       target_score: str, judge: str = "all") -> dict[str, dict[str, Any]]:
    """Per method, the setting chosen on ``source`` and how often it wins on ``target``.

    For each method present on both sides: choose its setting with the best median
    ``source_score`` over the ``source`` models; then, on ``target``, ``rate`` is the
    probability that a model of the chosen setting beats a model of the same method drawn at
    random (any setting, any seed) on ``target_score`` — exactly, over all pairs (ties count one
    half); ``chosen`` lists the settings chosen and ``models`` the number of target models in
    the pool. When ``source`` and ``target`` are the same models (the paper's "same data set,
    different seed"), each seed of the target is judged with the setting chosen on the *other*
    seeds, so a model never selects itself, and ``rate`` is the mean over those seeds. Methods
    with nothing to judge (no scores, or the chosen setting absent from the target) are left
    out.

    ``judge`` says which models the chosen one is compared with in that same-models case:
    ``"all"`` (the default) every model of the method, including those of the seeds that did
    the choosing; ``"held_out"`` only the held-out seed's own models, so that neither side of
    the comparison was seen by the choice.
    """
    if judge not in ("all", "held_out"):
        raise ValueError(f"judge must be 'all' or 'held_out', got {judge!r}")
    same = source is target or [id(r) for r in source] == [id(r) for r in target]
    if judge == "held_out" and not same:
        raise ValueError("judge='held_out' needs the same models as source and target")
    out: dict[str, dict[str, Any]] = {}
    for method in sorted({r["method"] for r in target} & {r["method"] for r in source}):
        tgt = [r for r in target if r["method"] == method and _value(r, target_score) is not None]
        pool = [_value(r, target_score) for r in tgt]
        if not pool:
            continue
        rates, picks = [], []
        for seed in sorted({r["seed"] for r in tgt}) if same else [None]:
            others = [r for r in source if r["method"] == method and r["seed"] != seed]
            best = _best_setting(others, source_score)
            chosen = [_value(r, target_score) for r in tgt if setting_key(r["setting"]) == best
                      and (seed is None or r["seed"] == seed)]
            judged = pool if judge == "all" else [
                _value(r, target_score) for r in tgt if r["seed"] == seed]
            if chosen:
                rates.append(_beats(chosen, judged))
                picks.append(best)
        if rates:
            out[method] = {"rate": float(np.mean(rates)), "chosen": picks, "models": len(pool)}
    return out


def transfer_success(source: Sequence[Run], target: Sequence[Run], source_score: str,
                     target_score: str) -> float:
    """How often the hyperparameter chosen on ``source`` gives a better model on ``target``:
    the mean over methods of :func:`transfer_by_method`'s ``rate`` (the paper's percentages)."""
    rows = transfer_by_method(source, target, source_score, target_score)
    if not rows:
        raise ValueError("no method has models on both sides with the scores asked for")
    return float(np.mean([row["rate"] for row in rows.values()]))


def factor_kl(kl: Sequence[float], r2: Any, factor_names: Sequence[str],
              threshold: float = 0.01) -> dict[str, float]:
    """The KL (nats) of each factor: the KL of every active latent (above ``threshold``),
    credited to the factor whose row of the factor × latent R² map ``r2`` (factors, latents)
    is largest in that latent's column; ``"none"`` collects active latents that explain no
    factor (best R² below 0.1). Sums to the active latents' total KL."""
    kl = np.asarray(kl, dtype=float)
    r2 = np.asarray(r2, dtype=float)
    if r2.shape != (len(factor_names), len(kl)):
        raise ValueError(f"r2 must be (factors, latents) = ({len(factor_names)}, {len(kl)}), "
                         f"got {r2.shape}")
    out = {name: 0.0 for name in factor_names}
    out["none"] = 0.0
    for j in np.flatnonzero(kl > threshold):
        best = int(np.argmax(r2[:, j]))
        out[factor_names[best] if r2[best, j] >= 0.1 else "none"] += float(kl[j])
    return out
