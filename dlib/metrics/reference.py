"""Load disentanglement_lib's metric modules without TensorFlow (for cross-checks and benches).

The metric modules only need ``gin.tf`` for ``gin.configurable``; aliasing it to ``gin`` makes
them importable. Requires ``pip install disentanglement-lib==1.5 --no-deps gin-config==0.4.0
six absl-py`` (gin-config 0.5 rejects the ``blacklist=`` keyword the modules use).

Holds :func:`load_reference`.
"""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

__all__ = ["INSTALL", "load_reference"]

INSTALL = "pip install disentanglement-lib==1.5 --no-deps gin-config==0.4.0 six absl-py"

_MODULES = ["utils", "beta_vae", "factor_vae", "mig", "dci", "sap_score",
            "modularity_explicitness", "irs", "unsupervised_metrics", "downstream_task"]


def load_reference(num_bins: int = 20, prune_threshold: float = 0.05) -> SimpleNamespace:
    """disentanglement_lib's metric modules with the study's gin bindings.

    Raises ImportError (with the install command) when the package or gin-config 0.4 is absent.
    """
    try:
        import gin

        sys.modules.setdefault("gin.tf", gin)
        mods = {
            m: importlib.import_module(f"disentanglement_lib.evaluation.metrics.{m}")
            for m in _MODULES
        }
    except Exception as err:  # noqa: BLE001 - any failure means: unavailable
        raise ImportError(f"disentanglement_lib is not importable ({err}); {INSTALL}") from err
    gin.clear_config()
    gin.bind_parameter("discretizer.discretizer_fn", mods["utils"]._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", num_bins)
    gin.bind_parameter("prune_dims.threshold", prune_threshold)
    return SimpleNamespace(**mods)
