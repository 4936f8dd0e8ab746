r"""Stability of the factor's step under Monte Carlo gradients (claims C1 and C16, docs/theory.md §2 (C16)).

With ``M`` reparametrized samples and the mean at rest, a row-space row ``ℓ`` (``1 × r``) of the
factor along a singular direction ``s`` moves as ``ℓ ← ℓ(I − cẐ) + β(ℓ − ℓ_{t−1})``, ``c = 2ηs²``,
``Ẑ = (1/M)Σ_m z_m z_mᵀ`` (heavy ball with momentum ``β``; ``β = 0`` is plain SGD). Since
``E[Ẑ] = I`` and ``E[Ẑ²] = κI`` with ``κ = 1 + (r + 1)/M``, the second moments
``(E‖ℓ_t‖², E⟨ℓ_t, ℓ_{t−1}⟩, E‖ℓ_{t−1}‖²)`` follow a linear map whose Perron root crosses 1 at

.. math::

    η^*_{ms} = \frac{1 - β^2}{s_{max}^2\,\big((1 + β)κ - 2β\big)}
    \qquad \Big(β = 0:\ \frac{1}{s_{max}^2 (1 + (r+1)/M)}\Big),

derived here and checked with sympy (claim S9). It shrinks like ``1/r`` (the reason μP divides the
factor's step by the rank); for large ``κ`` momentum *lowers* it, to about ``(1 − β)/(s²κ)``, far
below the deterministic heavy-ball bound ``(1 + β)/s_max² = 2(1 + β)/λ_max`` (``λ_max = 2s_max²``).
The threshold does not depend on the prior's scale: the recursion is linear in ``ℓ``.

Ghosh et al. (arXiv:2506.12903) give, for a quadratic with sharpness ``a``, a fixed posterior
covariance ``Σ`` and ``N_s`` MC samples, the expected one-step descent condition
``ρ a (1 + a²/z) < 2`` with ``z = N_s‖g‖²/tr Σ``, i.e. a critical sharpness
``H_crit = 2√(z/3) sinh(⅓ arcsinh((3/ρ)√(3/z)))`` (:func:`descent_step_threshold`,
:func:`critical_sharpness`; the formula as implemented in the authors' public code,
``github.com/Avra98/variationallearning_eos``, re-derived here and sympy-checked, since the
paper's text was not available). For the factor, whose MC
noise is multiplicative, the noise second moment ``E‖ĝ − g‖² = a²‖ℓ‖²(r + 1)/M`` identifies
``z = a²M/(r + 1)`` (:func:`factor_signal_to_noise`, scale free), and their condition becomes
exactly the mean-square bound at ``β = 0``.

:func:`mc_factor_threshold` measures the threshold by bisection on real simulations: a
*single-path* threshold over a finite horizon. By Jensen's inequality the almost-sure growth rate
is below the mean-square one, so the measured threshold lies at or above ``η*_ms``, and approaches
it as ``r`` grows (``‖z‖²/r`` concentrates).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ._validation import as_matrix, as_momentum, as_positive_float, as_positive_int, finite_result, float_guard
from .gaussian import Gaussian
from .simulate import DivergenceError, simulate

__all__ = ["predicted_mc_threshold", "mc_factor_threshold", "ThresholdResult", "descent_step_threshold",
           "critical_sharpness", "factor_signal_to_noise"]


def predicted_mc_threshold(s_max: float, rank: int, mc_samples: int = 1, momentum: float = 0.0) -> float:
    r"""Mean-square stability bound of the factor's step with ``mc_samples`` MC samples and heavy ball.

    .. math:: η^*_{ms} = \frac{1 - β^2}{s_{max}^2((1 + β)κ - 2β)}, \qquad κ = 1 + \frac{r + 1}{M};

    ``momentum = 0`` gives ``1/(s_max²(1 + (rank + 1)/mc_samples))``.

    Parameters
    ----------
    s_max : float
        Largest singular value of ``X``.
    rank : int
        Width ``r`` of the factor.
    mc_samples : int
        Samples ``M`` per step.
    momentum : float
        Heavy-ball coefficient ``β`` in ``[0, 1)``.

    Returns
    -------
    float
        The factor's step bound; cost ``O(1)``.

    Raises
    ------
    ValueError
        For a non-positive ``s_max``, ``rank`` or ``mc_samples`` and a ``momentum`` outside ``[0, 1)``.
    TypeError
        For a non-integer ``rank`` or ``mc_samples``.
    """
    s_max = as_positive_float("s_max", s_max)
    rank = as_positive_int("rank", rank)
    mc_samples = as_positive_int("mc_samples", mc_samples)
    beta = as_momentum(momentum)
    kappa = 1.0 + (rank + 1.0) / mc_samples
    spread = (1.0 + beta) * kappa - 2.0 * beta  # > 1 − β > 0
    return _beyond_rounding(
        "s_max", lambda: (1.0 - beta ** 2) / (np.float64(s_max) ** 2 * spread),
        lambda: math.log1p(-beta * beta) - 2.0 * math.log(s_max) - math.log(spread))


def _beyond_rounding(names: str, direct, logarithm) -> float:
    """``direct()``, or ``exp(logarithm())`` where ``direct`` over- or underflows; an error naming ``names`` if
    the value itself is beyond the float64 range.

    ``direct`` computes in ``numpy.float64``, so float64 overflow and underflow (a subnormal or
    zero intermediate loses digits) are detected. The logarithm route is free of both; it is
    accurate to about ``|ln value|·eps`` relative, at most ``2e-13``. A value that underflows is
    returned as its rounding (a subnormal or 0).
    """
    try:
        with np.errstate(over="raise", under="raise", divide="raise", invalid="raise"):
            return float(direct())
    except FloatingPointError:
        pass
    try:
        value = math.exp(logarithm())
    except OverflowError:
        value = math.inf
    return finite_result(names, value)


def _inverse_square(s_max: float) -> float:
    """``1/s_max²`` in float64 without an ``OverflowError`` (it may be 0 or inf; see :func:`finite_result`)."""
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        return float(np.float64(1.0) / np.float64(s_max) ** 2)


def descent_step_threshold(sharpness: float, signal_to_noise: float) -> float:
    r"""Largest step with expected one-step descent on a quadratic with MC gradients (Ghosh et al.).

    For ``ℓ = ½a‖x‖²`` along a direction of sharpness ``a`` and a gradient with noise of second
    moment ``a² tr Σ/N_s``, ``E[ℓ(x − ρĝ)] < ℓ(x)`` iff

    .. math:: ρ < \frac{2}{a(1 + a^2/z)}, \qquad z = \frac{N_s\|g\|^2}{\operatorname{tr}Σ} ;

    ``z → ∞`` (no noise) gives ``2/a``.

    Parameters
    ----------
    sharpness : float
        Curvature ``a`` of the quadratic.
    signal_to_noise : float
        ``z = N_s‖g‖²/tr Σ``.

    Returns
    -------
    float
        The step ``ρ`` at which the expected one-step change is zero; cost ``O(1)``.

    Raises
    ------
    ValueError
        For a non-positive or non-finite ``sharpness`` or ``signal_to_noise``.
    """
    a = as_positive_float("sharpness", sharpness)
    z = as_positive_float("signal_to_noise", signal_to_noise)
    a64 = np.float64(a)
    return _beyond_rounding(
        "sharpness and signal_to_noise", lambda: 2.0 / (a64 * (1.0 + a64 * (a64 / z))),
        lambda: math.log(2.0) - math.log(a) - float(np.logaddexp(0.0, 2.0 * math.log(a) - math.log(z))))


def critical_sharpness(lr: float, signal_to_noise: float) -> float:
    r"""Ghosh et al.'s ``H_crit``: the sharpness at which a step ``lr`` stops descending in expectation.

    The positive root of ``ρH(1 + H²/z) = 2``:

    .. math:: H_{crit} = 2\sqrt{z/3}\,\sinh\Big(\tfrac13 \operatorname{arcsinh}\big(\tfrac{3}{ρ}\sqrt{3/z}\big)\Big),

    the inverse of :func:`descent_step_threshold` in the sharpness; ``H_crit < 2/ρ``, and
    ``→ 2/ρ`` as ``z → ∞``.

    Parameters
    ----------
    lr : float
        The step ``ρ``.
    signal_to_noise : float
        ``z = N_s‖g‖²/tr Σ``.

    Returns
    -------
    float
        ``H_crit``; cost ``O(1)``.

    Raises
    ------
    ValueError
        For a non-positive or non-finite ``lr`` or ``signal_to_noise``.
    """
    rho = as_positive_float("lr", lr)
    z = as_positive_float("signal_to_noise", signal_to_noise)

    def direct():
        argument = (np.float64(3.0) / rho) * np.sqrt(np.float64(3.0) / z)
        return 2.0 * np.sqrt(np.float64(z) / 3.0) * np.sinh(np.arcsinh(argument) / 3.0)

    return _beyond_rounding("lr and signal_to_noise", direct, lambda: _log_critical_sharpness(rho, z))


#: ``|ln ζ|`` beyond which ``h(ζ)`` takes its asymptotic form to rounding (``h³ ≈ 2ζ``, or ``h ≈ 2``):
#: the neglected relative terms are about ``ζ^{1/3}`` and ``4/ζ``, below ``1e-96`` there.
_LOG_ZETA_ASYMPTOTIC = 667.0


def _log_critical_sharpness(rho: float, z: float) -> float:
    """``ln H_crit`` free of overflow: ``H_crit = h(ζ)/ρ`` with ``ζ = zρ²`` and ``h(1 + h²/ζ) = 2``."""
    log_zeta = math.log(z) + 2.0 * math.log(rho)
    if log_zeta < -_LOG_ZETA_ASYMPTOTIC:
        return (math.log(2.0) + math.log(z) - math.log(rho)) / 3.0
    if log_zeta > _LOG_ZETA_ASYMPTOTIC:
        return math.log(2.0) - math.log(rho)
    zeta = math.exp(log_zeta)
    h = 2.0 * math.sqrt(zeta / 3.0) * math.sinh(math.asinh(3.0 * math.sqrt(3.0 / zeta)) / 3.0)
    return math.log(h) - math.log(rho)


def factor_signal_to_noise(s_max: float, rank: int, mc_samples: int = 1) -> float:
    """Ghosh et al.'s ``z`` for the factor's MC gradient: ``a²M/(r + 1)`` with sharpness ``a = 2s_max²``.

    The factor's noise ``2s²ℓ(Ẑ − I)`` has second moment ``a²‖ℓ‖²(r + 1)/M`` and the gradient
    ``‖g‖² = a²‖ℓ‖²``, so ``z = N_s‖g‖²/tr Σ`` is ``a²M/(r + 1)`` whatever the scale of ``ℓ``; with
    it :func:`descent_step_threshold` equals :func:`predicted_mc_threshold` at ``momentum = 0``.

    Parameters
    ----------
    s_max : float
        Singular value of the direction (its sharpness is ``a = 2s_max²``).
    rank : int
        Width ``r`` of the factor.
    mc_samples : int
        Samples ``M`` per step.

    Returns
    -------
    float
        ``z``; cost ``O(1)``.

    Raises
    ------
    ValueError
        For non-positive input.
    TypeError
        For a non-integer ``rank`` or ``mc_samples``.
    """
    s_max = as_positive_float("s_max", s_max)
    rank = as_positive_int("rank", rank)
    mc_samples = as_positive_int("mc_samples", mc_samples)
    return _beyond_rounding(
        "s_max", lambda: (2.0 * np.float64(s_max) ** 2) ** 2 * mc_samples / (rank + 1.0),
        lambda: 2.0 * math.log(2.0) + 4.0 * math.log(s_max) + math.log(mc_samples) - math.log(rank + 1.0))


@dataclass(frozen=True)
class ThresholdResult:
    """Measured factor-step threshold (median over seeds) beside the mean-square prediction.

    Parameters
    ----------
    rank, mc_samples : int
        The factor's width and the MC samples per step.
    threshold : float
        Median over the seeds of the measured threshold.
    per_seed : tuple of float
        The threshold of each seed's bisection.
    predicted : float
        :func:`predicted_mc_threshold` for the same ``rank``, ``mc_samples`` and ``momentum``.
    momentum, prior_scale : float
        The settings of the measurement.
    exact_bound : float
        The bound of exact gradients, ``(1 + momentum)/s_max²``.
    """

    rank: int
    mc_samples: int
    threshold: float
    per_seed: tuple[float, ...]
    predicted: float
    momentum: float = 0.0
    prior_scale: float = 1.0
    exact_bound: float = math.nan

    @property
    def ratio(self) -> float:
        """``threshold / predicted``: at least 1 by Jensen's inequality, close to 1 for large ``rank``."""
        return self.threshold / self.predicted


