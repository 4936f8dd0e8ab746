r"""IBVI for linear classification (docs/theory.md §2, claims C7 and C8).

Labels ``y_n ∈ {−1, +1}``, linear model ``f_w(x) = xᵀw``, variational family ``q = N(μ, LLᵀ)``
started at the prior. Under ``q`` the margin ``z_n = y_n x_nᵀw`` is Gaussian with

.. math::

    m_n = y_n x_n^T μ, \qquad v_n = \|L^T x_n\|^2 ,

so every expected loss is a sum of one-dimensional Gaussian expectations
``ℓ̄ = Σ_n E[φ(z_n)]``.

*Exponential loss* ``φ(z) = e^{−z}`` (exact, from the Gaussian moment generating function):

.. math::

    \bar\ell(μ, L) = \sum_n \exp\big(-y_n x_n^Tμ + \tfrac12\|L^Tx_n\|^2\big),
    \quad ∇_μ\bar\ell = -X^T(y ⊙ e), \quad ∇_L\bar\ell = X^T \operatorname{diag}(e) X L ,

with ``e_n`` the summands. *Logistic loss* ``φ(z) = log(1 + e^{−z})``: no closed form; the
deterministic route is Gauss–Hermite quadrature with ``K`` nodes (probabilists' weights) of
``E[φ(m + √v ξ)]``, and its gradients use Price's theorem ``∂_v E[φ(z)] = ½ E[φ''(z)]``. For
any loss

.. math::

    ∇_μ\bar\ell = X^T\big(y ⊙ ∂_m\big), \qquad ∇_L\bar\ell = 2X^T\operatorname{diag}(∂_v) X L ,

so both gradients lie in ``row(X)`` and the null-space parts of ``μ`` and ``L`` never move.

The hard-margin SVM ``ŵ = argmin{‖w‖ : y_n x_nᵀw ≥ 1}`` (homogeneous, no bias) is solved
independently of the simulator, as a least-distance program through non-negative least
squares (Lawson and Hanson [2], ch. 23), then polished on its support set.

References
----------
.. [1] Soudry, Hoffer, Nacson, Gunasekar, Srebro. The implicit bias of gradient descent on
   separable data. JMLR 19, 2018.
.. [2] Lawson, Hanson. Solving Least Squares Problems. SIAM, 1995 (ch. 23, LDP via NNLS).
.. [3] Wenger, Coker, Marusic, Cunningham. Variational Deep Learning via Implicit
   Regularization. arXiv:2505.20235, 2025 (Theorem 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special

from ._recorder import Recorder, RunOptions, check_run_options, check_step, sgd_step
from ._validation import as_positive_int, check_allocation, check_problem, float_guard
from .gaussian import Gaussian
from .subspace import row_space_solver

__all__ = ["LOSSES", "ClassificationLoss", "classification_loss", "SVMSolution", "hard_margin_svm",
           "ClassificationTrace", "ClassificationResult", "simulate_classification",
           "classification_step_bound", "default_record_steps", "DEFAULT_QUADRATURE_NODES"]

#: The margin losses ``φ`` the classification functions accept.
LOSSES = ("exponential", "logistic")
#: Gauss–Hermite nodes for the logistic expectation. The integrand is analytic in the strip
#: ``|Im z| < π``, so the error grows quickly with ``√v``: at ``K = 64``, measured against adaptive
#: quadrature, it is below 1e-14 relative for ``√v ≤ 1.5``, about 2e-11 at ``√v = 2`` and 3e-8 at
#: ``√v = 3`` (raise ``quadrature_nodes`` for wider priors; 160 nodes give 1e-12 at ``√v = 3``).
DEFAULT_QUADRATURE_NODES = 64
#: ``log`` of the largest float64: an exponent above it overflows ``exp``.
_LOG_MAX = float(np.log(np.finfo(np.float64).max))


# -- input checks -------------------------------------------------------------------------------
def _check_problem(X, y, q, name: str):
    """Validated ``(X, y)`` for a Gaussian ``q`` (called ``name`` in errors) of matching dimension."""
    if not isinstance(q, Gaussian):
        raise TypeError(f"{name} must be a linear_theory.Gaussian, got {type(q).__name__}")
    X, y = _check_labels(X, y)
    if X.shape[1] != q.dim:
        raise ValueError(f"{name} has dimension {q.dim} but X has {X.shape[1]} columns")
    return X, y


def _check_labels(X, y) -> tuple[np.ndarray, np.ndarray]:
    X, y = check_problem(X, y)
    if not np.all((y == 1.0) | (y == -1.0)):
        bad = np.unique(y[(y != 1.0) & (y != -1.0)])[:5]
        raise ValueError(f"y must hold labels -1 or +1 only, found {bad.tolist()}")
    return X, y


def _check_loss(loss: str) -> str:
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def _hermite_rule(nodes) -> tuple[np.ndarray, np.ndarray]:
    nodes = as_positive_int("quadrature_nodes", nodes)
    check_allocation("quadrature_nodes", nodes, nodes)  # the Golub–Welsch eigenproblem is K × K
    xi, w = np.polynomial.hermite_e.hermegauss(nodes)
    return xi, w / w.sum()  # weights of E over ξ ~ N(0, 1)


# -- the expected loss and its gradients --------------------------------------------------------
def _margin_terms(loss: str, m: np.ndarray, v: np.ndarray, rule, with_value: bool = True):
    """Per-point ``E[φ(z)]``, ``∂_m E[φ(z)]``, ``∂_v E[φ(z)]`` for ``z ~ N(m, v)``.

    ``with_value=False`` skips the logistic value (a costly ``logaddexp``) and returns zeros.
    """
    if loss == "exponential":
        e = np.exp(-m + 0.5 * v)
        return e, -e, 0.5 * e
    xi, w = rule
    z = m[:, None] + np.sqrt(v)[:, None] * xi[None, :]
    tail = scipy.special.expit(-z)  # σ(−z) = −φ'(z)
    value = np.logaddexp(0.0, -z) @ w if with_value else np.zeros(m.shape)
    return value, -(tail @ w), 0.5 * ((tail * (1.0 - tail)) @ w)  # φ'' = σ(z)σ(−z)


def _loss_and_grad(X, y, mean, factor, loss, rule, with_value: bool = True):
    """``(ℓ̄, ∇_μ ℓ̄, ∇_L ℓ̄)`` on the rows ``X``, ``y`` (the logistic ``ℓ̄`` is 0 without ``with_value``)."""
    A = X @ factor
    m = y * (X @ mean)
    v = np.einsum("ij,ij->i", A, A)
    value, d_m, d_v = _margin_terms(loss, m, v, rule, with_value)
    return float(np.sum(value)), X.T @ (y * d_m), 2.0 * (X.T @ (d_v[:, None] * A))


def _checked_loss_and_grad(X, y, q: Gaussian, loss: str, rule, name: str):
    """:func:`_loss_and_grad` at ``q``, or a ``ValueError`` naming ``name`` when it overflows float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        A = X @ q.factor
        m = y * (X @ q.mean)
        v = np.einsum("ij,ij->i", A, A)
        exponent = float(np.max(-m + 0.5 * v))
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))):
            raise ValueError(f"the margins y·Xμ or variances ‖Lᵀx‖² of {name} on X overflow float64; "
                             f"rescale X or {name}")
        if loss == "exponential" and not exponent < _LOG_MAX:
            raise ValueError(f"the expected exponential loss of {name} on X overflows float64: its largest exponent "
                             f"-y xᵀμ + ½‖Lᵀx‖² = {exponent:.4g} is above log(max float) = {_LOG_MAX:.4g} "
                             f"({name} is too wide for X or its margins too negative)")
        value, g_mean, g_factor = _loss_and_grad(X, y, q.mean, q.factor, loss, rule)
    if not (np.isfinite(value) and np.all(np.isfinite(g_mean)) and np.all(np.isfinite(g_factor))):
        raise ValueError(f"the expected {loss} loss of {name} or its gradient overflows float64 on X; "
                         f"rescale X or {name}")
    return value, g_mean, g_factor


