"""Tests of the fused factor update (variational_nets.kernels).

Three routes are compared with the NumPy reference:

* an independent formulation written out here: the explicit outer product ``g zᵀ`` and the
  two-step ``torch.optim.SGD`` update (``buf = m buf + grad``, ``param = param - lr buf``),
  and the closed form of the iteration for a constant gradient;
* the CUDA source itself, compiled for the CPU with a small host shim (needs g++) and run
  thread by thread with the launch configuration the GPU path uses: this checks its indexing
  and arithmetic here, where no GPU is present;
* the CuPy kernel on a GPU (``xp`` fixture / ``gpu`` marker; skipped cleanly without one).

Why exact equality where it is asserted: every route performs, per element, the same
correctly rounded IEEE-754 multiplications, additions and subtractions in the same order
(the CUDA source is compiled with contraction into FMAs disabled, ``--fmad=false`` on the GPU,
``-ffp-contract=off`` here, and keeps subnormals), so the results agree bit for bit. A
difference of even one ulp therefore means different arithmetic, which the test should catch.
"""
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from variational_nets.factor_update import check_update
from variational_nets import kernels
from variational_nets.kernels import (
    fused_factor_momentum_update,
    fused_factor_momentum_update_reference,
)

REPO = Path(__file__).resolve().parents[2]


def make_state(rng, g_shape, rank, dtype):
    factor = rng.standard_normal(g_shape + (rank,)).astype(dtype)
    buf = rng.standard_normal(g_shape + (rank,)).astype(dtype)
    return factor, buf


def draws(rng, g_shape, rank, dtype, steps):
    return [(rng.standard_normal(g_shape).astype(dtype), rng.standard_normal(rank).astype(dtype))
            for _ in range(steps)]


def torch_like_steps(factor, buf, gz_pairs, lr, momentum):
    """torch.optim.SGD's update written out: materialize grad = g zᵀ, then two steps.

    ``buf`` is None for PyTorch's first step (``buf = grad.clone()``).
    """
    dtype = factor.dtype.type
    lr, momentum = dtype(lr), dtype(momentum)
    param = factor.copy()
    buf = None if buf is None else buf.copy()
    for g, z in gz_pairs:
        grad = np.multiply.outer(g, z)
        buf = grad.copy() if buf is None else momentum * buf + grad
        param = param - lr * buf
    return param, buf


g_shapes = st.one_of(
    st.tuples(st.integers(1, 40)),
    st.tuples(st.integers(1, 7), st.integers(1, 7)),
)
# the factor state of the reference tests: rank, dtype and the seed of its draws
ranks = st.integers(1, 32)
float_dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=40)
@given(g_shape=g_shapes, rank=ranks, dtype=float_dtypes, momentum=st.sampled_from([0.0, 0.9]),
       lr=st.sampled_from([1e-3, 0.1, 1.0]), steps=st.integers(1, 4), seed=seeds)
def test_reference_equals_explicit_outer_product_and_torch_two_step(
        g_shape, rank, dtype, momentum, lr, steps, seed):
    rng = np.random.default_rng(seed)
    factor, buf = make_state(rng, g_shape, rank, dtype)
    pairs = draws(rng, g_shape, rank, dtype, steps)
    expected_factor, expected_buf = torch_like_steps(factor, buf, pairs, lr, momentum)
    for g, z in pairs:
        fused_factor_momentum_update_reference(factor, buf, g, z, lr, momentum)
    assert factor.dtype == dtype and buf.dtype == dtype
    # Exact: the same rounded operations in the same order (module docstring).
    np.testing.assert_array_equal(buf, expected_buf)
    np.testing.assert_array_equal(factor, expected_factor)


