"""Downstream task: how well simple classifiers predict each factor from few codes.

Locatello et al. (2019, Sec. 5.4) ask whether disentangled codes make later learning cheaper.
For each training-set size ``n`` in ``num_train`` (the study: 10, 100, 1,000 and 10,000), they
draw ``n`` codes with their factors, fit one classifier per factor (a cross-validated logistic
regression, or gradient-boosted trees), and report its accuracy on ``num_test`` (5,000) fresh
draws. Sample efficiency is the ratio of the accuracy at 100 codes to the accuracy at 10,000.

This module holds the array-level :func:`downstream_accuracies` and the harness
:func:`compute_downstream_task`, which draws points with disentanglement_lib's stream (the train
set, then the test set, for each size in turn) and returns its result keys
(``"100:mean_test_accuracy"``, ``"100:test_accuracy_factor_0"``, ...).

One deliberate difference: a factor that takes a single value in a small training sample makes
scikit-learn's classifiers raise (and disentanglement_lib crash). ``dlib`` then predicts that
value — the only consistent classifier — and counts such fits in ``"<n>:num_constant_fits"``.
And the trees are seeded (``random_state=0``), so a score is reproducible.

Holds :func:`downstream_accuracies`, :func:`compute_downstream_task` and :func:`sample_efficiency`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold

from dlib.metrics.utils import (
    Represent,
    as_random_state,
    check_pair,
    check_positive_int,
    sample_codes_factors,
)

__all__ = ["PREDICTORS", "downstream_accuracies", "compute_downstream_task",
           "compute_downstream_task_gbt", "sample_efficiency"]


def _logistic_regression_cv() -> Any:
    """disentanglement_lib's ``logistic_regression_cv``: 10 values of C, 5 unshuffled folds, L2,
    model selection by accuracy. scikit-learn 1.9 announces new defaults for ``scoring`` and the
    penalty; we pass the old meaning explicitly where the installed version takes it."""
    params = inspect.signature(LogisticRegressionCV).parameters
    extra: dict[str, Any] = {}
    if "scoring" in params:
        extra["scoring"] = "accuracy"
    if params.get("l1_ratios") is not None and params["l1_ratios"].default == "warn":
        extra["l1_ratios"] = (0.0,)  # pure L2, the old default penalty
    if "use_legacy_attributes" in params:
        extra["use_legacy_attributes"] = False
    return LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5), **extra)


def _gradient_boosting() -> Any:
    """disentanglement_lib's ``gradient_boosting_classifier`` (scikit-learn's defaults), seeded:
    the original leaves ``random_state`` unset, so its trees, which break split ties at random,
    give different scores from run to run."""
    return GradientBoostingClassifier(random_state=0)


def _fast_gradient_boosting() -> Any:
    """The same model as ``gradient_boosting_classifier`` grown from features sorted once
    (:class:`dlib.metrics.fast_gbt.FastGradientBoosting`, needs numba): the same trees up to
    ties in a split's improvement (a different choice there changes the later stages, so test
    accuracies can differ by a few points), about eight to nine times faster at 1,000 codes
    (3 and 32 classes, one core) — what makes the study's 10,000-code fits affordable on a
    CPU."""
    from dlib.metrics.fast_gbt import FastGradientBoosting

    return FastGradientBoosting(random_state=0)


PREDICTORS: dict[str, Callable[[], Any]] = {
    "logistic_regression_cv": _logistic_regression_cv,
    "gradient_boosting_classifier": _gradient_boosting,
    "fast_gradient_boosting_classifier": _fast_gradient_boosting,
}
"""The two classifiers of the study, by disentanglement_lib's gin names, and the trees'
faster twin (``fast_gradient_boosting_classifier``)."""


class _Constant:
    """The classifier of a factor that shows one value in the training sample."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.value)


def _predictor(name: str) -> Callable[[], Any]:
    if name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose one of {sorted(PREDICTORS)}")
    return PREDICTORS[name]


