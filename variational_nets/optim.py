"""SGD with momentum, with the update rule of ``torch.optim.SGD`` (dampening 0, no Nesterov,
no weight decay) and a step size per tensor:

    buf ← momentum · buf + grad      (buf starts at zero, so the first step has buf = grad)
    param ← param − lr_tensor · buf,  lr_tensor = base_lr × the tensor's μP/SP multiplier.

Covariance-factor gradients ``g zᵀ`` go through :func:`update_factor` without being formed. On
CuPy arrays with ``fused=True`` (the default of :func:`sgd`) the update is the one-pass CUDA kernel
:func:`variational_nets.kernels.fused_factor_momentum_update`, which gives the same result as the
array expression it replaces; NumPy always takes the BLAS/array path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .layers import FactorGrad


def update_factor(factor, buf, g, z, lr, momentum, xp, fused=False):
    """In-place momentum-SGD step of a covariance factor with gradient ``g[..., None] * z``.

    Reference (layout in variational_nets.layers): ``buf *= momentum; buf += g[..., None] * z; factor -= lr * buf``.
    A ``buf`` of dtype uint16 holds bfloat16 patterns (``sgd(..., factor_momentum="bfloat16")``):
    the same step in float32, the buffer stored rounded (:func:`_update_factor_bfloat16`).

    Parameters
    ----------
    factor, buf : arrays (..., R)
        Factor and its momentum buffer, updated in place.
    g : array (...)
        Gradient with respect to the sampled mean tensor (shape of ``factor`` without the last
        axis). With ``z=None``, ``g`` is instead the full factor gradient, shape of ``factor``
        (used by the closed-form last layer, whose factor gradient is not of the form ``g zᵀ``).
    z : array (R,) or None
    lr, momentum : float
    xp : module
    fused : bool, default False
        On CuPy, with ``z`` given: run the fused CUDA kernel
        (:func:`~variational_nets.kernels.fused_factor_momentum_update`; four factor-sized
        words of memory traffic per element instead of about eleven for the array expression,
        and no factor-sized temporaries). Ignored on NumPy.

    Notes
    -----
    Cost ``O(size(factor))``. On NumPy with C-contiguous arrays of one float dtype the update
    runs in row blocks of about 64k elements (:func:`_update_factor_blocked`): each block of
    ``buf`` and ``factor`` is read from memory once and updated in cache, so the whole update is
    one pass over each array with a block-sized temporary instead of the factor-sized ones of the
    array expression. It uses NumPy's own ufuncs on purpose: an earlier version called SciPy's
    BLAS (``scal``/``ger``/``axpy``), whose thread pool is separate from the one NumPy's matrix
    products use; on 2 cores the two pools oversubscribed the machine after every matrix product
    (58 ms alone, 105 ms after a GEMM, for ``P = 3.1·10⁶, R = 16``), while the blocked ufuncs
    leave NumPy's pool to the matrix products. Measured on 2 cores for that size (float32, 2026-11):
    62 ms per update with the outer product by ``einsum``, 73 ms with a broadcast multiply; the
    memory traffic alone (read and write ``buf`` and ``factor``, 800 MB) would take about 31 ms.
    Splitting the rows over two Python threads gives nothing inside a training step: after each
    matrix product OpenBLAS's worker keeps the second core busy waiting for work.
    Elsewhere (CuPy, other layouts) it is the array expression below.
    """
    if buf.dtype == kernels.BFLOAT16_BITS:
        _update_factor_bfloat16(factor, buf, g, z, lr, momentum, xp, fused)
        return
    if xp is np and _blockable(factor, buf, g, z):
        _update_factor_blocked(factor, buf, g, z, lr, momentum)
        return
    if fused and z is not None and xp is not np:
        # The kernel wants C-contiguous g and z of the factor's dtype: at most a P-sized copy (the
        # factor is R times larger), and the same casts the in-place array expression makes.
        kernels.fused_factor_momentum_update(
            factor, buf, xp.ascontiguousarray(g, dtype=factor.dtype),
            xp.ascontiguousarray(z, dtype=factor.dtype), lr, momentum, xp=xp)
        return
    buf *= momentum
    if z is None:
        buf += g
    else:
        buf += g[..., None] * z
    factor -= lr * buf


#: Elements per block of the NumPy factor update: three blocks (buffer, factor, temporary) of
#: 64k float32/float64 values stay within a 0.75–1.5 MB cache.
_BLOCK_ELEMENTS = 1 << 16


def _blockable(factor, buf, g, z):
    arrays = (factor, buf, g) if z is None else (factor, buf, g, z)
    return (factor.dtype in (np.float32, np.float64) and factor.size > 0
            and all(isinstance(a, np.ndarray) and a.dtype == factor.dtype and a.flags.c_contiguous
                    for a in arrays))


def _update_factor_blocked(factor, buf, g, z, lr, momentum):
    """``buf = m·buf + g zᵀ; factor −= lr·buf`` in cache-sized row blocks, in place.

    The rows are those of the ``(P, R)`` view (``P`` mean parameters); with ``z=None`` ``g`` has
    the factor's shape and is added as it is. Same operations, in the same order, per element
    as the array expression of :func:`update_factor`, so the same values (``einsum``'s outer
    product writes an exact zero as +0 where the broadcast multiply may write −0).
    """
    R = factor.shape[-1]
    F, B = factor.reshape(-1, R), buf.reshape(-1, R)
    G = g.reshape(-1, R) if z is None else g.reshape(-1)
    scalar = factor.dtype.type
    lr, momentum = scalar(lr), scalar(momentum)
    rows = max(1, _BLOCK_ELEMENTS // R)
    tmp = np.empty((min(rows, F.shape[0]), R), dtype=factor.dtype)
    for start in range(0, F.shape[0], rows):
        stop = min(start + rows, F.shape[0])
        b, t = B[start:stop], tmp[:stop - start]
        b *= momentum
        if z is None:
            b += G[start:stop]
        else:
            # einsum's outer product: 1.5× faster than the broadcast multiply, whose inner
            # loop is only R long (26 vs 39 µs per 64k-element block at R = 16)
            np.einsum("i,j->ij", G[start:stop], z, out=t)
            b += t
        np.multiply(b, lr, out=t)
        F[start:stop] -= t


def _update_factor_bfloat16(factor, buf, g, z, lr, momentum, xp, fused):
    """:func:`update_factor` with a bfloat16 buffer (uint16 patterns, float32 factor).

    ``b = m·float32(buf) + g zᵀ`` in float32; ``buf ← bfloat16(b)``; ``factor −= lr·b`` (the
    kernels module docstring, "bfloat16 buffer"). CuPy with ``fused`` and ``z``: the fused kernel.
    Otherwise the same operations in row blocks of about 64k elements (NumPy) or as whole-array
    expressions (CuPy), so that every route gives the kernel's values. On NumPy this saves
    memory, not time: the conversions make the update about 1.7× slower than the exact one
    (107 vs 64 ms for ``P = 3.1·10⁶, R = 16`` on 2 cores).
    """
    if factor.dtype != np.float32:
        raise TypeError(f"a bfloat16 momentum buffer needs a float32 factor, got {factor.dtype}")
    if fused and z is not None and xp is not np:
        kernels.fused_factor_momentum_update(
            factor, buf, xp.ascontiguousarray(g, dtype=factor.dtype),
            xp.ascontiguousarray(z, dtype=factor.dtype), lr, momentum, xp=xp)
        return
    R = factor.shape[-1]
    F, B = factor.reshape(-1, R), buf.reshape(-1, R)
    G = g.reshape(-1, R) if z is None else g.reshape(-1)
    lr, momentum = np.float32(lr), np.float32(momentum)
    z = None if z is None else xp.asarray(z, dtype=np.float32)
    rows = F.shape[0] if xp is not np else max(1, _BLOCK_ELEMENTS // R)
    for start in range(0, F.shape[0], rows):
        stop = min(start + rows, F.shape[0])
        b = kernels.bfloat16_to_float32(B[start:stop])
        b *= momentum
        b += G[start:stop] if z is None else G[start:stop, None].astype(np.float32, copy=False) * z
        kernels.bfloat16_from_float32(b, out=B[start:stop])
        b *= lr
        F[start:stop] -= b


def _is_factor(name: str) -> bool:
    """Whether the tensor called ``name`` (``"layer{i}.{kind}"``) is a covariance factor."""
    return name.split(".")[-1].startswith("factor_")


def update_dense(param, buf, grad, lr, momentum):
    """In-place momentum-SGD step of a mean (or scale) tensor: same rule as :func:`update_factor`."""
    buf *= momentum
    buf += grad
    param -= lr * buf


@dataclass
class SGD:
    """Momentum-SGD state: base step, momentum, per-tensor multipliers and buffers.

    Built by :func:`sgd`; mutated in place by :meth:`step` (it is optimizer *state*, not a result).
    ``fused`` selects the fused CUDA kernel for factor updates on CuPy (see :func:`update_factor`).
    """

    lr: float
    momentum: float
    multipliers: dict
    buffers: dict = field(default_factory=dict)
    steps: int = 0
    fused: bool = True

    def step(self, model, grads: dict):
        """Apply one update to every tensor of ``model`` from ``grads`` (keys of named_parameters).

        Raises
        ------
        KeyError
            When a trainable tensor has no gradient (none may be left out of the update).
        """
        xp = model.xp
        params = model.named_parameters()
        missing = [name for name in params if name not in grads]
        if missing:  # checked before any update so that a failed step changes nothing
            raise KeyError(f"no gradient for trainable tensors {', '.join(missing)}")
        for name, param in params.items():
            lr = self.lr * self.multipliers[name]
            buf = self.buffers[name]
            g = grads[name]
            if isinstance(g, FactorGrad):
                update_factor(param, buf, g.g, g.z, lr, self.momentum, xp, fused=self.fused)
            elif _is_factor(name):
                update_factor(param, buf, g, None, lr, self.momentum, xp)
            else:
                update_dense(param, buf, g, lr, self.momentum)
        self.steps += 1


FACTOR_MOMENTUM = ("exact", "bfloat16")


def sgd(model, lr: float, momentum: float = 0.9, fused: bool = True,
        factor_momentum: str = "exact") -> SGD:
    """Momentum-SGD state for ``model`` with the model's step multipliers.

    ``fused=True`` updates covariance factors of a CuPy model with the fused CUDA kernel (same
    result as ``fused=False``, less memory traffic); it changes nothing on NumPy.

    ``factor_momentum="bfloat16"`` (float32 models) stores the momentum buffers of covariance
    factors (``factor_*`` tensors) as bfloat16 bit patterns: 6 instead of 8 bytes of optimizer
    state per factor element, the arithmetic still float32, the stored buffer rounded to
    nearest-even (relative error ≤ 2⁻⁹; see :mod:`variational_nets.kernels`, "bfloat16
    buffer"). ``"exact"`` (default) keeps PyTorch's update: buffers in the model's dtype.

    Raises
    ------
    ValueError
        For a step size that is not positive and finite, a momentum outside ``[0, 1)``, a
        trainable tensor without a step multiplier, an unknown ``factor_momentum`` or
        ``"bfloat16"`` with a float64 model.
    TypeError
        For ``fused`` that is not a bool.
    """
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"invalid lr (--lr): expected a positive finite number, got {lr!r}")
    if not isinstance(momentum, (int, float)) or not 0.0 <= momentum < 1.0:
        raise ValueError(f"invalid momentum: expected a number in [0, 1), got {momentum!r}")
    if not isinstance(fused, (bool, np.bool_)):
        raise TypeError(f"fused must be True or False, got {fused!r}")
    if factor_momentum not in FACTOR_MOMENTUM:
        raise ValueError(f"invalid factor_momentum (--factor-momentum): expected one of "
                         f"{', '.join(FACTOR_MOMENTUM)}, got {factor_momentum!r}")
    if factor_momentum == "bfloat16" and model.dtype != np.float32:
        raise ValueError(f"invalid factor_momentum (--factor-momentum): bfloat16 buffers need a "
                         f"float32 model, this one is {model.dtype}")
    params = model.named_parameters()
    multipliers = model.step_multipliers()
    missing = sorted(set(params) - set(multipliers))
    if missing:
        raise ValueError(f"trainable tensors without a step multiplier: {', '.join(missing)}")
    # bfloat16 pattern 0 is +0.0, so zeroed buffers start at zero either way
    buffers = {k: model.xp.zeros(v.shape, dtype=kernels.BFLOAT16_BITS)
               if factor_momentum == "bfloat16" and _is_factor(k) else model.xp.zeros_like(v)
               for k, v in params.items()}
    return SGD(float(lr), float(momentum), dict(multipliers), buffers, fused=bool(fused))
