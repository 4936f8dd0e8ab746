"""Claim C1 (stability part): with Monte Carlo gradients the stable step of the covariance factor
shrinks like ``1/r`` — measured by bisection and compared with the mean-square bound
``1/(s_max²(1 + (r + 1)/M))`` derived in :mod:`linear_theory.stability`."""
from __future__ import annotations

import numpy as np

import linear_theory as lt

from ..registry import Measurement, Outcome, Table, claim

#: Bisection resolution: thresholds are known to within 3 % (rel_tol of the bisection).
BISECTION_RTOL = 0.03


def threshold_problem(ctx, max_rank: int) -> np.ndarray:
    """``X`` (4 × (2·max_rank + 16)) with all singular values 1, so that ``s_max = 1``."""
    n = 4
    return lt.random_regression(n, 2 * max_rank + 16, spectrum=np.ones(n), seed=ctx.rng(40)).X


def measure_threshold(ctx, X, rank, *, mc_samples=1, momentum=0.0, prior_scale=1.0, steps=None, seeds=None):
    """One bisection of :func:`linear_theory.mc_factor_threshold` at the claim's resolution."""
    ctx.progress(f"MC threshold, rank {rank}, M = {mc_samples}, momentum {momentum}, prior scale {prior_scale}")
    steps = (300 if ctx.quick else 400) if steps is None else steps
    seeds = ((0, 1) if ctx.quick else (0, 1, 2)) if seeds is None else seeds
    # Bisection probes unstable steps on purpose: overflow there is the expected outcome.
    with np.errstate(over="ignore", invalid="ignore"):
        return lt.mc_factor_threshold(X, rank, mc_samples=mc_samples, steps=steps, seeds=seeds,
                                      rel_tol=BISECTION_RTOL, momentum=momentum, prior_scale=prior_scale)


def threshold_table(ctx, ranks, mc_samples=1):
    """The measured thresholds for each rank on a problem with all singular values 1."""
    X = threshold_problem(ctx, max(ranks))
    return [measure_threshold(ctx, X, r, mc_samples=mc_samples) for r in ranks]


@claim("C1-mc-threshold", statement="With MC gradients (M samples) the factor's stable step shrinks like 1/r: "
       "measured threshold vs the mean-square bound 1/(s_max^2 (1 + (r+1)/M))",
       reference="Theorem 1 (step size); docs/theory.md C1", kind="extension")
def check_threshold(ctx) -> Outcome:
    ranks = (4, 8, 16, 32) if ctx.quick else (2, 4, 8, 16, 32, 64)
    results = threshold_table(ctx, ranks)
    measured = np.array([res.threshold for res in results])
    predicted = np.array([res.predicted for res in results])
    big = np.array(ranks) >= 8
    slope = np.polyfit(np.log(np.array(ranks)[big]), np.log(measured[big]), 1)[0]
    slope_pred = np.polyfit(np.log(np.array(ranks)[big]), np.log(predicted[big]), 1)[0]
    ratios = measured / predicted
    rows = tuple((r, res.threshold, res.predicted, res.ratio, res.threshold * r) for r, res in zip(ranks, results))
    large = np.array(ranks) >= 16
    return Outcome((
        Measurement("max(0, 1 - measured/mean-square) over r (measured must not lie below the bound)",
                    float(max(0.0, 1.0 - np.min(ratios))), BISECTION_RTOL,
                    "Jensen: the single-path growth rate is below the mean-square one; bisection resolution"),
        Measurement("max over r >= 16 of measured/mean-square - 1 (the bound is tight for large r)",
                    float(np.max(ratios[large]) - 1.0), 0.10,
                    "||z||^2/r concentrates (spread sqrt(2/r) <= 0.35), closing the Jensen gap; plus 3 % bisection"),
        Measurement("log-log slope of the measured threshold vs r for r >= 8 (mean-square bound: "
                    f"{slope_pred:.3f}, -1 as r -> inf)", float(slope), None, "the 1/r scaling"),
    ), tables=(Table("MC factor-step threshold against the rank (M = 1, s_max = 1)",
                     ("r", "measured", "mean-square 1/(r+2)", "ratio", "threshold x r"), rows),),
        notes=(f"log-log slope for r >= 8: measured {slope:.3f}, mean-square bound {slope_pred:.3f} "
               "(exactly -1 only as r -> inf)",))
