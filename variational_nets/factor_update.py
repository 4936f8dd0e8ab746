r"""The NumPy factor update: momentum SGD on a covariance factor with gradient ``g zᵀ``.

One step of ``torch.optim.SGD`` (dampening 0, no Nesterov, no weight decay) on a factor ``S``
(..., R) whose gradient is the outer product ``g zᵀ`` (``g`` of the mean tensor's shape, ``z``
(R,) the mini-batch's noise; layout in :mod:`variational_nets.covariances`):

.. math::

    b \leftarrow m\,b + g z^\top, \qquad S \leftarrow S - \eta\, b

computed per element as ``buf *= momentum; buf += g z; factor -= lr * buf``, without forming
``g zᵀ`` for the whole factor. With ``z = None`` the gradient ``g`` is given in full (the
closed-form last layer, whose factor gradient is not an outer product). A bfloat16 buffer
(:mod:`variational_nets.bfloat16`) runs the same step in float32 on the decoded buffer and stores
it rounded: ``b = m·float32(buf) + g zᵀ``; ``buf ← bfloat16(b)``; ``S ← S − η b`` with the
unrounded ``b``.

There is one step per buffer format (:func:`_exact_step`, :func:`_bfloat16_step`); on
C-contiguous NumPy arrays of one float dtype it runs in row blocks of about 64k elements, so each
block of ``buf`` and ``factor`` is read from memory once and updated in cache with a block-sized
temporary; elsewhere (CuPy without the kernel, other layouts) on the whole arrays. Both give the
same values (``einsum``'s outer product writes an exact zero as +0 where a broadcast multiply may
write −0). :func:`fused_factor_momentum_update_reference` is the validated NumPy reference the
CUDA kernel (:mod:`variational_nets.kernels`) is tested against. Cost ``O(size(factor))``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .bfloat16 import BFLOAT16_BITS, bfloat16_from_float32, bfloat16_to_float32
from .validation import bad_value, is_cupy_array

__all__ = ["update_in_place", "fused_factor_momentum_update_reference", "check_update",
           "check_numpy_memory", "check_shapes"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Every pair in which at least one array is written: none may overlap.
WRITTEN_PAIRS = (("factor", "buf"), ("factor", "g"), ("factor", "z"), ("buf", "g"), ("buf", "z"))

#: Elements per block of the NumPy update: three blocks (buffer, factor, temporary) of 64k
#: float32/float64 values stay within a 0.75–1.5 MB cache.
BLOCK_ELEMENTS = 1 << 16


def check_shapes(factor, buf, g, z):
    """Refuse arrays whose shapes or buffer dtype do not fit one factor update.

    Parameters
    ----------
    factor, buf : arrays (..., R)
    g : array, ``factor.shape[:-1]`` (with ``z``) or ``factor.shape`` (``z=None``)
    z : array (R,) or None

    Raises
    ------
    TypeError
        For non-arrays, or a buffer that is neither of the factor's dtype nor uint16
        (bfloat16 patterns, with a float32 factor).
    ValueError
        For shapes that do not fit.
    """
    for name, a in (("factor", factor), ("buf", buf), ("g", g)) + ((("z", z),) if z is not None else ()):
        if not (hasattr(a, "shape") and hasattr(a, "dtype")):
            raise TypeError(f"invalid {name}: expected an array (numpy or cupy), "
                            f"got {type(a).__name__}")
    if factor.ndim < 1:
        raise bad_value("factor", "an array of shape (..., R)", got=f"shape {tuple(factor.shape)}")
    if tuple(buf.shape) != tuple(factor.shape):
        raise bad_value("buf", f"the factor's shape {tuple(factor.shape)}", got=f"shape {tuple(buf.shape)}")
    if buf.dtype != factor.dtype and not (buf.dtype == BFLOAT16_BITS and factor.dtype == np.float32):
        raise TypeError(f"invalid buf: expected dtype {factor.dtype} (the factor's) or uint16 "
                        f"(bfloat16 patterns, float32 factor), got {buf.dtype}")
    if z is None:
        if tuple(g.shape) != tuple(factor.shape):
            raise bad_value("g", f"the factor's shape {tuple(factor.shape)} (z=None: the full "
                                 "gradient)", got=f"shape {tuple(g.shape)}")
        return
    if z.ndim != 1 or z.shape[0] != factor.shape[-1]:
        raise bad_value("z", f"shape ({factor.shape[-1]},), the factor's rank", got=f"shape {tuple(z.shape)}")
    if tuple(g.shape) != tuple(factor.shape[:-1]):
        raise bad_value("g", f"shape {tuple(factor.shape[:-1])} (the factor's without its rank)",
                        got=f"shape {tuple(g.shape)}")


def update_in_place(factor, buf, g, z, lr, momentum) -> None:
    """The factor update on NumPy or CuPy arrays, in place, without the CUDA kernel.

    Parameters
    ----------
    factor, buf : arrays (..., R)
        ``buf`` of the factor's dtype, or uint16 (bfloat16 patterns) with a float32 factor.
    g : array
        ``factor.shape[:-1]`` with ``z``; ``factor.shape`` with ``z=None``.
    z : array (R,) or None
    lr, momentum : float

    Raises
    ------
    TypeError, ValueError
        From :func:`check_shapes`.
    """
    check_shapes(factor, buf, g, z)
    if buf.dtype == BFLOAT16_BITS:
        step, scalar = _bfloat16_step, np.float32
    else:
        step, scalar = _exact_step, None
    if _blockable(factor, buf, g, z):
        scalar = factor.dtype.type
        _in_blocks(step, factor, buf, g, z, scalar(lr), scalar(momentum))
    elif scalar is not None:
        step(factor, buf, g, z, scalar(lr), scalar(momentum))
    else:
        step(factor, buf, g, z, lr, momentum)


def _blockable(factor, buf, g, z):
    arrays = (factor, buf, g) if z is None else (factor, buf, g, z)
    return (factor.dtype in _DTYPES and factor.size > 0
            and all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays)
            and all(a.dtype == factor.dtype for a in arrays if a is not buf)
            and (buf.dtype == factor.dtype or buf.dtype == BFLOAT16_BITS))


def _in_blocks(step, factor, buf, g, z, lr, momentum):
    """Run ``step`` on row blocks of the ``(P, R)`` views (``P`` mean parameters), in place."""
    R = factor.shape[-1]
    F, B = factor.reshape(-1, R), buf.reshape(-1, R)
    G = g.reshape(-1, R) if z is None else g.reshape(-1)
    rows = max(1, BLOCK_ELEMENTS // R)
    tmp = np.empty((min(rows, F.shape[0]), R), dtype=factor.dtype)
    for start in range(0, F.shape[0], rows):
        stop = min(start + rows, F.shape[0])
        step(F[start:stop], B[start:stop], G[start:stop], z, lr, momentum, tmp[:stop - start])


def _exact_step(factor, buf, g, z, lr, momentum, tmp=None):
    """``buf = m·buf + g zᵀ (or + g); factor −= lr·buf``; ``tmp``: a NumPy row block's scratch."""
    buf *= momentum
    if tmp is None:
        buf += g if z is None else g[..., None] * z
        factor -= lr * buf
        return
    if z is None:
        buf += g
    else:
        # einsum's outer product: 1.5× faster than the broadcast multiply, whose inner loop is
        # only R long (benchmarks/README.md)
        np.einsum("i,j->ij", g, z, out=tmp)
        buf += tmp
    np.multiply(buf, lr, out=tmp)
    factor -= tmp


