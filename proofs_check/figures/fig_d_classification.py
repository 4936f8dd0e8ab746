"""Figure (d): IBVI on 2-D separable data with the exponential loss (claim C7, Theorem 2).

Left: decision regions of the predictive mean ``sign(xᵀμ_T)``, the data, the hard-margin SVM
boundary and margins, the directions of ``μ_T`` and ``ŵ``, and contours of the predictive standard
deviation ``‖L_Tᵀx‖``. Right: the signed angle from ``ŵ`` to ``μ_t`` and ``‖XL_t‖_F/‖XL_0‖_F`` against the step count.
"""
from __future__ import annotations

import numpy as np

from linear_theory import Gaussian, separable_classification, simulate_classification
from linear_theory.classification import classification_step_bound, default_record_steps

NAME = "d_classification"
CAPTION = ("Exponential-loss IBVI on separable 2-D data: the predictive mean's decision boundary turns "
           "towards the hard-margin SVM while the predictive spread on the data collapses, both slowly "
           "(logarithmically and as a power of the step count).")
CLAIMS = ("C7", "C8")


def make(ctx):
    """Render the figure; ``ctx`` supplies ``seed`` (via ``rng``) and ``quick`` (fewer steps)."""
    import matplotlib.pyplot as plt

    problem = separable_classification(24, 2, margin=0.3, seed=ctx.rng(90))
    X, y = problem.X, problem.y
    prior = Gaussian(np.zeros(2), np.eye(2))
    steps = 5_000 if ctx.quick else 50_000
    lr = 0.5 * classification_step_bound(X, y, prior, "exponential")
    # GD has no memory, so running segment by segment between grid steps gives the same iterates
    # and keeps the mean at every grid step (for the signed angle, which the trace does not hold).
    record = default_record_steps(steps, 40)
    means, spreads, q = [prior.mean], [float(np.linalg.norm(X @ prior.factor))], prior
    for start, stop in zip(record[:-1], record[1:]):
        segment = simulate_classification(X, y, q, loss="exponential", lr=lr, steps=int(stop - start),
                                          record_steps=np.array([int(stop - start)]), check_stability=False)
        q = segment.final
        means.append(q.mean)
        spreads.append(float(segment.trace.data_spread[-1]))
    svm = segment.svm
    means, spreads = np.asarray(means), np.asarray(spreads)

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.0, 4.8), constrained_layout=True)
    extent = 1.15 * float(np.max(np.abs(X)))
    grid = np.linspace(-extent, extent, 241)
    g1, g2 = np.meshgrid(grid, grid)
    points = np.column_stack([g1.ravel(), g2.ravel()])
    predictive = q.predictive(points)
    ax.contourf(g1, g2, np.sign(predictive.mean).reshape(g1.shape), levels=[-2, 0, 2],
                colors=["#f6d5d5", "#d5e3f6"], alpha=0.9)
    std_lines = ax.contour(g1, g2, predictive.std.reshape(g1.shape), levels=6, colors="0.35", linewidths=0.8)
    ax.clabel(std_lines, fontsize=7, fmt="%.2g")
    for label, colour, marker in ((1.0, "tab:blue", "o"), (-1.0, "tab:red", "s")):
        keep = y == label
        ax.scatter(X[keep, 0], X[keep, 1], c=colour, marker=marker, edgecolors="k", linewidths=0.5, zorder=3,
                   label=f"class {int(label):+d}")
    ax.scatter(X[svm.support, 0], X[svm.support, 1], s=140, facecolors="none", edgecolors="k", linewidths=1.2,
               zorder=4, label="support vectors")
    w = svm.w
    normal = np.array([-w[1], w[0]]) / np.linalg.norm(w)
    line = np.linspace(-2 * extent, 2 * extent, 2)
    for offset, style, text in ((0.0, "-", "SVM boundary"), (1.0, ":", "SVM margins"), (-1.0, ":", None)):
        base = offset * w / (w @ w)
        ax.plot(base[0] + line * normal[0], base[1] + line * normal[1], "k" + style, linewidth=1.0, label=text)
    arrow = 0.8 * extent
    for vec, colour, text in ((svm.direction, "k", "SVM direction w"),
                              (q.mean / np.linalg.norm(q.mean), "tab:green", "mean direction mu_T")):
        ax.annotate("", xy=arrow * vec, xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", color=colour, linewidth=2.0))
        ax.plot([], [], color=colour, linewidth=2.0, label=text)
    ax.plot([], [], color="0.35", linewidth=0.8, label="predictive std ||L_T^T x||")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("input x_1")
    ax.set_ylabel("input x_2")
    ax.set_title(f"decision regions of the predictive mean after {steps} steps")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.9)

    keep = record > 0
    w_hat = svm.direction
    signed = np.arctan2(means[keep] @ np.array([-w_hat[1], w_hat[0]]), means[keep] @ w_hat)
    angle = np.degrees(signed)  # the sign shows the overshoot that 1 − cos would hide in a dip
    bx.semilogx(record[keep], angle, "o-", color="tab:green", markersize=3, label="angle(mu_t, SVM w), degrees")
    bx.axhline(0.0, color="k", linewidth=0.8)
    bx.set_xlabel("GD step t (log scale)")
    bx.set_ylabel("signed angle between mean and SVM direction (degrees)")
    cx = bx.twinx()
    cx.loglog(record[keep], spreads[keep] / spreads[0], "s-", color="tab:purple", markersize=3,
              label="||X L_t||_F / ||X L_0||_F")
    cx.set_ylabel("relative predictive spread on the data (log scale)")
    bx.set_title("convergence against the step count")
    bx.grid(True, which="both", alpha=0.3)
    lines = bx.get_legend_handles_labels()
    more = cx.get_legend_handles_labels()
    bx.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper right")
    fig.suptitle("IBVI classification (exponential loss): implicit bias towards the max-margin direction")
    return fig
