"""Claim C1 — Theorem 1 (regression): (S)GD, momentum and MC gradients on the expected loss,
started at the prior, converge to ``q∞ = N(μ₀ + X⁺(y − Xμ₀), P_null Σ₀ P_null)``, the
W₂-closest distribution to the prior among the minimizers of the expected loss."""
from __future__ import annotations

import numpy as np
import scipy.optimize

import linear_theory as lt

from ..registry import Measurement, Outcome, claim
from ._common import CONVERGED_RTOL, ROUNDING_RTOL, regression_setup, relative


def measured_rate(steps: np.ndarray, errors: np.ndarray, low: float = 1e-11, high: float = 1e-2) -> float:
    """Per-step contraction ``exp(slope)`` of ``log error`` over the points with error in ``[low, high]``.

    The window starts after the transient (faster modes gone) and stops before the rounding
    floor; NaN when fewer than three points fall in it.
    """
    keep = (errors >= low) & (errors <= high)
    if np.count_nonzero(keep) < 3:
        return float("nan")
    slope = np.polyfit(steps[keep], np.log(errors[keep]), 1)[0]
    return float(np.exp(slope))


def heavy_ball_rate(s: np.ndarray, lr: float, momentum: float) -> float:
    """Spectral radius of heavy ball ``θ' = θ − η(m v + 2s²θ)`` over the modes: max over ``s`` of the
    companion matrix ``[[1 + m − 2ηs², −m], [1, 0]]``'s largest eigenvalue modulus."""
    radii = []
    for value in s:
        companion = np.array([[1.0 + momentum - 2.0 * lr * value ** 2, -momentum], [1.0, 0.0]])
        radii.append(np.max(np.abs(np.linalg.eigvals(companion))))
    return float(max(radii))


def convergence_measurements(setup, result) -> list[Measurement]:
    """Limit reached, invariants at every recorded step, and the W₂ value of Theorem 1."""
    scale = setup.prior_to_limit
    size = np.linalg.norm(setup.prior.mean) + np.linalg.norm(setup.prior.factor)
    t = result.trace
    final = result.final
    return [
        Measurement("W2(q_T, q_inf) / W2(p, q_inf): simulation vs closed-form limit",
                    relative(lt.w2(final, setup.limit), scale), CONVERGED_RTOL,
                    "converged float64 simulation vs closed form (docs/theory.md §5)"),
        Measurement("max_t ||P_null(mu_t - mu_0)|| / (||mu_0|| + ||L_0||) over every recorded step",
                    relative(float(np.max(t.null_mean_drift)), size), ROUNDING_RTOL,
                    "exact invariant; rounding accumulated over the run"),
        Measurement("max_t ||P_null(L_t - L_0)||_F / (||mu_0|| + ||L_0||) over every recorded step",
                    relative(float(np.max(t.null_factor_drift)), size), ROUNDING_RTOL,
                    "exact invariant; rounding accumulated over the run"),
        Measurement("|W2^2(q_T, p) - (||X^+(X mu_0 - y)||^2 + ||P_row L_0||_F^2)| / W2^2(q_inf, p)",
                    relative(abs(lt.w2_squared(final, setup.prior)
                                 - lt.ibvi_limit_w2_squared(setup.X, setup.y, setup.prior)), scale ** 2),
                    CONVERGED_RTOL, "Theorem 1's value vs the W₂ of the simulated limit; convergence + rounding"),
    ]


STATEMENT = ("{opt} on the expected loss from the prior converges to q_inf = N(mu_0 + X^+(y - X mu_0), "
             "P_null Sigma_0 P_null); null-space parts of mean and factor never move")


@claim("C1-gd", statement=STATEMENT.format(opt="Full-batch GD") + "; contraction max|1 - 2 eta s_i^2| per step",
       reference="Theorem 1", kind="paper")
