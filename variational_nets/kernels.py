r"""Fused GPU kernel for the SGD-with-momentum update of a covariance factor.

Why this kernel
---------------
In IBVI a variational layer with ``P`` mean parameters carries a factor ``S`` of shape
``(P, R)`` (layout: :mod:`variational_nets.layers`), ``R`` times as large as the weights. One weight sample
``θ = μ + S z`` is shared by the mini-batch, so with ``g = ∂L/∂θ`` at the sample the factor's
gradient is the outer product ``g zᵀ``. On a wide layer the step is limited by memory traffic
on ``S``, not by arithmetic (two flops per element), so the kernel to write is the one that
moves the fewest factor-sized arrays through memory.

Counting reads and writes of ``(P, R)`` arrays per optimizer step (one *word* = one element;
the ``g`` and ``z`` vectors add only ``P + R``):

=====================================================  =======  ================================
route                                                  words    passes
=====================================================  =======  ================================
PyTorch, ``torch.optim.SGD`` default (foreach)         ``9PR``  write ``g zᵀ`` (1); ``buf *= m``
                                                                (2); ``buf += grad`` (3);
                                                                ``param -= lr buf`` (3)
PyTorch with a one-pass (fused) optimizer              ``6PR``  write ``g zᵀ`` (1); read grad,
                                                                buf, param, write buf, param (5)
this kernel                                            ``4PR``  read factor, buf; write both
=====================================================  =======  ================================

So the fused kernel moves 4/6 = 2/3 of the traffic of the best unfused route (one third less)
and 4/9 ≈ 0.44 of PyTorch's default. In bytes per factor element in float32 (4-byte words):
16 B fused, 24 B unfused at best, 36 B for PyTorch's default. At ``R = 16``, ``P = 5·10⁷``
that is 12.8 GB instead of 19.2 GB (or 28.8 GB) per step: about 4.3 ms instead of 6.4 ms
(or 9.6 ms) at 3 TB/s, if every route ran at the bandwidth limit.
It also never allocates the gradient ``g zᵀ``, which saves ``P·R`` words of memory: the
factor's optimizer state drops from three factor-sized arrays (factor, buffer, gradient) to two.

The other candidate named in issue 5, sampling ``weight + factor_weight @ z`` fused with its
use, is left out: the sample alone is a matrix-vector product that reads the factor once
(``PR`` words, the minimum), which cuBLAS already does at bandwidth; fusing it with the
forward matrix product that consumes the sample would mean writing a GEMM, not a small
kernel, to save only ``2P`` words (the sample's write and read), ``1/R`` of the factor read.
This choice rests on the traffic count above, not on a profile (no GPU was available where
the kernel was written); ``benchmarks/bench_kernel_gpu.py`` measures it against the unfused
CuPy and PyTorch routes in the same run.

Numerics
--------
The kernel is compiled with ``--fmad=false``, so the compiler does not contract
``momentum * buf + g z`` into a fused multiply-add. Each element then goes through the same
correctly rounded IEEE-754 operations, in the same order, as the NumPy reference, and the two
agree bit for bit in float64 and for every normal float32 value; the tests check exactly that
(on an H200, CuPy 14.2, CUDA 13). One exception, measured there: CuPy appends ``-ftz=true`` to
every RawKernel compile after the caller's options, so **float32 subnormals** (``|x| < 1.2e-38``)
are flushed to zero on the GPU; the test models that flush exactly. Contraction would be
slightly more accurate, but equality with the reference is worth more here (a memory-bound
kernel does not get faster from FMAs).

bfloat16 buffer
---------------
Optionally (``sgd(..., factor_momentum="bfloat16")``, float32 only) the momentum buffer of a
factor is stored as bfloat16 bit patterns (uint16): the factor's optimizer state falls from 8 to
6 bytes per element, and the kernel's traffic from 16 to 12 bytes. The arithmetic stays float32:
``b = m·float32(buf) + g z`` is computed exactly as above, stored rounded to nearest-even
(relative error at most 2⁻⁹), and the factor moves by ``lr·b`` with the unrounded ``b``; the
NumPy reference does the same operations, so the two agree bit for bit as above. This is not
PyTorch's update any more (its buffer is float32), hence opt-in. Measured effect on training
(CPU, float32, the tasks' default recipes, paired by seed): on the toy regression (10 seeds) the
test Gaussian NLL moves by at most 7·10⁻⁴ and the RMSE by 2·10⁻⁵, against seed-to-seed standard
deviations of 0.30 and 0.019; on two moons (10 seeds) and the digits with rank-16 factors
(3 seeds) accuracy, NLL, Brier score and ECE agree to about 10⁻⁵ (standard deviations 2·10⁻³ to
2·10⁻²).

Measured on an NVIDIA H200 (``benchmarks/bench_kernel_gpu.py``, float32, R = 16): at
P = 5·10⁷ the fused update takes 4.18 ms (3.06 TB/s), the unfused CuPy two-step 8.40 ms,
PyTorch's foreach SGD 8.81 ms and PyTorch's fused SGD (after materializing g zᵀ) 6.29 ms.
"""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np

