"""(h) C12: the network's output layer lands on linear_theory's ``D⁻¹``-metric projection.

Left: the relative distance of the trained output layer (mean and factor) to the closed-form limit
:func:`linear_theory.ibvi_limit` with the network's own step multipliers ``D``, against the
optimizer step (mean solid, factor dashed), for the closed-form expected loss and for one
reparametrized sample per step; the dotted line is the heavy ball's predicted contraction ``ρ^t`` of
the exact run, the dash-dotted one the agreement tolerance. Right: the W₂ gap between that limit and the noiseless Bayesian posterior of
the output layer's prior under SP, μP and NTP, for the realized factor ``S₀`` and for the prior
``E[S₀S₀ᵀ]`` the parametrization specifies (only NTP's ``D`` is proportional to it).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

NAME = "bridge"
CAPTION = ("C12: a network frozen below a variational output layer, trained by the package's fit, reaches "
           "linear_theory's D^-1-metric limit to float64 rounding (left, distance against the step, with the "
           "predicted heavy-ball contraction); the limit's W2 gap to the noiseless posterior of its own prior "
           "under SP, muP and NTP (right, log scale), which vanishes only where D is proportional to the prior.")
CLAIMS = ("C12",)


def make(ctx) -> Figure:
    from proofs_check.claims import bridge

    runs = bridge.bridge_runs(ctx)
    sizes = bridge.c12_sizes(ctx)
    gaps = [bridge.posterior_gap(bridge.bridge_problem(ctx, p, sizes["n"], sizes["width"]))
            for p in bridge.PARAMETRIZATIONS]

    figure = Figure(figsize=(11.0, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": (1.5, 1.0)})
    colors = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")
    floor = 1e-17  # distances at exactly 0 are drawn at the floor of the log axis
    for color, (problem, run) in zip(colors, runs):
        mean, factor = bridge.distances(problem, run)
        left.semilogy(run.steps, np.maximum(mean, floor), "-", color=color, lw=1.4, label=f"mean, {run.label}")
        left.semilogy(run.steps, np.maximum(factor, floor), "--", color=color, lw=1.0, label=f"factor, {run.label}")
        if np.isfinite(run.predicted_rate):
            t = np.linspace(0, run.steps[-1], 200)
            left.semilogy(t, np.maximum(run.predicted_rate ** t, floor), ":", color="k", lw=1.0,
                          label=f"predicted contraction {run.predicted_rate:.3f}^t")
    left.axhline(bridge.AGREEMENT_RTOL, color="0.4", ls="-.", lw=0.9, label="agreement tolerance")
    left.set_ylim(floor, 3.0)
    left.set_xlabel("optimizer step t")
    left.set_ylabel("relative distance to ibvi_limit(..., step_multipliers=D)")
    left.set_title("trained output layer against the closed-form limit")
    left.legend(fontsize=7, loc="upper right")
    left.grid(True, which="major", alpha=0.3)

    x = np.arange(len(gaps))
    realized = [g.realized_gap for g in gaps]
    specified = [max(g.specified_gap, floor) for g in gaps]
    right.bar(x - 0.2, realized, 0.4, color="tab:gray", label="realized prior S0 S0^T")
    right.bar(x + 0.2, specified, 0.4, color="tab:blue", label="specified prior E[S0 S0^T]")
    right.set_yscale("log")
    right.set_xticks(x, [f"{g.parametrization}\n(D ∝ E S0S0ᵀ: {'yes' if g.proportional else 'no'})"
                         for g in gaps], fontsize=8)
    right.set_ylabel("W2(limit, posterior) / W2(prior, limit)")
    right.set_title("gap to the noiseless posterior")
    right.legend(fontsize=8, loc="lower left")
    right.grid(True, axis="y", which="major", alpha=0.3)
    return figure
