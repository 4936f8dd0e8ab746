"""What the checks run: the claims, the generated problem, the step size and the step count.

:func:`prepare` validates the claims and the problem before any trainer runs, and chooses

* the step ``η = 0.4 η*`` for the guaranteed-stable bound ``η*`` of
  :func:`linear_theory.testing.stable_step_bound` (the factor takes the same step). Below half
  the bound, a regularizer that doubles the loss's curvature still runs stable (a KL term's
  log-det barrier does, at its equilibrium), so such a bug shows in the checks, not as a blow-up;
* the step count from the predicted contraction ``ρ`` (``max_i |1 − 2ηs̃_i²|`` or the heavy-ball
  spectral radius): ``log(1e-14)/log ρ`` steps, so exact runs converge to rounding.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

import linear_theory as lt
from linear_theory.testing import random_prior, random_step_multipliers, stable_step_bound

from ..claims.theorem1 import heavy_ball_rate
from .protocol import TrainerOptions

__all__ = ["Claims", "Setup", "prepare", "contraction", "step_size", "LR_FRACTION", "MEMBERS", "NOISE_RUNS"]

#: Step size as a fraction of :func:`linear_theory.testing.stable_step_bound` (see the module docstring).
LR_FRACTION = 0.4
#: Exact runs go on until the predicted error is this small relative to the start (rounding level).
CONVERGENCE_TARGET = 1e-14
#: Stochastic gradients (mini-batches, MC) contract about as their mean step predicts, with a
#: spread over seeds of about 10 % (measured on the reference trainer): 1.5 times the steps.
STOCHASTIC_MARGIN = 1.5
#: Near-critical heavy ball carries a polynomial factor in front of ``ρ^t``: 1.25 times the steps.
MOMENTUM_MARGIN = 1.25
#: Ensemble members (trainer runs from prior draws) and one-step runs of the MC noise check.
MEMBERS = 32
NOISE_RUNS = 400
#: The fewest of either for which the standard errors the checks use are meaningful.
MIN_RUNS = 8


@dataclass(frozen=True)
class Claims:
    """What a trainer claims to do; decides the options it is called with and the limit it must reach.

    Parameters
    ----------
    optimizer : {"gd", "sgd", "momentum"}, optional
        The optimizer the trainer runs, passed as the option of the same name
        (:class:`~proofs_check.conform.TrainerOptions`).
    batch_size : int, optional
        Rows per step (required for ``"sgd"``; mini-batch heavy ball for ``"momentum"``).
    momentum : float, optional
        Heavy-ball coefficient in ``[0, 1)``.
    mc_samples : int, optional
        0 for the closed-form expected loss, ``M ≥ 1`` reparametrized samples per step.
    step_multipliers : None, "random" or (d,) array, optional
        Per-coordinate step multipliers the trainer applies: ``"random"`` lets the kit draw them
        (log-uniform on ``[1/8, 1]``) and pass them; an array (length ``d``) is passed as it is.
    factor_step_scale : float, optional
        The factor's step over the mean's (positive; μP's ``1/R`` for a factor of rank ``R``): the
        trainer is passed ``lr_factor = factor_step_scale · lr``. A scalar on the factor's step
        does not change the limit, only how fast the factor gets there (docs/theory.md §4 (C12)).

    Raises
    ------
    ValueError, TypeError
        As :class:`~proofs_check.conform.TrainerOptions`, for a ``step_multipliers`` string
        other than ``"random"`` and a ``factor_step_scale`` that is not a positive finite number.
    """

    optimizer: str = "gd"
    batch_size: int | None = None
    momentum: float = 0.9
    mc_samples: int = 0
    step_multipliers: object = None
    factor_step_scale: float = 1.0

    def __post_init__(self):
        multipliers = self.step_multipliers
        if isinstance(multipliers, str):
            if multipliers != "random":
                raise ValueError(f"step_multipliers must be None, 'random' or a 1-D array, got {multipliers!r}")
            multipliers = None
        scale = self.factor_step_scale
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"factor_step_scale must be a finite positive number, got {scale!r}")
        options = TrainerOptions(optimizer=self.optimizer, batch_size=self.batch_size, momentum=self.momentum,
                                 mc_samples=self.mc_samples, step_multipliers=multipliers)
        if multipliers is not None:
            object.__setattr__(self, "step_multipliers", options.step_multipliers)

    @property
    def exact(self) -> bool:
        """Whether the gradients are those of the closed-form expected loss.

        Returns
        -------
        bool
            ``mc_samples == 0`` (no Monte Carlo).
        """
        return self.mc_samples == 0

    @property
    def deterministic(self) -> bool:
        """Whether the run is a fixed linear iteration.

        Returns
        -------
        bool
            Full-batch exact gradients.
        """
        return self.exact and self.batch_size is None

    def describe(self) -> str:
        """The claims in words, for the checks table.

        Returns
        -------
        str
            The optimizer (and batch), the momentum, the gradients, the step multipliers and
            the factor's step scale where they are not the defaults.
        """
        parts = [self.optimizer if self.batch_size is None else f"{self.optimizer} (batch {self.batch_size})"]
        if self.optimizer == "momentum":
            parts.append(f"momentum {self.momentum:g}")
        parts.append("exact gradients" if self.exact else f"{self.mc_samples} MC sample(s) per step")
        if self.step_multipliers is not None:
            parts.append("step multipliers (kit-drawn)" if isinstance(self.step_multipliers, str)
                         else "step multipliers (given)")
        if self.factor_step_scale != 1.0:
            parts.append(f"factor step x{self.factor_step_scale:.4g}")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        """The JSON form.

        Returns
        -------
        dict
            The six fields; ``step_multipliers`` is ``None``, ``"random"`` or a list of floats.
        """
        D = self.step_multipliers
        return {"optimizer": self.optimizer, "batch_size": self.batch_size, "momentum": self.momentum,
                "mc_samples": self.mc_samples, "factor_step_scale": self.factor_step_scale,
                "step_multipliers": D if D is None or isinstance(D, str) else [float(v) for v in D]}

@dataclass(frozen=True, eq=False)
class Setup:
    """A validated run plan: data, prior, resolved step multipliers, step size and count, limits.

    Build it with :func:`prepare`.

    Parameters
    ----------
    X : (n, d) array
        The inputs every run of the plan is given.
    y : (n,) array
        The targets of every run.
    prior : linear_theory.Gaussian
        The prior every run starts from.
    multipliers : (d,) array or None
        The step multipliers ``D`` passed to the trainer (drawn when the claims say ``"random"``).
    claims : Claims
        What the trainer claims to do.
    lr : float
        The mean's step (the factor's is ``claims.factor_step_scale · lr``).
    steps : int
        Steps of the main run.
    seed : int
        The seed of the problem, the prior, the drawn multipliers and the runs.
    members, noise_runs : int
        Ensemble members and one-step MC runs.
    singular_values : (k,) array
        The nonzero singular values of ``XD^{½}``.
    limit : linear_theory.Gaussian
        The limit the claims predict (the ``D⁻¹``-metric one with step multipliers).
    identity_limit : linear_theory.Gaussian
        ``q∞``.
    description : str
        The problem in words, for the report.
    """

    X: np.ndarray
    y: np.ndarray
    prior: lt.Gaussian
    multipliers: np.ndarray | None
    claims: Claims
    lr: float
    steps: int
    seed: int
    members: int
    noise_runs: int
    singular_values: np.ndarray
    limit: lt.Gaussian
    identity_limit: lt.Gaussian
    description: str

    @property
    def metric(self) -> dict:
        """The step multipliers as keywords of the library's closed forms.

        Returns
        -------
        dict
            ``{"step_multipliers": D}``; empty without multipliers.
        """
        return {} if self.multipliers is None else {"step_multipliers": self.multipliers}

    @property
    def lr_factor(self) -> float:
        """The factor's step.

        Returns
        -------
        float
            ``claims.factor_step_scale · lr``.
        """
        return self.claims.factor_step_scale * self.lr

    def options(self, lr: float, *, record_every: int = 0, batch_size="claimed") -> dict:
        """The trainer's keyword options for a run at mean step ``lr``.

        Parameters
        ----------
        lr : float
            The mean's step of this run; the factor's is ``claims.factor_step_scale · lr``.
        record_every : int, optional
            Ask for a trace every that many steps (0: none).
        batch_size : int, None or "claimed", optional
            Rows per step; ``"claimed"`` keeps the claims' batch size, ``None`` runs full batch.

        Returns
        -------
        dict
            The keywords of :class:`~proofs_check.conform.TrainerOptions`, checked, ready for
            ``**``.

        Raises
        ------
        ValueError
            If the options are inconsistent (see :class:`~proofs_check.conform.TrainerOptions`).
        """
        claims = self.claims
        return TrainerOptions(optimizer=claims.optimizer,
                              batch_size=claims.batch_size if batch_size == "claimed" else batch_size,
                              momentum=claims.momentum, mc_samples=claims.mc_samples,
                              step_multipliers=self.multipliers, lr_factor=claims.factor_step_scale * lr,
                              record_every=record_every).as_dict()


def contraction(claims: Claims, singular_values: np.ndarray, lr: float) -> float:
    """Predicted per-step contraction of full-batch exact GD (or heavy ball) at step ``lr``.

    Cost ``O(k)``.

    Parameters
    ----------
    claims : Claims
        Decides GD (``max_i |1 − 2η s_i²|``) or heavy ball (its spectral radius).
    singular_values : (k,) array
        Nonzero singular values of ``XD^{½}``.
    lr : float
        The step.

    Returns
    -------
    float
        The contraction ``ρ``: the error after ``t`` steps is about ``ρ^t`` times the first.
    """
    if claims.optimizer == "momentum":
        return heavy_ball_rate(singular_values, lr, claims.momentum)
    return float(np.max(np.abs(1.0 - 2.0 * lr * singular_values ** 2)))


def step_size(claims: Claims, X: np.ndarray, rank: int, multipliers: np.ndarray | None) -> float:
    """The mean's step the checks use on ``X``: ``LR_FRACTION`` of the stable bound for the claims.

    Cost: one largest singular value of ``X``.

    Parameters
    ----------
    claims : Claims
        The optimizer, batch, momentum, MC samples and factor step scale.
    X : (n, d) array
        The inputs.
    rank : int
        Width of the prior's factor.
    multipliers : (d,) array or None
        The step multipliers ``D``, if any.

    Returns
    -------
    float
        The mean's step; the factor's step ``factor_step_scale · lr`` stays below the factor's
        bound too.
    """
    metric = {} if multipliers is None else {"step_multipliers": multipliers}
    bound = stable_step_bound(X, claims.optimizer, momentum=claims.momentum, batch_size=claims.batch_size,
                              mc_samples=claims.mc_samples, rank=rank, **metric)
    return LR_FRACTION * bound / max(1.0, claims.factor_step_scale)


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def prepare(*, optimizer: str = "gd", batch_size: int | None = None, momentum: float = 0.9, mc_samples: int = 0,
            step_multipliers=None, factor_step_scale: float = 1.0, problem: lt.RegressionProblem | None = None, prior: lt.Gaussian | None = None,
            n: int = 6, d: int = 16, width: int | None = None, condition_number: float = 2.0, seed: int = 0,
            members: int = MEMBERS, noise_runs: int = NOISE_RUNS) -> Setup:
    """Validate the claims and the problem and plan the runs.

    Cost: one thin SVD of ``X`` and the closed-form limits, ``O(n²d + n·d·r)``.

    Parameters
    ----------
    optimizer, batch_size, momentum, mc_samples, step_multipliers, factor_step_scale : optional
        The claims (:class:`Claims`).
    problem : linear_theory.RegressionProblem, optional
        The data; default ``random_regression(n, d, condition_number=...)`` with this seed.
    prior : linear_theory.Gaussian, optional
        The prior; default :func:`linear_theory.testing.random_prior` of kind ``"general"``
        (``"lowrank"`` when ``width < d``).
    n, d : int, optional
        Rows and columns of the default problem.
    width : int or None, optional
        Columns of the default prior's factor (default ``d``).
    condition_number : float, optional
        Condition number of the default problem's ``X``.
    seed : int, optional
        Seed of the problem, the prior, the drawn multipliers, the ensemble and the runs.
    members, noise_runs : int, optional
        Ensemble members and one-step MC runs (at least 8 each).

    Returns
    -------
    Setup
        The validated plan: data, prior, multipliers, step size and count, predicted limits.

    Raises
    ------
    ValueError, TypeError
        For bad claims, sizes, a prior of another dimension, step multipliers of the wrong length,
        a batch larger than ``n``, fewer than 8 members or noise runs.
    """
    claims = Claims(optimizer=optimizer, batch_size=batch_size, momentum=momentum, mc_samples=mc_samples,
                    step_multipliers=step_multipliers, factor_step_scale=factor_step_scale)
    members, noise_runs, seed = _count("members", members), _count("noise_runs", noise_runs), _count("seed", seed)
    if members < MIN_RUNS or noise_runs < MIN_RUNS:
        raise ValueError(f"members and noise_runs must be at least {MIN_RUNS} (standard errors), got "
                         f"{members} and {noise_runs}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if problem is None:
        problem = lt.random_regression(n, d, condition_number=condition_number, seed=[seed, 1])
    elif not isinstance(problem, lt.RegressionProblem):
        raise TypeError(f"problem must be a linear_theory.RegressionProblem, got {type(problem).__name__}")
    X, y = problem.X, problem.y
    n, d = X.shape
    s = lt.row_space_solver(X).singular_values
    if s.size >= d:
        raise ValueError(f"the problem must be overparametrized, rank(X) < d: X has rank {s.size} and d = {d} "
                         "(without a null space q_inf is a point mass and the checks say nothing)")
    if claims.batch_size is not None and claims.batch_size > n:
        raise ValueError(f"batch_size must be at most n = {n}, got {claims.batch_size}")
    if prior is None:
        kind = "general" if width is None or width == d else "lowrank"
        prior = random_prior(d, kind, width=None if kind == "general" else width, seed=[seed, 2])
    elif not isinstance(prior, lt.Gaussian):
        raise TypeError(f"prior must be a linear_theory.Gaussian, got {type(prior).__name__}")
    if prior.dim != d:
        raise ValueError(f"prior has dimension {prior.dim} but the problem has d = {d}")
    D = claims.step_multipliers
    if isinstance(D, str):
        D = random_step_multipliers(d, seed=[seed, 3])
    elif D is not None and D.shape != (d,):
        raise ValueError(f"step_multipliers must have length d = {d}, got {D.shape[0]}")
    metric = {} if D is None else {"step_multipliers": D}
    # With MC samples the mean takes the factor's (smaller) step too: a mean step much larger than
    # the factor's feeds the mean's noise into the factor and slows or destabilizes it (measured
    # on the reference trainer: with the mean at 0.5/s_max^2 the factor diverges at 0.8 of its bound).
    lr = step_size(claims, X, prior.width, D)
    s = lt.row_space_solver(X if D is None else X * np.sqrt(D)).singular_values
    slowest = max(contraction(claims, s, lr), contraction(claims, s, claims.factor_step_scale * lr))
    steps = math.log(CONVERGENCE_TARGET) / math.log(slowest)
    if claims.optimizer == "momentum" and claims.deterministic:
        steps *= MOMENTUM_MARGIN
    if not claims.deterministic:
        steps *= STOCHASTIC_MARGIN
    limit = lt.ibvi_limit(X, y, prior, **metric)
    identity = limit if D is None else lt.ibvi_limit(X, y, prior)
    if prior.width < d:
        kind = "low rank"
    else:
        kind = "isotropic" if np.array_equal(prior.factor, prior.factor[0, 0] * np.eye(d)) else "general"
    kappa = problem.singular_values[0] / problem.singular_values[-1]
    description = (f"n = {n}, d = {d}, rank {s.size}, kappa(X) = {kappa:.3g}, prior factor {d}x{prior.width} "
                   f"({kind}), seed {seed}")
    return Setup(X=X, y=y, prior=prior, multipliers=D, claims=claims, lr=lr, steps=max(1, math.ceil(steps)),
                 seed=seed, members=members, noise_runs=noise_runs, singular_values=s, limit=limit,
                 identity_limit=identity, description=description)
