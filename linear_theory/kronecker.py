r"""Kronecker-factored Gaussians for multi-output linear regression (docs/theory.md §2 (C14)).

The model is ``Y = XW`` with data ``X`` (n, d), targets ``Y`` (n, k) and weights ``W`` (d, k). The
family is

.. math::

    W = M + A Z B^T, \qquad A \in R^{d×a},\ B \in R^{k×b},\ Z \in R^{a×b} \text{ iid } N(0, 1).

**Vectorization.** With the row-major ``vec_r(W) = W.ravel()`` (NumPy's C order: ``W[i, j]`` at
index ``i·k + j``), ``vec_r(AZBᵀ) = (A ⊗ B) vec_r(Z)``, so

.. math::

    vec_r(W) \sim N\big(vec_r(M),\ (AA^T) ⊗ (BB^T)\big), \qquad \text{factor } A ⊗ B
    \ (\texttt{numpy.kron(A, B)}, \ dk × ab).

(The column-major ``vec`` gives ``(BBᵀ) ⊗ (AAᵀ)`` instead.) The prior is the initialization and the
loss is the expected loss only (no KL term, no ½):

.. math::

    \bar\ell(M, A, B) = E\|Y - XW\|_F^2 = \|Y - XM\|_F^2 + \|XA\|_F^2 \|B\|_F^2 ,

    ∇_M = -2X^T(Y - XM), \qquad ∇_A = 2\|B\|_F^2\, X^TXA, \qquad ∇_B = 2\|XA\|_F^2\, B .

Since ``⟨A, ∇_A⟩ = ⟨B, ∇_B⟩`` (the loss depends on ``(A, B)`` only through ``A ⊗ B``, which
``(A, B) → (λA, B/λ)`` leaves unchanged), the *balance* ``‖A‖²_F − ‖B‖²_F`` is conserved by the
gradient flow. Gradients of ``M`` and ``A`` lie in ``row(X)``, so ``P_null M`` and ``P_null A``
never move, and ``B`` only shrinks by a scalar. Together these give the flow's limit
(:func:`kronecker_limit`): ``M∞ = M₀ + X⁺(Y − XM₀)``, ``B∞ = cB₀`` with
``c² = max(0, 1 − ‖P_row A₀‖²_F/‖B₀‖²_F)``, and ``A∞ = P_null A₀`` when ``c > 0``. Theorem 1's
``q∞`` (the W₂ projection of the prior onto the minimizers of ``ℓ̄``) is itself Kronecker with
``c = 1`` (:func:`kronecker_w2_projection`).

Nothing here forms a ``d × d`` matrix: projections go through :func:`row_space_basis`. The dense
``dk × ab`` factor ``A ⊗ B`` is formed only on request (:meth:`KroneckerGaussian.as_gaussian`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from ._recorder import Recorder, as_optimizer, check_run_options, check_step, descend
from ._validation import (as_generator, as_matrix, as_momentum, as_positive_float, as_positive_int,
                          check_allocation, finite_result, float_guard)
from .gaussian import Gaussian, Predictive, _frozen, _pad_columns, _test_inputs
from .subspace import RowSpaceBasis, project_null, row_space_basis

__all__ = ["KroneckerGaussian", "KroneckerGradient", "KroneckerLimit", "KroneckerTrace", "KroneckerSimulation",
           "kronecker_expected_loss", "kronecker_gradients", "kronecker_limit", "kronecker_w2_projection",
           "kronecker_w2_squared", "kronecker_step_bound", "simulate_kronecker", "balance",
           "expected_balance_drift", "kronecker_first_order"]


@dataclass(frozen=True, eq=False)
class KroneckerGaussian:
    """The law of ``W = M + A Z Bᵀ``: ``vec_r(W) ~ N(vec_r(M), (AAᵀ) ⊗ (BBᵀ))`` (row-major ``vec_r``).

    The arrays are stored as read-only float64 copies.

    Parameters
    ----------
    mean : array_like, shape (d, k)
        The mean ``M`` of ``W``.
    input_factor : array_like, shape (d, a)
        The factor ``A``, acting on the input side (the rows of ``W``).
    output_factor : array_like, shape (k, b)
        The factor ``B``, acting on the output side (the columns of ``W``).

    Raises
    ------
    ValueError
        For arrays that are not 2-D or not finite, or an ``input_factor`` without ``d`` rows or an
        ``output_factor`` without ``k`` rows; the message names the argument.
    """

    mean: np.ndarray
    input_factor: np.ndarray
    output_factor: np.ndarray

    def __post_init__(self):
        mean = as_matrix("mean", self.mean)
        A = as_matrix("input_factor", self.input_factor)
        B = as_matrix("output_factor", self.output_factor)
        d, k = mean.shape
        if A.shape[0] != d:
            raise ValueError(f"input_factor must have shape (d, a) with d = {d} (rows of mean), got {A.shape}")
        if B.shape[0] != k:
            raise ValueError(f"output_factor must have shape (k, b) with k = {k} (columns of mean), got {B.shape}")
        object.__setattr__(self, "mean", _frozen(mean))
        object.__setattr__(self, "input_factor", _frozen(A))
        object.__setattr__(self, "output_factor", _frozen(B))

    @property
    def dim(self) -> int:
        """Number of inputs ``d`` (rows of ``W``)."""
        return int(self.mean.shape[0])

    @property
    def outputs(self) -> int:
        """Number of outputs ``k`` (columns of ``W``)."""
        return int(self.mean.shape[1])

    @float_guard("the KroneckerGaussian's input_factor and output_factor")
    def factor(self) -> np.ndarray:
        """The dense ``dk × ab`` factor ``A ⊗ B`` of ``vec_r(W)`` (``O(dk·ab)`` memory: small sizes only).

        Returns
        -------
        numpy.ndarray, shape (d·k, a·b)
            ``numpy.kron(A, B)``, so that ``vec_r(W) = vec_r(M) + (A ⊗ B) vec_r(Z)``.

        Raises
        ------
        ValueError
            When ``A ⊗ B`` overflows float64 or exceeds the machine's memory.
        """
        A, B = self.input_factor, self.output_factor
        check_allocation("the factor A ⊗ B of this KroneckerGaussian", A.shape[0] * B.shape[0],
                         A.shape[1] * B.shape[1])
        return np.kron(A, B)

    def as_gaussian(self) -> Gaussian:
        """The same law as a :class:`Gaussian` on ``vec_r(W)`` with factor ``A ⊗ B`` (small sizes only).

        Returns
        -------
        Gaussian
            Mean ``vec_r(M)`` of length ``d·k`` and the dense factor :meth:`factor` (``d·k × a·b``);
            cost ``O(dk·ab)`` time and memory.

        Raises
        ------
        ValueError
            As :meth:`factor`.
        """
        return Gaussian(self.mean.ravel(), self.factor())

    @float_guard("the KroneckerGaussian's mean, input_factor and output_factor")
    def sample(self, n: int, rng) -> np.ndarray:
        """Draws ``M + A Z Bᵀ``, ``Z`` iid standard normal.

        Parameters
        ----------
        n : int
            Number of draws.
        rng : numpy.random.Generator or int
            Source of the draws.

        Returns
        -------
        numpy.ndarray
            ``(n, d, k)``; cost ``O(n·(d·a·b + d·b·k))``.

        Raises
        ------
        ValueError
            For a non-positive ``n``, a missing ``rng``, an ``n`` whose draws exceed the machine's
            memory, or draws that overflow float64.
        """
        n = as_positive_int("n", n)
        A, B = self.input_factor, self.output_factor
        check_allocation("n", n, self.dim, max(self.outputs, A.shape[1] * B.shape[1]))
        Z = as_generator(rng, "rng").standard_normal((n, A.shape[1], B.shape[1]))
        return self.mean + np.einsum("da,nab,kb->ndk", A, Z, B, optimize=True)

    @float_guard("X_test and the KroneckerGaussian")
    def predictive(self, X_test) -> Predictive:
        """Predictive mean ``X_test M`` and variance ``‖Aᵀx‖² ‖B_j‖²`` per test row and output ``j``.

        Parameters
        ----------
        X_test : array, (m, d) or (d,)
            Test inputs.

        Returns
        -------
        Predictive
            ``mean`` and ``variance``, both ``(m, k)`` (no observation noise); cost
            ``O(m·d·(k + a) + k·b)``.

        Raises
        ------
        ValueError
            When ``X_test`` does not have ``d`` columns or is not finite, or the result overflows
            float64.
        """
        X_test = _test_inputs(X_test, self.dim, "the inputs of W")
        spread = np.sum((X_test @ self.input_factor) ** 2, axis=1)
        return Predictive(mean=X_test @ self.mean,
                          variance=spread[:, None] * np.sum(self.output_factor ** 2, axis=1)[None, :])

    def replace(self, *, mean=None, input_factor=None, output_factor=None) -> "KroneckerGaussian":
        """A copy with the given parts replaced (``None`` keeps a part), validated as in the constructor.

        Parameters
        ----------
        mean : array_like, shape (d, k), optional
            The new mean ``M``.
        input_factor : array_like, shape (d, a), optional
            The new factor ``A`` (its width ``a`` may change).
        output_factor : array_like, shape (k, b), optional
            The new factor ``B`` (its width ``b`` may change).

        Returns
        -------
        KroneckerGaussian
            The new distribution; the parts kept must fit the shapes of the parts given.

        Raises
        ------
        ValueError
            As the constructor, for parts that are not finite 2-D arrays or do not fit together.
        """
        return KroneckerGaussian(self.mean if mean is None else mean,
                                 self.input_factor if input_factor is None else input_factor,
                                 self.output_factor if output_factor is None else output_factor)


@float_guard("q")
def balance(q: KroneckerGaussian) -> float:
    """The balance ``‖A‖²_F − ‖B‖²_F``, conserved by the gradient flow of ``ℓ̄``.

    Parameters
    ----------
    q : KroneckerGaussian
        The distribution ``(M, A, B)``.

    Returns
    -------
    float
        Cost ``O(d·a + k·b)``.

    Raises
    ------
    TypeError
        For a ``q`` that is not a :class:`KroneckerGaussian`.
    ValueError
        When ``‖A‖²`` or ``‖B‖²`` overflows float64.
    """
    if not isinstance(q, KroneckerGaussian):
        raise TypeError(f"q must be a linear_theory.KroneckerGaussian, got {type(q).__name__}")
    return float(np.sum(q.input_factor ** 2) - np.sum(q.output_factor ** 2))


@dataclass(frozen=True)
class KroneckerGradient:
    """Gradients of the expected loss (or a stochastic estimate) with respect to ``M``, ``A``, ``B``.

    Parameters
    ----------
    mean : numpy.ndarray, shape (d, k)
        ``∇_M``.
    input_factor : numpy.ndarray, shape (d, a)
        ``∇_A``.
    output_factor : numpy.ndarray, shape (k, b)
        ``∇_B``.
    """

    mean: np.ndarray
    input_factor: np.ndarray
    output_factor: np.ndarray


def _check_problem(X, Y, q, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(X, Y)`` for the distribution ``q``, passed as the argument ``name``."""
    if not isinstance(q, KroneckerGaussian):
        raise TypeError(f"{name} must be a linear_theory.KroneckerGaussian, got {type(q).__name__}")
    X = as_matrix("X", X)
    Y = as_matrix("Y", Y)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y must have one row per row of X: X is {X.shape}, Y is {Y.shape}")
    if X.shape[1] != q.dim or Y.shape[1] != q.outputs:
        raise ValueError(f"{name}.mean is {q.mean.shape} but X is {X.shape} and Y is {Y.shape} "
                         "(mean must be (d, k) with d = columns of X, k = columns of Y)")
    return X, Y


