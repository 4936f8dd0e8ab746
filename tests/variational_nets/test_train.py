"""Training loop, expected losses, prediction and backends."""
import numpy as np
import pytest

from variational_nets import losses as L
from variational_nets.backend import cupy_available, get_xp, to_numpy
from variational_nets.data import toy_regression
from variational_nets.model import MLP, layer_activations
from variational_nets.train import (TrainingDiverged, fit, predict, train_state, train_step)


def test_closed_form_squared_error_equals_monte_carlo():
    """E over the output layer's weights of (f − y)² equals (m − y)² + v (exact)."""
    model = MLP((3, 6, 2), np.random.default_rng(0), covariance="lowrank", rank=4, dtype=np.float64)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    noise0 = model.sample_noise(rng)[0]
    fp = model.forward(x, (noise0, None), closed_form=True)
    closed = L.squared_error_closed(fp.activations[-1], fp.variance, y).value
    out_layer = model.layers[1]
    h = fp.activations[0]
    draws = []
    for _ in range(20000):
        f, _ = out_layer.forward(h, out_layer.sample_noise(rng))
        draws.append(L.squared_error(f, y).value)
    draws = np.array(draws)
    se = draws.std() / np.sqrt(draws.size)
    # Monte Carlo mean within 4 standard errors of the exact expectation
    assert abs(draws.mean() - closed) < 4 * se, (draws.mean(), closed, se)


@pytest.mark.parametrize("loss,d_out", [("softmax_ce", 3), ("binary_ce", 1)])
def test_classification_closed_forms_are_upper_bounds(loss, d_out):
    model = MLP((3, 6, d_out), np.random.default_rng(0), covariance="full", dtype=np.float64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3))
    y = rng.integers(0, max(d_out, 2), 6)
    fp = model.forward(x, (None, None), closed_form=True)
    bound = L.get_loss(loss).closed(fp.activations[-1], fp.variance, y).value
    h = fp.activations[0]
    draws = np.array([L.get_loss(loss).sampled(model.layers[1].forward(h, model.layers[1].sample_noise(rng))[0], y).value
                      for _ in range(20000)])
    se = draws.std() / np.sqrt(draws.size)
    assert draws.mean() <= bound + 4 * se  # Jensen: E log Σ e^f ≤ log Σ E e^f
    # and the bound is not vacuous: v → 0 gives back the sampled loss at the mean
    assert L.get_loss(loss).closed(fp.activations[-1], 0 * fp.variance, y).value == pytest.approx(
        L.get_loss(loss).sampled(fp.activations[-1], y).value, rel=1e-12)


def test_train_step_reduces_objective_and_uses_one_sample_per_batch():
    ds = toy_regression(np.random.default_rng(0))
    model = MLP((1, 16, 16, 16, 1), np.random.default_rng(1), dtype=np.float64)
    state = train_state(model, 1e-2)
    rng = np.random.default_rng(2)
    first = [train_step(model, state, ds.x_train, ds.y_train, rng).objective for _ in range(5)]
    for _ in range(300):
        train_step(model, state, ds.x_train, ds.y_train, rng)
    last = [train_step(model, state, ds.x_train, ds.y_train, rng).objective for _ in range(5)]
    assert np.mean(last) < 0.5 * np.mean(first)
    assert state.optimizer.steps == 310
    # one z per step for each variational layer: the same rng state gives the same step
    m1 = MLP((1, 4, 1), np.random.default_rng(5), dtype=np.float64)
    m2 = MLP((1, 4, 1), np.random.default_rng(5), dtype=np.float64)
    s1, s2 = train_state(m1, 1e-2), train_state(m2, 1e-2)
    r1 = train_step(m1, s1, ds.x_train, ds.y_train, np.random.default_rng(7))
    r2 = train_step(m2, s2, ds.x_train, ds.y_train, np.random.default_rng(7))
    assert r1 == r2


def test_divergence_reports_the_step():
    ds = toy_regression(np.random.default_rng(0))
    model = MLP((1, 16, 16, 16, 1), np.random.default_rng(1))
    state = train_state(model, 1e3)
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+ \(epoch \d+\)") as info:
        fit(model, state, ds.x_train, ds.y_train, 50, 16, np.random.default_rng(2), quiet=True)
    assert info.value.step >= 1 and info.value.epoch >= 1
    assert not np.isfinite(info.value.value) or info.value.value > 1e6


