"""variational_nets.plots: what each figure shows (panels, markers, labels, titles, limits) and
that it is written where asked in the format of its suffix."""
import os

import numpy as np
import pytest

from variational_nets.experiment import ExperimentConfig, fit_experiment
from variational_nets.plots import FIGURE_FORMATS, check_figure_path, plot_experiment, plot_transfer
from variational_nets.transfer import TransferConfig, TransferCurve, TransferResult


@pytest.fixture(scope="module")
def moons(blas_single_thread):
    return fit_experiment(ExperimentConfig(task="two-moons", width=8, epochs=2), quiet=True)


def test_two_moons_shows_the_classes_apart_and_the_uncertainty_beside_them(moons, tmp_path):
    fig = plot_experiment(moons)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    for ax in panels:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_1$", "$x_2$")
        handles, labels = ax.get_legend_handles_labels()
        assert labels == ["class 0", "class 1"]
        markers = {h.get_paths()[0].vertices.shape[0] for h in handles}
        assert len(markers) == 2  # a circle and a triangle, not only two colours
        # every training point is drawn, each class with its own marker
        assert sum(len(h.get_offsets()) for h in handles) == len(moons.dataset.y_train)
    assert panels[1].get_title() == "predictive uncertainty"
    colorbar_labels = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert colorbar_labels == ["p(class 1)", "std of p(class 1) over weight samples"]
    out = tmp_path / "moons.pdf"
    plot_experiment(moons, out)
    assert out.read_bytes()[:4] == b"%PDF" and os.listdir(tmp_path) == ["moons.pdf"]


def _transfer_result(seeds, train_loss):
    lrs = (0.05, 0.1, 0.2, 0.4)
    config = TransferConfig(task="synthetic", widths=(8, 16), lrs=lrs, seeds=seeds, epochs=1)
    curves = []
    for param in config.parametrizations:
        for k, width in enumerate(config.widths):
            values = tuple(v * (1 + 0.1 * k) for v in train_loss)
            diverged = tuple(int(not np.isfinite(v)) for v in values)
            best = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
            curves.append(TransferCurve(param, width, lrs, values, values, diverged, best, best))
    return TransferResult(config, tuple(curves), None)


def test_transfer_plot_keeps_every_finite_value_inside_and_marks_divergence():
    huge = 3e14  # a step just short of diverging: finite, fourteen orders above the best loss
    fig = plot_transfer(_transfer_result((0,), (1.2, 0.8, huge, np.inf)))
    assert "1 seed," in fig._suptitle.get_text() and "1 epoch" in fig._suptitle.get_text()
    assert "seeds" not in fig._suptitle.get_text() and "epoch(s)" not in fig._suptitle.get_text()
    for ax in fig.axes:
        low, high = ax.get_ylim()
        assert low <= 0.8 and high >= huge * 1.1  # nothing clipped at the top or bottom edge
        assert ax.get_yscale() == "log"
        if ax.get_xlabel():  # the bottom row (the panels share the step axis)
            labels = [t for t in ax.get_xticklabels() if t.get_text()]
            assert [t.get_text() for t in labels] == ["0.05", "0.1", "0.2", "0.4"]
            assert min(t.get_fontsize() for t in labels) >= 8
        crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
        assert len(crosses) == 2 and all(list(line.get_xdata()) == [0.4] for line in crosses)


def test_transfer_plot_says_seeds_in_the_plural_and_names_an_undefined_drift(tmp_path):
    fig = plot_transfer(_transfer_result((0, 1), (1.2, 0.8, 0.9, 1.5)))
    assert "2 seeds" in fig._suptitle.get_text()
    assert all("drift 0 grid points" in ax.get_title() for ax in fig.axes)
    out = tmp_path / "t.svg"
    plot_transfer(_transfer_result((0, 1), (1.2, 0.8, 0.9, 1.5)), out)
    assert b"<svg" in out.read_bytes()[:500]


def test_the_figure_formats_are_matplotlib_formats():
    from matplotlib.backend_bases import FigureCanvasBase

    assert set(FIGURE_FORMATS) <= set(FigureCanvasBase.get_supported_filetypes())


@pytest.mark.parametrize("name,match", [("x.xyz", "expected a figure file name ending in .png, .pdf, .svg"),
                                        ("missing/x.png", "does not exist")])
def test_check_figure_path_refuses_unknown_formats_and_missing_folders(tmp_path, name, match):
    with pytest.raises(ValueError, match=f"plot: .*{match}"):
        check_figure_path(tmp_path / name, name="plot")
    assert check_figure_path(tmp_path / "x.PNG", name="plot") == tmp_path / "x.PNG"


def _benchmark_result():
    from variational_nets.benchmark import BenchmarkConfig, BenchmarkResult, MethodRun
    from variational_nets.metrics import ClassificationMetrics

    config = BenchmarkConfig(task="synthetic", methods=("map", "ibvi", "laplace"), seeds=(0, 1),
                             corruptions=("rotate", "fog"))
    runs = []
    for k, method in enumerate(config.methods):
        for s in config.seeds:
            m = ClassificationMetrics(accuracy=0.9 + 0.01 * k + 0.002 * s, nll=0.3, brier=0.1, ece=0.05)
            c = ClassificationMetrics(accuracy=0.5 + 0.01 * k, nll=2.0, brier=0.6, ece=0.3)
            runs.append(MethodRun(method, s, m, (("rotate", c), ("fog", c)), 0.7 + 0.1 * k, 1.0 + k, 10.0, 0.0,
                                  1000.0 * (1 + k), 10.0, 0.0, False))
    return BenchmarkResult(config, tuple(runs))


def test_benchmark_figure_has_a_panel_per_metric_with_error_bars(tmp_path):
    from variational_nets.plots import BENCHMARK_PANELS, plot_benchmark

    result = _benchmark_result()
    fig = plot_benchmark(result)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [p[0] for p in BENCHMARK_PANELS]
    for ax, (_, metric, shifted) in zip(panels, BENCHMARK_PANELS):
        assert [t.get_text() for t in ax.get_yticklabels()] == list(result.config.methods)
        # one error-bar series per measurement: in distribution, and corrupted where it exists
        assert len(ax.containers) == (2 if shifted else 1)
        x = ax.containers[0].lines[0].get_xdata()
        assert np.allclose(x, [result.estimate(m, metric).mean for m in result.config.methods])
    legend = fig.axes[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["in distribution", "corrupted (mean of 2)"]
    out = tmp_path / "bench.svg"
    plot_benchmark(result, out)
    assert out.read_text().lstrip().startswith("<?xml") and os.listdir(tmp_path) == ["bench.svg"]


def test_corruption_grid_places_every_image(tmp_path):
    from variational_nets.plots import plot_corruptions

    image = np.linspace(0, 1, 16).reshape(4, 4)
    columns = {"clean": [image], "rotate": [image, image.T], "fog": [image, 1 - image]}
    fig = plot_corruptions(columns, tmp_path / "c.png", title="t", row_labels=["severity 1", "severity 5"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["clean", "rotate", "fog"]
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 and (tmp_path / "c.png").stat().st_size > 1000
    assert fig.axes[0].get_ylabel() == "severity 1"
