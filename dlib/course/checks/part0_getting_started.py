"""Self-checks of Getting started: the preface (chapters/00_preface).

Holds the check of ``pre-ex-beta``; its targets are hidden digests (:class:`Hidden`).
"""

from __future__ import annotations

from typing import Any

from dlib.course.checks.core import Hidden, as_number, exercise_check, parts

# Preface ----------------------------------------------------------------------------------------

@exercise_check("pre-ex-beta", answer="a dict with 'beta_sum_shapes' and 'beta_mean_dsprites'")
def _pre_ex_beta(answer: Any) -> list[str]:
    values = {k: as_number(v, k)
              for k, v in parts(answer, ("beta_sum_shapes", "beta_mean_dsprites")).items()}
    targets = {
        "beta_sum_shapes": Hidden(
            "a51aadc78bf1dec6048d", positive=True, mistakes={
                "a1321093a6b6841b5291": "that is the conversion in the other direction "
                                        "(β_mean from β_sum).",
                "af00c568a7c9c3f0ef01": "count all three colour channels in P = H·W·C.",
            }),
        "beta_mean_dsprites": Hidden(
            "e59fb761510755b61ee5", positive=True, mistakes={
                "ff2281ce0132e54eb136": "that is the conversion in the other direction "
                                        "(β_sum from β_mean).",
            }),
    }
    return [p for key, hidden in targets.items()
            for p in hidden.problems("pre-ex-beta", key, values[key])]
