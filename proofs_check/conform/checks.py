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
    shared by every row of the batch (derived in :func:`mc_step_spread`).

Default problem: ``n = 6``, ``d = 16``, ``κ(X) = 2``, a general random prior with a full factor;
the step size and the step count are chosen by :func:`~proofs_check.conform.setup.prepare`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import scipy.stats

import linear_theory as lt

from ..claims._common import CONVERGED_RTOL, ROUNDING_RTOL, relative
from ..claims.ensembles import Z_TOLERANCE, ensemble_z_scores
from ..claims.theorem1 import measured_rate
from ..registry import Measurement
from .protocol import TrainerError, TrainerResult, as_result
from .report import CheckResult, ConformanceReport
from .setup import Setup, contraction, prepare, step_size

__all__ = ["CHECKS", "check_conformance", "run_checks", "assert_conforms", "mc_step_spread"]

#: The checks, in the order they run and the report lists them (see the module docstring).
CHECKS = ("start", "limit", "invariants", "rate", "w2-value", "ensemble", "mc-noise")
#: Runs without a trace are replayed at about this many step counts (the trace of a seeded run is
#: its prefixes).
REPLAY_POINTS = 40
#: Members are judged at CONVERGED_RTOL, so exact full-batch runs stop where the predicted error is
#: 1e-10 (a hundredfold margin) instead of the main run's 1e-14.
ENSEMBLE_STEP_FRACTION = math.log(1e-10) / math.log(1e-14)
#: Log-slope fit of the contraction (see ``measured_rate``): the next-slowest mode biases it by
#: ``(ρ₂/ρ)^t``, which is below 0.5 % over the fit window on the default problem.
RATE_RTOL = 1e-2
#: Heavy ball: complex-conjugate modes oscillate around the envelope ``ρ^t`` (a few % at most).
MOMENTUM_RATE_RTOL = 2e-2
#: Standard-error multiple for the MC noise check (standard errors estimated from the runs): a
#: normal z-score passes 4.5 with probability 7e-6; the spread's skewed distribution makes the
#: real rate larger, which the tests bound by running correct trainers over many seeds.
NOISE_Z = 4.5

#: What a check returns: its measurements and diagnostic numbers for the hints.
_Measured = tuple[tuple[Measurement, ...], dict]


def _call(trainer, setup: Setup, *, X=None, lr=None, mean=None, steps=None, seed=None,
          **option_changes) -> TrainerResult:
    """One trainer run (the setup's unless overridden), its output checked for shape."""
    prior = setup.prior
    lr = setup.lr if lr is None else lr
    args = (np.array(setup.X if X is None else X), setup.y.copy(),
            np.array(prior.mean if mean is None else mean), np.array(prior.factor),
            lr, setup.steps if steps is None else steps, setup.seed if seed is None else seed)
    try:
        output = trainer(*args, **setup.options(lr, **option_changes))
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


