"""The network as a linear model: the output-layer view and the empirical NTK.

The Jacobian from the hand-written backward pass is checked against central finite differences
of the forward pass; the factored kernel against the explicit ``J D Jᵀ``; the kernel against a
real SGD step; the output-layer view against the network's own closed-form moments.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from variational_nets.linearize import empirical_ntk, jacobian, output_layer_model
from variational_nets.model import MLP
from variational_nets.train import fit, train_state

EPS = np.finfo(np.float64).eps


def _model(seed, sizes, parametrization="mup", activation="silu", variational="none", **kw):
    return MLP(sizes, np.random.default_rng(seed), parametrization=parametrization, activation=activation,
               variational=variational, dtype=np.float64, **kw)


def _mean_output(model, x):
    return model.forward(x).activations[-1][:, 0]


architectures = st.tuples(st.integers(1, 4), st.lists(st.integers(1, 5), min_size=1, max_size=3))


@given(arch=architectures, seed=st.integers(0, 2 ** 16), parametrization=st.sampled_from(["sp", "mup", "ntp"]),
       rows=st.integers(1, 4), variational=st.sampled_from(["none", "output", "input-output"]))
def test_jacobian_matches_central_differences(arch, seed, parametrization, rows, variational):
    d_in, hidden = arch
    model = _model(seed, (d_in, *hidden, 1), parametrization, "silu", variational)
    x = np.random.default_rng(seed + 1).standard_normal((rows, d_in))
    J = jacobian(model, x)
    assert set(J) == {f"layer{i}.{k}" for i in range(len(model.layers)) for k in ("weight", "bias")}
    h = 1e-6
    for name, value in model.named_parameters().items():
        if name not in J:
            continue
        fd = np.empty(J[name].shape)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + h
            up = _mean_output(model, x)
            value[idx] = old - h
            down = _mean_output(model, x)
            value[idx] = old
            fd[(slice(None),) + idx] = (up - down) / (2 * h)
        # central differences: truncation O(h² f''') ~ 1e-12 and rounding eps·|f|/h ~ 1e-10 here
        scale = 1.0 + np.max(np.abs(_mean_output(model, x)))
        assert np.max(np.abs(J[name] - fd)) <= 1e-7 * scale, name


@given(arch=architectures, seed=st.integers(0, 2 ** 16), parametrization=st.sampled_from(["sp", "mup", "ntp"]),
       activation=st.sampled_from(["silu", "relu"]), n1=st.integers(1, 4), n2=st.integers(1, 4))
def test_factored_kernel_equals_explicit_jacobian_contraction(arch, seed, parametrization, activation, n1, n2):
    d_in, hidden = arch
    model = _model(seed, (d_in, *hidden, 1), parametrization, activation)
    rng = np.random.default_rng(seed + 2)
    x1, x2 = rng.standard_normal((n1, d_in)), rng.standard_normal((n2, d_in))
    J1, J2 = jacobian(model, x1), jacobian(model, x2)
    mult = model.step_multipliers()
    explicit = sum(mult[k] * J1[k].reshape(n1, -1) @ J2[k].reshape(n2, -1).T for k in J1)
    kernel = empirical_ntk(model, x1, x2)
    assert kernel.shape == (n1, n2)
    # two float64 routes through the same products: rounding relative to the terms' size
    size = sum(mult[k] * np.linalg.norm(J1[k].reshape(n1, -1), axis=1)[:, None]
               * np.linalg.norm(J2[k].reshape(n2, -1), axis=1)[None, :] for k in J1)
    assert np.all(np.abs(kernel - explicit) <= 1e-13 * (1.0 + size))
    gram = empirical_ntk(model, x1)
    assert np.allclose(gram, gram.T, rtol=0, atol=1e-14 * (1 + np.abs(gram).max()))
    assert np.linalg.eigvalsh(0.5 * (gram + gram.T)).min() >= -1e-12 * (1 + np.abs(gram).max())


@pytest.mark.parametrize("parametrization", ["sp", "mup", "ntp"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_predicts_one_sgd_step_to_second_order(parametrization, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
    x_test = rng.standard_normal((4, 3))
    base = _model(seed, (3, 8, 8, 1), parametrization)
    f0, f0_test = _mean_output(base, x), _mean_output(base, x_test)
    # loss mean_n (f_n − y_n)²: ∂L/∂f_n = 2(f_n − y_n)/N
    predicted_move = -empirical_ntk(base, x_test, x) @ (2.0 * (f0 - y[:, 0]) / x.shape[0])
    errors = []
    for lr in (1e-3, 1e-4):
        model = _model(seed, (3, 8, 8, 1), parametrization)
        fit(model, train_state(model, lr, momentum=0.0), x, y, epochs=1, batch_size=6, rng=rng, quiet=True)
        move = _mean_output(model, x_test) - f0_test
        errors.append(np.max(np.abs(move - lr * predicted_move)) / np.max(np.abs(lr * predicted_move)))
    # first order in the step: the relative error of the kernel's prediction is O(lr), so it is
    # small and falls about tenfold with a tenfold smaller step (≥ 5x allows the O(lr²) terms)
    assert errors[0] < 0.05
    assert errors[1] <= errors[0] / 5 + 1e-9


@pytest.mark.parametrize("covariance,rank", [("full", None), ("lowrank", 3)])
@pytest.mark.parametrize("variational", ["output", "input-output"])
def test_output_layer_view_reproduces_the_closed_form_moments(covariance, rank, variational):
    model = _model(4, (3, 6, 5, 1), "mup", variational=variational, covariance=covariance, rank=rank)
    x = np.random.default_rng(5).standard_normal((7, 3))
    view = output_layer_model(model, x)
    fp = model.forward(x, closed_form=True)
    layer = model.layers[-1]
    assert view.features.shape == (7, 6) and view.factor.shape == (6, layer.rank)
    np.testing.assert_allclose(view.features @ view.mean, fp.activations[-1][:, 0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(np.sum((view.features @ view.factor) ** 2, axis=1), fp.variance[:, 0],
                               rtol=1e-13, atol=1e-14)
    t = layer.tensors
    assert np.all(view.mean_multipliers[:-1] == t["weight"].multiplier)
    assert view.mean_multipliers[-1] == t["bias"].multiplier
    assert np.all(view.factor_multipliers[:-1] == t["factor_weight"].multiplier)
    assert view.factor_multipliers[-1] == t["factor_bias"].multiplier
    view.mean[:] = 0.0  # a copy: the model is untouched
    assert np.any(t["weight"].value != 0)


def test_kernel_of_a_network_frozen_below_its_output_is_the_output_layers_gram_matrix():
    model = _model(6, (3, 7, 7, 1), "ntp", variational="output", covariance="full")
    model.freeze([0, 1])
    x1, x2 = np.random.default_rng(7).standard_normal((2, 5, 3))
    a, b = output_layer_model(model, x1), output_layer_model(model, x2)
    np.testing.assert_allclose(empirical_ntk(model, x1, x2),
                               (a.features * a.mean_multipliers) @ b.features.T, rtol=1e-13, atol=1e-15)
    model.freeze([2])
    assert not np.any(empirical_ntk(model, x1, x2))


def test_bad_input_names_the_argument():
    model = _model(0, (3, 4, 1))
    with pytest.raises(TypeError, match="invalid model"):
        jacobian("net", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="invalid x"):
        empirical_ntk(model, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="invalid x"):
        jacobian(model, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="invalid model.*one output"):
        empirical_ntk(_model(0, (3, 4, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="invalid model.*covariance factor"):
        output_layer_model(model, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="invalid model.*covariance factor"):
        output_layer_model(_model(0, (3, 4, 1), variational="output", covariance="diagonal"), np.zeros((2, 3)))
