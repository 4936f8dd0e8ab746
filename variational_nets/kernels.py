r"""The fused CUDA kernel for the momentum-SGD step of a covariance factor, and its dispatch.

The step is the one of :mod:`variational_nets.factor_update` (its NumPy reference
:func:`~variational_nets.factor_update.fused_factor_momentum_update_reference`),

.. math::

    b \leftarrow m\,b + g z^\top, \qquad S \leftarrow S - \eta\, b,

in one pass that reads ``factor`` and ``buf`` once and writes them once (``4PR`` words of
memory traffic for a ``(P, R)`` factor, against ``6PR`` for the best unfused route), never
forming ``g zᵀ``. The kernel is compiled with ``--fmad=false`` so that every element goes
through the same IEEE operations, in the same order, as the reference: the two agree bit for
bit, except that CuPy compiles with ``-ftz=true``, which flushes float32 subnormals to zero.
A uint16 ``buf`` holds bfloat16 patterns (:mod:`variational_nets.bfloat16`). The traffic count
and measured timings are in ``benchmarks/README.md``.
"""
from __future__ import annotations

import functools

import numpy as np

from .bfloat16 import BFLOAT16_BITS, bfloat16_from_float32, bfloat16_to_float32
from .factor_update import WRITTEN_PAIRS, check_update, fused_factor_momentum_update_reference
from .validation import is_cupy_array

__all__ = ["fused_factor_momentum_update", "kernel_source", "kernel_suffix", "BUFFERS",
           # the NumPy reference and the bfloat16 codec live in their own modules
           "fused_factor_momentum_update_reference", "BFLOAT16_BITS", "bfloat16_from_float32",
           "bfloat16_to_float32"]

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

# CuPy appends -ftz=true after these (module docstring), so no --ftz option is passed.
_KERNEL_OPTIONS = ("--fmad=false",)
_CTYPES = {"float32": ("float", "f32"), "float64": ("double", "f64")}
BUFFERS = ("same", "bfloat16")


def kernel_suffix(dtype, buffer: str = "same") -> str:
    """Suffix of the kernel's name for ``dtype`` and ``buffer`` (``f32``, ``f64``, ``f32_bf16``).

    Parameters
    ----------
    dtype : float32 or float64
        The dtype of the factor and its gradient.
    buffer : {"same", "bfloat16"}, default "same"
        The momentum buffer's storage: the factor's dtype, or bfloat16 bits.

    Returns
    -------
    str
        ``f32`` or ``f64``, with ``_bf16`` for a bfloat16 buffer.

    Raises
    ------
    TypeError, ValueError
        For another dtype, an unknown buffer, or a bfloat16 buffer with float64.
    """
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
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

    Parameters
    ----------
    dtype : float32 or float64
        Sets the kernel's C type (``float`` or ``double``).
    buffer : {"same", "bfloat16"}, default "same"
        As for :func:`kernel_suffix`.

    Returns
    -------
    str
        The source of one ``extern "C"`` kernel, ``fused_factor_momentum_update_<suffix>``.

    Raises
    ------
    TypeError, ValueError
        As :func:`kernel_suffix`.
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


def fused_factor_momentum_update(factor, buf, g, z, lr, momentum, xp=None) -> None:
    r"""SGD-with-momentum step on a covariance factor, fused on the GPU, in place.

    Same update as :func:`fused_factor_momentum_update_reference`,

    .. math::

        b \leftarrow m\,b + g z^\top, \qquad S \leftarrow S - \eta\, b,

    and bit-for-bit the same result. CuPy arrays go to one CUDA kernel that reads ``factor``,
    ``buf``, ``g`` and ``z`` once and writes ``factor`` and ``buf`` once, never forming
    ``g zᵀ``: ``4PR + P + R`` words of memory traffic against ``6PR`` for the best unfused
    route (``benchmarks/README.md`` has the count). NumPy arrays go to the reference.

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


    Raises
    ------
    TypeError, ValueError
        As the reference; also arrays that do not belong to ``xp``, and on the GPU arrays
        that are not C-contiguous or live on different devices.

    Notes
    -----
    Cost: ``O(PR)`` time, ``O(1)`` extra memory on the GPU; one kernel launch, asynchronous on
    CuPy's current stream.
    """
    on_gpu = is_cupy_array(factor)
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
    lr, momentum = check_update(factor, buf, g, z, lr, momentum)
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
    for na, nb in WRITTEN_PAIRS:
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
