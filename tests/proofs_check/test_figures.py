"""Figures: discovery of ``fig_*.py`` modules, PNG and PDF files written and non-empty (quick
sizes), the parts every figure must have, and the failure paths of the framework."""
import os
import types

import pytest
from matplotlib.figure import Figure

from proofs_check import cli
from proofs_check.figures import FigureSpec, available_figures, make_figures, select_figures
from proofs_check.figures import _spec_from_module
from proofs_check.registry import Context

FIGURES = [spec.name for spec in available_figures()]
QUICK = Context(seed=0, quick=True)


def _spec(name):
    return next(s for s in available_figures() if s.name == name)


def _skip_if_missing(spec):
    missing = spec.missing_requirements()
    if missing:
        pytest.skip(f"figure {spec.name} needs {', '.join(missing)}, not on this branch yet")


def test_the_issue_figures_are_discovered():
    assert {"convergence", "regression_1d", "penalized_path", "mc_threshold"} <= set(FIGURES)
    assert FIGURES == sorted(FIGURES, key=lambda n: _spec(n).module)  # (a), (b), ... order


@pytest.mark.parametrize("name", FIGURES)
def test_figure_files_are_written_and_non_empty(name, tmp_path):
    _skip_if_missing(_spec(name))
    (written,) = make_figures(tmp_path, QUICK, only=[name])
    assert written.ok, written.error
    assert written.png == os.path.join(tmp_path, f"{name}.png")
    with open(written.png, "rb") as fh:
        png = fh.read()
    with open(written.pdf, "rb") as fh:
        pdf = fh.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000  # a drawn plot, not a blank canvas
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000


@pytest.mark.parametrize("name", FIGURES)
def test_figure_has_title_labelled_axes_legend_and_caption(name):
    spec = _spec(name)
    assert spec.caption.endswith(".") and len(spec.caption) < 500  # one sentence
    _skip_if_missing(spec)
    figure = spec.make(QUICK)
    assert isinstance(figure, Figure)
    plotted = [ax for ax in figure.axes if ax.has_data()]
    assert plotted
    titled = (figure._suptitle is not None and figure._suptitle.get_text()) or all(ax.get_title() for ax in plotted)
    assert titled
    labelled = [ax for ax in plotted if ax.get_xlabel() or ax.get_ylabel()]
    # Shared axes label only the outer row/column; every figure labels both directions somewhere.
    assert any(ax.get_xlabel() for ax in labelled) and any(ax.get_ylabel() for ax in labelled)
    assert any(ax.get_legend() is not None for ax in plotted)


def test_predicted_rate_line_of_the_convergence_figure_matches_gd():
    """The dashed prediction bounds the GD curve and has GD's slope at the end (the slowest mode)."""
    import numpy as np

    figure = _spec("convergence").make(QUICK)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    gd = lines["GD"].get_ydata()
    predicted = next(line for label, line in lines.items() if label.startswith("GD prediction")).get_ydata()
    above_floor = predicted > 1e-12
    # Identity coupling: W₂(q_t, q∞) ≤ ρ^t W₂(p, q∞) up to rounding (relative 1e-9).
    assert np.all(gd[above_floor] <= predicted[above_floor] * (1 + 1e-9))
    t = np.flatnonzero(above_floor)[-20:]
    slope_gd = np.polyfit(t, np.log(gd[t]), 1)[0]
    slope_predicted = np.polyfit(t, np.log(predicted[t]), 1)[0]
    # After many steps the slowest contraction 1 − 2ηs_min² dominates: slopes agree to a few %.
    assert slope_gd == pytest.approx(slope_predicted, rel=0.05)


