"""Hand-written backward passes against central finite differences in float64.

Every layer kind (full, low-rank, diagonal factor; deterministic) on the sampled path and the
closed-form (moments) path, every loss in its closed form and its Monte Carlo form, the KL term,
both activations.

Tolerance: central differences with step h = 1e-6 in float64 have truncation error
O(h² |f'''|) ≈ 1e-12 and rounding error ≈ eps |L| / h ≈ 1e-10 for losses of order 1; we accept a
relative error (max abs difference / max abs gradient of the tensor) of 1e-6, which leaves four
orders of margin for curvature (measured: at most 2e-8) while a wrong formula (a missing factor 2, a transposed index,
a dropped term) gives errors of order 1.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from variational_nets.layers import FactorGrad
from variational_nets.model import MLP
from variational_nets.train import Objective, loss_and_grads

H = 1e-6
RTOL = 1e-6


def _targets(loss, rng, n, d_out):
    if loss == "squared_error":
        return rng.standard_normal((n, d_out))
    if loss == "softmax_ce":
        return rng.integers(0, d_out, n)
    return rng.integers(0, 2, n).astype(np.float64)


def _dense(g):
    return g.dense() if isinstance(g, FactorGrad) else g


def max_relative_fd_error(model, x, y, objective, noise, max_coords=40, seed=0):
    """Largest relative error over tensors of analytic gradient vs central differences.

    Checks up to ``max_coords`` random coordinates per tensor (all of them for small tensors).
    Returns (error, name of worst tensor).
    """
    _, _, grads = loss_and_grads(model, x, y, objective, noise)
    params = model.named_parameters()
    assert set(grads) == set(params), "every trainable tensor must receive a gradient"
    rng = np.random.default_rng(seed)
    worst, worst_name = 0.0, None
    for name, p in params.items():
        g = _dense(grads[name])
        assert g.shape == p.shape, name
        flat = p.reshape(-1)
        idx = np.arange(flat.size) if flat.size <= max_coords else rng.choice(flat.size, max_coords, replace=False)
        fd = np.empty(idx.size)
        for j, k in enumerate(idx):
            old = flat[k]
            flat[k] = old + H
            lp = loss_and_grads(model, x, y, objective, noise)[0]
            flat[k] = old - H
            lm = loss_and_grads(model, x, y, objective, noise)[0]
            flat[k] = old
            fd[j] = (lp - lm) / (2 * H)
        scale = max(np.abs(g).max(), 1e-8)
        err = np.abs(fd - g.reshape(-1)[idx]).max() / scale
        if err > worst:
            worst, worst_name = err, name
    return worst, worst_name


def _model(covariance, variational, d_out, activation="silu", rank=3, seed=0):
    return MLP((3, 5, 4, d_out), np.random.default_rng(seed), activation=activation,
               variational=variational, covariance=covariance, rank=rank, dtype=np.float64)


LOSS_OUT = [("squared_error", 2), ("softmax_ce", 3), ("binary_ce", 1)]


@pytest.mark.parametrize("covariance", ["full", "lowrank", "diagonal"])
@pytest.mark.parametrize("loss,d_out", LOSS_OUT)
@pytest.mark.parametrize("expectation", ["closed-form", "mc"])
def test_variational_layers_all_losses(covariance, loss, d_out, expectation):
    # every layer variational, so each layer kind sits in the input, hidden and output position
    model = _model(covariance, "all", d_out)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 3))
    y = _targets(loss, rng, 7, d_out)
    noise = model.sample_noise(rng)
    err, name = max_relative_fd_error(model, x, y, Objective(loss, expectation), noise)
    assert err < RTOL, f"{covariance}/{loss}/{expectation}: {name} relative error {err:.2e}"


@pytest.mark.parametrize("loss,d_out", LOSS_OUT)
@pytest.mark.parametrize("activation", ["silu", "relu"])
def test_deterministic_network(loss, d_out, activation):
    model = _model("full", "none", d_out, activation=activation)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3))
    y = _targets(loss, rng, 6, d_out)
    err, name = max_relative_fd_error(model, x, y, Objective(loss, "closed-form"), None)
    assert err < RTOL, f"{name}: {err:.2e}"


@pytest.mark.parametrize("expectation", ["closed-form", "mc"])
def test_default_architecture_input_output_variational(expectation):
    model = _model("lowrank", "input-output", 2, rank=4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3))
    y = _targets("softmax_ce", rng, 5, 2)
    err, name = max_relative_fd_error(model, x, y, Objective("softmax_ce", expectation),
                                      model.sample_noise(rng))
    assert err < RTOL, f"{name}: {err:.2e}"


def test_kl_term_of_mean_field_vi():
    model = _model("diagonal", "input-output", 1)
    rng = np.random.default_rng(4)
    for layer in model.layers:  # move away from the prior so the KL gradient is not zero
        for k, v in layer.params.items():
            v *= rng.uniform(0.5, 1.5, v.shape)
    x = rng.standard_normal((6, 3))
    y = _targets("binary_ce", rng, 6, 1)
    obj = Objective("binary_ce", "closed-form", kl_weight=0.3)
    err, name = max_relative_fd_error(model, x, y, obj, model.sample_noise(rng))
    assert err < RTOL, f"{name}: {err:.2e}"


@settings(max_examples=8)
@given(n=st.integers(1, 6), rank=st.integers(1, 5), seed=st.integers(0, 2**16),
       covariance=st.sampled_from(["lowrank", "diagonal", "full"]),
       scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_gradients_property_shapes_ranks_seeds_scalings(n, rank, seed, covariance, scale):
    model = MLP((2, 3, 2), np.random.default_rng(seed), covariance=covariance, rank=rank,
                variational="all", dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    x = scale * rng.standard_normal((n, 2))
    y = rng.standard_normal((n, 2))
    err, name = max_relative_fd_error(model, x, y, Objective("squared_error", "closed-form"),
                                      model.sample_noise(rng), max_coords=12)
    assert err < RTOL, f"{name}: {err:.2e}"


@pytest.mark.parametrize("covariance", ["lowrank", "diagonal", None])
def test_input_gradient_skip_changes_no_parameter_gradient(covariance):
    """``input_grad=False`` (used for the first layer) returns no ``dx`` and the same grads."""
    rng = np.random.default_rng(3)
    model = MLP((5, 4, 3), rng, covariance=covariance or "lowrank", rank=2, dtype=np.float64,
                variational="none" if covariance is None else "all")
    layer = model.layers[0]
    x = rng.standard_normal((6, 5))
    noise = layer.sample_noise(rng)
    _, cache = layer.forward(x, noise)
    dh = rng.standard_normal((6, 4))
    dx, full = layer.backward(dh, cache)
    none, skipped = layer.backward(dh, cache, input_grad=False)
    assert none is None and dx.shape == x.shape
    assert set(full) == set(skipped)
    for name in full:
        np.testing.assert_array_equal(_dense(full[name]), _dense(skipped[name]))
    # without the weight in the cache (the network's first layer), the same parameter grads
    h, light = layer.forward(x, noise, keep_weight=False)
    np.testing.assert_array_equal(h, layer.forward(x, noise)[0])
    assert light[1] is None
    _, from_light = layer.backward(dh, light, input_grad=False)
    for name in full:
        np.testing.assert_array_equal(_dense(full[name]), _dense(from_light[name]))
    with pytest.raises(ValueError, match="keep_weight=False"):
        layer.backward(dh, light)
