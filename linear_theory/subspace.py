r"""Row and null spaces of a data matrix without forming a ``d × d`` projector.

For ``X ∈ R^{n×d}`` with thin SVD ``X = U diag(s) Vᵀ`` (``k`` = numerical rank),

.. math::

    P_{row} = X^+ X = V V^T, \qquad P_{null} = I - V V^T, \qquad X^+ b = V \operatorname{diag}(1/s) U^T b .

Everything here applies these maps as ``A − V(VᵀA)`` and never builds ``I − VVᵀ``.

Two routes are offered (see :func:`row_space_solver`):

``"svd"``
    A thin SVD of ``X`` (LAPACK ``gesdd``): cost ``O(n²d)`` flops with a large constant (about
    15 s at ``n = 1000, d = 100 000`` on 2 cores). Accurate to ``O(eps·κ(X))``, and the rank is
    decided by the stated tolerance ``s_i > rtol · s_max``.
``"gram"``
    The ``n × n`` Gram matrix ``G = XXᵀ`` (one BLAS-3 product, ``n²d`` multiply-adds, about 1 s
    at that size) and its eigen-decomposition (``O(n³)``). Solving through ``G`` squares the
    condition number, so every solve is followed by **iterative refinement with the residual
    computed from X itself** (``r = b − X(Xᵀc) − λc``), which recovers float64 accuracy whenever
    ``κ(G)·eps ≪ 1``. ``"auto"`` measures ``κ(X)`` from the eigenvalues of ``G`` and falls back
    to the SVD route when ``κ(X) > 1e5`` (``κ(G)·eps > 2e-6``, where refinement would converge
    too slowly) or when ``X`` is rank deficient or not wide (``n > d``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.linalg

from ._validation import as_float_array, as_matrix, as_positive_float

EPS = np.finfo(np.float64).eps
#: Largest κ(X) for which "auto" trusts the Gram route (κ(G)·eps = 1e10·2.2e-16 ≈ 2e-6: each
#: refinement step then gains about 5.6 digits, so two or three steps reach rounding level).
GRAM_MAX_CONDITION = 1e5
_REFINEMENT_STEPS = 4


def default_rtol(X_shape) -> float:
    """Rank tolerance relative to ``s_max``: ``max(n, d)·eps`` (as ``numpy.linalg.matrix_rank``)."""
    return max(X_shape) * EPS


@dataclass(frozen=True)
class RowSpaceBasis:
    """Thin SVD of ``X`` truncated at its numerical rank.

    Attributes
    ----------
    V : (d, k) orthonormal basis of ``row(X)``
    s : (k,) nonzero singular values, descending
    U : (n, k) orthonormal basis of ``col(X)``
    rtol : the relative tolerance that decided the rank ``k`` (``s_i > rtol·s_max``)
    """

    V: np.ndarray
    s: np.ndarray
    U: np.ndarray
    rtol: float

    @property
    def rank(self) -> int:
        return int(self.s.shape[0])


def row_space_basis(X, rtol: float | None = None) -> RowSpaceBasis:
    """Orthonormal basis of ``row(X)`` from a thin SVD, rank decided by ``s_i > rtol·s_max``.

    Parameters
    ----------
    X : (n, d) array, finite.
    rtol : relative rank tolerance; default ``max(n, d)·eps``.

    Cost ``O(min(n,d)·n·d)`` time, ``O((n + d)·min(n, d))`` memory. Raises ``ValueError`` for
    non-finite or empty ``X`` or a negative ``rtol``.
    """
    X = as_matrix("X", X)
    rtol = default_rtol(X.shape) if rtol is None else as_positive_float("rtol", rtol, allow_zero=True)
    # A wide C-ordered X is decomposed as its transpose: Xᵀ is a tall Fortran-ordered view (no
    # copy), and LAPACK's tall path is several times faster than its wide one (measured 2.3 s
    # against 16.9 s for gesdd at n = 200, d = 20 000 with OpenBLAS). Same decomposition.
    wide = X.shape[0] < X.shape[1]
    A = X.T if wide else X
    try:
        U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:  # gesdd can fail to converge on rare inputs; gesvd is slower, robust
        U, s, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesvd")
    if wide:
        U, Vt = Vt.T, U.T
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
    """

    X: np.ndarray
    method: str
    singular_values: np.ndarray  # (k,) descending, the nonzero ones
    rtol: float
    _U: np.ndarray = field(repr=False)  # (n, k)
    _V: np.ndarray | None = field(repr=False, default=None)  # (d, k), svd route only

    @property
    def rank(self) -> int:
        return int(self.singular_values.shape[0])

    @property
    def cond(self) -> float:
        """``s_max / s_min`` over the retained singular values."""
        s = self.singular_values
        return float(s[0] / s[-1]) if s.size else float("inf")

    @property
    def stability_bound(self) -> float:
        """Largest stable GD step on ``‖y − Xw‖²`` (no ½): ``1 / s_max²`` (``inf`` for ``X = 0``)."""
        if self.singular_values.size == 0:  # X = 0: the loss is flat, every step is stable
            return float("inf")
        return float(1.0 / self.singular_values[0] ** 2)

    # -- core maps ---------------------------------------------------------------------------
    def spectral_map(self, b, phi: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``Σ_i v_i φ(s_i) u_iᵀ b`` for ``b`` of shape ``(n,)`` or ``(n, m)``; result ``(d,)``/``(d, m)``.

        ``φ = 1/s`` gives ``X⁺b``; ``φ = s/(s² + λ)`` the ridge map; ``φ(s) = (1 − (1 − 2ηs²)^t)/s``
        the GD iterate. On the Gram route ``v_i = Xᵀu_i / s_i`` so no basis of ``row(X)`` is formed.
        Cost ``O(n·d·m + n·k·m)``. No refinement: use :meth:`shifted_solve` for ``X⁺`` and ridge.
        """
        b, squeeze = _as_block("b", b, self.X.shape[0])
        s = self.singular_values
        coeff = (self._U.T @ b) * phi(s)[:, None]
        if self.method == "svd":
            out = self._V @ coeff
        else:
            out = self.X.T @ (self._U @ (coeff / s[:, None]))
        return out[:, 0] if squeeze else out

    def shifted_solve(self, b, lam: float = 0.0) -> np.ndarray:
        """``Xᵀ(XXᵀ + λI)⁺ b`` (``λ = 0``: the minimum-norm solution ``X⁺b``).

        On the Gram route the first solve through ``G + λI`` is refined with residuals
        ``b − X(Xᵀc) − λc`` computed from ``X``, restricted to ``col(X)`` (``b`` outside it has no
        exact solution; its projection is what ``X⁺`` uses). Cost ``O(n·d·m)`` per refinement step.
        """
        lam = as_positive_float("lam", lam, allow_zero=True)
        b, squeeze = _as_block("b", b, self.X.shape[0])
        s = self.singular_values
        if self.method == "svd":
            out = self._V @ ((self._U.T @ b) * (s / (s * s + lam))[:, None])
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
        """``X⁺ b`` for ``b`` of shape ``(n,)`` or ``(n, m)``."""
        return self.shifted_solve(b, 0.0)

    def project_row(self, A) -> np.ndarray:
        """``P_row A = X⁺(XA)`` for ``A`` of shape ``(d,)`` or ``(d, m)``; cost ``O(n·d·m)``."""
        A, squeeze = _as_block("A", A, self.X.shape[1])
        if self.method == "svd":
            out = self._V @ (self._V.T @ A)
        else:
            out = self.pinv(self.X @ A)
        return out[:, 0] if squeeze else out

    def project_null(self, A) -> np.ndarray:
        """``P_null A = A − P_row A`` for ``A`` of shape ``(d,)`` or ``(d, m)``; cost ``O(n·d·m)``."""
        A = as_float_array("A", A, ndim=(1, 2))
        return A - self.project_row(A)


def row_space_solver(X, method: str = "auto", rtol: float | None = None) -> RowSpaceSolver:
    """Factor ``X`` once for repeated pseudo-inverse, ridge and projection solves.

    Parameters
    ----------
    X : (n, d) array, finite.
    method : ``"auto"`` (Gram route when ``n ≤ d``, full row rank and ``κ(X) ≤ 1e5``, else SVD),
        ``"gram"`` or ``"svd"``.
    rtol : rank tolerance relative to ``s_max`` (default ``max(n, d)·eps``).

    Cost: ``"gram"`` ``n²d + O(n³)``; ``"svd"`` a thin SVD, ``O(n²d)`` with a ~15× larger
    constant. Memory ``O(nd)`` (``X`` itself) plus ``O(n²)`` or ``O(dk)``.

    Raises
    ------
    ValueError
        If ``X`` is empty or not finite, ``method`` is unknown, or ``method="gram"`` is asked for a
        rank-deficient or tall ``X`` (its Gram matrix is singular).
    """
    X = as_matrix("X", X)
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {method!r}")
    rtol = default_rtol(X.shape) if rtol is None else as_positive_float("rtol", rtol, allow_zero=True)
    n, d = X.shape
    if method in ("auto", "gram") and n <= d:
        G = X @ X.T
        evals, evecs = scipy.linalg.eigh(G)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        top = max(evals[0], 0.0)
        # On the Gram route an eigenvalue is only known to ±eps·λ_max, so the rank it reports is
        # only trustworthy when every eigenvalue is far above that level.
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
        raise ValueError(f"method='gram' needs a wide X (n ≤ d); got X of shape {X.shape}")
    basis = row_space_basis(X, rtol)
    return RowSpaceSolver(X=X, method="svd", singular_values=basis.s, rtol=rtol, _U=basis.U, _V=basis.V)


def project_null(X_or_solver, A) -> np.ndarray:
    """``P_null A`` for ``A`` of shape ``(d,)`` or ``(d, m)``, without forming ``I − X⁺X``.

    ``X_or_solver`` is a data matrix, a :class:`RowSpaceSolver` or a :class:`RowSpaceBasis`.
    """
    if isinstance(X_or_solver, RowSpaceBasis):
        A = as_float_array("A", A, ndim=(1, 2))
        V = X_or_solver.V
        if A.shape[0] != V.shape[0]:
            raise ValueError(f"A must have {V.shape[0]} rows, got shape {A.shape}")
        return A - V @ (V.T @ A)
    solver = X_or_solver if isinstance(X_or_solver, RowSpaceSolver) else row_space_solver(X_or_solver)
    return solver.project_null(A)


def project_row(X_or_solver, A) -> np.ndarray:
    """``P_row A = X⁺XA`` for ``A`` of shape ``(d,)`` or ``(d, m)``, without forming ``X⁺X``."""
    if isinstance(X_or_solver, RowSpaceBasis):
        A = as_float_array("A", A, ndim=(1, 2))
        return A - project_null(X_or_solver, A)
    solver = X_or_solver if isinstance(X_or_solver, RowSpaceSolver) else row_space_solver(X_or_solver)
    return solver.project_row(A)