@dataclass(frozen=True)
class ClassificationLoss:
    """Expected classification loss and its gradients.

    Parameters
    ----------
    value : float
        ``ℓ̄(q)``.
    grad_mean : (d,) array
        ``∇_μ ℓ̄``.
    grad_factor : (d, r) array
        ``∇_L ℓ̄``.
    """

    value: float
    grad_mean: np.ndarray
    grad_factor: np.ndarray


@float_guard("X", "q")
def classification_loss(X, y, q: Gaussian, *, loss: str = "exponential",
                        quadrature_nodes: int = DEFAULT_QUADRATURE_NODES) -> ClassificationLoss:
    r"""Expected classification loss ``ℓ̄(q) = Σ_n E_{w~q} φ(y_n x_nᵀw)`` and its gradients.

    ``loss="exponential"`` is exact:

    .. math::

        \bar\ell = \sum_n e_n, \quad e_n = \exp(-y_n x_n^Tμ + \tfrac12\|L^Tx_n\|^2), \quad
        ∇_μ = -X^T(y ⊙ e), \quad ∇_L = X^T \operatorname{diag}(e) X L .

    ``loss="logistic"`` uses Gauss–Hermite quadrature with ``quadrature_nodes`` nodes per
    point (deterministic; see :data:`DEFAULT_QUADRATURE_NODES` for its accuracy) and Price's
    theorem for the ``L``-gradient, i.e. the gradient of the exact expectation evaluated by the
    same quadrature.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Labels ``±1``.
    q : Gaussian
        ``N(μ, LLᵀ)``, factor ``(d, r)``.
    loss : {"exponential", "logistic"}
        The margin loss ``φ``.
    quadrature_nodes : int
        Gauss–Hermite nodes ``K ≥ 1`` (logistic only).

    Returns
    -------
    ClassificationLoss
        The value and both gradients.

    Raises
    ------
    TypeError
        For a ``q`` that is not a :class:`Gaussian` or non-numeric input.
    ValueError
        For labels other than ±1, mismatched shapes, non-finite input, an unknown loss, and when
        the expected loss overflows float64 (an exponent above ``log(max float) ≈ 709.8``: the
        loss is not representable, so no ``inf`` is returned).

    Notes
    -----
    Cost ``O(n·d·r + n·K)``; no ``d × d`` matrix.
    """
    _check_loss(loss)
    X, y = _check_problem(X, y, q, "q")
    rule = _hermite_rule(quadrature_nodes)
    check_allocation("quadrature_nodes", X.shape[0], rule[0].shape[0])
    value, g_mean, g_factor = _checked_loss_and_grad(X, y, q, loss, rule, "q")
    return ClassificationLoss(value=value, grad_mean=g_mean, grad_factor=g_factor)


