"""(c) The penalized W₂-GVI path against the GD early-stopping path (claims C5, C6).

Both paths start at the prior ``p`` (no fit, ``W₂ = 0``) and end at the IBVI limit ``q∞`` (zero
expected loss on noiseless data, ``W₂(p, q∞)`` from Theorem 1): ``q_λ`` from :func:`w2_gvi` as
``λ`` falls from far above ``s_max²`` to far below ``s_min²``, and the exact GD iterate
:func:`gd_iterate` at log-spaced step counts. Thin grey segments join the pairs
``λ = 1/(2τ)``, ``τ = ηt`` that claim C6 compares.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from linear_theory import (Gaussian, expected_loss, gd_iterate, ibvi_limit, random_regression, row_space_solver, w2,
                           w2_gvi)

NAME = "penalized_path"
CAPTION = ("W2 distance to the prior against the expected loss along the penalized W2-GVI path q_lambda "
           "(lambda on a log grid) and along the GD early-stopping path q_t (log-spaced steps): both "
           "leave the prior and end at the IBVI limit q_inf; grey segments join the pairs lambda = 1/(2 eta t), whose "
           "W2 distance relative to W2(p, q_inf) is plotted against the time eta t on the right.")
CLAIMS = ("C5", "C6")


def make(ctx) -> Figure:
    n, d, points = (12, 30, 40) if ctx.quick else (20, 50, 80)
    problem = random_regression(n, d, condition_number=10.0, seed=ctx.rng(1))
    X, y = problem.X, problem.y
    rng = ctx.rng(2)
    prior = Gaussian(rng.standard_normal(d) / np.sqrt(d), rng.standard_normal((d, d)) / np.sqrt(d))
    s = problem.singular_values
    solver = row_space_solver(X)  # one factorization shared by every point of both paths
    limit = ibvi_limit(X, y, prior, solver=solver)
    lr = 0.5 / s.max() ** 2

    # From far above s_max² (q_λ ≈ p) to far below s_min² (q_λ ≈ q∞).
    lams = np.geomspace(1e3 * s.max() ** 2, 1e-4 * s.min() ** 2, points)
    ctx.progress(f"penalized_path: {points} points on each path")
    penalized = [w2_gvi(X, y, prior, lam, solver=solver) for lam in lams]
    # Long enough for the slowest mode: (1 − 2ηs_min²)^T ≈ 1e-8.
    last = int(np.ceil(np.log(1e-8) / np.log1p(-2 * lr * s.min() ** 2)))
    steps = np.unique(np.round(np.geomspace(1, last, points)).astype(int))
    early = [gd_iterate(X, y, prior, lr, int(t), solver=solver) for t in steps]

    def coordinates(qs):
        return (np.array([expected_loss(X, y, q) for q in qs]), np.array([w2(q, prior) for q in qs]))

    pen_loss, pen_w2 = coordinates(penalized)
    gd_loss, gd_w2 = coordinates(early)
    prior_loss = expected_loss(X, y, prior)
    # C6's comparison: q_t against q_λ with λ = 1/(2τ), τ = ηt, relative to W₂(p, q∞).
    partners = [w2_gvi(X, y, prior, 1.0 / (2.0 * lr * t), solver=solver) for t in steps]
    limit_distance = w2(limit, prior)
    paired = np.array([w2(q_t, q_lam) for q_t, q_lam in zip(early, partners)]) / limit_distance

    figure = Figure(figsize=(11.0, 4.6), layout="constrained")
    ax, ax_gap = figure.subplots(1, 2, width_ratios=(1.35, 1.0))
    segments = np.linspace(0, len(steps) - 1, 7).astype(int)[1:-1]
    partner_loss, partner_w2 = coordinates([partners[k] for k in segments])
    for k, loss, distance in zip(segments, partner_loss, partner_w2):
        ax.plot([gd_loss[k], loss], [gd_w2[k], distance], color="0.55", lw=0.9, zorder=1)
    ax.plot(pen_loss, pen_w2, "-o", ms=3, color="tab:purple", label="penalized W₂-GVI path q_λ", zorder=2)
    ax.plot(np.r_[prior_loss, gd_loss], np.r_[0.0, gd_w2], "-s", ms=3, color="tab:orange",
            label="GD early-stopping path q_t", zorder=2)
    ax.plot([], [], color="0.55", lw=0.9, label="pairs λ = 1/(2ηt)")
    ax.plot(prior_loss, 0.0, "k^", ms=9, label="prior p (t = 0, λ → ∞)", zorder=3)
    ax.axhline(limit_distance, color="k", ls="--", lw=1.0,
               label="W₂(p, q∞): IBVI limit (loss 0; t → ∞, λ → 0)")
    ax.set_xscale("log")
    # Below 1e-6 of the prior's loss both paths sit on the W₂(p, q∞) line.
    ax.set_xlim(1e-6 * prior_loss, 3 * prior_loss)
    ax.set_xlabel("expected loss E_q ‖y − Xw‖² (log scale)")
    ax.set_ylabel("W₂(q, p), distance to the prior")
    ax.set_title("W₂ to the prior against the expected loss", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)

    ax_gap.semilogx(lr * steps, paired, "-o", ms=3, color="tab:brown",
                    label="W₂(q_t, q_λ(τ)) / W₂(p, q∞), λ = 1/(2τ)")
    ax_gap.set_xlabel("gradient-flow time τ = ηt (log scale)")
    ax_gap.set_ylabel("relative W₂ discrepancy (fraction of W₂(p, q∞))")
    ax_gap.set_title("Distance between paired points of the two paths", fontsize=10)
    ax_gap.set_ylim(bottom=0.0)
    ax_gap.legend(fontsize=8, loc="upper right")
    ax_gap.grid(True, which="major", alpha=0.3)
    figure.suptitle(f"Penalized W₂-GVI path vs GD early stopping (n = {n}, d = {d}, κ(X) = 10, η = 0.5/s_max²)")
    return figure
