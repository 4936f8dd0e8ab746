r"""The conformance checks: run a trainer on a generated problem and judge it against the closed forms.

Theorem 1 (docs/theory.md §2 (C1)) says every correct IBVI trainer on the linear model, started at
the prior ``p = N(μ₀, L₀L₀ᵀ)``, lands on

.. math::

    μ_∞ = μ_0 + X^+(y - Xμ_0), \qquad L_∞ = P_{null} L_0 ,

and with per-coordinate step multipliers ``D`` on the ``D⁻¹``-metric projection
``μ∞ = μ₀ + DXᵀ(XDXᵀ)⁺(y − Xμ₀)``, ``L∞ = (I − DXᵀ(XDXᵀ)⁺X)L₀`` (docs/theory.md §4 (C12)). The
checks, each with the tolerance and the reason printed beside the measured error:

``start``
    the state at step 0 is the prior.
``limit``
    the final ``q_T`` minimizes the expected loss (``Xμ_T = y``, ``XL_T = 0``) and is the claimed
    limit in W₂; the report says which limit was reached.
``invariants``
    the parts GD cannot move stay where they started at every recorded step:
    ``P_null(μ_t − μ₀) = 0`` and ``P_null(L_t − L₀) = 0`` (with ``D``: the oblique projector
    ``I − DXᵀ(XDXᵀ)⁺X``).
``rate``
    full-batch exact gradients: the distance to the final state contracts by
    ``max_i |1 − 2η s̃_i²|`` per step (``s̃`` the singular values of ``XD^{½}``), or the heavy-ball
    spectral radius for momentum.
``w2-value``
    ``W₂²(q_T, p) = ‖X⁺(Xμ₀ − y)‖² + ‖P_row L₀‖²_F`` (in the ``D⁻¹`` metric with ``D``).
``ensemble``
    Proposition S1 (docs/theory.md §2 (C2)): trainers started at prior draws ``w₀`` (seeds
    ``1, 2, …``) land on ``P_null w₀ + X⁺y`` each, so the ensemble has the law of ``q∞``.
``mc-noise``
    Monte Carlo claims: over seeds, one step's spread equals that of ``M`` reparametrized samples
    shared by every row of the batch (derived below, :func:`shared_sample_noise`).

Default problem: ``n = 6``, ``d = 16``, ``κ(X) = 2``, a general random prior with a full factor;
steps sizes are half the guaranteed-stable bound and the step count is chosen from the predicted
contraction so that exact runs converge to rounding.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

import linear_theory as lt
from linear_theory.testing import random_prior, random_step_multipliers, stable_step_bound

from ..claims._common import CONVERGED_RTOL, ROUNDING_RTOL
from ..claims.ensembles import Z_TOLERANCE, ensemble_z_scores
from ..claims.theorem1 import heavy_ball_rate, measured_rate
from ..registry import Measurement
from .protocol import TrainerError, TrainerOptions, TrainerResult, as_result

__all__ = ["Claims", "CheckResult", "ConformanceReport", "check_conformance", "assert_conforms",
           "shared_sample_noise", "CHECKS"]

CHECKS = ("start", "limit", "invariants", "rate", "w2-value", "ensemble", "mc-noise")
#: Step sizes as a fraction of :func:`linear_theory.testing.stable_step_bound`: safely stable,
#: and for exact GD the slowest mode then contracts by ``1 − 1/κ²`` per step.
LR_FRACTION = 0.5
#: Exact runs go on until the predicted error is this small relative to the start (rounding level).
CONVERGENCE_TARGET = 1e-14
#: Stochastic gradients (mini-batches, MC) contract about as their mean step predicts, with a
#: spread over seeds of about 10 % (measured on the reference trainer): 1.5 times the steps.
STOCHASTIC_MARGIN = 1.5
#: Runs without a trace are replayed at about this many step counts (the trace of a seeded run is
#: its prefixes).
REPLAY_POINTS = 40
#: Ensemble members (trainer runs from prior draws) and one-step runs of the MC noise check.
MEMBERS = 64
NOISE_RUNS = 400
#: Log-slope fit of the contraction (see ``measured_rate``): the next-slowest mode biases it by
#: ``(ρ₂/ρ)^t``, which is below 0.5 % over the fit window on the default problem.
RATE_RTOL = 1e-2
#: Heavy ball: complex-conjugate modes oscillate around the envelope ``ρ^t`` (a few % at most).
MOMENTUM_RATE_RTOL = 2e-2
#: Standard-error multiple for the MC noise check: a z-score beyond 4.5 has probability 7e-6
#: for a normal variable; two such scores (mean, factor) fail a correct trainer about once in 1e5.
NOISE_Z = 4.5


@dataclass(frozen=True)
class Claims:
    """What a trainer claims to do; decides the options it is called with and the limit it must reach.

    Parameters
    ----------
    optimizer : {"gd", "sgd", "momentum"}
    batch_size : int, optional
        Rows per step (required for ``"sgd"``; mini-batch heavy ball for ``"momentum"``).
    momentum : float
        Heavy-ball coefficient in ``[0, 1)``.
    mc_samples : int
        0 for the closed-form expected loss, ``M ≥ 1`` reparametrized samples per step.
    step_multipliers : None, "random" or (d,) array
        Per-coordinate step multipliers the trainer applies: ``"random"`` lets the kit draw them
        (log-uniform on ``[1/8, 1]``) and pass them; an array is passed as it is (its length fixes ``d``).

    Raises
    ------
    ValueError, TypeError
        As :class:`~proofs_check.conform.TrainerOptions`, and for a ``step_multipliers`` string
        other than ``"random"``.
    """

    optimizer: str = "gd"
    batch_size: int | None = None
    momentum: float = 0.9
    mc_samples: int = 0
    step_multipliers: object = None

    def __post_init__(self):
        multipliers = self.step_multipliers
        if isinstance(multipliers, str):
            if multipliers != "random":
                raise ValueError(f"step_multipliers must be None, 'random' or a 1-D array, got {multipliers!r}")
            multipliers = None
        options = TrainerOptions(optimizer=self.optimizer, batch_size=self.batch_size, momentum=self.momentum,
                                 mc_samples=self.mc_samples, step_multipliers=multipliers)
        if multipliers is not None:
            object.__setattr__(self, "step_multipliers", options.step_multipliers)

    @property
    def exact(self) -> bool:
        """Closed-form expected-loss gradients (no Monte Carlo)."""
        return self.mc_samples == 0

    @property
    def deterministic(self) -> bool:
        """Full-batch exact gradients: the run is a fixed linear iteration."""
        return self.exact and self.batch_size is None

    def describe(self) -> str:
        parts = [self.optimizer if self.batch_size is None else f"{self.optimizer} (batch {self.batch_size})"]
        if self.optimizer == "momentum":
            parts.append(f"momentum {self.momentum:g}")
        parts.append("exact gradients" if self.exact else f"{self.mc_samples} MC sample(s) per step")
        if self.step_multipliers is not None:
            parts.append("step multipliers (kit-drawn)" if isinstance(self.step_multipliers, str)
                         else "step multipliers (given)")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        D = self.step_multipliers
        return {"optimizer": self.optimizer, "batch_size": self.batch_size, "momentum": self.momentum,
                "mc_samples": self.mc_samples,
                "step_multipliers": D if D is None or isinstance(D, str) else [float(v) for v in D]}


@dataclass(frozen=True)
class CheckResult:
    """One check: its measurements, and what a failure usually means.

    ``skipped`` holds the reason when the check does not apply to the claims; ``error`` the
    exception a trainer raised during it (an error fails the check).
    """

    name: str
    description: str
    measurements: tuple[Measurement, ...] = ()
    hint: str | None = None
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0
    details: tuple[tuple[str, float], ...] = ()

    def detail(self, key: str) -> float:
        """A diagnostic number the check recorded beside its measurements (NaN when absent)."""
        return dict(self.details).get(key, math.nan)

    @property
    def passed(self) -> bool:
        if self.skipped is not None:
            return True
        return self.error is None and all(m.passed for m in self.measurements)

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return "skip"
        if self.error is not None:
            return "ERROR"
        return "pass" if self.passed else "FAIL"

    def worst(self) -> Measurement | None:
        """The failing measurement farthest above its tolerance (``None`` when none fails)."""
        failing = [m for m in self.measurements if not m.passed]
        if not failing:
            return None
        return max(failing, key=lambda m: math.inf if not math.isfinite(m.error) else m.error / m.tolerance)


@dataclass(frozen=True)
class ConformanceReport:
    """The verdict on a trainer: claims, problem, the limit it reached and every check."""

    trainer: str
    claims: Claims
    problem: str
    lr: float
    lr_factor: float
    steps: int
    reached: str
    checks: tuple[CheckResult, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name`` (one of :data:`CHECKS`)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def format(self) -> str:
        """The checks table: one line per measurement, then what each failure usually means."""
        lines = [f"conformance of {self.trainer}: {self.claims.describe()}",
                 f"  problem: {self.problem}",
                 f"  lr = {self.lr:.4g}, lr_factor = {self.lr_factor:.4g}, {self.steps} steps",
                 f"  limit reached: {self.reached}", "",
                 f"  {'check':<11s} {'verdict':<7s} {'error':>10s} {'tolerance':>10s}  measurement (reason)"]
        for c in self.checks:
            if c.skipped is not None or c.error is not None:
                lines.append(f"  {c.name:<11s} {c.status:<7s} {'':>10s} {'':>10s}  "
                             + (f"skipped: {c.skipped}" if c.skipped is not None else c.error.splitlines()[0]))
                continue
            for m in c.measurements:
                verdict = "rep" if not m.judged else ("ok" if m.passed else "FAIL")
                tolerance = "—" if m.tolerance is None else f"{m.tolerance:.1e}"
                lines.append(f"  {c.name:<11s} {verdict:<7s} {m.error:>10.3e} {tolerance:>10s}  {m.name} ({m.reason})")
        bad = [c for c in self.checks if not c.passed]
        if bad:
            lines.append("")
            lines.append("  what the failures usually mean:")
            for c in bad:
                worst = c.worst()
                by = "" if worst is None else f" ({worst.error:.3g} against {worst.tolerance:.1g})"
                lines.append(f"  - {c.name}{by}: {c.hint or 'see the measurements above'}")
        lines.append("")
        summary = f"{len(self.checks) - len(bad)} of {len(self.checks)} checks passed"
        lines.append(f"  {summary}" + (f"; failed: {', '.join(c.name for c in bad)}" if bad else "")
                     + f" ({self.seconds:.1f} s)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready summary (non-finite numbers become the strings ``"inf"``/``"nan"``)."""
        def number(x):
            return x if x is None or math.isfinite(x) else str(x)

        return {"trainer": self.trainer, "claims": self.claims.as_dict(), "problem": self.problem,
                "lr": self.lr, "lr_factor": self.lr_factor, "steps": self.steps, "reached": self.reached,
                "passed": self.passed, "failed": list(self.failed), "seconds": self.seconds,
                "checks": [{"name": c.name, "description": c.description, "status": c.status,
                            "passed": c.passed, "hint": c.hint, "skipped": c.skipped, "error": c.error,
                            "seconds": c.seconds,
                            "measurements": [{"name": m.name, "error": number(m.error),
                                              "tolerance": m.tolerance, "reason": m.reason,
                                              "passed": m.passed} for m in c.measurements]}
                           for c in self.checks]}