def _main_run(trainer, setup: Setup) -> _States:
    """The run most checks judge, with its states at recorded steps (from its trace, or replayed)."""
    every = 1 if setup.claims.deterministic else max(1, setup.steps // 50)
    final = _call(trainer, setup, record_every=every)
    if final.trace is not None:
        steps, means, factors = final.trace.steps, final.trace.means, final.trace.factors
        if steps[0] != 0:
            first = _call(trainer, setup, steps=0)
            steps = np.concatenate([[0], steps])
            means = np.concatenate([first.mean[None], means])
            factors = np.concatenate([first.factor[None], factors])
        if steps[-1] != setup.steps:
            steps = np.concatenate([steps, [setup.steps]])
            means = np.concatenate([means, final.mean[None]])
            factors = np.concatenate([factors, final.factor[None]])
        return _States(steps, means, factors, final, replayed=False)
    spacing = max(1, math.ceil(setup.steps / REPLAY_POINTS))
    schedule = list(range(0, setup.steps, spacing))
    runs = [_call(trainer, setup, steps=t) for t in schedule] + [final]
    return _States(np.array(schedule + [setup.steps]), np.stack([r.mean for r in runs]),
                   np.stack([r.factor for r in runs]), final, replayed=True)


def _finite(*arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


def _unmovable(setup: Setup, V: np.ndarray) -> np.ndarray:
    """``Q V`` for ``V`` ``(d, m)``: the part the claimed (preconditioned) GD cannot move.

    ``Q = I − DXᵀ(XDXᵀ)⁺X`` (``P_null`` without step multipliers), applied through the library's
    own limit: the limit's factor for a zero target is ``Q`` applied to the prior's factor.
    """
    return lt.ibvi_limit(setup.X, np.zeros_like(setup.y), lt.Gaussian(np.zeros(V.shape[0]), V),
                         **setup.metric).factor


# ---------------------------------------------------------------------------------------------
# The checks


def _check_start(setup: Setup, states: _States) -> _Measured:
    prior = setup.prior
    mean0, factor0 = states.means[0], states.factors[0]
    reason = "the prior copied into the trainer's float64 state is exact; rounding only"
    mean_error = relative(float(np.linalg.norm(mean0 - prior.mean)), float(np.linalg.norm(prior.mean)))
    factor_error = relative(float(np.linalg.norm(factor0 - prior.factor)), float(np.linalg.norm(prior.factor)))
    return (Measurement("||mu_0 - prior_mean|| / ||prior_mean|| (state at step 0)", mean_error, ROUNDING_RTOL, reason),
            Measurement("||L_0 - prior_factor||_F / ||prior_factor||_F (state at step 0)", factor_error,
                        ROUNDING_RTOL, reason)), \
        {"mean": mean_error, "factor": factor_error,
         "factor_scale": float(np.linalg.norm(factor0) / np.linalg.norm(prior.factor))}


def _w2relative(q: lt.Gaussian | None, target: lt.Gaussian, prior: lt.Gaussian) -> float:
    if q is None:
        return math.inf
    return relative(lt.w2(q, target), lt.w2(prior, target))


def _gaussian(result: TrainerResult) -> lt.Gaussian | None:
    return lt.Gaussian(result.mean, result.factor) if _finite(result.mean, result.factor) else None


def _check_limit(setup: Setup, states: _States) -> _Measured:
    X, y, prior = setup.X, setup.y, setup.prior
    final = states.final
    q = _gaussian(final)
    converged = "converged float64 run vs the closed form (rounding ~1e-14; 1e-8 leaves room for slow modes)"
    fit_mean = math.inf if q is None else relative(float(np.linalg.norm(X @ q.mean - y)),
                                                    float(np.linalg.norm(X @ prior.mean - y)))
    fit_factor = math.inf if q is None else relative(float(np.linalg.norm(X @ q.factor)),
                                                      float(np.linalg.norm(X @ prior.factor)))
    name = "q_inf" if setup.multipliers is None else "the D^-1-metric limit"
    measurements = [
        Measurement("||X mu_T - y|| / ||X mu_0 - y|| (the mean interpolates)", fit_mean, CONVERGED_RTOL, converged),
        Measurement("||X L_T||_F / ||X L_0||_F (no spread left on the data)", fit_factor, CONVERGED_RTOL, converged),
        Measurement(f"W2(q_T, {name}) / W2(p, {name})", _w2relative(q, setup.limit, prior), CONVERGED_RTOL,
                    converged)]
    to_identity = _w2relative(q, setup.identity_limit, prior)
    if setup.multipliers is not None:
        measurements.append(Measurement("W2(q_T, q_inf) / W2(p, q_inf) (the identity-metric limit)", to_identity,
                                        None, "reported: how far the metric limit lies from q_inf"))
    moved = (math.inf if q is None else
             relative(float(np.linalg.norm(q.factor - prior.factor)), float(np.linalg.norm(prior.factor))))
    return tuple(measurements), {"fit_mean": fit_mean, "fit_factor": fit_factor, "to_limit": measurements[2].error,
                                 "to_identity": to_identity, "factor_moved": moved}


def _check_invariants(setup: Setup, states: _States) -> _Measured:
    prior = setup.prior
    T, d, r = states.factors.shape
    if not _finite(states.means, states.factors):
        return (Measurement("max_t ||Q(mu_t - mu_0)|| / (||mu_0|| + ||mu_t||)", math.inf, ROUNDING_RTOL,
                            "the run produced non-finite values"),), {"mean": math.inf, "factor": math.inf}
    dmu = (states.means - prior.mean).T  # (d, T)
    dL = (states.factors - prior.factor).transpose(1, 0, 2).reshape(d, T * r)
    moved = _unmovable(setup, np.hstack([dmu, dL]))
    mean_drift = np.linalg.norm(moved[:, :T], axis=0)
    factor_drift = np.linalg.norm(moved[:, T:].reshape(d, T, r), axis=(0, 2))
    tiny = np.finfo(float).tiny
    mean_error = float(np.max(mean_drift / np.maximum(np.linalg.norm(prior.mean)
                                                      + np.linalg.norm(states.means, axis=1), tiny)))
    factor_error = float(np.max(factor_drift / np.maximum(np.linalg.norm(prior.factor)
                                                          + np.linalg.norm(states.factors, axis=(1, 2)), tiny)))
    where = "P_null" if setup.multipliers is None else "Q"
    recorded = f"{T} replayed runs (no trace returned)" if states.replayed else f"{T} recorded steps"
    reason = (f"exact invariant over {recorded}; rounding of the iterates and of the projector "
              "(relative to their size)" + ("" if setup.multipliers is None else "; Q = I - DX^T(XDX^T)^+X"))
    return (Measurement(f"max_t ||{where}(mu_t - mu_0)|| / (||mu_0|| + ||mu_t||)", mean_error, ROUNDING_RTOL, reason),
            Measurement(f"max_t ||{where}(L_t - L_0)||_F / (||L_0|| + ||L_t||)", factor_error, ROUNDING_RTOL,
                        reason)), {"mean": mean_error, "factor": factor_error}


def _check_rate(setup: Setup, states: _States) -> _Measured:
    claims = setup.claims
    predicted = max(contraction(claims, setup.singular_values, setup.lr),
                    contraction(claims, setup.singular_values, setup.lr_factor))
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


def _check_w2_value(setup: Setup, states: _States) -> _Measured:
    X, y, prior = setup.X, setup.y, setup.prior
    predicted = lt.ibvi_limit_w2_squared(X, y, prior, **setup.metric)
    q = _gaussian(states.final)
    if q is None:
        error = math.inf
    else:
        metric = {} if setup.multipliers is None else {"metric": setup.multipliers}
        error = relative(abs(lt.w2_squared(q, prior, **metric) - predicted), predicted)
    value = ("||X^+(X mu_0 - y)||^2 + ||P_row L_0||_F^2" if setup.multipliers is None
             else "the D^-1-metric projection's W2^2 (in that metric)")
    return (Measurement(f"|W2^2(q_T, p) - ({value})| / that value", error, CONVERGED_RTOL,
                        "Theorem 1's value vs the W2 of the trained q_T; convergence and rounding"),), {}


def _check_ensemble(trainer, setup: Setup, members: int) -> _Measured:
    X, y, prior = setup.X, setup.y, setup.prior
    rng = np.random.default_rng([setup.seed, 4])
    starts = prior.sample(members, rng)  # (K, d)
    # Exact full-batch runs follow the predicted contraction, so members may stop at 1e-10;
    # stochastic members keep the main run's steps and its margin (their spread over seeds).
    steps = max(1, math.ceil(setup.steps * ENSEMBLE_STEP_FRACTION)) if setup.claims.deterministic else None
    trained = np.stack([_call(trainer, setup, mean=w0, steps=steps, seed=setup.seed + 1 + k).mean
                        for k, w0 in enumerate(starts)])
    offset = lt.ibvi_limit(X, y, lt.Gaussian(np.zeros(prior.dim), prior.factor), **setup.metric).mean
    targets = _unmovable(setup, starts.T).T + offset  # each member's own limit, P_null w0 + X^+y
    travelled = np.linalg.norm(starts - targets, axis=1)
    worst = float(np.max(np.linalg.norm(trained - targets, axis=1) / np.maximum(travelled, np.finfo(float).tiny)))
    if not np.all(np.isfinite(trained)):
        worst = math.inf
    directions = lt.project_null(X, rng.standard_normal((prior.dim, 10))).T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    if np.all(np.isfinite(trained)):
        z_mean, z_var = ensemble_z_scores(trained, setup.limit, directions)
        z_mean, z_var = float(np.max(np.abs(z_mean))), float(np.max(np.abs(z_var)))
    else:
        z_mean = z_var = math.inf
    # Probability that a correct trainer fails: 10 normal mean scores and 10 variance scores whose
    # sample variance is (K - 1)^-1 chi^2_{K-1} for Gaussian members (its upper tail dominates).
    dof = members - 1
    false_mean = 10 * 2 * scipy.stats.norm.sf(Z_TOLERANCE)
    false_var = 10 * (scipy.stats.chi2.sf(dof + Z_TOLERANCE * np.sqrt(2 * dof), dof)
                      + scipy.stats.chi2.cdf(max(0.0, dof - Z_TOLERANCE * np.sqrt(2 * dof)), dof))
    return (Measurement(f"max_k ||mu_T^k - (P_null w0^k + X^+ y)|| / ||w0^k - (P_null w0^k + X^+ y)|| "
                        f"over {members} members", worst, CONVERGED_RTOL,
                        "each member converges to its own limit: float64 convergence"),
            Measurement("max |z| of the ensemble mean along 10 null-space directions", z_mean, Z_TOLERANCE,
                        f"standard error sqrt(a'Sa/K), K = {members}; a correct trainer fails with probability "
                        f"{false_mean:.1g}"),
            Measurement("max |z| of the ensemble variance along those directions", z_var, Z_TOLERANCE,
                        f"standard error a'Sa sqrt(2/(K-1)); the chi-square tail makes a correct trainer fail with "
                        f"probability {false_var:.1g}")), {}


def mc_step_spread(X, y, prior: lt.Gaussian, lr: float, mc_samples: int, *, lr_factor: float | None = None,
                   step_multipliers=None, shared: bool = True) -> tuple[float, float]:
    r"""Expected squared spread, over seeds, of one full-batch Monte Carlo step from the prior.

    One step with ``M`` samples ``w_m = μ₀ + L₀z_m`` shared by every row uses
    ``g_μ = −(2/M)Σ_m Xᵀ(e − Az_m)`` and ``g_L = −(2/M)Σ_m Xᵀ(e − Az_m)z_mᵀ`` with
    ``e = y − Xμ₀`` and ``A = XL₀`` (``n × r``). Their deviations from the exact gradients are
    ``(2/M)Σ_m XᵀAz_m`` and ``−(2/M)Σ_m [Xᵀe z_mᵀ − XᵀA(z_mz_mᵀ − I)]``; with the Gaussian moment
    ``E[zᵀBz·zᵀz] = (r + 2)tr B`` and every odd moment zero,

    .. math::

        E\|μ_1 - Eμ_1\|^2 = \frac{4η^2}{M}\|DX^TA\|_F^2, \qquad
        E\|L_1 - EL_1\|_F^2 = \frac{4η_L^2}{M}\big(r\|DX^Te\|^2 + (r + 1)\|DX^TA\|_F^2\big),

    ``D`` the step multipliers (identity by default). With one sample per *row* (``shared=False``)
    the rows' deviations are independent and the cross terms between rows vanish:
    ``‖DXᵀA‖²_F → Σ_i ‖Dx_i‖²‖a_i‖²`` and ``‖DXᵀe‖² → Σ_i ‖Dx_i‖²e_i²``. The two differ when
    rows are correlated (a bias feature, a nonzero feature mean). Cost ``O(n·d·r)``.

    Parameters
    ----------
    X : (n, d) array
        The inputs of the one full-batch step.
    y : (n,) array
        The targets; their residual ``e = y − Xμ₀`` enters the mean's spread.
    prior : Gaussian
        The start ``(μ₀, L₀)``, factor ``(d, r)``.
    lr : float
        Step of the mean.
    mc_samples : int
        ``M ≥ 1``.
    lr_factor : float, optional
        Step of the factor (default ``lr``).
    step_multipliers : (d,) array, optional
        The per-coordinate step multipliers ``D`` (identity when omitted).
    shared : bool, optional
        One sample per step shared by the batch (IBVI's recipe), or one per row.

    Returns
    -------
    mean_spread : float
        ``E‖μ₁ − Eμ₁‖²``.
    factor_spread : float
        ``E‖L₁ − EL₁‖²_F``.
    """
    lr_factor = lr if lr_factor is None else lr_factor
    e = y - X @ prior.mean
    A = X @ prior.factor
    D = np.ones(prior.dim) if step_multipliers is None else np.asarray(step_multipliers, dtype=np.float64)
    DX = X * D  # rows D x_i
    r = prior.width
    if shared:
        coupling = float(np.sum((DX.T @ A) ** 2))
        residual = float(np.sum((DX.T @ e) ** 2))
    else:
        row_sizes = np.sum(DX ** 2, axis=1)
        coupling = float(row_sizes @ np.sum(A ** 2, axis=1))
        residual = float(row_sizes @ e ** 2)
    return (4.0 * lr ** 2 / mc_samples * coupling,
            4.0 * lr_factor ** 2 / mc_samples * (r * residual + (r + 1) * coupling))


def _correlated_rows(setup: Setup) -> np.ndarray:
    """``X + 1cᵀ``: every row shifted by one random ``c`` as long as a typical row (a shared feature).

    On nearly orthogonal rows sharing a sample across the batch or not gives almost the same
    spread; correlated rows, as real data with a bias feature has, tell the two apart.
    """
    X = setup.X
    c = np.random.default_rng([setup.seed, 5]).standard_normal(X.shape[1])
    return X + c * (np.linalg.norm(X) / np.sqrt(X.shape[0]) / np.linalg.norm(c))


def _check_mc_noise(trainer, setup: Setup, runs: int) -> _Measured:
    y, prior, claims = setup.y, setup.prior, setup.claims
    X = _correlated_rows(setup)
    lr = step_size(claims, X, prior.width, setup.multipliers)
    lr_factor = claims.factor_step_scale * lr
    full = None if claims.batch_size is None else X.shape[0]
    steps = [_call(trainer, setup, X=X, lr=lr, steps=1, seed=setup.seed + 10_000 + k, batch_size=full)
             for k in range(runs)]
    exact_mean = lt.gd_iterate(X, y, prior, lr, 1, **setup.metric).mean
    exact_factor = lt.gd_iterate(X, y, prior, lr_factor, 1, **setup.metric).factor
    spreads = {shared: mc_step_spread(X, y, prior, lr, claims.mc_samples, lr_factor=lr_factor,
                                      step_multipliers=setup.multipliers, shared=shared) for shared in (True, False)}
    measurements, details = [], {}
    for label, observed, expected, alternative in (
            ("mean", np.array([np.sum((s.mean - exact_mean) ** 2) for s in steps]), spreads[True][0],
             spreads[False][0]),
            ("factor", np.array([np.sum((s.factor - exact_factor) ** 2) for s in steps]), spreads[True][1],
             spreads[False][1])):
        spread = float(np.mean(observed))
        finite = bool(np.all(np.isfinite(observed)))
        standard_error = float(np.std(observed, ddof=1) / np.sqrt(runs)) if finite else math.inf
        measurements.append(Measurement(
            f"|one-step {label} spread / shared-sample prediction - 1| (ratio {spread / expected:.4g}; "
            f"one sample per row would give {alternative / expected:.3g})",
            abs(spread / expected - 1.0) if finite else math.inf, NOISE_Z * standard_error / expected,
            f"{NOISE_Z} standard errors of the mean over {runs} seeds (estimated from the runs)"))
        details[label], details[f"{label}_per_row"] = spread / expected, alternative / expected
    return tuple(measurements), details


# ---------------------------------------------------------------------------------------------
# What a failure usually means


def _hints(setup: Setup, results: dict[str, CheckResult]) -> dict[str, str]:
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
        elif "invariants" in failed and setup.multipliers is None:
            hints["limit"] = ("limit off by a metric: q_T minimizes the loss but its updates left row(X): are "
                              "per-parameter step multipliers in use? claim them (step_multipliers=D) to be "
                              "judged against the D^-1-metric limit")
        elif setup.multipliers is not None and limit.detail("to_identity") <= CONVERGED_RTOL:
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
        if "invariants" in failed:
            hints["rate"] = ("the rate is off together with the invariants: a regularizer (weight decay, a KL "
                             "term) or per-parameter step multipliers change the iteration")
        elif not math.isfinite(measured):
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
                             f"{noise.detail('factor'):.3g}x (factor) that of {setup.claims.mc_samples} "
                             f"sample(s) shared by the batch (one sample per row: {noise.detail('mean_per_row'):.3g}x "
                             f"and {noise.detail('factor_per_row'):.3g}x): is one weight sample drawn per step and "
                             "shared by every row (not one per example), and is mc_samples what the trainer uses?")
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


def _reached(setup: Setup, limit: CheckResult) -> str:
    if limit.error is not None or not limit.measurements:
        return "unknown (the run failed)"
    to_claimed = limit.measurements[2].error
    if setup.multipliers is None:
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


def run_checks(trainer, setup: Setup, *, name: str | None = None,
               progress: Callable[[str], None] | None = None) -> ConformanceReport:
    """Run every check of :data:`CHECKS` on ``trainer`` under a prepared :class:`~proofs_check.conform.Setup`.

    Parameters
    ----------
    trainer : callable
        The trainer under test (:class:`~proofs_check.conform.Trainer`).
    setup : Setup
        From :func:`~proofs_check.conform.prepare`.
    name : str, optional
        How the report names the trainer (default ``module:qualname``).
    progress : callable, optional
        Called with a short line before each long stage.

    Returns
    -------
    ConformanceReport
        A trainer that raises or breaks the calling convention fails the checks that needed that
        run (reported, not raised).

    Raises
    ------
    TypeError
        When ``trainer`` is not callable.
    """
    if not callable(trainer):
        raise TypeError(f"trainer must be callable, got {type(trainer).__name__}")
    started = time.perf_counter()
    say = progress or (lambda line: None)
    claims = setup.claims
    say(f"main run ({setup.steps} steps)")
    try:
        states, main_error = _main_run(trainer, setup), None
    except TrainerError as exc:
        states, main_error = None, str(exc)

    def on_main_run(function):
        def run():
            if main_error is not None:
                raise TrainerError(main_error)
            return function(setup, states)
        return run

    results = {name_: _timed(name_, on_main_run(function)) for name_, function in (
        ("start", _check_start), ("limit", _check_limit), ("invariants", _check_invariants))}
    results["rate"] = _timed("rate", on_main_run(_check_rate), skipped=None if claims.deterministic else
                             "stochastic gradients (mini-batches or MC samples) have no fixed contraction rate")
    results["w2-value"] = _timed("w2-value", on_main_run(_check_w2_value))
    say(f"ensemble of {setup.members} runs")
    results["ensemble"] = _timed("ensemble", lambda: _check_ensemble(trainer, setup, setup.members))
    if not claims.exact:
        say(f"MC noise over {setup.noise_runs} one-step runs")
    results["mc-noise"] = _timed("mc-noise", lambda: _check_mc_noise(trainer, setup, setup.noise_runs),
                                 skipped="exact gradients (no Monte Carlo samples claimed)" if claims.exact else None)
    hints = _hints(setup, results)
    return ConformanceReport(trainer=name or _name(trainer), claims=claims, problem=setup.description, lr=setup.lr,
                             lr_factor=setup.lr_factor,
                             steps=setup.steps, reached=_reached(setup, results["limit"]),
                             checks=tuple(replace(results[c], hint=hints.get(c)) for c in CHECKS),
                             seconds=time.perf_counter() - started)


def check_conformance(trainer, *, progress: Callable[[str], None] | None = None, **claims) -> ConformanceReport:
    """Run every check on ``trainer`` for the claims given and return the report.

    Cost: about ``(1 + 0.7·members + 20·[no trace]) × steps`` trainer steps, plus ``noise_runs``
    single steps for MC claims.

    Parameters
    ----------
    trainer : callable
        ``trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options)`` (see
        :mod:`proofs_check.conform.protocol`).
    progress : callable, optional
        Called with a short line before each long stage.
    **claims
        Keywords of :func:`~proofs_check.conform.setup.prepare`: what the trainer claims
        (``optimizer`` "gd"/"sgd"/"momentum", ``batch_size``, ``momentum``, ``mc_samples``,
        ``step_multipliers`` None/"random"/array) and the problem (``problem``, a
        :class:`linear_theory.RegressionProblem`; ``prior``, a :class:`linear_theory.Gaussian`; or
        the default problem's ``n = 6``, ``d = 16``, ``width = d``, ``condition_number = 2``),
        ``seed = 0``, ``members = 32`` ensemble runs, ``noise_runs = 400`` one-step MC runs.

    Returns
    -------
    ConformanceReport
        One result per check of :data:`CHECKS`.

    Raises
    ------
    ValueError, TypeError
        For bad claims or problem arguments, before the trainer runs; the trainer's own failures
        are reported as failed checks, not raised.
    """
    return run_checks(trainer, prepare(**claims), progress=progress)


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