@float_guard("X", "Y", "q")
def kronecker_expected_loss(X, Y, q: KroneckerGaussian) -> float:
    """The expected loss ``E‖Y − XW‖²_F = ‖Y − XM‖²_F + ‖XA‖²_F ‖B‖²_F`` for ``W = M + AZBᵀ``.

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets of the loss.
    q : KroneckerGaussian
        The distribution of ``W``.

    Returns
    -------
    float
        Cost ``O(n·d·(k + a) + k·b)``.

    Raises
    ------
    TypeError
        For a ``q`` that is not a :class:`KroneckerGaussian`.
    ValueError
        For shapes that do not match or non-finite input.
    """
    X, Y = _check_problem(X, Y, q, "q")
    return _loss(X, Y, q.mean, q.input_factor, q.output_factor)


def _loss(X, Y, M, A, B) -> float:
    return float(np.sum((Y - X @ M) ** 2) + np.sum((X @ A) ** 2) * np.sum(B ** 2))


@float_guard("X", "Y", "q")
def kronecker_gradients(X, Y, q: KroneckerGaussian) -> KroneckerGradient:
    r"""Exact gradients of the expected loss.

    .. math:: ∇_M = -2X^T(Y - XM), \qquad ∇_A = 2\|B\|_F^2 X^TXA, \qquad ∇_B = 2\|XA\|_F^2 B

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets; ``∇_M`` is ``−2Xᵀ(Y − XM)``.
    q : KroneckerGaussian
        The point ``(M, A, B)`` the gradients are taken at.

    Returns
    -------
    KroneckerGradient
        Gradients of the shapes of ``M``, ``A``, ``B``; cost ``O(n·d·(k + a) + k·b)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`kronecker_expected_loss`.
    """
    X, Y = _check_problem(X, Y, q, "q")
    g_mean, g_A, g_B = _exact_gradients(X, Y, q.mean, q.input_factor, q.output_factor, 1.0)
    return KroneckerGradient(mean=g_mean, input_factor=g_A, output_factor=g_B)


