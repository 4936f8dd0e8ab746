"""Figures: predictive bands (regression) and decision map (two moons). Matplotlib, Agg-safe."""
from __future__ import annotations

import numpy as np

from .train import predict


def plot_experiment(trained, path, num_samples: int = 64):
    """Draw the predictive summary of a trained toy experiment to ``path`` (any Matplotlib format).

    Regression: training points, predictive mean and ±2 std bands over ``[−1.5, 1.5]``.
    Two moons: averaged ``p(class 1)`` on a grid with the training points.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, model, ds = trained.config, trained.model, trained.dataset
    rng = np.random.default_rng([cfg.seed, 2])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if ds.is_regression:
        xs = np.linspace(-1.5, 1.5, 400, dtype=np.float32)[:, None]
        pred = predict(model, xs, cfg.loss, num_samples, rng)
        m, s = pred.mean[:, 0], pred.std[:, 0]
        ax.fill_between(xs[:, 0], m - 2 * s, m + 2 * s, alpha=0.3, label="±2 std (weights)")
        ax.plot(xs[:, 0], m, label="predictive mean")
        ax.plot(xs[:, 0], 1 / (1 + np.exp(-10 * xs[:, 0])) - 0.5, "k--", alpha=0.4, label="latent")
        ax.scatter(ds.x_train[:, 0], ds.y_train[:, 0], s=6, color="k", label="training data")
        ax.set(xlabel="x", ylabel="y")
    else:
        g0, g1 = np.meshgrid(np.linspace(-2, 3, 120), np.linspace(-1.5, 2, 90))
        grid = np.stack([g0.ravel(), g1.ravel()], 1).astype(np.float32)
        pred = predict(model, grid, cfg.loss, num_samples, rng)
        im = ax.contourf(g0, g1, pred.mean[:, 1].reshape(g0.shape), levels=20, cmap="RdBu_r",
                         vmin=0, vmax=1)
        fig.colorbar(im, ax=ax, label="p(class 1)")
        ax.scatter(ds.x_train[:, 0], ds.x_train[:, 1], c=ds.y_train, s=8, cmap="RdBu_r",
                   edgecolors="k", linewidths=0.3)
    ax.set_title(f"{cfg.task}, {cfg.method}, {cfg.parametrization}, width {cfg.width}")
    ax.legend(loc="best", fontsize=7) if ds.is_regression else None
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