# ---------------------------------------------------------------------------------------------
# The problem, the step sizes and the trainer calls


@dataclass(frozen=True, eq=False)
class _Setting:
    X: np.ndarray
    y: np.ndarray
    prior: lt.Gaussian
    multipliers: np.ndarray | None  # D, resolved
    claims: Claims
    lr: float
    lr_factor: float
    steps: int
    seed: int
    singular_values: np.ndarray  # of X D^½
    limit: lt.Gaussian  # the claimed limit
    identity_limit: lt.Gaussian  # q_inf
    description: str

    @property
    def metric(self) -> dict:
        return {} if self.multipliers is None else {"step_multipliers": self.multipliers}

    def options(self, *, record_every: int = 0, batch_size="claimed") -> dict:
        claims = self.claims
        return TrainerOptions(optimizer=claims.optimizer,
                              batch_size=claims.batch_size if batch_size == "claimed" else batch_size,
                              momentum=claims.momentum, mc_samples=claims.mc_samples,
                              step_multipliers=self.multipliers, lr_factor=self.lr_factor,
                              record_every=record_every).as_dict()


#: What a check returns: its measurements and diagnostic numbers for the hints.
_Measured = tuple[tuple[Measurement, ...], dict]


def _contraction(claims: Claims, singular_values: np.ndarray, lr: float) -> float:
    """Predicted per-step contraction of full-batch exact (heavy-ball) GD at step ``lr``."""
    if claims.optimizer == "momentum":
        return heavy_ball_rate(singular_values, lr, claims.momentum)
    return float(np.max(np.abs(1.0 - 2.0 * lr * singular_values ** 2)))