__all__ = [
    "BFLOAT16_BITS",
    "bfloat16_from_float32",
    "bfloat16_to_float32",
    "fused_factor_momentum_update",
    "fused_factor_momentum_update_reference",
]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# A kernel launch never needs more blocks than this to fill any GPU; beyond it the grid-stride
# loop gives each thread a few rows instead (and gridDim.x stays far below its 2^31 - 1 limit).
_MAX_BLOCKS = 1 << 20
_THREADS_PER_BLOCK = 256

_KERNEL_SOURCE = r"""
extern "C" __global__
void fused_factor_momentum_update_{suffix}(
        {T}* __restrict__ factor, {B}* __restrict__ buf,
        const {T}* __restrict__ g, const {T}* __restrict__ z,
        const {T} lr, const {T} momentum,
        const long long n_rows, const long long rank)
{{
    // threadIdx.x walks the rank and threadIdx.y the rows of a tile. The launcher sets
    // blockDim.x = rank when rank <= 256, so the linear thread id is (row - first row) * rank
    // + r: consecutive threads touch consecutive elements and every access is coalesced.
    const long long row_step = (long long)gridDim.x * blockDim.y;
    for (long long p = (long long)blockIdx.x * blockDim.y + threadIdx.y; p < n_rows;
         p += row_step) {{
        const {T} gp = g[p];
        {T}* factor_row = factor + p * rank;
        {B}* buf_row = buf + p * rank;
        for (long long r = threadIdx.x; r < rank; r += blockDim.x) {{
            // Same operations, in the same order, as the NumPy reference (compiled with
            // --fmad=false so that nothing is contracted into an FMA).
            {T} b = {load} * momentum;
            const {T} gz = gp * z[r];
            b = b + gz;
            buf_row[r] = {store};
            const {T} step = lr * b;
            factor_row[r] = factor_row[r] - step;
        }}
    }}
}}
"""

# The bfloat16 buffer: a float32 value's upper 16 bits. Decoding is exact; encoding rounds to
# nearest, ties to even, and keeps a NaN a (quiet) NaN, like bfloat16_from_float32 below.
_BFLOAT16_FUNCTIONS = r"""
__device__ __forceinline__ float bfloat16_to_float(const unsigned short bits)
{
    return __uint_as_float(((unsigned int)bits) << 16);
}

__device__ __forceinline__ unsigned short float_to_bfloat16(const float x)
{
    const unsigned int u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (unsigned short)((u >> 16) | 0x0040u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
"""

# CuPy appends -ftz=true after these (see Numerics), so no --ftz option is passed.
_KERNEL_OPTIONS = ("--fmad=false",)
# Every pair in which at least one array is written: none may overlap.
_WRITTEN_PAIRS = (("factor", "buf"), ("factor", "g"), ("factor", "z"), ("buf", "g"), ("buf", "z"))
_CTYPES = {"float32": ("float", "f32"), "float64": ("double", "f64")}
BUFFERS = ("same", "bfloat16")

