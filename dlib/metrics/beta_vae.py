"""BetaVAE score (Higgins et al. 2017), as disentanglement_lib computes it.

Each point: pick a factor k, draw two batches that share factor k, and average |z1 - z2| over
the pairs; the dimensions that encode k are near zero. A linear classifier predicts k from that
feature vector; the score is its accuracy on fresh points.

Holds :func:`difference_features` and :func:`compute_beta_vae`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression

from dlib.metrics.utils import (
    Represent,
    _checked_output,
    as_random_state,
    check_positive_int,
    stack_outputs,
)

__all__ = ["difference_features", "compute_beta_vae"]


def difference_features(
    data, represent: Represent, batch_size: int, num_points: int, rs: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(num_points, D)`` = mean |z1 - z2| over pairs sharing one factor, and labels.

    Stream per point (as disentanglement_lib): ``randint(F)``, factors of batch 1, factors of
    batch 2, observations 1, observations 2.
    """
    labels = np.zeros(num_points, dtype=np.int64)
    out1, out2, dims = [], [], []
    for t in range(num_points):
        k = rs.randint(data.num_factors)
        f1 = data.sample_factors(batch_size, rs)
        f2 = data.sample_factors(batch_size, rs)
        f2[:, k] = f1[:, k]
        x1 = data.sample_observations_from_factors(f1, rs)
        x2 = data.sample_observations_from_factors(f2, rs)
        labels[t] = k
        out1.append(_checked_output(represent(x1), batch_size, dims))
        out2.append(_checked_output(represent(x2), batch_size, dims))
    z1 = stack_outputs(out1).reshape(num_points, batch_size, -1)
    z2 = stack_outputs(out2).reshape(num_points, batch_size, -1)
    return np.mean(np.abs(z1 - z2), axis=1).astype(np.float64), labels


def _default_model(rs: np.random.RandomState):
    return LogisticRegression(random_state=rs)


def compute_beta_vae(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    model: Callable[[np.random.RandomState], object] = _default_model,
) -> dict[str, float]:
    """BetaVAE score with the study's settings: ``{train_accuracy, eval_accuracy}``.

    ``model(rs)`` builds the classifier; the default is disentanglement_lib's
    ``LogisticRegression(random_state=rs)`` with sklearn's other defaults and no feature
    scaling. **Depends on the sklearn version:** the defaults were liblinear one-vs-rest up to
    sklearn 0.21 and are lbfgs multinomial (100 iterations) since 0.22; liblinear also draws
    from ``rs`` while fitting, which shifts the eval sample. Pass e.g.
    ``lambda rs: OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=rs))``
    to approximate the study's classifier. Known weakness: the score reaches 100 % when only
    F - 1 factors are disentangled (the missing one is recognised by elimination).
    """
    rs = as_random_state(random_state)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(num_train, "num_train")
    check_positive_int(num_eval, "num_eval")
    x_train, y_train = difference_features(data, represent, batch_size, num_train, rs)
    clf = model(rs)
    clf.fit(x_train, y_train)
    train_accuracy = float(np.mean(clf.predict(x_train) == y_train))
    x_eval, y_eval = difference_features(data, represent, batch_size, num_eval, rs)
    eval_accuracy = float(np.mean(clf.predict(x_eval) == y_eval))
    return {"train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}
