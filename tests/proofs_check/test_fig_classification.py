"""Figure (d): renders and saves a non-empty PNG (the figures framework is tested elsewhere)."""
import matplotlib
import matplotlib.pyplot as plt

from proofs_check.figures import fig_d_classification as figure
from proofs_check.registry import Context


def test_figure_renders_and_saves(tmp_path):
    fig = figure.make(Context(seed=0, quick=True))
    assert isinstance(fig, matplotlib.figure.Figure)
    axes = fig.get_axes()
    assert fig._suptitle is not None and fig._suptitle.get_text()
    for ax in axes[:2]:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert axes[0].get_legend() is not None and axes[1].get_legend() is not None
    path = tmp_path / f"{figure.NAME}.png"
    fig.savefig(path, dpi=60)
    plt.close(fig)
    assert path.stat().st_size > 10_000
    assert figure.NAME == "d_classification"
    assert figure.CAPTION.endswith(".") and figure.CAPTION.count(". ") == 0
