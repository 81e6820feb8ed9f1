"""Reading an exported study: :func:`load` and :class:`StudyResult`.

``book/results/<study>/index.json`` (format ``dlib-study/1``) holds the study's declaration,
the scale, how many of the planned models are finished and the run record (command, commit,
dirty flag, device, torch and Ray versions, wall time); ``runs/<model>.json`` holds one model's
record — grid point, seed, options, ``scores`` (flat headline numbers), ``metrics`` (every
scalar a metric returned), the per-dimension ``kl``, a ``history`` summary and what the
study's evaluators added — with the provenance of the trial that made it; ``runs/<model>.npz``
its small arrays (traversals).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dlib import results as _results
from dlib.studies.declarations import setting_key
from dlib.studies.evaluators import FAILURE_MIG

__all__ = ["INDEX_FORMAT", "StudyResult", "load", "spearman", "missing_message"]

INDEX_FORMAT = "dlib-study/1"  #: the format of an exported study's index.json


def missing_message(name: str) -> str:
    """What to say when study ``name`` has no exported results: the commands that make them."""
    run, export = (f"python -m dlib.studies {verb} {name} --scale full"
                   for verb in ("run", "export"))
    return (f"{name}: no results in book/results/{name}/ yet. They are made (resumable; on a "
            f"GPU or a cluster for the full scale) by\n    {run}\n    {export}")


class StudyResult:
    """An exported study: its models (``runs``), scores by setting, tables and traversals."""

    SCORES = ("factor_vae", "mig", "dci", "sap", "recon")
    LABELS = {"factor_vae": "FactorVAE score", "mig": "MIG", "dci": "DCI disentanglement",
              "sap": "SAP", "recon": "recon. error (nats)", "dci_completeness": "DCI completeness",
              "dci_informativeness": "DCI informativeness", "beta_vae": "BetaVAE score",
              "irs": "IRS", "translation_loss": "translation loss"}

    def __init__(self, index: _results.Result, runs: list[_results.Result]) -> None:
        self.index = index
        self.data = index.data
        self.provenance = index.provenance
        self._results = {r.data["key"]: r for r in runs}
        self.runs: list[dict[str, Any]] = [r.data for r in runs]
        self.description: str = self.data.get("description", "")

    def note(self) -> str:
        """Which run produced these results, at which scale, and whether it is complete."""
        p = self.provenance
        dirty = p.get("dirty")
        state = " (dirty)" if dirty else (" (tree state unknown)" if dirty is None else "")
        commit = (p["commit"][:7] if p.get("commit") else "unknown commit") + state
        wall = p.get("wall_s")
        runs = p.get("runs") or []
        scale = self.data.get("scale", {})
        where = f"at {commit} on {p.get('device', '?')}, {(p.get('started_utc') or '?')[:10]}"
        if len(runs) > 1:  # the index's wall time is the sum over its runs, not the latest's
            ended = sum(isinstance(r.get("wall_s"), (int, float)) for r in runs)
            took = (f"; {wall / 3600:.1f} h of wall time over the {ended} that had ended at "
                    f"export" if isinstance(wall, (int, float)) and ended else "")
            text = (f"Results of {len(runs)} runs of the studies runner (the latest: "
                    f"`{p.get('command', '?')}` {where}){took}")
        else:
            took = f", {wall / 60:.1f} min" if isinstance(wall, (int, float)) else ""
            text = f"Results of `{p.get('command', '?')}` {where}{took}"
        text += f"; {scale.get('name', '?')} scale, {self.data.get('steps', '?'):,} steps."
        if not self.data.get("complete"):
            text += (f" Partial: {self.data.get('finished_models')} of "
                     f"{self.data.get('planned_models')} planned models.")
        return text

    def select(self, **where: Any) -> list[dict[str, Any]]:
        """The runs whose fields equal ``where`` (``method=``, ``dataset=``, ``setting=`` as a
        key such as ``"beta=4"``, ``seed=``)."""
        out = []
        for r in self.runs:
            ok = all((setting_key(r["setting"]) == v) if k == "setting" else r.get(k) == v
                     for k, v in where.items())
            if ok:
                out.append(r)
        return out

    def settings(self) -> list[str]:
        """The setting keys in grid order (``"beta=4"``, ...)."""
        seen: list[str] = []
        for arm in self.data["declaration"]["arms"]:
            for s in arm["settings"]:
                key = setting_key(s)
                if key not in seen:
                    seen.append(key)
        return seen

    def scores(self, score: str, setting: str | None = None, **where: Any) -> np.ndarray:
        """One score over the seeds of a setting (the first setting by default); NaN where a
        model has none."""
        setting = setting or self.settings()[0]
        vals = [r["scores"].get(score) for r in self.select(setting=setting, **where)]
        return np.array([np.nan if v is None else v for v in vals], dtype=float)

    def summary(self, **where: Any) -> dict[str, dict[str, tuple[float, float, int]]]:
        """``{setting: {score: (mean, std, n)}}`` over seeds (std with ddof=1; nan when n < 2)."""
        out: dict[str, dict[str, tuple[float, float, int]]] = {}
        for setting in self.settings():
            row = {}
            names = sorted({k for r in self.select(setting=setting, **where) for k in r["scores"]})
            for score in names:
                v = self.scores(score, setting, **where)
                v = v[np.isfinite(v)]
                if len(v):
                    std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
                    row[score] = (float(v.mean()), std, int(len(v)))
            if row:
                out[setting] = row
        return out

    def table(self, scores: tuple[str, ...] | None = None, **where: Any) -> _results.Table:
        """Mean ± std (n seeds) per setting, as an HTML table in Jupyter (text elsewhere)."""
        scores = scores or self.SCORES
        header = ["setting", *[self.LABELS.get(s, s) for s in scores]]
        rows = []
        for setting, row in self.summary(**where).items():
            cells = [setting]
            for s in scores:
                if s in row:
                    m, sd, n = row[s]
                    cells.append(f"{m:.3g} ± {sd:.2g} (n={n})" if n > 1 else f"{m:.3g} (n=1)")
                else:
                    cells.append("–")
            rows.append(cells)
        return _results.Table(header, rows)

    def _ranked(self, setting: str | None) -> list[dict[str, Any]]:
        setting = setting or self.settings()[0]
        done = [r for r in self.select(setting=setting) if "traversal" in r.get("arrays", [])]
        if not done:
            raise KeyError(f"no model of setting {setting!r} has a traversal")
        return sorted(done, key=lambda r: -(r["scores"].get("mig") or 0.0))

    def traversal(self, which: str = "best", setting: str | None = None) -> np.ndarray:
        """uint8 traversals (rows, values, C, H, W) of the best or worst seed (by MIG)."""
        if which not in ("best", "worst"):
            raise ValueError("which must be 'best' or 'worst'")
        run = self._ranked(setting)[0 if which == "best" else -1]
        return self._results[run["key"]].arrays["traversal"]

    def traversal_seed(self, which: str = "best", setting: str | None = None) -> int:
        """The seed whose traversal :meth:`traversal` shows."""
        return int(self._ranked(setting)[0 if which == "best" else -1]["seed"])

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        """The arrays saved with model ``key``."""
        return self._results[key].arrays

    # ---- unsupervised model selection -------------------------------------------------------
    def udr(self, correlation_matrix: str = "lasso") -> dict[str, float]:
        """UDR (Duan et al.) of every model, ``{key: score}``: each model against the other
        seeds of its dataset, method and setting, on the codes of the same fixed images that
        the ``encoded_metrics`` evaluator keeps (``udr_mean``, ``udr_logvar``; the KL of each
        latent averaged over those images). Models without such codes, or without a second
        seed, get none."""
        import torch

        from dlib.distributions import gaussian_kl
        from dlib.metrics.udr import udr

        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in self.runs:
            if {"udr_mean", "udr_logvar"} <= set(r.get("arrays", [])):
                key = (r["dataset"], r["method"], setting_key(r["setting"]))
                groups.setdefault(key, []).append(r)
        out: dict[str, float] = {}
        for runs in groups.values():
            if len(runs) < 2:
                continue
            codes, kls, index = [], [], None
            for r in runs:
                a = self._results[r["key"]].arrays
                if index is not None and not np.array_equal(a["udr_index"], index):
                    raise ValueError(f"{r['key']}: its UDR codes are of other images")
                index = a["udr_index"]
                mean = a["udr_mean"].astype(np.float32)
                logvar = a["udr_logvar"].astype(np.float32)
                codes.append(mean)
                kls.append(gaussian_kl(torch.from_numpy(mean), torch.from_numpy(logvar))
                           .double().mean(0).numpy())
            scores = udr(codes, kls, correlation_matrix=correlation_matrix,
                         include_raw_correlations=False)["model_scores"]
            out.update({r["key"]: float(v) for r, v in zip(runs, scores, strict=True)})
        return out

    # ---- DEFT's view --------------------------------------------------------------------------
    def failure_rate(self, method: str, dataset: str) -> tuple[float, int]:
        """(% of models with MIG < 0.1, number of models) of ``method`` on ``dataset``."""
        v = np.array([r["scores"]["mig"] for r in self.select(method=method, dataset=dataset)],
                     dtype=float)
        return (float(100 * np.mean(v < FAILURE_MIG)) if len(v) else float("nan"), len(v))

    def failure_interval(self, method: str, dataset: str, level: float = 0.95
                         ) -> tuple[float, float]:
        """Wilson score interval (%) of the failure rate of ``method`` on ``dataset``."""
        v = [r["scores"]["mig"] for r in self.select(method=method, dataset=dataset)]
        return wilson_interval(int(np.sum(np.asarray(v, dtype=float) < FAILURE_MIG)), len(v),
                               level)

    def stage_migs(self, dataset: str, method: str = "deft") -> np.ndarray:
        """MIG at the end of every stage, (models, stages)."""
        return np.array([r["stage_mig"] for r in self.select(method=method, dataset=dataset)],
                        dtype=float)

    def failure_table(self, paper: dict[str, dict[str, float]] | None = None,
                      trained_only: bool = False) -> _results.Table:
        """Failure rate (%, MIG < 0.1) per method and dataset with its 95 % Wilson interval,
        beside ``paper``'s numbers (``{dataset: {method: %}}``) where given. ``trained_only``
        leaves out the declared methods and datasets that have no model yet."""
        from dlib.methods import registry

        decl = self.data["declaration"]
        datasets, methods = decl["datasets"], [a["method"] for a in decl["arms"]]
        if trained_only:
            datasets = [d for d in datasets if self.select(dataset=d)]
            methods = [m for m in methods if self.select(method=m)]
        header = ["method"]
        for d in datasets:
            header += [f"{d}: ours"] + ([f"{d}: paper"] if paper else [])
        rows = []
        for m in methods:
            cells = [registry.get(m).label]
            for d in datasets:
                rate, n = self.failure_rate(m, d)
                low, high = self.failure_interval(m, d)
                cells.append(f"{rate:.0f} % [{low:.0f}, {high:.0f}] (n={n})" if n else "–")
                if paper:
                    value = paper.get(d, {}).get(m)
                    cells.append("–" if value is None else f"{value:.1f} %")
            rows.append(cells)
        return _results.Table(header, rows)

    def __repr__(self) -> str:
        return f"StudyResult({self.data['study']}: {self.note()})"


def load(name: str, root: str | os.PathLike | None = None, quiet: bool = False
         ) -> StudyResult | None:
    """The exported results of study ``name``; ``None`` (after printing what is missing and the
    commands that make it, unless ``quiet``) when there are none yet."""
    from pathlib import Path

    index = _results.load(f"{name}/index", root=root)
    if index is None:
        if not quiet:
            print(missing_message(name))
        return None
    if index.data.get("format") != INDEX_FORMAT:
        raise ValueError(f"{index.path} is not a dlib study index (format "
                         f"{index.data.get('format')!r})")
    base = Path(root) if root is not None else _results.results_dir()
    runs = []
    for key in index.data["models"]:
        res = _results.load(f"{name}/runs/{key}", root=base)
        if res is None:
            raise FileNotFoundError(f"{base / name / 'runs' / key}.json is listed in the index "
                                    "but missing; export the study again")
        runs.append(res)
    return StudyResult(index, runs)


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval (in %) of a proportion ``k / n``: unlike the normal
    approximation it stays inside [0, 100] and is not empty at k = 0 or k = n, which matters
    for failure rates over ten seeds. ``(nan, nan)`` for n = 0."""
    from scipy.stats import norm

    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(100 * max(0.0, centre - half)), float(100 * min(1.0, centre + half))


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None with < 3 points or no spread."""
    from scipy.stats import spearmanr

    if len(a) != len(b):
        raise ValueError("spearman needs two lists of the same length")
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)