def downstream_accuracies(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    predictor: str = "logistic_regression_cv",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Train and test accuracy of one classifier per factor; codes ``(N, D)``, factors ``(N, F)``.

    Returns ``(train_accuracy (F,), test_accuracy (F,), number of constant fits)``.
    """
    codes, factors = check_pair(codes, factors)
    codes_test, factors_test = check_pair(codes_test, factors_test, "codes_test", "factors_test")
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise ValueError(
            f"train and test sets must have the same widths: codes {codes.shape[1]} vs "
            f"{codes_test.shape[1]}, factors {factors.shape[1]} vs {factors_test.shape[1]}")
    make = _predictor(predictor)
    train_acc, test_acc, constant = [], [], 0
    for j in range(factors.shape[1]):
        y, y_test = factors[:, j], factors_test[:, j]
        if np.unique(y).size < 2:
            model: Any = _Constant(y[0])
            constant += 1
        else:
            model = make()
            model.fit(codes, y)
        train_acc.append(np.mean(model.predict(codes) == y))
        test_acc.append(np.mean(model.predict(codes_test) == y_test))
    return np.asarray(train_acc), np.asarray(test_acc), constant


def compute_downstream_task(
    data: Any,
    represent: Represent,
    random_state: np.random.RandomState | int,
    num_train: Sequence[int] = (10, 100, 1000, 10000),
    num_test: int = 5000,
    batch_size: int = 16,
    predictor: str = "logistic_regression_cv",
) -> dict[str, float]:
    """disentanglement_lib's ``downstream_task`` with the study's defaults.

    For each size in ``num_train``: ``num_train`` training points, then ``num_test`` test
    points, drawn in chunks of ``batch_size`` from one stream; one ``predictor`` per factor.
    """
    rs = as_random_state(random_state)
    sizes = [check_positive_int(n, "num_train") for n in np.atleast_1d(num_train).tolist()]
    num_test = check_positive_int(num_test, "num_test")
    _predictor(predictor)  # a clear error before any sampling
    scores: dict[str, float] = {}
    for n in sizes:
        codes, factors = sample_codes_factors(data, represent, n, rs, batch_size)
        codes_test, factors_test = sample_codes_factors(data, represent, num_test, rs, batch_size)
        train_acc, test_acc, constant = downstream_accuracies(
            codes, factors, codes_test, factors_test, predictor)
        key = str(n)
        scores[f"{key}:mean_train_accuracy"] = float(np.mean(train_acc))
        scores[f"{key}:mean_test_accuracy"] = float(np.mean(test_acc))
        scores[f"{key}:min_train_accuracy"] = float(np.min(train_acc))
        scores[f"{key}:min_test_accuracy"] = float(np.min(test_acc))
        for j, (a, b) in enumerate(zip(train_acc, test_acc, strict=True)):
            scores[f"{key}:train_accuracy_factor_{j}"] = float(a)
            scores[f"{key}:test_accuracy_factor_{j}"] = float(b)
        scores[f"{key}:num_constant_fits"] = float(constant)
    return scores


def compute_downstream_task_gbt(
    data: Any,
    represent: Represent,
    random_state: np.random.RandomState | int,
    num_train: Sequence[int] = (10, 100, 1000, 10000),
    num_test: int = 5000,
    batch_size: int = 16,
    predictor: str = "fast_gradient_boosting_classifier",
) -> dict[str, float]:
    """:func:`compute_downstream_task` with gradient-boosted trees (the study's second
    predictor; the fast twin of scikit-learn's by default)."""
    return compute_downstream_task(data, represent, random_state, num_train, num_test,
                                   batch_size, predictor)


def sample_efficiency(scores: dict[str, float], small: int = 100, large: int = 10000) -> float:
    """Locatello et al.'s sample efficiency: mean test accuracy at ``small`` over ``large``."""
    try:
        low = scores[f"{small}:mean_test_accuracy"]
        high = scores[f"{large}:mean_test_accuracy"]
    except KeyError as err:
        raise KeyError(f"scores lack {err.args[0]!r}; compute both sizes first") from err
    if high <= 0:
        raise ValueError(f"mean test accuracy at {large} is {high}; the ratio is undefined")
    return float(low / high)
