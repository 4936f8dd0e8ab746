"""Figures: predictive bands (regression), decision map and uncertainty (two moons), the μP
coordinate check, the step-size transfer, the image benchmark and the corruptions. Matplotlib,
Agg-safe; every file is written atomically (:func:`variational_nets.files.savefig`) in the
format its suffix names."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import check_output_file, savefig
from .train import predict

__all__ = ["check_figure_path", "plot_experiment", "plot_coordcheck", "plot_transfer", "plot_benchmark",
           "plot_corruptions", "BENCHMARK_PANELS"]

_NAMES = {"sp": "SP", "mup": "μP"}
#: Markers and colours of the two classes of the two-moons plot: told apart by shape as well
#: as by colour (readable in grey print and for colour-blind readers).
_CLASS_STYLE = ({"marker": "o", "color": "#1f5fa8", "label": "class 0"},
                {"marker": "^", "color": "#c23b22", "label": "class 1"})


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: Output formats of every supported Matplotlib (``FigureCanvasBase.get_supported_filetypes()``
#: lists them and more); a fixed list, so that checking a path does not import Matplotlib.
FIGURE_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp",
                  "pgf", "raw", "rgba")


def check_figure_path(path, *, name: str = "path") -> Path:
    """``path`` as a Path if a figure can be saved there in the format of its suffix.

    Parameters
    ----------
    path : str or os.PathLike
        The figure file to be written; its suffix (any case) names the format.
    name : str, optional
        The caller's argument name (e.g. ``plot``), used in the messages.

    Returns
    -------
    pathlib.Path
        ``path``, checked; nothing is created.

    Raises
    ------
    TypeError
        ``path`` is not a string or path.
    ValueError
        A suffix that is not one of :data:`FIGURE_FORMATS`, or a path
        :func:`variational_nets.files.check_output_file` refuses; the message names ``name``.
    """
    path = check_output_file(path, name=name)
    if path.suffix[1:].lower() not in FIGURE_FORMATS:
        raise ValueError(f"{name}: expected a figure file name ending in .png, .pdf, .svg or another "
                         f"Matplotlib format ({', '.join(FIGURE_FORMATS)}), got {str(path)!r}")
    return path


def _finish(fig, path):
    if path is not None:
        savefig(fig, path)
        _pyplot().close(fig)
    return fig


def _plot_regression(plt, cfg, model, ds, rng, num_samples):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = np.linspace(-1.5, 1.5, 400, dtype=np.float32)[:, None]
    pred = predict(model, xs, cfg.loss, num_samples, rng)
    m, s = pred.mean[:, 0], pred.std[:, 0]
    ax.fill_between(xs[:, 0], m - 2 * s, m + 2 * s, alpha=0.3, label="±2 std (weights)")
    ax.plot(xs[:, 0], m, label="predictive mean")
    ax.plot(xs[:, 0], 1 / (1 + np.exp(-10 * xs[:, 0])) - 0.5, "k--", alpha=0.4, label="latent")
    ax.scatter(ds.x_train[:, 0], ds.y_train[:, 0], s=6, color="k", label="training data")
    ax.set(xlabel="x", ylabel="y")
    ax.legend(loc="best", fontsize=7)
    ax.set_title(f"{cfg.task}, {cfg.method}, {cfg.parametrization}, width {cfg.width}")
    return fig


def _plot_two_moons(plt, cfg, model, ds, rng, num_samples):
    from matplotlib.ticker import MaxNLocator

    g0, g1 = np.meshgrid(np.linspace(-2, 3, 120), np.linspace(-1.5, 2, 90))
    grid = np.stack([g0.ravel(), g1.ravel()], 1).astype(np.float32)
    pred = predict(model, grid, cfg.loss, num_samples, rng)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True, sharey=True)
    panels = ((pred.mean[:, 1], "RdBu_r", (0.0, 1.0), "p(class 1)", "mean prediction"),
              (pred.std[:, 1], "viridis", (0.0, None), "std of p(class 1) over weight samples",
               "predictive uncertainty"))
    for ax, (values, cmap, (lo, hi), label, title) in zip(axes, panels):
        levels = MaxNLocator(20).tick_values(lo, hi if hi is not None else max(float(values.max()), 1e-6))
        im = ax.contourf(g0, g1, values.reshape(g0.shape), levels=levels, cmap=cmap)
        fig.colorbar(im, ax=ax, label=label)
        for k, style in enumerate(_CLASS_STYLE):
            points = ds.x_train[ds.y_train == k]
            ax.scatter(points[:, 0], points[:, 1], s=14, edgecolors="white", linewidths=0.5, **style)
        ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.suptitle(f"{cfg.task}, {cfg.method}, {cfg.parametrization}, width {cfg.width}: "
                 f"{num_samples} weight samples")
    return fig


def plot_experiment(trained, path=None, num_samples: int = 64):
    """Draw the predictive summary of a trained toy experiment to ``path`` (its suffix's format).

    Regression: training points, predictive mean and ±2 std bands over ``[−1.5, 1.5]``.
    Two moons: two panels over the same grid, the averaged ``p(class 1)`` and its standard
    deviation over ``num_samples`` weight samples, each with the training points (class 0 as
    circles, class 1 as triangles).

    Parameters
    ----------
    trained : variational_nets.experiment.Trained
    path : str or os.PathLike, optional
        Where to save the figure (atomically, in its suffix's format); then it is closed.
    num_samples : int
        Weight samples of the predictive (seeded from the config's seed).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        A task other than toy-regression and two-moons.
    """
    cfg, model, ds = trained.config, trained.model, trained.dataset
    if cfg.task not in ("toy-regression", "two-moons"):
        raise ValueError(f"invalid task: plots exist for toy-regression and two-moons, got {cfg.task!r}")
    plt = _pyplot()
    rng = np.random.default_rng([cfg.seed, 2])
    draw = _plot_regression if ds.is_regression else _plot_two_moons
    fig = draw(plt, cfg, model, ds, rng, num_samples)
    fig.tight_layout()
    return _finish(fig, path)


def _log_ticks(ax, values, fmt="{:g}"):
    """Ticks at the grid values only (log axes otherwise crowd the axis with minor labels);
    every second one labelled when there are more than eight."""
    from matplotlib.ticker import NullFormatter

    step = 2 if len(values) > 8 else 1
    labels = [fmt.format(v) if i % step == 0 else "" for i, v in enumerate(values)]
    ax.set_xticks(list(values), labels, rotation=30, ha="right", fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_coordcheck(result, path=None):
    """Coordinate-check figure in the style of microsoft/mup: activation size against width.

    One panel per (path, parametrization, step): rows are the mean and the sampled path, the
    SP panels (steps 0…k) sit left of the μP panels; each panel shows the seed-mean ``mean |h|``
    of every layer against width on log-log axes, with the fitted slope in the legend.

    Parameters
    ----------
    result : variational_nets.coordcheck.CoordCheckResult
        What :func:`~variational_nets.coordcheck.run_coordcheck` returned.
    path : str or os.PathLike, optional
        Where to save the figure (atomically, in its suffix's format); then it is closed.

    Returns
    -------
    matplotlib.figure.Figure
        One row per path (mean, sampled), one column per (parametrization, step).
    """
    from .coordcheck import PATHS, coordcheck_slopes

    plt = _pyplot()
    cfg = result.config
    slopes = {(s.parametrization, s.path, s.step, s.layer): s for s in coordcheck_slopes(result)}
    columns = [(p, t) for p in cfg.parametrizations for t in range(cfg.steps + 1)]
    # one y scale per row: growth under SP and flatness under μP are read off the same axis
    fig, axes = plt.subplots(len(PATHS), len(columns), figsize=(2.3 * len(columns), 2.4 * len(PATHS)),
                             sharex=True, sharey="row", squeeze=False)
    for row, which in enumerate(PATHS):
        for col, (param, step) in enumerate(columns):
            ax = axes[row, col]
            for layer in result.layers:
                s = slopes[param, which, step, layer]
                ax.loglog(cfg.widths, s.sizes, marker="o", markersize=3,
                          label=f"{layer} ({s.slope:+.2f})")
            ax.set_title(f"{_NAMES.get(param, param)} {which}, step {step}", fontsize=8)
            ax.tick_params(labelsize=7)
            _log_ticks(ax, cfg.widths)
            ax.legend(fontsize=5, loc="best")
            if row == len(PATHS) - 1:
                ax.set_xlabel("width", fontsize=8)
            if col == 0:
                ax.set_ylabel("mean |h|", fontsize=8)
    fig.suptitle(f"coordinate check: {_plural(len(cfg.seeds), 'seed')}, base step {cfg.lr} "
                 "(legend: log-log slope)", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def plot_transfer(result, path=None):
    """Step-size transfer figure: training loss and test NLL against the base step, SP | μP.

    Rows: training loss, test NLL; columns: parametrizations; one line per width (seed mean)
    with the best step of each width starred. The loss axis is logarithmic, so that every
    finite value is inside the panel (a nearly diverged step can be 10¹⁴ times the best one);
    grid points where a seed diverged are marked ``×`` along the top edge.

    Parameters
    ----------
    result : variational_nets.transfer.TransferResult
        The sweep of :func:`~variational_nets.transfer.run_transfer`, every width and step.
    path : str or os.PathLike, optional
        Where to save the figure (atomically, in its suffix's format); then it is closed.

    Returns
    -------
    matplotlib.figure.Figure
        Rows train loss and test NLL, one column per parametrization.
    """
    from matplotlib.transforms import blended_transform_factory

    plt = _pyplot()
    cfg = result.config
    metrics = ("train_loss", "test_nll")
    fig, axes = plt.subplots(len(metrics), len(cfg.parametrizations),
                             figsize=(4.6 * len(cfg.parametrizations), 3.4 * len(metrics)),
                             sharex=True, squeeze=False)
    lrs = np.asarray(cfg.lrs, float)
    for row, metric in enumerate(metrics):
        for col, param in enumerate(cfg.parametrizations):
            ax = axes[row, col]
            top_edge = blended_transform_factory(ax.transData, ax.transAxes)
            finite = []
            for width in cfg.widths:
                c = result.curve(param, width)
                values = np.asarray(c.train_loss if metric == "train_loss" else c.test_nll, float)
                ok = np.isfinite(values)
                finite.extend(values[ok])
                line, = ax.plot(lrs[ok], values[ok], marker="o", markersize=3, label=f"width {width}")
                best = c.best_lr(metric)
                if best is not None:
                    ax.plot([best], [values[cfg.lrs.index(best)]], marker="*", markersize=10,
                            color=line.get_color())
                diverged = np.asarray(c.num_diverged) > 0
                if diverged.any():
                    ax.plot(lrs[diverged], np.full(diverged.sum(), 0.97), "x", color=line.get_color(),
                            transform=top_edge, clip_on=False)
            ax.set_xscale("log")
            if finite and min(finite) > 0:
                ax.set_yscale("log")
            elif not finite:
                ax.text(0.5, 0.5, "every step diverged", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"{_NAMES.get(param, param)}: best-step drift "
                         f"{_drift_text(result.drift(param, metric))}", fontsize=9)
            ax.set_ylabel(metric.replace("_", " "), fontsize=9)
            _log_ticks(ax, cfg.lrs, "{:.3g}")
            if row == len(metrics) - 1:
                ax.set_xlabel("base step size", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(f"step-size transfer on {cfg.task}: {_plural(len(cfg.seeds), 'seed')}, "
                 f"{_plural(cfg.epochs, 'epoch')}; × = a seed diverged", fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def _drift_text(drift: float) -> str:
    if not np.isfinite(drift):
        return "undefined (a width diverged at every step)"
    return _plural(int(drift), "grid point")


#: The panels of :func:`plot_benchmark`: (title, metric in distribution, metric under corruption).
BENCHMARK_PANELS = (("accuracy", "accuracy", "corrupted_accuracy"), ("NLL", "nll", "corrupted_nll"),
                    ("ECE (15 bins)", "ece", "corrupted_ece"), ("Brier score", "brier", "corrupted_brier"),
                    ("AUROC of the entropy, test vs inverted", "auroc", None),
                    ("time per epoch / map's", "time_ratio", None),
                    ("peak training memory / map's", "memory_ratio", None))


def plot_benchmark(result, path=None):
    """The image benchmark as points with error bars, one panel per metric (the paper's layout).

    Each panel lists the methods top to bottom and shows the mean over seeds with ± one
    standard error as a horizontal bar: for accuracy, NLL, ECE and Brier score two points per
    method, in distribution (circles) and averaged over the corruptions (squares); then the
    AUROC against the out-of-distribution set and the time and memory relative to map
    (a dotted line at 1). The legend fills the eighth panel.

    Parameters
    ----------
    result : variational_nets.benchmark.BenchmarkResult
        Every run of the benchmark; its estimates give the points and bars.
    path : str or os.PathLike, optional
        Where to save the figure (atomically, in its suffix's format); then it is closed.

    Returns
    -------
    matplotlib.figure.Figure
        Two rows of four panels: the seven of :data:`BENCHMARK_PANELS` and the legend.
    """
    plt = _pyplot()
    cfg = result.config
    methods = cfg.methods
    rows = np.arange(len(methods))[::-1]
    fig, axes = plt.subplots(2, 4, figsize=(15, 1.2 + 0.34 * len(methods) * 2), squeeze=False)
    for ax, (title, metric, shifted) in zip(axes.ravel(), BENCHMARK_PANELS):
        series = [(metric, "o", "in distribution", 0.12)]
        if shifted is not None:
            series.append((shifted, "s", f"corrupted (mean of {len(cfg.corruptions)})", -0.12))
        for name, marker, label, offset in series:
            estimates = [result.estimate(m, name) for m in methods]
            ax.errorbar([e.mean for e in estimates], rows + (offset if shifted else 0.0),
                        xerr=[0.0 if not np.isfinite(e.se) else e.se for e in estimates], fmt=marker,
                        markersize=4, capsize=2, label=label)
        if metric in ("time_ratio", "memory_ratio"):
            ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1)
        ax.set_yticks(rows, methods, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    # the legend in the free eighth panel, where it covers no point
    axes[1, 3].axis("off")
    axes[1, 3].legend(*axes[0, 0].get_legend_handles_labels(), loc="center", fontsize=8,
                      title="mean ± 1 SE over seeds")
    fig.suptitle(f"{cfg.task}: mean ± SE over {_plural(len(cfg.seeds), 'seed')}, {cfg.recipe.epochs} epochs, "
                 f"corruptions at severity {cfg.severity:g}", fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def plot_corruptions(images, path=None, title=None, row_labels=None):
    """A grid of images: one column per corruption (and the clean and out-of-distribution image),
    one row per severity.

    Parameters
    ----------
    images : mapping
        ``{column name: [image (H, W) per row]}``; a column with one image fills only the first
        row (the clean image, the out-of-distribution image).
    path : str or os.PathLike, optional
        Where to save the figure (atomically, in its suffix's format); then it is closed.
    title : str, optional
    row_labels : sequence of str, optional
        One per row, written beside the first image of that row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    columns = list(images)
    n_rows = max(len(v) for v in images.values())
    fig, axes = plt.subplots(n_rows, len(columns), figsize=(0.95 * len(columns), 1.05 * n_rows + 0.5),
                             squeeze=False)
    for j, name in enumerate(columns):
        for i in range(n_rows):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(images[name]):
                ax.imshow(images[name][i], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            else:
                ax.axis("off")
            if i == 0:
                ax.set_title(name, fontsize=6.5)
    for i, label in enumerate(row_labels or ()):
        first = next(j for j, name in enumerate(columns) if len(images[name]) > i)
        axes[i, first].set_ylabel(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)
