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

Regression, with predictive mean ``m``, predictive variance ``s²`` and targets ``y`` (N,) or (N, D):

* Gaussian NLL: ``mean [½ log(2π s²) + (y − m)²/(2 s²)]`` (over all entries);
* RMSE: ``sqrt(mean (y − m)²)``.

Bad input (wrong shapes, NaN/inf, probabilities outside [0, 1] or rows not summing to 1 within
``1e-6``, labels out of range, non-positive variances) raises ValueError naming the argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


@dataclass(frozen=True)
class ClassificationMetrics:
    accuracy: float
    nll: float
    brier: float
    ece: float


@dataclass(frozen=True)
class RegressionMetrics:
    rmse: float
    gaussian_nll: float


def _check_probs(probs, labels):
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"invalid probs: expected a non-empty (N, C) array, got shape {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1:
        raise ValueError("invalid probs: entries must be finite and in [0, 1]")
    if np.max(np.abs(probs.sum(axis=1) - 1.0)) > 1e-6:
        raise ValueError("invalid probs: every row must sum to 1 (within 1e-6)")
    if labels.shape != (probs.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"invalid labels: expected {probs.shape[0]} integers, got "
                         f"shape {labels.shape} dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"invalid labels: expected values in [0, {probs.shape[1] - 1}]")
    return probs, labels


def accuracy(probs, labels) -> float:
    """Fraction of rows whose top label equals the label."""
    probs, labels = _check_probs(probs, labels)
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def nll(probs, labels) -> float:
    """Mean negative log-probability of the label (probabilities clipped at 1e-300)."""
    probs, labels = _check_probs(probs, labels)
    p = probs[np.arange(labels.shape[0]), labels]
    return float(-np.mean(np.log(np.maximum(p, 1e-300))))


def brier(probs, labels) -> float:
    """Mean over rows of the squared distance between ``p`` and the one-hot label."""
    probs, labels = _check_probs(probs, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(labels.shape[0]), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def ece(probs, labels, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error on the top-label confidence (definition in the module doc)."""
    probs, labels = _check_probs(probs, labels)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins <= 0:
        raise ValueError(f"invalid n_bins: expected a positive integer, got {n_bins!r}")
    conf = probs.max(axis=1)
    correct = (np.argmax(probs, axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="right") − 1 puts c in [e_m, e_{m+1}); clipping moves c = 1.0 to the last bin
    bins = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    sum_conf = np.bincount(bins, weights=conf, minlength=n_bins)
    sum_correct = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.sum(np.abs(sum_correct - sum_conf)) / conf.shape[0])


def classification_metrics(probs, labels) -> ClassificationMetrics:
    """Accuracy, NLL, Brier score and ECE (15 bins) of predicted probabilities."""
    return ClassificationMetrics(accuracy(probs, labels), nll(probs, labels),
                                 brier(probs, labels), ece(probs, labels))


def _check_regression(mean, y):
    mean = np.asarray(mean, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if mean.shape != y.shape or mean.size == 0:
        raise ValueError(f"invalid mean: shape {mean.shape} does not match targets {y.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(y))):
        raise ValueError("invalid mean or targets: contain NaN or inf")
    return mean, y


def rmse(mean, y) -> float:
    """Root mean squared error."""
    mean, y = _check_regression(mean, y)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def gaussian_nll(mean, var, y) -> float:
    """Mean Gaussian negative log-likelihood of ``y`` under ``N(mean, var)``."""
    mean, y = _check_regression(mean, y)
    var = np.broadcast_to(np.asarray(var, dtype=np.float64), mean.shape)
    if not np.all(np.isfinite(var)) or var.min() <= 0:
        raise ValueError("invalid var: expected finite positive variances")
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + (y - mean) ** 2 / (2 * var)))


def regression_metrics(mean, var, y) -> RegressionMetrics:
    """RMSE and Gaussian NLL."""
    return RegressionMetrics(rmse(mean, y), gaussian_nll(mean, var, y))