def check_gd(ctx) -> Outcome:
    setup = regression_setup(ctx)
    bound = lt.stability_bound(setup.X)
    lr = 0.9 * bound
    steps = 300 if ctx.quick else 400
    result = lt.simulate(setup.X, setup.y, setup.prior, lr=lr, steps=steps, record_every=1)
    predicted = float(np.max(np.abs(1.0 - 2.0 * lr * setup.singular_values ** 2)))
    rate = measured_rate(result.trace.steps, result.trace.w2_to_limit / setup.prior_to_limit)
    measurements = convergence_measurements(setup, result)
    measurements.append(Measurement(
        "|measured rate - max_i|1 - 2 eta s_i^2|| / predicted", abs(rate - predicted) / predicted, 1e-2,
        "log-slope fit over errors in [1e-11, 1e-2]: faster modes bias it by (ρ₂/ρ)^t, under 1 %"))
    # Neural-Tangents style: a few real steps equal the closed-form iterate at that step.
    worst = 0.0
    for k in (1, 5, 25):
        simulated = lt.simulate(setup.X, setup.y, setup.prior, lr=lr, steps=k, record_every=k).final
        closed = lt.gd_iterate(setup.X, setup.y, setup.prior, lr, k)
        gap = np.linalg.norm(simulated.mean - closed.mean) + np.linalg.norm(simulated.factor - closed.factor)
        worst = max(worst, relative(gap, setup.prior_to_limit))
    measurements.append(Measurement(
        "max_k (||mu_k - mu_k^cf|| + ||L_k - L_k^cf||_F) / W2(p, q_inf): k real steps vs gd_iterate(k), k = 1, 5, 25",
        worst, ROUNDING_RTOL, "two routes to the same parameters (iteration vs spectral formula); rounding only"))
    stable = lt.simulate(setup.X, setup.y, setup.prior, lr=0.999 * bound, steps=50, record_every=50)
    try:
        lt.simulate(setup.X, setup.y, setup.prior, lr=1.05 * bound, steps=2000, check_stability=False)
        diverged = False
    except lt.DivergenceError:
        diverged = True
    measurements.append(Measurement("stability bound 1/s_max^2: diverges at 1.05x (1 = no divergence)",
                                    0.0 if diverged else 1.0, 0.0,
                                    "mode s_max grows by 1.1 per step: 1e8 growth within 2000 steps"))
    measurements.append(Measurement("stability bound 1/s_max^2: finite at 0.999x (1 = not finite)",
                                    0.0 if np.isfinite(stable.trace.expected_loss[-1]) else 1.0, 0.0,
                                    "below the bound every mode contracts"))
    return Outcome(tuple(measurements), notes=(f"lr = 0.9/s_max^2, {steps} steps; predicted rate {predicted:.4f}, "
                                               f"measured {rate:.4f}",))


@claim("C1-sgd", statement=STATEMENT.format(opt="Mini-batch SGD"), reference="Theorem 1", kind="paper")
def check_sgd(ctx) -> Outcome:
    setup = regression_setup(ctx)
    n = setup.X.shape[0]
    batch = max(1, n // 4)
    steps = 1500 if ctx.quick else 2500
    result = lt.simulate(setup.X, setup.y, setup.prior, optimizer="sgd", batch_size=batch,
                         lr=0.15 * lt.stability_bound(setup.X), steps=steps, seed=ctx.rng(1))
    return Outcome(tuple(convergence_measurements(setup, result)),
                   notes=(f"batch {batch} of n = {n}, lr = 0.15/s_max^2, {steps} steps: the gradient noise "
                          "vanishes at the interpolating limit, so SGD converges linearly to it",))


@claim("C1-momentum", statement=STATEMENT.format(opt="Heavy-ball momentum"), reference="Theorem 1", kind="paper")
def check_momentum(ctx) -> Outcome:
    setup = regression_setup(ctx)
    lr, momentum = 0.3 * lt.stability_bound(setup.X), 0.5
    steps = 400
    result = lt.simulate(setup.X, setup.y, setup.prior, optimizer="momentum", lr=lr, momentum=momentum,
                         steps=steps, record_every=1)
    predicted = heavy_ball_rate(setup.singular_values, lr, momentum)
    rate = measured_rate(result.trace.steps, result.trace.w2_to_limit / setup.prior_to_limit)
    measurements = convergence_measurements(setup, result)
    measurements.append(Measurement(
        "|measured rate - heavy-ball spectral radius| / predicted", abs(rate - predicted) / predicted, 2e-2,
        "log-slope fit; complex-conjugate modes oscillate around the envelope ρ^t, a few % at most"))
    return Outcome(tuple(measurements), notes=(f"lr = 0.3/s_max^2, momentum {momentum}: predicted rate "
                                               f"{predicted:.4f}, measured {rate:.4f}",))


@claim("C1-mc", statement=STATEMENT.format(opt="GD with reparametrized Monte Carlo gradients"),
       reference="Theorem 1", kind="paper")
def check_mc(ctx) -> Outcome:
    setup = regression_setup(ctx, n=8 if ctx.quick else 10, d=24 if ctx.quick else 30, condition_number=2.0)
    bound = lt.stability_bound(setup.X)
    result = lt.simulate(setup.X, setup.y, setup.prior, mc_samples=4, lr=0.5 * bound, lr_factor=0.05 * bound,
                         steps=1500 if ctx.quick else 2500, seed=ctx.rng(2))
    return Outcome(tuple(convergence_measurements(setup, result)),
                   notes=("M = 4 samples, factor step 0.05/s_max^2 (below the MC threshold of C1-mc-threshold); "
                          "MC noise vanishes at q_inf (X L_inf = 0, X mu_inf = y), so convergence is linear",))


def minimize_over_feasible(setup, rng) -> tuple[lt.Gaussian, float]:
    """Minimize ``W₂²(q, p)`` over ``{q : Xμ = y, XL = 0}`` numerically (L-BFGS, analytic gradients).

    Feasible points are parametrized as ``μ = μ_p + N a`` and ``L = N B`` with ``N`` an
    orthonormal null-space basis (small ``d`` only: ``N`` comes from a full SVD) and ``μ_p`` any
    particular solution — here the least-squares one from ``scipy.linalg.lstsq``, a route that
    shares no code with :func:`linear_theory.ibvi_limit`. The gradient of the covariance part is
    ``2(L − L₀U*)`` (envelope theorem) with ``U*`` the optimal rotation.
    """
    X, y, prior = setup.X, setup.y, setup.prior
    d, r = prior.factor.shape
    _, s, Vt = np.linalg.svd(X, full_matrices=True)
    rank = int(np.sum(s > max(X.shape) * np.finfo(float).eps * s[0]))
    N = Vt[rank:].T
    mu_p = np.linalg.lstsq(X, y, rcond=None)[0] + 0.0
    k = N.shape[1]

    def unpack(theta):
        return mu_p + N @ theta[:k], N @ theta[k:].reshape(k, r)

    def objective(theta):
        mu, L = unpack(theta)
        q = lt.Gaussian(mu, L)
        value = lt.w2_squared(q, prior)
        A, _, Bt = np.linalg.svd(prior.factor.T @ L)
        grad_L = 2.0 * (L - prior.factor @ (A @ Bt))
        grad_mu = 2.0 * (mu - prior.mean)
        return value, np.concatenate([N.T @ grad_mu, (N.T @ grad_L).ravel()])

    theta0 = rng.standard_normal(k + k * r)
    result = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                     options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15})
    mu, L = unpack(result.x)
    return lt.Gaussian(mu, L), float(result.fun)


