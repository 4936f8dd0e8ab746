"""Coordinate check (variational_nets.coordcheck): the slope fit against known power laws, the
measured sizes against properties of the parametrization table, the sampled path's fixed noise,
validation, and the figure."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from variational_nets.coordcheck import (PATHS, CoordCheckConfig, CoordCheckResult, CoordRecord,
                                         coordcheck_point, coordcheck_slopes, format_slopes,
                                         layer_names, run_coordcheck)
from variational_nets.sweep import SweepPoint


pytestmark = pytest.mark.usefixtures("blas_single_thread")


def point(width=16, lr=0.3, seed=0, parametrization="mup", **overrides):
    params = CoordCheckConfig(steps=2, d_in=8, batch_size=16, rank=4).point_params()
    params.update(overrides, parametrization=parametrization)
    return SweepPoint(width, lr, seed, params)


def synthetic_result(exponents, widths, seeds, noise):
    """Sizes c_s · width^a_s, a_s = exponents[layer] + per-seed offsets; known slopes."""
    config = CoordCheckConfig(widths=widths, seeds=seeds, parametrizations=("mup",), steps=0, depth=1)
    names = layer_names(1)
    records = []
    for layer, a in zip(names, exponents):
        for s, seed in enumerate(seeds):
            for w in widths:
                size = (1.0 + s) * w ** (a + noise[s])
                for path in PATHS:
                    records.append(CoordRecord("mup", path, 0, layer, w, seed, size))
    return CoordCheckResult(config, names, tuple(records), None)


@settings(max_examples=20)
@given(a=st.floats(-1.0, 1.5), b=st.floats(-1.0, 1.5),
       widths=st.lists(st.integers(2, 10_000), min_size=2, max_size=6, unique=True))
def test_slope_recovers_a_power_law(a, b, widths):
    # equal per-seed exponents, seed-dependent constants: the seed mean is c̄ · w^a exactly
    result = synthetic_result((a, b), tuple(widths), (0, 1, 2), noise=(0.0, 0.0, 0.0))
    slopes = {(s.path, s.layer): s for s in coordcheck_slopes(result)}
    for path in PATHS:
        # log-log least squares of an exact power law: rounding only
        assert slopes[path, "h1"].slope == pytest.approx(a, abs=1e-9)
        assert slopes[path, "output"].slope == pytest.approx(b, abs=1e-9)
        assert slopes[path, "h1"].seed_se == pytest.approx(0.0, abs=1e-9)


def test_seed_standard_error_is_that_of_the_per_seed_slopes():
    noise = (-0.1, 0.0, 0.3)
    result = synthetic_result((0.5, 0.0), (8, 16, 32, 64), (0, 1, 2), noise)
    s = [x for x in coordcheck_slopes(result) if x.layer == "h1"][0]
    expected = np.std(0.5 + np.array(noise), ddof=1) / math.sqrt(3)
    assert s.seed_se == pytest.approx(expected, rel=1e-9)


def test_slope_ignores_blown_up_widths_and_is_nan_with_fewer_than_two():
    result = synthetic_result((1.0, 1.0), (8, 16, 32), (0,), (0.0,))
    records = [r if r.width != 32 else CoordRecord(r.parametrization, r.path, r.step, r.layer,
                                                    r.width, r.seed, math.nan)
               for r in result.records]
    slopes = coordcheck_slopes(CoordCheckResult(result.config, result.layers, tuple(records), None))
    assert all(s.slope == pytest.approx(1.0, abs=1e-9) for s in slopes)
    records = [r if r.width == 8 else CoordRecord(r.parametrization, r.path, r.step, r.layer,
                                                   r.width, r.seed, math.inf)
               for r in result.records]
    slopes = coordcheck_slopes(CoordCheckResult(result.config, result.layers, tuple(records), None))
    assert all(math.isnan(s.slope) for s in slopes)


def test_point_records_every_layer_path_and_step():
    out = coordcheck_point(point())
    names = layer_names(3)
    assert set(out) == {f"{p}_t{t}_{n}" for p in PATHS for t in range(3) for n in names}
    assert all(np.isfinite(v) and v > 0 for v in out.values())


def test_sp_and_mup_share_input_and_hidden_init_but_not_the_output():
    # docs/theory.md §3: input and hidden init stds are 1/√n_in in both; the output's differs
    sp, mup = coordcheck_point(point(parametrization="sp")), coordcheck_point(point())
    for path in PATHS:
        for layer in ("h1", "h2", "h3"):
            assert sp[f"{path}_t0_{layer}"] == mup[f"{path}_t0_{layer}"]
        assert sp[f"{path}_t0_output"] != mup[f"{path}_t0_output"]
    # after a step the multipliers differ (input × n_out under μP): so do the sizes
    assert sp["mean_t1_h1"] != mup["mean_t1_h1"]


def test_sampled_path_uses_one_fixed_sample():
    # with a vanishing step the parameters do not move, so a fixed sample gives fixed sizes
    out = coordcheck_point(point(lr=1e-30))
    for layer in layer_names(3):
        assert out[f"sampled_t2_{layer}"] == pytest.approx(out[f"sampled_t0_{layer}"], rel=1e-6)
        assert out[f"mean_t2_{layer}"] == pytest.approx(out[f"mean_t0_{layer}"], rel=1e-6)
    # the sample really perturbs the variational input layer
    assert out["sampled_t0_h1"] != out["mean_t0_h1"]


def test_small_run_separates_sp_from_mup_and_formats():
    config = CoordCheckConfig(widths=(64, 128, 256), seeds=tuple(range(6)), steps=1)
    result = run_coordcheck(config)
    slopes = {(s.parametrization, s.path, s.step, s.layer): s for s in coordcheck_slopes(result)}
    for path in PATHS:
        # docs/theory.md C9 after one step: SP's output grows like width^1, μP's stays flat. Over
        # three seed sets these slopes were 0.95-1.32 (SP) and -0.09..0.10 (μP) with seed SEs
        # <= 0.18, so the bounds below sit >= 2.5 SEs away from every measured value.
        assert slopes["sp", path, 1, "output"].slope > 0.5
        assert abs(slopes["mup", path, 1, "output"].slope) < 0.5
        assert abs(slopes["mup", path, 1, "h3"].slope) < 0.2  # measured <= 0.08, SE <= 0.04
    text = format_slopes(coordcheck_slopes(result))
    assert "mup    sampled     1" in text and "output" in text.splitlines()[1]
    assert result.sizes("sp", "mean", 0, "h1").shape == (6, 3)


def test_results_file_resumes(tmp_path):
    config = CoordCheckConfig(widths=(8, 16), seeds=(0,), steps=1, d_in=4, batch_size=8, rank=2)
    path = tmp_path / "cc.jsonl"
    first = run_coordcheck(config, results_path=path)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and first.results_path == str(path)
    again = run_coordcheck(config, results_path=path)
    assert path.read_text().splitlines() == lines  # nothing recomputed
    assert again.records == first.records


@pytest.mark.parametrize("kwargs,match", [
    ({"widths": (64,)}, "at least two widths"),
    ({"widths": (64, 64)}, "repeat"),
    ({"widths": (0, 64)}, r"invalid widths: expected a positive integer"),
    ({"seeds": (-1,)}, r"invalid seeds"),
    ({"parametrizations": ("ntk",)}, "invalid parametrizations"),
    ({"steps": -1}, r"invalid steps: expected an integer >= 0"),
    ({"lr": 0.0}, r"invalid lr"),
    ({"lr": math.nan}, r"invalid lr"),
    ({"num_classes": 1}, "num_classes"),
    ({"backend": "jax"}, r"invalid backend"),
    ({"dtype": "float16"}, "invalid dtype"),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoordCheckConfig(**kwargs)


def test_widths_not_a_sequence_raise_type_error():
    with pytest.raises(TypeError, match="widths"):
        CoordCheckConfig(widths="64")


def test_plot_writes_a_figure(tmp_path):
    from variational_nets.plots import plot_coordcheck

    result = synthetic_result((0.0, 1.0), (8, 16, 32), (0, 1), (0.0, 0.1))
    out = tmp_path / "cc.png"
    plot_coordcheck(result, out)
    assert out.stat().st_size > 10_000
    fig = plot_coordcheck(result)
    assert len(fig.axes) == len(PATHS) * 1  # one parametrization, one step
