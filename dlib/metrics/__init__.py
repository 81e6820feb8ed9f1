"""Disentanglement metrics: array-level scores and disentanglement_lib's evaluation harness.

``compute(name, data, represent, random_state, **options)`` runs one metric the way
disentanglement_lib runs it (same sampling stream, study defaults, same result keys)::

    rs = np.random.RandomState(0)
    dlib.metrics.compute("mig", data, represent, rs)            # {"discrete_mig": ...}

Each metric also has array-level functions in its own module (codes ``(N, D)`` and integer
factor classes ``(N, F)``, points first), e.g. :func:`dlib.metrics.mig.mig`. The package exports
:func:`compute`, :data:`METRICS`, every harness function ``compute_*`` and the shared helpers of
:mod:`dlib.metrics.utils`; a submodule stays importable by its name (``from dlib.metrics import
dci`` gives the module :mod:`dlib.metrics.dci`, whose array-level function is ``dci.dci``), so
no exported name shadows a submodule.

Submodules: ``beta_vae``, ``factor_vae`` (intervention metrics), ``mig``, ``nmi``,
``modularity_explicitness`` (information), ``dci``, ``sap`` (predictors), ``irs``,
``unsupervised``, ``udr`` (chapters/08_irs_and_unsupervised), ``translation`` (image
translation), ``downstream`` (downstream classification), ``utils`` (sampling,
discretisation, mutual information),
``fast_gbt`` (DCI's default regressor), ``gallery`` and ``toy`` (synthetic representations),
``reference`` (disentanglement_lib's own code, when installed).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from dlib.metrics import (
    beta_vae,
    dci,
    downstream,
    factor_vae,
    irs,
    mig,
    modularity_explicitness,
    nmi,
    sap,
    translation,
    udr,
    unsupervised,
    utils,
)
from dlib.metrics.beta_vae import compute_beta_vae
from dlib.metrics.dci import compute_dci
from dlib.metrics.downstream import compute_downstream_task, compute_downstream_task_gbt
from dlib.metrics.factor_vae import compute_factor_vae
from dlib.metrics.irs import compute_irs
from dlib.metrics.mig import compute_mig, mutual_info_matrix
from dlib.metrics.modularity_explicitness import (
    compute_modularity_explicitness,
    explicitness,
    modularity,
)
from dlib.metrics.nmi import max_m_nmi, nmi_matrix
from dlib.metrics.sap import compute_sap
from dlib.metrics.translation import compute_translation
from dlib.metrics.udr import compute_udr
from dlib.metrics.unsupervised import compute_unsupervised, unsupervised_scores
from dlib.metrics.utils import (
    histogram_discretize,
    sample_codes_factors,
    sampled_representation,
    torch_representation,
)

__all__ = [
    "beta_vae",
    "dci",
    "downstream",
    "factor_vae",
    "irs",
    "mig",
    "modularity_explicitness",
    "nmi",
    "sap",
    "translation",
    "udr",
    "unsupervised",
    "utils",
    "METRICS",
    "compute",
    "compute_mig",
    "compute_factor_vae",
    "compute_beta_vae",
    "compute_dci",
    "compute_downstream_task",
    "compute_downstream_task_gbt",
    "compute_sap",
    "compute_modularity_explicitness",
    "compute_irs",
    "compute_unsupervised",
    "modularity",
    "explicitness",
    "unsupervised_scores",
    "compute_udr",
    "max_m_nmi",
    "nmi_matrix",
    "mutual_info_matrix",
    "histogram_discretize",
    "sample_codes_factors",
    "sampled_representation",
    "torch_representation",
    "compute_translation",
]

METRICS: dict[str, Callable[..., dict]] = {
    "beta_vae": compute_beta_vae,
    "factor_vae": compute_factor_vae,
    "dci": compute_dci,
    "sap": compute_sap,
    "modularity_explicitness": compute_modularity_explicitness,
    "irs": compute_irs,
    "unsupervised": compute_unsupervised,
    "udr": compute_udr,
    "mig": compute_mig,
    "translation": compute_translation,
    "downstream_task": compute_downstream_task,
    "downstream_task_gbt": compute_downstream_task_gbt,
}
"""Harness function of each metric name. disentanglement_lib's gin names: ``beta_vae_sklearn``,
``factor_vae_score``, ``mig``, ``dci``, ``sap_score``, ``modularity_explicitness``, ``irs``,
``unsupervised_metrics``, ``udr_sklearn``, ``downstream_task``."""


def compute(name: str, data, represent, random_state: np.random.RandomState | int, **options):
    """Run metric ``name`` on ``data`` with ``represent`` and the given RandomState (or seed).

    ``options`` are the metric's keyword arguments, named as in disentanglement_lib
    (``num_train``, ``num_test``, ``num_eval``, ``batch_size``, ...); defaults are the
    Locatello et al. study settings. Returns a dict with disentanglement_lib's result keys.
    For ``"udr"``, ``represent`` is a list of functions returning ``(codes, kl)``.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}")
    fn = METRICS[name]
    params = inspect.signature(fn).parameters
    unknown = sorted(set(options) - set(list(params)[3:]))
    if unknown:
        allowed = ", ".join(list(params)[3:])
        raise TypeError(f"{name}: unknown option(s) {unknown}; it takes {allowed}")
    return fn(data, represent, random_state, **options)