def _exact_gradients(X, Y, M, A, B, scale):
    XA = X @ A
    g_mean = -2.0 * scale * (X.T @ (Y - X @ M))
    g_A = 2.0 * scale * np.sum(B ** 2) * (X.T @ XA)  # numpy scalars: an overflow is seen by float_guard
    g_B = 2.0 * scale * np.sum(XA ** 2) * B
    return g_mean, g_A, g_B


def _mc_gradients(X, Y, M, A, B, scale, Z):
    """Reparametrized gradients of ``‖Y − X(M + A Z_m Bᵀ)‖²`` averaged over the draws ``Z`` (m, a, b)."""
    XA = X @ A
    XAZ = XA @ Z                                               # (m, n, b)
    R = (Y - X @ M)[None] - XAZ @ B.T                          # (m, n, k)
    draws = Z.shape[0]
    g_mean = -2.0 * scale * (X.T @ R.sum(axis=0)) / draws
    g_A = -2.0 * scale * (X.T @ ((R @ B) @ Z.transpose(0, 2, 1)).sum(axis=0)) / draws
    g_B = -2.0 * scale * (R.transpose(0, 2, 1) @ XAZ).sum(axis=0) / draws
    return g_mean, g_A, g_B


@dataclass(frozen=True)
class KroneckerLimit:
    r"""The limit of the gradient flow of ``ℓ̄`` started at a Kronecker prior (claim C14).

    Parameters
    ----------
    limit : KroneckerGaussian
        The limit ``(M∞, A∞, B∞)``.
    kept_variance : float
        ``c² = max(0, 1 − ‖P_row A₀‖²_F/‖B₀‖²_F)``, the fraction of the prior's null-space
        variance ``tr((P_null A₀A₀ᵀP_null) ⊗ B₀B₀ᵀ)`` that the limit keeps.
    collapsed : bool
        ``‖B₀‖²_F ≤ ‖P_row A₀‖²_F``: ``B∞ = 0``, the limit is a point mass.
    flow_time : float
        ``τ∞ = ∫₀^∞ ‖B_t‖²_F dt`` (``inf`` unless collapsed): ``P_row A`` decays as
        ``exp(−2XᵀXτ)``, so a collapsed flow stops with ``A∞ = P_null A₀ + V e^{−2S²τ∞} VᵀA₀``.
    gd_slope : float
        ``e₁`` in ``c²(η) = c² − e₁η + O(η²)`` for full-batch GD with step ``η``
        (0 when collapsed: GD then collapses too).
    w2_to_projection : float
        ``W₂(q_flow, q∞) = (1 − c)‖P_null A₀‖_F‖B₀‖_F``, the gap to Theorem 1's limit.
    """

    limit: KroneckerGaussian
    kept_variance: float
    collapsed: bool
    flow_time: float
    gd_slope: float
    w2_to_projection: float

    @property
    def scale(self) -> float:
        """``c = √(kept_variance)``: ``B∞ = c B₀``."""
        return math.sqrt(self.kept_variance)


#: Constant of the SVD's backward error ``‖X − U diag(s) Vᵀ‖₂ ≤ c·max(n, d)·eps·s_max`` (LAPACK's
#: bound is a modest multiple of ``max(n, d)·eps``; 16 leaves room for the orthogonality of ``U``, ``V``).
_SVD_BACKWARD_CONSTANT = 16.0


def _basis(X, basis):
    """``basis`` (or a new one for ``basis=None``) after checking it is a thin SVD of this ``X``.

    A basis of another matrix would give wrong projections without an error, so it is compared
    entrywise with ``X``: ``max|X − U diag(s) Vᵀ| ≤ (c·max(n, d)·eps + rtol)·√(nd)·max|X|``,
    the SVD's backward error plus the singular values below ``rtol·s_max`` that the basis dropped
    (both bounded in the spectral norm, which is at most ``√(nd)·max|X|``). Cost ``O(n·d·k)``.
    """
    if basis is None:
        return row_space_basis(X)
    n, d = X.shape
    if not isinstance(basis, RowSpaceBasis):
        raise TypeError(f"basis must be a RowSpaceBasis built from this X (row_space_basis(X)), "
                        f"got {type(basis).__name__}")
    V, s, U = basis.V, basis.s, basis.U
    if not (all(isinstance(part, np.ndarray) and part.dtype == np.float64 for part in (V, s, U))
            and s.ndim == 1 and V.shape == (d, s.size) and U.shape == (n, s.size)):
        raise ValueError(f"basis must be a RowSpaceBasis built from this X: V of shape (d, k) = ({d}, k), s of "
                         f"shape (k,) and U of shape (n, k) = ({n}, k) in float64, got shapes "
                         f"{np.shape(V)}, {np.shape(s)}, {np.shape(U)}")
    rtol = as_positive_float("basis.rtol", basis.rtol, allow_zero=True)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing product is a mismatch, refused below
        mismatch = float(np.max(np.abs(X - (U * s) @ V.T)))
    tolerance = (_SVD_BACKWARD_CONSTANT * max(n, d) * np.finfo(float).eps + rtol) * math.sqrt(n * d) * float(
        np.max(np.abs(X)))
    if not mismatch <= tolerance:
        raise ValueError(f"basis must be a RowSpaceBasis built from this X: max|X − U diag(s) Vᵀ| = {mismatch:.3g} "
                         f"exceeds {tolerance:.3g} (rounding of an SVD of X and its rank tolerance)")
    return basis


@float_guard("X", "Y", "prior")
def kronecker_w2_projection(X, Y, prior: KroneckerGaussian, *, basis: RowSpaceBasis | None = None) -> KroneckerGaussian:
    r"""Theorem 1's limit ``q∞`` for a Kronecker prior: ``(M₀ + X⁺(Y − XM₀), P_null A₀, B₀)``.

    For ``vec_r(Y) = (X ⊗ I_k) vec_r(W)`` the null-space projector is ``P_null ⊗ I_k``, so
    Theorem 1's ``L∞ = (P_null ⊗ I_k)(A₀ ⊗ B₀) = (P_null A₀) ⊗ B₀``: the W₂ projection of the prior
    onto the minimizers of ``ℓ̄`` is Kronecker with ``c = 1``.

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets the projection's mean interpolates.
    prior : KroneckerGaussian
        The prior ``(M₀, A₀, B₀)``.
    basis : RowSpaceBasis, optional
        :func:`row_space_basis` of ``X``, to reuse one SVD.

    Returns
    -------
    KroneckerGaussian
        ``q∞``; cost a thin SVD of ``X`` (``O(n²d)``, unless ``basis`` is given) and ``O(n·d·(k + a))``.

    Raises
    ------
    TypeError, ValueError
        As :func:`kronecker_expected_loss`; ``ValueError`` for a ``basis`` of another ``X``.
    """
    X, Y = _check_problem(X, Y, prior, "prior")
    basis = _basis(X, basis)
    return KroneckerGaussian(prior.mean + _pinv(basis, Y - X @ prior.mean),
                             project_null(basis, prior.input_factor), prior.output_factor)