# -- hard-margin SVM ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SVMSolution:
    """Hard-margin SVM through the origin.

    Parameters
    ----------
    w : (d,) array
        The solution ``ŵ = Xᵀ(α ⊙ y)``.
    dual : (n,) array
        Multipliers ``α ≥ 0``.
    support : (n,) bool array
        Points with ``α_n > 0``.
    margin : float
        Geometric margin ``1/‖ŵ‖``.
    kkt_residual : float
        Largest of primal infeasibility ``max(0, 1 − min_n y_n x_nᵀŵ)``, dual infeasibility
        ``max(0, −min α)``, stationarity ``‖ŵ − Xᵀ(α⊙y)‖/‖ŵ‖`` and complementarity
        ``max_n |α_n (y_n x_nᵀŵ − 1)| / max α``.
    """

    w: np.ndarray
    dual: np.ndarray
    support: np.ndarray
    margin: float
    kkt_residual: float

    @property
    def direction(self) -> np.ndarray:
        """The unit vector ``ŵ/‖ŵ‖``, shape ``(d,)``."""
        return self.w / np.linalg.norm(self.w)


def _kkt_residual(Z, w, alpha) -> float:
    margins = Z @ w
    scale = max(float(np.max(alpha)), np.finfo(float).tiny)
    return float(max(max(0.0, 1.0 - np.min(margins)),
                     max(0.0, -float(np.min(alpha))) / scale,
                     np.linalg.norm(w - Z.T @ alpha) / np.linalg.norm(w),
                     float(np.max(np.abs(alpha * (margins - 1.0)))) / scale))