def _setting(claims: Claims, problem, prior, *, n: int, d: int, width, condition_number: float,
             seed: int) -> _Setting:
    if problem is None:
        if isinstance(claims.step_multipliers, np.ndarray):
            d = claims.step_multipliers.shape[0]
        problem = lt.random_regression(n, d, condition_number=condition_number, seed=[seed, 1])
    elif not isinstance(problem, lt.RegressionProblem):
        raise TypeError(f"problem must be a linear_theory.RegressionProblem, got {type(problem).__name__}")
    X, y = problem.X, problem.y
    n, d = X.shape
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
    # With MC samples the mean takes the factor's (smaller) step: a mean step much larger than the
    # factor's feeds the mean's noise into the factor and slows or destabilizes it (measured on
    # the reference trainer: at 0.8 of the factor's bound it diverges with the mean at 1/s_max^2).
    bound = stable_step_bound(X, claims.optimizer, momentum=claims.momentum, batch_size=claims.batch_size,
                              mc_samples=claims.mc_samples, rank=prior.width, **metric)
    lr = lr_factor = LR_FRACTION * bound
    s = lt.row_space_solver(X if D is None else X * np.sqrt(D)).singular_values
    steps = int(math.ceil(math.log(CONVERGENCE_TARGET) / math.log(_contraction(claims, s, lr))))
    if claims.optimizer == "momentum" and claims.deterministic:
        steps = int(1.25 * steps)  # near-critical heavy ball carries a factor t in front of rho^t
    if not claims.deterministic:
        steps = int(STOCHASTIC_MARGIN * steps)
    limit = lt.ibvi_limit(X, y, prior, **metric)
    identity = limit if D is None else lt.ibvi_limit(X, y, prior)
    kind = "isotropic" if np.array_equal(prior.factor, prior.factor[0, 0] * np.eye(d)) else "general"
    description = (f"n = {n}, d = {d}, rank {s.size}, kappa(X) = {problem.singular_values[0] / problem.singular_values[-1]:.3g}, "
                   f"prior factor {d}x{prior.width}" + (f" ({kind})" if prior.width == d else " (low rank)")
                   + f", seed {seed}")
    return _Setting(X=X, y=y, prior=prior, multipliers=D, claims=claims, lr=lr, lr_factor=lr_factor,
                    steps=max(steps, 1), seed=seed, singular_values=s, limit=limit, identity_limit=identity,
                    description=description)


def _call(trainer, setting: _Setting, *, mean=None, steps=None, seed=None, **option_changes) -> TrainerResult:
    """One trainer run (from the prior unless ``mean`` is given), its output checked for shape."""
    prior = setting.prior
    start = prior.mean if mean is None else mean
    args = (setting.X.copy(), setting.y.copy(), np.array(start), np.array(prior.factor),
            setting.lr, setting.steps if steps is None else steps, setting.seed if seed is None else seed)
    try:
        output = trainer(*args, **setting.options(**option_changes))
    except TrainerError:
        raise
    except Exception as exc:  # the trainer's own failure is a result of the check, not a crash
        raise TrainerError(f"the trainer raised {type(exc).__name__}: {exc}") from exc
    return as_result(output, prior.dim, prior.width)


