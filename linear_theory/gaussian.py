r"""Gaussians with covariance factors, and the 2-Wasserstein distance between them.

A :class:`Gaussian` is ``N(mean, factor · factorᵀ)`` with ``factor`` of shape ``(d, r)``: full
(``r = d``), low rank (``r < d``) or wider than ``d``; the covariance is formed only when asked.
A :class:`MeanFieldGaussian` is ``N(mean, diag(scale²))``.

The 2-Wasserstein distance is computed in factor form (exact for singular covariances, no
matrix square root):

.. math::

    W_2^2\big(N(μ_1, L_1L_1^T), N(μ_2, L_2L_2^T)\big)
      = \|μ_1-μ_2\|^2 + \min_{U^TU = I}\|L_1 - L_2U\|_F^2
      = \|μ_1-μ_2\|^2 + \|L_1\|_F^2 + \|L_2\|_F^2 - 2\|L_1^TL_2\|_*,

which equals the Bures form ``‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₂^{½}Σ₁Σ₂^{½})^{½})``.

References
----------
.. [1] Wenger, Coker, Marusic, Cunningham. Variational Deep Learning via Implicit
   Regularization. arXiv:2505.20235, 2025.
.. [2] Bhatia, Jain, Lim. On the Bures-Wasserstein distance between positive definite
   matrices. Expositiones Mathematicae 37, 2019.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ._validation import (EPS_DEFAULT_CLIP, as_float_array, as_generator, as_matrix, as_positive_float,
                          as_positive_int, as_vector, check_allocation, float_guard)

__all__ = ["Gaussian", "MeanFieldGaussian", "Predictive", "w2_squared", "w2"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Predictive:
    """Predictive mean ``Xμ`` and variance ``‖Lᵀx‖²`` at test inputs (no observation noise).

    Parameters
    ----------
    mean : (m,) array
        ``x_iᵀμ`` per test input.
    variance : (m,) array
        ``‖Lᵀx_i‖²`` (``Σ_j x_ij² s_j²`` for a mean-field law), ``≥ 0``.
    """

    mean: np.ndarray
    variance: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """The predictive standard deviation ``sqrt(variance)``, shape ``(m,)``."""
        return np.sqrt(self.variance)


def _is_scalar(value) -> bool:
    """A real number or 0-d array (``np.ndim`` would raise on ragged lists, so test types first)."""
    return isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0)


def _test_inputs(X_test, d: int, what: str = "the Gaussian's dimension") -> np.ndarray:
    """``X_test`` as an ``(m, d)`` float64 array (a vector is one row); ``what`` says what ``d`` is."""
    X_test = as_float_array("X_test", X_test, ndim=(1, 2))
    if X_test.ndim == 1:
        X_test = X_test[None, :]
    if X_test.shape[1] != d:
        raise ValueError(f"X_test must have {d} columns ({what}), got shape {X_test.shape}")
    return X_test


def _isotropic_mean(mean, d) -> np.ndarray:
    """``mean`` as a ``(d,)`` vector: a scalar repeated ``d`` times, or a vector of length ``d``."""
    if _is_scalar(mean):
        if d is None:
            raise ValueError("d is required when mean is a scalar")
        d = as_positive_int("d", d)
        check_allocation("d", d)
        return as_vector("mean", np.full(d, float(mean)))
    return as_vector("mean", mean, size=None if d is None else as_positive_int("d", d))


#: Entries of magnitude within ``2^±400`` square and sum (over up to ``2^100`` terms) in float64
#: without overflow or underflow to subnormals, so no rescaling is needed there.
_SAFE_LOG2 = 400.0


def _power_of_two(size: float) -> int:
    """``0`` for ``size`` within ``2^±400`` (or zero), else an even ``k`` with ``2^k ≈ size``."""
    if size == 0.0 or abs(np.log2(size)) < _SAFE_LOG2:
        return 0
    return 2 * int(np.round(np.log2(size) / 2))


@dataclass(frozen=True, eq=False)
class Gaussian:
    """``N(mean, factor · factorᵀ)``; arrays are stored as read-only float64 copies.

    Parameters
    ----------
    mean : (d,) array
        The mean ``μ``, finite.
    factor : (d, r) array
        A covariance factor ``L`` with any ``r ≥ 1`` columns: full (``r = d``), low rank
        (``r < d``) or wider; ``Σ = LLᵀ``.

    Raises
    ------
    TypeError
        For non-numeric, complex or ragged input.
    ValueError
        Naming the argument, for wrong shapes, empty arrays or NaN/infinite entries.
    """

    mean: np.ndarray
    factor: np.ndarray

    def __post_init__(self):
        mean = as_vector("mean", self.mean)
        factor = as_matrix("factor", self.factor)
        if factor.shape[0] != mean.shape[0]:
            raise ValueError(f"factor must have shape (d, r) with d = len(mean) = {mean.shape[0]}, "
                             f"got {factor.shape}")
        object.__setattr__(self, "mean", _frozen(mean))
        object.__setattr__(self, "factor", _frozen(factor))

    @property
    def dim(self) -> int:
        """The dimension ``d``."""
        return int(self.mean.shape[0])

    @property
    def width(self) -> int:
        """Number of columns ``r`` of the factor (an upper bound on the covariance's rank)."""
        return int(self.factor.shape[1])

    @float_guard("mean", "factor")
    def cov(self) -> np.ndarray:
        """The dense covariance ``LLᵀ``.

        Returns
        -------
        (d, d) array
            ``Σ = LLᵀ``; cost ``O(d²r)`` time and ``O(d²)`` memory (small ``d`` only).

        Raises
        ------
        ValueError
            When ``LLᵀ`` overflows float64.
        """
        check_allocation("the covariance of this Gaussian", self.dim, self.dim)
        return self.factor @ self.factor.T

    @float_guard("the Gaussian's mean and factor")
    def sample(self, n: int, rng) -> np.ndarray:
        """Draws ``w = μ + Lz``, ``z ~ N(0, I_r)``.

        Parameters
        ----------
        n : int
            Number of draws, ``≥ 1``; ``r`` normals each.
        rng : int or numpy.random.Generator
            The random stream (never global state).

        Returns
        -------
        (n, d) array
            One draw per row; cost ``O(n·d·r)``.

        Raises
        ------
        TypeError
            For a non-integer ``n`` or an ``rng`` that is neither a seed nor a Generator.
        ValueError
            For ``n < 1``, ``rng=None``, or an ``n`` whose result exceeds the machine's memory.
        """
        n = as_positive_int("n", n)
        check_allocation("n", n, max(self.dim, self.width))
        z = as_generator(rng, "rng").standard_normal((n, self.width))
        return self.mean + z @ self.factor.T

    @float_guard("X_test and the Gaussian")
    def predictive(self, X_test) -> Predictive:
        """Predictive mean ``X_test μ`` and variance ``‖Lᵀx‖²`` per test input.

        Parameters
        ----------
        X_test : (m, d) or (d,) array
            Test inputs ``x``, finite; each meets the factor ``L`` once.

        Returns
        -------
        Predictive
            ``(m,)`` means and variances; cost ``O(m·d·r)``, no ``d × d`` matrix.

        Raises
        ------
        ValueError
            For a wrong number of columns, non-finite entries, or values that overflow.
        """
        X_test = _test_inputs(X_test, self.dim)
        return Predictive(mean=X_test @ self.mean, variance=np.sum((X_test @ self.factor) ** 2, axis=1))

    def replace(self, *, mean=None, factor=None) -> "Gaussian":
        """A copy with ``mean`` and/or ``factor`` replaced (validated as in the constructor).

        Parameters
        ----------
        mean : (d,) array, optional
            The new mean; the current one when omitted.
        factor : (d, r) array, optional
            The new factor; the current one when omitted.

        Returns
        -------
        Gaussian
            The new law; cost ``O(d·r)`` (a validated copy).

        Raises
        ------
        ValueError
            As the constructor.
        """
        return Gaussian(self.mean if mean is None else mean, self.factor if factor is None else factor)

    @classmethod
    def isotropic(cls, mean, scale: float, d: int | None = None) -> "Gaussian":
        """``N(mean, scale² I_d)`` with the full factor ``scale · I_d``.

        Parameters
        ----------
        mean : float or (d,) array
            The mean; a scalar is repeated ``d`` times (``d`` is then required).
        scale : float
            The standard deviation, positive and finite: the diagonal of the factor.
        d : int, optional
            The dimension (checked against ``len(mean)`` when both are given).

        Returns
        -------
        Gaussian
            Factor ``scale · I_d``: cost and memory ``O(d²)``.

        Raises
        ------
        TypeError
            For a non-real ``scale`` or non-integer ``d``.
        ValueError
            For a non-positive ``scale``, a missing or wrong ``d``, or a ``d`` whose ``d × d``
            factor exceeds the machine's memory.
        """
        scale = as_positive_float("scale", scale)
        mean = _isotropic_mean(mean, d)
        check_allocation("d", mean.shape[0], mean.shape[0])
        return cls(mean, scale * np.eye(mean.shape[0]))

    @classmethod
    def from_cov(cls, mean, cov, tol: float | None = None) -> "Gaussian":
        """From a dense covariance by a symmetric eigen-decomposition ``Σ = QΛQᵀ``, factor ``Q Λ^{½}``.

        Eigenvalues in ``[−tol, 0)`` are rounding and clipped to zero, where by default
        ``tol = d · eps · max|λ|`` (the backward error of a symmetric eigensolver); zero columns
        are dropped, so the factor is ``d × rank``. A covariance with entries beyond ``2^±400``
        is decomposed after an exact power-of-two scaling, so finite extreme covariances (such as
        ``diag(1e308)``) give their exact factor.

        Parameters
        ----------
        mean : (d,) array
            The mean, finite.
        cov : (d, d) array
            A symmetric positive semi-definite covariance, finite.
        tol : float, optional
            Clipping tolerance for negative eigenvalues, ``≥ 0`` (in the units of ``cov``).

        Returns
        -------
        Gaussian
            Factor ``(d, rank)`` (a single zero column for ``cov = 0``).

        Raises
        ------
        ValueError
            If ``cov`` is not square of size ``len(mean)``, not symmetric (to ``1e-10``
            relative), or has an eigenvalue below ``−tol`` (not PSD).

        Notes
        -----
        Cost ``O(d³)``.
        """
        mean = as_vector("mean", mean)
        cov = as_matrix("cov", cov)
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}) to match mean, got {cov.shape}")
        k = _power_of_two(float(np.max(np.abs(cov))))
        with np.errstate(under="ignore"):
            scaled = np.ldexp(cov, -k)  # exact: a power of two
        size = np.max(np.abs(scaled))
        if np.max(np.abs(scaled - scaled.T)) > 1e-10 * max(size, np.finfo(float).tiny):
            raise ValueError("cov must be symmetric (asymmetry above 1e-10 relative)")
        evals, evecs = scipy.linalg.eigh(0.5 * scaled + 0.5 * scaled.T)
        top = max(np.max(np.abs(evals)), 0.0)
        if tol is None:
            tol = EPS_DEFAULT_CLIP * d * top
        else:  # a tol beyond the float range after scaling is inf: every negative eigenvalue is clipped
            with np.errstate(under="ignore", over="ignore"):
                tol = np.ldexp(as_positive_float("tol", tol, allow_zero=True), -k)
        if evals[0] < -tol:
            with np.errstate(under="ignore", over="ignore"):
                smallest, limit = np.ldexp(evals[0], k), -np.ldexp(tol, k)
            raise ValueError(f"cov is not positive semi-definite: smallest eigenvalue {smallest:.3e} "
                             f"is below -tol = {limit:.3e}")
        evals = np.clip(evals, 0.0, None)
        keep = evals > 0
        if not np.any(keep):
            return cls(mean, np.zeros((d, 1)))
        return cls(mean, evecs[:, keep] * np.ldexp(np.sqrt(evals[keep]), k // 2))


@dataclass(frozen=True, eq=False)
class MeanFieldGaussian:
    """``N(mean, diag(scale²))``, the mean-field family.

    Parameters
    ----------
    mean : (d,) array
        The mean, finite.
    scale : (d,) array
        Per-coordinate scales of any sign (``|scale|`` is the standard deviation), finite.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For wrong shapes, different lengths, empty arrays or NaN/infinite entries.
    """

    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self):
        mean = as_vector("mean", self.mean)
        scale = as_vector("scale", self.scale)
        if scale.shape != mean.shape:
            raise ValueError(f"scale must have length {mean.shape[0]} (that of mean), got {scale.shape[0]}")
        object.__setattr__(self, "mean", _frozen(mean))
        object.__setattr__(self, "scale", _frozen(scale))

    @property
    def dim(self) -> int:
        """The dimension ``d``."""
        return int(self.mean.shape[0])

    def as_gaussian(self) -> Gaussian:
        """The same law as a :class:`Gaussian` with the diagonal factor ``diag(|scale|)``.

        Returns
        -------
        Gaussian
            Factor ``(d, d)``: cost and memory ``O(d²)``.

        Raises
        ------
        ValueError
            When the ``d × d`` factor exceeds the machine's memory.
        """
        check_allocation("the dimension of this MeanFieldGaussian", self.dim, self.dim)
        return Gaussian(self.mean, np.diag(np.abs(self.scale)))

    @float_guard("the MeanFieldGaussian's mean and scale")
    def sample(self, n: int, rng) -> np.ndarray:
        """Draws ``w = μ + s ⊙ z``, ``z ~ N(0, I_d)``.

        Parameters
        ----------
        n : int
            Number of draws, ``≥ 1``; ``d`` normals each.
        rng : int or numpy.random.Generator
            The random stream.

        Returns
        -------
        (n, d) array
            One draw per row; cost ``O(n·d)``.

        Raises
        ------
        TypeError
            For a non-integer ``n`` or a bad ``rng``.
        ValueError
            For ``n < 1``, ``rng=None`` or a result larger than the machine's memory.
        """
        n = as_positive_int("n", n)
        check_allocation("n", n, self.dim)
        return self.mean + as_generator(rng, "rng").standard_normal((n, self.dim)) * self.scale

    @float_guard("X_test and the MeanFieldGaussian")
    def predictive(self, X_test) -> Predictive:
        """Predictive mean ``X_test μ`` and variance ``Σ_j x_j² s_j²`` per test input.

        Parameters
        ----------
        X_test : (m, d) or (d,) array
            Test inputs ``x``, finite; squared entrywise against the scales.

        Returns
        -------
        Predictive
            ``(m,)`` means and variances; cost ``O(m·d)``.

        Raises
        ------
        ValueError
            For a wrong number of columns, non-finite entries, or values that overflow.
        """
        X_test = _test_inputs(X_test, self.dim)
        return Predictive(mean=X_test @ self.mean, variance=(X_test ** 2) @ (self.scale ** 2))

    @classmethod
    def isotropic(cls, mean, scale: float, d: int | None = None) -> "MeanFieldGaussian":
        """``N(mean, scale² I_d)`` as a mean-field law.

        Parameters
        ----------
        mean : float or (d,) array
            The mean; a scalar is repeated ``d`` times (``d`` is then required).
        scale : float
            The standard deviation of every coordinate, positive and finite.
        d : int, optional
            The dimension.

        Returns
        -------
        MeanFieldGaussian
            Scales ``scale · 1_d``; cost and memory ``O(d)``.

        Raises
        ------
        TypeError
            For a non-real ``scale`` or non-integer ``d``.
        ValueError
            For a non-positive ``scale`` or a missing or wrong ``d``.
        """
        scale = as_positive_float("scale", scale)
        mean = _isotropic_mean(mean, d)
        return cls(mean, np.full(mean.shape[0], scale))


def _pad_columns(L: np.ndarray, width: int) -> np.ndarray:
    if L.shape[1] == width:
        return L
    return np.hstack([L, np.zeros((L.shape[0], width - L.shape[1]))])


def _check_pair(p, q, metric):
    """Validated ``(p, q, weights)``; ``weights = D^{-½}`` (``(d,)``) or ``None`` without a metric."""
    for name, g in (("p", p), ("q", q)):
        if not isinstance(g, (Gaussian, MeanFieldGaussian)):
            raise TypeError(f"{name} must be a Gaussian or MeanFieldGaussian, got {type(g).__name__}")
    if p.dim != q.dim:
        raise ValueError(f"p and q must have the same dimension, got {p.dim} and {q.dim}")
    if metric is None:
        return p, q, None
    metric = as_float_array("metric", metric, ndim=1)
    if metric.shape[0] != p.dim:
        raise ValueError(f"metric must have length {p.dim} (the Gaussians' dimension), got {metric.shape[0]}")
    if not np.all(metric > 0):
        raise ValueError(f"metric must hold positive step multipliers, got minimum {float(np.min(metric)):.3g}")
    return p, q, 1.0 / np.sqrt(metric)  # ≤ 4.5e161 for the smallest positive float64: finite


def _entries(g) -> tuple[np.ndarray, np.ndarray]:
    return (g.mean, g.factor) if isinstance(g, Gaussian) else (g.mean, g.scale)


def _power_of_two_exponent(p, q, weights) -> int:
    """``0`` for inputs of ordinary size, else ``k`` with ``2^k`` near the largest weighted entry."""
    log2_weight = 0.0 if weights is None else float(np.log2(np.max(weights)))
    largest = max(float(np.max(np.abs(a), initial=0.0)) for g in (p, q) for a in _entries(g))
    if largest == 0.0:
        return 0
    log2_size = np.log2(largest) + log2_weight  # bounds every weighted entry
    return 0 if abs(log2_size) < _SAFE_LOG2 else int(np.round(log2_size))


def _rescaled(g, weights, k: int):
    """``g`` with every coordinate multiplied by ``weights · 2^-k`` (exact for ``weights = None``)."""
    if weights is None and k == 0:
        return g
    w = 1.0 if weights is None else weights
    with np.errstate(under="ignore"):
        if isinstance(g, Gaussian):
            return Gaussian(np.ldexp(g.mean, -k) * w, np.ldexp(g.factor, -k) * (w if weights is None else w[:, None]))
        return MeanFieldGaussian(np.ldexp(g.mean, -k) * w, np.ldexp(g.scale, -k) * w)


def _w2_squared_core(p, q) -> float:
    mean_part = float(np.sum((p.mean - q.mean) ** 2))
    if isinstance(p, MeanFieldGaussian) and isinstance(q, MeanFieldGaussian):
        return mean_part + float(np.sum((np.abs(p.scale) - np.abs(q.scale)) ** 2))
    if isinstance(p, MeanFieldGaussian):
        p = p.as_gaussian()
    if isinstance(q, MeanFieldGaussian):
        q = q.as_gaussian()
    Lp, Lq = p.factor, q.factor
    if Lp.shape == Lq.shape and np.array_equal(Lp, Lq):
        return mean_part
    width = max(Lp.shape[1], Lq.shape[1])
    Lp, Lq = _pad_columns(Lp, width), _pad_columns(Lq, width)
    A, _, Bt = np.linalg.svd(Lq.T @ Lp)
    difference = Lp - Lq @ (A @ Bt)
    return mean_part + float(np.sum(difference ** 2))


def _scaled_w2_squared(p, q, metric) -> tuple[int, float]:
    """``(k, x)`` with ``W₂²(p, q) = 4^k·x`` in the metric and ``x`` of ordinary size."""
    p, q, weights = _check_pair(p, q, metric)
    k = _power_of_two_exponent(p, q, weights)
    return k, _w2_squared_core(_rescaled(p, weights, k), _rescaled(q, weights, k))


def w2_squared(p, q, *, metric=None) -> float:
    r"""Squared 2-Wasserstein distance between two Gaussians, in factor form.

    .. math::

        W_2^2(p, q) = \|μ_p - μ_q\|^2 + \min_{U^TU=I}\|L_p - L_q U\|_F^2
                    = \|μ_p - μ_q\|^2 + \|L_p\|_F^2 + \|L_q\|_F^2 - 2\|L_p^T L_q\|_*

    The minimum is attained at the polar factor ``U = AB^T`` of ``L_qᵀL_p = AΣBᵀ`` (narrower
    factors are padded with zero columns). The difference ``L_p − L_qU`` is formed explicitly
    instead of the nuclear-norm expression: that avoids the cancellation in ``‖L_p‖² + ‖L_q‖² −
    2‖·‖_*``, which would lose half the digits of ``W₂`` when ``p`` and ``q`` are close (the
    error is about ``eps·‖L‖·κ(L)`` in ``W₂`` instead of ``√eps·‖L‖``). Exact (to rounding) for
    singular covariances and factors of different widths; exactly ``0.0`` for identical inputs.

    Two :class:`MeanFieldGaussian` use ``‖μ_p − μ_q‖² + ‖|s_p| − |s_q|‖²`` (``O(d)``); a mixed
    pair converts the mean-field one to its diagonal factor.

    With ``metric = D`` the distance is measured with the inner product ``⟨u, D⁻¹u⟩``: both
    Gaussians are scaled by ``D^{-½}`` first (the metric in which the IBVI limit with step
    multipliers ``D`` is the W₂ projection of the prior, docs/theory.md §4 (C12)).

    Parameters
    ----------
    p, q : Gaussian or MeanFieldGaussian
        Two laws of the same dimension ``d``; factors may have different widths.
    metric : (d,) array, optional
        Positive finite diagonal ``D`` of the metric ``D⁻¹`` (``None``: the Euclidean one).

    Returns
    -------
    float
        ``W₂²(p, q) ≥ 0``.

    Raises
    ------
    TypeError
        For an argument that is not a :class:`Gaussian` or :class:`MeanFieldGaussian`.
    ValueError
        For different dimensions, a ``metric`` of the wrong length or with non-positive entries,
        and when ``W₂²`` exceeds the float64 range (:func:`w2` still returns the distance while
        ``W₂ ≤ 1.8e308``).

    Notes
    -----
    Cost ``O(d·r² + r³)`` with ``r = max(r_p, r_q)`` plus ``O(d·r)`` for the metric; never
    forms a ``d × d`` matrix (except the diagonal factor of a mixed mean-field pair). Inputs
    beyond ``2^±400`` are rescaled by a power of two, so tiny distances do not underflow.
    """
    k, value = _scaled_w2_squared(p, q, metric)
    with np.errstate(over="ignore", under="ignore"):
        result = np.ldexp(value, 2 * k)
    if not np.isfinite(result):
        where = "" if metric is None else " in the metric given by metric"
        raise ValueError(f"W2^2(p, q){where} overflows float64; use w2(p, q) for the distance itself")
    return float(result)


def w2(p, q, *, metric=None) -> float:
    """2-Wasserstein distance ``sqrt(w2_squared(p, q))``; see :func:`w2_squared`.

    Parameters
    ----------
    p, q : Gaussian or MeanFieldGaussian
        Two laws of the same dimension ``d``.
    metric : (d,) array, optional
        Positive diagonal ``D`` of the metric ``D⁻¹`` (``None``: Euclidean).

    Returns
    -------
    float
        ``W₂(p, q) ≥ 0``, computed with a power-of-two rescaling so that it stays finite and
        accurate whenever the distance itself is a float64.

    Raises
    ------
    TypeError
        For an argument that is not a Gaussian.
    ValueError
        As :func:`w2_squared`, and when the distance itself exceeds the float64 range.

    Notes
    -----
    Cost as :func:`w2_squared`.
    """
    k, value = _scaled_w2_squared(p, q, metric)
    with np.errstate(over="ignore", under="ignore"):
        result = np.ldexp(np.sqrt(value), k)
    if not np.isfinite(result):
        where = "" if metric is None else " in the metric given by metric"
        raise ValueError(f"W2(p, q){where} exceeds the float64 range")
    return float(result)
