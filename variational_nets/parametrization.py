"""Standard (SP) and maximal-update (μP) parametrizations of a variational MLP.

A parametrization is a strategy object that answers two questions for every trainable tensor:
its initial standard deviation and the multiplier of the base step size. Mean tensors follow the
table of THEORY.md §3 (``n_in``, ``n_out`` = fan-in, fan-out; a bias has fan-in 1):

==================== ============ ============ =========== ============ =============
parameter            std, SP      std, μP      SGD ×, SP   SGD ×, μP    Adam ×, μP
==================== ============ ============ =========== ============ =============
input-layer weight   1/√n_in      1/√n_in      1           n_out        1
hidden weight        1/√n_in      1/√n_in      1           1            1/n_in
output-layer weight  1/√n_in      1/n_in       1           1/n_in       1/n_in
bias (any layer)     1            1            1           n_out        1
==================== ============ ============ =========== ============ =============

(Adam under SP uses multiplier 1 everywhere.) Covariance tensors inherit from their mean tensor
(std ``σ``, multiplier ``α``): a covariance factor of rank ``R`` gets std ``σ/√R`` and multiplier
``α/R``; a diagonal scale gets ``σ`` and ``α``. The ``1/R`` keeps the function-space move of a
factor step ``O(1)`` in the rank (a step moves a sample by about ``η R g``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PARAMETRIZATIONS = ("mup", "sp")
OPTIMIZERS = ("sgd", "adam")
ROLES = ("input", "hidden", "output")
KINDS = ("weight", "bias")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"invalid {name}: expected one of {', '.join(choices)}, got {value!r}")


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"invalid {name}: expected a positive integer, got {value!r}")


@dataclass(frozen=True)
class Parametrization:
    """SP or μP for SGD or Adam.

    Parameters
    ----------
    name : {"mup", "sp"}
    optimizer : {"sgd", "adam"}

    Raises
    ------
    ValueError
        For an unknown name or optimizer, or (in the methods) an unknown kind/role or a
        non-positive fan-in, fan-out or rank.
    """

    name: str = "mup"
    optimizer: str = "sgd"

    def __post_init__(self):
        _check_choice("parametrization (--parametrization)", self.name, PARAMETRIZATIONS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)

    def _check(self, kind, role, fan_in, fan_out):
        _check_choice("kind", kind, KINDS)
        _check_choice("role", role, ROLES)
        _check_positive_int("fan_in", fan_in)
        _check_positive_int("fan_out", fan_out)

    def init_std(self, kind: str, role: str, fan_in: int, fan_out: int) -> float:
        """Initial standard deviation of a mean tensor (``kind`` "weight" or "bias")."""
        self._check(kind, role, fan_in, fan_out)
        if kind == "bias":
            return 1.0
        if self.name == "mup" and role == "output":
            return 1.0 / fan_in
        return 1.0 / math.sqrt(fan_in)

    def lr_multiplier(self, kind: str, role: str, fan_in: int, fan_out: int) -> float:
        """Multiplier of the base step size for a mean tensor."""
        self._check(kind, role, fan_in, fan_out)
        if self.name == "sp":
            return 1.0
        if self.optimizer == "sgd":
            if kind == "bias" or role == "input":
                return float(fan_out)
            if role == "hidden":
                return 1.0
            return 1.0 / fan_in
        if kind == "bias" or role == "input":
            return 1.0
        return 1.0 / fan_in

    @staticmethod
    def factor_init_std(mean_std: float, rank: int) -> float:
        """Init std ``σ/√R`` of a rank-``R`` covariance factor whose mean tensor has std ``σ``."""
        _check_positive_int("rank (--rank)", rank)
        return mean_std / math.sqrt(rank)

    @staticmethod
    def factor_lr_multiplier(mean_multiplier: float, rank: int) -> float:
        """Step multiplier ``α/R`` of a rank-``R`` factor whose mean tensor has multiplier ``α``."""
        _check_positive_int("rank (--rank)", rank)
        return mean_multiplier / rank
