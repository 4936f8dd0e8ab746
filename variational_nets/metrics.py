"""Predictive metrics (NumPy, float64).

Classification, with probabilities ``p`` (N, C) whose rows sum to 1 and integer labels ``y``:

* accuracy: fraction of rows whose top-label ``argmax_c p_c`` (lowest index on ties) equals ``y``;
* NLL: ``−mean_n log p_{n, y_n}`` with ``p`` clipped below at ``1e-300`` (finite for ``p = 0``);
* Brier score: ``mean_n Σ_c (p_{nc} − 1[c = y_n])²`` (0 … 2);
* ECE: with top-label confidence ``c_n = max_c p_{nc}`` and ``M = 15`` equal-width bins
  ``B_m = {n : m/M ≤ c_n < (m+1)/M}`` for ``m = 0 … M−1``, except that the last bin is closed,
  ``[(M−1)/M, 1]``, so a confidence of exactly 1.0 belongs to it; bin edges are
  ``numpy.linspace(0, 1, M+1)``. ``ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|`` (empty bins
  contribute 0).

Out-of-distribution detection, with a score per example (here the predictive entropy
``H(p) = −Σ_c p_c log p_c``, ``0 log 0 = 0``):

* AUROC: the probability that a random out-of-distribution example scores higher than a random
  in-distribution one, ties counting one half (the area under the ROC curve; the Mann–Whitney
  ``U`` statistic divided by ``n_in · n_out``).

Regression, with predictive mean ``m``, predictive variance ``s²`` and targets ``y`` (N,) or (N, D):

* Gaussian NLL: ``mean [½ log(2π s²) + (y − m)²/(2 s²)]`` (over all entries);
* RMSE: ``sqrt(mean (y − m)²)``.

Bad input (wrong shapes, NaN/inf, probabilities outside [0, 1] or rows not summing to 1 within
``1e-6``, labels out of range, non-positive variances) raises ValueError naming the argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .validation import as_array, as_int, as_labels, bad_value, check_memory, is_cupy_array

__all__ = ["ClassificationMetrics", "RegressionMetrics", "accuracy", "nll", "brier", "ece",
           "classification_metrics", "predictive_entropy", "auroc", "rmse", "gaussian_nll",
           "regression_metrics", "ECE_BINS"]

ECE_BINS = 15


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy, NLL, Brier score and ECE (definitions in the module docstring).

    Parameters
    ----------
    accuracy, nll, brier, ece : float
    """

    accuracy: float
    nll: float
    brier: float
    ece: float


@dataclass(frozen=True)
class RegressionMetrics:
    """RMSE and Gaussian NLL (definitions in the module docstring).

    Parameters
    ----------
    rmse, gaussian_nll : float
    """

    rmse: float
    gaussian_nll: float


def _check_probs(probs, labels=None):
    probs = as_array("probs", to_numpy(probs) if is_cupy_array(probs) else probs, ndim=2,
                     dtype=np.float64)
    if probs.shape[1] == 0:
        raise bad_value("probs", "a non-empty (N, C) array", got=f"shape {probs.shape}")
    if probs.min() < 0 or probs.max() > 1:
        raise bad_value("probs", "entries in [0, 1]",
                        got=f"entries from {probs.min():.3g} to {probs.max():.3g}")
    if np.max(np.abs(probs.sum(axis=1) - 1.0)) > 1e-6:
        raise bad_value("probs", "rows that sum to 1 (within 1e-6)", got="other row sums")
    if labels is None:
        return probs, None
    labels = as_labels("labels", to_numpy(labels) if is_cupy_array(labels) else labels,
                       probs.shape[1], allow_float=False)
    if labels.shape[0] != probs.shape[0]:
        raise bad_value("labels", f"{probs.shape[0]} labels, one per row of probs",
                        got=f"{labels.shape[0]}")
    return probs, labels


