"""Momentum SGD: the PyTorch update rule and the factor update without forming g zᵀ."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from variational_nets.layers import FactorGrad
from variational_nets.model import MLP
from variational_nets.optim import sgd, update_factor

# float64 recursions against closed-form sums: only rounding, a few ulps per step
RTOL = 1e-12


@given(shape=st.sampled_from([(3,), (2, 4), (3, 2, 1)]), rank=st.integers(1, 6),
       steps=st.integers(1, 5), momentum=st.sampled_from([0.0, 0.5, 0.9]), seed=st.integers(0, 999))
def test_update_factor_equals_dense_reference(shape, rank, steps, momentum, seed):
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal(shape + (rank,))
    buf = np.zeros_like(factor)
    ref_factor, ref_buf = factor.copy(), np.zeros_like(factor)
    lr = 0.03
    for _ in range(steps):
        g, z = rng.standard_normal(shape), rng.standard_normal(rank)
        update_factor(factor, buf, g, z, lr, momentum, np)
        dense = np.einsum("...,r->...r", g, z)  # the full gradient g zᵀ, formed on purpose
        ref_buf = momentum * ref_buf + dense
        ref_factor = ref_factor - lr * ref_buf
    np.testing.assert_allclose(factor, ref_factor, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(buf, ref_buf, rtol=RTOL, atol=1e-14)
    full = rng.standard_normal(factor.shape)
    before = factor.copy()
    b2 = buf.copy()
    update_factor(factor, buf, full, None, lr, momentum, np)  # z=None: g is the full gradient
    np.testing.assert_allclose(factor, before - lr * (momentum * b2 + full), rtol=RTOL, atol=1e-14)


def test_sgd_matches_closed_form_momentum_sum():
    """After T steps with gradients g_1..g_T: θ_T = θ_0 − lr Σ_t Σ_{s≤t} m^{t−s} g_s (buf_1 = g_1)."""
    model = MLP((2, 3, 1), np.random.default_rng(0), covariance="lowrank", rank=2, dtype=np.float64)
    params = model.named_parameters()
    start = {k: v.copy() for k, v in params.items()}
    state = sgd(model, 0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    history = []
    for _ in range(4):
        grads = {}
        for k, v in params.items():
            if ".factor_" in k:
                grads[k] = FactorGrad(rng.standard_normal(v.shape[:-1]), rng.standard_normal(v.shape[-1]))
            else:
                grads[k] = rng.standard_normal(v.shape)
        history.append(grads)
        state.step(model, grads)
    for k, v in params.items():
        lr = 0.05 * state.multipliers[k]
        dense = [g[k].dense() if isinstance(g[k], FactorGrad) else g[k] for g in history]
        total = sum(0.9 ** (t - s) * dense[s] for t in range(4) for s in range(t + 1))
        np.testing.assert_allclose(v, start[k] - lr * total, rtol=RTOL, atol=1e-13, err_msg=k)
    assert state.steps == 4


def test_sgd_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal((3, 4))
    model = MLP((4, 3, 1), np.random.default_rng(0), variational="none", dtype=np.float64)
    model.layers[0].params["weight"][...] = p0
    state = sgd(model, 0.1, 0.9)
    tp = torch.tensor(p0, requires_grad=True)
    lr = 0.1 * state.multipliers["layer0.weight"]
    opt = torch.optim.SGD([tp], lr=lr, momentum=0.9)
    for _ in range(3):
        g = rng.standard_normal((3, 4))
        grads = {k: np.zeros_like(v) for k, v in model.named_parameters().items()}
        grads["layer0.weight"] = g
        state.step(model, grads)
        tp.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(model.layers[0].params["weight"], tp.detach().numpy(), rtol=RTOL)


def test_missing_gradient_is_an_error():
    model = MLP((2, 3, 1), np.random.default_rng(0))
    state = sgd(model, 0.1)
    with pytest.raises(KeyError, match="layer0.factor_weight"):
        state.step(model, {"layer0.weight": 0})


@pytest.mark.parametrize("lr", [0, -1e-3, float("nan"), float("inf")])
def test_bad_step_size(lr):
    with pytest.raises(ValueError, match=r"invalid lr"):
        sgd(MLP((2, 3, 1), np.random.default_rng(0)), lr)


@pytest.mark.parametrize("layout", ["fortran", "mixed-dtype"])
def test_update_factor_array_path_equals_blas_path(layout):
    """The in-place BLAS path (NumPy, contiguous) and the array expression (CuPy, other layouts)
    give the same update; float64 rounding only."""
    rng = np.random.default_rng(0)
    factor = rng.standard_normal((4, 5, 3))
    buf = rng.standard_normal(factor.shape)
    g, z = rng.standard_normal((4, 5)), rng.standard_normal(3)
    f1, b1 = factor.copy(), buf.copy()
    update_factor(f1, b1, g, z, 0.1, 0.9, np)  # contiguous float64: BLAS path
    if layout == "fortran":
        f2, b2 = np.asfortranarray(factor), np.asfortranarray(buf)
        g2, z2 = g, z
    else:
        f2, b2 = factor.copy(), buf.copy()
        g2, z2 = g.astype(np.float32), z.astype(np.float32)
    update_factor(f2, b2, g2, z2, 0.1, 0.9, np)
    # float64: rounding only. float32 g, z: their rounding (relative 6e-8) times the size of
    # the terms (|g z| ≲ 10 here) is an absolute error up to about 1e-6; measured 2e-8
    atol = 1e-12 if layout == "fortran" else 1e-6
    np.testing.assert_allclose(f2, f1, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(b2, b1, rtol=1e-12, atol=atol)
