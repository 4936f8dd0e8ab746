r"""The geometry a preconditioner gives gradient descent on the linear model (private).

GD preconditioned by ``P = RRᵀ`` (``μ ← μ − ηP∇_μ``, ``L ← L − ηP∇_L``) moves only inside
``range(R)``; with ``w = μ₀ + Rv`` it is plain GD on ``‖y − XRv‖²``. So every closed form of the
identity metric applies to ``X̃ = XR`` and maps back through ``R``:

.. math::

    μ_∞ = μ_0 + R\,\tilde X^+(y - Xμ_0), \qquad L_∞ = L_0 - R\,\tilde X^+ X L_0 .

Two preconditioners occur. Per-coordinate step multipliers ``P = D`` (``R = D^{½}``, applied as a
vector, never a ``d × d`` matrix; docs/theory.md §4 (C12)), where ``D`` is divided by its largest
entry first, since the limit does not depend on the scale of ``D`` and ``X̃`` then neither
underflows nor overflows; and the prior's covariance ``P = Σ₀ = L₀L₀ᵀ`` (``R = L₀``, claim C3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_step_multipliers
from .subspace import RowSpaceSolver, row_space_solver


@dataclass(frozen=True, eq=False)
class Geometry:
    """``X``, the root ``R`` of the preconditioner ``P = scale·R̂R̂ᵀ`` and a solver of ``X̃ = XR̂``.

    ``root`` is ``None`` (identity), a ``(d,)`` vector (diagonal ``R̂ = diag(root)``) or a
    ``(d, k)`` factor. ``multipliers`` is the diagonal ``D`` as given (``None`` otherwise), which
    the simulators apply to the gradients unchanged.
    """

    X: np.ndarray
    solver: RowSpaceSolver
    root: np.ndarray | None = None
    scale: float = 1.0
    multipliers: np.ndarray | None = None

    @property
    def identity(self) -> bool:
        return self.root is None

    def lift(self, B: np.ndarray) -> np.ndarray:
        """``R̂B`` for ``B`` of shape ``(k,)`` or ``(k, m)``; cost ``O(d·m)`` (diagonal) or ``O(d·k·m)``."""
        if self.root is None:
            return B
        if self.root.ndim == 1:
            return self.root * B if B.ndim == 1 else self.root[:, None] * B
        return self.root @ B

    def precondition(self, g: np.ndarray) -> np.ndarray:
        """``Pg``: ``D ⊙ g`` for step multipliers, ``L₀(L₀ᵀg)`` for the prior's covariance."""
        if self.multipliers is not None:
            return self.multipliers * g if g.ndim == 1 else self.multipliers[:, None] * g
        if self.root is None:
            return g
        return self.root @ (self.root.T @ g)

    def shift(self, residual: np.ndarray) -> np.ndarray:
        """``R̂X̃⁺ residual``: the move of the mean from ``μ₀`` to the limit for ``residual = y − Xμ₀``."""
        return self.lift(self.solver.pinv(residual))

    def project_null(self, A: np.ndarray) -> np.ndarray:
        """The part of ``A`` (``(d,)`` or ``(d, m)``) preconditioned GD cannot move: ``A − R̂X̃⁺XA``.

        Without a preconditioner this is ``P_null A``; otherwise the projector is oblique (onto
        ``null(X)`` along ``range(PXᵀ)``). Cost ``O(n·d·m)``.
        """
        if self.root is None:
            return self.solver.project_null(A)
        return A - self.lift(self.solver.pinv(self.X @ A))

    @property
    def stability_bound(self) -> float:
        """Largest stable full-batch GD step: ``1/(scale · s_max(X̃)²)`` (``inf`` for ``X̃ = 0``)."""
        s = self.solver.singular_values
        if s.size == 0:
            return float("inf")
        return float(1.0 / (self.scale * s[0] ** 2))


def scaled_data(X: np.ndarray, *, step_multipliers=None, factor_root: np.ndarray | None = None):
    """``(X̃, root, scale, multipliers)`` with ``X̃ = X·root`` and ``P = scale·root·rootᵀ``; cost ``O(n·d)``."""
    if step_multipliers is not None and factor_root is not None:
        raise ValueError("step_multipliers cannot be combined with preconditioned=True (the prior's covariance "
                         "is already the preconditioner)")
    if step_multipliers is not None:
        multipliers = as_step_multipliers(step_multipliers, X.shape[1])
        scale = float(np.max(multipliers))
        root = np.sqrt(multipliers / scale)
        return X * root, root, scale, multipliers
    if factor_root is not None:
        return X @ factor_root, factor_root, 1.0, None
    return X, None, 1.0, None


def geometry(X: np.ndarray, *, step_multipliers=None, factor_root: np.ndarray | None = None,
             solver: RowSpaceSolver | None = None, method: str = "auto") -> Geometry:
    """The :class:`Geometry` of a validated ``X`` under ``step_multipliers`` or a factor root.

    ``solver``, when given, must be a :class:`RowSpaceSolver` of ``X̃`` (``X`` itself without a
    preconditioner). Cost: one solver of ``X̃``, ``O(n²d)``, plus ``O(n·d)`` for the scaling
    (``O(n·d·k)`` for a factor root).
    """
    X_tilde, root, scale, multipliers = scaled_data(X, step_multipliers=step_multipliers, factor_root=factor_root)
    if solver is None:
        solver = row_space_solver(X_tilde, method=method)
    elif not isinstance(solver, RowSpaceSolver) or solver.X.shape != X_tilde.shape:
        raise ValueError("solver must be a RowSpaceSolver built from this X" if root is None else
                         "solver must be a RowSpaceSolver of X * sqrt(step_multipliers / max(step_multipliers)) "
                         "when step_multipliers are given")
    elif root is not None and not np.array_equal(solver.X, X_tilde):
        raise ValueError("solver must be a RowSpaceSolver of X * sqrt(step_multipliers / max(step_multipliers)) "
                         "when step_multipliers are given; it was built from another matrix")
    return Geometry(X=X, solver=solver, root=root, scale=scale, multipliers=multipliers)