def _stable(X, prior, lr_factor, steps, mc_samples, seed, momentum) -> bool:
    exact = 1.0 / float(np.linalg.norm(X, 2)) ** 2
    try:
        result = simulate(X, np.zeros(X.shape[0]), prior, family="lowrank",
                          optimizer="momentum" if momentum > 0 else "gd", momentum=momentum,
                          lr=MEAN_STEP_FRACTION * exact, lr_factor=lr_factor, steps=steps, mc_samples=mc_samples,
                          seed=seed, record_every=steps)
    except DivergenceError:
        return False
    return bool(np.linalg.norm(X @ result.final.factor) < np.linalg.norm(X @ prior.factor))


def _seeds(seeds) -> tuple[int, ...]:
    """``seeds`` as a non-empty tuple of non-negative ints, each checked under its index."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a sequence of non-negative integers, got {type(seeds).__name__}")
    seeds = tuple(as_positive_int(f"seeds[{i}]", seed, allow_zero=True) for i, seed in enumerate(seeds))
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    return seeds


def _geometric_mean(lo: float, hi: float) -> float:
    """``√(lo·hi)``, from the two roots where the product leaves the normal float64 range."""
    product = lo * hi
    if np.finfo(float).tiny <= product < math.inf:
        return float(np.sqrt(product))
    return math.sqrt(lo) * math.sqrt(hi)


#: Smallest relative width of the bisection: a few hundred ulps, where ``hi/lo`` can still shrink.
MIN_REL_TOL = 1e-12

#: The mean's step as a fraction of ``1/s_max²``: small, so that the residual ``y − Xμ`` (which
#: couples mean and factor through the MC gradient) stays at zero and the factor's own
#: stability is what is measured.
MEAN_STEP_FRACTION = 1e-3


@float_guard("X", "prior_scale")
def mc_factor_threshold(X, rank: int, *, mc_samples: int = 1, steps: int = 400, seeds=(0, 1, 2),
                        rel_tol: float = 0.03, momentum: float = 0.0, prior_scale: float = 1.0) -> ThresholdResult:
    """Bisect the largest factor step for which MC-gradient IBVI contracts ``‖XL‖`` over ``steps``.

    The problem is ``y = 0`` with prior ``N(0, L₀L₀ᵀ)``, ``L₀`` standard normal ``d × rank``
    scaled by ``prior_scale/√rank``, so the mean starts at its optimum; the mean's step is
    ``MEAN_STEP_FRACTION / s_max²``; ``momentum > 0`` runs heavy ball on both. "Stable" means no
    :class:`DivergenceError` and ``‖XL_T‖_F < ‖XL_0‖_F`` after ``steps`` steps. Bisection in
    ``log η`` between ``10⁻³/s_max²`` and the exact-gradient bound ``(1 + momentum)/s_max²``
    stops at relative width ``rel_tol``; the reported threshold is the median over ``seeds``.

    Parameters
    ----------
    X : (n, d) array_like
        The data matrix; finite, not all zeros.
    rank : int
        Width of the factor, ``1 ≤ rank < d``.
    mc_samples : int
        Samples ``M`` per step.
    steps : int
        Horizon of each stability test.
    seeds : sequence of int
        One bisection per seed (draws of ``L₀`` and of the MC samples).
    rel_tol : float
        Relative width at which the bisection stops, in ``[1e-12, 1]``.
    momentum : float
        Heavy-ball coefficient in ``[0, 1)``.
    prior_scale : float
        Scale of the prior factor (the threshold does not depend on it: the dynamics are linear).

    Returns
    -------
    ThresholdResult
        The median threshold over ``seeds`` beside :func:`predicted_mc_threshold`.

    Raises
    ------
    ValueError
        Unless ``rank < d`` (a low-rank factor); for an all-zero ``X`` or one whose scale
        leaves float64, empty ``seeds`` or a negative seed, a ``rel_tol`` outside ``[1e-12, 1]``,
        a non-positive ``prior_scale`` or one whose prior overflows float64, and a ``momentum``
        outside ``[0, 1)``.
    TypeError
        For non-integer ``rank``, ``mc_samples``, ``steps`` or seeds, and ``seeds`` that are not a
        sequence.

    Notes
    -----
    Cost ``O(log(1/rel_tol) · |seeds| · steps · n·d·rank·mc_samples)``.
    """
    X = as_matrix("X", X)
    n, d = X.shape
    rank = as_positive_int("rank", rank)
    if rank >= d:
        raise ValueError(f"rank must be below d = {d} (low-rank factor), got {rank}")
    mc_samples = as_positive_int("mc_samples", mc_samples)
    steps = as_positive_int("steps", steps)
    rel_tol = as_positive_float("rel_tol", rel_tol)
    if not MIN_REL_TOL <= rel_tol <= 1.0:
        raise ValueError(f"rel_tol must be in [{MIN_REL_TOL:g}, 1] (the bisection's relative width; below "
                         f"{MIN_REL_TOL:g} float64 steps cannot narrow it), got {rel_tol}")
    momentum = as_momentum(momentum)
    prior_scale = as_positive_float("prior_scale", prior_scale)
    seeds = _seeds(seeds)
    s_max = float(np.linalg.norm(X, 2))
    if s_max == 0.0:
        raise ValueError("X must not be all zeros (its loss is flat: there is no threshold to measure)")
    exact = finite_result("X", _inverse_square(s_max))
    if exact * 1e-3 < np.finfo(float).tiny:  # the bisection starts at 1e-3/s_max²: a normal float
        raise ValueError("X is too large: 1e-3/s_max(X)^2, where the bisection starts, underflows float64")
    per_seed = []
    for seed in seeds:
        rng = np.random.default_rng([int(seed), rank, mc_samples])
        prior = Gaussian(np.zeros(d), prior_scale * rng.standard_normal((d, rank)) / np.sqrt(rank))
        lo, hi = exact * 1e-3, (1.0 + momentum) * exact * (1.0 - 1e-9)
        if _stable(X, prior, hi, steps, mc_samples, seed, momentum):
            per_seed.append(hi)
            continue
        while hi / lo > 1.0 + rel_tol:
            mid = _geometric_mean(lo, hi)
            if _stable(X, prior, mid, steps, mc_samples, seed, momentum):
                lo = mid
            else:
                hi = mid
        per_seed.append(_geometric_mean(lo, hi))
    return ThresholdResult(rank=rank, mc_samples=mc_samples, threshold=float(np.median(per_seed)),
                           per_seed=tuple(per_seed),
                           predicted=predicted_mc_threshold(s_max, rank, mc_samples, momentum),
                           momentum=momentum, prior_scale=prior_scale, exact_bound=(1.0 + momentum) * exact)
