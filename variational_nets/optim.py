"""SGD with momentum, with the update rule of ``torch.optim.SGD`` (dampening 0, no Nesterov,
no weight decay) and a step size per tensor:

    buf ← momentum · buf + grad      (buf starts at zero, so the first step has buf = grad)
    param ← param − lr_tensor · buf,  lr_tensor = base_lr × the tensor's step multiplier.

Each tensor is a :class:`~variational_nets.tensors.Parameter`: its multiplier, its role (a
covariance factor goes through :func:`update_factor`, whose gradient ``g zᵀ`` is never formed)
and the dtype of its momentum buffer come with it. On CuPy arrays with ``fused=True`` (the
default of :func:`sgd`) a factor update is the one-pass CUDA kernel
:func:`variational_nets.kernels.fused_factor_momentum_update`, which gives the same result as
the array expression it replaces; NumPy takes :mod:`variational_nets.factor_update`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .bfloat16 import BFLOAT16_BITS
from .covariances import FactorGrad
from .factor_update import check_shapes, update_in_place
from .model import MLP
from .validation import as_choice, as_flag, as_float, bad_type, bad_value

__all__ = ["SGD", "sgd", "update_factor", "update_dense", "FACTOR_MOMENTUM"]

#: ``"exact"``: momentum buffers in the model's dtype (PyTorch's update); ``"bfloat16"``: the
#: buffers of covariance factors as bfloat16 bit patterns.
FACTOR_MOMENTUM = ("exact", "bfloat16")


def update_factor(factor, buf, g, z, lr, momentum, xp, fused=False):
    """In-place momentum-SGD step of a covariance factor with gradient ``g[..., None] * z``.

    ``buf *= momentum; buf += g[..., None] * z; factor -= lr * buf`` without forming the
    factor-sized gradient (:mod:`variational_nets.factor_update`). A ``buf`` of dtype uint16
    holds bfloat16 patterns (:mod:`variational_nets.bfloat16`; ``sgd(...,
    factor_momentum="bfloat16")``): the same step in float32, the buffer stored rounded.

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
        Finite, ``>= 0``.
    xp : module
        ``numpy`` or ``cupy``.
    fused : bool, default False
        On CuPy, with ``z`` given: run the fused CUDA kernel
        (:func:`~variational_nets.kernels.fused_factor_momentum_update`; four factor-sized
        words of memory traffic per element instead of about eleven for the array expression,
        and no factor-sized temporaries). Ignored on NumPy.

    Raises
    ------
    TypeError, ValueError
        For arrays whose shapes or dtypes do not fit (a ``g`` or ``z`` of the wrong length, a
        buffer of another dtype), or a negative or non-finite ``lr``/``momentum``.

    Notes
    -----
    Cost ``O(size(factor))``. On NumPy with C-contiguous arrays of one float dtype the update
    runs in row blocks of about 64k elements (one pass over ``buf`` and ``factor``, a block-sized
    temporary); timings are in ``benchmarks/README.md``.
    """
    check_shapes(factor, buf, g, z)
    fused = as_flag("fused", fused)
    lr = as_float("lr", lr, low=0)
    momentum = as_float("momentum", momentum, low=0)
    if fused and z is not None and xp is not np:
        # The kernel wants C-contiguous g and z of the factor's dtype: at most a P-sized copy (the
        # factor is R times larger), and the same casts the in-place array expression makes.
        kernels.fused_factor_momentum_update(
            factor, buf, xp.ascontiguousarray(g, dtype=factor.dtype),
            xp.ascontiguousarray(z, dtype=factor.dtype), lr, momentum, xp=xp)
        return
    update_in_place(factor, buf, g, z, lr, momentum)


def update_dense(param, buf, grad, lr, momentum):
    """In-place momentum-SGD step of a mean (or scale) tensor: same rule as :func:`update_factor`.

    Parameters
    ----------
    param, buf, grad : arrays of one shape
    lr, momentum : float
    """
    buf *= momentum
    buf += grad
    param -= lr * buf


@dataclass
class SGD:
    """Momentum-SGD state: base step, momentum, per-tensor multipliers and buffers.

    Built by :func:`sgd`; mutated in place by :meth:`step` (it is optimizer *state*, not a result).

    Parameters
    ----------
    lr, momentum : float
    multipliers : dict
        Step multiplier of each tensor, by name.
    buffers : dict
        Momentum buffer of each tensor, by name.
    steps : int, default 0
        Steps taken.
    fused : bool, default True
        Use the fused CUDA kernel for factor updates on CuPy (see :func:`update_factor`).
    model_id : int or None, default None
        ``id`` of the model the state was built for; :meth:`step` refuses another model.
    """

    lr: float
    momentum: float
    multipliers: dict
    buffers: dict = field(default_factory=dict)
    steps: int = 0
    fused: bool = True
    model_id: int | None = None

    def step(self, model, grads: dict):
        """Apply one update to every tensor of ``model`` from ``grads`` (keys of named_parameters).

        Parameters
        ----------
        model : MLP
            The model this state was built for.
        grads : dict
            A gradient for every trainable tensor (arrays, or :class:`FactorGrad` for factors).
            Frozen tensors (``trainable=False``, :meth:`~variational_nets.model.MLP.freeze`) are
            skipped: their values and momentum buffers stay as they are.

        Raises
        ------
        KeyError
            When a trainable tensor has no gradient (none may be left out of the update).
        ValueError
            For a model other than the one the state was built for.
        """
        if self.model_id is not None and id(model) != self.model_id:
            raise bad_value("model", "the model this optimizer state was built for",
                            got=f"another {type(model).__name__}")
        xp = model.xp
        tensors = {name: t for name, t in model.tensors().items() if t.trainable}
        missing = [name for name in tensors if name not in grads]
        if missing:  # checked before any update so that a failed step changes nothing
            raise KeyError(f"no gradient for trainable tensors {', '.join(missing)}")
        for name, tensor in tensors.items():
            lr = self.lr * self.multipliers[name]
            buf = self.buffers[name]
            g = grads[name]
            if isinstance(g, FactorGrad):
                update_factor(tensor.value, buf, g.g, g.z, lr, self.momentum, xp, fused=self.fused)
            elif tensor.is_factor:
                update_factor(tensor.value, buf, g, None, lr, self.momentum, xp)
            else:
                if getattr(g, "shape", None) != tensor.value.shape:
                    raise bad_value("grads", f"a gradient of shape {tensor.value.shape} for {name}",
                                    got=type(g).__name__ if not hasattr(g, "shape")
                                    else f"shape {g.shape}")
                update_dense(tensor.value, buf, g, lr, self.momentum)
        self.steps += 1


def sgd(model, lr: float, momentum: float = 0.9, fused: bool = True,
        factor_momentum: str = "exact") -> SGD:
    """Momentum-SGD state for ``model`` with the model's step multipliers.

    Parameters
    ----------
    model : MLP
        Its tensors' step multipliers scale ``lr`` per tensor.
    lr : float
        Base step size (positive, finite).
    momentum : float, default 0.9
        In ``[0, 1)``.
    fused : bool, default True
        Update the covariance factors of a CuPy model with the fused CUDA kernel (same result
        as ``False``, less memory traffic); it changes nothing on NumPy.
    factor_momentum : {"exact", "bfloat16"}, default "exact"
        ``"bfloat16"`` (float32 models) stores the momentum buffers of covariance factors as
        bfloat16 bit patterns: 6 instead of 8 bytes of optimizer state per factor element, the
        arithmetic still float32, the stored buffer rounded to nearest-even (relative error
        ``≤ 2⁻⁹``). ``"exact"`` keeps PyTorch's update: buffers in the model's dtype.

    Returns
    -------
    SGD

    Raises
    ------
    ValueError
        For a step size that is not positive and finite, a momentum outside ``[0, 1)``, a
        trainable tensor without a step multiplier, an unknown ``factor_momentum`` or
        ``"bfloat16"`` with a float64 model.
    TypeError
        For ``fused`` that is not a bool.
    """
    if not isinstance(model, MLP):
        raise bad_type("model", "an MLP", model)
    lr = as_float("lr", lr, low=0, low_open=True)
    momentum = as_float("momentum", momentum, low=0, high=1, high_open=True)
    fused = as_flag("fused", fused)
    as_choice("factor_momentum", factor_momentum, FACTOR_MOMENTUM)
    if factor_momentum == "bfloat16" and model.dtype != np.float32:
        raise bad_value("factor_momentum", "'exact' for a float64 model (bfloat16 buffers need "
                                           "a float32 model)", factor_momentum)
    tensors = model.tensors()
    missing = sorted(name for name, t in tensors.items() if t.multiplier is None)
    if missing:
        raise ValueError(f"trainable tensors without a step multiplier: {', '.join(missing)}")
    buffers = {}
    for name, t in tensors.items():
        if factor_momentum == "bfloat16" and t.is_factor:
            t = t.with_momentum_dtype("bfloat16")
        # bfloat16 pattern 0 is +0.0, so zeroed buffers start at zero either way
        buffers[name] = (model.xp.zeros(t.value.shape, dtype=BFLOAT16_BITS)
                         if t.momentum_dtype == "bfloat16" else model.xp.zeros_like(t.value))
    return SGD(lr, momentum, {name: t.multiplier for name, t in tensors.items()}, buffers,
               fused=fused, model_id=id(model))