def _bfloat16_step(factor, bits, g, z, lr, momentum, tmp=None):
    """The same step on a bfloat16 buffer: float32 arithmetic, the stored buffer rounded."""
    b = bfloat16_to_float32(bits)
    b *= momentum
    if z is None:
        b += g
    else:
        b += g[..., None].astype(np.float32, copy=False) * z.astype(np.float32, copy=False)
    bfloat16_from_float32(b, out=bits)
    b *= lr
    factor -= b


def _check_scalar(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (as in torch.optim.SGD), got {value}")
    return value


def check_update(factor, buf, g, z, lr, momentum):
    """The checks of the reference and the CUDA kernel (one float dtype for all arrays).

    Parameters
    ----------
    factor, buf, g, z, lr, momentum
        As for :func:`fused_factor_momentum_update_reference`.

    Returns
    -------
    (lr, momentum)
        Cast to the arrays' dtype.

    Raises
    ------
    TypeError, ValueError
        As listed for :func:`fused_factor_momentum_update_reference`.
    """
    arrays = {"factor": factor, "buf": buf, "g": g, "z": z}
    for name, a in arrays.items():
        if not (hasattr(a, "shape") and hasattr(a, "dtype")):
            raise TypeError(f"{name} must be an array (numpy or cupy), got {type(a).__name__}")
    kinds = {name: is_cupy_array(a) for name, a in arrays.items()}
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


def check_numpy_memory(factor, buf, g, z):
    """Refuse read-only ``factor``/``buf`` and written arrays that share memory (NumPy).

    Parameters
    ----------
    factor, buf, g, z : numpy.ndarray

    Raises
    ------
    ValueError
        For a read-only array or an overlap.
    """
    for name, a in (("factor", factor), ("buf", buf)):
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only; the update is in place")
    named = {"factor": factor, "buf": buf, "g": g, "z": z}
    for na, nb in WRITTEN_PAIRS:
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
    (module docstring): ``b = m·float32(buf) + g zᵀ`` in float32, then
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


    Raises
    ------
    TypeError
        Non-array input, mixed NumPy/CuPy arrays, dtypes other than one shared float32 or
        float64, non-real ``lr``/``momentum``.
    ValueError
        Shapes that do not match ``factor.shape == buf.shape == g.shape + (R,)``, ``R < 1``,
        negative or non-finite ``lr``/``momentum`` (or ones that overflow the dtype), read-only
        or overlapping arrays.

    Notes
    -----
    Cost ``O(PR)`` time with ``P = g.size``, in row blocks of about 64k elements (a block-sized
    temporary, no factor-sized one) for C-contiguous arrays. NaN or inf inside the arrays
    propagate, as in PyTorch.
    """
    lr, momentum = check_update(factor, buf, g, z, lr, momentum)
    if is_cupy_array(factor):
        raise TypeError("the reference takes numpy arrays; use fused_factor_momentum_update "
                        "for cupy arrays")
    check_numpy_memory(factor, buf, g, z)
    step = _bfloat16_step if buf.dtype == BFLOAT16_BITS else _exact_step
    if _blockable(factor, buf, g, z):
        _in_blocks(step, factor, buf, g, z, lr, momentum)
    else:
        step(factor, buf, g, z, lr, momentum)
