"""Sweep points and grids: the keys of a sweep's results."""
from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["AXES", "ROW_COLUMNS", "SweepPoint", "grid", "as_scalar"]

#: The axes every point has; free parameters come after them.
AXES = ("width", "lr", "seed")
#: The columns a stored row adds to its point's (see :class:`~variational_nets.sweep.SweepRow`).
ROW_COLUMNS = ("status", "error", "elapsed_s")
_RESERVED = frozenset(AXES + ROW_COLUMNS)


def as_scalar(name: str, value, *, allow_nonfinite: bool):
    """A plain Python bool/int/float/str from ``value``, or TypeError/ValueError naming ``name``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not allow_nonfinite and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    raise TypeError(f"{name} must be a bool, int, float or str, got {type(value).__name__}")


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} names must be identifiers, got {name!r}")
    if name in _RESERVED:
        raise ValueError(f"{what} name {name!r} is reserved (reserved: {sorted(_RESERVED)})")
    return name


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: width, base step size, seed and free parameters.

    Parameters
    ----------
    width : int
        Network width, ``>= 1``.
    lr : float
        Base step size, finite and ``> 0``.
    seed : int
        Seed of the point's random generator, ``>= 0``.
    params : mapping or iterable of (name, value) pairs, optional
        Free parameters (e.g. ``parametrization="mup"``): identifier names other than
        ``width``, ``lr``, ``seed``, ``status``, ``error``, ``elapsed_s``; finite scalar values.
        Stored as a tuple of pairs sorted by name, so that equal points compare and hash equal.

    Raises
    ------
    TypeError, ValueError
        Wrong types, non-positive width or step, negative seed, bad or repeated names.

    Notes
    -----
    Points are the keys of a sweep's results, so values are normalized on construction
    (``lr=1`` and ``lr=1.0`` are the same point; NumPy scalars become Python scalars).
    """

    width: int
    lr: float
    seed: int
    params: tuple = ()

    def __post_init__(self):
        width = self.width.item() if isinstance(self.width, np.generic) else self.width
        seed = self.seed.item() if isinstance(self.seed, np.generic) else self.seed
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {self.width!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        lr = self.lr
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
            raise TypeError(f"lr must be a real number, got {type(lr).__name__}")
        lr = float(lr)
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be finite and > 0, got {lr}")
        params = self.params
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        normalized = {}
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(f"params must be a mapping or (name, value) pairs, got {item!r}")
            name, value = item
            _check_name(name, "free parameter")
            if name in normalized:
                raise ValueError(f"free parameter {name!r} given twice")
            normalized[name] = as_scalar(f"free parameter {name!r}", value, allow_nonfinite=False)
        object.__setattr__(self, "width", int(width))
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "params", tuple(sorted(normalized.items())))

    def param(self, name: str):
        """Value of a free parameter.

        Parameters
        ----------
        name : str
            The free parameter's name.

        Returns
        -------
        bool, int, float or str
            The value the point was built with (a plain Python scalar).

        Raises
        ------
        KeyError
            If the point has no such parameter; the message lists the ones it has.
        """
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(f"no free parameter {name!r}; this point has {[k for k, _ in self.params]}")

    def as_dict(self) -> dict:
        """The point as one flat mapping, for tables and JSON.

        Returns
        -------
        dict
            ``{"width", "lr", "seed", *free parameters}``.
        """
        return {"width": self.width, "lr": self.lr, "seed": self.seed, **dict(self.params)}

    def label(self) -> str:
        """The point in one line, for progress lines and messages.

        Returns
        -------
        str
            ``"width=64 lr=0.1 seed=0 parametrization=mup"``.
        """
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


def _axis(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"axis {name!r} must be a sequence of values, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"axis {name!r} is empty")
    seen = []
    for v in values:
        v = as_scalar(f"axis {name!r} value", v, allow_nonfinite=False)
        if v in seen:
            raise ValueError(f"axis {name!r} repeats the value {v!r}")
        seen.append(v)
    return seen


def grid(*, width: Sequence[int], lr: Sequence[float], seed: Sequence[int],
         **free: Sequence) -> list[SweepPoint]:
    """All points of the product of the axes: ``width × lr × seed × free axes``.

    Order: ``width`` outermost, then ``lr``, ``seed``, then the free axes by name, each in the
    order given. ``len(result) = len(width) · len(lr) · len(seed) · Π len(free axis)``.

    Parameters
    ----------
    width : sequence of int
        The widths.
    lr : sequence of float
        The base step sizes.
    seed : sequence of int
        The seeds.
    **free : sequence
        Free axes by name (``parametrization=["sp", "mup"]``), each a sequence of scalars.

    Returns
    -------
    list of SweepPoint
        Every combination, in the order above.

    Raises
    ------
    TypeError, ValueError
        An axis that is not a sequence (a string is not one), is empty or repeats a value, or
        values :class:`SweepPoint` rejects.
    """
    axes = {"width": _axis("width", width), "lr": _axis("lr", lr), "seed": _axis("seed", seed)}
    names = sorted(free)
    for name in names:
        axes[name] = _axis(_check_name(name, "free parameter"), free[name])
    points = []
    for values in itertools.product(*axes.values()):
        w, step, s, *rest = values
        points.append(SweepPoint(w, step, s, tuple(zip(names, rest))))
    return points
