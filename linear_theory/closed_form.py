r"""Closed forms of the linear-regression theory (docs/theory.md §2, claims C1, C3, C5, C6).

All functions take the data ``X`` (n, d), targets ``y`` (n,) and a prior :class:`Gaussian`
``p = N(μ₀, L₀L₀ᵀ)`` (the initialization). The loss is the sum of squares without ½:
``ℓ̄(μ, L) = ‖y − Xμ‖² + ‖XL‖²_F``. None forms a ``d × d`` matrix: each goes through a
:class:`~linear_theory.subspace.RowSpaceSolver` (pass ``solver=`` to reuse one factorization).

``ibvi_limit``, ``ibvi_limit_w2_squared``, ``w2_gvi`` and ``gd_iterate`` take
``step_multipliers=D``: per-coordinate step multipliers, whose limit is the W₂ projection in the
``D⁻¹`` metric (docs/theory.md §4 (C12)), computed by the change of variables ``w = D^{½}v``.
"""
from __future__ import annotations

import numpy as np

from ._metric import geometry
from ._validation import as_positive_float, as_positive_int, check_problem, float_guard
from .gaussian import Gaussian, MeanFieldGaussian
from .subspace import RowSpaceSolver, row_space_basis

__all__ = ["ibvi_limit", "w2_gvi", "gd_iterate", "bayes_posterior", "expected_loss",
           "ibvi_limit_w2_squared"]


