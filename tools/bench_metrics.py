"""Time every metric at the study's settings, dlib next to disentanglement_lib, same input.

    python tools/bench_metrics.py                    # all metrics, both libraries
    python tools/bench_metrics.py --metrics mig dci --no-reference

The input is dSprites' factor grid with observations = factor classes (no rendering, so the
time is the metric's own) and a partly entangled 10-d float32 code. Both libraries get a fresh
``RandomState(0)``. Prints seconds and the largest difference of the result values.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from dlib.metrics import compute
from dlib.metrics.reference import load_reference
from dlib.metrics.toy import DSPRITES_SIZES, FactorsAsObservations, flat

STUDY = {
    "beta_vae": ("beta_vae", "compute_beta_vae_sklearn",
                 dict(batch_size=64, num_train=10000, num_eval=5000)),
    "factor_vae": ("factor_vae", "compute_factor_vae",
                   dict(batch_size=64, num_train=10000, num_eval=5000,
                        num_variance_estimate=10000)),
    "mig": ("mig", "compute_mig", dict(num_train=10000)),
    "dci": ("dci", "compute_dci", dict(num_train=10000, num_test=5000)),  # model "auto"
    "sap": ("sap_score", "compute_sap",
            dict(num_train=10000, num_test=5000, continuous_factors=False)),
    "modularity_explicitness": ("modularity_explicitness", "compute_modularity_explicitness",
                                dict(num_train=10000, num_test=5000)),
    "irs": ("irs", "compute_irs", dict(num_train=10000, batch_size=16)),
    "unsupervised": ("unsupervised_metrics", "unsupervised_metrics", dict(num_train=10000)),
}


def representation(dims: int = 10, seed: int = 0):
    """A float32 code: each factor (scaled to [0, 1]) on its own axis, plus a random mix."""
    a = np.random.RandomState(seed).randn(len(DSPRITES_SIZES), dims).astype(np.float32) * 0.3
    a[:, : len(DSPRITES_SIZES)] += np.eye(len(DSPRITES_SIZES), dtype=np.float32)
    scale = np.array(DSPRITES_SIZES, np.float32) - 1

    def rep(x):
        return (flat(x) / scale) @ a

    return rep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="*", default=list(STUDY))
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    data, rep = FactorsAsObservations(noise=0.0), representation()
    ref = None
    if not args.no_reference:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = load_reference()
        except ImportError as err:
            print(f"reference unavailable: {err}")
    print(f"{'metric':<25}{'dlib s':>9}{'ref s':>9}  max |diff|  dlib values")
    total = 0.0
    for name in args.metrics:
        module, fn, kw = STUDY[name]
        t0 = time.perf_counter()
        ours = compute(name, data, rep, np.random.RandomState(0), **kw)
        ours_s = time.perf_counter() - t0
        total += ours_s
        ref_s, diff = float("nan"), float("nan")
        if ref is not None:
            np.random.seed(0)
            t0 = time.perf_counter()
            theirs = getattr(getattr(ref, module), fn)(data, rep, np.random.RandomState(0), **kw)
            ref_s = time.perf_counter() - t0
            diff = max(abs(float(ours[k]) - float(theirs[k])) for k in theirs
                       if k != "num_active_dims")
        vals = ", ".join(f"{k}={float(v):.4f}" for k, v in ours.items())
        print(f"{name:<25}{ours_s:9.2f}{ref_s:9.2f}  {diff:10.2e}  {vals}", flush=True)
    print(f"{'total dlib':<25}{total:9.2f}")


if __name__ == "__main__":
    main()
