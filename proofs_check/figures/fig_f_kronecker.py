"""(f) Kronecker-factored covariances ``W = M + A Z Bᵀ`` (claim C14): how much null-space variance the
limit keeps, against the split ``(A₀/s, sB₀)`` of one prior covariance between the factors.

Left: the flow's prediction ``c² = max(0, 1 − (s*/s)⁴)`` (``s*`` the phase boundary), GD and
Monte Carlo runs at one step each, and the first-order corrections ``c² − e₁η`` for those steps.
Right: the deviation ``c² − c²(η)`` against the step ``η`` at one split beside ``e₁η``, for GD,
heavy ball and Monte Carlo gradients (first order: slope 1 on log-log axes).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import linear_theory as lt

from ..claims.kronecker import kronecker_setup, run_length

NAME = "kronecker"
CAPTION = ("Kronecker factors W = M + A Z B^T: the fraction c^2 of the prior's null-space variance that IBVI "
           "keeps, against the split s of one prior covariance between A and B (left: flow prediction, GD and "
           "MC runs with their first-order corrections, the phase boundary s*), and the deviation from the flow "
           "against the step (right).")


def _kept(setup, prior, limit, lr, flow_step=None, tail=12.0, **kw):
    # c² settles with the row part of A; exp(−12) of its slowest mode is far below the plot's resolution.
    steps = run_length(setup, prior, limit, lr if flow_step is None else flow_step, tail)
    return lt.simulate_kronecker(setup.X, setup.Y, prior, lr=lr, steps=steps, record_every=steps,
                                 **kw).trace.kept_variance[-1]


def make(ctx) -> Figure:
    setup = kronecker_setup(ctx)
    X, Y = setup.X, setup.Y
    ratios = (0.7, 1.15, 1.6, 2.5) if ctx.quick else (0.6, 0.75, 0.9, 1.05, 1.15, 1.3, 1.6, 2.0, 2.5, 3.5)
    mc, fraction = 4, 0.1

    figure = Figure(figsize=(11.0, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    grid = np.geomspace(min(ratios) * 0.9, max(ratios) * 1.1, 300)
    left.semilogx(grid, np.maximum(0.0, 1.0 - grid ** -4.0), "k-", lw=1.4, label="flow: max(0, 1 − (s*/s)⁴)")
    gd, gd_first, mc_kept, mc_first = [], [], [], []
    for ratio in ratios:
        ctx.progress(f"kronecker figure: split s/s* = {ratio}")
        prior = setup.split(ratio)
        limit = lt.kronecker_limit(X, Y, prior, basis=setup.basis)
        lr = fraction * lt.kronecker_step_bound(X, prior, basis=setup.basis)
        gd.append(_kept(setup, prior, limit, lr))
        gd_first.append(limit.kept_variance - limit.gd_slope * lr)
        mc_kept.append(_kept(setup, prior, limit, lr, tail=8.0, mc_samples=mc, seed=ctx.seed))
        e1_mc = lt.kronecker_first_order(X, Y, prior, mc_samples=mc, basis=setup.basis)
        mc_first.append(limit.kept_variance - e1_mc * lr)
    left.semilogx(ratios, gd, "o", color="tab:blue", ms=7, label=f"GD, step {fraction} of the bound")
    left.semilogx(ratios, np.maximum(gd_first, 0.0), "x", color="tab:blue", ms=9, mew=1.5,
                  label="GD first order c² − e₁η")
    left.semilogx(ratios, mc_kept, "s", color="tab:red", ms=6, mfc="none", label=f"MC gradients (M = {mc}), same step")
    left.semilogx(ratios, np.maximum(mc_first, 0.0), "+", color="tab:red", ms=10, mew=1.5,
                  label="MC first order c² − e₁(MC)η")
    left.axvline(1.0, color="0.5", ls="--", lw=1.0, label="phase boundary s = s*")
    ticks = [t for t in (0.6, 0.8, 1.0, 1.5, 2.0, 3.0) if grid[0] <= t <= grid[-1]]
    left.set_xticks(ticks, [f"{t:g}" for t in ticks])
    left.xaxis.set_minor_formatter(NullFormatter())
    left.set_xlabel("split s / s* of the prior (A0/s, s B0), log scale")
    left.set_ylabel("kept null-space variance c² = ‖B∞‖²/‖B₀‖²")
    left.set_title("Null-space variance kept by the limit")
    left.legend(fontsize=7.5, loc="upper left")
    left.grid(True, which="both", alpha=0.3)

    ratio = 1.6
    prior = setup.split(ratio)
    limit = lt.kronecker_limit(X, Y, prior, basis=setup.basis)
    bound = lt.kronecker_step_bound(X, prior, basis=setup.basis)
    fractions = np.array((0.4, 0.2) if ctx.quick else (0.4, 0.2, 0.1, 0.05))
    lrs = fractions * bound
    m = 0.5
    series = (
        ("GD", "tab:blue", "o", limit.gd_slope,
         [_kept(setup, prior, limit, lr) for lr in lrs]),
        (f"heavy ball m = {m}", "tab:green", "^", lt.kronecker_first_order(X, Y, prior, momentum=m, basis=setup.basis),
         [_kept(setup, prior, limit, lr, flow_step=lr / (1 - m), optimizer="momentum", momentum=m) for lr in lrs]),
        (f"MC, M = {mc}", "tab:red", "s", lt.kronecker_first_order(X, Y, prior, mc_samples=mc, basis=setup.basis),
         [_kept(setup, prior, limit, lr, tail=8.0, mc_samples=mc, seed=ctx.seed) for lr in lrs]),
    )
    for label, color, marker, slope, kept in series:
        ctx.progress(f"kronecker figure: {label}")
        right.loglog(lrs, limit.kept_variance - np.asarray(kept), marker, color=color, ms=7, label=f"{label}: measured")
        right.loglog(lrs, slope * lrs, "-", color=color, lw=1.1, label=f"{label}: e₁η = {slope:.3g} η")
    right.set_xlabel("step η (log scale)")
    right.set_ylabel("c² − c²(η) (log scale)")
    right.set_title(f"Deviation from the flow at s/s* = {ratio} (c² = {limit.kept_variance:.3f})")
    right.legend(fontsize=7.5, loc="upper left")
    right.grid(True, which="both", alpha=0.3)
    return figure
