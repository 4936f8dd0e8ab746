"""(h) C13: lazy training against feature learning.

The relative gap between the trained network's predictive mean and std on test inputs and two
references computed at initialization — (a) C12's closed-form limit on the initial features,
(b) the network linearized at initialization (kernel regression with its empirical NTK) — against
the width, on log-log axes, mean ± seed standard error, one panel per parametrization (NTP, μP);
the grey line has slope −1/2, the lazy-training prediction for NTP.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

NAME = "lazy"
CAPTION = ("C13: relative gap of the trained network's predictive mean and std to C12's limit on the initial "
           "features and to its NTK linearization against the width (log-log, mean and seed standard error), "
           "under NTP and muP, with a slope -1/2 reference.")
CLAIMS = ("C13",)


def make(ctx) -> Figure:
    from proofs_check.claims import bridge

    result = bridge.run_lazy(ctx)
    widths = np.asarray(result.config.widths, dtype=float)
    slopes = {(s.parametrization, s.gap): s for s in result.slopes()}
    figure = Figure(figsize=(11.0, 4.4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    styles = (("tab:blue", "o-"), ("tab:red", "s-"), ("tab:green", "^--"))
    for ax, param in zip(axes, bridge.LAZY_PARAMETRIZATIONS):
        for k, (name, (color, style)) in enumerate(zip(bridge.GAPS, styles)):
            g = result.gaps(param, k)
            se = g.std(axis=0, ddof=1) / math.sqrt(g.shape[0]) if g.shape[0] > 1 else None
            s = slopes[param, name]
            ax.errorbar(widths, g.mean(axis=0), yerr=se, fmt=style, color=color, ms=5, lw=1.3, capsize=3,
                        label=f"{name}: slope {s.slope:+.2f} ± {s.seed_se:.2f}")
        anchor = result.gaps(param, 1).mean(axis=0)[0]
        ax.loglog(widths, anchor * (widths / widths[0]) ** -0.5, color="0.5", lw=1.0, ls=":",
                  label="reference slope -1/2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width W (log scale)")
        ax.set_title(f"{param}: trained network against its references")
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative gap on the test inputs (log scale)")
    return figure
