"""Figures: predictive bands (regression), decision map (two moons), the μP coordinate check and
the step-size transfer. Matplotlib, Agg-safe."""
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


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_ticks(ax, values, fmt="{:g}"):
    """Ticks at the grid values only: log axes otherwise crowd the axis with minor labels."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(values), [fmt.format(v) for v in values], rotation=45, fontsize=6)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _finish(fig, path):
    if path is not None:
        fig.savefig(path)
        _pyplot().close(fig)
    return fig


def plot_coordcheck(result, path=None):
    """Coordinate-check figure in the style of microsoft/mup: activation size against width.

    One panel per (path, parametrization, step): rows are the mean and the sampled path, the
    SP panels (steps 0…k) sit left of the μP panels; each panel shows the seed-mean ``mean |h|``
    of every layer against width on log-log axes, with the fitted slope in the legend.
    Returns the Matplotlib figure (saved to ``path`` and closed when a path is given).
    """
    from .coordcheck import PATHS, coordcheck_slopes

    plt = _pyplot()
    cfg = result.config
    slopes = {(s.parametrization, s.path, s.step, s.layer): s for s in coordcheck_slopes(result)}
    columns = [(p, t) for p in cfg.parametrizations for t in range(cfg.steps + 1)]
    # one y scale per row: growth under SP and flatness under μP are read off the same axis
    fig, axes = plt.subplots(len(PATHS), len(columns), figsize=(2.3 * len(columns), 2.4 * len(PATHS)),
                             sharex=True, sharey="row", squeeze=False)
    names = {"sp": "SP", "mup": "μP"}
    for row, which in enumerate(PATHS):
        for col, (param, step) in enumerate(columns):
            ax = axes[row, col]
            for layer in result.layers:
                s = slopes[param, which, step, layer]
                ax.loglog(cfg.widths, s.sizes, marker="o", markersize=3,
                          label=f"{layer} ({s.slope:+.2f})")
            ax.set_title(f"{names.get(param, param)} {which}, step {step}", fontsize=8)
            ax.tick_params(labelsize=6)
            _log_ticks(ax, cfg.widths)
            ax.legend(fontsize=5, loc="best")
            if row == len(PATHS) - 1:
                ax.set_xlabel("width", fontsize=7)
            if col == 0:
                ax.set_ylabel("mean |h|", fontsize=7)
    fig.suptitle(f"coordinate check: {len(cfg.seeds)} seeds, base step {cfg.lr} "
                 "(legend: log-log slope)", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def plot_transfer(result, path=None):
    """Step-size transfer figure: training loss and test NLL against the base step, SP | μP.

    Rows: training loss, test NLL; columns: parametrizations; one line per width (seed mean,
    diverged points left out), the best step of each width marked. Returns the figure (saved to
    ``path`` and closed when a path is given).
    """
    plt = _pyplot()
    cfg = result.config
    metrics = ("train_loss", "test_nll")
    fig, axes = plt.subplots(len(metrics), len(cfg.parametrizations),
                             figsize=(4.2 * len(cfg.parametrizations), 3.2 * len(metrics)),
                             sharex=True, squeeze=False)
    names = {"sp": "SP", "mup": "μP"}
    for row, metric in enumerate(metrics):
        for col, param in enumerate(cfg.parametrizations):
            ax = axes[row, col]
            finite_values = []
            for width in cfg.widths:
                c = result.curve(param, width)
                values = np.asarray(c.train_loss if metric == "train_loss" else c.test_nll, float)
                ok = np.isfinite(values)
                line, = ax.semilogx(np.asarray(cfg.lrs)[ok], values[ok], marker="o", markersize=3,
                                    label=f"width {width}")
                best = c.best_lr(metric)
                if best is not None:
                    ax.plot([best], [values[cfg.lrs.index(best)]], marker="*", markersize=10,
                            color=line.get_color())
                finite_values.extend(values[ok])
            if finite_values:  # diverging steps can reach 1e14: clip the view to the curves' floor
                lo = min(finite_values)
                ax.set_ylim(lo - 0.05 * abs(lo), min(max(finite_values), 2.0 * lo + 1.0))
            ax.set_title(f"{names.get(param, param)}: drift {result.drift(param, metric):g} grid points",
                         fontsize=9)
            ax.set_ylabel(metric.replace("_", " "), fontsize=8)
            _log_ticks(ax, cfg.lrs, "{:.3g}")
            if row == len(metrics) - 1:
                ax.set_xlabel("base step size", fontsize=8)
            ax.legend(fontsize=6)
    fig.suptitle(f"step-size transfer on {cfg.task}: {len(cfg.seeds)} seeds, {cfg.epochs} epoch(s)",
                 fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)
