"""(e) The stable step of the covariance factor under Monte Carlo gradients, against the rank.

With ``M`` reparametrized samples the factor's step must stay below about
``1/(s_max²(1 + (r + 1)/M))`` (mean-square stability, :func:`linear_theory.stability.predicted_mc_threshold`),
which falls like ``1/r``: the reason μP divides the factor's step by the rank. The markers are the
thresholds :func:`linear_theory.stability.mc_factor_threshold` measures by bisection on real
simulations (median over seeds; a finite-horizon, single-path threshold, so it may lie above
the mean-square line).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from linear_theory import random_regression

NAME = "mc_threshold"
CAPTION = ("Largest stable step of the covariance factor under Monte Carlo gradients, measured by "
           "bisection on simulations against the factor's rank r (log-log), beside the mean-square "
           "prediction 1/(s_max^2 (1 + (r+1)/M)), a 1/r reference line and the exact-gradient bound 1/s_max^2.")
CLAIMS = ("C1-mc-threshold",)
#: The planned API of the lead engineer's branch; the figure is skipped while it is missing.
REQUIRES = ("linear_theory.stability",)


def make(ctx) -> Figure:
    from linear_theory.stability import mc_factor_threshold, predicted_mc_threshold

    if ctx.quick:
        n, d, ranks, sample_counts, steps, seeds = 8, 40, (1, 2, 4, 8, 16), (1,), 200, (0,)
    else:
        n, d, ranks, sample_counts, steps, seeds = 10, 70, (1, 2, 4, 8, 16, 32, 64), (1, 4), 400, (0, 1)
    problem = random_regression(n, d, condition_number=2.0, seed=ctx.rng(1))
    s_max = float(problem.singular_values.max())
    exact = 1.0 / s_max ** 2
    seeds = tuple(ctx.seed * 1000 + k for k in seeds)

    figure = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = figure.subplots()
    r_grid = np.arange(ranks[0], ranks[-1] + 1)
    colors = ("tab:blue", "tab:red", "tab:green")
    for color, m in zip(colors, sample_counts):
        measured = []
        for rank in ranks:
            ctx.progress(f"mc_threshold: rank {rank}, M = {m}")
            # Bisection probes unstable steps on purpose: overflow there is the expected outcome.
            with np.errstate(over="ignore", invalid="ignore"):
                measured.append(mc_factor_threshold(problem.X, rank, mc_samples=m, steps=steps, seeds=seeds))
        ax.loglog(ranks, [r.threshold for r in measured], "o", color=color, ms=6,
                  label=f"measured threshold, M = {m} (median of {len(seeds)} seed(s))")
        ax.loglog(r_grid, [predicted_mc_threshold(s_max, int(r), m) for r in r_grid], "-", color=color, lw=1.3,
                  label=f"prediction 1/(s_max²(1 + (r+1)/{m}))")
    # The 1/r reference passes through the first sample count's prediction at the largest rank.
    anchor = predicted_mc_threshold(s_max, ranks[-1], sample_counts[0]) * ranks[-1]
    ax.loglog(r_grid, anchor / r_grid, "k--", lw=1.0, label="reference ∝ 1/r")
    ax.axhline(exact, color="0.5", ls=":", lw=1.0, label="exact-gradient bound 1/s_max²")
    ax.set_xlabel("rank r of the covariance factor (log scale)")
    ax.set_ylabel("largest stable factor step η (log scale)")
    ax.set_title(f"MC stability threshold of the factor's step (n = {n}, d = {d}, {steps} steps)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="both", alpha=0.3)
    return figure