def _pinv(basis: RowSpaceBasis, b):
    return basis.V @ ((basis.U.T @ b) / basis.s[:, None])


@float_guard("X", "Y", "prior")
def kronecker_limit(X, Y, prior: KroneckerGaussian, *, basis: RowSpaceBasis | None = None) -> KroneckerLimit:
    r"""Closed-form limit of the gradient flow of ``ℓ̄`` from a Kronecker prior.

    With ``X = U S Vᵀ`` (thin SVD), ``w_i = ‖(VᵀA₀)_{i,:}‖²``, ``α₀ = ‖XA₀‖²_F = Σ s_i² w_i`` and
    ``β₀ = ‖B₀‖²_F``: ``M`` follows linear GD flow to ``M∞ = M₀ + X⁺(Y − XM₀)``; ``B_t = b_t B₀``;
    the row part of ``A`` is ``V e^{−2S²τ} VᵀA₀`` at flow time ``τ = ∫‖B‖²dt``; the balance gives
    ``‖B(τ)‖² = β₀ − Σ w_i(1 − e^{−4s_i²τ})``. Hence

    .. math::

        c^2 = \max\Big(0, 1 - \frac{\|P_{row}A_0\|_F^2}{\|B_0\|_F^2}\Big), \qquad
        A_∞ = P_{null}A_0 + V e^{-2S^2τ_∞}V^TA_0, \qquad B_∞ = c B_0 ,

    with ``τ∞ = ∞`` when ``c > 0`` and ``Σ w_i(1 − e^{−4s_i²τ∞}) = β₀`` when collapsed. Full-batch
    GD with step ``η`` changes the balance by ``η²(‖∇_A‖² − ‖∇_B‖²)`` per step; summed along the
    flow this gives ``c²(η) = c² − e₁η + O(η²)`` with

    .. math::

        e_1 = c^2 α_0 + \frac{1}{2β_0}\sum_{i,j} w_i w_j \frac{(s_i^2 - s_j^2)^2}{s_i^2 + s_j^2} .

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets the flow is run on.
    prior : KroneckerGaussian
        The prior (the initialization) ``(M₀, A₀, B₀)``.
    basis : RowSpaceBasis, optional
        :func:`row_space_basis` of ``X``, to reuse one SVD.

    Returns
    -------
    KroneckerLimit
        Cost: a thin SVD of ``X`` (``O(n²d)``, unless ``basis`` is given) and ``O(n·d·(k + a) + n²)``.

    Raises
    ------
    ValueError
        For an all-zero ``B₀`` (no output variance: the phase is undefined), a ``basis`` of another
        ``X``, and as :func:`kronecker_expected_loss`.
    TypeError
        As :func:`kronecker_expected_loss`.
    """
    X, Y = _check_problem(X, Y, prior, "prior")
    basis = _basis(X, basis)
    A0, B0 = prior.input_factor, prior.output_factor
    if not np.any(B0):
        raise ValueError("prior.output_factor must not be all zeros (the prior has no variance to keep)")
    # In A₀/σ, B₀/σ and s/ς (powers of two: exact) the squares neither over- nor underflow;
    # kept_variance does not depend on σ or ς, the flow time scales by 1/ς², gd_slope by σ²ς² and
    # the W₂ gap by σ².
    sigma, varsigma = _common_scale(A0, B0), _common_scale(basis.s)
    beta0 = float(np.sum((B0 / sigma) ** 2))
    if beta0 == 0.0:
        raise ValueError("prior.output_factor is too small beside prior.input_factor (its squares vanish in "
                         "float64 beside theirs); rescale it")
    C0 = basis.V.T @ A0                                      # row-space coordinates of A₀
    w = np.sum((C0 / sigma) ** 2, axis=1)
    s2 = (basis.s / varsigma) ** 2
    row_part = float(np.sum(w))
    null_A = project_null(basis, A0)
    collapsed = beta0 <= row_part
    kept = 0.0 if collapsed else 1.0 - row_part / beta0
    if collapsed and beta0 < row_part:
        # remaining is taken in units of β̂₀ (a power of two near it: exact), so that Brent's method,
        # which multiplies values of it, sees no underflow when B₀ is far smaller than A₀.
        unit = _common_scale(np.array([beta0]))
        beta_unit, w_unit = beta0 / unit, w / unit

        def remaining(tau):
            return beta_unit + float(np.sum(w_unit * np.expm1(-4.0 * s2 * tau)))
        hi = 1.0 / (4.0 * s2[-1])
        while remaining(hi) > 0:
            hi *= 2.0
        tau = scipy.optimize.brentq(remaining, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)
        A_inf = null_A + basis.V @ (np.exp(-2.0 * s2 * tau)[:, None] * C0)
        tau = _times_square("X", tau, 1.0 / varsigma)
    else:
        tau = math.inf
        A_inf = null_A
    if collapsed:
        slope = 0.0
    else:
        alpha0 = float(s2 @ w)
        gap = (s2[:, None] - s2[None, :]) ** 2 / (s2[:, None] + s2[None, :])
        slope = kept * alpha0 + float(w @ gap @ w) / (2.0 * beta0)
    c = math.sqrt(kept)
    M_inf = prior.mean + _pinv(basis, Y - X @ prior.mean)
    limit = KroneckerGaussian(M_inf, A_inf, c * B0)
    gap_w2 = (1.0 - c) * float(np.linalg.norm(null_A / sigma)) * math.sqrt(beta0)
    return KroneckerLimit(limit=limit, kept_variance=kept, collapsed=bool(collapsed), flow_time=float(tau),
                          gd_slope=_times_square("X and prior", slope, sigma, varsigma),
                          w2_to_projection=_times_square("prior", gap_w2, sigma))


def _common_scale(*arrays: np.ndarray) -> float:
    """The power of two ``σ`` with ``σ ≤ max|entry| < 2σ`` over ``arrays`` (1 for all zeros).

    Dividing by ``σ`` is exact (only entries ``1e308`` times below the largest lose digits), and the
    squares of the scaled entries neither overflow nor, for entries within ``1e150`` of the
    largest, underflow.
    """
    top = max(float(np.max(np.abs(a))) if a.size else 0.0 for a in arrays)
    return math.ldexp(1.0, math.frexp(top)[1] - 1) if top > 0 else 1.0


def _times_square(names: str, value: float, *scales: float) -> float:
    """``value·∏σᵢ²`` for powers of two ``σᵢ`` (exact, or rounded once where it underflows); an error naming
    ``names`` where it exceeds the float64 range."""
    exponent = sum(2 * (math.frexp(scale)[1] - 1) for scale in scales)
    try:
        return finite_result(names, math.ldexp(value, exponent))
    except OverflowError:
        return finite_result(names, math.inf)


