r"""What a trainer under test is: the calling convention, its result, and two adapters.

A **trainer** is any callable

.. code-block:: python

    trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options) -> TrainerResult | (mean, factor)

that starts IBVI at the prior ``N(prior_mean, prior_factor · prior_factorᵀ)`` and takes ``steps``
optimizer steps on the expected loss of the linear model (docs/theory.md §1),

.. math::

    ℓ̄(μ, L) = E_{w \sim N(μ, LL^T)} \|y - Xw\|^2 = \|y - Xμ\|^2 + \|XL\|_F^2 ,

sum of squares without ½, no KL term, no weight decay. ``lr`` is the step on that loss (a
trainer whose loss carries ½ or a mean over rows converts it). Arrays arrive as float64 NumPy
arrays: ``X`` ``(n, d)``, ``y`` ``(n,)``, ``prior_mean`` ``(d,)``, ``prior_factor`` ``(d, r)``;
``seed`` is an int that fixes every random draw of the run. ``steps = 0`` returns the prior.
The keyword options (:class:`TrainerOptions`) say what to run: ``optimizer`` ("gd", "sgd" with
``batch_size`` rows per step and gradients scaled by ``n/b``, "momentum" in the heavy-ball form of
``torch.optim.SGD``), ``momentum``, ``mc_samples`` (0: the closed-form expected loss; ``M ≥ 1``:
``M`` reparametrized samples ``w = μ + Lz`` per step, shared by every row of the batch),
``step_multipliers`` (per-coordinate ``D``: ``μ ← μ − ηD∇_μ``, ``L ← L − η_L D∇_L``),
``lr_factor`` (the factor's step ``η_L``) and ``record_every`` (record a trace every that many
steps; 0: no trace wanted). A trainer that cannot do what an option asks raises ``ValueError``.

The result is the final mean ``(d,)`` and factor ``(d, r)`` and, optionally, a
:class:`TrainerTrace` of recorded steps. Trainers that keep their state in framework tensors
subclass :class:`TensorTrainer` and write three small methods; :func:`reference_trainer` is
:func:`linear_theory.simulate` behind this convention.
"""
from __future__ import annotations

import abc
import numbers
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

import linear_theory as lt
from linear_theory.simulate import OPTIMIZERS

__all__ = ["Trainer", "TrainerOptions", "TrainerResult", "TrainerTrace", "TensorTrainer", "TrainerError",
           "reference_trainer", "as_result"]


class TrainerError(RuntimeError):
    """A trainer broke the calling convention (wrong output type or shapes) or raised.

    The checks catch it and report the check as failed with the message (never a crash).
    """


def _frozen(array) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