@dataclass(frozen=True)
class _States:
    steps: np.ndarray
    means: np.ndarray
    factors: np.ndarray
    final: TrainerResult
    replayed: bool


def _main_run(trainer, setting: _Setting) -> _States:
    """The run most checks judge, with its states at recorded steps (from its trace, or replayed)."""
    every = 1 if setting.claims.deterministic else max(1, setting.steps // 50)
    final = _call(trainer, setting, record_every=every)
    if final.trace is not None:
        steps, means, factors = final.trace.steps, final.trace.means, final.trace.factors
        if steps[0] != 0:
            first = _call(trainer, setting, steps=0)
            steps = np.concatenate([[0], steps])
            means = np.concatenate([first.mean[None], means])
            factors = np.concatenate([first.factor[None], factors])
        if steps[-1] != setting.steps:
            steps = np.concatenate([steps, [setting.steps]])
            means = np.concatenate([means, final.mean[None]])
            factors = np.concatenate([factors, final.factor[None]])
        return _States(steps, means, factors, final, replayed=False)
    spacing = max(1, math.ceil(setting.steps / REPLAY_POINTS))
    schedule = list(range(0, setting.steps, spacing))
    runs = [_call(trainer, setting, steps=t) for t in schedule] + [final]
    return _States(np.array(schedule + [setting.steps]), np.stack([r.mean for r in runs]),
                   np.stack([r.factor for r in runs]), final, replayed=True)


def _finite(*arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


def _relative(value: float, scale: float) -> float:
    return float(value / scale) if scale > 0 else float(value)


def _unmovable(setting: _Setting, V: np.ndarray) -> np.ndarray:
    """``Q V`` for ``V`` ``(d, m)``: the part the claimed (preconditioned) GD cannot move.

    ``Q = I − DXᵀ(XDXᵀ)⁺X`` (``P_null`` without step multipliers), applied through the library's
    own limit: the limit's factor for a zero target is ``Q`` applied to the prior's factor.
    """
    return lt.ibvi_limit(setting.X, np.zeros_like(setting.y), lt.Gaussian(np.zeros(V.shape[0]), V),
                         **setting.metric).factor


# ---------------------------------------------------------------------------------------------
# The checks


def _check_start(setting: _Setting, states: _States) -> _Measured:
    prior = setting.prior
    mean0, factor0 = states.means[0], states.factors[0]
    reason = "the prior copied into the trainer's float64 state is exact; rounding only"
    mean_error = _relative(float(np.linalg.norm(mean0 - prior.mean)), float(np.linalg.norm(prior.mean)))
    factor_error = _relative(float(np.linalg.norm(factor0 - prior.factor)), float(np.linalg.norm(prior.factor)))
    return (Measurement("||mu_0 - prior_mean|| / ||prior_mean|| (state at step 0)", mean_error, ROUNDING_RTOL, reason),
            Measurement("||L_0 - prior_factor||_F / ||prior_factor||_F (state at step 0)", factor_error,
                        ROUNDING_RTOL, reason)), \
        {"mean": mean_error, "factor": factor_error,
         "factor_scale": float(np.linalg.norm(factor0) / np.linalg.norm(prior.factor))}


def _w2_relative(q: lt.Gaussian | None, target: lt.Gaussian, prior: lt.Gaussian) -> float:
    if q is None:
        return math.inf
    return _relative(lt.w2(q, target), lt.w2(prior, target))


def _gaussian(result: TrainerResult) -> lt.Gaussian | None:
    return lt.Gaussian(result.mean, result.factor) if _finite(result.mean, result.factor) else None


def _check_limit(setting: _Setting, states: _States) -> _Measured:
    X, y, prior = setting.X, setting.y, setting.prior
    final = states.final
    q = _gaussian(final)
    converged = "converged float64 run vs the closed form (rounding ~1e-14; 1e-8 leaves room for slow modes)"
    fit_mean = math.inf if q is None else _relative(float(np.linalg.norm(X @ q.mean - y)),
                                                    float(np.linalg.norm(X @ prior.mean - y)))
    fit_factor = math.inf if q is None else _relative(float(np.linalg.norm(X @ q.factor)),
                                                      float(np.linalg.norm(X @ prior.factor)))
    name = "q_inf" if setting.multipliers is None else "the D^-1-metric limit"
    measurements = [
        Measurement("||X mu_T - y|| / ||X mu_0 - y|| (the mean interpolates)", fit_mean, CONVERGED_RTOL, converged),
        Measurement("||X L_T||_F / ||X L_0||_F (no spread left on the data)", fit_factor, CONVERGED_RTOL, converged),
        Measurement(f"W2(q_T, {name}) / W2(p, {name})", _w2_relative(q, setting.limit, prior), CONVERGED_RTOL,
                    converged)]
    to_identity = _w2_relative(q, setting.identity_limit, prior)
    if setting.multipliers is not None:
        measurements.append(Measurement("W2(q_T, q_inf) / W2(p, q_inf) (the identity-metric limit)", to_identity,
                                        None, "reported: how far the metric limit lies from q_inf"))
    moved = (math.inf if q is None else
             _relative(float(np.linalg.norm(q.factor - prior.factor)), float(np.linalg.norm(prior.factor))))
    return tuple(measurements), {"fit_mean": fit_mean, "fit_factor": fit_factor, "to_limit": measurements[2].error,
                                 "to_identity": to_identity, "factor_moved": moved}


def _check_invariants(setting: _Setting, states: _States) -> _Measured:
    prior = setting.prior
    T, d, r = states.factors.shape
    if not _finite(states.means, states.factors):
        return (Measurement("max_t ||Q(mu_t - mu_0)|| / (||mu_0|| + ||mu_t||)", math.inf, ROUNDING_RTOL,
                            "the run produced non-finite values"),), {"mean": math.inf, "factor": math.inf}
    dmu = (states.means - prior.mean).T  # (d, T)
    dL = (states.factors - prior.factor).transpose(1, 0, 2).reshape(d, T * r)
    moved = _unmovable(setting, np.hstack([dmu, dL]))
    mean_drift = np.linalg.norm(moved[:, :T], axis=0)
    factor_drift = np.linalg.norm(moved[:, T:].reshape(d, T, r), axis=(0, 2))
    tiny = np.finfo(float).tiny
    mean_error = float(np.max(mean_drift / np.maximum(np.linalg.norm(prior.mean)
                                                      + np.linalg.norm(states.means, axis=1), tiny)))
    factor_error = float(np.max(factor_drift / np.maximum(np.linalg.norm(prior.factor)
                                                          + np.linalg.norm(states.factors, axis=(1, 2)), tiny)))
    where = "P_null" if setting.multipliers is None else "Q = I - DX^T(XDX^T)^+X"
    reason = (f"exact invariant over {T} recorded steps; rounding of the iterates and of the projector "
              "(relative to their size)")
    return (Measurement(f"max_t ||{where}(mu_t - mu_0)|| / (||mu_0|| + ||mu_t||)", mean_error, ROUNDING_RTOL, reason),
            Measurement(f"max_t ||{where}(L_t - L_0)||_F / (||L_0|| + ||L_t||)", factor_error, ROUNDING_RTOL,
                        reason)), {"mean": mean_error, "factor": factor_error}


def _check_rate(setting: _Setting, states: _States) -> _Measured:
    claims = setting.claims
    predicted = _contraction(claims, setting.singular_values, setting.lr)
    if _finite(states.means, states.factors):
        distance = np.sqrt(np.sum((states.means - states.final.mean) ** 2, axis=1)
                           + np.sum((states.factors - states.final.factor) ** 2, axis=(1, 2)))
        rate = measured_rate(states.steps, distance / distance[0]) if distance[0] > 0 else math.nan
    else:
        rate = math.nan
    if claims.optimizer == "momentum":
        formula, tolerance = "heavy-ball spectral radius", MOMENTUM_RATE_RTOL
        reason = "log-slope fit; complex-conjugate modes oscillate around the envelope rho^t, a few % at most"
    else:
        formula, tolerance = "max_i |1 - 2 lr s_i^2|", RATE_RTOL
        reason = "log-slope fit over errors in [1e-11, 1e-2]; the next-slowest mode biases it by under 0.5 %"
    return (Measurement(f"|measured rate - {formula}| / predicted (measured {rate:.5g}, predicted {predicted:.5g})",
                        abs(rate - predicted) / predicted, tolerance, reason),), {"measured": rate, "predicted": predicted}


def _check_w2_value(setting: _Setting, states: _States) -> _Measured:
    X, y, prior = setting.X, setting.y, setting.prior
    predicted = lt.ibvi_limit_w2_squared(X, y, prior, **setting.metric)
    q = _gaussian(states.final)
    if q is None:
        error = math.inf
    else:
        metric = {} if setting.multipliers is None else {"metric": setting.multipliers}
        error = _relative(abs(lt.w2_squared(q, prior, **metric) - predicted), predicted)
    value = ("||X^+(X mu_0 - y)||^2 + ||P_row L_0||_F^2" if setting.multipliers is None
             else "the D^-1-metric projection's W2^2 (in that metric)")
    return (Measurement(f"|W2^2(q_T, p) - ({value})| / that value", error, CONVERGED_RTOL,
                        "Theorem 1's value vs the W2 of the trained q_T; convergence and rounding"),), {}


def _check_ensemble(trainer, setting: _Setting, members: int) -> _Measured:
    X, y, prior = setting.X, setting.y, setting.prior
    rng = np.random.default_rng([setting.seed, 4])
    starts = prior.sample(members, rng)  # (K, d)
    trained = np.stack([_call(trainer, setting, mean=w0, seed=setting.seed + 1 + k).mean
                        for k, w0 in enumerate(starts)])
    offset = lt.ibvi_limit(X, y, lt.Gaussian(np.zeros(prior.dim), prior.factor), **setting.metric).mean
    targets = _unmovable(setting, starts.T).T + offset  # each member's own limit, P_null w0 + X^+y
    travelled = np.linalg.norm(starts - targets, axis=1)
    worst = float(np.max(np.linalg.norm(trained - targets, axis=1) / np.maximum(travelled, np.finfo(float).tiny)))
    if not np.all(np.isfinite(trained)):
        worst = math.inf
    directions = lt.project_null(X, rng.standard_normal((prior.dim, 10))).T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    if np.all(np.isfinite(trained)):
        z_mean, z_var = ensemble_z_scores(trained, setting.limit, directions)
        z_mean, z_var = float(np.max(np.abs(z_mean))), float(np.max(np.abs(z_var)))
    else:
        z_mean = z_var = math.inf
    law = f"standard error over {members} members; Bonferroni over 20 z-scores"
    return (Measurement(f"max_k ||mu_T^k - (P_null w0^k + X^+ y)|| / ||w0^k - (P_null w0^k + X^+ y)|| "
                        f"over {members} members", worst, CONVERGED_RTOL,
                        "each member converges to its own limit: float64 convergence"),
            Measurement("max |z| of the ensemble mean along 10 null-space directions", z_mean, Z_TOLERANCE, law),
            Measurement("max |z| of the ensemble variance along those directions", z_var, Z_TOLERANCE, law)), {}


def shared_sample_noise(X, y, prior: lt.Gaussian, lr: float, lr_factor: float, mc_samples: int,
                        step_multipliers=None) -> tuple[float, float]:
    r"""Expected squared spread of one full-batch Monte Carlo step from the prior, over seeds.

    One step with ``M`` samples ``w_m = μ₀ + L₀z_m`` shared by every row uses
    ``g_μ = −(2/M)Σ_m Xᵀ(e − Az_m)`` and ``g_L = −(2/M)Σ_m Xᵀ(e − Az_m)z_mᵀ`` with
    ``e = y − Xμ₀``, ``A = XL₀`` (``n × r``). Their deviations from the exact gradients are
    ``(2/M)Σ_m XᵀAz_m`` and ``−(2/M)Σ_m [Xᵀe z_mᵀ − XᵀA(z_mz_mᵀ − I)]``; with the Gaussian moments
    ``E[zᵀBz·zᵀz] = (r + 2)tr B`` and odd moments zero,

    .. math::

        E\|μ_1 - Eμ_1\|^2 = \frac{4η^2}{M}\|DX^TA\|_F^2, \qquad
        E\|L_1 - EL_1\|_F^2 = \frac{4η_L^2}{M}\big(r\|DX^Te\|^2 + (r + 1)\|DX^TA\|_F^2\big),

    ``D`` the step multipliers (identity by default). One sample per *row* instead gives
    ``Σ_i ‖Dx_i‖²‖a_i‖²`` in place of ``‖DXᵀA‖²_F``: the cross terms between rows vanish.

    Returns
    -------
    (float, float)
        The two expectations (mean, factor). Cost ``O(n·d·r)``.
    """
    e = y - X @ prior.mean
    D = np.ones(prior.dim) if step_multipliers is None else np.asarray(step_multipliers, dtype=np.float64)
    DXtA = D[:, None] * (X.T @ (X @ prior.factor))
    DXte = D * (X.T @ e)
    r = prior.width
    mean_spread = 4.0 * lr ** 2 / mc_samples * float(np.sum(DXtA ** 2))
    factor_spread = 4.0 * lr_factor ** 2 / mc_samples * (r * float(DXte @ DXte) + (r + 1) * float(np.sum(DXtA ** 2)))
    return mean_spread, factor_spread


def _check_mc_noise(trainer, setting: _Setting, runs: int) -> _Measured:
    X, y, prior = setting.X, setting.y, setting.prior
    full = None if setting.claims.batch_size is None else X.shape[0]
    steps = [_call(trainer, setting, steps=1, seed=setting.seed + 10_000 + k, batch_size=full) for k in range(runs)]
    exact_mean = lt.gd_iterate(X, y, prior, setting.lr, 1, **setting.metric).mean
    exact_factor = lt.gd_iterate(X, y, prior, setting.lr_factor, 1, **setting.metric).factor
    predicted = shared_sample_noise(X, y, prior, setting.lr, setting.lr_factor, setting.claims.mc_samples,
                                    setting.multipliers)
    measurements, details = [], {}
    for label, observed, expected in (
            ("mean", np.array([np.sum((s.mean - exact_mean) ** 2) for s in steps]), predicted[0]),
            ("factor", np.array([np.sum((s.factor - exact_factor) ** 2) for s in steps]), predicted[1])):
        spread = float(np.mean(observed))
        standard_error = float(np.std(observed, ddof=1) / np.sqrt(runs)) if np.all(np.isfinite(observed)) else math.inf
        measurements.append(Measurement(
            f"|one-step {label} spread / shared-sample prediction - 1| (ratio {spread / expected:.4g})",
            abs(spread / expected - 1.0) if np.isfinite(spread) else math.inf,
            NOISE_Z * standard_error / expected,
            f"{NOISE_Z} standard errors of the mean over {runs} seeds (estimated from the runs)"))
        details[label] = spread / expected
    return tuple(measurements), details


# ---------------------------------------------------------------------------------------------
# What a failure usually means


def _hints(setting: _Setting, results: dict[str, CheckResult]) -> dict[str, str]:
    """A sentence per failed check, from the pattern of the measurements of all checks."""
    failed = {name for name, r in results.items() if not r.passed}
    start, limit, invariants = results["start"], results["limit"], results["invariants"]
    hints = {}
    if "start" in failed:
        if start.detail("factor") > ROUNDING_RTOL:
            hints["start"] = (f"the factor at step 0 is {start.detail('factor_scale'):.3g}x prior_factor in norm: is "
                              "the factor initialized from prior_factor (not from the layer's own init std, or "
                              "scaled twice)?")
        else:
            hints["start"] = "the mean at step 0 is not prior_mean: is the mean initialized from prior_mean?"
    if "limit" in failed:
        fit_mean, fit_factor = limit.detail("fit_mean"), limit.detail("fit_factor")
        if not fit_factor <= 1.0:
            hints["limit"] = ("the factor's spread on the data grew: is the sign of its gradient right "
                              "(L <- L - lr * 2 X^T X L)?")
        elif limit.detail("factor_moved") <= ROUNDING_RTOL:
            hints["limit"] = ("the factor does not move: is its gradient computed, and is it in the "
                              "optimizer's parameter list?")
        elif fit_mean > CONVERGED_RTOL or fit_factor > CONVERGED_RTOL:
            hints["limit"] = ("q_T does not minimize the expected loss: a KL or weight-decay term stops it "
                              "short, or it has not converged (too few steps, a step scaled down)")
        elif "start" in failed:
            hints["limit"] = "the run started away from the prior (see start), so it lands away from the limit"
        elif "invariants" in failed and setting.multipliers is None:
            hints["limit"] = ("limit off by a metric: q_T minimizes the loss but its updates left row(X): are "
                              "per-parameter step multipliers in use? claim them (step_multipliers=D) to be "
                              "judged against the D^-1-metric limit")
        elif setting.multipliers is not None and limit.detail("to_identity") <= CONVERGED_RTOL:
            hints["limit"] = ("reached q_inf, not the D^-1-metric limit: are the claimed step multipliers "
                              "applied to the gradients?")
        else:
            hints["limit"] = "q_T minimizes the loss but is not the claimed limit (see the other checks)"
    if "invariants" in failed:
        part = "mean" if invariants.detail("mean") > ROUNDING_RTOL else "factor"
        hints["invariants"] = (f"the null-space part of the {part} moved: is there weight decay or a KL term, "
                               "or are per-parameter step multipliers in use (claim them with step_multipliers)?")
        if part == "factor" and "start" in failed:
            hints["invariants"] = ("the null-space part of the factor is off from the start: the factor is "
                                   "not initialized at prior_factor (see start)")
    if "rate" in failed:
        measured, predicted = results["rate"].detail("measured"), results["rate"].detail("predicted")
        if not math.isfinite(measured):
            hints["rate"] = ("the distance to the final state never shrank geometrically through [1e-11, 1e-2]: "
                             "the run diverges, stalls, or converges far slower than GD")
        elif measured > predicted:
            hints["rate"] = ("slower than GD at this step: is the step scaled down (a loss with 1/2 or a mean over "
                             "rows; lr is the step on the sum of squares), or a regularizer in the slow directions?")
        else:
            hints["rate"] = ("faster than GD at this step: is the step scaled up (a sum over samples, n/b applied "
                             "twice), or are step multipliers in use?")
    if "w2-value" in failed:
        hints["w2-value"] = "W2(q_T, p) is not Theorem 1's value: q_T is not the W2 projection of the prior (see limit)"
    if "ensemble" in failed:
        hints["ensemble"] = ("members started at prior draws w0 do not land on P_null w0 + X^+ y: the mean's path "
                             "depends on more than the data (weight decay, a KL term, step multipliers)")
    if "mc-noise" in failed:
        noise = results["mc-noise"]
        hints["mc-noise"] = (f"one step's spread over seeds is {noise.detail('mean'):.3g}x (mean) and "
                             f"{noise.detail('factor'):.3g}x "
                             f"(factor) that of {setting.claims.mc_samples} sample(s) shared by the batch: is one "
                             "weight sample drawn per step and shared by every row (not one per example), and is "
                             "mc_samples what the trainer uses?")
    for name in failed:
        if results[name].error is not None:
            hints[name] = "the trainer raised or broke the calling convention (see the error)"
    return hints


# ---------------------------------------------------------------------------------------------
# Running everything


DESCRIPTIONS = {
    "start": "the state at step 0 is the prior",
    "limit": "q_T minimizes the expected loss and is the claimed limit",
    "invariants": "the null-space parts of mean and factor never move",
    "rate": "full-batch GD contracts at the predicted rate",
    "w2-value": "W2(q_T, p) has Theorem 1's value",
    "ensemble": "runs from prior draws have the law of q_inf (Proposition S1)",
    "mc-noise": "one MC step's spread is that of samples shared by the batch",
}


def _timed(name: str, run: Callable[[], _Measured], skipped: str | None = None) -> CheckResult:
    if skipped is not None:
        return CheckResult(name, DESCRIPTIONS[name], skipped=skipped)
    start = time.perf_counter()
    details = {}
    try:
        (measurements, details), error = run(), None
    except TrainerError as exc:
        measurements, error = (), str(exc)
    return CheckResult(name, DESCRIPTIONS[name], measurements=measurements, error=error,
                       seconds=time.perf_counter() - start, details=tuple(details.items()))


def _reached(setting: _Setting, limit: CheckResult) -> str:
    if limit.error is not None or not limit.measurements:
        return "unknown (the run failed)"
    to_claimed = limit.measurements[2].error
    if setting.multipliers is None:
        return "q_inf" if to_claimed <= CONVERGED_RTOL else f"not q_inf (W2 off by {to_claimed:.3g} of W2(p, q_inf))"
    to_identity = limit.measurements[3].error
    if to_claimed <= CONVERGED_RTOL:
        return f"the D^-1-metric limit (which lies {to_identity:.3g} of W2(p, q_inf) away from q_inf)"
    if to_identity <= CONVERGED_RTOL:
        return "q_inf, not the claimed D^-1-metric limit"
    return (f"neither (W2 off by {to_claimed:.3g} of W2(p, limit) from the D^-1-metric limit, "
            f"{to_identity:.3g} from q_inf)")


def _name(trainer) -> str:
    module = getattr(trainer, "__module__", None) or type(trainer).__module__
    qualname = getattr(trainer, "__qualname__", None) or type(trainer).__qualname__
    return f"{module}:{qualname}"


def check_conformance(trainer, *, optimizer: str = "gd", batch_size: int | None = None, momentum: float = 0.9,
                      mc_samples: int = 0, step_multipliers=None, problem: lt.RegressionProblem | None = None,
                      prior: lt.Gaussian | None = None, n: int = 6, d: int = 16, width: int | None = None,
                      condition_number: float = 2.0, seed: int = 0, members: int = MEMBERS,
                      noise_runs: int = NOISE_RUNS, progress: Callable[[str], None] | None = None
                      ) -> ConformanceReport:
    """Run every check on ``trainer`` for the claims given and return the report.

    Parameters
    ----------
    trainer : callable
        ``trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options)`` (see
        :mod:`proofs_check.conform.protocol`).
    optimizer, batch_size, momentum, mc_samples, step_multipliers
        What the trainer claims to do (:class:`Claims`).
    problem : linear_theory.RegressionProblem, optional
        The data; default ``random_regression(n, d, condition_number=...)`` with this seed.
    prior : linear_theory.Gaussian, optional
        The prior; default :func:`linear_theory.testing.random_prior` of kind ``"general"``
        (``"lowrank"`` when ``width < d``).
    n, d, width, condition_number
        Sizes of the default problem and prior factor (``width`` columns, default ``d``).
    seed : int
        Seed of the problem, the prior, the ensemble draws and the trainer's runs.
    members, noise_runs : int
        Ensemble members and one-step runs of the MC noise check (at least 8 each).
    progress : callable, optional
        Called with a short line before each check.

    Returns
    -------
    ConformanceReport
        Cost: about ``(members + 2 + 40·[no trace]) × steps`` trainer steps, plus ``noise_runs``
        single steps for MC claims; a few seconds on the default problem for a NumPy trainer.

    Raises
    ------
    ValueError, TypeError
        For bad claims or problem arguments (before the trainer runs); the trainer's own failures
        are reported as failed checks, not raised.
    """
    started = time.perf_counter()
    claims = Claims(optimizer=optimizer, batch_size=batch_size, momentum=momentum, mc_samples=mc_samples,
                    step_multipliers=step_multipliers)
    if not callable(trainer):
        raise TypeError(f"trainer must be callable, got {type(trainer).__name__}")
    for label, value in (("members", members), ("noise_runs", noise_runs), ("n", n), ("d", d), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{label} must be an integer, got {type(value).__name__}")
    if members < 8 or noise_runs < 8:
        raise ValueError(f"members and noise_runs must be at least 8 (standard errors), got {members}, {noise_runs}")
    setting = _setting(claims, problem, prior, n=n, d=d, width=width, condition_number=condition_number, seed=seed)
    if claims.batch_size is not None and claims.batch_size > setting.X.shape[0]:
        raise ValueError(f"batch_size must be at most n = {setting.X.shape[0]}, got {claims.batch_size}")
    say = progress or (lambda line: None)

    say("main run")
    try:
        states, main_error = _main_run(trainer, setting), None
    except TrainerError as exc:
        states, main_error = None, str(exc)

    def judged(function):
        def run():
            if main_error is not None:
                raise TrainerError(main_error)
            return function(setting, states)
        return run

    results = {}
    for name, function in (("start", _check_start), ("limit", _check_limit), ("invariants", _check_invariants)):
        results[name] = _timed(name, judged(function))
    say("rate")
    results["rate"] = _timed("rate", judged(_check_rate), skipped=None if claims.deterministic else
                             "stochastic gradients (mini-batches or MC samples) have no fixed contraction rate")
    results["w2-value"] = _timed("w2-value", judged(_check_w2_value))
    say(f"ensemble of {members} runs")
    results["ensemble"] = _timed("ensemble", lambda: _check_ensemble(trainer, setting, members))
    say(f"MC noise over {noise_runs} one-step runs")
    results["mc-noise"] = _timed("mc-noise", lambda: _check_mc_noise(trainer, setting, noise_runs),
                                 skipped="exact gradients (no Monte Carlo samples claimed)" if claims.exact else None)
    hints = _hints(setting, results)
    checks = tuple(replace(results[name], hint=hints.get(name)) for name in CHECKS)
    return ConformanceReport(trainer=_name(trainer), claims=claims, problem=setting.description, lr=setting.lr,
                             lr_factor=setting.lr_factor, steps=setting.steps, reached=_reached(setting, results["limit"]),
                             checks=checks, seconds=time.perf_counter() - started)


def assert_conforms(trainer, **claims) -> ConformanceReport:
    """Pytest helper: run :func:`check_conformance` and raise ``AssertionError`` with the table if a check fails.

    Parameters
    ----------
    trainer : callable
        The trainer under test.
    **claims
        Keywords of :func:`check_conformance` (``optimizer``, ``batch_size``, ``momentum``,
        ``mc_samples``, ``step_multipliers``, ``problem``, ``prior``, ``seed``, …).

    Returns
    -------
    ConformanceReport
        When every check passed.

    Raises
    ------
    AssertionError
        With the formatted report when a check failed.
    ValueError, TypeError
        For bad claims (see :func:`check_conformance`).
    """
    report = check_conformance(trainer, **claims)
    if not report.passed:
        raise AssertionError("the trainer does not conform to the IBVI theorems:\n" + report.format())
    return report