@float_guard("X", "Y", "q")
def expected_balance_drift(X, Y, q: KroneckerGaussian, mc_samples: int = 0) -> float:
    r"""``E[‖ĝ_A‖²_F − ‖ĝ_B‖²_F]``: a plain step ``θ ← θ − ηĝ`` changes the balance by ``η²`` times this.

    Every gradient here (exact, mini-batch or Monte Carlo) satisfies ``⟨A, ĝ_A⟩ = ⟨B, ĝ_B⟩``, so
    ``‖A − ηĝ_A‖² − ‖B − ηĝ_B‖² = ‖A‖² − ‖B‖² + η²(‖ĝ_A‖² − ‖ĝ_B‖²)`` exactly. For full-batch
    gradients with ``m = mc_samples`` draws (``m = 0``: exact), with ``E = Y − XM``, ``α = ‖XA‖²``,
    ``β = ‖B‖²``, and Gaussian moments of ``Z`` up to fourth order,

    .. math::

        4(β^2\|X^TXA\|^2 - α^2β) + \frac{4}{m}\big(a\|X^TEB\|^2 + (a + 1)\|B^TB\|_F^2\|X^TXA\|^2
        - b\|E^TXA\|^2 - (b + 1)β\|A^TX^TXA\|_F^2\big)

    (the second part, the difference of the two gradients' Monte Carlo variances, only for
    ``m ≥ 1``).

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets of the step whose drift is measured.
    q : KroneckerGaussian
        The current distribution ``(M, A, B)``.
    mc_samples : int
        Draws per step; 0 for exact gradients.

    Returns
    -------
    float
        Cost ``O(n·d·(k + a) + n·a² + k·b²)``.

    Raises
    ------
    ValueError
        For a negative ``mc_samples`` and as :func:`kronecker_expected_loss`.
    TypeError
        As :func:`kronecker_expected_loss`.
    """
    X, Y = _check_problem(X, Y, q, "q")
    mc_samples = as_positive_int("mc_samples", mc_samples, allow_zero=True)
    M, A, B = q.mean, q.input_factor, q.output_factor
    XA = X @ A
    XtXA = X.T @ XA
    alpha, beta = float(np.sum(XA ** 2)), float(np.sum(B ** 2))
    drift = 4.0 * (beta * beta * float(np.sum(XtXA ** 2)) - alpha * alpha * beta)
    if mc_samples:
        E = Y - X @ M
        noise = (A.shape[1] * float(np.sum((X.T @ (E @ B)) ** 2))
                 + (A.shape[1] + 1.0) * float(np.sum((B.T @ B) ** 2)) * float(np.sum(XtXA ** 2))
                 - B.shape[1] * float(np.sum((E.T @ XA) ** 2))
                 - (B.shape[1] + 1.0) * beta * float(np.sum((XA.T @ XA) ** 2)))
        drift += 4.0 * noise / mc_samples
    return finite_result("X, Y and q", drift)


@float_guard("X", "Y", "prior")
def kronecker_first_order(X, Y, prior: KroneckerGaussian, *, mc_samples: int = 0, momentum: float = 0.0,
                          basis: RowSpaceBasis | None = None) -> float:
    r"""``e₁`` in ``E[c²(η)] = c² − e₁η + O(η²)`` for full-batch steps of size ``η`` from ``prior``.

    The kept variance of a plain-step run is ``c²(η) = (‖P_null A₀‖² − D_∞)/‖B₀‖²`` once the row
    part of ``A`` has decayed, where the balance ``D`` changes by ``η²`` times
    :func:`expected_balance_drift` per step. Summing along the gradient flow (flow time ``t = ηk``)
    gives

    .. math::

        e_1 = \frac{1}{\|B_0\|^2}\int_0^∞ E\big[\|ĝ_A\|^2 - \|ĝ_B\|^2\big]\big(q_{flow}(t)\big)\,dt ,

    computed here by integrating the reduced flow (``τ' = ‖B(τ)‖²``, ``E(t) = e^{−2XXᵀt}E₀``,
    ``VᵀA(τ) = e^{−2S²τ}VᵀA₀``) with ``scipy.integrate.solve_ivp`` (DOP853, relative tolerance
    ``1e-11``). For exact gradients it equals the closed form :attr:`KroneckerLimit.gd_slope`.
    Heavy ball with exact gradients (``momentum = m > 0``) multiplies it by ``(1 + m)/(1 − m)²``:
    with ``v = g/(1 − m) + O(η)`` on the slow manifold, a step changes the balance by
    ``η²(1 + m)/(1 − m)³ (‖g_A‖² − ‖g_B‖²)`` and advances the flow time by ``η/(1 − m)`` (a
    first-order derivation, confirmed by simulation in claim C14). Zero when the flow collapses.

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets of the flow and of the steps it approximates.
    prior : KroneckerGaussian
        The prior ``(M₀, A₀, B₀)``.
    mc_samples : int
        Draws per step; 0 for exact gradients.
    momentum : float
        Heavy-ball coefficient ``m`` in ``[0, 1)`` (exact gradients only).
    basis : RowSpaceBasis, optional
        :func:`row_space_basis` of ``X``, to reuse one SVD.

    Returns
    -------
    float
        ``e₁``; cost a thin SVD of ``X`` and an ODE solve with ``O(n·(k + a) + a²)`` work per
        evaluation of the field.

    Raises
    ------
    ValueError
        For momentum combined with Monte Carlo gradients (not derived), a momentum outside
        ``[0, 1)`` and as :func:`kronecker_limit`.
    RuntimeError
        If the ODE solver fails.
    """
    mc_samples = as_positive_int("mc_samples", mc_samples, allow_zero=True)
    momentum = as_momentum(momentum)
    if momentum > 0 and mc_samples > 0:
        raise ValueError("the heavy-ball first-order term is derived for exact gradients only; "
                         "use mc_samples=0 with momentum > 0")
    X, Y = _check_problem(X, Y, prior, "prior")
    basis = _basis(X, basis)
    limit = kronecker_limit(X, Y, prior, basis=basis)
    if limit.collapsed or basis.rank == 0:  # no drift of the balance: a flat loss, or nothing kept
        return 0.0
    # Every quantity of order one (hats): factors over σ, singular values over ς, the residual's
    # row coordinates over φ (powers of two, so exact), flow time τ̂ = ς²τ. The drift is
    # σ⁶ς⁴ĥ₁(τ̂) + σ²ς²φ²ĥ₂(t, τ̂): ĥ₁ (the exact part and the MC terms in A, B alone) moves on the
    # factors' time t̂ = σ²ς²t, ĥ₂ (the MC terms with the residual E) on the residual's time t̃ = ς²t,
    # and e₁ = σ²ς²∫ĥ₁dt̂/β̂₀ + φ²∫ĥ₂dt̃/β̂₀. Each integral is solved on its own time scale.
    A0, B0 = prior.input_factor, prior.output_factor
    a, b = A0.shape[1], B0.shape[1]
    sigma, varsigma = _common_scale(A0, B0), _common_scale(basis.s)
    s = basis.s / varsigma
    s2 = s ** 2
    B_hat = B0 / sigma
    C0 = (basis.V.T @ A0) / sigma
    F0 = basis.U.T @ (Y - X @ prior.mean)
    phi = _common_scale(F0)
    F0 = F0 / phi
    beta0 = float(np.sum(B_hat ** 2))
    w = np.sum(C0 ** 2, axis=1)
    G0 = float(np.sum((B_hat.T @ B_hat) ** 2))

    def factors(tau):
        """``(Ĉ, β̂)`` at flow time ``τ̂``."""
        return np.exp(-2.0 * s2 * tau)[:, None] * C0, beta0 + float(np.sum(w * np.expm1(-4.0 * s2 * tau)))

    def own_drift(_, state):
        C, beta = factors(state[0])
        XtXA = float(np.sum((s2[:, None] * C) ** 2))
        alpha = float(np.sum(s2[:, None] * C ** 2))
        drift = 4.0 * (beta * beta * XtXA - alpha * alpha * beta)
        if mc_samples:
            ratio = beta / beta0
            H = C.T @ (s2[:, None] * C)
            noise = (a + 1.0) * ratio * ratio * G0 * XtXA - (b + 1.0) * beta * float(np.sum(H ** 2))
            drift += 4.0 * noise / mc_samples
        return [beta, drift]

    def residual_drift(t, state):
        C, beta = factors(state[0])
        F = np.exp(-2.0 * s2 * t)[:, None] * F0
        noise = (a * (beta / beta0) * float(np.sum((s[:, None] * F @ B_hat) ** 2))
                 - b * float(np.sum((F.T @ (s[:, None] * C)) ** 2)))
        return [speed * beta, 4.0 * noise / mc_samples]

    # τ̂ reaches 10/ŝ²_min (the row part of A decayed by e^{−20}) at the final speed β̂∞ = c²β̂₀; the
    # residual decays by e^{−20} at t̃ = 10/ŝ²_min.
    # Absolute tolerances from the size of each integral: for exact gradients ∫ĥ₁ = ê₁β̂₀ ≥ c²α̂₀β̂₀;
    # ∫ĥ₂ is at most about (a·β̂₀ + b·‖Ĉ₀‖²)‖F̂₀‖²/M.
    decay = 40.0 / (4.0 * float(s2[-1]))
    own_size = limit.kept_variance * float(s2 @ w) * beta0
    slope = _times_square("X, Y and prior", _flow_integral(own_drift, decay / (limit.kept_variance * beta0),
                                                           own_size) / beta0, sigma, varsigma)
    if mc_samples and np.any(F0):
        speed = _times_square("prior", 1.0, sigma)  # dτ̂/dt̃ = σ²β̂: the factors' pace on the residual's time
        residual_size = (a * beta0 + b * float(np.sum(w))) * float(np.sum(F0 ** 2)) / mc_samples
        slope += _times_square("X, Y and prior", _flow_integral(residual_drift, decay, residual_size) / beta0, phi)
    return finite_result("X, Y and prior", slope * (1.0 + momentum) / (1.0 - momentum) ** 2)


