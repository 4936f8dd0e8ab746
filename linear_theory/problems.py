"""Problem generators with explicit seeds: overparametrized regression with a chosen spectrum,
a 1-D regression through fixed features (for plots), and linearly separable classification."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import (as_float_array, as_generator, as_positive_float, as_positive_int, as_vector,
                          check_allocation, float_guard)

__all__ = ["RegressionProblem", "random_regression", "FeatureRegression1D", "feature_regression_1d",
           "ClassificationProblem", "separable_classification"]


@dataclass(frozen=True)
class RegressionProblem:
    """``y = X w_true + noise``; ``singular_values`` are the nonzero ones of ``X`` by construction.

    Parameters
    ----------
    X : (n, d) array
        Inputs.
    y : (n,) array
        Targets.
    w_true : (d,) array
        The weights that generated ``y``.
    singular_values : (rank,) array
        The nonzero singular values of ``X``, descending.
    """

    X: np.ndarray
    y: np.ndarray
    w_true: np.ndarray
    singular_values: np.ndarray

    @property
    def n(self) -> int:
        """Number of rows of ``X``."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])


def _orthonormal_columns(rng, rows: int, cols: int) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((rows, cols)))
    return Q * np.sign(np.diag(R))  # Haar-distributed: fix the signs of QR


@float_guard("scale", "spectrum", "condition_number", "noise")
def random_regression(n: int, d: int, *, rank: int | None = None, condition_number: float = 10.0,
                      spectrum=None, scale: float = 1.0, noise: float = 0.0, seed=0) -> RegressionProblem:
    """A random ``X = U diag(s) Vᵀ`` (Haar ``U``, ``V``) with prescribed singular values and targets.

    Parameters
    ----------
    n, d : int
        Sizes (overparametrized when ``rank = n < d``; any sizes are allowed).
    rank : int, optional
        Number of nonzero singular values (default ``min(n, d)``); ``rank < n`` makes ``X``
        rank deficient.
    condition_number : float
        ``s_max/s_min ≥ 1``; singular values are geometric from ``scale`` down to
        ``scale / condition_number``. Ignored when ``spectrum`` is given.
    spectrum : (rank,) array, optional
        Explicit nonzero singular values, any order.
    scale : float
        The largest singular value, positive and finite.
    noise : float
        Standard deviation of Gaussian noise added to ``y = X w_true``, ``≥ 0``.
    seed : int or numpy.random.Generator
        The random stream.

    Returns
    -------
    RegressionProblem
        ``X``, ``y``, ``w_true`` and the singular values.

    Raises
    ------
    TypeError
        For non-integer sizes or non-real numbers.
    ValueError
        For non-positive sizes, a rank above ``min(n, d)``, a non-positive or non-finite
        ``scale``, a condition number below 1, a spectrum with non-positive values, sizes whose
        arrays exceed the machine's memory, or values that overflow.

    Notes
    -----
    Cost ``O((n + d)·rank²)``.
    """
    n, d = as_positive_int("n", n), as_positive_int("d", d)
    scale = as_positive_float("scale", scale)
    rank = min(n, d) if rank is None else as_positive_int("rank", rank)
    if rank > min(n, d):
        raise ValueError(f"rank must be at most min(n, d) = {min(n, d)}, got {rank}")
    check_allocation("n and d", n, d)  # X itself is n × d
    if spectrum is None:
        condition_number = as_positive_float("condition_number", condition_number)
        if condition_number < 1:
            raise ValueError(f"condition_number must be at least 1, got {condition_number}")
        s = scale * np.geomspace(1.0, 1.0 / condition_number, rank)
    else:
        s = np.sort(as_vector("spectrum", spectrum, size=rank))[::-1]
        if np.any(s <= 0):
            raise ValueError("spectrum must hold positive singular values")
    noise = as_positive_float("noise", noise, allow_zero=True)
    rng = as_generator(seed)
    U = _orthonormal_columns(rng, n, rank)
    V = _orthonormal_columns(rng, d, rank)
    X = (U * s) @ V.T
    w_true = rng.standard_normal(d) / np.sqrt(d)
    y = X @ w_true + noise * rng.standard_normal(n)
    return RegressionProblem(X=X, y=y, w_true=w_true, singular_values=s.copy())


@dataclass(frozen=True)
class FeatureRegression1D:
    """Scalar inputs mapped through fixed Gaussian-bump features ``φ_j(x) = exp(−(x − c_j)²/(2ℓ²))``.

    Parameters
    ----------
    inputs : (n,) array
        The scalar inputs.
    X : (n, d) array
        Their features.
    y : (n,) array
        Targets.
    centers : (d,) array
        The bump centres ``c_j``.
    lengthscale : float
        The bump width ``ℓ``.
    """

    inputs: np.ndarray
    X: np.ndarray
    y: np.ndarray
    centers: np.ndarray
    lengthscale: float

    def features(self, x) -> np.ndarray:
        """The feature matrix of scalar inputs, e.g. a plotting grid.

        Parameters
        ----------
        x : (m,) array
            Scalar inputs, finite.

        Returns
        -------
        (m, d) array
            ``φ_j(x_i) ∈ [0, 1]``; cost ``O(m·d)``.

        Raises
        ------
        ValueError
            For non-finite, empty or non-1-D ``x``, or a result larger than the machine's memory.
        """
        x = as_float_array("x", x, ndim=1)
        check_allocation("x", x.shape[0], self.centers.shape[0])
        # far from a centre (x − c)²/ℓ² overflows to inf, and exp(−inf) = 0 is the exact feature
        with np.errstate(over="ignore"):
            return np.exp(-0.5 * ((x[:, None] - self.centers[None, :]) / self.lengthscale) ** 2)


