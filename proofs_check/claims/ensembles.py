"""Claim C2 — Proposition S1: ``q∞`` is the law of ``P_null w₀ + X⁺y`` with ``w₀ ~ p``, i.e. an
infinite ensemble of linear models, each initialized from the prior and trained by plain GD."""
from __future__ import annotations

import numpy as np

import linear_theory as lt

from ..registry import Measurement, Outcome, claim
from ._common import ROUNDING_RTOL, regression_setup

#: A standard normal exceeds 4.5 in absolute value with probability 6.8e-6; over the ~20 z-scores
#: below (Bonferroni) a correct implementation fails with probability about 1e-4.
Z_TOLERANCE = 4.5


def ensemble_z_scores(members: np.ndarray, limit: lt.Gaussian, directions: np.ndarray):
    """Standardized errors of the ensemble's mean and variance along ``directions`` (rows).

    For ``K`` i.i.d. Gaussian members, the sample mean along ``a`` has standard error
    ``sqrt(aᵀΣa / K)`` and the sample variance ``aᵀΣa · sqrt(2/(K − 1))``.
    """
    K = members.shape[0]
    proj = members @ directions.T  # (K, m)
    true_mean = directions @ limit.mean
    true_var = np.sum((directions @ limit.factor) ** 2, axis=1)
    z_mean = (proj.mean(axis=0) - true_mean) / np.sqrt(true_var / K)
    z_var = (proj.var(axis=0, ddof=1) - true_var) / (true_var * np.sqrt(2.0 / (K - 1)))
    return z_mean, z_var


@claim("C2", statement="An ensemble of GD-trained linear models initialized from the prior has the law of q_inf "
       "(mean and covariance within standard errors; zero spread on the data)",
       reference="Proposition S1", kind="paper")
def check_ensemble(ctx) -> Outcome:
    setup = regression_setup(ctx, n=6 if ctx.quick else 10, d=15 if ctx.quick else 30)
    X, y = setup.X, setup.y
    K = 2000 if ctx.quick else 8000
    initial = setup.prior.sample(K, ctx.rng(10))
    members = lt.gd_ensemble(X, y, initial, lr=0.9 * lt.stability_bound(X), steps=400)
    rng = ctx.rng(11)
    directions = lt.project_null(X, rng.standard_normal((X.shape[1], 10))).T  # where q_inf has spread
    z_mean, z_var = ensemble_z_scores(members, setup.limit, directions)
    spread_on_data = float(np.max(np.std(members @ X.T, axis=0)) / np.max(np.abs(y)))
    mean_gap = float(np.max(np.abs(members.mean(axis=0) @ X.T - y)) / np.max(np.abs(y)))
    return Outcome((
        Measurement("max |z| of the ensemble mean along 10 null-space directions", float(np.max(np.abs(z_mean))),
                    Z_TOLERANCE, "standard error sqrt(a'Σa/K); Bonferroni over 20 z-scores, P(false fail) ≈ 1e-4"),
        Measurement("max |z| of the ensemble variance along the same directions", float(np.max(np.abs(z_var))),
                    Z_TOLERANCE, "standard error a'Σa·sqrt(2/(K-1)) for Gaussian members; same Bonferroni"),
        Measurement("max std of members' predictions on the training inputs / max|y|", spread_on_data,
                    ROUNDING_RTOL, "every member interpolates: exact, rounding only"),
        Measurement("max |ensemble mean prediction - y| / max|y|", mean_gap, ROUNDING_RTOL,
                    "every member interpolates: exact, rounding only"),
    ), notes=(f"K = {K} members, 400 GD steps each at 0.9/s_max^2",))