#: dtype of a bfloat16 momentum buffer: the 16-bit patterns (NumPy has no bfloat16 type).
BFLOAT16_BITS = np.dtype(np.uint16)


def kernel_suffix(dtype, buffer: str = "same") -> str:
    """Suffix of the kernel's name for ``dtype`` and ``buffer`` (``f32``, ``f64``, ``f32_bf16``)."""
    name = np.dtype(dtype).name
    if name not in _CTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {name}")
    if buffer not in BUFFERS:
        raise ValueError(f"buffer must be one of {', '.join(BUFFERS)}, got {buffer!r}")
    if buffer == "bfloat16" and name != "float32":
        raise TypeError(f"a bfloat16 buffer needs a float32 factor, got {name}")
    suffix = _CTYPES[name][1]
    return suffix + ("_bf16" if buffer == "bfloat16" else "")


def kernel_source(dtype, buffer: str = "same") -> str:
    """CUDA C source of the fused kernel for ``dtype`` (float32 or float64).

    ``buffer="bfloat16"`` (float32 only) keeps the momentum buffer as bfloat16 bit patterns
    (``unsigned short``): loaded exactly as float32, rounded to nearest-even when stored.
    Exposed so that the source can be compiled and inspected without a GPU (``nvcc -ptx``).
    """
    suffix = kernel_suffix(dtype, buffer)
    ctype = _CTYPES[np.dtype(dtype).name][0]
    if buffer == "bfloat16":
        return _BFLOAT16_FUNCTIONS + _KERNEL_SOURCE.format(
            T=ctype, B="unsigned short", suffix=suffix,
            load="bfloat16_to_float(buf_row[r])", store="float_to_bfloat16(b)")
    return _KERNEL_SOURCE.format(T=ctype, B=ctype, suffix=suffix, load="buf_row[r]", store="b")


@functools.lru_cache(maxsize=None)
def _raw_kernel(dtype_name: str, buffer: str = "same"):
    # A compile cache only: CuPy compiles a RawKernel once per device on first launch.
    import cupy

    return cupy.RawKernel(
        kernel_source(dtype_name, buffer),
        f"fused_factor_momentum_update_{kernel_suffix(dtype_name, buffer)}",
        options=_KERNEL_OPTIONS,
    )


def _array_module(a):
    if _is_cupy_array(a):
        import cupy

        return cupy
    return np


def bfloat16_to_float32(bits, out=None):
    """The float32 values of bfloat16 bit patterns (exact: the patterns become the upper halves).

    Parameters
    ----------
    bits : array of uint16 (NumPy or CuPy)
    out : float32 array of the same shape and module, optional

    Returns
    -------
    float32 array
    """
    xp = _array_module(bits)
    if bits.dtype != BFLOAT16_BITS:
        raise TypeError(f"bits must have dtype uint16 (bfloat16 patterns), got {bits.dtype}")
    if out is None:
        out = xp.empty(bits.shape, dtype=xp.float32)
    if xp is np:  # one pass: the shift widens uint16 to the uint32 output
        np.left_shift(bits, np.uint32(16), out=out.view(np.uint32))
    else:
        out.view(xp.uint32)[...] = bits.astype(xp.uint32) << 16
    return out


