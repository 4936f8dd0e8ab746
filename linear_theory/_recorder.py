"""The pieces the linear simulators share (private): their run options and the mini-batch schedule,
the trace recorder, the divergence guard, the step and the loop.

A simulator checks its options with :func:`check_run_options` and records one row per recorded
step as an instance of its trace dataclass holding scalars (so the field names are checked by the
dataclass itself, not spelled as strings); :meth:`Recorder.trace` stacks the rows into the same
dataclass holding ``(k,)`` arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable, Generic, TypeVar

import numpy as np

from ._validation import as_generator, as_momentum, as_positive_float, as_positive_int, check_allocation

#: A run is declared divergent when the expected loss exceeds this multiple of its start value.
DIVERGENCE_FACTOR = 1e8

#: Full batch, mini-batches drawn without replacement, heavy ball (full batch unless batched).
OPTIMIZERS = ("gd", "sgd", "momentum")

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
        if not all([np.isfinite(a).all() for a in arrays]):  # a list: cheaper per step than a generator
            raise DivergenceError(step, self.lr, self.bound, "non-finite parameters")

    def add(self, row: T) -> None:
        """Append one row (a ``kind`` instance holding scalars)."""
        self.rows.append(row)

    def trace(self) -> T:
        """The rows stacked field by field into one ``kind`` instance of ``(k,)`` arrays."""
        return self.kind(**{f.name: np.asarray([getattr(row, f.name) for row in self.rows])
                            for f in fields(self.kind)})


def sgd_step(params: tuple, velocities: tuple, gradients: tuple, lrs: tuple, momentum: float | None):
    """One step of (heavy-ball) SGD on each parameter, as ``torch.optim.SGD``.

    With ``momentum = m``: ``v ← m v + g``, ``θ ← θ − η v``; with ``momentum = None``:
    ``θ ← θ − η g`` (velocities unchanged). Returns ``(params, velocities)`` as tuples.
    """
    if momentum is not None:
        velocities = tuple([momentum * v + g for v, g in zip(velocities, gradients)])
        gradients = velocities
    return tuple([p - lr * g for p, lr, g in zip(params, lrs, gradients)]), velocities


def as_optimizer(optimizer) -> str:
    """``optimizer`` if it is one of :data:`OPTIMIZERS`, else a ``ValueError`` naming it."""
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    return optimizer


def check_batch_size(optimizer: str, batch_size, n: int) -> int | None:
    """``batch_size`` validated for ``optimizer`` on ``n`` rows: required by ``"sgd"``, refused by ``"gd"``."""
    if optimizer == "sgd" and batch_size is None:
        raise ValueError("optimizer='sgd' needs batch_size (rows per step)")
    if optimizer == "gd" and batch_size is not None:
        raise ValueError("optimizer='gd' is full batch; use optimizer='sgd' with batch_size")
    if batch_size is not None:
        batch_size = as_positive_int("batch_size", batch_size)
        if batch_size > n:
            raise ValueError(f"batch_size must be at most n = {n}, got {batch_size}")
    return batch_size


def check_step(name: str, lr: float, bound: float, description: str) -> None:
    """Refuse, before any work, a step ``lr`` at or above ``bound`` (described by ``description``)."""
    if lr >= bound:
        raise ValueError(f"{name}={lr:.4g} is at or above the {description}; pass check_stability=False to run "
                         "it anyway")


@dataclass(frozen=True, eq=False)
class RunOptions:
    """The validated options of one simulator run.

    ``batch_size`` is ``None`` for full batches (also when it equals ``n``: no rows are drawn);
    ``record_every`` is the trace spacing of the regression simulators.
    """

    optimizer: str
    lr: float
    steps: int
    batch_size: int | None
    mc_samples: int
    momentum: float
    record_every: int
    rng: np.random.Generator

    @property
    def heavy_ball(self) -> float | None:
        """The momentum of :func:`sgd_step`: ``momentum`` for ``"momentum"``, else ``None`` (plain steps)."""
        return self.momentum if self.optimizer == "momentum" else None

    def batch(self, X: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The next mini-batch ``(X_B, targets_B, n/b)`` (rows drawn without replacement), or all rows and 1."""
        if self.batch_size is None:
            return X, targets, 1.0
        n = X.shape[0]
        rows = self.rng.choice(n, size=self.batch_size, replace=False)
        return X[rows], targets[rows], n / self.batch_size

    def records(self, step: int) -> bool:
        """Whether ``step`` is recorded: every ``record_every`` steps and the last one."""
        return step % self.record_every == 0 or step == self.steps


def check_run_options(n: int, *, optimizer, lr, steps, batch_size, mc_samples, momentum, seed, record_every=None,
                      draw_size: int | None = None) -> RunOptions:
    """The options of a run on ``n`` rows, each checked under its Python name.

    ``record_every`` defaults to ``max(1, steps // 100)``; ``draw_size`` (floats per Monte Carlo
    draw and step) refuses an ``mc_samples`` whose arrays exceed the machine's memory.
    """
    optimizer = as_optimizer(optimizer)
    lr = as_positive_float("lr", lr)
    steps = as_positive_int("steps", steps, allow_zero=True)
    mc_samples = as_positive_int("mc_samples", mc_samples, allow_zero=True)
    if draw_size is not None:
        check_allocation("mc_samples", mc_samples, draw_size)
    momentum = as_momentum(momentum)
    batch_size = check_batch_size(optimizer, batch_size, n)
    record_every = max(1, steps // 100) if record_every is None else as_positive_int("record_every", record_every)
    return RunOptions(optimizer=optimizer, lr=lr, steps=steps, batch_size=None if batch_size == n else batch_size,
                      mc_samples=mc_samples, momentum=momentum, record_every=record_every, rng=as_generator(seed))


def descend(options: RunOptions, params: tuple, lrs: tuple, gradients: Callable[[tuple], tuple],
            recorder: Recorder, record: Callable[[int, tuple], None]) -> tuple:
    """The loop of the regression simulators: ``options.steps`` steps of :func:`sgd_step` from ``params``.

    ``gradients(params)`` returns the step's gradient estimate (it draws the mini-batch and the
    Monte Carlo samples from ``options.rng``, in that order); ``record(t, params)`` adds a row to
    ``recorder`` at step 0 and wherever :meth:`RunOptions.records`. Non-finite parameters raise
    :class:`DivergenceError`. Returns the final parameters.
    """
    velocities = tuple(np.zeros_like(p) for p in params)
    record(0, params)
    # Overflow is how divergence shows up; it is detected below and raised as DivergenceError.
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, options.steps + 1):
            params, velocities = sgd_step(params, velocities, gradients(params), lrs, options.heavy_ball)
            recorder.check_finite(t, *params)
            if options.records(t):
                record(t, params)
    return params