def _check_prior_problem(X, y, prior) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(X, y)`` for a :class:`Gaussian` ``prior`` of dimension ``d``."""
    if not isinstance(prior, Gaussian):
        raise TypeError(f"prior must be a linear_theory.Gaussian, got {type(prior).__name__}")
    return check_problem(X, y, prior.dim)


def _setup(X, y, prior, solver, step_multipliers=None):
    X, y = _check_prior_problem(X, y, prior)
    return X, y, geometry(X, step_multipliers=step_multipliers, solver=solver)


@float_guard("X, y", "q")
def expected_loss(X, y, q) -> float:
    r"""The expected squared loss ``E_{w~q} ‖y − Xw‖²`` (no ½).

    .. math::

        \bar\ell(q) = \|y - Xμ\|^2 + \|XL\|_F^2 \quad (q = N(μ, LL^T)), \qquad
        \bar\ell(q) = \|y - Xμ\|^2 + \sum_j s_j^2 \|X_{:j}\|^2 \quad (\text{mean field}).

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets of the squared loss, finite.
    q : Gaussian or MeanFieldGaussian
        The law of the weights, dimension ``d``.

    Returns
    -------
    float
        The expected loss, ``≥ 0``.

    Raises
    ------
    TypeError
        When ``q`` is neither a :class:`Gaussian` nor a :class:`MeanFieldGaussian`.
    ValueError
        For shapes that do not match, non-finite input, or a loss that overflows float64.

    Notes
    -----
    Cost ``O(n·d·r)`` (``O(n·d)`` mean field).
    """
    if not isinstance(q, (Gaussian, MeanFieldGaussian)):
        raise TypeError(f"q must be a Gaussian or MeanFieldGaussian, got {type(q).__name__}")
    X, y = check_problem(X, y, q.dim)
    residual = y - X @ q.mean
    if isinstance(q, Gaussian):
        spread = float(np.sum((X @ q.factor) ** 2))
    else:
        spread = float(np.sum((X ** 2) @ (q.scale ** 2)))
    return float(residual @ residual) + spread


@float_guard("X", "y", "prior", "step_multipliers")
def ibvi_limit(X, y, prior: Gaussian, *, solver: RowSpaceSolver | None = None,
               step_multipliers=None) -> Gaussian:
    r"""The limit of (S)GD on the expected loss started at the prior (Theorem 1).

    .. math::

        μ_∞ = μ_0 + X^+(y - Xμ_0), \qquad L_∞ = P_{null} L_0 = L_0 - X^+ X L_0 .

    With step multipliers ``D`` the limit is the W₂ projection of the prior onto the minimizers
    of the loss in the ``D⁻¹`` metric (docs/theory.md §4 (C12)):

    .. math::

        μ_∞ = μ_0 + DX^T(XDX^T)^+(y - Xμ_0), \qquad L_∞ = \big(I - DX^T(XDX^T)^+X\big) L_0 .

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets, finite; the limit's mean interpolates them.
    prior : Gaussian
        The prior ``N(μ₀, L₀L₀ᵀ)``, the initialization; factor ``(d, r)``, any ``r``.
    solver : RowSpaceSolver, optional
        A factorization to reuse: of ``X``, or of ``X * sqrt(D / max(D))`` when
        ``step_multipliers`` are given. Built here when omitted.
    step_multipliers : (d,) array, optional
        Per-coordinate step multipliers ``D`` of (S)GD, positive and finite:
        ``μ ← μ − ηD∇_μ``, ``L ← L − ηD∇_L`` (``None``: all ones). They set the geometry, the
        ``D⁻¹`` metric (docs/theory.md §4 (C12)), computed on ``X̃ = XD^{½}`` without a
        ``d × d`` matrix.

    Returns
    -------
    Gaussian
        ``N(μ∞, L∞L∞ᵀ)`` with a factor of the prior's shape ``(d, r)``.

    Raises
    ------
    TypeError
        If ``prior`` is not a :class:`Gaussian` or an array argument is not numeric.
    ValueError
        For shapes that do not match the prior, non-finite input, non-positive step multipliers,
        or a ``solver`` of another matrix.

    Notes
    -----
    Cost ``O(n²d + n³ + n·d·r)`` (Gram route) or a thin SVD of ``X``; memory ``O(n·d + d·r)``.
    Step multipliers add ``O(n·d + d·r)``.
    """
    X, y, metric = _setup(X, y, prior, solver, step_multipliers)
    return Gaussian(prior.mean + metric.shift(y - X @ prior.mean), metric.project_null(prior.factor))


@float_guard("X", "y", "prior", "step_multipliers")
def ibvi_limit_w2_squared(X, y, prior: Gaussian, *, solver: RowSpaceSolver | None = None,
                          step_multipliers=None) -> float:
    r"""The value ``W₂²(q∞, p)`` of the W₂ projection that Theorem 1 predicts.

    .. math::

        W_2^2(q_∞, p) = \|X^+(Xμ_0 - y)\|^2 + \|P_{row} L_0\|_F^2 .

    With step multipliers ``D`` it is the squared distance in the ``D⁻¹`` metric that the limit
    minimizes, ``w2_squared(q∞, p, metric=D)``, i.e. the formula above for ``X̃ = XD^{½}`` and the
    prior scaled by ``D^{-½}``.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets the limit interpolates, finite.
    prior : Gaussian
        The prior ``N(μ₀, L₀L₀ᵀ)``; factor ``(d, r)``.
    solver : RowSpaceSolver, optional
        The factorization :func:`ibvi_limit` takes; its pseudo-inverse gives both parts.
    step_multipliers : (d,) array, optional
        The ``D`` of :func:`ibvi_limit`; the distance is then measured in the ``D⁻¹`` metric.

    Returns
    -------
    float
        The squared distance, ``≥ 0``.

    Raises
    ------
    TypeError
        If ``prior`` is not a :class:`Gaussian`.
    ValueError
        For mismatched shapes, non-finite input, non-positive step multipliers, or a value that
        overflows float64.

    Notes
    -----
    Cost ``O(n²d + n·d·r)``, as :func:`ibvi_limit`.
    """
    X, y, metric = _setup(X, y, prior, solver, step_multipliers)
    mean_part = np.sum(metric.solver.pinv(X @ prior.mean - y) ** 2)
    if metric.identity:
        factor_part = np.sum(metric.solver.project_row(prior.factor) ** 2)
    else:  # P_row(X̃)(R̂⁻¹L₀) = X̃⁺XL₀: no division by the root
        factor_part = np.sum(metric.solver.pinv(X @ prior.factor) ** 2)
    return float(np.float64(mean_part + factor_part) / metric.scale)


@float_guard("X", "y", "prior", "step_multipliers")
def w2_gvi(X, y, prior: Gaussian, lam: float, *, solver: RowSpaceSolver | None = None,
           step_multipliers=None) -> Gaussian:
    r"""Minimizer of the W₂-regularized generalized VI objective.

    ``lam > 0`` (penalized, claim C5): ``argmin_q ℓ̄(q) + λ W₂²(q, p)``,

    .. math::

        μ_λ = μ_0 + X^T(XX^T + λI)^{-1}(y - Xμ_0), \qquad
        L_λ = \big(I - X^T(XX^T + λI)^{-1}X\big) L_0 .

    ``lam = 0`` (constrained, Theorem 1): ``argmin { W₂²(q, p) : q minimizes ℓ̄ }``, whose
    minimizer is :func:`ibvi_limit`. With step multipliers ``D`` the regularizer is the W₂
    distance in the ``D⁻¹`` metric and ``X`` becomes ``X̃ = XD^{½}`` in these formulas, mapped
    back by ``D^{½}``: ``μ_λ = μ₀ + DXᵀ(XDXᵀ + λI)⁻¹(y − Xμ₀)``.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets of the loss ``ℓ̄``, finite.
    prior : Gaussian
        The prior ``N(μ₀, L₀L₀ᵀ)``; factor ``(d, r)``.
    lam : float
        Regularization weight ``λ ≥ 0``.
    solver : RowSpaceSolver, optional
        The factorization :func:`ibvi_limit` takes; its shifted solves give ``(X̃X̃ᵀ + λ̃I)⁻¹``.
    step_multipliers : (d,) array, optional
        The ``D`` of :func:`ibvi_limit`; the regularizer is then ``W₂²`` in the ``D⁻¹`` metric.

    Returns
    -------
    Gaussian
        ``q_λ`` with a factor of the prior's shape.

    Raises
    ------
    TypeError
        If ``prior`` is not a :class:`Gaussian` or ``lam`` is not a real number.
    ValueError
        For a negative or non-finite ``lam`` and the errors of :func:`ibvi_limit`.

    Notes
    -----
    Cost ``O(n²d + n³ + n·d·r)``; no ``d × d`` matrix.
    """
    lam = as_positive_float("lam", lam, allow_zero=True)
    X, y, metric = _setup(X, y, prior, solver, step_multipliers)
    if lam == 0.0:
        return ibvi_limit(X, y, prior, solver=metric.solver, step_multipliers=step_multipliers)
    with np.errstate(over="ignore"):
        lam_tilde = lam / metric.scale  # λ W₂²_{D⁻¹} = (λ/max D) W₂² in the normalized coordinates
    if not np.isfinite(lam_tilde):  # a weight beyond the float range: q_λ is the prior to rounding
        return prior
    mean = prior.mean + metric.lift(metric.solver.shifted_solve(y - X @ prior.mean, lam_tilde))
    factor = prior.factor - metric.lift(metric.solver.shifted_solve(X @ prior.factor, lam_tilde))
    return Gaussian(mean, factor)


def _gd_filter(lr: float, steps: int):
    """``φ_t(s) = (1 − (1 − 2ηs²)^t)/s``; ``expm1``/``log1p`` keep digits when ``2ηs² ≪ 1``."""

    def phi(s):
        x = 2.0 * lr * s * s
        smooth = x < 1.0
        gain = np.empty_like(s)
        gain[smooth] = -np.expm1(steps * np.log1p(-x[smooth]))
        gain[~smooth] = 1.0 - np.power(1.0 - x[~smooth], steps)  # oscillating or divergent modes
        return gain / s

    return phi


@float_guard("X", "y", "prior", "step_multipliers")
def gd_iterate(X, y, prior: Gaussian, lr: float, steps: int, *,
               solver: RowSpaceSolver | None = None, step_multipliers=None) -> Gaussian:
    r"""The exact full-batch GD iterate ``q_t`` on ``ℓ̄`` after ``steps`` steps of size ``lr``.

    With ``X = U diag(s) Vᵀ``, each row-space direction contracts by ``1 − 2ηs_i²`` per step:

    .. math::

        μ_t = μ_0 + \sum_i v_i \frac{1 - (1-2ηs_i^2)^t}{s_i} u_i^T (y - Xμ_0), \qquad
        L_t = L_0 - \sum_i v_i \frac{1 - (1-2ηs_i^2)^t}{s_i} u_i^T X L_0 .

    ``steps = 0`` gives the prior; ``steps → ∞`` (with ``η < 1/s_max²``) gives :func:`ibvi_limit`.
    Any ``η`` is accepted (the formula holds for every step count), so divergent paths can be
    studied too, as long as the iterate stays finite. With step multipliers ``D`` (steps
    ``ηD∇``) the same holds for ``X̃ = XD^{½}`` mapped back by ``D^{½}``.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets of the full-batch loss, finite.
    prior : Gaussian
        The prior ``N(μ₀, L₀L₀ᵀ)``, the initialization; factor ``(d, r)``.
    lr : float
        Step size ``η > 0``.
    steps : int
        Number of steps ``t ≥ 0``.
    solver : RowSpaceSolver, optional
        The factorization :func:`ibvi_limit` takes; its spectral map applies the GD filter.
    step_multipliers : (d,) array, optional
        The ``D`` of the steps ``ηD∇`` (see :func:`ibvi_limit`); the stability bound is then
        ``1/s_max²`` of ``XD^{½}``.

    Returns
    -------
    Gaussian
        ``q_t``; the prior itself when ``steps = 0``.

    Raises
    ------
    TypeError
        If ``prior`` is not a :class:`Gaussian`, ``lr`` not a real or ``steps`` not an integer.
    ValueError
        For a non-positive ``lr``, a negative ``steps``, the errors of :func:`ibvi_limit`, and
        when a step above the stability bound makes the iterate overflow float64 (the message
        names the bound).

    Notes
    -----
    Cost ``O(n²d + n³ + n·d·r)``, independent of ``steps``.
    """
    lr = as_positive_float("lr", lr)
    steps = as_positive_int("steps", steps, allow_zero=True)
    X, y, metric = _setup(X, y, prior, solver, step_multipliers)
    if steps == 0:
        return prior
    residual, spread = y - X @ prior.mean, X @ prior.factor
    # Above the bound the filter grows like |1 − 2ηs²|^t; report the overflow against lr
    # instead of letting Gaussian() complain about a non-finite mean.
    with np.errstate(over="ignore", invalid="ignore"):
        phi = _gd_filter(lr * metric.scale, steps)
        mean = prior.mean + metric.lift(metric.solver.spectral_map(residual, phi))
        factor = prior.factor - metric.lift(metric.solver.spectral_map(spread, phi))
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(factor))):
        bound = metric.stability_bound
        if lr >= bound:
            of = "X" if step_multipliers is None else "X D^(1/2), D = step_multipliers"
            raise ValueError(f"lr={lr:.4g} is above the stability bound {bound:.4g} (1/s_max² of {of}) and "
                             f"the GD iterate overflows float64 after steps={steps}")
        raise ValueError("X, y and prior hold values too large for float64 arithmetic in gd_iterate (the iterate "
                         "overflows below the stability bound); rescale them")
    return Gaussian(mean, factor)


@float_guard("X", "y", "prior")
def bayes_posterior(X, y, prior: Gaussian, noise_var: float = 0.0) -> Gaussian:
    r"""Posterior of ``y = Xw + ε``, ``ε ~ N(0, σ²I)``, ``w ~ N(μ₀, L₀L₀ᵀ)``, as a factor.

    .. math::

        μ = μ_0 + Σ_0X^T(XΣ_0X^T + σ^2I)^{+}(y - Xμ_0), \qquad
        Σ = Σ_0 - Σ_0X^T(XΣ_0X^T + σ^2I)^{+}XΣ_0 .

    Computed in the prior's latent coordinates: with ``A = XL₀ = Ũ diag(a) Ṽᵀ`` (thin SVD),
    ``Σ = L₀ M L₀ᵀ`` with ``M = I − Ṽ diag(a²/(a²+σ²)) Ṽᵀ``, so the factor is
    ``L₀ M^{½} = L₀ − (L₀Ṽ) diag(1 − σ/√(a²+σ²)) Ṽᵀ``. For ``σ² = 0`` this is ``L₀ P_null(A)``.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Observations ``y = Xw + ε``, finite.
    prior : Gaussian
        ``N(μ₀, L₀L₀ᵀ)``, factor ``(d, r)``.
    noise_var : float
        Observation noise variance ``σ² ≥ 0``.

    Returns
    -------
    Gaussian
        The posterior, with a factor of the prior's shape ``(d, r)``.

    Raises
    ------
    TypeError
        For a ``prior`` that is not a :class:`Gaussian`.
    ValueError
        When ``noise_var = 0`` and the data cannot be interpolated by the prior's support
        (``y − Xμ₀ ∉ col(XL₀)``: the noiseless posterior does not exist), and the usual
        shape/finiteness errors.

    Notes
    -----
    Cost ``O(n·d·r + n·r·min(n, r))``; no ``d × d`` matrix.
    """
    noise_var = as_positive_float("noise_var", noise_var, allow_zero=True)
    X, y = _check_prior_problem(X, y, prior)
    L0 = prior.factor
    basis = row_space_basis(X @ L0)  # A = XL₀ = Ũ diag(a) Ṽᵀ in latent coordinates
    a, V, U = basis.s, basis.V, basis.U
    residual = y - X @ prior.mean
    if noise_var == 0.0:
        unexplained = residual - U @ (U.T @ residual)
        if np.linalg.norm(unexplained) > 1e-8 * max(np.linalg.norm(residual), 1e-300):
            raise ValueError("noise_var=0 needs data that the prior can interpolate: y - X mean0 has a "
                             f"component of relative size {np.linalg.norm(unexplained) / np.linalg.norm(residual):.2e} "
                             "outside col(X L0); use noise_var > 0")
    with np.errstate(over="ignore"):  # σ²/a or (a/σ)² beyond the float range: their limits 0 and 1 are exact
        coeff = (U.T @ residual) / (a + noise_var / a)  # a/(a² + σ²), exact where a² underflows
        # 1 − σ/√(a² + σ²), written so that neither a² + σ² nor σ² alone can overflow
        shrink = np.ones_like(a) if noise_var == 0.0 else 1.0 - 1.0 / np.sqrt(1.0 + (a / np.sqrt(noise_var)) ** 2)
    mean = prior.mean + L0 @ (V @ coeff)
    factor = L0 - (L0 @ V) * shrink @ V.T
    return Gaussian(mean, factor)