@claim("C1-optimality", statement="The GD limit is the W2-closest distribution to the prior among the minimizers "
       "of the expected loss (checked against a numerical minimization over that set)",
       reference="Theorem 1", kind="paper")
def check_optimality(ctx) -> Outcome:
    setup = regression_setup(ctx, n=6 if ctx.quick else 10, d=16 if ctx.quick else 30)
    simulated = lt.simulate(setup.X, setup.y, setup.prior, lr=0.9 * lt.stability_bound(setup.X), steps=400,
                            record_every=400).final
    found, value = minimize_over_feasible(setup, ctx.rng(3))
    sim_value = lt.w2_squared(simulated, setup.prior)
    scale = setup.prior_to_limit
    return Outcome((
        Measurement("(W2^2(q_T, p) - min over feasible q of W2^2(q, p)) / W2^2(q_T, p), clipped at 0",
                    max(0.0, (sim_value - value) / sim_value), 1e-9,
                    "L-BFGS stops at gtol 1e-12; the simulated limit may not beat the optimum by more than rounding"),
        Measurement("W2(numerical minimizer, simulated q_T) / W2(p, q_inf)",
                    relative(lt.w2(found, simulated), scale), 1e-5,
                    "strongly convex in (mu, LL^T): a value gap δ moves the minimizer by O(√δ)"),
        Measurement("||X mu_T - y|| / ||y|| (q_T minimizes the expected loss)",
                    float(np.linalg.norm(setup.X @ simulated.mean - setup.y) / np.linalg.norm(setup.y)),
                    ROUNDING_RTOL, "feasibility: interpolation to rounding"),
        Measurement("||X L_T||_F / ||X L_0||_F (q_T minimizes the expected loss)",
                    float(np.linalg.norm(setup.X @ simulated.factor) / np.linalg.norm(setup.X @ setup.prior.factor)),
                    ROUNDING_RTOL, "feasibility: zero predictive variance on the data"),
    ), notes=(f"min W2^2 found numerically {value:.12g}; simulated limit {sim_value:.12g}",))


@claim("C1-predictive", statement="Predictive of q_inf at x: mean x^T mu_inf, variance ||L_inf^T x||^2 — zero on "
       "row(X), the prior's variance on directions orthogonal to the data", reference="Theorem 1", kind="paper")
def check_predictive(ctx) -> Outcome:
    setup = regression_setup(ctx)
    X, prior = setup.X, setup.prior
    simulated = lt.simulate(X, setup.y, prior, lr=0.9 * lt.stability_bound(X), steps=400, record_every=400).final
    rng = ctx.rng(4)
    on_data = rng.standard_normal((10, X.shape[0])) @ X  # rows in row(X)
    away = lt.project_null(X, rng.standard_normal((X.shape[1], 10))).T  # rows orthogonal to the data
    prior_on = prior.predictive(on_data).variance
    prior_away = prior.predictive(away).variance
    var_on = simulated.predictive(on_data).variance
    var_away = simulated.predictive(away).variance
    mean_err = np.abs(simulated.predictive(on_data).mean - on_data @ setup.limit.mean)
    return Outcome((
        Measurement("max variance on row(X) / prior variance there", float(np.max(var_on / prior_on)),
                    ROUNDING_RTOL ** 2 * 1e4, "variance is a square: rounding of L_T (~1e-14) squared, with margin"),
        Measurement("max |variance orthogonal to the data / prior variance - 1|",
                    float(np.max(np.abs(var_away / prior_away - 1.0))), ROUNDING_RTOL,
                    "null-space part of the factor is invariant; rounding only"),
        Measurement("max |x^T mu_T - x^T mu_inf| / max|x^T mu_inf| on row(X)",
                    float(np.max(mean_err) / np.max(np.abs(on_data @ setup.limit.mean))), CONVERGED_RTOL,
                    "converged float64 simulation vs closed form (docs/theory.md §5)"),
    ))