def test_progress_lines_and_quiet():
    ds = toy_regression(np.random.default_rng(0))
    lines = []
    model = MLP((1, 4, 1), np.random.default_rng(1))
    fit(model, train_state(model, 1e-2), ds.x_train, ds.y_train, 20, 16,
        np.random.default_rng(2), progress=lines.append, progress_every=5)
    assert len(lines) == 4 and lines[-1].startswith("epoch    20/20")
    lines.clear()
    fit(model, train_state(model, 1e-2), ds.x_train, ds.y_train, 20, 16,
        np.random.default_rng(2), progress=lines.append, quiet=True)
    assert lines == []


@pytest.mark.parametrize("bad,match", [
    (dict(x=np.zeros((4, 2))), "shape"), (dict(x=np.full((4, 1), np.nan)), "NaN"),
    (dict(epochs=0), "invalid epochs"), (dict(batch_size=-1), "invalid batch_size")])
def test_fit_bad_input(bad, match):
    model = MLP((1, 4, 1), np.random.default_rng(1))
    args = dict(x=np.zeros((4, 1)), y=np.zeros((4, 1)), epochs=1, batch_size=2)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        fit(model, train_state(model, 1e-2), args["x"], args["y"], args["epochs"],
            args["batch_size"], np.random.default_rng(0), quiet=True)


def test_layer_activations_mean_and_sampled_paths():
    model = MLP((2, 5, 6, 3), np.random.default_rng(0), covariance="lowrank", rank=2, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 2))
    mean_path = layer_activations(model, x)
    assert [a.shape for a in mean_path] == [(4, 5), (4, 6), (4, 3)]
    assert all(np.array_equal(a, b) for a, b in zip(mean_path, layer_activations(model, x)))
    sampled = layer_activations(model, x, np.random.default_rng(2))
    assert not np.allclose(sampled[0], mean_path[0])
    # recompute the sampled path by hand from the same noise
    noise = model.sample_noise(np.random.default_rng(2))
    w0, b0 = model.layers[0].sampled_weights(noise[0])
    pre = x @ w0.T + b0
    np.testing.assert_allclose(sampled[0], pre / (1 + np.exp(-pre)), rtol=1e-12)


def test_predict_averages_probabilities():
    model = MLP((2, 5, 3), np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 2))
    pred = predict(model, x, "softmax_ce", num_samples=5, rng=np.random.default_rng(3))
    rng = np.random.default_rng(3)
    probs = []
    for _ in range(5):
        f = model.forward(x, model.sample_noise(rng)).activations[-1]
        e = np.exp(f - f.max(1, keepdims=True))
        probs.append(e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(pred.mean, np.mean(probs, 0), rtol=1e-12)
    np.testing.assert_allclose(pred.std, np.std(probs, 0), rtol=1e-9, atol=1e-12)
    binary = MLP((2, 5, 1), np.random.default_rng(0), dtype=np.float64)
    pb = predict(binary, x, "binary_ce", 3, np.random.default_rng(0))
    np.testing.assert_allclose(pb.mean.sum(1), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="rng"):
        predict(model, x, "softmax_ce", 2)


def test_backend_selection():
    import numpy
    assert get_xp("numpy") is numpy
    assert get_xp("auto") is (numpy if not cupy_available() else get_xp("cupy"))
    with pytest.raises(ValueError, match=r"invalid backend"):
        get_xp("jax")
    if not cupy_available():
        with pytest.raises(ValueError, match="cupy"):
            get_xp("cupy")


def test_training_on_each_backend_matches_numpy(xp):
    """The same seeds give the same training on every backend (float64: rounding only)."""
    ds = toy_regression(np.random.default_rng(0))
    results = []
    for name in ("numpy", "cupy" if xp is not np else "numpy"):
        model = MLP((1, 8, 8, 1), np.random.default_rng(1), backend=name, dtype=np.float64)
        fit(model, train_state(model, 1e-2), ds.x_train, ds.y_train, 3, 16,
            np.random.default_rng(2), quiet=True)
        results.append({k: to_numpy(v) for k, v in model.named_parameters().items()})
    for k in results[0]:
        # BLAS reductions in a different order: relative differences of a few ulps per step
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=1e-10, atol=1e-12, err_msg=k)
