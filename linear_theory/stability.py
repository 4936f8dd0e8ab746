r"""Stability of the factor's step under Monte Carlo gradients (claim C1, THEORY.md §2).

With ``M`` reparametrized samples and the mean at rest, a row-space row ``ℓ`` (``1 × r``) of the
factor along a singular direction ``s`` moves as ``ℓ ← ℓ(I − 2ηs² Ẑ)``, ``Ẑ = (1/M)Σ_m z_m z_mᵀ``.
Since ``E[Ẑ] = I`` and ``E[Ẑ²] = (1 + (r + 1)/M) I``, the second moment contracts iff

.. math::

    η < η^*_{ms} = \frac{1}{s_{max}^2\,(1 + (r+1)/M)} ,

which shrinks like ``1/r`` (the reason μP divides the factor's step by the rank). The exact-gradient
bound is ``1/s_max²`` (the ``M → ∞`` limit). :func:`mc_factor_threshold` measures the threshold by
bisection on real simulations: a *single-path* threshold over a finite horizon. By Jensen's
inequality the almost-sure growth rate is below the mean-square one, so the measured threshold
lies at or above ``η*_ms``, and approaches it as ``r`` grows (``‖z‖²/r`` concentrates).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_matrix, as_positive_float, as_positive_int
from .gaussian import Gaussian
from .simulate import DivergenceError, simulate

__all__ = ["predicted_mc_threshold", "mc_factor_threshold", "ThresholdResult"]


def predicted_mc_threshold(s_max: float, rank: int, mc_samples: int = 1) -> float:
    """Mean-square stability bound ``1/(s_max²(1 + (rank + 1)/mc_samples))`` of the factor's step."""
    s_max = as_positive_float("s_max", s_max)
    rank = as_positive_int("rank", rank)
    mc_samples = as_positive_int("mc_samples", mc_samples)
    return 1.0 / (s_max ** 2 * (1.0 + (rank + 1.0) / mc_samples))


@dataclass(frozen=True)
class ThresholdResult:
    """Measured factor-step threshold (median over seeds) beside the mean-square prediction."""

    rank: int
    mc_samples: int
    threshold: float
    per_seed: tuple[float, ...]
    predicted: float

    @property
    def ratio(self) -> float:
        return self.threshold / self.predicted


def _stable(X, prior, lr_factor, steps, mc_samples, seed) -> bool:
    exact = 1.0 / float(np.linalg.norm(X, 2)) ** 2
    try:
        result = simulate(X, np.zeros(X.shape[0]), prior, family="lowrank", lr=MEAN_STEP_FRACTION * exact,
                          lr_factor=lr_factor, steps=steps, mc_samples=mc_samples, seed=seed,
                          record_every=steps)
    except DivergenceError:
        return False
    return bool(np.linalg.norm(X @ result.final.factor) < np.linalg.norm(X @ prior.factor))


#: The mean's step as a fraction of ``1/s_max²``: small, so that the residual ``y − Xμ`` (which
#: couples mean and factor through the MC gradient) stays at zero and the factor's own
#: stability is what is measured.
MEAN_STEP_FRACTION = 1e-3


def mc_factor_threshold(X, rank: int, *, mc_samples: int = 1, steps: int = 400, seeds=(0, 1, 2),
                        rel_tol: float = 0.03) -> ThresholdResult:
    """Bisect the largest factor step for which MC-gradient IBVI contracts ``‖XL‖`` over ``steps``.

    The problem is ``y = 0`` with prior ``N(0, L₀L₀ᵀ)``, ``L₀`` standard normal ``d × rank``
    scaled by ``1/√rank``, so the mean starts at its optimum; the mean's step is
    ``MEAN_STEP_FRACTION / s_max²``. "Stable" means no :class:`DivergenceError` and
    ``‖XL_T‖_F < ‖XL_0‖_F`` after ``steps`` steps. Bisection in ``log η`` stops at relative width
    ``rel_tol``; the reported threshold is the median over ``seeds``.

    Cost ``O(log(1/rel_tol) · |seeds| · steps · n·d·rank·mc_samples)``.
    Raises ``ValueError`` unless ``rank < d`` (a low-rank factor), for an all-zero ``X`` and for
    empty ``seeds``.
    """
    X = as_matrix("X", X)
    n, d = X.shape
    rank = as_positive_int("rank", rank)
    if rank >= d:
        raise ValueError(f"rank must be below d = {d} (low-rank factor), got {rank}")
    mc_samples = as_positive_int("mc_samples", mc_samples)
    steps = as_positive_int("steps", steps)
    rel_tol = as_positive_float("rel_tol", rel_tol)
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    s_max = float(np.linalg.norm(X, 2))
    if s_max == 0.0:
        raise ValueError("X must not be all zeros (its loss is flat: there is no threshold to measure)")
    exact = 1.0 / s_max ** 2
    per_seed = []
    for seed in seeds:
        rng = np.random.default_rng([int(seed), rank, mc_samples])
        prior = Gaussian(np.zeros(d), rng.standard_normal((d, rank)) / np.sqrt(rank))
        lo, hi = exact * 1e-3, exact * (1.0 - 1e-9)
        if _stable(X, prior, hi, steps, mc_samples, seed):
            per_seed.append(hi)
            continue
        while hi / lo > 1.0 + rel_tol:
            mid = np.sqrt(lo * hi)
            if _stable(X, prior, mid, steps, mc_samples, seed):
                lo = mid
            else:
                hi = mid
        per_seed.append(float(np.sqrt(lo * hi)))
    return ThresholdResult(rank=rank, mc_samples=mc_samples, threshold=float(np.median(per_seed)),
                           per_seed=tuple(per_seed), predicted=predicted_mc_threshold(s_max, rank, mc_samples))
