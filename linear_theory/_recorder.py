"""The trace recorder and the divergence guard shared by the two linear simulators (private).

A simulator records one row per recorded step as an instance of its trace dataclass holding
scalars (so the field names are checked by the dataclass itself, not spelled as strings), and
:meth:`Recorder.trace` stacks the rows into the same dataclass holding ``(k,)`` arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Generic, TypeVar

import numpy as np

#: A run is declared divergent when the expected loss exceeds this multiple of its start value.
DIVERGENCE_FACTOR = 1e8

T = TypeVar("T")


class DivergenceError(RuntimeError):
    """The iterates blew up; carries the step, the step size and the stability bound.

    Parameters
    ----------
    step : int
        The step at which divergence was detected.
    lr : float
        The (largest) step size of the run.
    bound : float
        The stability bound of the problem, for comparison.
    detail : str
        What was observed (a non-finite parameter, a loss above the ceiling).
    """

    def __init__(self, step: int, lr: float, bound: float, detail: str):
        self.step, self.lr, self.bound = step, lr, bound
        super().__init__(f"iterates diverged at step {step} ({detail}); lr={lr:.4g} while the "
                         f"stability bound of this problem is {bound:.4g}")


@dataclass
class Recorder(Generic[T]):
    """Rows of a trace dataclass ``kind`` and the divergence guard of one run.

    ``loss0`` is the expected loss at the start; a loss above ``DIVERGENCE_FACTOR · loss0`` (or a
    non-finite one) raises :class:`DivergenceError` with ``lr`` and ``bound`` in its message.
    """

    kind: type[T]
    loss0: float
    lr: float
    bound: float
    rows: list[T] = field(default_factory=list)

    @property
    def ceiling(self) -> float:
        return DIVERGENCE_FACTOR * max(self.loss0, np.finfo(float).tiny)

    def check_loss(self, step: int, loss: float) -> None:
        """Raise :class:`DivergenceError` unless ``loss`` is at most the ceiling (NaN fails too)."""
        if not loss <= self.ceiling:
            raise DivergenceError(step, self.lr, self.bound, f"expected loss {loss:.3g} > "
                                                             f"{DIVERGENCE_FACTOR:.0e} × start {self.loss0:.3g}")

    def check_finite(self, step: int, *arrays: np.ndarray) -> None:
        """Raise :class:`DivergenceError` when a parameter array holds a non-finite entry."""
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise DivergenceError(step, self.lr, self.bound, "non-finite parameters")

    def add(self, row: T) -> None:
        """Append one row (a ``kind`` instance holding scalars)."""
        self.rows.append(row)

    def trace(self) -> T:
        """The rows stacked field by field into one ``kind`` instance of ``(k,)`` arrays."""
        return self.kind(**{f.name: np.asarray([getattr(row, f.name) for row in self.rows])
                            for f in fields(self.kind)})
