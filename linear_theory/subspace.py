r"""Row and null spaces of a data matrix without forming a ``d × d`` projector.

For ``X ∈ R^{n×d}`` with thin SVD ``X = U diag(s) Vᵀ`` (``k`` = numerical rank),

.. math::

    P_{row} = X^+ X = V V^T, \qquad P_{null} = I - V V^T, \qquad X^+ b = V \operatorname{diag}(1/s) U^T b .

Everything here applies these maps as ``A − V(VᵀA)`` and never builds ``I − VVᵀ``.

Two routes are offered (see :func:`row_space_solver`):

``"svd"``
    A thin SVD of ``X`` (LAPACK ``gesdd``): cost ``O(n²d)`` flops with a large constant (an
    order of magnitude above the Gram route's; benchmarks/README.md has the timings). Accurate to
    ``O(eps·κ(X))``, and the rank is decided by the stated tolerance ``s_i > rtol · s_max``.
``"gram"``
    The ``n × n`` Gram matrix ``G = XXᵀ`` (one BLAS-3 product, ``n²d`` multiply-adds) and its
    eigen-decomposition (``O(n³)``). Solving through ``G`` squares the
    condition number, so every solve is followed by **iterative refinement with the residual
    computed from X itself** (``r = b − X(Xᵀc) − λc``), which recovers float64 accuracy whenever
    ``κ(G)·eps ≪ 1``. ``"auto"`` measures ``κ(X)`` from the eigenvalues of ``G`` and falls back
    to the SVD route when ``κ(X) > 1e5`` (``κ(G)·eps > 2e-6``, where refinement would converge
    too slowly), when ``X`` is rank deficient or not wide (``n > d``), or when ``G`` would leave
    the normal float64 range (entries of ``X`` beyond about ``1e±146``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.linalg

from ._validation import as_float_array, as_matrix, as_positive_float, float_guard

EPS = np.finfo(np.float64).eps
#: Largest κ(X) for which "auto" trusts the Gram route (κ(G)·eps = 1e10·2.2e-16 ≈ 2e-6: each
#: refinement step then gains about 5.6 digits, so two or three steps reach rounding level).
GRAM_MAX_CONDITION = 1e5
_REFINEMENT_STEPS = 4


#: Smallest and largest ``λ_max(XXᵀ)`` for which the Gram route is used: its eigenvalues then stay
#: normal floats, well above the subnormals (where they lose digits) and below overflow.
_GRAM_RANGE = (np.finfo(np.float64).tiny / EPS, np.finfo(np.float64).max * EPS)


def default_rtol(X_shape) -> float:
    """Rank tolerance relative to ``s_max``: ``max(n, d)·eps`` (as ``numpy.linalg.matrix_rank``)."""
    return max(X_shape) * EPS


@dataclass(frozen=True)
class RowSpaceBasis:
    """Thin SVD ``X = U diag(s) Vᵀ`` truncated at its numerical rank ``k``.

    Parameters
    ----------
    V : (d, k) array
        Orthonormal basis of ``row(X)``.
    s : (k,) array
        Nonzero singular values, descending.
    U : (n, k) array
        Orthonormal basis of ``col(X)``.
    rtol : float
        The relative tolerance that decided the rank ``k`` (``s_i > rtol·s_max``).
    """

    V: np.ndarray
    s: np.ndarray
    U: np.ndarray
    rtol: float

    @property
    def rank(self) -> int:
        """The numerical rank ``k``."""
        return int(self.s.shape[0])


@float_guard("X")
def row_space_basis(X, rtol: float | None = None) -> RowSpaceBasis:
    """Orthonormal basis of ``row(X)`` from a thin SVD, rank decided by ``s_i > rtol·s_max``.

    Parameters
    ----------
    X : (n, d) array
        Finite data.
    rtol : float, optional
        Relative rank tolerance, ``≥ 0``; default ``max(n, d)·eps``.

    Returns
    -------
    RowSpaceBasis
        ``V`` (d, k), ``s`` (k,), ``U`` (n, k) with ``X = U diag(s) Vᵀ`` up to rounding.

    Raises
    ------
    TypeError
        For non-numeric ``X`` or ``rtol``.
    ValueError
        For non-finite, empty or non-2-D ``X``, or a negative ``rtol``.

    Notes
    -----
    Cost ``O(min(n,d)·n·d)`` time, ``O((n + d)·min(n, d))`` memory.
    """
    X = as_matrix("X", X)
    rtol = default_rtol(X.shape) if rtol is None else as_positive_float("rtol", rtol, allow_zero=True)
    # A wide C-ordered X is decomposed as its transpose: Xᵀ is a tall Fortran-ordered view (no
    # copy), and LAPACK's tall path is several times faster than its wide one. Same decomposition.
    wide = X.shape[0] < X.shape[1]
    A = X.T if wide else X
    try:
        U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:  # gesdd can fail to converge on rare inputs; gesvd is slower, robust
        U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesvd")
    if wide:
        U, Vt = Vt.T, U.T
    with np.errstate(over="ignore"):  # a threshold rtol·s_max beyond the float range keeps nothing
        keep = s > rtol * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, dtype=bool)
    k = int(np.count_nonzero(keep))
    return RowSpaceBasis(V=Vt[:k].T.copy(), s=s[:k].copy(), U=U[:, :k].copy(), rtol=rtol)


def _as_block(name: str, A, size: int) -> tuple[np.ndarray, bool]:
    A = as_float_array(name, A, ndim=(1, 2))
    if A.shape[0] != size:
        raise ValueError(f"{name} must have {size} rows (the matching dimension of X), got shape {A.shape}")
    return (A[:, None], True) if A.ndim == 1 else (A, False)


@dataclass(frozen=True, eq=False)
class RowSpaceSolver:
    """Applies ``X⁺``, ``Xᵀ(XXᵀ + λI)⁻¹``, spectral filters and the row/null projectors of ``X``.

    Build it with :func:`row_space_solver`. It stores ``X`` (no copy of a ``d × d`` object) and
    either a thin SVD (``method == "svd"``) or the eigen-decomposition of ``G = XXᵀ``
    (``method == "gram"``). Each application costs ``O(n·d·m)`` for ``m`` right-hand sides
    (plus the refinement steps, each another ``O(n·d·m)`` on the Gram route).

    Parameters
    ----------
    X : (n, d) array
        The data.
    method : {"gram", "svd"}
        The route chosen.
    singular_values : (k,) array
        The nonzero singular values of ``X``, descending.
    rtol : float
        The relative rank tolerance.
    _U : (n, k) array
        Left singular vectors (SVD) or eigenvectors of ``XXᵀ`` (Gram); internal.
    _V : (d, k) array or None
        Right singular vectors on the SVD route; internal.
    """

    X: np.ndarray
    method: str
    singular_values: np.ndarray  # (k,) descending, the nonzero ones
    rtol: float
    _U: np.ndarray = field(repr=False)  # (n, k)
    _V: np.ndarray | None = field(repr=False, default=None)  # (d, k), svd route only

    @property
    def rank(self) -> int:
        """The numerical rank ``k``."""
        return int(self.singular_values.shape[0])

    @property
    def cond(self) -> float:
        """``s_max / s_min`` over the retained singular values (``inf`` for ``X = 0``)."""
        s = self.singular_values
        return float(s[0] / s[-1]) if s.size else float("inf")

    @property
    def stability_bound(self) -> float:
        """Largest stable GD step on ``‖y − Xw‖²`` (no ½): ``1 / s_max²`` (``inf`` for ``X = 0``).

        A ``1/s_max²`` above the float64 range is reported as ``inf`` (every float step is stable).
        """
        if self.singular_values.size == 0:  # X = 0: the loss is flat, every step is stable
            return float("inf")
        s_max = self.singular_values[0]
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            return float(1.0 / (s_max * s_max))

    # -- core maps ---------------------------------------------------------------------------
    @float_guard("X and b")
    def spectral_map(self, b, phi: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``Σ_i v_i φ(s_i) u_iᵀ b``, a filter ``φ`` of the singular values applied to ``b``.

        ``φ = 1/s`` gives ``X⁺b``; ``φ = s/(s² + λ)`` the ridge map; ``φ(s) = (1 − (1 − 2ηs²)^t)/s``
        the GD iterate. On the Gram route ``v_i = Xᵀu_i / s_i`` so no basis of ``row(X)`` is formed.
        No refinement: use :meth:`shifted_solve` for ``X⁺`` and ridge.

        Parameters
        ----------
        b : (n,) or (n, m) array
            Right-hand sides.
        phi : callable
            Maps the ``(k,)`` singular values to ``(k,)`` gains.

        Returns
        -------
        (d,) or (d, m) array
            The filtered map of ``b``.

        Raises
        ------
        ValueError
            For ``b`` with a number of rows other than ``n``, non-finite entries, or overflow.

        Notes
        -----
        Cost ``O(n·d·m + n·k·m)``.
        """
        b, squeeze = _as_block("b", b, self.X.shape[0])
        s = self.singular_values
        coeff = (self._U.T @ b) * phi(s)[:, None]
        if self.method == "svd":
            out = self._V @ coeff
        else:
            out = self.X.T @ (self._U @ (coeff / s[:, None]))
        return out[:, 0] if squeeze else out

    @float_guard("X, b and lam")
    def shifted_solve(self, b, lam: float = 0.0) -> np.ndarray:
        """``Xᵀ(XXᵀ + λI)⁺ b`` (``λ = 0``: the minimum-norm solution ``X⁺b``).

        On the Gram route the first solve through ``G + λI`` is refined with residuals
        ``b − X(Xᵀc) − λc`` computed from ``X``, restricted to ``col(X)`` (``b`` outside it has no
        exact solution; its projection is what ``X⁺`` uses). On the SVD route the gains are
        ``1/(s + λ/s)``, which stay exact where ``s²`` would underflow.

        Parameters
        ----------
        b : (n,) or (n, m) array
            Right-hand sides.
        lam : float
            The shift ``λ ≥ 0``.

        Returns
        -------
        (d,) or (d, m) array
            The solution, in ``row(X)``.

        Raises
        ------
        ValueError
            For a negative or non-finite ``lam``, a wrong number of rows in ``b``, or overflow.

        Notes
        -----
        Cost ``O(n·d·m)`` per refinement step (at most four).
        """
        lam = as_positive_float("lam", lam, allow_zero=True)
        b, squeeze = _as_block("b", b, self.X.shape[0])
        s = self.singular_values
        if self.method == "svd":
            with np.errstate(over="ignore"):  # λ/s = inf for tiny s: the gain is then 0, correctly
                ratio = lam / s
            gain = 1.0 / (s + ratio)
            out = self._V @ ((self._U.T @ b) * gain[:, None])
            return out[:, 0] if squeeze else out
        U = self._U
        inv = 1.0 / (s * s + lam)

        def solve_gram(rhs):
            return U @ ((U.T @ rhs) * inv[:, None])

        c = solve_gram(b)
        scale = np.linalg.norm(b) or 1.0
        last = np.inf
        for _ in range(_REFINEMENT_STEPS):
            residual = b - self.X @ (self.X.T @ c) - lam * c
            size = np.linalg.norm(residual)
            if size <= 4 * EPS * scale or size >= 0.5 * last:
                break
            last = size
            c = c + solve_gram(residual)
        out = self.X.T @ c
        return out[:, 0] if squeeze else out

    def pinv(self, b) -> np.ndarray:
        """``X⁺ b``, the minimum-norm least-squares solution.

        Parameters
        ----------
        b : (n,) or (n, m) array
            Right-hand sides.

        Returns
        -------
        (d,) or (d, m) array
            ``X⁺b``; cost as :meth:`shifted_solve`.

        Raises
        ------
        ValueError
            As :meth:`shifted_solve`.
        """
        return self.shifted_solve(b, 0.0)

    @float_guard("X and A")
    def project_row(self, A) -> np.ndarray:
        """``P_row A = X⁺(XA)``, the orthogonal projection onto ``row(X)``.

        Parameters
        ----------
        A : (d,) or (d, m) array
            Vectors whose row-space component is returned.

        Returns
        -------
        (d,) or (d, m) array
            ``P_row A``; cost ``O(n·d·m)``.

        Raises
        ------
        ValueError
            For a wrong number of rows, non-finite entries, or overflow.
        """
        A, squeeze = _as_block("A", A, self.X.shape[1])
        if self.method == "svd":
            out = self._V @ (self._V.T @ A)
        else:
            out = self.pinv(self.X @ A)
        return out[:, 0] if squeeze else out

    @float_guard("X and A")
    def project_null(self, A) -> np.ndarray:
        """``P_null A = A − P_row A``, the orthogonal projection onto ``null(X)``.

        Parameters
        ----------
        A : (d,) or (d, m) array
            Vectors whose null-space component is returned.

        Returns
        -------
        (d,) or (d, m) array
            ``P_null A``; cost ``O(n·d·m)``, no ``d × d`` projector.

        Raises
        ------
        ValueError
            As :meth:`project_row`.
        """
        A = as_float_array("A", A, ndim=(1, 2))
        return A - self.project_row(A)


