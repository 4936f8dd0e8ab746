"""The one sigmoid and the activations."""
import numpy as np
import pytest

from variational_nets.activations import make_activation, sigmoid


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_finite_at_extremes_and_exact_form(dtype):
    x = np.array([-1e30, -800.0, -30.0, 0.0, 30.0, 800.0, 1e30], dtype)
    with np.errstate(all="raise"):  # no overflow anywhere
        s = sigmoid(np, x)
    assert s.dtype == dtype and s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    mid = np.linspace(-20, 20, 41)
    # ½(1 + tanh(x/2)) rounds on the [0, 1] scale: its error is absolute, a few eps (the relative
    # error in the far tail, where 1 + tanh cancels, is not small and is not what it promises)
    np.testing.assert_allclose(sigmoid(np, mid), 1 / (1 + np.exp(-mid)), rtol=0, atol=4e-16)


def test_activation_names():
    assert make_activation("silu").name == "silu" and make_activation("relu").name == "relu"
    with pytest.raises(ValueError, match="invalid activation: expected one of silu, relu"):
        make_activation("gelu")
