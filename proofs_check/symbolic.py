"""Symbolic derivations (sympy) behind the linear-model claims of ``docs/theory.md``.

Each derivation is a pure function that *derives* a quantity (an expectation by replacing the
moments of ``z``, a gradient by differentiation, a recursion by ``rsolve``, a minimizer by solving
its stationarity equations, an integral by ``integrate``) and compares it with a *candidate*
closed form. The candidate defaults to the formula stated in docs/theory.md and can be replaced by
the caller: the tests pass deliberately wrong candidates to show that each comparison can fail.

Every function returns a small frozen dataclass holding the derived expression(s) and
``residuals``: named sympy expressions (or matrices) that are identically zero exactly when the
candidate agrees with the derivation. :func:`residual_size` turns a residual into a number:
``0.0`` when sympy proves it zero, otherwise the largest ``|residual|`` at random rational points
of its free symbols (so a wrong candidate gives a visibly nonzero error).

Sizes are kept small (``n ≤ 2``, ``d ≤ 3``, ``r ≤ 2``) so that each derivation runs in about a
second; the identities are polynomial/rational in the entries, so a symbolic proof at these
sizes with *generic symbolic entries* is a proof for those sizes, not a spot check.

References: docs/theory.md §1 (expected loss, gradients, W₂), §2 C1 (GD contraction, IBVI limit),
C5 (penalized W₂-GVI path), C7 (Gaussian moment generating function); docs/theory.md §2 (C14)
(Kronecker balance) and §2 (C16) (MC step thresholds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp

__all__ = [
    "Residual",
    "ExpectedLoss", "Gradients", "GDIterate", "PenalizedW2GVI", "GaussianMGF", "W2Bures",
    "IBVILimitExact", "KroneckerBalance", "MCStepThresholds",
    "expected_loss", "gradients", "gd_iterate", "penalized_w2_gvi", "gaussian_mgf",
    "w2_factor_vs_bures", "ibvi_limit_exact", "kronecker_balance", "mc_step_thresholds",
    "kronecker_loss_formula", "kronecker_gradient_formula", "balance_formula", "mc_gradient_moments_formula",
    "gd_slope_integral_formula", "mc_mean_square_threshold_formula", "descent_step_formula",
    "critical_sharpness_formula",
    "expected_loss_formula", "gradient_formula", "gd_contraction_factor", "gd_stable_upper",
    "penalized_formula", "mgf_formula", "bures_cross_term", "ibvi_limit_formula",
    "residual_size", "is_exactly_zero",
    "standard_normal_moment", "expectation_over_z", "psd_sqrt", "nuclear_norm",
]


# --------------------------------------------------------------------------------------------
# Residuals and their size
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Residual:
    """A named sympy expression or matrix that must be identically zero.

    Parameters
    ----------
    name : str
        What the residual compares, as a check prints it (``"d/dmu - candidate"``).
    value : sympy.Expr or sympy.MatrixBase
        Derived minus candidate; zero (every entry) exactly when the candidate is right.
    """

    name: str
    value: object  # sympy.Expr or sympy.MatrixBase


def _entries(value) -> list:
    if isinstance(value, sp.MatrixBase):
        return list(value)
    if isinstance(value, (tuple, list)):
        return [e for v in value for e in _entries(v)]
    return [sp.sympify(value)]


def is_exactly_zero(value) -> bool:
    """True when sympy proves every entry of ``value`` to be identically zero.

    Cheap routes first (``expand``, ``cancel``), ``simplify`` only where they do not decide:
    the residuals here are polynomials, rational functions or radical expressions.

    Parameters
    ----------
    value : sympy.Expr, sympy.MatrixBase, or a tuple or list of them
        The entries to test (nested tuples and lists are flattened).

    Returns
    -------
    bool
        True when every entry reduces to ``0``; False also when sympy cannot decide, so False is
        not a proof of a nonzero value (see :func:`residual_size`).
    """
    for entry in _entries(value):
        if entry == 0:
            continue
        reduced = sp.expand(entry)
        if reduced == 0:
            continue
        reduced = sp.cancel(sp.together(reduced))
        if reduced == 0:
            continue
        if sp.simplify(reduced) == 0:
            continue
        return False
    return True


def _random_value(symbol: sp.Symbol, rng: np.random.Generator):
    # Rationals keep the evaluation exact until the final evalf; the assumptions of each
    # symbol (integer, positive, real) decide the admissible range.
    if symbol.is_integer:
        return sp.Integer(int(rng.integers(1, 6)))
    numerator = int(rng.integers(1, 20))
    value = sp.Rational(numerator, int(rng.integers(1, 7)))
    if symbol.is_positive or symbol.is_nonnegative:
        return value
    return value if rng.random() < 0.5 else -value


def residual_size(value, rng: np.random.Generator | None = None, points: int = 3) -> float:
    """Size of a residual: 0.0 when sympy proves it zero, else ``max |residual|`` at random points.

    Parameters
    ----------
    value : sympy.Expr, sympy.Matrix or Residual
        The residual; every entry must vanish identically for a correct candidate.
    rng : numpy.random.Generator, optional
        Source of the random rational evaluation points (``default_rng(0)`` when omitted).
    points : int
        Number of random points for a residual that sympy does not prove zero.

    Returns
    -------
    float
        ``0.0`` for an exact symbolic zero; otherwise the largest absolute value found (from a
        30-digit evaluation at exact rational points; ``inf`` if an entry does not evaluate to
        a finite number). ``nan`` when sympy does not prove the residual zero but every point
        evaluates to zero: undecided, so a check with tolerance 0 fails rather than claiming
        a proof it does not have.

    Raises
    ------
    ValueError
        If ``points`` is not a positive integer.
    """
    if isinstance(value, Residual):
        value = value.value
    if not isinstance(points, (int, np.integer)) or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    if is_exactly_zero(value):
        return 0.0
    rng = np.random.default_rng(0) if rng is None else rng
    worst = 0.0
    for entry in _entries(value):
        symbols = sorted(entry.free_symbols, key=lambda s: s.name)
        for _ in range(points if symbols else 1):
            point = {s: _random_value(s, rng) for s in symbols}
            number = complex(sp.N(entry.subs(point), 30))
            size = abs(number)
            if not np.isfinite(size):
                return float("inf")
            worst = max(worst, size)
    return float(worst) if worst > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------

def _matrix(name: str, rows: int, cols: int, **assumptions) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", **assumptions))


def _vector(name: str, size: int, **assumptions) -> sp.Matrix:
    return sp.Matrix(size, 1, lambda i, _: sp.Symbol(f"{name}_{i}", **assumptions))


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def standard_normal_moment(k: int) -> sp.Expr:
    """``E[z^k]`` for ``z ~ N(0, 1)``, by integrating against the density (not from a table).

    Parameters
    ----------
    k : int
        The order, ``k ≥ 0``.

    Returns
    -------
    sympy.Expr
        The exact moment: ``(k − 1)!! = 1·3···(k − 1)`` for even ``k``, ``0`` for odd ``k``.

    Raises
    ------
    ValueError
        If ``k`` is not a non-negative integer.
    """
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    z = sp.Symbol("z", real=True)
    density = sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)
    return sp.simplify(sp.integrate(z ** int(k) * density, (z, -sp.oo, sp.oo)))


def expectation_over_z(expr: sp.Expr, zs, moments: dict | None = None) -> sp.Expr:
    """``E_z[expr]`` for a polynomial in independent standard normal ``zs``.

    Each monomial ``Π z_i^{k_i}`` is replaced by ``Π E[z^{k_i}]`` (independence), with the
    one-dimensional moments integrated by :func:`standard_normal_moment`. A derivation that takes
    several expectations passes one ``moments`` dict (order → moment) so that each moment is
    integrated once; it is filled in as needed.

    Parameters
    ----------
    expr : sympy.Expr
        A polynomial in the symbols ``zs`` (any other symbols are coefficients).
    zs : iterable of sympy.Symbol
        The independent standard normal variables.
    moments : dict of int to sympy.Expr, optional
        Cache of ``E[z^k]`` by ``k``, updated in place; a new one when omitted.

    Returns
    -------
    sympy.Expr
        ``E_z[expr]``, expanded, free of ``zs``.

    Raises
    ------
    sympy.PolynomialError
        If ``expr`` is not a polynomial in ``zs``.
    """
    zs = list(zs)
    poly = sp.Poly(sp.expand(expr), *zs)
    moments = {} if moments is None else moments
    total = sp.Integer(0)
    for powers, coefficient in poly.terms():
        factor = sp.Integer(1)
        for k in powers:
            if k not in moments:
                moments[k] = standard_normal_moment(k)
            factor *= moments[k]
        total += coefficient * factor
    return sp.expand(total)


def psd_sqrt(matrix: sp.Matrix) -> sp.Matrix:
    """Symmetric PSD square root ``Σ_k √λ_k P_k`` from an exact orthonormal eigenbasis.

    Each eigenspace is orthonormalized (Gram–Schmidt) so that repeated eigenvalues are handled.

    Parameters
    ----------
    matrix : sympy.Matrix, shape (p, p)
        A symmetric positive semi-definite matrix with exact (rational or symbolic) entries.

    Returns
    -------
    sympy.Matrix, shape (p, p)
        The symmetric PSD root ``S`` with ``S² = matrix``.

    Raises
    ------
    ValueError
        If ``matrix`` is not a square sympy Matrix.
    """
    if not isinstance(matrix, sp.MatrixBase) or not matrix.is_square:
        raise ValueError("matrix must be a square sympy Matrix")
    if matrix.rows == 1:
        return sp.Matrix([[sp.sqrt(matrix[0, 0])]])
    if matrix.is_diagonal():
        return sp.diag(*[sp.sqrt(matrix[i, i]) for i in range(matrix.rows)])
    root = sp.zeros(matrix.rows, matrix.cols)
    for value, _, vectors in matrix.eigenvects():
        for q in sp.GramSchmidt(vectors, orthonormal=True):
            root += sp.sqrt(value) * q * q.T
    return root.applyfunc(sp.radsimp)


def nuclear_norm(matrix: sp.Matrix) -> sp.Expr:
    """``‖A‖_*`` = sum of singular values = ``Σ √eig(AᵀA)`` (with multiplicities), exact.

    Parameters
    ----------
    matrix : sympy.Matrix, shape (p, q)
        The matrix ``A``.

    Returns
    -------
    sympy.Expr
        The nuclear norm, a sum of square roots of the exact eigenvalues of ``AᵀA``.
    """
    gram = matrix.T * matrix
    if gram.is_diagonal():
        return sum((sp.sqrt(gram[i, i]) for i in range(gram.rows)), sp.Integer(0))
    return sum((mult * sp.sqrt(ev) for ev, mult in gram.eigenvals().items()), sp.Integer(0))


# --------------------------------------------------------------------------------------------
# (a) Expected loss under q = N(μ, LLᵀ)
# --------------------------------------------------------------------------------------------

def expected_loss_formula(X, y, mu, L):
    """docs/theory.md §1: ``‖y − Xμ‖² + ‖XL‖²_F``.

    Parameters
    ----------
    X, y, mu, L : sympy.Matrix
        Data ``(n, d)``, targets ``(n, 1)``, mean ``(d, 1)`` and factor ``(d, r)``.

    Returns
    -------
    sympy.Expr
        The expected loss of ``N(μ, LLᵀ)``.
    """
    residual = y - X * mu
    return (residual.T * residual)[0, 0] + sum(e ** 2 for e in X * L)


@dataclass(frozen=True)
class ExpectedLoss:
    """``E_{w~N(μ,LLᵀ)} ‖y − Xw‖²`` derived from the moments of ``z`` (``w = μ + Lz``).

    Parameters
    ----------
    X : sympy.Matrix, shape (n, d)
        Data with real symbolic entries ``x_ij``.
    y : sympy.Matrix, shape (n, 1)
        Targets ``y_i``.
    mu : sympy.Matrix, shape (d, 1)
        Mean ``m_i``.
    L : sympy.Matrix, shape (d, r)
        Factor ``l_ij``.
    derived : sympy.Expr
        ``E_z‖y − X(μ + Lz)‖²`` from the moments of ``z``.
    candidate : sympy.Expr
        The candidate closed form at the same symbols, expanded.
    residuals : tuple of Residual
        One residual, ``derived − candidate``.
    """

    X: sp.Matrix
    y: sp.Matrix
    mu: sp.Matrix
    L: sp.Matrix
    derived: sp.Expr
    candidate: sp.Expr
    residuals: tuple[Residual, ...]


def expected_loss(n: int = 2, d: int = 3, r: int = 2,
                  candidate: Callable | None = None) -> ExpectedLoss:
    """Derive ``E‖y − Xw‖²`` for ``w = μ + Lz``, ``z ~ N(0, I_r)``, with symbolic entries.

    .. math:: \\mathbb E_z \\|y - X(\\mu + Lz)\\|^2 = \\|y - X\\mu\\|^2 + \\|XL\\|_F^2

    The square is expanded as a polynomial in ``z`` and every monomial replaced by its moment
    (moments integrated against the normal density), so the right side is derived, not typed.

    Parameters
    ----------
    n, d, r : int
        Sizes of ``X (n×d)``, ``y (n)``, ``μ (d)``, ``L (d×r)``; all entries are real symbols.
    candidate : callable ``(X, y, mu, L) -> Expr``, optional
        The closed form compared with the derivation (default :func:`expected_loss_formula`).

    Returns
    -------
    ExpectedLoss
        The symbols, the derived and candidate expressions and their residual.

    Raises
    ------
    ValueError
        If a size is not a positive integer.
    """
    _check_sizes(n=n, d=d, r=r)
    candidate = expected_loss_formula if candidate is None else candidate
    X = _matrix("x", n, d, real=True)
    y = _vector("y", n, real=True)
    mu = _vector("m", d, real=True)
    L = _matrix("l", d, r, real=True)
    z = _vector("z", r, real=True)
    residual = y - X * (mu + L * z)
    derived = expectation_over_z((residual.T * residual)[0, 0], list(z))
    stated = sp.expand(candidate(X, y, mu, L))
    return ExpectedLoss(X=X, y=y, mu=mu, L=L, derived=derived, candidate=stated,
                        residuals=(Residual("E||y-Xw||^2 - candidate", sp.expand(derived - stated)),))


# --------------------------------------------------------------------------------------------
# (b) Gradients
# --------------------------------------------------------------------------------------------

def gradient_formula(X, y, mu, L):
    """docs/theory.md §1: ``∇_μ = −2Xᵀ(y − Xμ)``, ``∇_L = 2XᵀXL``.

    Parameters
    ----------
    X, y, mu, L : sympy.Matrix
        As in :func:`expected_loss_formula`.

    Returns
    -------
    tuple of sympy.Matrix
        ``(∇_μ, ∇_L)`` of shapes ``(d, 1)`` and ``(d, r)``.
    """
    return -2 * X.T * (y - X * mu), 2 * X.T * X * L


@dataclass(frozen=True)
class Gradients:
    """Gradients of the *derived* expected loss, by sympy differentiation.

    Parameters
    ----------
    grad_mean : sympy.Matrix, shape (d, 1)
        ``∂ℓ̄/∂μ`` entrywise.
    grad_factor : sympy.Matrix, shape (d, r)
        ``∂ℓ̄/∂L`` entrywise.
    residuals : tuple of Residual
        The two gradients minus the candidate's.
    """

    grad_mean: sp.Matrix
    grad_factor: sp.Matrix
    residuals: tuple[Residual, ...]


def gradients(n: int = 2, d: int = 3, r: int = 2, candidate: Callable | None = None) -> Gradients:
    """Differentiate the expected loss derived by :func:`expected_loss` entrywise.

    .. math:: \\nabla_\\mu \\bar\\ell = -2X^\\top(y - X\\mu),\\qquad \\nabla_L \\bar\\ell = 2X^\\top X L

    Parameters
    ----------
    n, d, r : int
        Sizes as in :func:`expected_loss`.
    candidate : callable ``(X, y, mu, L) -> (d×1 Matrix, d×r Matrix)``, optional
        Closed-form gradients compared entrywise (default :func:`gradient_formula`).

    Returns
    -------
    Gradients
        The derived gradients and their residuals against the candidate.

    Raises
    ------
    ValueError
        If a size is not a positive integer.
    """
    loss = expected_loss(n, d, r)
    candidate = gradient_formula if candidate is None else candidate
    grad_mean = loss.mu.applyfunc(lambda m: sp.diff(loss.derived, m))
    grad_factor = loss.L.applyfunc(lambda l: sp.diff(loss.derived, l))
    cand_mean, cand_factor = candidate(loss.X, loss.y, loss.mu, loss.L)
    return Gradients(
        grad_mean=grad_mean, grad_factor=grad_factor,
        residuals=(Residual("d/dmu - candidate", (grad_mean - cand_mean).applyfunc(sp.expand)),
                   Residual("d/dL - candidate", (grad_factor - cand_factor).applyfunc(sp.expand))))


# --------------------------------------------------------------------------------------------
# (c) Closed-form GD iterate
# --------------------------------------------------------------------------------------------

def gd_contraction_factor(eta, s):
    """docs/theory.md C1: per-step factor ``1 − 2ηs²`` along a right singular vector with value ``s``.

    Parameters
    ----------
    eta : sympy.Expr
        The step ``η``.
    s : sympy.Expr
        The singular value ``s``.

    Returns
    -------
    sympy.Expr
        The factor by which one GD step multiplies the error along that direction.
    """
    return 1 - 2 * eta * s ** 2


def gd_stable_upper(s):
    """docs/theory.md C1: GD is stable iff ``0 < η < 1/s²``.

    Parameters
    ----------
    s : sympy.Expr
        The (largest) singular value ``s``.

    Returns
    -------
    sympy.Expr
        The upper end ``1/s²`` of the stable steps.
    """
    return 1 / s ** 2


@dataclass(frozen=True)
class GDIterate:
    """Full-batch GD on the mean, solved in the eigenbasis of ``XᵀX``.

    Parameters
    ----------
    solution : sympy.Expr
        ``e_t`` from ``rsolve`` of ``e_{t+1} = c e_t`` with ``e_0`` given.
    factor : sympy.Expr
        ``e_{t+1}/e_t`` of that solution, in ``η`` and ``s``.
    stable_set : sympy.Set
        ``{η real : |c| < 1}`` from ``solve_univariate_inequality``.
    squared_singular_values : tuple of sympy.Expr
        The eigenvalues of ``XᵀX`` of the rational example (``3``, ``1`` and ``0``).
    residuals : tuple of Residual
        The seven residuals of the four steps of :func:`gd_iterate`.
    """

    solution: sp.Expr          # e_t from rsolve
    factor: sp.Expr            # e_{t+1}/e_t from the solution
    stable_set: sp.Set         # {η : |factor| < 1}, from solve_univariate_inequality
    squared_singular_values: tuple
    residuals: tuple[Residual, ...]


# An exact example with XXᵀ = [[2, 1], [1, 2]]: squared singular values 3 and 1 (and 0 on null(X)).
_GD_EXAMPLE_X = ((1, 1, 0), (0, 1, 1))


def gd_iterate(candidate_factor: Callable | None = None,
               candidate_upper: Callable | None = None) -> GDIterate:
    """Solve ``μ_{t+1} = μ_t + 2ηXᵀ(y − Xμ_t)`` in the eigenbasis and derive its stability set.

    Steps (each a residual):

    1. error form: with ``y = Xμ̂`` (any interpolant), ``μ_{t+1} − μ̂ = (I − 2ηXᵀX)(μ_t − μ̂)``
       for a symbolic ``2×3`` ``X``;
    2. eigenbasis: each exact eigenvector ``v`` of ``XᵀX`` (eigenvalue ``s²``) for the rational
       example is an eigenvector of the GD map with eigenvalue ``candidate_factor(η, s)``;
    3. the coefficient of the scalar recursion ``e_{t+1} = c e_t`` is derived from the GD map
       on a right singular vector of a symbolic ``X = [a, b]`` (``s² = a² + b²``); ``rsolve``
       with ``e_0`` given is compared with ``candidate_factor(η, s)^t e_0``, and the
       contraction ratio ``e_{t+1}/e_t`` with ``candidate_factor(η, s)``;
    4. ``{η real : |c| < 1}`` by ``solve_univariate_inequality`` against
       ``(0, candidate_upper(s))``.

    Parameters
    ----------
    candidate_factor : callable ``(eta, s) -> Expr``, optional
        Default :func:`gd_contraction_factor`.
    candidate_upper : callable ``(s) -> Expr``, optional
        Upper end of the stable step interval, default :func:`gd_stable_upper`.

    Returns
    -------
    GDIterate
        The solved recursion, its stability set and the residuals of the four steps.

    Raises
    ------
    RuntimeError
        If sympy does not reduce the recursion, solve it or find an interval of stable steps.
    """
    candidate_factor = gd_contraction_factor if candidate_factor is None else candidate_factor
    candidate_upper = gd_stable_upper if candidate_upper is None else candidate_upper
    eta = sp.Symbol("eta", positive=True)
    s = sp.Symbol("s", positive=True)

    # 1. error recursion for a generic X; the interpolant exists because rank(X) = n.
    X = _matrix("x", 2, 3, real=True)
    mu_t = _vector("m", 3, real=True)
    mu_hat = _vector("h", 3, real=True)
    y = X * mu_hat
    step = mu_t + 2 * eta * X.T * (y - X * mu_t)
    gd_map = sp.eye(3) - 2 * eta * X.T * X
    error_form = (step - mu_hat - gd_map * (mu_t - mu_hat)).applyfunc(sp.expand)

    # 2. eigenbasis of the exact example.
    Xe = sp.Matrix(_GD_EXAMPLE_X)
    gram = Xe.T * Xe
    map_e = sp.eye(3) - 2 * eta * gram
    eigen_residual = []
    squared = []
    for value, _, vectors in gram.eigenvects():
        squared.append(value)
        for v in vectors:
            eigen_residual.append((map_e * v - candidate_factor(eta, sp.sqrt(value)) * v)
                                  .applyfunc(sp.expand))
    eigen_residual = sp.Matrix.vstack(*eigen_residual)

    # 3. the scalar recursion along a right singular vector v of a symbolic X = [a, b]:
    #    XᵀXv = s²v with s² = a² + b², and the GD map multiplies v by vᵀ(I − 2ηXᵀX)v / vᵀv.
    a, b = sp.symbols("a b", real=True)
    X1 = sp.Matrix([[a, b]])
    v = X1.T
    singular_vector = (X1.T * X1 * v - (a ** 2 + b ** 2) * v).applyfunc(sp.expand)
    map_1 = sp.eye(2) - 2 * eta * X1.T * X1
    coefficient = sp.cancel((v.T * map_1 * v)[0, 0] / (v.T * v)[0, 0])
    coefficient = sp.expand(sp.expand(coefficient).subs(a ** 2, s ** 2 - b ** 2))
    if coefficient.free_symbols - {eta, s}:
        raise RuntimeError(f"GD coefficient did not reduce to (eta, s): {coefficient}")

    e = sp.Function("e")
    t = sp.Symbol("t", integer=True, nonnegative=True)
    e0 = sp.Symbol("e0", real=True)
    solution = sp.rsolve(e(t + 1) - coefficient * e(t), e(t), {e(0): e0})
    if solution is None:
        raise RuntimeError("sympy.rsolve found no solution of the GD recursion")
    # Left unsimplified: expand decides these, while simplify first rewrites powers of
    # (1 − 2ηs²) into (−1)^t (2ηs² − 1)^t forms that it then cannot cancel.
    recursion_check = solution.subs(t, t + 1) - coefficient * solution
    closed = solution - candidate_factor(eta, s) ** t * e0
    factor = sp.simplify(solution.subs(t, t + 1) / solution)
    factor_residual = sp.expand(factor - candidate_factor(eta, s))

    # 4. stability: η is any real here so that η > 0 is derived, not assumed.
    eta_real = sp.Symbol("eta_r", real=True)
    stable = sp.solve_univariate_inequality(
        sp.Abs(coefficient.subs(eta, eta_real)) < 1, eta_real, relational=False)
    if not isinstance(stable, sp.Interval):
        raise RuntimeError(f"stability set is not an interval: {stable}")
    upper = candidate_upper(s)
    interval_residual = sp.Matrix([stable.start - 0, stable.end - upper,
                                   int(not stable.left_open), int(not stable.right_open)])
    return GDIterate(
        solution=solution, factor=factor, stable_set=stable,
        squared_singular_values=tuple(squared),
        residuals=(Residual("error recursion (I-2eta X^T X)", error_form),
                   Residual("eigenvectors of the GD map", eigen_residual),
                   Residual("right singular vector of X = [a, b]", singular_vector),
                   Residual("rsolve solution satisfies recursion", recursion_check),
                   Residual("e_t - candidate^t e_0", closed),
                   Residual("e_{t+1}/e_t - candidate", factor_residual),
                   Residual("stable interval - (0, candidate)", interval_residual)))


# --------------------------------------------------------------------------------------------
# (d) Penalized W₂-GVI: stationarity and closed form
# --------------------------------------------------------------------------------------------

def penalized_formula(X, y, mu0, L0, lam):
    """docs/theory.md C5: ``μ_λ = μ₀ + Xᵀ(XXᵀ+λI)⁻¹(y − Xμ₀)``, ``L_λ = (I − Xᵀ(XXᵀ+λI)⁻¹X)L₀``.

    Parameters
    ----------
    X, y, mu0, L0 : sympy.Matrix
        Data ``(n, d)``, targets ``(n, 1)``, prior mean ``(d, 1)`` and prior factor ``(d, r)``.
    lam : sympy.Expr
        The penalty weight ``λ > 0``.

    Returns
    -------
    tuple of sympy.Matrix
        ``(μ_λ, L_λ)`` of shapes ``(d, 1)`` and ``(d, r)``.
    """
    inner = (X * X.T + lam * sp.eye(X.rows)).inv()
    return mu0 + X.T * inner * (y - X * mu0), (sp.eye(X.cols) - X.T * inner * X) * L0


@dataclass(frozen=True)
class PenalizedW2GVI:
    """Solutions of the stationarity equations of the (aligned) penalized W₂-GVI objective.

    Parameters
    ----------
    mean_symbolic : sympy.Matrix, shape (2, 1)
        ``μ_λ`` of the fully symbolic case ``n = 1, d = 2, r = 2``.
    factor_symbolic : sympy.Matrix, shape (2, 2)
        ``L_λ`` of that case.
    mean_rational : sympy.Matrix, shape (3, 1)
        ``μ_λ`` of the rational case ``n = 2, d = 3, r = 2``, rational functions of ``λ``.
    factor_rational : sympy.Matrix, shape (3, 2)
        ``L_λ`` of the rational case.
    shrinkage : sympy.Matrix, shape (2, 2)
        ``A`` with ``L_λ = A L₀`` in the symbolic case (symmetric positive definite).
    residuals : tuple of Residual
        Mean and factor against the candidate in both cases, then the three facts about ``A``.
    """

    mean_symbolic: sp.Matrix
    factor_symbolic: sp.Matrix
    mean_rational: sp.Matrix
    factor_rational: sp.Matrix
    shrinkage: sp.Matrix  # A with L_λ = A L₀ (symbolic case)
    residuals: tuple[Residual, ...]


# n = 2, d = 3 with small integers; λ stays symbolic.
# μ₀ and both columns of L₀ have components in row(X) and null(X) = span((−2, 1, 1)), and
# y ≠ Xμ₀, so neither the data term nor the prior term is trivially satisfied.
_PENALIZED_EXAMPLE = dict(X=((1, 2, 0), (0, 1, -1)), y=(3, 1), mu0=(1, 1, 2),
                          L0=((1, 0), (1, 1), (0, 3)))


def _solve_stationarity(X, y, mu0, L0, lam):
    d, r = L0.shape
    mu = _vector("u", d, real=True)
    L = _matrix("v", d, r, real=True)
    fit = y - X * mu
    objective = ((fit.T * fit)[0, 0] + sum(e ** 2 for e in X * L)
                 + lam * (sum(e ** 2 for e in mu - mu0) + sum(e ** 2 for e in L - L0)))
    unknowns = list(mu) + list(L)
    equations = [sp.diff(objective, u) for u in unknowns]
    solutions = sp.solve(equations, unknowns, dict=True)
    if len(solutions) != 1:
        raise RuntimeError(f"stationarity equations have {len(solutions)} solutions, expected 1")
    sol = solutions[0]
    mean = mu.applyfunc(lambda u: sp.cancel(sol[u]))
    factor = L.applyfunc(lambda v: sp.cancel(sol[v]))
    return mean, factor


def penalized_w2_gvi(candidate: Callable | None = None) -> PenalizedW2GVI:
    """Solve the stationarity equations of ``‖y−Xμ‖² + ‖XL‖²_F + λ(‖μ−μ₀‖² + ‖L−L₀‖²_F)``.

    **Alignment assumption.** The W₂ factor term ``‖L‖² + ‖L₀‖² − 2‖LᵀL₀‖_*`` equals
    ``‖L − L₀‖²_F`` when ``LᵀL₀`` is symmetric PSD. This loses nothing: replacing ``L`` by
    ``LQ`` (``Q`` orthogonal) leaves ``LLᵀ``, ``‖XL‖`` and ``‖LᵀL₀‖_*`` unchanged, and some
    ``Q`` makes ``tr(QᵀLᵀL₀) = ‖LᵀL₀‖_*`` (von Neumann), so both problems have the same
    minimum. The solution found here is ``L_λ = A L₀`` with ``A`` symmetric positive definite,
    so ``L_λᵀL₀ = L₀ᵀAL₀`` is symmetric PSD: the assumption holds at the optimum. Both facts
    about ``A`` are residuals below. The objective is strictly convex for ``λ > 0`` (Hessian
    ``2(XᵀX + λI)``), so the unique stationary point is the minimizer.

    Two cases are solved: fully symbolic ``n=1, d=2, r=2`` and rational ``n=2, d=3, r=2``
    with symbolic ``λ > 0``. The push-through identity
    ``λ(XᵀX + λI)⁻¹ = I − Xᵀ(XXᵀ + λI)⁻¹X`` is not used: it is what the comparison proves.

    Parameters
    ----------
    candidate : callable ``(X, y, mu0, L0, lam) -> (mean, factor)``, optional
        Closed form compared with the solved stationary point (default :func:`penalized_formula`).

    Returns
    -------
    PenalizedW2GVI
        The stationary points of both cases, the shrinkage ``A`` and the residuals.

    Raises
    ------
    RuntimeError
        If ``sympy.solve`` does not find exactly one stationary point.
    """
    candidate = penalized_formula if candidate is None else candidate
    lam = sp.Symbol("lambda", positive=True)

    X = _matrix("x", 1, 2, real=True)
    y = _vector("y", 1, real=True)
    mu0 = _vector("p", 2, real=True)
    L0 = _matrix("k", 2, 2, real=True)
    mean_s, factor_s = _solve_stationarity(X, y, mu0, L0, lam)
    cand_mean_s, cand_factor_s = candidate(X, y, mu0, L0, lam)
    # L_λ is linear in L₀ column by column: A is the Jacobian of a column.
    shrinkage = factor_s[:, 0].jacobian(L0[:, 0]).applyfunc(sp.cancel)
    shrink_use = (factor_s - shrinkage * L0).applyfunc(sp.cancel)
    symmetric = (shrinkage - shrinkage.T).applyfunc(sp.cancel)
    # Positive definite for λ > 0: sympy decides the sign of every eigenvalue from the
    # assumptions (λ > 0, entries of X real).
    not_positive = [ev for ev in shrinkage.eigenvals()
                    if sp.simplify(ev).is_positive is not True]

    ex = _PENALIZED_EXAMPLE
    Xr, yr = sp.Matrix(ex["X"]), sp.Matrix(ex["y"])
    mu0r, L0r = sp.Matrix(ex["mu0"]), sp.Matrix(ex["L0"])
    mean_r, factor_r = _solve_stationarity(Xr, yr, mu0r, L0r, lam)
    cand_mean_r, cand_factor_r = candidate(Xr, yr, mu0r, L0r, lam)

    def diff(a, b):
        return (a - b).applyfunc(lambda e: sp.cancel(sp.together(e)))

    return PenalizedW2GVI(
        mean_symbolic=mean_s, factor_symbolic=factor_s, mean_rational=mean_r,
        factor_rational=factor_r, shrinkage=shrinkage,
        residuals=(Residual("mean, symbolic n=1 d=2", diff(mean_s, cand_mean_s)),
                   Residual("factor, symbolic n=1 d=2", diff(factor_s, cand_factor_s)),
                   Residual("mean, rational n=2 d=3", diff(mean_r, cand_mean_r)),
                   Residual("factor, rational n=2 d=3", diff(factor_r, cand_factor_r)),
                   Residual("L_lambda = A L0", shrink_use),
                   Residual("A symmetric", symmetric),
                   Residual("number of eigenvalues of A not proved positive", sp.Integer(len(not_positive)))))


# --------------------------------------------------------------------------------------------
# (e) Gaussian moment generating function (exponential loss)
# --------------------------------------------------------------------------------------------

def mgf_formula(x, y_label, mu, L):
    """docs/theory.md C7: ``E exp(−y xᵀw) = exp(−y xᵀμ + ½‖Lᵀx‖²)`` for ``y = ±1``.

    Parameters
    ----------
    x : sympy.Matrix, shape (d, 1)
        The input.
    y_label : int
        The label, ``+1`` or ``−1``.
    mu : sympy.Matrix, shape (d, 1)
        The mean.
    L : sympy.Matrix, shape (d, r)
        The factor.

    Returns
    -------
    sympy.Expr
        ``E exp(−y xᵀw)`` for ``w ~ N(μ, LLᵀ)``.
    """
    proj = L.T * x
    return sp.exp(-y_label * (x.T * mu)[0, 0] + sp.Rational(1, 2) * (proj.T * proj)[0, 0])


@dataclass(frozen=True)
class GaussianMGF:
    """``E exp(a w)`` integrated in 1-D, then lifted to ``w ~ N(μ, LLᵀ)`` through ``xᵀw``.

    Parameters
    ----------
    one_dimensional : sympy.Expr
        ``E e^{aw}`` for ``w ~ N(m, s²)``, integrated: ``exp(am + a²s²/2)`` in ``a, m, s``.
    projection_mean : sympy.Expr
        ``E[xᵀw] = xᵀμ`` from the moments of ``z``.
    projection_variance : sympy.Expr
        ``Var[xᵀw] = ‖Lᵀx‖²`` from the moments of ``z``.
    residuals : tuple of Residual
        Log of each route minus log of the candidate, for ``y = +1`` and ``y = −1``.
    """

    one_dimensional: sp.Expr
    projection_mean: sp.Expr
    projection_variance: sp.Expr
    residuals: tuple[Residual, ...]


def gaussian_mgf(d: int = 2, r: int = 2, candidate: Callable | None = None) -> GaussianMGF:
    """Derive ``E_{w~N(μ,LLᵀ)} exp(−y xᵀw)`` for ``y = ±1``.

    .. math:: \\mathbb E\\, e^{a w} = e^{a m + a^2 s^2/2}\\ (w \\sim N(m, s^2)),\\qquad
              \\mathbb E\\, e^{-y x^\\top w} = e^{-y x^\\top\\mu + \\frac12 \\|L^\\top x\\|^2}

    The 1-D formula is ``sympy.integrate`` of ``e^{aw}`` against the normal density. The
    projection ``xᵀw = xᵀμ + (Lᵀx)ᵀz`` is Gaussian; its mean and variance are derived from the
    moments of ``z``. A second route integrates each independent ``z_k`` separately
    (``E e^{cᵀz} = Π E e^{c_k z_k}``), without the projection.

    Parameters
    ----------
    d, r : int
        Sizes of ``x, μ (d)`` and ``L (d×r)``, symbolic real entries.
    candidate : callable ``(x, y_label, mu, L) -> Expr``, optional
        Default :func:`mgf_formula`.

    Returns
    -------
    GaussianMGF
        The 1-D integral, the projection's moments and the residuals of both routes.

    Raises
    ------
    ValueError
        If a size is not a positive integer.
    """
    _check_sizes(d=d, r=r)
    candidate = mgf_formula if candidate is None else candidate
    w = sp.Symbol("w", real=True)
    a = sp.Symbol("a", real=True)
    m = sp.Symbol("m", real=True)
    s = sp.Symbol("s", positive=True)
    density = sp.exp(-(w - m) ** 2 / (2 * s ** 2)) / sp.sqrt(2 * sp.pi * s ** 2)
    one_d = sp.simplify(sp.integrate(sp.exp(a * w) * density, (w, -sp.oo, sp.oo)))

    x = _vector("x", d, real=True)
    mu = _vector("m", d, real=True)
    L = _matrix("l", d, r, real=True)
    z = _vector("z", r, real=True)
    projection = (x.T * (mu + L * z))[0, 0]
    proj_mean = expectation_over_z(projection, list(z))
    proj_var = sp.expand(expectation_over_z(projection ** 2, list(z)) - proj_mean ** 2)
    proj_scale = sp.sqrt(proj_var)

    # Route 2: product of independent 1-D integrals with m = 0, s = 1.
    zeta = sp.Symbol("zeta", real=True)
    c = sp.Symbol("c", real=True)
    unit = sp.simplify(sp.integrate(sp.exp(c * zeta) * sp.exp(-zeta ** 2 / 2) / sp.sqrt(2 * sp.pi),
                                    (zeta, -sp.oo, sp.oo)))

    residuals = []
    for label in (1, -1):
        via_projection = one_d.subs({a: -label, m: proj_mean, s: proj_scale}, simultaneous=True)
        coefficients = (-label) * (L.T * x)
        via_product = sp.exp(-label * (x.T * mu)[0, 0])
        for ck in coefficients:
            via_product *= unit.subs(c, ck)
        stated = candidate(x, label, mu, L)
        # Compare logarithms: both sides are positive exponentials, the log is polynomial.
        residuals.append(Residual(f"log E exp(-y x^T w) - log candidate, projection, y={label:+d}",
                                  sp.expand(sp.expand_log(sp.log(via_projection) - sp.log(stated),
                                                          force=True))))
        residuals.append(Residual(f"log E exp(-y x^T w) - log candidate, product, y={label:+d}",
                                  sp.expand(sp.expand_log(sp.log(via_product) - sp.log(stated),
                                                          force=True))))
    return GaussianMGF(one_dimensional=one_d, projection_mean=proj_mean,
                       projection_variance=proj_var, residuals=tuple(residuals))


# --------------------------------------------------------------------------------------------
# (f) W₂ factor formula against the Bures formula
# --------------------------------------------------------------------------------------------

def bures_cross_term(sigma1, sigma2):
    """Bures cross term ``tr (Σ₂^{½} Σ₁ Σ₂^{½})^{½}`` by exact diagonalizations.

    Parameters
    ----------
    sigma1, sigma2 : sympy.Matrix, shape (p, p)
        Symmetric PSD covariances ``Σ₁`` and ``Σ₂`` with exact entries.

    Returns
    -------
    sympy.Expr
        The trace, a sum of square roots of exact eigenvalues (roots by :func:`psd_sqrt`).
    """
    root2 = psd_sqrt(sigma2)
    middle = (root2 * sigma1 * root2).applyfunc(sp.radsimp)
    if middle.is_diagonal():
        return sum((sp.sqrt(middle[i, i]) for i in range(middle.rows)), sp.Integer(0))
    return sum((mult * sp.sqrt(ev) for ev, mult in middle.eigenvals().items()), sp.Integer(0))


def _w2_squared_factor(m1, L1, m2, L2):
    dm = m1 - m2
    return ((dm.T * dm)[0, 0] + sum(e ** 2 for e in L1) + sum(e ** 2 for e in L2)
            - 2 * nuclear_norm(L1.T * L2))


def _w2_squared_bures(m1, L1, m2, L2, cross):
    dm = m1 - m2
    s1, s2 = L1 * L1.T, L2 * L2.T
    return (dm.T * dm)[0, 0] + s1.trace() + s2.trace() - 2 * cross(s1, s2)


@dataclass(frozen=True)
class W2Bures:
    """W₂² by the factor formula and by the Bures formula, three cases.

    Parameters
    ----------
    factor_values : tuple of sympy.Expr
        ``‖μ₁−μ₂‖² + ‖L₁‖² + ‖L₂‖² − 2‖L₁ᵀL₂‖_*`` for the 1-D, diagonal and general cases.
    bures_values : tuple of sympy.Expr
        The Bures formula with the candidate cross term, for the same cases.
    residuals : tuple of Residual
        Factor minus Bures value, per case.
    mpmath_max_abs_difference : float
        Largest ``|‖L₁ᵀL₂‖_* − tr(Σ₂^{½}Σ₁Σ₂^{½})^{½}|`` over the random mpmath pairs
        (``0.0`` when there are none).
    """

    factor_values: tuple
    bures_values: tuple
    residuals: tuple[Residual, ...]
    mpmath_max_abs_difference: float


# A non-commuting pair of covariances with exact rational factors.
_BURES_EXAMPLE = dict(m1=(1, -1), L1=((1, 2), (0, 1)), m2=(0, 2), L2=((2, 0), (1, 1)))


def w2_factor_vs_bures(candidate_cross: Callable | None = None,
                       rng: np.random.Generator | None = None, mp_cases: int = 3,
                       mp_digits: int = 50) -> W2Bures:
    """Compare ``‖μ₁−μ₂‖² + ‖L₁‖² + ‖L₂‖² − 2‖L₁ᵀL₂‖_*`` with the Bures formula.

    .. math:: W_2^2 = \\|\\mu_1-\\mu_2\\|^2 + \\operatorname{tr}(\\Sigma_1 + \\Sigma_2
              - 2(\\Sigma_2^{1/2}\\Sigma_1\\Sigma_2^{1/2})^{1/2})

    Cases: 1-D with symbolic real ``m₁, m₂, a, b`` (exact); commuting diagonal ``2×2`` with
    symbolic real entries (exact); a general non-commuting ``2×2`` pair with rational factors,
    square roots by exact diagonalization (algebraic numbers, exact). In addition
    ``mp_cases`` random rational ``2×2`` pairs drawn from ``rng`` are compared in mpmath at
    ``mp_digits`` digits (``mpmath.sqrtm`` against ``mpmath.svd_r``) — a numeric cross-check of
    the identity itself, independent of ``candidate_cross``.

    Parameters
    ----------
    candidate_cross : callable ``(Sigma1, Sigma2) -> Expr``, optional
        The Bures cross term used in the three exact cases (default :func:`bures_cross_term`).
    rng : numpy.random.Generator, optional
        Draws the random rational pairs (``default_rng(0)`` when omitted).
    mp_cases, mp_digits : int
        Number of random cases (``≥ 0``) and working precision in decimal digits (``≥ 1``).

    Returns
    -------
    W2Bures
        Both values of the three exact cases, their residuals and the mpmath gap.

    Raises
    ------
    ValueError
        If ``mp_cases`` is not a non-negative integer or ``mp_digits`` not a positive one.
    """
    _check_sizes(mp_digits=mp_digits)
    if not isinstance(mp_cases, int) or mp_cases < 0:
        raise ValueError(f"mp_cases must be a non-negative integer, got {mp_cases!r}")
    cross = bures_cross_term if candidate_cross is None else candidate_cross
    rng = np.random.default_rng(0) if rng is None else rng

    m1, m2, a, b = sp.symbols("m1 m2 a b", real=True)
    one = (sp.Matrix([m1]), sp.Matrix([[a]]), sp.Matrix([m2]), sp.Matrix([[b]]))
    a1, a2, b1, b2 = sp.symbols("a1 a2 b1 b2", real=True)
    mv1 = _vector("p", 2, real=True)
    mv2 = _vector("q", 2, real=True)
    diag = (mv1, sp.diag(a1, a2), mv2, sp.diag(b1, b2))
    ex = _BURES_EXAMPLE
    general = (sp.Matrix(ex["m1"]), sp.Matrix(ex["L1"]), sp.Matrix(ex["m2"]), sp.Matrix(ex["L2"]))

    factor_values, bures_values, residuals = [], [], []
    for name, case in (("1-D, symbolic", one), ("commuting diagonal 2x2, symbolic", diag),
                       ("general 2x2, exact algebraic", general)):
        fv = _w2_squared_factor(*case)
        bv = _w2_squared_bures(*case, cross)
        factor_values.append(fv)
        bures_values.append(bv)
        residuals.append(Residual(f"factor - Bures, {name}", fv - bv))

    worst = _mpmath_w2_gap(rng, mp_cases, mp_digits) if mp_cases else 0.0
    return W2Bures(factor_values=tuple(factor_values), bures_values=tuple(bures_values),
                   residuals=tuple(residuals), mpmath_max_abs_difference=worst)


def _mpmath_w2_gap(rng, cases, digits) -> float:
    """Largest ``|‖L₁ᵀL₂‖_* − tr(Σ₂^{½}Σ₁Σ₂^{½})^{½}|`` over random rational 2×2 pairs.

    Both sides in mpmath at ``digits`` digits: singular values by ``svd_r``, square roots by
    ``sqrtm``; the means and the traces of ``Σ₁, Σ₂`` are common to both formulas.
    """
    import mpmath

    def draw():
        return mpmath.matrix([[mpmath.mpf(int(rng.integers(-9, 10))) / int(rng.integers(1, 5))
                               for _ in range(2)] for _ in range(2)])

    worst = mpmath.mpf(0)
    with mpmath.workdps(digits):
        for _ in range(cases):
            L1, L2 = draw(), draw()
            s1, s2 = L1 * L1.T, L2 * L2.T
            nuclear = sum(mpmath.svd_r(L1.T * L2, compute_uv=False))
            root2 = mpmath.sqrtm(s2)
            middle = root2 * s1 * root2
            bures = sum(mpmath.sqrtm((middle + middle.T) / 2)[i, i] for i in range(2))
            worst = max(worst, abs(nuclear - bures))
    return float(worst)


# --------------------------------------------------------------------------------------------
# (g) Exact rational example: IBVI limit = constrained W₂ minimizer
# --------------------------------------------------------------------------------------------

def ibvi_limit_formula(X, y, mu0, L0):
    """docs/theory.md C1: ``μ∞ = μ₀ + X⁺(y − Xμ₀)``, ``L∞ = (I − X⁺X)L₀`` (exact pseudo-inverse).

    Parameters
    ----------
    X, y, mu0, L0 : sympy.Matrix
        Data ``(n, d)``, targets ``(n, 1)``, prior mean ``(d, 1)`` and prior factor ``(d, r)``.

    Returns
    -------
    tuple of sympy.Matrix
        ``(μ∞, L∞)`` of shapes ``(d, 1)`` and ``(d, r)``.
    """
    pinv = X.pinv()
    return mu0 + pinv * (y - X * mu0), (sp.eye(X.cols) - pinv * X) * L0


@dataclass(frozen=True)
class IBVILimitExact:
    """IBVI limit and the Lagrange solution of ``min W₂²(q, p)`` s.t. ``Xμ = y, XL = 0``.

    Parameters
    ----------
    limit_mean, limit_factor : sympy.Matrix
        The candidate limit ``μ∞`` ``(3, 1)`` and ``L∞`` ``(3, 2)`` of the rational example.
    lagrange_mean, lagrange_factor : sympy.Matrix
        The constrained minimizer found with Lagrange multipliers, of the same shapes.
    w2_squared : sympy.Expr
        ``W₂²`` from the candidate limit to the prior, with the exact nuclear norm.
    residuals : tuple of Residual
        Candidate against Lagrange (mean, covariance), the constraints, and the two ``W₂²`` values.
    """

    limit_mean: sp.Matrix
    limit_factor: sp.Matrix
    lagrange_mean: sp.Matrix
    lagrange_factor: sp.Matrix
    w2_squared: sp.Expr
    residuals: tuple[Residual, ...]


# As in the penalized example: μ₀ and L₀ have row- and null-space parts, y ≠ Xμ₀.
_LIMIT_EXAMPLE = dict(X=((1, 2, 0), (0, 1, -1)), y=(1, 2), mu0=(1, 1, 2), L0=((1, 0), (1, 1), (0, 3)))


def ibvi_limit_exact(candidate: Callable | None = None) -> IBVILimitExact:
    """Exact rational ``n=2, d=3, r=2`` example: the IBVI limit is the constrained W₂ minimizer.

    The minimizer is found with Lagrange multipliers (``sympy.solve``): for the mean,
    ``min ‖μ − μ₀‖²`` s.t. ``Xμ = y``; for the factor, ``min ‖L − L₀‖²_F`` s.t. ``XL = 0``,
    which has the same minimum as the W₂ factor term (alignment, see :func:`penalized_w2_gvi`).
    The candidate limit is compared in ``μ`` and in the covariance ``LLᵀ``; its W₂² to the
    prior, with the exact nuclear norm, is compared with
    ``‖X⁺(Xμ₀ − y)‖² + ‖P_row L₀‖²_F`` and with the Lagrange solution's value.

    Parameters
    ----------
    candidate : callable ``(X, y, mu0, L0) -> (mean, factor)``, optional
        Default :func:`ibvi_limit_formula`.

    Returns
    -------
    IBVILimitExact
        The candidate limit, the Lagrange solution, the candidate's ``W₂²`` and the residuals.

    Raises
    ------
    RuntimeError
        If a Lagrange system does not have exactly one solution.
    """
    candidate = ibvi_limit_formula if candidate is None else candidate
    ex = _LIMIT_EXAMPLE
    X, y = sp.Matrix(ex["X"]), sp.Matrix(ex["y"])
    mu0, L0 = sp.Matrix(ex["mu0"]), sp.Matrix(ex["L0"])
    n, d = X.shape
    r = L0.cols

    mu = _vector("u", d, real=True)
    nu = _vector("nu", n, real=True)
    lagrangian_mean = sum(e ** 2 for e in mu - mu0) + (nu.T * (X * mu - y))[0, 0]
    unknowns = list(mu) + list(nu)
    sol = sp.solve([sp.diff(lagrangian_mean, v) for v in unknowns], unknowns, dict=True)
    if len(sol) != 1:
        raise RuntimeError(f"mean Lagrange system has {len(sol)} solutions, expected 1")
    mean_lg = mu.subs(sol[0])

    L = _matrix("v", d, r, real=True)
    Lam = _matrix("g", n, r, real=True)
    lagrangian_factor = (sum(e ** 2 for e in L - L0)
                         + sum(g * c for g, c in zip(Lam, X * L)))
    unknowns = list(L) + list(Lam)
    sol = sp.solve([sp.diff(lagrangian_factor, v) for v in unknowns], unknowns, dict=True)
    if len(sol) != 1:
        raise RuntimeError(f"factor Lagrange system has {len(sol)} solutions, expected 1")
    factor_lg = L.subs(sol[0])

    mean_c, factor_c = candidate(X, y, mu0, L0)
    pinv = X.pinv()
    stated_value = (sum(e ** 2 for e in pinv * (X * mu0 - y))
                    + sum(e ** 2 for e in pinv * X * L0))
    value_c = _w2_squared_factor(mean_c, factor_c, mu0, L0)
    value_lg = _w2_squared_factor(mean_lg, factor_lg, mu0, L0)
    return IBVILimitExact(
        limit_mean=mean_c, limit_factor=factor_c, lagrange_mean=mean_lg,
        lagrange_factor=factor_lg, w2_squared=value_c,
        residuals=(Residual("mean: candidate - Lagrange", mean_c - mean_lg),
                   Residual("covariance: candidate - Lagrange",
                            factor_c * factor_c.T - factor_lg * factor_lg.T),
                   Residual("constraints X mu = y, X L = 0 at candidate",
                            sp.Matrix.vstack(X * mean_c - y, (X * factor_c).reshape(n * r, 1))),
                   Residual("W2^2(candidate, p) - stated value", value_c - stated_value),
                   Residual("W2^2(candidate, p) - W2^2(Lagrange, p)", value_c - value_lg)))


# --------------------------------------------------------------------------------------------
# (h) Kronecker factors: the balance ‖A‖² − ‖B‖² and its drift under discrete steps (C14)
# --------------------------------------------------------------------------------------------

def _fro2(matrix) -> sp.Expr:
    return sum((e ** 2 for e in matrix), sp.Integer(0))


def _inner(left, right) -> sp.Expr:
    return sum((x * y for x, y in zip(left, right)), sp.Integer(0))


def kronecker_loss_formula(X, Y, M, A, B):
    """docs/theory.md §2 (C14): ``‖Y − XM‖²_F + ‖XA‖²_F ‖B‖²_F``.

    Parameters
    ----------
    X, Y, M, A, B : sympy.Matrix
        Data ``(n, d)``, targets ``(n, k)``, mean ``(d, k)`` and factors ``(d, a)``, ``(k, b)``.

    Returns
    -------
    sympy.Expr
        ``E_Z‖Y − X(M + AZBᵀ)‖²_F``.
    """
    return _fro2(Y - X * M) + _fro2(X * A) * _fro2(B)


def kronecker_gradient_formula(X, Y, M, A, B):
    """docs/theory.md §2 (C14): ``−2Xᵀ(Y − XM)``, ``2‖B‖²XᵀXA``, ``2‖XA‖²B``.

    Parameters
    ----------
    X, Y, M, A, B : sympy.Matrix
        As in :func:`kronecker_loss_formula`.

    Returns
    -------
    tuple of sympy.Matrix
        ``(∇_M, ∇_A, ∇_B)`` of the shapes of ``M``, ``A`` and ``B``.
    """
    return -2 * X.T * (Y - X * M), 2 * _fro2(B) * X.T * X * A, 2 * _fro2(X * A) * B


def balance_formula(A, B):
    """docs/theory.md §2 (C14): the quantity conserved by the flow, ``‖A‖²_F − ‖B‖²_F``.

    Parameters
    ----------
    A, B : sympy.Matrix
        The factors, ``(d, a)`` and ``(k, b)``.

    Returns
    -------
    sympy.Expr
        The balance.
    """
    return _fro2(A) - _fro2(B)


def mc_gradient_moments_formula(X, E, A, B):
    """Single-draw ``(E‖ĝ_A‖², E‖ĝ_B‖²)`` at residual ``E = Y − XM`` (:func:`linear_theory.expected_balance_drift`).

    ``4(a‖XᵀEB‖² + ‖XᵀXA‖²(β² + (a + 1)‖BᵀB‖²))`` and ``4(b‖EᵀXA‖² + β(α² + (b + 1)‖AᵀXᵀXA‖²))``
    with ``α = ‖XA‖²``, ``β = ‖B‖²``.

    Parameters
    ----------
    X, E, A, B : sympy.Matrix
        Data ``(n, d)``, residual ``(n, k)`` and factors ``(d, a)``, ``(k, b)``.

    Returns
    -------
    tuple of sympy.Expr
        ``(E‖ĝ_A‖², E‖ĝ_B‖²)`` for one draw of ``Z``.
    """
    a, b = A.cols, B.cols
    P = X * A
    gram_B, gram_P = B.T * B, P.T * P
    beta, alpha = gram_B.trace(), gram_P.trace()
    return (4 * (a * _fro2(X.T * E * B) + _fro2(X.T * P) * (beta ** 2 + (a + 1) * _fro2(gram_B))),
            4 * (b * _fro2(E.T * P) + beta * (alpha ** 2 + (b + 1) * _fro2(gram_P))))


def gd_slope_integral_formula(s, w, beta_inf):
    """``∫₀^∞ (β(τ)‖XᵀXA‖² − α²) dτ`` in closed form (the GD first-order term times ``‖B₀‖²/4``).

    ``β∞α₀/4 + (1/8) Σ_ij w_i w_j (s_i² − s_j²)²/(s_i² + s_j²)`` with ``α₀ = Σ s_i² w_i``.

    Parameters
    ----------
    s : sequence of sympy.Expr
        The singular values ``s_i > 0`` of ``X``.
    w : sequence of sympy.Expr
        The weights of the decaying modes: ``β(τ) = β∞ + Σ w_i e^{−4s_i²τ}``,
        ``α(τ) = Σ s_i² w_i e^{−4s_i²τ}``.
    beta_inf : sympy.Expr
        The limit ``β∞`` of ``β(τ) = ‖B_τ‖²``.

    Returns
    -------
    sympy.Expr
        The integral.
    """
    alpha0 = sum(si ** 2 * wi for si, wi in zip(s, w))
    pairs = sum(wi * wj * (si ** 2 - sj ** 2) ** 2 / (si ** 2 + sj ** 2)
                for si, wi in zip(s, w) for sj, wj in zip(s, w))
    return beta_inf * alpha0 / 4 + pairs / 8


@dataclass(frozen=True)
class KroneckerBalance:
    """The Kronecker expected loss, its gradients, the flow derivative of the balance and its drift.

    Parameters
    ----------
    derived_loss : sympy.Expr
        ``E_Z‖Y − X(M + AZBᵀ)‖²`` from the moments of ``Z``.
    flow_derivative : sympy.Expr
        ``d/dt`` of the candidate conserved quantity along the flow of the derived gradients.
    moments : tuple of sympy.Expr
        ``(E‖ĝ_A‖², E‖ĝ_B‖²)`` of one draw on the rational example.
    slope_integral : sympy.Expr
        The flow integral of the GD drift for two symbolic singular values.
    residuals : tuple of Residual
        The ten residuals of the seven steps of :func:`kronecker_balance`.
    """

    derived_loss: sp.Expr
    flow_derivative: sp.Expr
    moments: tuple
    slope_integral: sp.Expr
    residuals: tuple[Residual, ...]


# A rational example for the fourth moments (symbolic Z): every Gram matrix is full rank, so
# ‖BᵀB‖² ≠ β² and ‖AᵀXᵀXA‖² ≠ α², and the (a + 1), (b + 1) factors are not interchangeable.
_MOMENT_EXAMPLE = dict(X=((1, 2), (0, -1)), E=((1, -1), (2, 1)), A=((1, 0), (2, -1)), B=((1, 1), (0, 2)))


def kronecker_balance(n: int = 2, d: int = 2, k: int = 2, a: int = 2, b: int = 2, *,
                      candidate_loss: Callable | None = None, candidate_gradients: Callable | None = None,
                      candidate_conserved: Callable | None = None, candidate_moments: Callable | None = None,
                      candidate_slope: Callable | None = None) -> KroneckerBalance:
    """Derive the Kronecker expected loss, its gradients, the conservation law and its discrete drift.

    For ``W = M + AZBᵀ`` with symbolic ``X (n×d)``, ``Y (n×k)``, ``M``, ``A (d×a)``, ``B (k×b)``:

    1. ``E_Z‖Y − XW‖²`` from the moments of ``Z`` against ``candidate_loss``;
    2. the gradients of the derived loss (``sympy.diff``) against ``candidate_gradients``;
    3. ``d/dt candidate_conserved(A, B)`` along the flow ``θ' = −∇θ`` of the *derived* gradients
       (zero for a conserved quantity);
    4. per draw of ``Z``: ``⟨A, ∂_A f⟩ − ⟨B, ∂_B f⟩ = 0`` for ``f = ‖Y − X(M + AZBᵀ)‖²``, so Monte
       Carlo and mini-batch gradients share the symmetry;
    5. one plain step of generic gradients ``G``: ``C(θ − ηG) − C(θ) = −2η(⟨A, G_A⟩ − ⟨B, G_B⟩) +
       η²(‖G_A‖² − ‖G_B‖²)`` for ``C = candidate_conserved`` (with 4, a drift ``η²(‖ĝ_A‖² − ‖ĝ_B‖²)``);
    6. single-draw ``E‖ĝ_A‖²`` and ``E‖ĝ_B‖²`` on a rational example with symbolic ``Z`` (fourth
       moments) against ``candidate_moments``;
    7. the flow integral of the GD drift for two symbolic singular values (``sympy.integrate``)
       against ``candidate_slope``.

    Parameters
    ----------
    n, d, k, a, b : int
        Sizes of the symbolic problem in steps 1–4.
    candidate_loss, candidate_gradients, candidate_conserved, candidate_moments, candidate_slope : callable, optional
        Defaults :func:`kronecker_loss_formula`, :func:`kronecker_gradient_formula`,
        :func:`balance_formula`, :func:`mc_gradient_moments_formula`, :func:`gd_slope_integral_formula`.

    Returns
    -------
    KroneckerBalance
        The derived loss, flow derivative, moments and integral, and the residuals.

    Raises
    ------
    ValueError
        If a size is not a positive integer.
    """
    _check_sizes(n=n, d=d, k=k, a=a, b=b)
    candidate_loss = kronecker_loss_formula if candidate_loss is None else candidate_loss
    candidate_gradients = kronecker_gradient_formula if candidate_gradients is None else candidate_gradients
    candidate_conserved = balance_formula if candidate_conserved is None else candidate_conserved
    candidate_moments = mc_gradient_moments_formula if candidate_moments is None else candidate_moments
    candidate_slope = gd_slope_integral_formula if candidate_slope is None else candidate_slope

    X = _matrix("x", n, d, real=True)
    Y = _matrix("y", n, k, real=True)
    M = _matrix("m", d, k, real=True)
    A = _matrix("a", d, a, real=True)
    B = _matrix("b", k, b, real=True)
    Z = _matrix("z", a, b, real=True)
    per_draw = _fro2(Y - X * (M + A * Z * B.T))
    moments_z: dict = {}
    derived = expectation_over_z(per_draw, list(Z), moments_z)
    grads = [P.applyfunc(lambda v: sp.diff(derived, v)) for P in (M, A, B)]
    stated = candidate_gradients(X, Y, M, A, B)
    conserved = candidate_conserved(A, B)
    flow = sp.expand(-sum(_inner(P.applyfunc(lambda v: sp.diff(conserved, v)), g)
                          for P, g in ((A, grads[1]), (B, grads[2]))))
    draw_A = A.applyfunc(lambda v: sp.diff(per_draw, v))
    draw_B = B.applyfunc(lambda v: sp.diff(per_draw, v))
    symmetry = sp.expand(_inner(A, draw_A) - _inner(B, draw_B))

    eta = sp.Symbol("eta", positive=True)
    GA, GB = _matrix("g", d, a, real=True), _matrix("h", k, b, real=True)
    step = (candidate_conserved(A - eta * GA, B - eta * GB) - conserved
            - (-2 * eta * (_inner(A, GA) - _inner(B, GB)) + eta ** 2 * (_fro2(GA) - _fro2(GB))))

    ex = _MOMENT_EXAMPLE
    Xr, Er, Ar, Br = (sp.Matrix(ex[key]) for key in ("X", "E", "A", "B"))
    Zr = _matrix("z", Ar.cols, Br.cols, real=True)
    Pr = Xr * Ar
    Rr = Er - Pr * Zr * Br.T
    gA, gB = -2 * Xr.T * Rr * Br * Zr.T, -2 * Rr.T * Pr * Zr
    tag = sp.Symbol("tag")  # one moment computation for both norms: E[‖ĝ_A‖² + tag‖ĝ_B‖²]
    both = sp.Poly(expectation_over_z(_fro2(gA) + tag * _fro2(gB), list(Zr), moments_z), tag)
    moments = (both.coeff_monomial(1), both.coeff_monomial(tag))
    stated_moments = candidate_moments(Xr, Er, Ar, Br)

    tau = sp.Symbol("tau", positive=True)
    s = sp.symbols("s1 s2", positive=True)
    w = sp.symbols("w1 w2", positive=True)
    beta_inf = sp.Symbol("beta_inf", positive=True)
    decay = [sp.exp(-4 * si ** 2 * tau) for si in s]
    beta_t = beta_inf + sum(wi * e for wi, e in zip(w, decay))
    alpha_t = sum(si ** 2 * wi * e for si, wi, e in zip(s, w, decay))
    xtxa_t = sum(si ** 4 * wi * e for si, wi, e in zip(s, w, decay))
    integral = sp.integrate(sp.expand(beta_t * xtxa_t - alpha_t ** 2), (tau, 0, sp.oo))

    return KroneckerBalance(
        derived_loss=derived, flow_derivative=flow, moments=moments, slope_integral=integral,
        residuals=(Residual("E||Y - XW||^2 - candidate", sp.expand(derived - candidate_loss(X, Y, M, A, B))),
                   Residual("d/dM - candidate", (grads[0] - stated[0]).applyfunc(sp.expand)),
                   Residual("d/dA - candidate", (grads[1] - stated[1]).applyfunc(sp.expand)),
                   Residual("d/dB - candidate", (grads[2] - stated[2]).applyfunc(sp.expand)),
                   Residual("d/dt conserved quantity along the flow", flow),
                   Residual("<A, df/dA> - <B, df/dB> for every draw of Z", symmetry),
                   Residual("one step: C(theta - eta G) - C(theta) - (-2 eta(<A,G_A> - <B,G_B>) "
                            "+ eta^2(||G_A||^2 - ||G_B||^2))", sp.expand(step)),
                   Residual("E||g_A||^2 - candidate (rational example, one draw)",
                            sp.expand(moments[0] - stated_moments[0])),
                   Residual("E||g_B||^2 - candidate (rational example, one draw)",
                            sp.expand(moments[1] - stated_moments[1])),
                   Residual("flow integral of the GD drift - candidate (two singular values)",
                            integral - candidate_slope(s, w, beta_inf))))


# --------------------------------------------------------------------------------------------
# (i) Stable steps of the factor under Monte Carlo gradients (C16)
# --------------------------------------------------------------------------------------------

def mc_mean_square_threshold_formula(s, r, m, beta):
    """docs/theory.md §2 (C16): ``(1 − β²)/(s²((1 + β)κ − 2β))``, ``κ = 1 + (r + 1)/m``.

    Parameters
    ----------
    s : sympy.Expr
        The singular value ``s`` of the direction.
    r : sympy.Expr
        The width ``r`` of the factor (the dimension of each draw ``z``).
    m : sympy.Expr
        The number ``m`` of Monte Carlo draws per step.
    beta : sympy.Expr
        The heavy-ball coefficient ``β`` in ``[0, 1)`` (``0`` for plain steps).

    Returns
    -------
    sympy.Expr
        The largest step ``η`` at which the factor's second moment stays bounded.
    """
    kappa = 1 + (r + 1) / m
    return (1 - beta ** 2) / (s ** 2 * ((1 + beta) * kappa - 2 * beta))


def descent_step_formula(sharpness, z):
    """Expected one-step descent on a quadratic with MC gradients: ``ρ < 2/(a(1 + a²/z))``.

    Parameters
    ----------
    sharpness : sympy.Expr
        The curvature ``a`` of ``ℓ = ½ax²``.
    z : sympy.Expr
        The signal-to-noise ratio ``z = N(ax)²/h`` of the gradient.

    Returns
    -------
    sympy.Expr
        The largest step ``ρ`` with ``E[ℓ(x − ρĝ)] < ℓ(x)``.
    """
    return 2 / (sharpness * (1 + sharpness ** 2 / z))


def critical_sharpness_formula(lr, z):
    """``H_crit = 2√(z/3) sinh(⅓ arcsinh((3/ρ)√(3/z)))`` (the largest sharpness with expected descent).

    Parameters
    ----------
    lr : sympy.Expr
        The step ``ρ``.
    z : sympy.Expr
        The signal-to-noise ratio, as in :func:`descent_step_formula`.

    Returns
    -------
    sympy.Expr
        ``H_crit``, the root of ``ρH(1 + H²/z) = 2``.
    """
    return 2 * sp.sqrt(z / 3) * sp.sinh(sp.asinh((3 / lr) * sp.sqrt(3 / z)) / 3)


@dataclass(frozen=True)
class MCStepThresholds:
    """The mean-square recursions of the factor's MC step (plain and heavy ball) and the descent condition.

    Parameters
    ----------
    second_moment : sympy.Matrix, shape (2, 2)
        ``E[Ẑ²]`` for ``r = m = 2``, from the moments of ``z``.
    heavy_ball_map : sympy.Matrix, shape (3, 3)
        The map ``T(c, β)`` of ``(P_t, Q_t, P_{t−1})`` at ``κ = 1 + (r + 1)/m = 5/2``.
    heavy_ball_determinant : sympy.Expr
        ``det(I − T)`` in ``c``, ``β`` and a symbolic ``κ``, factored.
    expected_descent : sympy.Expr
        ``E[ℓ(x − ρĝ)] − ℓ(x)`` for ``ℓ = ½ax²`` from the moments of the noise.
    residuals : tuple of Residual
        The ten residuals of the seven steps of :func:`mc_step_thresholds`.
    """

    second_moment: sp.Matrix
    heavy_ball_map: sp.Matrix
    heavy_ball_determinant: sp.Expr
    expected_descent: sp.Expr
    residuals: tuple[Residual, ...]


def _heavy_ball_map(c, beta, kappa):
    """The (P_t, Q_t, P_{t−1}) second-moment map of ``ℓ' = ℓ((1+β)I − cẐ) − βℓ_{t−1}``, ``E[Ẑ²] = κI``."""
    A = (1 + beta) ** 2 - 2 * (1 + beta) * c + c ** 2 * kappa
    return sp.Matrix([[A, -2 * beta * (1 + beta - c), beta ** 2],
                      [1 + beta - c, -beta, 0],
                      [1, 0, 0]])


