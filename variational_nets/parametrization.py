"""Parametrizations of a variational MLP: standard (SP), maximal-update (μP), NTP.

A parametrization is a strategy object that answers two questions for a trainable tensor,
described by a :class:`~variational_nets.tensors.TensorSpec`: its initial standard deviation and
the multiplier of the base step size. Mean tensors follow the table of ``docs/theory.md §3``
(``n_in``, ``n_out`` = fan-in, fan-out; a bias has fan-in 1):

==================== ============ ============ =========== ============ =============
parameter            std, SP      std, μP      SGD ×, SP   SGD ×, μP    Adam ×, μP
==================== ============ ============ =========== ============ =============
input-layer weight   1/√n_in      1/√n_in      1           n_out        1
hidden weight        1/√n_in      1/√n_in      1           1            1/n_in
output-layer weight  1/√n_in      1/n_in       1           1/n_in       1/n_in
bias (any layer)     1            1            1           n_out        1
==================== ============ ============ =========== ============ =============

(Adam under SP uses multiplier 1 everywhere.) NTP (:class:`NeuralTangent`): SP's init std, SGD
multiplier ``1/n_in`` for every weight (``1/√n_in`` for Adam), 1 for biases. Covariance tensors inherit from their mean tensor
(std ``σ``, multiplier ``α``): a covariance factor of rank ``R`` gets std ``σ/√R`` and multiplier
``α/R``; a diagonal scale gets ``σ`` and ``α``. The ``1/R`` keeps the function-space move of a
factor step ``O(1)`` in the rank (a step moves a sample by about ``η R g``).

A new parametrization is one small class with the three mean-tensor rules (``std``, ``sgd``,
``adam``) and an entry in :data:`RULES`; the covariance rules are shared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .tensors import KINDS, TensorSpec
from .tensors import LAYER_ROLES as ROLES
from .validation import as_choice, as_float, as_int, bad_value

__all__ = ["Parametrization", "PARAMETRIZATIONS", "OPTIMIZERS", "ROLES", "KINDS"]

OPTIMIZERS = ("sgd", "adam")


class Standard:
    """SP: init std ``1/√n_in`` (bias 1), every step multiplier 1."""

    def std(self, spec):
        return 1.0 if spec.kind == "bias" else 1.0 / math.sqrt(spec.fan_in)

    def sgd(self, spec):
        return 1.0

    def adam(self, spec):
        return 1.0


class MaximalUpdate(Standard):
    """μP: the output layer's weights start at ``1/n_in``; the steps of the table above."""

    def std(self, spec):
        if spec.kind == "weight" and spec.layer == "output":
            return 1.0 / spec.fan_in
        return super().std(spec)

    def sgd(self, spec):
        if spec.kind == "bias" or spec.layer == "input":
            return float(spec.fan_out)
        return 1.0 if spec.layer == "hidden" else 1.0 / spec.fan_in

    def adam(self, spec):
        return 1.0 if spec.kind == "bias" or spec.layer == "input" else 1.0 / spec.fan_in


class NeuralTangent(Standard):
    """NTP (Jacot et al. 2018) in its effective form on the weights themselves.

    NTP writes ``W = ω/√n_in`` with ``ω ~ N(0, 1)`` and trains ``ω``; a step ``η`` on ``ω`` moves
    ``W`` by ``−(η/n_in) ∂L/∂W``. So here a weight starts at std ``1/√n_in`` and takes the step
    multiplier ``1/n_in`` under SGD (the same trajectory exactly, momentum included) and
    ``1/√n_in`` under Adam (whose step on ``ω`` has a size independent of the gradient's); a
    bias (fan-in 1, coefficient 1) keeps std 1 and multiplier 1.
    """

    def sgd(self, spec):
        return 1.0 / spec.fan_in

    def adam(self, spec):
        return 1.0 / math.sqrt(spec.fan_in)


#: The mean-tensor rules of each parametrization, by name.
RULES = {"mup": MaximalUpdate(), "sp": Standard(), "ntp": NeuralTangent()}
PARAMETRIZATIONS = tuple(RULES)