def bfloat16_from_float32(x, out=None):
    """float32 values rounded to bfloat16 (to nearest, ties to even), as uint16 bit patterns.

    The same rounding as the CUDA kernel's ``float_to_bfloat16``: ``±inf`` stays ``±inf``,
    finite values beyond the largest bfloat16 (``≈ 3.39·10³⁸``) round to ``±inf``, a NaN stays
    a quiet NaN with its sign, subnormals round like any other value (no flush).

    Parameters
    ----------
    x : float32 array (NumPy or CuPy)
    out : uint16 array of the same shape and module, optional

    Returns
    -------
    uint16 array
    """
    xp = _array_module(x)
    if x.dtype != np.float32:
        raise TypeError(f"x must have dtype float32, got {x.dtype}")
    u = xp.ascontiguousarray(x).view(xp.uint32)
    bits = u >> 16
    bits &= 1
    bits += 0x7FFF
    bits += u  # wraps around only for NaN patterns, which are replaced below
    bits >>= 16
    is_nan = x != x
    # NumPy: look before replacing (NaN is rare, the test is one pass over booleans); CuPy:
    # replace unconditionally rather than synchronize with the host for the test
    if xp is not np or is_nan.any():
        bits = xp.where(is_nan, (u >> 16) | 0x0040, bits)
    if out is None:
        return bits.astype(BFLOAT16_BITS)
    out[...] = bits
    return out


def _is_cupy_array(a) -> bool:
    # Decides the backend without importing CuPy, which is optional and slow to import.
    return type(a).__module__.split(".")[0] == "cupy"


def _check_scalar(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (as in torch.optim.SGD), got {value}")
    return value


def _validate(factor, buf, g, z, lr, momentum):
    """Shared checks of both paths; returns (lr, momentum) cast to the arrays' dtype."""
    arrays = {"factor": factor, "buf": buf, "g": g, "z": z}
    for name, a in arrays.items():
        if not (hasattr(a, "shape") and hasattr(a, "dtype")):
            raise TypeError(f"{name} must be an array (numpy or cupy), got {type(a).__name__}")
    kinds = {name: _is_cupy_array(a) for name, a in arrays.items()}
    if len(set(kinds.values())) != 1:
        where = ", ".join(f"{n}: {'cupy' if k else 'numpy'}" for n, k in kinds.items())
        raise TypeError(f"factor, buf, g and z must all be numpy or all cupy arrays ({where})")
    dtype = factor.dtype
    if dtype not in _DTYPES:
        raise TypeError(f"factor must have dtype float32 or float64, got {dtype}")
    bfloat16_buffer = buf.dtype == BFLOAT16_BITS
    if bfloat16_buffer and dtype != np.float32:
        raise TypeError(f"a bfloat16 buffer (uint16 bit patterns) needs a float32 factor, "
                        f"got factor of dtype {dtype}")
    for name, a in arrays.items():
        if name == "buf" and bfloat16_buffer:
            continue
        if a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} (the dtype of factor"
                            f"{'; or uint16 for a bfloat16 buffer' if name == 'buf' else ''})")
    if z.ndim != 1 or z.shape[0] < 1:
        raise ValueError(f"z must have shape (R,) with R >= 1, got shape {z.shape}")
    expected = tuple(g.shape) + (z.shape[0],)
    for name in ("factor", "buf"):
        if tuple(arrays[name].shape) != expected:
            raise ValueError(
                f"{name} must have shape g.shape + (R,) = {expected}, "
                f"got {tuple(arrays[name].shape)}"
            )
    lr = _check_scalar("lr", lr)
    momentum = _check_scalar("momentum", momentum)
    cast = dtype.type
    for name, value in (("lr", lr), ("momentum", momentum)):
        with np.errstate(over="ignore"):
            if not np.isfinite(cast(value)):
                raise ValueError(f"{name}={value} overflows {dtype}")
    return cast(lr), cast(momentum)


def _check_numpy_memory(factor, buf, g, z):
    for name, a in (("factor", factor), ("buf", buf)):
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only; the update is in place")
    named = {"factor": factor, "buf": buf, "g": g, "z": z}
    for na, nb in _WRITTEN_PAIRS:
        if np.may_share_memory(named[na], named[nb]):
            raise ValueError(f"{na} and {nb} share memory; the update needs separate arrays")