def _flow_integral(field, horizon: float, size: float) -> float:
    """``∫₀^horizon`` of the second component of ``field`` along the flow, for an integral of about ``size``.

    DOP853 with relative tolerance ``1e-11``; the absolute tolerances are ``1e-14`` for the flow
    time (of order ``1/ŝ²_min ≥ 1``) and ``1e-14·size`` for the integral, so that small integrals keep
    their relative accuracy.
    """
    import scipy.integrate

    solution = scipy.integrate.solve_ivp(field, (0.0, horizon), [0.0, 0.0], method="DOP853", rtol=1e-11,
                                         atol=[1e-14, 1e-14 * size if size > 0 else 1e-300])
    if not solution.success:
        raise RuntimeError(f"the flow integration failed: {solution.message}")
    return float(solution.y[1, -1])


@float_guard("p", "q")
def kronecker_w2_squared(p: KroneckerGaussian, q: KroneckerGaussian) -> float:
    r"""Squared 2-Wasserstein distance between two Kronecker Gaussians, without forming ``A ⊗ B``.

    The optimal rotation of the factor form (see :func:`linear_theory.w2_squared`) for
    ``F_p = A_p ⊗ B_p``, ``F_q = A_q ⊗ B_q`` is the polar factor of
    ``F_qᵀF_p = (A_qᵀA_p) ⊗ (B_qᵀB_p)``, which is ``U_A ⊗ U_B`` (polar factors of the two small
    products). With ``Ã = A_qU_A``, ``B̃ = B_qU_B``:

    .. math::

        W_2^2 = \|M_p - M_q\|_F^2 + \|A_p - Ã\|^2\|B_p\|^2 + \|Ã\|^2\|B_p - B̃\|^2
                + 2⟨A_p - Ã, Ã⟩⟨B_p, B_p - B̃⟩ ,

    which equals ``‖M_p − M_q‖² + ‖F_p‖² + ‖F_q‖² − 2‖A_qᵀA_p‖_*‖B_qᵀB_p‖_*`` but is built from
    differences, so close distributions keep their digits; exactly the mean part for identical
    factors. Factors of different widths are padded with zero columns.

    Parameters
    ----------
    p, q : KroneckerGaussian
        Two distributions with means of the same shape.

    Returns
    -------
    float
        Cost ``O(d·a² + k·b² + a³ + b³)``; no ``dk × dk`` or ``dk × ab`` matrix.

    Raises
    ------
    TypeError
        For arguments that are not :class:`KroneckerGaussian`.
    ValueError
        For means of different shapes.
    """
    for name, g in (("p", p), ("q", q)):
        if not isinstance(g, KroneckerGaussian):
            raise TypeError(f"{name} must be a KroneckerGaussian, got {type(g).__name__}")
    if p.mean.shape != q.mean.shape:
        raise ValueError(f"p and q must have means of the same shape, got {p.mean.shape} and {q.mean.shape}")
    mean_part = float(np.sum((p.mean - q.mean) ** 2))
    if all(x.shape == y.shape and np.array_equal(x, y) for x, y in
           ((p.input_factor, q.input_factor), (p.output_factor, q.output_factor))):
        return mean_part

    def aligned(Lp, Lq):
        width = max(Lp.shape[1], Lq.shape[1])
        Lp, Lq = _pad_columns(Lp, width), _pad_columns(Lq, width)
        left, _, right = np.linalg.svd(Lq.T @ Lp)
        return Lp, Lq @ (left @ right)

    Ap, Aq = aligned(p.input_factor, q.input_factor)
    Bp, Bq = aligned(p.output_factor, q.output_factor)
    dA, dB = Ap - Aq, Bp - Bq
    factor_part = (np.sum(dA ** 2) * np.sum(Bp ** 2) + np.sum(Aq ** 2) * np.sum(dB ** 2)
                   + 2.0 * np.sum(dA * Aq) * np.sum(Bp * dB))
    return mean_part + max(0.0, float(factor_part))


