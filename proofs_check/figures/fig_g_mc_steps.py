"""(g) The stable step of the covariance factor under Monte Carlo gradients against the number of
samples ``M`` and heavy-ball momentum ``β`` (claim C16).

Left: measured thresholds (bisection on simulations) against ``M`` at rank 8, beside the
mean-square bound ``1/(s²(1 + (r + 1)/M))`` — which Ghosh et al.'s expected-descent step equals
once their ``z`` is the factor's signal-to-noise ratio ``a²M/(r + 1)`` — and the exact-gradient
bound ``1/s²``. Right: against ``β`` at ``M = 1``, beside the heavy-ball mean-square bound
``(1 − β²)/(s²((1 + β)κ − 2β))`` and the deterministic heavy-ball bound ``(1 + β)/s² = 2(1 + β)/λ_max``.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

import linear_theory as lt

from ..claims.mc_steps import ghosh_step
from ..claims.stability import measure_threshold, threshold_problem

NAME = "mc_steps"
CAPTION = ("Largest stable step of the covariance factor with Monte Carlo gradients (rank 8, s_max = 1) against "
           "the number of samples M (left) and the heavy-ball momentum beta (right): measured by bisection, with "
           "the mean-square bounds, Ghosh et al.'s expected-descent step and the deterministic bounds.")


def make(ctx) -> Figure:
    rank = 8
    X = threshold_problem(ctx, rank)
    samples = (1, 16) if ctx.quick else (1, 2, 4, 8, 16, 32)
    momenta = (0.0, 0.9) if ctx.quick else (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    steps, seeds = (200, (0,)) if ctx.quick else (300, (0, 1))

    figure = Figure(figsize=(11.0, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    by_samples = [measure_threshold(ctx, X, rank, mc_samples=m, steps=steps, seeds=seeds) for m in samples]
    grid = np.geomspace(samples[0], samples[-1], 200)
    left.loglog(samples, [r.threshold for r in by_samples], "o", color="tab:blue", ms=7,
                label=f"measured (median of {len(seeds)} seed(s))")
    left.loglog(grid, 1.0 / (1.0 + (rank + 1.0) / grid), "-", color="tab:blue", lw=1.3,
                label="mean-square 1/(s²(1 + (r+1)/M))")
    left.loglog(samples, [ghosh_step(1.0, rank, m) for m in samples], "x", color="k", ms=9,
                label="Ghosh et al., z = a²M/(r+1)")
    left.axhline(1.0, color="0.5", ls=":", lw=1.0, label="exact gradients 1/s²")
    left.set_xlabel("MC samples M (log scale)")
    left.set_ylabel("largest stable factor step (log scale)")
    left.set_title(f"Against the samples (rank {rank}, no momentum)")
    left.legend(fontsize=8, loc="lower right")
    left.grid(True, which="both", alpha=0.3)

    by_momentum = [measure_threshold(ctx, X, rank, momentum=b, steps=steps, seeds=seeds) for b in momenta]
    beta = np.linspace(0.0, max(momenta), 200)
    right.semilogy(momenta, [r.threshold for r in by_momentum], "o", color="tab:red", ms=7,
                   label=f"measured (median of {len(seeds)} seed(s))")
    right.semilogy(beta, [lt.predicted_mc_threshold(1.0, rank, 1, b) for b in beta], "-", color="tab:red", lw=1.3,
                   label="mean-square (1−β²)/(s²((1+β)κ − 2β))")
    right.semilogy(beta, 1.0 + beta, ":", color="0.4", lw=1.3, label="deterministic heavy ball (1+β)/s²")
    right.set_xlabel("heavy-ball momentum β")
    right.set_ylabel("largest stable factor step (log scale)")
    right.set_title(f"Against the momentum (rank {rank}, M = 1)")
    right.legend(fontsize=8, loc="lower left")
    right.grid(True, which="both", alpha=0.3)
    return figure