@dataclass(frozen=True)
class Parametrization:
    """A parametrization (SP, μP or NTP) for SGD or Adam.

    Parameters
    ----------
    name : {"mup", "sp", "ntp"}, default "mup"
    optimizer : {"sgd", "adam"}, default "sgd"

    Raises
    ------
    ValueError
        For an unknown name or optimizer, or (in the methods) an unknown kind/role or a
        non-positive fan-in, fan-out or rank.

    Examples
    --------
    >>> from variational_nets.tensors import TensorSpec
    >>> Parametrization("mup").lr_multiplier(TensorSpec("weight", "input", 1, 16))
    16.0
    """

    name: str = "mup"
    optimizer: str = "sgd"

    def __post_init__(self):
        as_choice("name", self.name, PARAMETRIZATIONS)
        as_choice("optimizer", self.optimizer, OPTIMIZERS)

    def init_std(self, spec, role=None, fan_in=None, fan_out=None) -> float:
        """Initial standard deviation of the tensor ``spec``.

        Parameters
        ----------
        spec : TensorSpec or {"weight", "bias"}
            The tensor; or, in the four-argument form ``init_std(kind, role, fan_in,
            fan_out)``, the kind of a mean tensor.
        role : {"input", "hidden", "output"}, optional
            The layer's position (four-argument form only).
        fan_in, fan_out : int, optional
            Four-argument form only.

        Returns
        -------
        float
            ``σ`` of a mean tensor (table above), ``σ/√R`` of a factor, ``σ`` of a scale.

        Raises
        ------
        ValueError, TypeError
            For a bad spec or bad arguments.
        """
        spec = _spec(spec, role, fan_in, fan_out)
        std = RULES[self.name].std(spec.mean())
        return self.factor_init_std(std, spec.rank) if spec.role == "factor" else std

    def lr_multiplier(self, spec, role=None, fan_in=None, fan_out=None) -> float:
        """Multiplier of the base step size for the tensor ``spec``.

        Parameters
        ----------
        spec, role, fan_in, fan_out
            As for :meth:`init_std`.

        Returns
        -------
        float
            ``α`` of a mean tensor (table above), ``α/R`` of a factor, ``α`` of a scale.

        Raises
        ------
        ValueError, TypeError
            For a bad spec or bad arguments.
        """
        spec = _spec(spec, role, fan_in, fan_out)
        rule = RULES[self.name]
        mult = (rule.sgd if self.optimizer == "sgd" else rule.adam)(spec.mean())
        return self.factor_lr_multiplier(mult, spec.rank) if spec.role == "factor" else mult

    @staticmethod
    def factor_init_std(mean_std: float, rank: int) -> float:
        """Init std ``σ/√R`` of a rank-``R`` covariance factor whose mean tensor has std ``σ``.

        Parameters
        ----------
        mean_std : float
        rank : int
            Positive.

        Returns
        -------
        float
            ``mean_std / sqrt(rank)``.

        Raises
        ------
        ValueError, TypeError
            For a rank that is not a positive integer or a std that is not positive and finite.
        """
        mean_std = as_float("mean_std", mean_std, low=0, low_open=True)
        return _positive("mean_std", mean_std / math.sqrt(as_int("rank", rank)))

    @staticmethod
    def factor_lr_multiplier(mean_multiplier: float, rank: int) -> float:
        """Step multiplier ``α/R`` of a rank-``R`` factor whose mean tensor has multiplier ``α``.

        Parameters
        ----------
        mean_multiplier : float
        rank : int
            Positive.

        Returns
        -------
        float
            ``mean_multiplier / rank``.

        Raises
        ------
        ValueError, TypeError
            For a rank that is not a positive integer or a multiplier that is not positive and
            finite.
        """
        mean_multiplier = as_float("mean_multiplier", mean_multiplier, low=0, low_open=True)
        return _positive("mean_multiplier", mean_multiplier / as_int("rank", rank))


def _positive(name, value):
    if value <= 0:  # the division by the rank underflowed
        raise bad_value(name, "a value whose share of the rank is a positive float", got="an underflow to 0")
    return value


def _spec(spec, role, fan_in, fan_out) -> TensorSpec:
    if isinstance(spec, TensorSpec):
        if (role, fan_in, fan_out) != (None, None, None):
            raise TypeError("give either a TensorSpec or (kind, role, fan_in, fan_out), not both")
        return spec
    return TensorSpec(spec, role, fan_in, fan_out)