@settings(max_examples=20)
@given(g_shape=g_shapes, rank=ranks, dtype=float_dtypes, momentum=st.sampled_from([0.0, 0.9]), seed=seeds)
def test_zero_buffer_gives_pytorch_first_step(g_shape, rank, dtype, momentum, seed):
    # PyTorch starts the buffer as a copy of the first gradient; a zero buffer must agree.
    rng = np.random.default_rng(seed)
    factor, _ = make_state(rng, g_shape, rank, dtype)
    pairs = draws(rng, g_shape, rank, dtype, 3)
    expected_factor, expected_buf = torch_like_steps(factor, None, pairs, 0.05, momentum)
    buf = np.zeros_like(factor)
    for g, z in pairs:
        fused_factor_momentum_update_reference(factor, buf, g, z, 0.05, momentum)
    np.testing.assert_array_equal(buf, expected_buf)
    np.testing.assert_array_equal(factor, expected_factor)


@settings(max_examples=20)
@given(g_shape=g_shapes, rank=ranks, dtype=float_dtypes, momentum=st.sampled_from([0.0, 0.5, 0.9]),
       steps=st.integers(1, 12), seed=seeds)
def test_constant_gradient_matches_closed_form(g_shape, rank, dtype, momentum, steps, seed):
    """Heavy ball with a constant gradient G and b_0 = 0:
    b_k = G (1 - m^k)/(1 - m),  S_k = S_0 - lr G sum_{i=1..k} (1 - m^i)/(1 - m)."""
    rng = np.random.default_rng(seed)
    lr = 0.03
    factor0, _ = make_state(rng, g_shape, rank, dtype)
    g, z = draws(rng, g_shape, rank, dtype, 1)[0]
    factor, buf = factor0.copy(), np.zeros_like(factor0)
    for _ in range(steps):
        fused_factor_momentum_update_reference(factor, buf, g, z, lr, momentum)
    grad = np.multiply.outer(g.astype(np.float64), z.astype(np.float64))
    lr64, m64 = float(dtype(lr)), float(dtype(momentum))
    weights = [sum(m64**j for j in range(i)) for i in range(1, steps + 1)]
    expected_buf = grad * weights[-1]
    expected_factor = factor0.astype(np.float64) - lr64 * grad * sum(weights)
    # Rounding: each step adds at most four roundings of relative size eps/2 to quantities
    # bounded by |S_0| + lr k |G| / (1 - m) (for the factor) and k |G| (for the buffer);
    # 4 k eps times that bound is a safe envelope, and far below any algorithmic error.
    eps = np.finfo(dtype).eps
    buf_bound = steps * np.abs(grad)
    factor_bound = np.abs(factor0.astype(np.float64)) + lr64 * steps * buf_bound
    assert np.all(np.abs(buf - expected_buf) <= 4 * steps * eps * buf_bound)
    assert np.all(np.abs(factor - expected_factor) <= 4 * steps * eps * factor_bound)


def test_dispatch_on_numpy_is_the_reference():
    rng = np.random.default_rng(0)
    factor, buf = make_state(rng, (5, 3), 4, np.float64)
    g, z = draws(rng, (5, 3), 4, np.float64, 1)[0]
    f_ref, b_ref = factor.copy(), buf.copy()
    fused_factor_momentum_update_reference(f_ref, b_ref, g, z, 0.1, 0.9)
    fused_factor_momentum_update(factor, buf, g, z, 0.1, 0.9, xp=np)
    np.testing.assert_array_equal(factor, f_ref)
    np.testing.assert_array_equal(buf, b_ref)


# --- the CUDA source, compiled for the CPU --------------------------------------------------

_HOST_SHIM = r"""
#include <cstring>
struct kernel_dim3 { unsigned x, y, z; };
static kernel_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
// CUDA's bit casts, as the C++ way to reinterpret a float's bits
static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
"""

