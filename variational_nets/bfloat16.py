"""bfloat16 momentum buffers: the codec between float32 values and bfloat16 bit patterns.

NumPy has no bfloat16 type, so a bfloat16 array is stored as its 16-bit patterns (dtype
:data:`BFLOAT16_BITS`, uint16): the upper half of the float32 with the same sign, exponent and
top 7 mantissa bits. Decoding is exact; encoding rounds to nearest, ties to even (relative error
at most ``2⁻⁹``), exactly as the CUDA kernel's ``float_to_bfloat16``
(:mod:`variational_nets.kernels`). Both functions work on NumPy and CuPy arrays.
"""
from __future__ import annotations

import numpy as np

from .validation import array_namespace, bad_type

__all__ = ["BFLOAT16_BITS", "bfloat16_to_float32", "bfloat16_from_float32"]

#: dtype of a bfloat16 array: the 16-bit patterns.
BFLOAT16_BITS = np.dtype(np.uint16)


def bfloat16_to_float32(bits, out=None):
    """The float32 values of bfloat16 bit patterns (exact: the patterns become the upper halves).

    Parameters
    ----------
    bits : array of uint16 (NumPy or CuPy)
    out : float32 array of the same shape and module, optional

    Returns
    -------
    float32 array
        The exact values, in ``out`` when it is given.

    Raises
    ------
    TypeError
        For an array that is not uint16.
    """
    xp = array_namespace(bits)
    if getattr(bits, "dtype", None) != BFLOAT16_BITS:
        raise bad_type("bits", "an array of dtype uint16 (bfloat16 patterns)", bits)
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
        The rounded bit patterns; ``out`` is filled and returned when it is given.

    Raises
    ------
    TypeError
        For an array that is not float32.
    """
    xp = array_namespace(x)
    if getattr(x, "dtype", None) != np.float32:
        raise bad_type("x", "a float32 array", x)
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
