"""The fused CUDA factor update inside training (optim.update_factor / sgd(fused=...)).

On the CPU: the option is validated, NumPy ignores it, and the dispatch to the kernel is
checked with a stand-in array namespace whose "kernel" is the NumPy reference (which factor
tensors reach it, with which step size). On a GPU (``gpu`` marker, skipped cleanly elsewhere): a
few CuPy training steps with ``fused=True`` equal ``fused=False`` and the NumPy run in float64.
"""
import types

import numpy as np
import pytest

from variational_nets import optim
from variational_nets.backend import to_numpy
from variational_nets.kernels import fused_factor_momentum_update_reference
from variational_nets.model import MLP
from variational_nets.optim import sgd, update_factor
from variational_nets.train import train_state, train_step
from variational_nets.transfer import synthetic_task

class _FakeCupy(types.ModuleType):
    """A namespace that is not numpy (so update_factor takes its CuPy branch) but computes with
    NumPy: every attribute comes from numpy."""

    def __getattr__(self, name):
        return getattr(np, name)


FAKE_CUPY = _FakeCupy("cupy")


@pytest.fixture
def kernel_calls(monkeypatch):
    calls = []

    def fake_kernel(factor, buf, g, z, lr, momentum, xp=None):
        calls.append({"shape": factor.shape, "lr": lr, "momentum": momentum, "xp": xp})
        fused_factor_momentum_update_reference(factor, buf, g, z, lr, momentum)

    monkeypatch.setattr(optim.kernels, "fused_factor_momentum_update", fake_kernel)
    return calls


def test_fused_option_must_be_a_bool():
    model = MLP((3, 4, 2), np.random.default_rng(0), covariance="lowrank", rank=2)
    with pytest.raises(TypeError, match="invalid fused: expected True or False"):
        sgd(model, 0.1, fused="yes")
    assert sgd(model, 0.1).fused is True and sgd(model, 0.1, fused=False).fused is False