_HOST_DRIVER = r"""
// Runs every thread of the grid one after another. Each element is written by exactly one
// thread when the indexing is right, so the serial order cannot change the result; an element
// visited twice or never shows up as a mismatch with the reference.
extern "C" void run_{suffix}({T}* factor, {B}* buf, const {T}* g, const {T}* z, {T} lr,
                             {T} momentum, long long n_rows, long long rank,
                             unsigned gx, unsigned bx, unsigned by)
{{
    gridDim = kernel_dim3{{gx, 1, 1}};
    blockDim = kernel_dim3{{bx, by, 1}};
    for (unsigned b = 0; b < gx; ++b)
        for (unsigned ty = 0; ty < by; ++ty)
            for (unsigned tx = 0; tx < bx; ++tx) {{
                blockIdx = kernel_dim3{{b, 0, 0}};
                threadIdx = kernel_dim3{{tx, ty, 0}};
                fused_factor_momentum_update_{suffix}(factor, buf, g, z, lr, momentum,
                                                       n_rows, rank);
            }}
}}
"""


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the CUDA source for the CPU")
    src = _HOST_SHIM
    for dtype, buffer in (("float32", "same"), ("float64", "same"), ("float32", "bfloat16")):
        ctype = kernels._CTYPES[dtype][0]
        suffix = kernels.kernel_suffix(dtype, buffer)
        src += kernels.kernel_source(dtype, buffer) + _HOST_DRIVER.format(
            T=ctype, B="unsigned short" if buffer == "bfloat16" else ctype, suffix=suffix)
    work = tmp_path_factory.mktemp("host_kernel")
    (work / "kernel.cpp").write_text(src)
    lib = work / "kernel.so"
    # -ffp-contract=off mirrors --fmad=false; -O1 keeps the build fast.
    subprocess.run([cxx, "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(lib),
                    str(work / "kernel.cpp")], check=True, capture_output=True)
    return ctypes.CDLL(str(lib))