def test_figure_depends_on_the_seed():
    import numpy as np

    first = _spec("convergence").make(Context(seed=0, quick=True)).axes[0].get_lines()[0].get_ydata()
    again = _spec("convergence").make(Context(seed=0, quick=True)).axes[0].get_lines()[0].get_ydata()
    other = _spec("convergence").make(Context(seed=1, quick=True)).axes[0].get_lines()[0].get_ydata()
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_select_by_name_or_module_and_unknown_name():
    assert [s.name for s in select_figures(["fig_a_convergence"])] == ["convergence"]
    assert [s.name for s in select_figures(["a_convergence", "convergence"])] == ["convergence"]
    with pytest.raises(ValueError, match="only 'nope' matches no figure"):
        select_figures(["nope"])


def test_a_module_without_name_caption_or_make_is_rejected():
    good = types.ModuleType("fig_x")
    good.NAME, good.CAPTION, good.make = "x", "A caption.", lambda ctx: None
    assert _spec_from_module(good).name == "x"
    for attribute, value in (("NAME", "has space"), ("CAPTION", ""), ("make", None)):
        bad = types.ModuleType("fig_bad")
        bad.NAME, bad.CAPTION, bad.make = good.NAME, good.CAPTION, good.make
        setattr(bad, attribute, value)
        with pytest.raises(TypeError, match="fig_bad"):
            _spec_from_module(bad)


def test_broken_figures_are_recorded_and_missing_requirements_skip(tmp_path, monkeypatch, capsys):
    def raises(ctx):
        raise RuntimeError("deliberately broken")

    specs = [FigureSpec("raises", "Raises.", raises, "t.fig_raises"),
             FigureSpec("not_a_figure", "Returns a list.", lambda ctx: [], "t.fig_list"),
             FigureSpec("needs_missing", "Needs a module.", raises, "t.fig_missing",
                        requires=("no_such_module_xyz",)),
             _spec("convergence")]
    monkeypatch.setattr("proofs_check.figures.available_figures", lambda: specs)
    files = make_figures(tmp_path, QUICK)
    by_name = {f.name: f for f in files}
    assert by_name["raises"].status == "ERROR" and "deliberately broken" in by_name["raises"].error
    assert "not a matplotlib.figure.Figure" in by_name["not_a_figure"].error
    assert by_name["needs_missing"].status == "skipped" and "no_such_module_xyz" in by_name["needs_missing"].skipped
    assert by_name["convergence"].ok and os.path.getsize(by_name["convergence"].png) > 0  # the others still ran
    assert cli.main(["figures", "--out", str(tmp_path / "cli"), "--quick", "--quiet"]) == cli.EXIT_FAILED
    assert "deliberately broken" in capsys.readouterr().out


def test_figures_command_writes_only_the_selected_figure(tmp_path):
    out = tmp_path / "figs"
    assert cli.main(["figures", "--out", str(out), "--quick", "--figure", "convergence", "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["convergence.pdf", "convergence.png"]


def test_a_new_figure_module_is_discovered_without_registration(tmp_path, monkeypatch):
    """How another branch's ``fig_d_*.py`` is picked up: dropping a module in the package is enough."""
    import sys

    import proofs_check.figures as package

    (tmp_path / "fig_z_extra.py").write_text(
        "from matplotlib.figure import Figure\n"
        "NAME = 'extra'\n"
        "CAPTION = 'A figure added later.'\n"
        "def make(ctx):\n"
        "    figure = Figure()\n"
        "    ax = figure.subplots()\n"
        "    ax.plot([0, 1], [ctx.seed, 1], label='line')\n"
        "    ax.set(title='t', xlabel='x', ylabel='y')\n"
        "    ax.legend()\n"
        "    return figure\n", encoding="utf-8")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "proofs_check.figures.fig_z_extra", raising=False)
    try:
        assert [s.name for s in available_figures()][-1] == "extra"
        (written,) = make_figures(tmp_path / "out", QUICK, only=["z_extra"])
        assert written.ok and os.path.getsize(written.png) > 0
    finally:
        sys.modules.pop("proofs_check.figures.fig_z_extra", None)
