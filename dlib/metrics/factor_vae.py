"""FactorVAE score (Kim & Mnih 2018), as disentanglement_lib computes it.

Fix one factor k, draw a batch, and find the code dimension whose variance (divided by its
global variance) is smallest: that dimension "votes" for k. A majority-vote classifier maps each
dimension to a factor; the score is its accuracy on fresh votes.

Holds :func:`global_variances`, :func:`active_dims`, :func:`vote_matrix`, :func:`vote_accuracy`,
:func:`local_variances` and :func:`compute_factor_vae`.
"""

from __future__ import annotations

import numpy as np

from dlib.metrics.utils import (
    Represent,
    _checked_output,
    as_random_state,
    check_positive_int,
    represent_batches,
    stack_outputs,
)

__all__ = [
    "global_variances",
    "active_dims",
    "local_variances",
    "vote_matrix",
    "vote_accuracy",
    "compute_factor_vae",
]


def global_variances(codes: np.ndarray) -> np.ndarray:
    """Per-dimension sample variance (ddof 1) of codes ``(N, D)``."""
    return np.var(codes, axis=0, ddof=1)


def active_dims(variances: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Mask of dimensions whose global std reaches ``threshold`` (and whose variance is > 0).

    disentanglement_lib's code default is threshold 0; then a constant dimension gives 0/0 = NaN
    ratios, ``argmin`` picks the NaN and every vote lands on it. ``dlib`` always drops dimensions
    of zero variance, so threshold 0 means "every non-constant dimension".
    """
    return (np.sqrt(variances) >= threshold) & (variances > 0)


def vote_matrix(
    local_variances: np.ndarray,
    labels: np.ndarray,
    variances: np.ndarray,
    active: np.ndarray,
    num_factors: int,
) -> np.ndarray:
    """Votes ``(F, D)``: row k counts, per code dimension, the batches with fixed factor k in
    which that dimension had the smallest normalised variance (only active dimensions compete).

    Columns are the real latent indices (disentanglement_lib writes the position within the
    active subset instead, which relabels columns but leaves the accuracy unchanged).
    """
    idx = np.flatnonzero(active)
    winner = idx[np.argmin(local_variances[:, idx] / variances[idx], axis=1)]
    votes = np.zeros((num_factors, len(variances)), dtype=np.int64)
    np.add.at(votes, (labels, winner), 1)
    return votes


def vote_accuracy(train_votes: np.ndarray, eval_votes: np.ndarray) -> tuple[float, float]:
    """Train and eval accuracy of the majority-vote classifier fit on ``train_votes``."""
    cls = np.argmax(train_votes, axis=0)  # ties -> smallest factor index
    cols = np.arange(train_votes.shape[1])
    train = train_votes[cls, cols].sum() / train_votes.sum()
    evaluation = eval_votes[cls, cols].sum() / eval_votes.sum()
    return float(train), float(evaluation)


def local_variances(
    data, represent, batch_size: int, num_points: int, rs: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """``num_points`` batches with one factor fixed: the fixed factor of each (n,) and the
    variance of each code dimension within each batch (n, D) — the votes' raw material."""
    labels = np.zeros(num_points, dtype=np.int64)
    outputs, dims = [], []
    for t in range(num_points):
        k = rs.randint(data.num_factors)
        f = data.sample_factors(batch_size, rs)
        f[:, k] = f[0, k]
        x = data.sample_observations_from_factors(f, rs)
        labels[t] = k
        outputs.append(_checked_output(represent(x), batch_size, dims))
    codes = stack_outputs(outputs).reshape(num_points, batch_size, -1)
    return labels, np.var(codes, axis=1, ddof=1)


def compute_factor_vae(
    data,
    represent: Represent,
    random_state: np.random.RandomState | int,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    threshold: float = 0.05,
) -> dict[str, float]:
    """FactorVAE score with the study's settings: ``{train_accuracy, eval_accuracy,
    num_active_dims}``.

    Same random stream as disentanglement_lib (variance sample, then training votes, then eval
    votes; each vote draws ``randint(F)``, a factor batch, then observations). No classifier is
    trained, so the value does not depend on the sklearn version.

    ``threshold`` is the study's ``prune_dims.threshold``: dimensions whose global std is below
    it (absolute units, so it assumes a prior-scaled code such as a VAE mean) are ignored.
    Fixed bug: ``num_active_dims`` counts the active dimensions (the reference reports D).
    If no dimension is active the score is 0 (as in the reference).
    """
    rs = as_random_state(random_state)
    for name, value in [("batch_size", batch_size), ("num_train", num_train),
                        ("num_eval", num_eval)]:
        check_positive_int(value, name, 2 if name == "batch_size" else 1)
    check_positive_int(num_variance_estimate, "num_variance_estimate", 2)
    x = data.sample_observations(num_variance_estimate, rs)
    variances = global_variances(represent_batches(represent, x, 64))
    active = active_dims(variances, threshold)
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    f = data.num_factors
    labels, local = local_variances(data, represent, batch_size, num_train, rs)
    train_votes = vote_matrix(local, labels, variances, active, f)
    labels, local = local_variances(data, represent, batch_size, num_eval, rs)
    eval_votes = vote_matrix(local, labels, variances, active, f)
    train, evaluation = vote_accuracy(train_votes, eval_votes)
    return {
        "train_accuracy": train,
        "eval_accuracy": evaluation,
        "num_active_dims": int(active.sum()),
    }