def _factor_curvature(s2, C, beta, alpha) -> float:
    """Largest Hessian eigenvalue of ``‖XA‖²‖B‖²`` in ``(A, B)`` (see :func:`kronecker_step_bound`)."""
    u = s2 ** 2 * np.sum(C ** 2, axis=1)                     # s_i⁴ w_i
    floor = max(2.0 * alpha, 2.0 * beta * float(s2[0]) if s2.size else 0.0)
    if beta == 0.0 or not np.any(u > 0):
        return floor

    def secular(lam):
        return lam - 2.0 * alpha - 16.0 * beta * float(np.sum(u / (lam - 2.0 * beta * s2)))

    ceiling = floor + 4.0 * math.sqrt(beta * float(np.sum(u))) + 2.0 * alpha + 1e-300
    while secular(ceiling) <= 0:
        ceiling *= 2.0
    lo = floor * (1.0 + 1e-15) + 1e-300
    if secular(lo) >= 0:
        return lo
    return float(scipy.optimize.brentq(secular, lo, ceiling, xtol=1e-300, rtol=4 * np.finfo(float).eps))


@float_guard("X", "q")
def kronecker_step_bound(X, q: KroneckerGaussian, optimizer: str = "gd", momentum: float = 0.9,
                         *, basis: RowSpaceBasis | None = None) -> float:
    r"""Largest stable full-batch step at ``q``: ``2/λ_max`` of the Hessian of ``ℓ̄`` (times ``1 + m``).

    The Hessian is block diagonal in ``M`` (``2XᵀX ⊗ I``, top eigenvalue ``2s_max²``) and
    ``(A, B)``. With ``C = VᵀA``, ``w_i = ‖C_{i,:}‖²``, ``α = ‖XA‖²``, ``β = ‖B‖²``, the ``(A, B)``
    block is ``diag(2βXᵀX, 2αI)`` plus the rank-two coupling
    ``(δA, δB) ↦ (4⟨B, δB⟩XᵀXA, 4⟨XᵀXA, δA⟩B)``; its top eigenvalue is the largest root of the
    secular equation

    .. math::

        λ = 2α + 16β \sum_i \frac{s_i^4 w_i}{λ - 2βs_i^2}, \qquad λ > \max(2α, 2βs_{max}^2),

    solved by ``brentq``. Heavy ball (``optimizer="momentum"``) multiplies the bound by ``1 + m``.
    The bound is local: the Hessian changes along the path (it shrinks under GD from the prior).

    Parameters
    ----------
    X : array, (n, d)
        Data.
    q : KroneckerGaussian
        The point ``(M, A, B)`` at which the Hessian is taken.
    optimizer : {"gd", "sgd", "momentum"}
        ``"momentum"`` multiplies the bound by ``1 + momentum``.
    momentum : float
        Heavy-ball coefficient in ``[0, 1)``.
    basis : RowSpaceBasis, optional
        :func:`row_space_basis` of ``X``, to reuse one SVD.

    Returns
    -------
    float
        The bound (``inf`` for an all-zero ``X`` and where it exceeds the float64 range); cost a
        thin SVD of ``X`` (unless ``basis`` is given) and ``O(n·d·a)``.

    Raises
    ------
    ValueError
        For an unknown ``optimizer``, a ``momentum`` outside ``[0, 1)``, shapes that do not match
        and a ``basis`` of another ``X``.
    TypeError
        For a ``q`` that is not a :class:`KroneckerGaussian`.
    """
    as_optimizer(optimizer)
    momentum = as_momentum(momentum)
    if not isinstance(q, KroneckerGaussian):
        raise TypeError(f"q must be a linear_theory.KroneckerGaussian, got {type(q).__name__}")
    X = as_matrix("X", X)
    if X.shape[1] != q.dim:
        raise ValueError(f"q has {q.dim} inputs but X has {X.shape[1]} columns")
    basis = _basis(X, basis)
    if basis.rank == 0:
        return math.inf
    # The Hessian is homogeneous: of degree 2 in s and, for the (A, B) block, in the pair (A, B).
    # Its eigenvalues for s/ς, A/σ and B/σ (powers of two: exact) are of order one, free of
    # under- and overflow; the bound is 2/(ς²·max(2ŝ²_max, σ²λ̂)).
    sigma, varsigma = _common_scale(q.input_factor, q.output_factor), _common_scale(basis.s)
    s2 = (basis.s / varsigma) ** 2
    A, B = q.input_factor / sigma, q.output_factor / sigma
    curvature = _factor_curvature(s2, basis.V.T @ A, float(np.sum(B ** 2)), float(np.sum(((X / varsigma) @ A) ** 2)))
    mean_block = 2.0 * float(s2[0])
    try:
        factor_block = math.ldexp(curvature, 2 * (math.frexp(sigma)[1] - 1))
    except OverflowError:
        factor_block = math.inf
    top, scales = (curvature, (sigma, varsigma)) if factor_block > mean_block else (mean_block, (varsigma,))
    try:
        bound = _times_square("X and q", 2.0 / top, *(1.0 / scale for scale in scales))
    except ValueError:  # beyond the float64 range: the documented inf
        return math.inf
    return (1.0 + momentum) * bound if optimizer == "momentum" else bound


@dataclass(frozen=True)
class KroneckerTrace:
    """Quantities recorded every ``record_every`` steps (step 0 and the last step included).

    Parameters
    ----------
    steps : numpy.ndarray, shape (r,)
        The step ``t`` of each record.
    expected_loss : numpy.ndarray, shape (r,)
        ``ℓ̄(M_t, A_t, B_t) = ‖Y − XM_t‖²_F + ‖XA_t‖²_F ‖B_t‖²_F``.
    kept_variance : numpy.ndarray, shape (r,)
        ``‖B_t‖²/‖B₀‖²``, the fraction of null-space variance kept (since
        ``P_null A_t = P_null A₀``); NaN for ``B₀ = 0``.
    balance : numpy.ndarray, shape (r,)
        ``‖A_t‖² − ‖B_t‖²``, conserved by the flow.
    null_mean_drift : numpy.ndarray, shape (r,)
        ``‖P_null(M_t − M₀)‖_F``, an invariant (zero up to rounding).
    null_factor_drift : numpy.ndarray, shape (r,)
        ``‖P_null(A_t − A₀)‖_F``, an invariant (zero up to rounding).
    output_off_line : numpy.ndarray, shape (r,)
        ``‖B_t − (⟨B_t, B₀⟩/‖B₀‖²)B₀‖_F``, zero for exact gradients.
    w2_to_projection : numpy.ndarray, shape (r,)
        ``W₂(q_t, q∞)`` to Theorem 1's limit :func:`kronecker_w2_projection`.
    """

    steps: np.ndarray
    expected_loss: np.ndarray
    kept_variance: np.ndarray
    balance: np.ndarray
    null_mean_drift: np.ndarray
    null_factor_drift: np.ndarray
    output_off_line: np.ndarray
    w2_to_projection: np.ndarray