def fused_factor_momentum_update_reference(factor, buf, g, z, lr, momentum) -> None:
    r"""SGD-with-momentum step on a covariance factor, in place (NumPy reference).

    With the factor's gradient ``G = g zᵀ`` (``G[..., r] = g[...] z[r]``), this is one step of
    ``torch.optim.SGD`` (dampening 0, no Nesterov, no weight decay):

    .. math::

        b \leftarrow m\,b + g z^\top, \qquad S \leftarrow S - \eta\, b

    computed as ``buf *= momentum; buf += g[..., None] * z; factor -= lr * buf``. A buffer
    that starts at zero gives ``b = g zᵀ`` on the first step, as in PyTorch.

    A ``buf`` of dtype uint16 (float32 factor only) holds the buffer as bfloat16 bit patterns
    (module docstring, "bfloat16 buffer"): ``b = m·float32(buf) + g zᵀ`` in float32, then
    ``buf ← bfloat16(b)`` (nearest, ties to even) and ``S ← S − η b`` with the unrounded ``b``.

    Parameters
    ----------
    factor, buf : numpy.ndarray, shape ``g.shape + (R,)``
        The factor ``S`` and its momentum buffer ``b``; both updated in place. ``buf`` has the
        factor's dtype, or uint16 (bfloat16 patterns) with a float32 factor.
    g : numpy.ndarray, any shape
        Gradient of the loss with respect to the mean parameters, at the weight sample.
    z : numpy.ndarray, shape ``(R,)``
        The standard normal draw of that sample.
    lr, momentum : float
        Step size ``η`` (already including any μP multiplier) and momentum ``m``; both finite
        and ``>= 0``, cast to the arrays' dtype before use.

    Cost ``O(PR)`` time with ``P = g.size``; it forms the ``(P, R)`` temporary ``g zᵀ``
    (the fused GPU kernel does not). NaN or inf inside the arrays propagate, as in PyTorch.

    Raises
    ------
    TypeError
        Non-array input, mixed NumPy/CuPy arrays, dtypes other than one shared float32 or
        float64, non-real ``lr``/``momentum``.
    ValueError
        Shapes that do not match ``factor.shape == buf.shape == g.shape + (R,)``, ``R < 1``,
        negative or non-finite ``lr``/``momentum`` (or ones that overflow the dtype), read-only
        or overlapping arrays.
    """
    lr, momentum = _validate(factor, buf, g, z, lr, momentum)
    if _is_cupy_array(factor):
        raise TypeError("the reference takes numpy arrays; use fused_factor_momentum_update "
                        "for cupy arrays")
    _check_numpy_memory(factor, buf, g, z)
    if buf.dtype == BFLOAT16_BITS:
        b = bfloat16_to_float32(buf)
        b *= momentum
        b += g[..., None] * z
        bfloat16_from_float32(b, out=buf)
        factor -= lr * b
        return
    buf *= momentum
    buf += g[..., None] * z
    factor -= lr * buf