def accuracy(probs, labels) -> float:
    """Fraction of rows whose top label (lowest index on ties) equals the label.

    Parameters
    ----------
    probs : array_like (N, C)
        Probabilities; rows sum to 1.
    labels : integer array_like (N,)
        Values in ``0 .. C − 1``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError, TypeError
        Naming ``probs`` or ``labels``: wrong shapes or types, NaN/inf, probabilities outside
        [0, 1] or rows not summing to 1, labels out of range.
    """
    probs, labels = _check_probs(probs, labels)
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def nll(probs, labels) -> float:
    """Mean negative log-probability of the label (probabilities clipped at 1e-300).

    Parameters
    ----------
    probs : array_like (N, C)
        Probabilities, rows summing to 1; the entry of each row's label is logged.
    labels : integer array_like (N,)
        Values in ``0 .. C − 1``.

    Returns
    -------
    float
        ``≥ 0``; 0 when every label has probability 1.

    Raises
    ------
    ValueError, TypeError
        As for :func:`accuracy`.
    """
    probs, labels = _check_probs(probs, labels)
    p = probs[np.arange(labels.shape[0]), labels]
    return float(-np.mean(np.log(np.maximum(p, 1e-300))))


def brier(probs, labels) -> float:
    """Mean over rows of the squared distance between ``p`` and the one-hot label.

    Parameters
    ----------
    probs : array_like (N, C)
        Probabilities, rows summing to 1, compared with the one-hot labels.
    labels : integer array_like (N,)
        Values in ``0 .. C − 1``.

    Returns
    -------
    float
        In ``[0, 2]``; 0 when every row is the one-hot label.

    Raises
    ------
    ValueError, TypeError
        As for :func:`accuracy`.
    """
    probs, labels = _check_probs(probs, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(labels.shape[0]), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def ece(probs, labels, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error on the top-label confidence (definition in the module doc).

    Parameters
    ----------
    probs : array_like (N, C)
        Probabilities, rows summing to 1; the top one is the confidence that is binned.
    labels : integer array_like (N,)
        Values in ``0 .. C − 1``; say whether the top label is right.
    n_bins : int, default 15
        Positive.

    Returns
    -------
    float
        In ``[0, 1]``: the bin-weighted gap between confidence and accuracy.

    Raises
    ------
    ValueError, TypeError
        As for :func:`accuracy`; a bad ``n_bins``.
    """
    probs, labels = _check_probs(probs, labels)
    n_bins = as_int("n_bins", n_bins)
    check_memory("n_bins", 40 * n_bins, f"{n_bins} bins")
    conf = probs.max(axis=1)
    correct = (np.argmax(probs, axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="right") − 1 puts c in [e_m, e_{m+1}); clipping moves c = 1.0 to the last bin
    bins = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    sum_conf = np.bincount(bins, weights=conf, minlength=n_bins)
    sum_correct = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.sum(np.abs(sum_correct - sum_conf)) / conf.shape[0])


def classification_metrics(probs, labels) -> ClassificationMetrics:
    """Accuracy, NLL, Brier score and ECE (15 bins) of predicted probabilities.

    Parameters
    ----------
    probs : array_like (N, C)
        Probabilities, rows summing to 1.
    labels : integer array_like (N,)
        Values in ``0 .. C − 1``.

    Returns
    -------
    ClassificationMetrics
        The four values of :func:`accuracy`, :func:`nll`, :func:`brier`, :func:`ece`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`accuracy`.
    """
    return ClassificationMetrics(accuracy(probs, labels), nll(probs, labels),
                                 brier(probs, labels), ece(probs, labels))


def predictive_entropy(probs) -> np.ndarray:
    """Entropy ``H(p_n) = −Σ_c p_nc log p_nc`` of each row (nats; ``0 log 0 = 0``).

    Parameters
    ----------
    probs : array_like (N, C)
        Probabilities; rows sum to 1.

    Returns
    -------
    numpy.ndarray (N,)
        Values in ``[0, log C]``. Cost ``O(N C)``.

    Raises
    ------
    ValueError, TypeError
        Naming ``probs``, as for :func:`accuracy`.
    """
    probs, _ = _check_probs(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    return np.maximum(-terms.sum(axis=1), 0.0)


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve of telling ``scores_out`` (positives) from ``scores_in``.

    ``AUROC = (Σ_j rank(out_j) − m(m+1)/2) / (n m)`` with ranks over the pooled ``n + m``
    scores, ties given their average rank: the probability that a random positive scores
    higher than a random negative, a tie counting one half (the Mann–Whitney statistic).
    Cost ``O((n + m) log(n + m))``.

    Parameters
    ----------
    scores_in : array_like (n,)
        Scores of the in-distribution examples (finite, non-empty).
    scores_out : array_like (m,)
        Scores of the out-of-distribution examples.

    Returns
    -------
    float
        In ``[0, 1]``; 0.5 for scores that do not tell the two apart.

    Raises
    ------
    ValueError, TypeError
        Naming ``scores_in`` or ``scores_out``: not 1-D, empty, NaN/inf.
    """
    a = as_array("scores_in", to_numpy(scores_in) if is_cupy_array(scores_in) else scores_in, ndim=1,
                 dtype=np.float64)
    b = as_array("scores_out", to_numpy(scores_out) if is_cupy_array(scores_out) else scores_out, ndim=1,
                 dtype=np.float64)
    pooled = np.concatenate([a, b])
    # average ranks (1-based): the tied values that sort to positions s+1 … e share (s+1+e)/2
    _, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]
    m = b.shape[0]
    return float((ranks[a.shape[0]:].sum() - m * (m + 1) / 2.0) / (a.shape[0] * m))


def _regression_array(name, value):
    value = to_numpy(value) if is_cupy_array(value) else value
    return as_array(name, value, ndim=np.ndim(value) if np.ndim(value) in (1, 2) else 1,
                    dtype=np.float64)


def _check_regression(mean, y):
    mean, y = _regression_array("mean", mean), _regression_array("y", y)
    if mean.shape != y.shape:
        raise bad_value("mean", f"the shape of y, {y.shape}", got=f"shape {mean.shape}")
    return mean, y


def rmse(mean, y) -> float:
    """Root mean squared error.

    Parameters
    ----------
    mean, y : array_like (N,) or (N, D)
        Predictive mean and targets, of one shape, finite, non-empty.

    Returns
    -------
    float
        ``≥ 0``, in the units of ``y``.

    Raises
    ------
    ValueError, TypeError
        Naming ``mean`` or ``y``.
    """
    mean, y = _check_regression(mean, y)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def gaussian_nll(mean, var, y) -> float:
    """Mean Gaussian negative log-likelihood of ``y`` under ``N(mean, var)``.

    Parameters
    ----------
    mean : array_like (N,) or (N, D)
        As for :func:`rmse`.
    var : float or array_like
        Predictive variances, broadcastable to ``mean``; finite and positive.
    y : array_like
        Targets, of the shape of ``mean``.

    Returns
    -------
    float
        Mean NLL in nats (negative when the variances are small and the errors smaller).

    Raises
    ------
    ValueError, TypeError
        Naming ``mean``, ``y`` or ``var``.
    """
    mean, y = _check_regression(mean, y)
    var = to_numpy(var) if is_cupy_array(var) else var
    var = as_array("var", var, ndim=np.ndim(var), dtype=np.float64, allow_empty=True)
    try:
        var = np.broadcast_to(var, mean.shape)
    except ValueError:
        raise bad_value("var", f"variances broadcastable to {mean.shape}",
                        got=f"shape {var.shape}") from None
    if var.min() <= 0:
        raise bad_value("var", "positive variances", got=f"a minimum of {var.min():.3g}")
    with np.errstate(over="ignore"):
        log_2pi_var = np.log(2 * np.pi * var)
        # 2π var overflows for var above max/2π (about 2.9e307): there log(2π) + log(var)
        huge = var > np.finfo(np.float64).max / (2 * np.pi)
        if huge.any():
            log_2pi_var = np.where(huge, np.log(2 * np.pi) + np.log(var), log_2pi_var)
        value = float(np.mean(0.5 * log_2pi_var + (y - mean) ** 2 / (2 * var)))
    if not np.isfinite(value):
        raise bad_value("var", "variances for which the NLL is a float64 number",
                        got=f"a minimum of {var.min():.3g} against squared errors up to "
                            f"{float(np.max((y - mean) ** 2)):.3g} (the NLL overflows)")
    return value


def regression_metrics(mean, var, y) -> RegressionMetrics:
    """RMSE and Gaussian NLL.

    Parameters
    ----------
    mean, var, y
        As for :func:`gaussian_nll`.

    Returns
    -------
    RegressionMetrics
        The values of :func:`rmse` and :func:`gaussian_nll`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`gaussian_nll`.
    """
    return RegressionMetrics(rmse(mean, y), gaussian_nll(mean, var, y))