def _gram_representable(X: np.ndarray) -> bool:
    """Whether ``λ_max(XXᵀ) ∈ [max|X|², n·d·max|X|²]`` lies in the Gram range (tested in logs)."""
    largest = float(np.max(np.abs(X)))
    if largest == 0.0:
        return False
    low, high = 2.0 * np.log(largest), 2.0 * np.log(largest) + np.log(X.shape[0] * X.shape[1])
    return bool(np.log(_GRAM_RANGE[0]) <= low and high <= np.log(_GRAM_RANGE[1]))


@float_guard("X")
def row_space_solver(X, method: str = "auto", rtol: float | None = None) -> RowSpaceSolver:
    """Factor ``X`` once for repeated pseudo-inverse, ridge and projection solves.

    Parameters
    ----------
    X : (n, d) array
        Finite data.
    method : {"auto", "gram", "svd"}
        ``"auto"``: the Gram route when ``n ≤ d``, ``X`` has full row rank, ``κ(X) ≤ 1e5`` and
        ``λ_max(XXᵀ)`` is a normal float far from over- and underflow; else SVD.
    rtol : float, optional
        Rank tolerance relative to ``s_max``, ``≥ 0`` (default ``max(n, d)·eps``).

    Returns
    -------
    RowSpaceSolver
        The factorization.

    Raises
    ------
    TypeError
        For non-numeric ``X``.
    ValueError
        If ``X`` is empty or not finite, ``method`` is unknown, or ``method="gram"`` is asked for a
        rank-deficient, tall or out-of-range ``X`` (its Gram matrix is singular or not representable).

    Notes
    -----
    Cost: ``"gram"`` ``n²d + O(n³)``; ``"svd"`` a thin SVD, ``O(n²d)`` with a larger constant.
    Memory ``O(nd)`` (``X`` itself) plus ``O(n²)`` or ``O(dk)``.
    """
    X = as_matrix("X", X)
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {method!r}")
    rtol = default_rtol(X.shape) if rtol is None else as_positive_float("rtol", rtol, allow_zero=True)
    n, d = X.shape
    if method in ("auto", "gram") and n <= d and _gram_representable(X):
        G = X @ X.T
        evals, evecs = scipy.linalg.eigh(G)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        top = max(evals[0], 0.0)
        # eigh's backward error is about n·eps·λ_max: an eigenvalue below that level is
        # indistinguishable from zero, and 1/s built on it would be pure rounding noise.
        full_rank = top > 0 and evals[-1] > n * EPS * top
        cond = np.sqrt(top / evals[-1]) if full_rank else np.inf
        if full_rank and (method == "gram" or cond <= GRAM_MAX_CONDITION):
            return RowSpaceSolver(X=X, method="gram", singular_values=np.sqrt(evals), rtol=rtol,
                                  _U=np.ascontiguousarray(evecs))
        if method == "gram":
            raise ValueError("method='gram' needs X of full row rank; X is rank deficient at the Gram "
                             f"route's resolution (smallest eigenvalue of XXᵀ {evals[-1]:.3e} ≤ n·eps·λ_max "
                             f"= {n * EPS * top:.3e}); use method='svd' or 'auto'")
    elif method == "gram":
        if n > d:
            raise ValueError(f"method='gram' needs a wide X (n ≤ d); got X of shape {X.shape}")
        raise ValueError("method='gram' needs X whose Gram matrix XXᵀ is a normal float64 matrix; the entries of "
                         f"X reach {float(np.max(np.abs(X))):.3g}; use method='svd' or 'auto'")
    basis = row_space_basis(X, rtol)
    return RowSpaceSolver(X=X, method="svd", singular_values=basis.s, rtol=rtol, _U=basis.U, _V=basis.V)