def fused_factor_momentum_update(factor, buf, g, z, lr, momentum, xp=None) -> None:
    r"""SGD-with-momentum step on a covariance factor, fused on the GPU, in place.

    Same update as :func:`fused_factor_momentum_update_reference`,

    .. math::

        b \leftarrow m\,b + g z^\top, \qquad S \leftarrow S - \eta\, b,

    and bit-for-bit the same result. CuPy arrays go to one CUDA kernel that reads ``factor``,
    ``buf``, ``g`` and ``z`` once and writes ``factor`` and ``buf`` once, never forming
    ``g zᵀ``: ``4PR + P + R`` words of memory traffic against ``6PR`` for the best unfused
    route (see the module docstring for the count). NumPy arrays go to the reference.

    Parameters
    ----------
    factor, buf : array, shape ``g.shape + (R,)``, float32 or float64
        Updated in place; ``buf`` may be uint16 (bfloat16 patterns) with a float32 factor, which
        the kernel reads and writes as 2-byte words (``3PR`` words of 4 bytes in all). On the
        GPU they must be C-contiguous (so that the update can be in place without a copy) and on
        one device with ``g`` and ``z``.
    g : array, any shape, same dtype
    z : array, shape ``(R,)``, same dtype
    lr, momentum : float
        Finite, ``>= 0``; cast to the kernel's declared type (``float`` or ``double``).
    xp : module, optional
        ``numpy`` or ``cupy`` to insist on a backend; by default taken from the arrays.

    Cost: ``O(PR)`` time, ``O(1)`` extra memory on the GPU; one kernel launch, asynchronous on
    CuPy's current stream.

    Raises
    ------
    TypeError, ValueError
        As the reference; also arrays that do not belong to ``xp``, and on the GPU arrays
        that are not C-contiguous or live on different devices.
    """
    on_gpu = _is_cupy_array(factor)
    if xp is not None:
        wanted = getattr(xp, "__name__", "").split(".")[0]
        if wanted not in ("numpy", "cupy"):
            raise TypeError(f"xp must be the numpy or cupy module, got {xp!r}")
        if (wanted == "cupy") != on_gpu:
            raise TypeError(f"xp is {wanted} but factor is a "
                            f"{'cupy' if on_gpu else 'numpy'} array")
    if not on_gpu:
        fused_factor_momentum_update_reference(factor, buf, g, z, lr, momentum)
        return
    lr, momentum = _validate(factor, buf, g, z, lr, momentum)
    _launch(factor, buf, g, z, lr, momentum)


def _check_cupy_memory(factor, buf, g, z):
    arrays = {"factor": factor, "buf": buf, "g": g, "z": z}
    for name, a in arrays.items():
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous for the GPU kernel "
                             f"(strides {a.strides}); pass cupy.ascontiguousarray({name}) "
                             f"and keep the result, since the update is in place")
    devices = {name: a.device.id for name, a in arrays.items()}
    if len(set(devices.values())) != 1:
        raise ValueError(f"factor, buf, g and z must be on one device, got {devices}")
    # Contiguous arrays occupy [ptr, ptr + nbytes), so overlap is an interval test.
    spans = {n: (a.data.ptr, a.data.ptr + a.nbytes) for n, a in arrays.items()}
    for na, nb in _WRITTEN_PAIRS:
        (a0, a1), (b0, b1) = spans[na], spans[nb]
        if a0 < b1 and b0 < a1:
            raise ValueError(f"{na} and {nb} share memory; the update needs separate arrays")


def _launch_config(n_rows: int, rank: int, max_blocks: int = _MAX_BLOCKS):
    """(grid, block) of the fused kernel for ``n_rows`` rows of ``rank`` elements.

    With ``rank <= 256`` a block is ``(rank, 256 // rank)`` threads, so that a warp covers
    consecutive elements; a larger rank takes ``(256, 1)`` and loops over the rank.
    """
    if rank <= _THREADS_PER_BLOCK:
        block = (rank, _THREADS_PER_BLOCK // rank, 1)
    else:
        block = (_THREADS_PER_BLOCK, 1, 1)
    blocks = max(1, min(-(-n_rows // block[1]), int(max_blocks)))
    return (blocks, 1, 1), block


def _launch(factor, buf, g, z, lr, momentum, max_blocks: int = _MAX_BLOCKS) -> None:
    # lr and momentum arrive already cast to factor.dtype.type; sizes go as int64 to match
    # the kernel's `long long` (RawKernel does not check argument types).
    _check_cupy_memory(factor, buf, g, z)
    n_rows = int(g.size)
    rank = int(z.shape[0])
    if n_rows == 0:
        return
    grid, block = _launch_config(n_rows, rank, max_blocks)
    kernel = _raw_kernel(factor.dtype.name,
                         "bfloat16" if buf.dtype == BFLOAT16_BITS else "same")
    with factor.device:
        kernel(grid, block,
               (factor, buf, g, z, lr, momentum, np.int64(n_rows), np.int64(rank)))