def mc_step_thresholds(*, candidate_threshold: Callable | None = None, candidate_descent: Callable | None = None,
                       candidate_critical: Callable | None = None) -> MCStepThresholds:
    """Derive the mean-square step thresholds of the factor under MC gradients and Ghosh et al.'s condition.

    Along a singular direction ``s`` a row ``ℓ`` of the factor moves as ``ℓ ← ℓ(I − cẐ) + β(ℓ − ℓ_{t−1})``
    with ``c = 2ηs²`` and ``Ẑ = (1/m)Σ z_j z_jᵀ``. Steps (each a residual):

    1. ``E[Ẑ²] = (1 + (r + 1)/m) I`` from the moments of ``z`` (``r = 2``, ``m = 2``);
    2. the heavy-ball second moments ``E‖ℓ_{t+1}‖²``, ``E⟨ℓ_{t+1}, ℓ_t⟩`` from the moments
       (``r = m = 2``, symbolic ``ℓ_t, ℓ_{t−1}, c, β``) against the map :func:`_heavy_ball_map`;
    3. ``det(I − T(c)) = 0`` at ``c* = 2s²·candidate_threshold(s, r, m, β)`` (symbolic ``s, r, m, β``),
       the Perron root of the nonnegative map crossing 1; the other root is ``c = 0``;
    4. on a grid of rational ``(β, κ, c)``, ``ρ(T) < 1`` exactly when ``c < c*`` (count of
       disagreements, from exact characteristic polynomials);
    5. Ghosh et al.'s one-step condition: ``E[ℓ(x − ρĝ)] − ℓ(x)`` for ``ℓ = ½ax²``,
       ``ĝ = a(x + ε̄)``, ``ε̄ ~ N(0, h/N)``, derived from the moments, vanishes at
       ``ρ = candidate_descent(a, z)``, ``z = N(ax)²/h``;
    6. ``candidate_critical(ρ, z)`` solves ``ρH(1 + H²/z) = 2`` (``ρ = 3√(3/z)/sinh(3u)``);
    7. with the factor's noise ``E‖ĝ − g‖² = a²‖ℓ‖²(r + 1)/m`` (``a = 2s²``), Ghosh's ``z`` is
       ``a²m/(r + 1)`` and ``candidate_descent`` equals ``candidate_threshold`` at ``β = 0``.

    Parameters
    ----------
    candidate_threshold, candidate_descent, candidate_critical : callable, optional
        Defaults :func:`mc_mean_square_threshold_formula`, :func:`descent_step_formula`,
        :func:`critical_sharpness_formula`.

    Returns
    -------
    MCStepThresholds
        The derived moments, map, determinant and descent, and the residuals.
    """
    candidate_threshold = mc_mean_square_threshold_formula if candidate_threshold is None else candidate_threshold
    candidate_descent = descent_step_formula if candidate_descent is None else candidate_descent
    candidate_critical = critical_sharpness_formula if candidate_critical is None else candidate_critical
    r, m = 2, 2
    zs = [_vector(f"z{j}", r, real=True) for j in range(m)]
    flat = [e for z in zs for e in z]
    Zhat = sum((z * z.T for z in zs), sp.zeros(r, r)) / m
    moments_z: dict = {}
    second = (Zhat * Zhat).applyfunc(lambda e: expectation_over_z(e, flat, moments_z))
    kappa_rm = 1 + sp.Rational(r + 1, m)

    c, beta = sp.Symbol("c", positive=True), sp.Symbol("beta", nonnegative=True)
    now, before = _vector("l", r, real=True).T, _vector("p", r, real=True).T
    nxt = now * ((1 + beta) * sp.eye(r) - c * Zhat) - beta * before
    tag = sp.Symbol("tag")
    moments = sp.Poly(expectation_over_z(_fro2(nxt) + tag * _inner(nxt, now), flat, moments_z), tag)
    T = _heavy_ball_map(c, beta, kappa_rm)
    P, Q, R = _fro2(now), _inner(now, before), _fro2(before)
    structured = (T[0, 0] * P + T[0, 1] * Q + T[0, 2] * R, T[1, 0] * P + T[1, 1] * Q)

    s, rs, ms, kappa = sp.symbols("s r m kappa", positive=True)
    c_star = 2 * s ** 2 * candidate_threshold(s, rs, ms, beta)
    det = sp.factor((sp.eye(3) - _heavy_ball_map(c, beta, kappa)).det())
    at_root = sp.cancel((sp.eye(3) - _heavy_ball_map(c_star, beta, 1 + (rs + 1) / ms)).det())
    other_root = det.subs(c, 0)

    # The spectral radius at 10 % from the root differs from 1 by percents: float64 eigenvalues
    # (error ~1e-15) decide each verdict with a wide margin.
    disagreements = 0
    for beta_v in (sp.Integer(0), sp.Rational(1, 2), sp.Rational(9, 10)):
        for kappa_v in (sp.Rational(5, 2), sp.Integer(10)):
            root = c_star.subs({beta: beta_v, s: 1, rs: 2 * kappa_v - 3, ms: 2})
            for f in (sp.Rational(1, 4), sp.Rational(9, 10), sp.Rational(11, 10), sp.Rational(2)):
                Tv = np.array(_heavy_ball_map(f * root, beta_v, kappa_v).evalf(), dtype=float)
                radius = float(np.max(np.abs(np.linalg.eigvals(Tv))))
                disagreements += int((radius < 1) != (f < 1))

    a, x, h, N, rho = sp.symbols("a x h N rho", positive=True)
    eps = sp.Symbol("zeta", real=True)
    gradient = a * (x + sp.sqrt(h / N) * eps)
    change = expectation_over_z(a * (x - rho * gradient) ** 2 / 2 - a * x ** 2 / 2, [eps], moments_z)
    z_snr = N * (a * x) ** 2 / h
    at_descent = sp.cancel(change.subs(rho, candidate_descent(a, z_snr)))

    u, zc = sp.Symbol("u", positive=True), sp.Symbol("z", positive=True)
    lr_u = 3 * sp.sqrt(3 / zc) / sp.sinh(3 * u)
    crit = candidate_critical(lr_u, zc).subs(sp.asinh(sp.sinh(3 * u)), 3 * u)
    crit_residual = sp.expand_trig(lr_u * crit * (1 + crit ** 2 / zc) - 2).subs(
        sp.cosh(u), sp.sqrt(1 + sp.sinh(u) ** 2))

    ell = _vector("q", r, real=True).T
    sharp = 2 * s ** 2
    noise = expectation_over_z(_fro2(sharp * ell * (Zhat - sp.eye(r))), flat, moments_z)
    identified = candidate_descent(sharp, sharp ** 2 * ms / (rs + 1)) - candidate_threshold(s, rs, ms, 0)

    return MCStepThresholds(
        second_moment=second, heavy_ball_map=T, heavy_ball_determinant=det, expected_descent=change,
        residuals=(Residual("E[Zhat^2] - (1 + (r+1)/m) I (r = m = 2)", second - kappa_rm * sp.eye(r)),
                   Residual("E||l_{t+1}||^2 - heavy-ball map (r = m = 2)",
                            sp.expand(moments.coeff_monomial(1) - structured[0])),
                   Residual("E<l_{t+1}, l_t> - heavy-ball map (r = m = 2)",
                            sp.expand(moments.coeff_monomial(tag) - structured[1])),
                   Residual("det(I - T) at c* = 2 s^2 candidate threshold", at_root),
                   Residual("det(I - T) at c = 0 (the other root)", other_root),
                   Residual("grid points where rho(T) < 1 disagrees with c < c*", sp.Integer(disagreements)),
                   Residual("E[l(x - rho g)] - l(x) at rho = candidate descent step", at_descent),
                   Residual("rho H (1 + H^2/z) - 2 at H = candidate critical sharpness", crit_residual),
                   Residual("E||g - E g||^2 - a^2 ||l||^2 (r+1)/m (r = m = 2)",
                            sp.expand(noise - sharp ** 2 * _fro2(ell) * (rs + 1) / ms).subs({rs: r, ms: m})),
                   Residual("descent step with z = a^2 m/(r+1) - mean-square threshold at beta = 0",
                            sp.cancel(identified))))
