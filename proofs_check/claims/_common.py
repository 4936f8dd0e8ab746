"""Problem set-ups shared by the claim modules (one place for sizes and seeds)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import linear_theory as lt

#: Closed form vs converged float64 simulation (docs/theory.md §5): relative errors of about 1e-8 or
#: better; rounding alone gives ~1e-14 here, so 1e-8 leaves room for slow modes, not for bugs.
CONVERGED_RTOL = 1e-8
#: Quantities that are exactly invariant up to rounding accumulated over at most ~1e4 steps
#: (1e4 · eps ≈ 2e-12) and the κ·eps error of the projector used to measure them.
ROUNDING_RTOL = 1e-10


@dataclass(frozen=True)
class LinearSetup:
    X: np.ndarray
    y: np.ndarray
    prior: lt.Gaussian
    limit: lt.Gaussian
    singular_values: np.ndarray

    @property
    def prior_to_limit(self) -> float:
        """``W₂(p, q∞)``: the scale against which distances are made relative."""
        return lt.w2(self.prior, self.limit)


def regression_setup(ctx, *, n=None, d=None, rank=None, width=None, condition_number=4.0,
                     offset=0) -> LinearSetup:
    """An overparametrized problem with a random prior ``N(μ₀, L₀L₀ᵀ)`` (full factor by default)."""
    n = n if n is not None else (8 if ctx.quick else 20)
    d = d if d is not None else (24 if ctx.quick else 60)
    width = d if width is None else width
    problem = lt.random_regression(n, d, rank=rank, condition_number=condition_number,
                                   seed=ctx.rng(100 + offset))
    rng = ctx.rng(200 + offset)
    prior = lt.Gaussian(rng.standard_normal(d), rng.standard_normal((d, width)) / np.sqrt(width))
    return LinearSetup(X=problem.X, y=problem.y, prior=prior, limit=lt.ibvi_limit(problem.X, problem.y, prior),
                       singular_values=problem.singular_values)


def relative(value: float, scale: float) -> float:
    return float(value / scale) if scale > 0 else float(value)
