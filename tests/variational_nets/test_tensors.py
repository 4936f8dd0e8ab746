"""Trainable tensors as types: TensorSpec and Parameter, and the layer's view of their values."""
import numpy as np
import pytest

from variational_nets.model import MLP
from variational_nets.optim import sgd
from variational_nets.tensors import Parameter, TensorSpec


def test_tensor_spec_checks_and_mean():
    spec = TensorSpec("weight", "input", 3, 4, "factor", 2)
    assert spec.mean() == TensorSpec("weight", "input", 3, 4)
    for args, match in [(("kernel", "input", 3, 4), "invalid kind"),
                        (("weight", "middle", 3, 4), "invalid layer"),
                        (("weight", "input", 0, 4), "invalid fan_in"),
                        (("weight", "input", 3, 4, "factor"), "invalid rank"),
                        (("weight", "input", 3, 4, "mean", 2), "invalid rank"),
                        (("weight", "input", 3, 4, "noise"), "invalid role")]:
        with pytest.raises(ValueError, match=match):
            TensorSpec(*args)


def test_parameter_checks():
    spec = TensorSpec("weight", "input", 3, 4, "factor", 2)
    value = np.zeros((4, 3, 2), np.float32)
    p = Parameter(value, spec, 0.5, 2.0)
    assert p.is_factor and p.role == "factor" and p.with_momentum_dtype("bfloat16").value is value
    with pytest.raises(ValueError, match="invalid momentum_dtype"):
        Parameter(value.astype(np.float64), spec, 0.5, 2.0, "bfloat16")
    with pytest.raises(ValueError, match="invalid momentum_dtype"):
        Parameter(np.zeros((4, 3), np.float32), spec.mean(), 0.5, 2.0, "bfloat16")
    with pytest.raises(ValueError, match="invalid multiplier"):
        Parameter(value, spec, 0.5, -1.0)
    with pytest.raises(TypeError, match="invalid spec"):
        Parameter(value, "factor", 0.5, 1.0)
    untyped = Parameter.untyped(value)
    assert untyped.multiplier is None and untyped.role is None and not untyped.is_factor


def test_layer_params_is_a_live_view_of_the_tensors():
    model = MLP((2, 4, 1), np.random.default_rng(0), covariance="lowrank", rank=2)
    layer = model.layers[0]
    assert list(layer.params) == ["weight", "bias", "factor_weight", "factor_bias"]
    new = np.ones_like(layer.params["weight"])
    layer.params["weight"] = new  # replaces the value, keeps the spec and the multiplier
    assert layer.tensors["weight"].value is new and layer.multipliers["weight"] > 0
    assert model.named_parameters()["layer0.weight"] is new
    roles = {k: t.role for k, t in model.tensors().items()}
    assert roles["layer0.factor_weight"] == "factor" and roles["layer1.bias"] == "mean"
    del layer.params["weight"]
    assert "weight" not in layer.tensors and len(layer.params) == 3
    with pytest.raises(KeyError):
        sgd(model, 0.1).step(model, {})


def test_frozen_parameter_keeps_value_spec_and_multiplier():
    spec = TensorSpec("weight", "hidden", 3, 4)
    value = np.zeros((4, 3))
    p = Parameter(value, spec, 0.5, 2.0)
    frozen = p.frozen()
    assert p.trainable and not frozen.trainable
    assert frozen.value is value and frozen.spec == spec and frozen.multiplier == 2.0
    with pytest.raises(TypeError, match="invalid trainable"):
        Parameter(value, spec, 0.5, 2.0, trainable="no")


@pytest.mark.parametrize("expectation", ["closed-form", "mc"])
@pytest.mark.parametrize("frozen_layers", [(0,), (0, 1), (1, -1)])
def test_frozen_layers_do_not_move_under_fit(expectation, frozen_layers):
    from variational_nets.train import fit, train_state

    rng = np.random.default_rng(3)
    model = MLP((3, 5, 5, 1), rng, variational="input-output", covariance="full", dtype=np.float64)
    model.freeze(frozen_layers)
    frozen = {i % 3 for i in frozen_layers}
    before = {name: t.value.copy() for name, t in model.tensors().items()}
    state = train_state(model, 0.05, 0.9, expectation=expectation)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    fit(model, state, x, y, epochs=3, batch_size=4, rng=rng, quiet=True)
    for name, t in model.tensors().items():
        layer = int(name.split(".")[0][len("layer"):])
        if layer in frozen:
            assert not t.trainable and np.array_equal(t.value, before[name]), name
            assert not state.optimizer.buffers[name].any(), name  # the buffer was never touched
        else:
            assert t.trainable and not np.array_equal(t.value, before[name]), name


def test_freeze_checks_its_argument_before_freezing_anything():
    model = MLP((2, 4, 4, 1), np.random.default_rng(0))
    for bad, error in [("0", TypeError), (3, TypeError), ([0, 3], ValueError), ([-4], ValueError),
                       ([0.0], TypeError)]:
        with pytest.raises(error, match="invalid layers"):
            model.freeze(bad)
    assert all(t.trainable for t in model.tensors().values())
    model.freeze([])
    assert all(t.trainable for t in model.tensors().values())
