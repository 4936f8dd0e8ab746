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
