"""Trainable tensors as types: what a tensor is (:class:`TensorSpec`) and the tensor itself
(:class:`Parameter`: its value with the spec, init std, step multiplier and momentum-buffer dtype).

A layer keeps one :class:`Parameter` per trainable tensor; a parametrization answers "init std"
and "step multiplier" for a :class:`TensorSpec`; the optimizer reads the multiplier, the role and
the buffer dtype from the :class:`Parameter`. Nothing is decided by a tensor's name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .validation import as_choice, as_flag, as_float, as_int

__all__ = ["TensorSpec", "Parameter", "KINDS", "LAYER_ROLES", "TENSOR_ROLES", "MOMENTUM_DTYPES"]

KINDS = ("weight", "bias")
LAYER_ROLES = ("input", "hidden", "output")
#: ``mean``: a weight or bias; ``factor``: a covariance factor of rank ``R``; ``scale``: the
#: standard deviations of a diagonal (mean-field) covariance.
TENSOR_ROLES = ("mean", "factor", "scale")
#: ``same``: the momentum buffer has the tensor's dtype (PyTorch's update); ``bfloat16``: the
#: buffer is stored as bfloat16 bit patterns (float32 factors only).
MOMENTUM_DTYPES = ("same", "bfloat16")


@dataclass(frozen=True)
class TensorSpec:
    """What a trainable tensor is: everything a parametrization needs to know about it.

    Parameters
    ----------
    kind : {"weight", "bias"}
        Which mean tensor it is or belongs to.
    layer : {"input", "hidden", "output"}
        Position of its layer in the network.
    fan_in, fan_out : int
        Fan-in and fan-out of the layer (positive). A bias has ``fan_in = 1``, as in the μP
        table of ``docs/theory.md §3``.
    role : {"mean", "factor", "scale"}, default "mean"
    rank : int, default 0
        Rank ``R`` of a covariance factor (positive for ``role="factor"``, 0 otherwise).

    Raises
    ------
    ValueError, TypeError
        ``invalid <field>: ...`` for a bad field.
    """

    kind: str
    layer: str
    fan_in: int
    fan_out: int
    role: str = "mean"
    rank: int = 0

    def __post_init__(self):
        as_choice("kind", self.kind, KINDS)
        as_choice("layer", self.layer, LAYER_ROLES)
        object.__setattr__(self, "fan_in", as_int("fan_in", self.fan_in))
        object.__setattr__(self, "fan_out", as_int("fan_out", self.fan_out))
        as_choice("role", self.role, TENSOR_ROLES)
        rank = as_int("rank", self.rank, minimum=1 if self.role == "factor" else 0,
                      maximum=None if self.role == "factor" else 0)
        object.__setattr__(self, "rank", rank)

    def mean(self) -> "TensorSpec":
        """The spec of the mean tensor this one belongs to (itself for a mean tensor).

        Returns
        -------
        TensorSpec
        """
        return dataclasses.replace(self, role="mean", rank=0)


@dataclass(frozen=True)
class Parameter:
    """A trainable tensor: its value and what training needs to know about it.

    Parameters
    ----------
    value : array
        The tensor (NumPy or CuPy); the optimizer updates it in place.
    spec : TensorSpec or None
        What the tensor is; ``None`` only for a tensor added by hand (:meth:`untyped`).
    init_std : float or None
        The standard deviation it was initialised with (positive, finite).
    multiplier : float or None
        Multiplier of the base step size (positive, finite). ``None`` marks a tensor without
        one, which :func:`~variational_nets.optim.sgd` refuses.
    momentum_dtype : {"same", "bfloat16"}, default "same"
        How the optimizer stores this tensor's momentum buffer.
    trainable : bool, default True
        ``False`` freezes the tensor: :meth:`~variational_nets.optim.SGD.step` leaves its value
        and its momentum buffer as they are (:meth:`frozen`, :meth:`~variational_nets.model.MLP.freeze`).

    Raises
    ------
    ValueError, TypeError
        For a bad field (``momentum_dtype="bfloat16"`` needs a float32 factor).
    """

    value: object
    spec: TensorSpec | None
    init_std: float | None
    multiplier: float | None
    momentum_dtype: str = "same"
    trainable: bool = True

    def __post_init__(self):
        if self.spec is not None and not isinstance(self.spec, TensorSpec):
            raise TypeError(f"invalid spec: expected a TensorSpec, got {type(self.spec).__name__}")
        for name in ("init_std", "multiplier"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name,
                                   as_float(name, getattr(self, name), low=0, low_open=True))
        as_choice("momentum_dtype", self.momentum_dtype, MOMENTUM_DTYPES)
        object.__setattr__(self, "trainable", as_flag("trainable", self.trainable))
        if self.momentum_dtype == "bfloat16" and not (self.is_factor
                                                      and str(self.value.dtype) == "float32"):
            raise ValueError("invalid momentum_dtype: bfloat16 buffers are for float32 "
                             f"covariance factors, this is a {self.value.dtype} {self.role} tensor")

    @classmethod
    def untyped(cls, value) -> "Parameter":
        """A tensor added by hand: no spec, no init std, no step multiplier.

        Parameters
        ----------
        value : array
            The tensor, kept as it is (not copied).

        Returns
        -------
        Parameter
            ``value`` with no spec; :func:`~variational_nets.optim.sgd` refuses it while trainable.
        """
        return cls(value, None, None, None)

    @property
    def role(self) -> str | None:
        """``"mean"``, ``"factor"`` or ``"scale"`` (from the spec; None for an untyped tensor)."""
        return None if self.spec is None else self.spec.role

    @property
    def is_factor(self) -> bool:
        """Whether this is a covariance factor (its gradient may come as ``g zᵀ``)."""
        return self.role == "factor"

    def with_value(self, value) -> "Parameter":
        """The same tensor with another value array.

        Parameters
        ----------
        value : array
            The new value, of any shape (no check against the spec).

        Returns
        -------
        Parameter
            A copy of this parameter; spec, init std, multiplier and momentum dtype unchanged.
        """
        return dataclasses.replace(self, value=value)

    def with_momentum_dtype(self, momentum_dtype: str) -> "Parameter":
        """The same tensor (same value array) with another momentum-buffer dtype.

        Parameters
        ----------
        momentum_dtype : {"same", "bfloat16"}

        Returns
        -------
        Parameter
        """
        return dataclasses.replace(self, momentum_dtype=momentum_dtype)

    def frozen(self) -> "Parameter":
        """The same tensor (same value array) marked not trainable: the optimizer skips it.

        Returns
        -------
        Parameter
        """
        return dataclasses.replace(self, trainable=False)