def _basis_split(basis: RowSpaceBasis, A) -> tuple[np.ndarray, np.ndarray]:
    """``(A, A − V(VᵀA))``: the checked ``A`` and its null-space part for a row-space basis ``V``."""
    A = as_float_array("A", A, ndim=(1, 2))
    V = basis.V
    if A.shape[0] != V.shape[0]:
        raise ValueError(f"A must have {V.shape[0]} rows (the columns of X), got shape {A.shape}")
    return A, A - V @ (V.T @ A)


def _solver_of(X_or_solver) -> RowSpaceSolver:
    """``X_or_solver`` itself when it is a :class:`RowSpaceSolver`, else a solver of the array."""
    return X_or_solver if isinstance(X_or_solver, RowSpaceSolver) else row_space_solver(X_or_solver)


@float_guard("X_or_solver", "A")
def project_null(X_or_solver, A) -> np.ndarray:
    """``P_null A`` without forming ``I − X⁺X``.

    Parameters
    ----------
    X_or_solver : (n, d) array, RowSpaceSolver or RowSpaceBasis
        The data, or a factorization of it.
    A : (d,) or (d, m) array
        Vectors to project onto ``null(X)``.

    Returns
    -------
    (d,) or (d, m) array
        ``A − V(VᵀA)``; cost ``O(n·d·m)`` plus the factorization when ``X`` is given.

    Raises
    ------
    ValueError
        For shapes that do not match, non-finite input, or overflow.
    """
    if isinstance(X_or_solver, RowSpaceBasis):
        return _basis_split(X_or_solver, A)[1]
    return _solver_of(X_or_solver).project_null(A)


@float_guard("X_or_solver", "A")
def project_row(X_or_solver, A) -> np.ndarray:
    """``P_row A = X⁺XA`` without forming ``X⁺X``.

    Parameters
    ----------
    X_or_solver : (n, d) array, RowSpaceSolver or RowSpaceBasis
        The data, or a factorization of it.
    A : (d,) or (d, m) array
        Vectors to project onto ``row(X)``.

    Returns
    -------
    (d,) or (d, m) array
        ``P_row A``; cost ``O(n·d·m)`` plus the factorization when ``X`` is given.

    Raises
    ------
    ValueError
        For shapes that do not match, non-finite input, or overflow.
    """
    if isinstance(X_or_solver, RowSpaceBasis):
        A, null_part = _basis_split(X_or_solver, A)
        return A - null_part
    return _solver_of(X_or_solver).project_row(A)