@float_guard("X")
def hard_margin_svm(X, y) -> SVMSolution:
    r"""The hard-margin SVM through the origin, solved as a least-distance program.

    .. math::

        \hat w = \arg\min_w \tfrac12\|w\|^2 \ \text{s.t.}\ Zw \ge 1, \qquad Z = \operatorname{diag}(y) X .

    Lawson–Hanson route: solve the NNLS problem ``min_{u≥0} ‖Eu − f‖`` with
    ``E = [Zᵀ; 1ᵀ]`` ((d+1) × n) and ``f = e_{d+1}`` (:func:`scipy.optimize.nnls`, an active-set
    method); with ``r = Eu − f``, ``ŵ = Zᵀu / (1 − 1ᵀu)`` and ``α = u / (1 − 1ᵀu)``. A zero
    residual certifies infeasibility. The result is then polished on its support ``S``:
    ``ŵ_S = Z_S⁺ 1`` (minimum norm with the active constraints as equalities), and the
    polished pair is kept when its KKT residual is not worse. The KKT residual is stored.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite, without zero rows.
    y : (n,) array
        Labels ``±1``.

    Returns
    -------
    SVMSolution
        ``ŵ``, the duals, the support, the margin and the KKT residual.

    Raises
    ------
    ValueError
        When the data are not linearly separable by a hyperplane through the origin, for labels
        other than ±1, for non-finite or mismatched input, for inputs so small or large that
        ``ŵ`` (of norm ``1/margin``) overflows float64, and for columns of so different scales that
        the NNLS solver fails.

    Notes
    -----
    Cost ``O(n²·d)`` per active-set step (at most ``3n`` steps); memory ``O(n·d)``.
    """
    X, y = _check_labels(X, y)
    n, d = X.shape
    Z = y[:, None] * X
    if np.any(np.all(Z == 0.0, axis=1)):
        raise ValueError("X has a zero row: it lies on every hyperplane through the origin, so the data "
                         "are not linearly separable")
    E = np.vstack([Z.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    try:
        u, _ = scipy.optimize.nnls(E, f, maxiter=max(50, 10 * n))
    except RuntimeError as exc:  # the active-set iteration did not end
        raise ValueError(f"X is too badly scaled for the hard-margin SVM: its NNLS solver did not converge ({exc}); "
                         "rescale the columns of X") from None
    if not np.all(np.isfinite(u)):  # compiled code: no floating-point flags for float_guard to see
        raise ValueError("X is too badly scaled for the hard-margin SVM: its NNLS solver returned non-finite "
                         "values; rescale the columns of X")
    gap = 1.0 - float(np.sum(u))
    if gap <= 1e-10:  # residual r = Eu − f vanishes: no w with Zw ≥ 1 exists
        raise ValueError("the data X, y are not linearly separable through the origin (hard-margin SVM "
                         "infeasible): the exponential/logistic implicit-bias claims need separable data")
    alpha = u / gap
    w = Z.T @ alpha
    best = (w, alpha, _kkt_residual(Z, w, alpha))
    support = alpha > 1e-12 * np.max(alpha)
    if np.any(support):
        ZS = Z[support]
        w_pol = np.linalg.lstsq(ZS, np.ones(ZS.shape[0]), rcond=None)[0]
        alpha_pol = np.zeros(n)
        alpha_pol[support] = np.linalg.lstsq(ZS.T, w_pol, rcond=None)[0]
        residual_pol = _kkt_residual(Z, w_pol, alpha_pol)
        if residual_pol <= best[2]:
            best = (w_pol, alpha_pol, residual_pol)
    w, alpha, residual = best
    return SVMSolution(w=w, dual=alpha, support=alpha > 1e-12 * np.max(alpha),
                       margin=float(1.0 / np.linalg.norm(w)), kkt_residual=residual)


# -- the simulator ---------------------------------------------------------------------------------
@float_guard("X", "prior")
def classification_step_bound(X, y, prior: Gaussian, loss: str = "exponential") -> float:
    r"""Largest step for which full-batch GD is guaranteed to decrease ``ℓ̄`` from the prior.

    ``2/β`` with ``β`` a bound on the Hessian's operator norm. Logistic (global, also for the
    quadrature): ``φ'' ≤ ¼`` and ``Σ_n E(x_nᵀ(u_μ + Uξ))² ≤ s_max²`` give ``β = s_max²/4``.
    Exponential (at the prior only; the loss is not globally smooth):

    .. math::

        β_0 = \sum_n e_n \|x_n\|^2 (2 + v_n), \qquad e_n = \exp(-y_n x_n^Tμ_0 + \tfrac12 v_n),
        \quad v_n = \|L_0^T x_n\|^2,

    from ``‖∇a_n‖² = ‖x_n‖²(1 + v_n)``, ``‖∇²a_n‖ = ‖x_n‖²`` for ``e_n = exp(a_n)``.

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Labels ``±1``; they enter through the margins ``y_n x_nᵀμ₀``.
    prior : Gaussian
        The initialization ``N(μ₀, L₀L₀ᵀ)``.
    loss : {"exponential", "logistic"}
        The margin loss.

    Returns
    -------
    float
        ``2/β``: ``0.0`` when ``β`` overflows (no step is guaranteed), ``inf`` when it is zero
        or ``2/β`` exceeds the float64 range.

    Raises
    ------
    TypeError
        For a ``prior`` that is not a :class:`Gaussian`.
    ValueError
        For an unknown loss, labels other than ±1, or mismatched or non-finite input.

    Notes
    -----
    Cost ``O(n·d·r)`` (one largest singular value for the logistic loss).
    """
    loss = _check_loss(loss)
    X, y = _check_problem(X, y, prior, "prior")
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        if loss == "logistic":
            s_max = np.float64(np.linalg.norm(X, 2))
            return float(8.0 / (s_max * s_max))
        A = X @ prior.factor
        v = np.einsum("ij,ij->i", A, A)
        e = np.exp(-y * (X @ prior.mean) + 0.5 * v)
        beta = np.float64(np.sum(e * np.einsum("ij,ij->i", X, X) * (2.0 + v)))
        if not np.isfinite(beta):
            return 0.0
        return float(2.0 / beta) if beta > 0 else float("inf")


@dataclass(frozen=True)
class ClassificationTrace:
    """Quantities at the recorded steps (step 0 and the last step included).

    Parameters
    ----------
    steps : (k,) int array
        The recorded step counts.
    expected_loss : (k,) array
        The exact (exponential) or quadrature (logistic) ``ℓ̄(q_t)``.
    direction_cosine : (k,) array
        ``cos∠(μ_t − P_null μ₀, ŵ)`` (NaN while that vector is zero).
    row_mean_norm : (k,) array
        ``‖μ_t − P_null μ₀‖`` (grows like ``‖ŵ‖ log t``).
    data_spread : (k,) array
        ``‖XL_t‖_F``.
    null_mean_drift : (k,) array
        ``‖P_null(μ_t − μ₀)‖``, an invariant (zero up to rounding).
    null_factor_drift : (k,) array
        ``‖P_null(L_t − L₀)‖_F``, an invariant.
    """

    steps: np.ndarray
    expected_loss: np.ndarray
    direction_cosine: np.ndarray
    row_mean_norm: np.ndarray
    data_spread: np.ndarray
    null_mean_drift: np.ndarray
    null_factor_drift: np.ndarray


@dataclass(frozen=True)
class ClassificationResult:
    """Final ``q``, its trace, the SVM it is compared with, and the run's settings.

    Parameters
    ----------
    final : Gaussian
        The law after the last step.
    trace : ClassificationTrace
        The recorded quantities.
    svm : SVMSolution
        The hard-margin SVM of the data.
    loss : str
        The margin loss.
    lr : float
        The step size.
    mc_samples : int
        Monte Carlo samples per step (0: deterministic gradients).
    step_bound : float
        The step bound the run was checked against.
    optimizer : str
        ``"gd"``, ``"sgd"`` or ``"momentum"``.
    """

    final: Gaussian
    trace: ClassificationTrace
    svm: SVMSolution
    loss: str
    lr: float
    mc_samples: int
    step_bound: float
    optimizer: str = "gd"


def default_record_steps(steps: int, points: int = 40) -> np.ndarray:
    """``0`` and about ``points`` geometrically spaced step counts up to ``steps``.

    Parameters
    ----------
    steps : int
        The last step, ``≥ 0``.
    points : int
        Number of geometric grid points, ``≥ 1`` (duplicates after rounding are dropped).

    Returns
    -------
    (k,) int array
        Strictly increasing, starting at 0 and ending at ``steps``; ``k ≤ points + 1``; cost
        ``O(points·log(points))``.

    Raises
    ------
    TypeError
        For non-integer ``steps`` or ``points``.
    ValueError
        For a negative ``steps`` or a non-positive ``points``.
    """
    steps = as_positive_int("steps", steps, allow_zero=True)
    points = as_positive_int("points", points)
    if steps == 0:
        return np.zeros(1, dtype=int)
    check_allocation("points", points)
    grid = np.unique(np.round(np.geomspace(1, steps, points)).astype(int))
    return np.concatenate([[0], grid])


def _check_record_steps(record_steps, steps: int) -> np.ndarray:
    if record_steps is None:
        return default_record_steps(steps)
    try:
        grid = np.asarray(record_steps)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError("record_steps must be a non-empty 1-D array of integers") from exc
    if grid.ndim != 1 or grid.size == 0 or not np.issubdtype(grid.dtype, np.integer):
        raise ValueError(f"record_steps must be a non-empty 1-D array of integers, got {grid!r}")
    if np.any(np.diff(grid) <= 0) or grid[0] < 0 or grid[-1] > steps:
        raise ValueError(f"record_steps must be strictly increasing integers in [0, steps = {steps}]")
    return grid.astype(int)


@float_guard("X", "prior")
def simulate_classification(X, y, prior: Gaussian, *, loss: str = "exponential", lr: float, steps: int,
                            mc_samples: int = 0, quadrature_nodes: int = DEFAULT_QUADRATURE_NODES,
                            seed=0, record_steps=None, check_stability: bool = True, optimizer: str = "gd",
                            batch_size: int | None = None, momentum: float = 0.9) -> ClassificationResult:
    r"""(S)GD or heavy-ball momentum on the expected classification loss from the prior; trace against the SVM.

    Updates ``μ ← μ − η g_μ``, ``L ← L − η g_L`` in the full coordinates (the null-space
    invariants are measured, not imposed), where ``g`` is the gradient of ``ℓ̄``: exact for
    ``loss="exponential"``, Gauss–Hermite quadrature for ``loss="logistic"`` when
    ``mc_samples = 0``; with ``mc_samples = M ≥ 1`` both losses use reparametrized Monte Carlo,
    ``w = μ + Lζ`` (one ``ζ`` per sample shared by the batch),
    ``∇_μ = Xᵀ(y ⊙ mean_j φ'(z_j))``, ``∇_L = Xᵀ((y ⊙ φ'(Z)) ζᵀ)/M``. ``optimizer="sgd"`` uses
    ``batch_size`` rows drawn without replacement each step and ``n/b`` times their gradient
    (unbiased); ``"momentum"`` is the heavy ball of ``torch.optim.SGD``, ``v ← m v + g``,
    ``θ ← θ − ηv`` (full batch unless ``batch_size`` is given). Every such gradient lies in
    ``row(X)`` (docs/theory.md §2 (C15)).

    Parameters
    ----------
    X : (n, d) array
        Inputs, linearly separable through the origin.
    y : (n,) array
        Labels ``±1``.
    prior : Gaussian
        ``N(μ₀, L₀L₀ᵀ)``, the initialization (factor ``(d, r)``, any ``r``).
    loss : {"exponential", "logistic"}
        The margin loss ``φ``.
    lr : float
        Step size ``η > 0`` of mean and factor.
    steps : int
        Number of steps (``1e4``–``1e5`` cost a second or two at ``n ≈ 10``, ``d ≈ 40``).
    mc_samples : int
        ``0`` for deterministic gradients, ``M ≥ 1`` for Monte Carlo.
    quadrature_nodes : int
        Gauss–Hermite nodes ``K`` of the logistic expectation.
    seed : int or numpy.random.Generator
        For the mini-batches and the MC draws.
    record_steps : 1-D array of int, optional
        Strictly increasing step counts in ``[0, steps]`` to record (default: 0 and ~40
        geometrically spaced counts, since convergence in direction is logarithmic).
    check_stability : bool
        Raise ``ValueError`` before running when ``lr`` is at or above the step bound:
        :func:`classification_step_bound` for GD and SGD, ``(1 + m)`` times it for momentum (the
        heavy-ball factor of the quadratic case; a guarantee at the prior only for the
        exponential loss).
    optimizer : {"gd", "sgd", "momentum"}
        Full batch, mini-batch, or heavy ball.
    batch_size : int, optional
        Rows per step, ``1..n``; required for ``"sgd"``, not allowed for ``"gd"``.
    momentum : float
        Heavy-ball coefficient ``m ∈ [0, 1)`` for ``optimizer="momentum"``.

    Returns
    -------
    ClassificationResult
        The final ``q``, the trace at ``record_steps``, the SVM and the settings.

    Raises
    ------
    TypeError
        For a ``prior`` that is not a :class:`Gaussian` or arguments of the wrong type.
    ValueError
        Labels other than ±1, non-separable data (from :func:`hard_margin_svm`), bad shapes or
        values, an unknown loss or optimizer, a batch size outside ``1..n``, a step above the
        bound, bad ``record_steps``.
    DivergenceError
        Non-finite iterates or an expected loss above ``1e8`` times its start.

    Notes
    -----
    Cost per step ``O(b·d·r + b·K)`` (``O(b·d·r·M)`` with MC); per record ``O(n·d·r + n·K)``.
    """
    loss = _check_loss(loss)
    X, y = _check_problem(X, y, prior, "prior")
    n = X.shape[0]
    options = check_run_options(n, optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size,
                                mc_samples=mc_samples, momentum=momentum, seed=seed)
    rule = _hermite_rule(quadrature_nodes)
    check_allocation("mc_samples", n, max(options.mc_samples, rule[0].shape[0]))
    loss0 = _checked_loss_and_grad(X, y, prior, loss, rule, "prior")[0]
    grid = _check_record_steps(record_steps, options.steps)
    svm = hard_margin_svm(X, y)
    bound = classification_step_bound(X, y, prior, loss)
    if optimizer == "momentum":
        bound *= 1.0 + options.momentum
    if check_stability:
        times = ", times 1 + momentum" if optimizer == "momentum" else ""
        check_step("lr", options.lr, bound, f"step bound {bound:.4g} of the {loss} loss on this X at this prior "
                                            f"(2/β, β a bound on the Hessian{times})")
    run = _ClassificationRun(X=X, y=y, prior=prior, loss=loss, rule=rule, loss0=loss0, options=options, grid=grid,
                             direction=svm.direction, bound=bound)
    final, trace = _run_classification(run)
    return ClassificationResult(final=final, trace=trace, svm=svm, loss=loss, lr=options.lr,
                                mc_samples=options.mc_samples, step_bound=bound, optimizer=optimizer)


@dataclass(frozen=True, eq=False)
class _ClassificationRun:
    """The validated arguments of one :func:`simulate_classification` run."""

    X: np.ndarray
    y: np.ndarray
    prior: Gaussian
    loss: str
    rule: tuple[np.ndarray, np.ndarray]
    loss0: float
    options: RunOptions
    grid: np.ndarray
    direction: np.ndarray
    bound: float


def _mc_gradients(XB, yB, mean, factor, loss, mc_samples, rng):
    """Reparametrized MC gradients ``(∇_μ, ∇_L)`` with ``M`` draws ``ζ`` shared by the batch rows."""
    zeta = rng.standard_normal((mc_samples, factor.shape[1]))
    A = XB @ factor
    z = (yB * (XB @ mean))[:, None] + yB[:, None] * (A @ zeta.T)  # (b, M) margins
    slope = yB[:, None] * (-np.exp(-z) if loss == "exponential" else -scipy.special.expit(-z))  # y φ'(z)
    return XB.T @ slope.mean(axis=1), XB.T @ (slope @ zeta) / mc_samples


def _run_classification(run: _ClassificationRun) -> tuple[Gaussian, ClassificationTrace]:
    X, y, loss, rule, options = run.X, run.y, run.loss, run.rule, run.options
    solver = row_space_solver(X)
    mean0, factor0 = run.prior.mean, run.prior.factor
    null_mean0 = solver.project_null(mean0)
    mean, factor = mean0.copy(), factor0.copy()
    velocities = (np.zeros_like(mean), np.zeros_like(factor))
    recorder = Recorder(ClassificationTrace, loss0=run.loss0, lr=options.lr, bound=run.bound)

    def record(t):
        with np.errstate(over="ignore"):
            value = _loss_and_grad(X, y, mean, factor, loss, rule)[0]
        recorder.check_loss(t, value)
        row_mean = mean - null_mean0
        size = float(np.linalg.norm(row_mean))
        cosine = float(row_mean @ run.direction) / size if size > 0 else np.nan
        recorder.add(ClassificationTrace(
            steps=t, expected_loss=value, direction_cosine=cosine, row_mean_norm=size,
            data_spread=float(np.linalg.norm(X @ factor)),
            null_mean_drift=float(np.linalg.norm(solver.project_null(mean - mean0))),
            null_factor_drift=float(np.linalg.norm(solver.project_null(factor - factor0)))))

    grid = run.grid
    next_record = 0
    if grid[0] == 0:
        record(0)
        next_record = 1
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, options.steps + 1):
            XB, yB, scale = options.batch(X, y)
            if options.mc_samples == 0:
                value, g_mean, g_factor = _loss_and_grad(XB, yB, mean, factor, loss, rule, with_value=False)
            else:
                g_mean, g_factor = _mc_gradients(XB, yB, mean, factor, loss, options.mc_samples, options.rng)
                value = 0.0
            if options.batch_size is not None:  # n/b times the batch sum: an unbiased estimate of the full one
                value, g_mean, g_factor = scale * value, scale * g_mean, scale * g_factor
            recorder.check_loss(t, value)  # catches inf and NaN too; the logistic value is not computed (0)
            (mean, factor), velocities = sgd_step((mean, factor), velocities, (g_mean, g_factor),
                                                  (options.lr, options.lr), options.heavy_ball)
            if next_record < grid.size and t == grid[next_record]:
                recorder.check_finite(t, mean, factor)
                record(t)
                next_record += 1
    recorder.check_finite(options.steps, mean, factor)
    return Gaussian(mean, factor), recorder.trace()