def _float_array(name: str, value, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions (non-finite entries allowed: a diverged run)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TrainerError(f"{name} must be a real array convertible to float64, got {type(value).__name__}") from exc
    if array.ndim != ndim:
        raise TrainerError(f"{name} must be {ndim}-D, got shape {array.shape}")
    return array


@dataclass(frozen=True)
class TrainerTrace:
    """The trainer's state at recorded steps (include step 0 and the last step).

    Parameters
    ----------
    steps : (T,) int array
        The recorded steps, strictly increasing and non-negative.
    means : (T, d) array
        The mean at each recorded step.
    factors : (T, d, r) array
        The factor at each recorded step.

    Raises
    ------
    TrainerError
        For inconsistent shapes or steps that are not strictly increasing non-negative integers.
    """

    steps: np.ndarray
    means: np.ndarray
    factors: np.ndarray

    def __post_init__(self):
        steps = np.asarray(self.steps)
        if steps.ndim != 1 or steps.size == 0 or not np.issubdtype(steps.dtype, np.integer):
            raise TrainerError(f"trace steps must be a non-empty 1-D integer array, got {steps.dtype} of shape "
                               f"{steps.shape}")
        if steps[0] < 0 or np.any(np.diff(steps) <= 0):
            raise TrainerError("trace steps must be non-negative and strictly increasing")
        means = _float_array("trace means", self.means, 2)
        factors = _float_array("trace factors", self.factors, 3)
        if means.shape[0] != steps.size or factors.shape[0] != steps.size or factors.shape[1] != means.shape[1]:
            raise TrainerError(f"trace shapes disagree: steps {steps.shape}, means {means.shape}, "
                               f"factors {factors.shape} (want (T,), (T, d), (T, d, r))")
        object.__setattr__(self, "steps", _frozen(steps).astype(np.int64))
        object.__setattr__(self, "means", _frozen(means))
        object.__setattr__(self, "factors", _frozen(factors))


@dataclass(frozen=True)
class TrainerResult:
    """What a trainer returns: the final mean ``(d,)``, factor ``(d, r)`` and an optional trace.

    Non-finite entries are kept (a diverged run is a result, judged by the checks).

    Parameters
    ----------
    mean : (d,) array
        The final mean.
    factor : (d, r) array
        The final factor ``L`` of the covariance ``LLᵀ``.
    trace : TrainerTrace, optional
        The state at recorded steps, when the trainer records one.

    Raises
    ------
    TrainerError
        For arrays of the wrong number of dimensions or a ``trace`` that is not a
        :class:`TrainerTrace`.
    """

    mean: np.ndarray
    factor: np.ndarray
    trace: TrainerTrace | None = None

    def __post_init__(self):
        object.__setattr__(self, "mean", _frozen(_float_array("mean", self.mean, 1)))
        object.__setattr__(self, "factor", _frozen(_float_array("factor", self.factor, 2)))
        if self.trace is not None and not isinstance(self.trace, TrainerTrace):
            raise TrainerError(f"trace must be a TrainerTrace or None, got {type(self.trace).__name__}")


def as_result(output, d: int, r: int) -> TrainerResult:
    """A trainer's return value as a :class:`TrainerResult` of mean ``(d,)`` and factor ``(d, r)``.

    Parameters
    ----------
    output : TrainerResult or tuple
        What the trainer returned: a :class:`TrainerResult` or a ``(mean, factor)`` pair.
    d, r : int
        The prior's dimension and factor width.

    Returns
    -------
    TrainerResult
        ``output`` itself, or the pair wrapped in one.

    Raises
    ------
    TrainerError
        For any other type, or shapes (of the result or its trace) that do not match the prior.
    """
    if isinstance(output, TrainerResult):
        result = output
    elif isinstance(output, tuple) and len(output) == 2:
        result = TrainerResult(*output)
    else:
        raise TrainerError("a trainer must return a TrainerResult or a (mean, factor) tuple, got "
                           f"{type(output).__name__}")
    if result.mean.shape != (d,) or result.factor.shape != (d, r):
        raise TrainerError(f"the trainer returned mean {result.mean.shape} and factor {result.factor.shape}; "
                           f"the prior has mean ({d},) and factor ({d}, {r})")
    trace = result.trace
    if trace is not None and (trace.means.shape[1:] != (d,) or trace.factors.shape[1:] != (d, r)):
        raise TrainerError(f"the trace holds means {trace.means.shape} and factors "
                           f"{trace.factors.shape}; want (T, {d}) and (T, {d}, {r})")
    return result


@dataclass(frozen=True)
class TrainerOptions:
    """The keyword options every trainer receives (see the module docstring).

    Parameters
    ----------
    optimizer : {"gd", "sgd", "momentum"}, optional
        Full-batch GD, mini-batch SGD or heavy-ball momentum.
    batch_size : int, optional
        Rows per step: required for ``"sgd"``, optional for ``"momentum"`` (mini-batch heavy ball),
        ``None`` means the full batch.
    momentum : float, optional
        Heavy-ball coefficient in ``[0, 1)`` (``v ← m v + g``, ``θ ← θ − η v``); used by ``"momentum"``.
    mc_samples : int, optional
        0 for the closed-form expected loss, ``M ≥ 1`` for ``M`` reparametrized samples per step.
    step_multipliers : (d,) array, optional
        Positive per-coordinate multipliers ``D`` of the steps of mean and factor rows.
    lr_factor : float, optional
        Step of the factor (default: ``lr``).
    record_every : int, optional
        Record a trace every that many steps (and at steps 0 and ``steps``); 0: no trace.

    Raises
    ------
    ValueError
        For an unknown optimizer, ``"sgd"`` without a batch size (or ``"gd"`` with one), a
        momentum outside ``[0, 1)``, negative counts, non-positive steps or multipliers.
    TypeError
        For values of the wrong type.
    """

    optimizer: str = "gd"
    batch_size: int | None = None
    momentum: float = 0.9
    mc_samples: int = 0
    step_multipliers: np.ndarray | None = None
    lr_factor: float | None = None
    record_every: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.optimizer == "sgd" and self.batch_size is None:
            raise ValueError("optimizer='sgd' needs batch_size (rows per step)")
        if self.optimizer == "gd" and self.batch_size is not None:
            raise ValueError("optimizer='gd' is full batch; use optimizer='sgd' with batch_size")
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("mc_samples", self.mc_samples, minimum=0)
        _check_int("record_every", self.record_every, minimum=0)
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, numbers.Real) \
                or not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"momentum must be a number in [0, 1), got {self.momentum!r}")
        if self.lr_factor is not None and (isinstance(self.lr_factor, bool) or not isinstance(
                self.lr_factor, numbers.Real) or not np.isfinite(self.lr_factor) or self.lr_factor <= 0):
            raise ValueError(f"lr_factor must be a finite positive number, got {self.lr_factor!r}")
        if self.step_multipliers is not None:
            multipliers = np.asarray(self.step_multipliers, dtype=np.float64)
            if multipliers.ndim != 1 or multipliers.size == 0 or not np.all(np.isfinite(multipliers)) \
                    or not np.all(multipliers > 0):
                raise ValueError("step_multipliers must be a non-empty 1-D array of positive finite numbers")
            object.__setattr__(self, "step_multipliers", _frozen(multipliers))

    def as_dict(self) -> dict:
        """The options as the keywords a trainer is called with.

        Returns
        -------
        dict
            ``{"optimizer", "batch_size", "momentum", "mc_samples", "step_multipliers",
            "lr_factor", "record_every"}``, ready for ``**``.
        """
        return {"optimizer": self.optimizer, "batch_size": self.batch_size, "momentum": self.momentum,
                "mc_samples": self.mc_samples, "step_multipliers": self.step_multipliers,
                "lr_factor": self.lr_factor, "record_every": self.record_every}


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