@float_guard("noise")
def feature_regression_1d(n: int = 12, d: int = 40, *, lengthscale: float = 0.35,
                          noise: float = 0.0, seed=0) -> FeatureRegression1D:
    """A 1-D regression in two clusters (``[−2, −0.5]`` and ``[0.8, 1.8]``) through ``d`` bumps.

    Targets ``sin(2x) + noise``; the ``d`` feature centres are equally spaced on ``[−3, 3]``, so
    the problem is overparametrized for ``n < d`` and the data leave gaps and tails where a
    prior's uncertainty should survive.

    Parameters
    ----------
    n : int
        Number of inputs, ``≥ 1``.
    d : int
        Number of features, ``≥ 1``.
    lengthscale : float
        Bump width ``ℓ > 0``.
    noise : float
        Standard deviation of the target noise, ``≥ 0``.
    seed : int or numpy.random.Generator
        The random stream.

    Returns
    -------
    FeatureRegression1D
        Inputs, features ``(n, d)``, targets.

    Raises
    ------
    TypeError
        For non-integer sizes or non-real numbers.
    ValueError
        For non-positive sizes or lengthscale, negative noise, or a size beyond the machine's memory.

    Notes
    -----
    Cost ``O(n·d)``.
    """
    n, d = as_positive_int("n", n), as_positive_int("d", d)
    lengthscale = as_positive_float("lengthscale", lengthscale)
    noise = as_positive_float("noise", noise, allow_zero=True)
    check_allocation("n and d", n, d)
    rng = as_generator(seed)
    left = n // 2
    inputs = np.sort(np.concatenate([rng.uniform(-2.0, -0.5, left), rng.uniform(0.8, 1.8, n - left)]))
    centers = np.linspace(-3.0, 3.0, d)
    problem = FeatureRegression1D(inputs=inputs, X=np.empty((0, d)), y=np.empty(0), centers=centers,
                                  lengthscale=lengthscale)
    X = problem.features(inputs)
    y = np.sin(2.0 * inputs) + noise * rng.standard_normal(n)
    return FeatureRegression1D(inputs=inputs, X=X, y=y, centers=centers, lengthscale=lengthscale)


@dataclass(frozen=True)
class ClassificationProblem:
    """Linearly separable data: labels ``±1``, every point at margin ``≥ margin`` from ``w_sep``.

    Parameters
    ----------
    X : (n, d) array
        Inputs.
    y : (n,) array
        Labels ``±1`` (both classes present).
    w_sep : (d,) array
        A unit vector separating the classes.
    margin : float
        Every ``|x_iᵀw_sep| ≥ margin``.
    """

    X: np.ndarray
    y: np.ndarray
    w_sep: np.ndarray
    margin: float


def separable_classification(n: int, d: int, *, margin: float = 0.1, seed=0) -> ClassificationProblem:
    """``n`` points in ``R^d``, labels ``sign(xᵀw_sep)``, rejecting points with ``|xᵀw_sep| < margin``.

    ``w_sep`` is a random unit vector; points are standard normal. Labels contain both classes.

    Parameters
    ----------
    n : int
        Number of points, ``≥ 2``.
    d : int
        Dimension, ``≥ 1``.
    margin : float
        Rejection margin in ``[0, 1)``.
    seed : int or numpy.random.Generator
        The random stream.

    Returns
    -------
    ClassificationProblem
        Inputs, labels, separator and margin.

    Raises
    ------
    TypeError
        For non-integer sizes or a non-real margin.
    ValueError
        For non-positive sizes, ``n < 2``, a margin outside ``[0, 1)``, or a size beyond the
        machine's memory.

    Notes
    -----
    Cost ``O(n·d)`` per accepted batch.
    """
    n, d = as_positive_int("n", n), as_positive_int("d", d)
    margin = as_positive_float("margin", margin, allow_zero=True)
    if margin >= 1.0:
        raise ValueError(f"margin must be below 1 (points are standard normal), got {margin}")
    if n < 2:
        raise ValueError(f"n must be at least 2 to hold both classes, got {n}")
    check_allocation("n and d", 2 * n, d)
    rng = as_generator(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    rows = []
    while sum(len(r) for r in rows) < n:
        batch = rng.standard_normal((2 * n, d))
        rows.append(batch[np.abs(batch @ w) >= margin])
    X = np.concatenate(rows)[:n]
    y = np.sign(X @ w)
    if np.all(y == y[0]):  # make both classes present
        X[0] = -X[0]
        y[0] = -y[0]
    return ClassificationProblem(X=X, y=y, w_sep=w, margin=margin)