def run_host_kernel(lib, factor, buf, g, z, lr, momentum, max_blocks=kernels._MAX_BLOCKS):
    ctype = kernels._CTYPES[factor.dtype.name][0]
    buffer = "bfloat16" if buf.dtype == kernels.BFLOAT16_BITS else "same"
    suffix = kernels.kernel_suffix(factor.dtype, buffer)
    cscalar = ctypes.c_float if ctype == "float" else ctypes.c_double
    ptr = np.ctypeslib.ndpointer(dtype=factor.dtype, flags="C_CONTIGUOUS")
    buf_ptr = np.ctypeslib.ndpointer(dtype=buf.dtype, flags="C_CONTIGUOUS")
    fn = getattr(lib, f"run_{suffix}")
    fn.restype = None
    fn.argtypes = [ptr, buf_ptr, ptr, ptr, cscalar, cscalar, ctypes.c_longlong,
                   ctypes.c_longlong, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
    grid, block = kernels._launch_config(g.size, z.size, max_blocks)
    fn(factor, buf, np.ascontiguousarray(g), z, float(lr), float(momentum), g.size, z.size,
       grid[0], block[0], block[1])
    return grid, block


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("g_shape,rank,max_blocks", [
    ((1,), 1, kernels._MAX_BLOCKS),
    ((1000,), 1, kernels._MAX_BLOCKS),      # 256 rows per block, last block partly idle
    ((37, 11), 16, kernels._MAX_BLOCKS),    # two rows per warp
    ((300,), 17, kernels._MAX_BLOCKS),      # rank that does not divide 256
    ((53,), 256, kernels._MAX_BLOCKS),      # one row per block
    ((9, 2), 300, kernels._MAX_BLOCKS),     # rank above the block size: loop over the rank
    ((401,), 16, 3),                        # grid-stride loop over rows
    ((64,), 700, 5),                        # both loops
])
def test_cuda_source_on_host_equals_reference(host_kernels, dtype, g_shape, rank, max_blocks):
    rng = np.random.default_rng(hash((g_shape, rank)) % 2**32)
    factor, buf = make_state(rng, g_shape, rank, dtype)
    f_ref, b_ref = factor.copy(), buf.copy()
    for step, (g, z) in enumerate(draws(rng, g_shape, rank, dtype, 3)):
        momentum = 0.0 if step == 0 else 0.9
        fused_factor_momentum_update_reference(f_ref, b_ref, g, z, 0.07, momentum)
        lr_c, m_c = check_update(factor, buf, g, z, 0.07, momentum)
        grid, block = run_host_kernel(host_kernels, factor, buf, g, z, lr_c, m_c, max_blocks)
    assert block[0] * block[1] <= kernels._THREADS_PER_BLOCK
    np.testing.assert_array_equal(buf, b_ref)
    np.testing.assert_array_equal(factor, f_ref)


def test_launch_config_covers_every_row_once():
    for n_rows, rank in [(1, 1), (255, 1), (257, 1), (1000, 16), (1000, 17), (7, 257)]:
        (gx, _, _), (bx, by, _) = kernels._launch_config(n_rows, rank)
        assert bx * by <= kernels._THREADS_PER_BLOCK
        assert bx == min(rank, kernels._THREADS_PER_BLOCK)
        assert gx * by >= n_rows > (gx - 1) * by  # enough blocks, none entirely idle


# --- the CuPy kernel (GPU only) --------------------------------------------------------------

def gpu_present() -> bool:
    try:
        import cupy
        return bool(cupy.cuda.is_available())
    except Exception:
        return False


def to_numpy(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.mark.parametrize("dtype,buffer", [(np.float32, "same"), (np.float64, "same"),
                                          (np.float32, "bfloat16")])
@pytest.mark.parametrize("g_shape,rank", [((1,), 1), ((513, 7), 16), ((1000,), 17),
                                          ((40, 3), 32), ((33,), 300)])
def test_backend_equals_reference(xp, dtype, buffer, g_shape, rank):
    rng = np.random.default_rng(7)
    factor, buf = make_state(rng, g_shape, rank, dtype)
    if buffer == "bfloat16":  # the buffer as bfloat16 patterns (see the section further down)
        buf = kernels.bfloat16_from_float32(buf)
    pairs = draws(rng, g_shape, rank, dtype, 3)
    f_ref, b_ref = factor.copy(), buf.copy()
    f_x, b_x = xp.asarray(factor), xp.asarray(buf)
    for step, (g, z) in enumerate(pairs):
        momentum = 0.0 if step == 0 else 0.9
        fused_factor_momentum_update_reference(f_ref, b_ref, g, z, 0.01, momentum)
        fused_factor_momentum_update(f_x, b_x, xp.asarray(g), xp.asarray(z), 0.01, momentum,
                                     xp=xp if step % 2 else None)
    # Exact for float32 and float64 alike (module docstring): a one-ulp difference would mean
    # the kernel was compiled with contraction or flush-to-zero, or indexes wrongly.
    np.testing.assert_array_equal(to_numpy(b_x), b_ref)
    np.testing.assert_array_equal(to_numpy(f_x), f_ref)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_grid_stride_and_subnormals(dtype):
    import cupy

    rng = np.random.default_rng(3)
    factor, buf = make_state(rng, (1001,), 16, dtype)
    tiny = np.finfo(dtype).tiny
    # Values whose products are subnormal: flush-to-zero would show up as a mismatch.
    buf[:10] = tiny * 0.5
    g, z = draws(rng, (1001,), 16, dtype, 1)[0]
    g[:10] = tiny * 3
    if dtype == np.float32:
        # CuPy appends -ftz=true to every RawKernel compile, after the caller's options, so
        # float32 subnormal operands and results are flushed to zero on the GPU (float64 is not
        # affected). Model that exactly: the same operations, each result flushed.
        def flush(x):
            return np.where(np.abs(x) < tiny, dtype(0), x).astype(dtype)

        lr32, m32 = dtype(0.5), dtype(0.25)
        b_ref = flush(flush(m32 * flush(buf)) + flush(flush(g)[:, None] * flush(z)))
        f_ref = flush(flush(factor) - flush(lr32 * b_ref))
    else:
        f_ref, b_ref = factor.copy(), buf.copy()
        fused_factor_momentum_update_reference(f_ref, b_ref, g, z, 0.5, 0.25)
    f_c, b_c = cupy.asarray(factor), cupy.asarray(buf)
    lr_c, m_c = check_update(f_c, b_c, cupy.asarray(g), cupy.asarray(z), 0.5, 0.25)
    kernels._launch(f_c, b_c, cupy.asarray(g), cupy.asarray(z), lr_c, m_c, max_blocks=2)
    np.testing.assert_array_equal(b_c.get(), b_ref)
    np.testing.assert_array_equal(f_c.get(), f_ref)


@pytest.mark.gpu
def test_cupy_bad_input():
    import cupy

    factor = cupy.zeros((6, 4), dtype=cupy.float32)
    buf = cupy.zeros((6, 4), dtype=cupy.float32)
    g = cupy.ones(6, dtype=cupy.float32)
    z = cupy.ones(4, dtype=cupy.float32)
    with pytest.raises(TypeError, match="all be numpy or all cupy"):
        fused_factor_momentum_update(factor, buf, g.get(), z, 0.1, 0.9)
    with pytest.raises(TypeError, match="xp is numpy"):
        fused_factor_momentum_update(factor, buf, g, z, 0.1, 0.9, xp=np)
    strided = cupy.zeros((6, 8), dtype=cupy.float32)[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        fused_factor_momentum_update(strided, buf, g, z, 0.1, 0.9)
    with pytest.raises(ValueError, match="share memory"):
        fused_factor_momentum_update(factor, factor.reshape(6, 4), g, z, 0.1, 0.9)
    with pytest.raises(TypeError, match="dtype"):
        fused_factor_momentum_update(factor, buf.astype(cupy.float64), g, z, 0.1, 0.9)


# --- bad input (NumPy) ----------------------------------------------------------------------

def valid_args(dtype=np.float64):
    return (np.zeros((3, 2, 4), dtype), np.zeros((3, 2, 4), dtype), np.ones((3, 2), dtype),
            np.ones(4, dtype))


@pytest.mark.parametrize("update", [fused_factor_momentum_update,
                                    fused_factor_momentum_update_reference])
@pytest.mark.parametrize("change,error,match", [
    (lambda a: (a[0][..., :3], *a[1:]), ValueError, "factor must have shape"),
    (lambda a: (a[0], a[1][:2], *a[2:]), ValueError, "buf must have shape"),
    (lambda a: (*a[:3], np.ones((4, 1))), ValueError, "z must have shape"),
    (lambda a: (*a[:3], np.ones(0)), ValueError, "R >= 1"),
    (lambda a: (a[0], a[1], a[2].T, a[3]), ValueError, "factor must have shape"),
    (lambda a: (a[0], a[1].astype(np.float32), *a[2:]), TypeError, "buf has dtype float32"),
    (lambda a: tuple(x.astype(np.int64) for x in a), TypeError, "float32 or float64"),
    (lambda a: tuple(x.astype(np.float16) for x in a), TypeError, "float32 or float64"),
    (lambda a: (a[0], a[1], [1.0, 2.0], a[3]), TypeError, "g must be an array"),
    (lambda a: (a[0], a[0], a[2], a[3]), ValueError, "factor and buf share memory"),
    (lambda a: (a[0], a[1], a[1][..., 0], a[3]), ValueError, "buf and g share memory"),
])
def test_bad_arrays_raise(update, change, error, match):
    args = change(valid_args())
    with pytest.raises(error, match=match):
        update(*args, 0.1, 0.9)


@pytest.mark.parametrize("lr,momentum,error,match", [
    (float("nan"), 0.9, ValueError, "lr must be finite"),
    (0.1, float("inf"), ValueError, "momentum must be finite"),
    (-0.1, 0.9, ValueError, "lr must be >= 0"),
    (0.1, -0.5, ValueError, "momentum must be >= 0"),
    (True, 0.9, TypeError, "lr must be a real number"),
    ("0.1", 0.9, TypeError, "lr must be a real number"),
    (0.1, 1j, TypeError, "momentum must be a real number"),
    (1e39, 0.9, ValueError, "overflows float32"),
])
def test_bad_scalars_raise(lr, momentum, error, match):
    with pytest.raises(error, match=match):
        fused_factor_momentum_update(*valid_args(np.float32), lr, momentum)


def test_read_only_and_wrong_xp_raise():
    factor, buf, g, z = valid_args()
    factor.flags.writeable = False
    with pytest.raises(ValueError, match="factor is read-only"):
        fused_factor_momentum_update(factor, buf, g, z, 0.1, 0.9)
    with pytest.raises(TypeError, match="xp must be the numpy or cupy module"):
        fused_factor_momentum_update(*valid_args(), 0.1, 0.9, xp=math)


def test_failed_validation_leaves_arrays_untouched():
    factor, buf, g, z = valid_args()
    factor[:] = 1.0
    with pytest.raises(ValueError):
        fused_factor_momentum_update(factor, buf, g, z, 0.1, float("nan"))
    assert np.all(factor == 1.0) and np.all(buf == 0.0)


def test_numpy_scalars_are_accepted_and_cast():
    factor, buf, g, z = valid_args(np.float32)
    fused_factor_momentum_update(factor, buf, g, z, np.float64(0.5), np.int64(0))
    assert factor.dtype == np.float32
    np.testing.assert_array_equal(factor, np.full(factor.shape, -0.5, np.float32))


# --- the GPU benchmark without a GPU ---------------------------------------------------------

def test_gpu_benchmark_exits_cleanly_without_gpu(tmp_path):
    if gpu_present():
        pytest.skip("a GPU is present: the benchmark would run for real (run it by hand)")
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_kernel_gpu.py"),
                           "--json", str(out)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU" in proc.stdout
    record = json.loads(out.read_text())
    assert record["skipped"] and record["rows"] == []


# --- bfloat16 momentum buffer -----------------------------------------------------------------
#
# The buffer is stored as bfloat16 bit patterns (uint16); every route computes in float32,
# stores round-to-nearest-even and moves the factor by the unrounded value, so the same
# exactness argument as above applies to all of them.

_BF16_INF = 0x7F80


def bf16_round_by_comparison(x):
    """Independent bfloat16 rounding: of the two bfloat16 neighbours of each float32 value,
    take the nearer (compared in float64, where both differences are exact), ties to the even
    pattern; beyond the largest finite bfloat16 the upper neighbour is inf, valued 2^128 as IEEE
    rounding prescribes. NaN is kept a quiet NaN with its sign. Returns uint16 patterns."""
    x = np.asarray(x, np.float32)
    u = x.view(np.uint32).astype(np.int64)
    out = np.empty(x.shape, np.uint16)
    for i in np.ndindex(x.shape):
        bits, value = int(u[i]), float(x[i])
        if math.isnan(value):
            out[i] = (bits >> 16) | 0x40
            continue
        low = bits >> 16  # truncation: the neighbour towards zero
        if bits & 0xFFFF == 0 or math.isinf(value):
            out[i] = low
            continue
        high = low + 1    # the neighbour away from zero (same sign bit)
        sign = -1.0 if low & 0x8000 else 1.0
        low_value = float(np.uint32(low << 16).view(np.float32))
        high_value = (sign * 2.0**128 if high & 0x7FFF == _BF16_INF
                      else float(np.uint32(high << 16).view(np.float32)))
        d_low, d_high = abs(value - low_value), abs(high_value - value)
        out[i] = low if d_low < d_high or (d_low == d_high and low % 2 == 0) else high
    return out


special_floats = st.sampled_from([
    0.0, -0.0, 1.0, -1.0, 1 + 2.0**-8, 1 + 2.0**-7 + 2.0**-8, 1 + 2.0**-8 + 2.0**-20,
    3.3895313892515355e38, 3.39e38, 3.4e38, float(np.finfo(np.float32).max),
    float("inf"), float("-inf"), float(np.finfo(np.float32).tiny), 1e-40, -1e-45])


@settings(max_examples=60)
@given(values=st.lists(st.one_of(st.floats(width=32, allow_nan=False), special_floats),
                       min_size=1, max_size=64))
def test_bfloat16_rounding_is_nearest_even(values):
    x = np.array(values, np.float32)
    bits = kernels.bfloat16_from_float32(x)
    assert bits.dtype == np.uint16
    np.testing.assert_array_equal(bits, bf16_round_by_comparison(x))
    # decoding is exact, and representable values survive the round trip
    back = kernels.bfloat16_to_float32(bits)
    np.testing.assert_array_equal(kernels.bfloat16_from_float32(back), bits)
    finite = np.isfinite(back)
    # nearest: at most half a bfloat16 ulp (2^-8 relative to the leading bit) away
    x64, back64 = x[finite].astype(np.float64), back[finite].astype(np.float64)
    normal = np.abs(x64) >= np.finfo(np.float32).tiny
    assert np.all(np.abs(back64 - x64)[normal] <= 2.0**-8 * np.abs(x64)[normal])


def test_bfloat16_nan_and_bad_input():
    nan_bits = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32)
    x = nan_bits.view(np.float32)
    back = kernels.bfloat16_to_float32(kernels.bfloat16_from_float32(x))
    assert np.all(np.isnan(back))
    np.testing.assert_array_equal(np.signbit(back), [False, True, False, True])
    with pytest.raises(TypeError, match="float32"):
        kernels.bfloat16_from_float32(np.zeros(3))
    with pytest.raises(TypeError, match="uint16"):
        kernels.bfloat16_to_float32(np.zeros(3, np.float32))


def bf16_torch_like_steps(factor, bits, gz_pairs, lr, momentum):
    """The bfloat16-buffer update written out with the independent rounding above."""
    lr, momentum = np.float32(lr), np.float32(momentum)
    param, bits = factor.copy(), bits.copy()
    for g, z in gz_pairs:
        b = momentum * (bits.astype(np.uint32) << 16).view(np.float32) + np.multiply.outer(g, z)
        bits = bf16_round_by_comparison(b)
        param = param - lr * b
    return param, bits


@settings(max_examples=25)
@given(g_shape=g_shapes, rank=st.integers(1, 24), momentum=st.sampled_from([0.0, 0.9]),
       lr=st.sampled_from([1e-3, 0.1]), steps=st.integers(1, 3), seed=seeds)
def test_bfloat16_reference_equals_written_out_update(g_shape, rank, momentum, lr, steps, seed):
    rng = np.random.default_rng(seed)
    factor, start = make_state(rng, g_shape, rank, np.float32)
    bits = bf16_round_by_comparison(start)
    pairs = draws(rng, g_shape, rank, np.float32, steps)
    expected_factor, expected_bits = bf16_torch_like_steps(factor, bits, pairs, lr, momentum)
    for g, z in pairs:
        fused_factor_momentum_update_reference(factor, bits, g, z, lr, momentum)
    np.testing.assert_array_equal(bits, expected_bits)
    np.testing.assert_array_equal(factor, expected_factor)


def test_bfloat16_buffer_stays_within_rounding_of_the_exact_one():
    """Against the float32 buffer over 50 steps. The error obeys e_t = m e_(t-1) + r_t with a
    rounding |r_t| ≤ 2^-9 |b_t| (nearest-even to 8 significant bits), so
    |e_t| ≤ 2^-9/(1 - m) · max_t |b_t| = 2e-2 · max_t |b_t| at m = 0.9 (float32 rounding is 2^-15
    of that); measured 4e-3. The factors differ by lr times the summed buffer errors, at most
    50 lr times that bound; measured 1e-3 · max_t |b_t|."""
    rng = np.random.default_rng(11)
    factor, _ = make_state(rng, (40, 6), 8, np.float32)
    f_exact, b_exact = factor.copy(), np.zeros_like(factor)
    f_bf16, bits = factor.copy(), np.zeros(factor.shape, np.uint16)
    scale = 0.0
    for g, z in draws(rng, (40, 6), 8, np.float32, 50):
        fused_factor_momentum_update_reference(f_exact, b_exact, g, z, 0.01, 0.9)
        fused_factor_momentum_update_reference(f_bf16, bits, g, z, 0.01, 0.9)
        scale = max(scale, float(np.abs(b_exact).max()))
    b_bf16 = kernels.bfloat16_to_float32(bits)
    assert np.abs(b_bf16 - b_exact).max() <= 2.0**-9 / (1 - 0.9) * scale
    assert np.abs(f_bf16 - f_exact).max() <= 0.01 * 50 * 2.0**-9 / (1 - 0.9) * scale
    assert not np.array_equal(b_bf16, b_exact)  # it did round


@pytest.mark.parametrize("g_shape,rank,max_blocks", [
    ((1000,), 1, kernels._MAX_BLOCKS), ((37, 11), 16, kernels._MAX_BLOCKS),
    ((300,), 17, kernels._MAX_BLOCKS), ((9, 2), 300, kernels._MAX_BLOCKS), ((401,), 16, 3),
])
def test_bfloat16_cuda_source_on_host_equals_reference(host_kernels, g_shape, rank, max_blocks):
    rng = np.random.default_rng([*g_shape, rank, max_blocks])
    factor, start = make_state(rng, g_shape, rank, np.float32)
    bits = kernels.bfloat16_from_float32(start)
    bits.reshape(-1)[:2] = [0x7FC0, 0x0001]  # a NaN and a subnormal pattern
    f_ref, b_ref = factor.copy(), bits.copy()
    for step, (g, z) in enumerate(draws(rng, g_shape, rank, np.float32, 3)):
        momentum = 0.0 if step == 0 else 0.9
        fused_factor_momentum_update_reference(f_ref, b_ref, g, z, 0.07, momentum)
        lr_c, m_c = check_update(factor, bits, g, z, 0.07, momentum)
        run_host_kernel(host_kernels, factor, bits, g, z, lr_c, m_c, max_blocks)
    np.testing.assert_array_equal(bits, b_ref)
    np.testing.assert_array_equal(factor, f_ref)


@pytest.mark.gpu
def test_bfloat16_cupy_subnormals_are_flushed_as_modelled():
    import cupy

    rng = np.random.default_rng(4)
    factor, start = make_state(rng, (1001,), 16, np.float32)
    tiny = np.finfo(np.float32).tiny
    start[:10] = tiny * 0.5  # decodes to a subnormal float32
    bits = kernels.bfloat16_from_float32(start)
    g, z = draws(rng, (1001,), 16, np.float32, 1)[0]
    g[:10] = tiny * 3

    def flush(x):  # CuPy's -ftz=true (see test_cupy_grid_stride_and_subnormals)
        return np.where(np.abs(x) < tiny, np.float32(0), x).astype(np.float32)

    lr32, m32 = np.float32(0.5), np.float32(0.25)
    decoded = kernels.bfloat16_to_float32(bits)
    b = flush(flush(m32 * flush(decoded)) + flush(flush(g)[:, None] * flush(z)))
    b_ref = kernels.bfloat16_from_float32(b)
    f_ref = flush(flush(factor) - flush(lr32 * b))
    f_c, b_c = cupy.asarray(factor), cupy.asarray(bits)
    lr_c, m_c = check_update(f_c, b_c, cupy.asarray(g), cupy.asarray(z), 0.5, 0.25)
    kernels._launch(f_c, b_c, cupy.asarray(g), cupy.asarray(z), lr_c, m_c, max_blocks=2)
    np.testing.assert_array_equal(b_c.get(), b_ref)
    np.testing.assert_array_equal(f_c.get(), f_ref)


def test_bfloat16_buffer_needs_float32_factor():
    factor, _, g, z = valid_args(np.float64)
    with pytest.raises(TypeError, match="needs a float32 factor"):
        fused_factor_momentum_update(factor, np.zeros(factor.shape, np.uint16), g, z, 0.1, 0.9)
    with pytest.raises(TypeError, match="needs a float32 factor"):
        kernels.kernel_source(np.float64, "bfloat16")
    with pytest.raises(ValueError, match="buffer must be one of"):
        kernels.kernel_source(np.float32, "float16")