# The Parameters section documents a call of the protocol; numpydoc would check it against a constructor.
@runtime_checkable
class Trainer(Protocol):  # numpydoc ignore=PR01,PR02
    """The calling convention of a trainer under test (see the module docstring).

    A protocol: nothing is constructed from it. The parameters below are those of a call
    ``trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options)``.

    Parameters
    ----------
    X : (n, d) array
        The inputs, float64.
    y : (n,) array
        The targets, float64.
    prior_mean : (d,) array
        The mean of the prior, where the run starts.
    prior_factor : (d, r) array
        The factor of the prior's covariance ``prior_factor · prior_factorᵀ``.
    lr : float
        The mean's step on ``‖y − Xμ‖² + ‖XL‖²_F``.
    steps : int
        Optimizer steps, ``≥ 0``.
    seed : int
        Fixes every random draw of the run.
    **options
        The keywords of :class:`TrainerOptions`.

    Returns
    -------
    TrainerResult or (mean, factor)
        The final mean ``(d,)`` and factor ``(d, r)``, with an optional trace.
    """

    def __call__(self, X: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_factor: np.ndarray,
                 lr: float, steps: int, seed: int, **options) -> TrainerResult | tuple:
        ...


class TensorTrainer(abc.ABC):
    """Adapter for a trainer that holds the mean and factor in its own tensors (PyTorch, JAX, …).

    Subclass it and write three methods; the base class is then a :class:`Trainer`: it calls
    :meth:`start`, then :meth:`step` ``steps`` times, reads :meth:`state` at the recorded steps
    and returns a :class:`TrainerResult` with a :class:`TrainerTrace`.

    .. code-block:: python

        class MyTrainer(TensorTrainer):
            def start(self, X, y, prior_mean, prior_factor, lr, seed, options):
                ...  # build tensors from the float64 arrays, the optimizer, the generator
            def step(self):
                ...  # one optimizer step
            def state(self):
                return mean_tensor.detach().numpy(), factor_tensor.detach().numpy()

    One instance runs one training at a time (:meth:`start` resets it), so it is not thread-safe.
    """

    @abc.abstractmethod
    def start(self, X: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_factor: np.ndarray,
              lr: float, seed: int, options: TrainerOptions) -> None:
        """Set the state to the prior and build the optimizer for a run with these options.

        Parameters
        ----------
        X : (n, d) array
            The inputs, float64, to copy into the trainer's tensors.
        y : (n,) array
            The targets, float64.
        prior_mean : (d,) array
            The mean of the prior: the starting mean.
        prior_factor : (d, r) array
            The factor of the prior's covariance: the starting factor.
        lr : float
            The mean's step (see :class:`Trainer`).
        seed : int
            Fixes every random draw of the run.
        options : TrainerOptions
            The checked keyword options of the call.
        """

    @abc.abstractmethod
    def step(self) -> None:
        """Take one optimizer step."""

    @abc.abstractmethod
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """The current mean and factor.

        Returns
        -------
        mean : (d,) array
            Copied out of the trainer's tensors.
        factor : (d, r) array
            Copied out of the trainer's tensors.
        """

    def __call__(self, X, y, prior_mean, prior_factor, lr, steps, seed, **options) -> TrainerResult:
        """Run :meth:`start`, ``steps`` × :meth:`step`, and record :meth:`state` (see :class:`Trainer`).

        Parameters
        ----------
        X, y : array_like
            The inputs ``(n, d)`` and targets ``(n,)``, as in :class:`Trainer`.
        prior_mean, prior_factor : array_like
            The prior's mean ``(d,)`` and factor ``(d, r)``, as in :class:`Trainer`.
        lr : float
            The mean's step, handed to :meth:`start`.
        steps : int
            How many times :meth:`step` is called, ``≥ 0``.
        seed : int
            Handed to :meth:`start`, which seeds the trainer's generator with it.
        **options
            Checked as :class:`TrainerOptions` before :meth:`start` receives them.

        Returns
        -------
        TrainerResult
            The final state, and a :class:`TrainerTrace` when ``record_every`` is positive.

        Raises
        ------
        ValueError
            For bad options or a negative ``steps``.
        TypeError
            For options or a ``steps`` of the wrong type.
        """
        options = TrainerOptions(**options)
        _check_int("steps", steps, minimum=0)
        self.start(X, y, prior_mean, prior_factor, lr, seed, options)
        every = options.record_every
        recorded, means, factors = [], [], []

        def record(t):
            mean, factor = self.state()
            recorded.append(t)
            means.append(np.array(mean, dtype=np.float64))
            factors.append(np.array(factor, dtype=np.float64))

        if every:
            record(0)
        for t in range(1, steps + 1):
            self.step()
            if every and (t % every == 0 or t == steps):
                record(t)
        mean, factor = self.state()
        trace = TrainerTrace(np.array(recorded), np.stack(means), np.stack(factors)) if every else None
        return TrainerResult(mean, factor, trace)