def test_fused_dispatch_reaches_the_kernel_only_for_sampled_factors(kernel_calls):
    rng = np.random.default_rng(1)
    factor, buf, g, z = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5)), \
        rng.standard_normal((3, 4)), rng.standard_normal(5)
    expected_f, expected_b = factor.copy(), buf.copy()
    update_factor(expected_f, expected_b, g, z, 0.1, 0.9, np)
    update_factor(factor, buf, g, z, 0.1, 0.9, FAKE_CUPY, fused=True)
    assert [c["shape"] for c in kernel_calls] == [(3, 4, 5)] and kernel_calls[0]["xp"] is FAKE_CUPY
    # the reference and the BLAS path: same update, different rounding (ger may use FMAs)
    np.testing.assert_allclose(factor, expected_f, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(buf, expected_b, rtol=1e-14, atol=1e-15)
    update_factor(factor, buf, g, z, 0.1, 0.9, FAKE_CUPY, fused=False)   # array expression
    update_factor(factor, buf, rng.standard_normal(factor.shape), None, 0.1, 0.9, FAKE_CUPY,
                  fused=True)                                             # full gradient, no z
    update_factor(factor, buf, g, z, 0.1, 0.9, np, fused=True)            # NumPy: BLAS path
    assert len(kernel_calls) == 1


def test_sgd_step_sends_each_sampled_factor_with_its_own_step(kernel_calls):
    """Through train_step: the input layer's factors (sampled, g zᵀ) go to the kernel with
    base step × multiplier; the output layer's (closed form, full gradient) do not."""
    ds = synthetic_task(np.random.default_rng(0), num_train=16, num_test=4, d_in=3, num_classes=4)
    runs = {}
    for fused in (True, False):
        model = MLP((3, 6, 6, 4), np.random.default_rng(1), covariance="lowrank", rank=2,
                    dtype=np.float64)
        model.xp = FAKE_CUPY if fused else np  # only SGD.step reads it, to pick the update
        state = train_state(model, 0.05, loss="softmax_ce", fused=fused)
        train_step(model, state, ds.x_train.astype(np.float64), ds.y_train, np.random.default_rng(2))
        runs[fused] = {k: v.copy() for k, v in model.named_parameters().items()}
    mult = model.step_multipliers()
    assert [c["shape"] for c in kernel_calls] == [(6, 3, 2), (6, 2)]
    assert [c["lr"] for c in kernel_calls] == pytest.approx(
        [0.05 * mult["layer0.factor_weight"], 0.05 * mult["layer0.factor_bias"]], rel=1e-15)
    for k in runs[True]:
        # first step from zero buffers: rounding only between the reference and BLAS
        np.testing.assert_allclose(runs[True][k], runs[False][k], rtol=1e-13, atol=1e-15, err_msg=k)


def test_fused_flag_changes_nothing_on_numpy():
    ds = synthetic_task(np.random.default_rng(0), num_train=32, num_test=4, d_in=4, num_classes=3)
    out = []
    for fused in (True, False):
        model = MLP((4, 8, 8, 3), np.random.default_rng(1), covariance="lowrank", rank=3)
        state = train_state(model, 0.05, loss="softmax_ce", fused=fused)
        rng = np.random.default_rng(2)
        for _ in range(3):
            train_step(model, state, ds.x_train, ds.y_train, rng)
        out.append(model.named_parameters())
    for k in out[0]:
        np.testing.assert_array_equal(out[0][k], out[1][k], err_msg=k)  # the same code path


@pytest.mark.gpu
def test_fused_cupy_training_equals_unfused_and_numpy():
    """Three float64 training steps (softmax bound, rank-4 factors, μP) on CuPy with the fused
    kernel, on CuPy without it, and on NumPy, from the same seeds."""
    ds = synthetic_task(np.random.default_rng(0), num_train=64, num_test=8, d_in=6, num_classes=5)
    x, y = ds.x_train.astype(np.float64), ds.y_train
    runs = {}
    for backend, fused in (("numpy", True), ("cupy", True), ("cupy", False)):
        model = MLP((6, 24, 24, 5), np.random.default_rng(1), covariance="lowrank", rank=4,
                    backend=backend, dtype=np.float64)
        state = train_state(model, 0.05, loss="softmax_ce", fused=fused)
        xb, yb = model.xp.asarray(x), model.xp.asarray(y)
        rng = np.random.default_rng(2)
        for _ in range(3):
            train_step(model, state, xb, yb, rng)
        runs[backend, fused] = {**{k: to_numpy(v) for k, v in model.named_parameters().items()},
                                **{"buf." + k: to_numpy(v) for k, v in state.optimizer.buffers.items()}}
    for k, ref in runs["cupy", False].items():
        # The kernel does the same IEEE operations in the same order as the array expression
        # (compiled with --fmad=false), so the two are expected to agree bit for bit; 1e-12
        # leaves room only for a reduction order that cuBLAS might change between calls.
        np.testing.assert_allclose(runs["cupy", True][k], ref, rtol=1e-12, atol=1e-14, err_msg=k)
        # NumPy/OpenBLAS vs cuBLAS sum in different orders: a few ulps per step, 3 steps
        np.testing.assert_allclose(runs["numpy", True][k], ref, rtol=1e-10, atol=1e-12, err_msg=k)


# --- bfloat16 momentum buffers of the factors ---------------------------------------------------

@pytest.mark.parametrize("xp,fused", [(np, False), (FAKE_CUPY, False), (FAKE_CUPY, True)])
@pytest.mark.parametrize("g_shape,rank", [((3, 4), 5), ((70, 300), 16), ((1,), 1)])
def test_bfloat16_factor_update_equals_kernel_reference_on_every_route(xp, fused, g_shape, rank,
                                                                        kernel_calls):
    """NumPy (row blocks; (70, 300, 16) spans several), the CuPy array path and the kernel
    dispatch give the reference's bits: the same float32 operations in the same order."""
    from variational_nets import kernels

    rng = np.random.default_rng([rank, *g_shape])
    factor = rng.standard_normal(g_shape + (rank,)).astype(np.float32)
    bits = kernels.bfloat16_from_float32(rng.standard_normal(factor.shape).astype(np.float32))
    f_ref, b_ref = factor.copy(), bits.copy()
    for _ in range(2):
        g = rng.standard_normal(g_shape).astype(np.float32)
        z = rng.standard_normal(rank).astype(np.float32)
        fused_factor_momentum_update_reference(f_ref, b_ref, g, z, 0.02, 0.9)
        update_factor(factor, bits, g, z, 0.02, 0.9, xp, fused=fused)
    assert len(kernel_calls) == (2 if fused else 0)
    np.testing.assert_array_equal(bits, b_ref)
    np.testing.assert_array_equal(factor, f_ref)
    # full gradient (closed-form last layer): b = m·b + G, same rounding rule
    full = rng.standard_normal(factor.shape).astype(np.float32)
    expected_b = np.float32(0.9) * kernels.bfloat16_to_float32(bits) + full
    expected_f = factor - np.float32(0.02) * expected_b
    update_factor(factor, bits, full, None, 0.02, 0.9, xp, fused=fused)
    np.testing.assert_array_equal(bits, kernels.bfloat16_from_float32(expected_b))
    np.testing.assert_array_equal(factor, expected_f)


def test_bfloat16_option_sets_only_factor_buffers_and_is_checked():
    model = MLP((3, 5, 5, 2), np.random.default_rng(0), covariance="lowrank", rank=2)
    state = sgd(model, 0.1, factor_momentum="bfloat16")
    for name, buf in state.buffers.items():
        is_factor = name.split(".")[-1].startswith("factor_")
        assert buf.dtype == (np.uint16 if is_factor else np.float32), name
        assert buf.shape == model.named_parameters()[name].shape and not buf.any()
    with pytest.raises(ValueError, match="invalid factor_momentum.*float32 model"):
        sgd(MLP((3, 5, 2), np.random.default_rng(0), dtype=np.float64), 0.1,
            factor_momentum="bfloat16")
    with pytest.raises(ValueError, match="invalid factor_momentum.*exact, bfloat16"):
        sgd(model, 0.1, factor_momentum="float16")


def test_bfloat16_training_matches_exact_training_within_seed_noise():
    """IBVI on two moons (the task's default recipe, 60 epochs to keep it short), exact buffers
    against bfloat16 factor buffers, three seeds: the difference of each test metric is below
    a tenth of the seed-to-seed standard deviation of the exact runs. Rounding the buffer
    (≤ 2^-9 relative per step) perturbs the weights far less than a different seed does;
    measured with the full recipes over 10 seeds: differences ≤ 2e-4 against seed standard
    deviations of 2e-3 to 0.3 (kernels module docstring)."""
    from variational_nets.experiment import ExperimentConfig, evaluate, fit_experiment

    metrics = {}
    for mode in ("exact", "bfloat16"):
        for seed in range(3):
            cfg = ExperimentConfig(task="two-moons", seed=seed, epochs=60, factor_momentum=mode)
            metrics[mode, seed] = evaluate(fit_experiment(cfg, quiet=True)).metrics
    for name in ("accuracy", "nll", "brier"):
        exact = np.array([getattr(metrics["exact", s], name) for s in range(3)])
        diff = np.array([getattr(metrics["bfloat16", s], name) for s in range(3)]) - exact
        assert np.abs(diff).max() < 0.1 * exact.std(ddof=1), (name, diff, exact)