@dataclass(frozen=True)
class KroneckerSimulation:
    """Final distribution, trace, the flow's closed-form limit, Theorem 1's ``q∞`` and the step bound.

    Parameters
    ----------
    final : KroneckerGaussian
        The law ``(M, A, B)`` after the last step.
    trace : KroneckerTrace
        The recorded quantities.
    limit : KroneckerLimit
        The gradient flow's closed-form limit from the prior (:func:`kronecker_limit`).
    projection : KroneckerGaussian
        Theorem 1's ``q∞``, the W₂ projection of the prior (:func:`kronecker_w2_projection`).
    stability_bound : float
        The full-batch step bound of :func:`kronecker_step_bound` at the prior.
    optimizer : str
        The optimizer, ``"gd"``, ``"sgd"`` or ``"momentum"``.
    """

    final: KroneckerGaussian
    trace: KroneckerTrace
    limit: KroneckerLimit
    projection: KroneckerGaussian
    stability_bound: float
    optimizer: str


@float_guard("X", "Y", "prior")
def simulate_kronecker(X, Y, prior: KroneckerGaussian, *, optimizer: str = "gd", lr: float, steps: int,
                       batch_size: int | None = None, mc_samples: int = 0, momentum: float = 0.9, seed=0,
                       record_every: int | None = None, check_stability: bool = True) -> KroneckerSimulation:
    """Run IBVI on ``W = M + AZBᵀ`` from the prior and record the trace.

    Parameters
    ----------
    X : array, (n, d)
        Data.
    Y : array, (n, k)
        Targets of the loss the optimizer minimizes.
    prior : KroneckerGaussian
        The initialization ``(M₀, A₀, B₀)``.
    optimizer : {"gd", "sgd", "momentum"}
        ``"gd"`` (full batch), ``"sgd"`` (mini-batches of ``batch_size`` rows drawn without
        replacement, gradients scaled by ``n/batch_size``) or ``"momentum"`` (heavy ball
        ``v ← mv + g``, ``θ ← θ − ηv``; full batch unless ``batch_size`` is given).
    lr : float
        The step of ``M``, ``A`` and ``B``.
    steps : int
        Number of steps.
    batch_size : int, optional
        Rows per step (required for ``"sgd"``).
    mc_samples : int
        0 for the exact gradients of ``ℓ̄``; ``m ≥ 1`` for reparametrized Monte Carlo gradients of
        ``‖Y_B − X_B(M + AZBᵀ)‖²`` averaged over ``m`` draws of ``Z``.
    momentum : float
        Heavy-ball coefficient for ``optimizer="momentum"``.
    seed : int or numpy.random.Generator
        Source of batches and draws.
    record_every : int, optional
        Trace spacing (default ``max(1, steps // 100)``).
    check_stability : bool
        Raise ``ValueError`` before running when ``lr`` is at or above
        :func:`kronecker_step_bound` at the prior.

    Returns
    -------
    KroneckerSimulation
        With the flow's limit (:func:`kronecker_limit`) and Theorem 1's ``q∞``
        (:func:`kronecker_w2_projection`) for comparison.

    Cost per step ``O(b·d·(k + a) + m·b·(a·b + k·b))`` for batch size ``b`` and ``m`` draws; per
    record ``O(n·d·(k + a) + d·a² + k·b²)``. A thin SVD of ``X`` once.

    Raises
    ------
    ValueError
        Bad shapes or values, an unknown optimizer, a batch size outside ``1..n``, or a step above
        the stability bound.
    DivergenceError
        When the parameters become non-finite or the expected loss exceeds ``1e8`` times its start.
    """
    X, Y = _check_problem(X, Y, prior, "prior")
    n, k = Y.shape
    a, b = prior.input_factor.shape[1], prior.output_factor.shape[1]
    # per step and draw: Z (a·b floats) and the residuals and their products (b ≤ n rows of k or b)
    options = check_run_options(n, optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size,
                                mc_samples=mc_samples, momentum=momentum, seed=seed, record_every=record_every,
                                draw_size=a * b + n * max(k, b))
    basis = row_space_basis(X)
    bound = kronecker_step_bound(X, prior, optimizer, options.momentum, basis=basis)
    if check_stability:
        check_step("lr", options.lr, bound, f"stability bound {bound:.4g} of optimizer={optimizer!r} on this X at "
                                            "the prior (2/λ_max of the Hessian of the expected loss, times 1 + m "
                                            "for momentum)")
    limit = kronecker_limit(X, Y, prior, basis=basis)
    projection = kronecker_w2_projection(X, Y, prior, basis=basis)

    M0, A0, B0 = prior.mean, prior.input_factor, prior.output_factor
    beta0 = float(np.sum(B0 ** 2))
    recorder = Recorder(KroneckerTrace, loss0=_loss(X, Y, M0, A0, B0), lr=options.lr, bound=bound)

    def record(t, params):
        M, A, B = params
        loss = _loss(X, Y, M, A, B)
        recorder.check_loss(t, loss)
        beta = float(np.sum(B ** 2))
        along = float(np.sum(B * B0)) / beta0 if beta0 > 0 else 0.0
        recorder.add(KroneckerTrace(
            steps=t, expected_loss=loss, kept_variance=beta / beta0 if beta0 > 0 else math.nan,
            balance=float(np.sum(A ** 2)) - beta,
            null_mean_drift=float(np.linalg.norm(project_null(basis, M - M0))),
            null_factor_drift=float(np.linalg.norm(project_null(basis, A - A0))),
            output_off_line=float(np.linalg.norm(B - along * B0)),
            w2_to_projection=math.sqrt(kronecker_w2_squared(KroneckerGaussian(M, A, B), projection))))

    def step_gradients(params):
        XB, YB, scale = options.batch(X, Y)
        if options.mc_samples == 0:
            return _exact_gradients(XB, YB, *params, scale)
        Z = options.rng.standard_normal((options.mc_samples, a, b))
        return _mc_gradients(XB, YB, *params, scale, Z)

    final = descend(options, (M0.copy(), A0.copy(), B0.copy()), (options.lr,) * 3, step_gradients, recorder, record)
    return KroneckerSimulation(final=KroneckerGaussian(*final), trace=recorder.trace(), limit=limit,
                               projection=projection, stability_bound=bound, optimizer=optimizer)