def reference_trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options) -> TrainerResult:
    """:func:`linear_theory.simulate` behind the trainer convention (the kit's own reference).

    The factor family is ``"full"`` for a ``d × d`` prior factor and ``"lowrank"`` for fewer
    columns. No trace is returned: ``simulate`` records summaries, not states, so the checks
    replay shorter runs (a seeded run's first ``t`` steps are the ``t``-step run). Cost: that of
    :func:`linear_theory.simulate`, ``O(b·d·r·(1 + M))`` per step (``b`` rows per step,
    ``M`` MC samples).

    Parameters
    ----------
    X : (n, d) array
        The inputs, :func:`linear_theory.simulate`'s ``X``.
    y : (n,) array
        The targets, its ``y``.
    prior_mean : (d,) array
        The mean of the prior.
    prior_factor : (d, r) array
        The factor of the prior's covariance, ``r ≤ d``.
    lr : float
        The mean's step, :func:`linear_theory.simulate`'s ``lr``.
    steps : int
        Optimizer steps, ``≥ 0``, :func:`linear_theory.simulate`'s ``steps``.
    seed : int
        Seeds :func:`linear_theory.simulate`'s generator.
    **options
        The keywords of :class:`TrainerOptions`, passed on to :func:`linear_theory.simulate`.

    Returns
    -------
    TrainerResult
        The final mean and factor, without a trace.

    Raises
    ------
    ValueError
        For options :func:`linear_theory.simulate` rejects (e.g. a prior factor wider than ``d``).
    TypeError
        For options of the wrong type.
    """
    options = TrainerOptions(**options)
    prior = lt.Gaussian(prior_mean, prior_factor)
    family = "full" if prior.width == prior.dim else "lowrank"
    multipliers = {} if options.step_multipliers is None else {"step_multipliers": options.step_multipliers}
    run = lt.simulate(X, y, prior, family=family, optimizer=options.optimizer, lr=lr, steps=steps,
                      lr_factor=options.lr_factor, batch_size=options.batch_size, mc_samples=options.mc_samples,
                      momentum=options.momentum, seed=seed, record_every=max(steps, 1), **multipliers)
    return TrainerResult(run.final.mean, run.final.factor)
