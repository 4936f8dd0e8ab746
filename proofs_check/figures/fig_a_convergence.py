"""(a) Convergence of GD, SGD, heavy-ball momentum and MC gradients to the IBVI limit ``q∞``.

Full-batch GD contracts every row-space direction of the mean and of the factor by
``1 − 2ηs_i²`` per step, so ``W₂(q_t, q∞) ≤ ‖(μ_t − μ∞, L_t − L∞)‖ ≤ ρ^t W₂(p, q∞)`` with
``ρ = max_i |1 − 2ηs_i²|`` (the identity coupling bounds W₂; ``W₂(p, q∞)`` is Theorem 1's value).
That bound is the dashed line.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from linear_theory import Gaussian, ibvi_limit, random_regression, simulate, w2

NAME = "convergence"
CAPTION = ("W2 distance from the iterate q_t to the IBVI limit q_inf for GD, mini-batch SGD, heavy-ball "
           "momentum and Monte Carlo gradients on an overparametrized regression, with the GD rate "
           "max_i |1 - 2 eta s_i^2|^t W2(p, q_inf) predicted by Theorem 1 (dashed).")
CLAIMS = ("C1-gd", "C1-sgd", "C1-momentum", "C1-mc")

#: Lower end of the plot: GD settles at the float64 rounding level of W₂ (about 1e-14 here),
#: and the predicted line is clipped here instead of running off the axis.
FLOOR = 1e-16


def make(ctx) -> Figure:
    n, d, rank, steps = (10, 30, 4, 200) if ctx.quick else (20, 60, 6, 400)
    problem = random_regression(n, d, condition_number=3.0, seed=ctx.rng(1))
    rng = ctx.rng(2)
    prior = Gaussian(rng.standard_normal(d) / np.sqrt(d), rng.standard_normal((d, rank)) / np.sqrt(rank))
    s = problem.singular_values
    lr = 0.5 / s.max() ** 2
    mc_samples = 4
    runs = {
        "GD": dict(optimizer="gd", lr=lr),
        f"SGD (batch {n // 2}, step η/2)": dict(optimizer="sgd", batch_size=n // 2, lr=lr / 2),
        "momentum 0.9": dict(optimizer="momentum", momentum=0.9, lr=lr),
        # The factor's MC step is kept below the mean-square bound 1/(s²(1 + (r+1)/M)).
        f"MC, M = {mc_samples}": dict(optimizer="gd", mc_samples=mc_samples, lr=lr,
                                      lr_factor=lr / (1.0 + (rank + 1.0) / mc_samples)),
    }
    limit = ibvi_limit(problem.X, problem.y, prior)
    start_distance = w2(prior, limit)
    rho = float(np.max(np.abs(1.0 - 2.0 * lr * s ** 2)))

    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = figure.subplots()
    for k, (label, options) in enumerate(runs.items()):
        ctx.progress(f"convergence: {label}")
        result = simulate(problem.X, problem.y, prior, family="lowrank", steps=steps, record_every=1,
                          seed=ctx.rng(10 + k), **options)
        ax.semilogy(result.trace.steps, np.maximum(result.trace.w2_to_limit, FLOOR), label=label, lw=1.6)
    t = np.arange(steps + 1)
    ax.semilogy(t, np.maximum(start_distance * rho ** t, FLOOR), "k--", lw=1.2,
                label=f"GD prediction ρ^t W₂(p, q∞), ρ = {rho:.3f}")
    ax.set_ylim(FLOOR, 3 * start_distance)
    ax.set_xlabel("step t (iterations)")
    ax.set_ylabel("W₂(q_t, q∞) (log scale)")
    ax.set_title(f"Convergence to the IBVI limit (n = {n}, d = {d}, rank-{rank} factor, η = 0.5/s_max²)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)
    return figure
