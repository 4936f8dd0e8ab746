"""Simulators against the closed forms, in the Neural-Tangents style: step 0 is the prior, a few
real steps are the closed-form iterate at that step, and the converged run is the IBVI limit."""
import re

import numpy as np
import pytest

from linear_theory import (DivergenceError, Gaussian, MeanFieldGaussian, SimulationResult, Trace, bayes_posterior,
                           expected_loss, gd_iterate, ibvi_limit, random_regression, simulate, stability_bound, w2)

EPS = np.finfo(np.float64).eps
N, D, R_LOW = 6, 15, 4


@pytest.fixture(scope="module")
def problem():
    p = random_regression(N, D, condition_number=2.0, seed=0)
    rng = np.random.default_rng(1)
    full = Gaussian(rng.standard_normal(D), rng.standard_normal((D, D)) / np.sqrt(D))
    priors = {
        "full": full,
        "lowrank": Gaussian(full.mean, full.factor[:, :R_LOW]),
        "meanfield": MeanFieldGaussian(full.mean, np.abs(rng.standard_normal(D)) + 0.1),
    }
    return p.X, p.y, priors


def size(q):
    spread = q.factor if isinstance(q, Gaussian) else q.scale
    return 1.0 + np.linalg.norm(q.mean) + np.linalg.norm(spread)


@pytest.mark.parametrize("mc_samples", [0, 2])
@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum"])
@pytest.mark.parametrize("family", ["full", "lowrank", "meanfield"])
def test_every_combination_runs_with_trace_and_invariants(problem, family, optimizer, mc_samples):
    X, y, priors = problem
    prior = priors[family]
    bound = stability_bound(X)
    lr = 0.1 * bound
    # MC noise lowers the factor's stable step (about 1/(1 + (r+1)/M)); momentum amplifies it
    lr_factor = lr if mc_samples == 0 else 0.01 * bound
    steps, every = 60, 7
    result = simulate(X, y, prior, family=family, optimizer=optimizer, lr=lr, lr_factor=lr_factor, steps=steps,
                      batch_size=3 if optimizer == "sgd" else None, mc_samples=mc_samples, seed=3,
                      record_every=every)
    assert isinstance(result, SimulationResult) and isinstance(result.trace, Trace)
    assert (result.family, result.optimizer) == (family, optimizer)
    assert result.stability_bound == pytest.approx((1.9 if optimizer == "momentum" else 1.0) * bound, rel=1e-12)
    trace = result.trace
    expected_steps = list(range(0, steps + 1, every)) + [steps]
    np.testing.assert_array_equal(trace.steps, expected_steps)
    for name in ("expected_loss", "w2_to_prior", "w2_to_limit", "null_mean_drift", "null_factor_drift"):
        assert getattr(trace, name).shape == (len(expected_steps),), name
    assert trace.w2_to_prior[0] == 0.0
    assert trace.expected_loss[0] == pytest.approx(expected_loss(X, y, prior), rel=1e-14)
    assert trace.expected_loss[-1] == pytest.approx(expected_loss(X, y, result.final), rel=1e-12)
    assert trace.w2_to_limit[-1] == pytest.approx(w2(result.final, result.limit), rel=1e-12)
    # Theorem 1's invariants at every recorded step: every gradient lies in row(X), so the
    # null-space parts move only by rounding (≤ steps·eps·size, with a factor 100 of headroom)
    tol = 100 * steps * EPS * size(prior)
    assert np.all(trace.null_mean_drift <= tol), trace.null_mean_drift.max()
    if family == "meanfield":
        assert np.all(np.isnan(trace.null_factor_drift))
        assert isinstance(result.final, MeanFieldGaussian)
    else:
        assert np.all(trace.null_factor_drift <= tol), trace.null_factor_drift.max()
        assert result.final.factor.shape == prior.factor.shape
    # it moves towards the limit
    assert trace.w2_to_limit[-1] < trace.w2_to_limit[0]


@pytest.mark.parametrize("family", ["full", "lowrank", "meanfield"])
def test_step_zero_is_the_prior(problem, family):
    X, y, priors = problem
    prior = priors[family]
    result = simulate(X, y, prior, family=family, lr=0.1 * stability_bound(X), steps=0)
    np.testing.assert_array_equal(result.final.mean, prior.mean)
    spread = "scale" if family == "meanfield" else "factor"
    np.testing.assert_array_equal(getattr(result.final, spread), getattr(prior, spread))
    np.testing.assert_array_equal(result.trace.steps, [0])
    assert w2(result.final, prior) == 0.0


@pytest.mark.parametrize("steps", [1, 3, 12])
@pytest.mark.parametrize("family", ["full", "lowrank"])
def test_a_few_gd_steps_equal_the_closed_form_iterate(problem, family, steps):
    X, y, priors = problem
    prior = priors[family]
    lr = 0.4 * stability_bound(X)
    result = simulate(X, y, prior, family=family, lr=lr, steps=steps)
    closed = gd_iterate(X, y, prior, lr, steps)
    # each step rounds at eps·size; contraction ≤ 1 keeps it from growing; κ = 2 here
    tol = 100 * (steps + 1) * EPS * size(prior)
    np.testing.assert_allclose(result.final.mean, closed.mean, rtol=0, atol=tol)
    np.testing.assert_allclose(result.final.factor, closed.factor, rtol=0, atol=tol)


def test_meanfield_scales_follow_their_closed_form_and_collapse(problem):
    X, y, priors = problem
    X = X.copy()
    X[:, 0] = 0.0  # a feature the data never touch keeps its prior scale
    prior = priors["meanfield"]
    lr = 0.3 * stability_bound(X)
    col_sq = np.sum(X ** 2, axis=0)
    for steps in (1, 5, 20):
        result = simulate(X, y, prior, family="meanfield", lr=lr, steps=steps)
        # C4: s_j(t) = s_j(0)(1 − 2η‖X_:j‖²)^t, feature by feature
        np.testing.assert_allclose(result.final.scale, prior.scale * (1 - 2 * lr * col_sq) ** steps,
                                   rtol=100 * steps * EPS)
    converged = simulate(X, y, prior, family="meanfield", lr=lr, steps=3000)
    assert converged.final.scale[0] == prior.scale[0]
    assert np.all(np.abs(converged.final.scale[1:]) <= 1e-12 * np.abs(prior.scale[1:]))
    assert converged.trace.w2_to_limit[-1] <= 1e-10 * converged.trace.w2_to_limit[0]


@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
@pytest.mark.parametrize("family", ["full", "lowrank"])
def test_converged_run_is_the_ibvi_limit(problem, family, optimizer):
    X, y, priors = problem
    prior = priors[family]
    bound = stability_bound(X)
    lr = 0.45 * bound if optimizer == "gd" else 0.2 * bound
    result = simulate(X, y, prior, family=family, optimizer=optimizer, lr=lr, steps=600)
    limit = ibvi_limit(X, y, prior)
    # docs/theory.md §5: after convergence in float64, relative errors about 1e-8 or better
    assert w2(result.final, limit) <= 1e-10 * size(limit)
    assert w2(result.limit, limit) == 0.0
    # with enough steps the closed-form iterate is the limit as well
    assert w2(gd_iterate(X, y, prior, lr, 5000), limit) <= 1e-12 * size(limit)


def test_gd_contraction_rate_and_monotone_loss(problem):
    X, y, priors = problem
    prior = priors["full"]
    s = np.linalg.svd(X, compute_uv=False)
    lr = 0.3 / s[0] ** 2
    rho = np.max(np.abs(1 - 2 * lr * s ** 2))  # C1: the slowest mode's factor per step
    result = simulate(X, y, prior, lr=lr, steps=80, record_every=1)
    trace = result.trace
    assert np.all(np.diff(trace.expected_loss) <= 1e-12 * trace.expected_loss[0])
    ratio = trace.w2_to_limit[61:81] / trace.w2_to_limit[60:80]
    # after 60 steps the next-slowest mode is down by (ρ₂/ρ)^60 < 1e-3 relative
    np.testing.assert_allclose(ratio, rho, rtol=2e-3)


@pytest.mark.parametrize("mc_samples,batch_size", [(0, 2), (3, None), (3, 3)])
def test_sgd_and_monte_carlo_converge_on_an_interpolable_problem(problem, mc_samples, batch_size):
    X, y, priors = problem
    prior = priors["full"]
    bound = stability_bound(X)
    optimizer = "gd" if batch_size is None else "sgd"
    # at the interpolating limit the residual and XL vanish, so mini-batch and MC noise vanish too:
    # the stochastic runs converge to the limit itself, not to a noise ball
    result = simulate(X, y, prior, optimizer=optimizer, lr=0.1 * bound, lr_factor=0.05 * bound, steps=3000,
                      batch_size=batch_size, mc_samples=mc_samples, seed=4)
    trace = result.trace
    assert trace.w2_to_limit[-1] <= 1e-8 * trace.w2_to_limit[0]
    assert w2(result.final, ibvi_limit(X, y, prior)) <= 1e-8 * size(prior)


def test_seeds_reproduce_and_differ(problem):
    X, y, priors = problem
    prior = priors["lowrank"]
    kwargs = dict(family="lowrank", optimizer="sgd", batch_size=2, mc_samples=2, lr=0.1 * stability_bound(X),
                  lr_factor=0.02 * stability_bound(X), steps=25)
    a = simulate(X, y, prior, seed=7, **kwargs)
    b = simulate(X, y, prior, seed=7, **kwargs)
    c = simulate(X, y, prior, seed=8, **kwargs)
    g = simulate(X, y, prior, seed=np.random.default_rng(7), **kwargs)
    np.testing.assert_array_equal(a.final.mean, b.final.mean)
    np.testing.assert_array_equal(a.final.factor, b.final.factor)
    np.testing.assert_array_equal(a.trace.w2_to_limit, b.trace.w2_to_limit)
    np.testing.assert_array_equal(a.final.factor, g.final.factor)  # a Generator seeded 7 is the same stream
    assert np.linalg.norm(a.final.factor - c.final.factor) > 1e-6 * np.linalg.norm(a.final.factor)
    # exact full-batch GD does not use the seed at all
    d1 = simulate(X, y, prior, family="lowrank", lr=0.1 * stability_bound(X), steps=5, seed=1)
    d2 = simulate(X, y, prior, family="lowrank", lr=0.1 * stability_bound(X), steps=5, seed=2)
    np.testing.assert_array_equal(d1.final.factor, d2.final.factor)


def test_divergence_error_names_the_bound(problem):
    X, y, priors = problem
    bound = 1.0 / np.linalg.norm(X, 2) ** 2
    with pytest.raises(DivergenceError, match=re.escape(f"stability bound of this problem is {bound:.4g}")) as info:
        simulate(X, y, priors["full"], lr=1.5 * bound, steps=500, check_stability=False)
    assert info.value.bound == pytest.approx(bound, rel=1e-12)
    assert info.value.lr == pytest.approx(1.5 * bound)
    assert 0 < info.value.step <= 500
    # a momentum bound of (1 + m)/s_max²
    with pytest.raises(DivergenceError, match=re.escape(f"{1.9 * bound:.4g}")):
        simulate(X, y, priors["full"], optimizer="momentum", lr=2.5 * bound, steps=2000, check_stability=False)
    # and below the bound the run is stable: the bound is the real threshold for GD
    ok = simulate(X, y, priors["full"], lr=0.99 * bound, steps=200, check_stability=False)
    assert ok.trace.w2_to_limit[-1] < ok.trace.w2_to_limit[0]


def test_preconditioned_run_reaches_the_noiseless_posterior(problem):
    X, y, priors = problem
    prior = priors["lowrank"]  # Σ₀ = L₀L₀ᵀ of rank 4 < n: the posterior must interpolate through L₀
    rng = np.random.default_rng(0)
    y_reach = X @ (prior.mean + prior.factor @ rng.standard_normal(R_LOW))  # y − Xμ₀ ∈ col(XL₀)
    bound = stability_bound(X, prior=prior, preconditioned=True)
    assert bound == pytest.approx(1 / np.linalg.norm(X @ prior.factor, 2) ** 2, rel=1e-12)
    result = simulate(X, y_reach, prior, family="lowrank", lr=0.4 * bound, steps=4000, preconditioned=True)
    posterior = bayes_posterior(X, y_reach, prior)
    # the limit is computed in the preconditioner's geometry (R = L₀), the posterior in the prior's
    # latent SVD: two routes that agree to the O(κ(XL₀)·eps) forward error of a pseudo-inverse
    a = np.linalg.svd(X @ prior.factor, compute_uv=False)
    assert w2(result.limit, posterior) <= 100 * (a[0] / a[-1]) * max(X.shape) * EPS * size(posterior)
    assert w2(result.final, posterior) <= 1e-8 * size(posterior)


def test_lowrank_limit_rank(problem):
    X, y, priors = problem
    result = simulate(X, y, priors["lowrank"], family="lowrank", lr=0.4 * stability_bound(X), steps=400)
    s = np.linalg.svd(result.final.factor, compute_uv=False)
    # C4: L∞ = P_null L₀ has rank ≤ min(r, d − n) (here r = 4 ≤ d − n = 9, so exactly r)
    assert np.sum(s > 1e-10 * s[0]) == min(R_LOW, D - N)


# -- step multipliers (docs/theory.md §4 (C12)) -----------------------------------------------------

MULTIPLIERS = np.geomspace(0.2, 5.0, D)[np.random.default_rng(5).permutation(D)]  # κ(D) = 25


def test_step_multiplier_bound_is_the_threshold():
    problem = random_regression(N, D, condition_number=2.0, seed=0)
    X = problem.X
    bound = stability_bound(X, step_multipliers=MULTIPLIERS)
    assert bound == pytest.approx(1 / np.linalg.norm(X * np.sqrt(MULTIPLIERS), 2) ** 2, rel=1e-12)
    assert stability_bound(X, "momentum", 0.5, step_multipliers=MULTIPLIERS) == pytest.approx(1.5 * bound, rel=1e-14)
    prior = Gaussian.isotropic(0.0, 1.0, D)
    y = problem.y
    ok = simulate(X, y, prior, lr=0.99 * bound, steps=300, step_multipliers=MULTIPLIERS)
    assert ok.trace.w2_to_limit[-1] < ok.trace.w2_to_limit[0]
    with pytest.raises(DivergenceError):  # just above it, the top mode grows by |1 − 2ηs²| > 1
        simulate(X, y, prior, lr=1.05 * bound, steps=3000, step_multipliers=MULTIPLIERS, check_stability=False)
    with pytest.raises(ValueError, match="at or above the stability bound"):
        simulate(X, y, prior, lr=1.05 * bound, steps=3, step_multipliers=MULTIPLIERS)


@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
@pytest.mark.parametrize("family", ["full", "lowrank", "meanfield"])
def test_step_multiplier_run_converges_to_the_metric_limit(problem, family, optimizer):
    X, y, priors = problem
    prior = priors[family]
    bound = stability_bound(X, step_multipliers=MULTIPLIERS)
    lr = 0.45 * bound if optimizer == "gd" else 0.2 * bound
    s = np.linalg.svd(X * np.sqrt(MULTIPLIERS), compute_uv=False)
    # slowest GD mode contracts by 1 − 2ηs_min² (a mean-field scale by 1 − 2ηD_j‖X_:j‖²); run
    # until it is below 1e-20 of its start
    slowest = min(s[-1] ** 2, np.min(MULTIPLIERS * np.sum(X ** 2, axis=0))) if family == "meanfield" else s[-1] ** 2
    steps = int(np.ceil(np.log(1e-20) / np.log1p(-2 * lr * slowest)))
    result = simulate(X, y, prior, family=family, optimizer=optimizer, lr=lr, steps=steps,
                      step_multipliers=MULTIPLIERS, record_every=max(1, steps // 50))
    if family == "meanfield":
        limit_mean = ibvi_limit(X, y, Gaussian(prior.mean, np.zeros((D, 1))), step_multipliers=MULTIPLIERS).mean
        np.testing.assert_array_equal(result.limit.mean, limit_mean)
        assert np.all(result.limit.scale == 0.0)  # every feature is touched by the data
    else:
        limit = ibvi_limit(X, y, prior, step_multipliers=MULTIPLIERS)
        assert w2(result.limit, limit) <= 1e3 * EPS * size(limit)  # the same formula with another solver call
        assert w2(result.limit, ibvi_limit(X, y, prior)) > 1e-3  # far from the identity-metric limit
    # float64 rounding after convergence (docs/theory.md §5): κ(XD^{½}) ≈ 20, so 1e-12 has headroom
    assert w2(result.final, result.limit) <= 1e-12 * size(result.limit)
    # the invariants in the D⁻¹ metric hold at every recorded step (rounding per step, 100× headroom)
    tol = 100 * steps * EPS * size(prior)
    assert np.all(result.trace.null_mean_drift <= tol), result.trace.null_mean_drift.max()
    if family != "meanfield":
        assert np.all(result.trace.null_factor_drift <= tol), result.trace.null_factor_drift.max()


@pytest.mark.parametrize("steps", [1, 4, 15])
def test_step_multiplier_gd_steps_equal_the_closed_form_iterate(problem, steps):
    X, y, priors = problem
    prior = priors["lowrank"]
    lr = 0.4 * stability_bound(X, step_multipliers=MULTIPLIERS)
    result = simulate(X, y, prior, family="lowrank", lr=lr, steps=steps, step_multipliers=MULTIPLIERS)
    closed = gd_iterate(X, y, prior, lr, steps, step_multipliers=MULTIPLIERS)
    # as for D = 1: each step rounds at eps·size, the spectral map at κ(XD^{½})²·eps
    tol = (1e3 * 20 ** 2 + 100 * steps) * EPS * size(prior)
    np.testing.assert_allclose(result.final.mean, closed.mean, rtol=0, atol=tol)
    np.testing.assert_allclose(result.final.factor, closed.factor, rtol=0, atol=tol)


def test_step_multiplier_meanfield_scales_follow_their_closed_form(problem):
    X, y, priors = problem
    prior = priors["meanfield"]
    lr = 0.3 * stability_bound(X, step_multipliers=MULTIPLIERS)
    col_sq = np.sum(X ** 2, axis=0)
    for steps in (1, 6):
        result = simulate(X, y, prior, family="meanfield", lr=lr, steps=steps, step_multipliers=MULTIPLIERS)
        # s_j(t) = s_j(0)(1 − 2ηD_j‖X_:j‖²)^t
        np.testing.assert_allclose(result.final.scale, prior.scale * (1 - 2 * lr * MULTIPLIERS * col_sq) ** steps,
                                   rtol=100 * steps * EPS)


@pytest.mark.parametrize("mc_samples,optimizer", [(2, "gd"), (0, "sgd"), (2, "momentum")])
def test_step_multiplier_stochastic_runs_reach_the_metric_limit(problem, mc_samples, optimizer):
    X, y, priors = problem
    prior = priors["full"]
    bound = stability_bound(X, step_multipliers=MULTIPLIERS)
    # at the interpolating limit mini-batch and MC noise vanish, so the runs reach the limit itself
    result = simulate(X, y, prior, optimizer=optimizer, lr=0.1 * bound, lr_factor=0.02 * bound, steps=6000,
                      batch_size=3 if optimizer == "sgd" else None, mc_samples=mc_samples, seed=9,
                      momentum=0.5, step_multipliers=MULTIPLIERS)
    assert w2(result.final, ibvi_limit(X, y, prior, step_multipliers=MULTIPLIERS)) <= 1e-8 * size(prior)
    tol = 100 * 6000 * EPS * size(prior)
    assert np.all(result.trace.null_mean_drift <= tol) and np.all(result.trace.null_factor_drift <= tol)


def test_constant_step_multipliers_are_a_rescaled_step(problem):
    X, y, priors = problem
    prior = priors["full"]
    lr = 0.3 * stability_bound(X)
    plain = simulate(X, y, prior, lr=lr, steps=40)
    scaled = simulate(X, y, prior, lr=lr / 4.0, steps=40, step_multipliers=np.full(D, 4.0))
    # η·4 and (η/4)·4 are the same float: the same steps up to the rounding of D ⊙ g
    np.testing.assert_allclose(scaled.final.mean, plain.final.mean, rtol=0, atol=100 * 40 * EPS * size(prior))
    assert w2(scaled.limit, plain.limit) <= 1e3 * EPS * size(prior)


def test_preconditioned_limit_without_an_interpolating_posterior(problem):
    X, y, priors = problem
    prior = priors["lowrank"]  # rank 4 < n = 6: y − Xμ₀ ∉ col(XL₀), no noiseless posterior exists
    with pytest.raises(ValueError, match="noise_var=0 needs data that the prior can interpolate"):
        bayes_posterior(X, y, prior)
    bound = stability_bound(X, prior=prior, preconditioned=True)
    result = simulate(X, y, prior, family="lowrank", lr=0.4 * bound, steps=3000, preconditioned=True)
    # preconditioned GD solves least squares in the prior's latent coordinates: μ₀ + L₀(XL₀)⁺(y − Xμ₀)
    A = X @ prior.factor
    mean = prior.mean + prior.factor @ np.linalg.pinv(A) @ (y - X @ prior.mean)
    factor = prior.factor - prior.factor @ (np.linalg.pinv(A) @ A)
    a = np.linalg.svd(A, compute_uv=False)
    tol = 100 * (a[0] / a[-1]) * max(X.shape) * EPS * size(prior)
    np.testing.assert_allclose(result.limit.mean, mean, rtol=0, atol=tol)
    np.testing.assert_allclose(result.limit.factor, factor, rtol=0, atol=tol)
    assert w2(result.final, result.limit) <= 1e-10 * size(prior)
    # Σ₀-preconditioned gradients move only inside range(Σ₀Xᵀ): the oblique invariant holds
    assert np.all(result.trace.null_mean_drift <= 100 * 3000 * EPS * size(prior))


def test_step_multipliers_cannot_be_combined_with_preconditioning(problem):
    X, y, priors = problem
    with pytest.raises(ValueError, match="step_multipliers cannot be combined with preconditioned=True"):
        simulate(X, y, priors["full"], lr=1e-3, steps=1, preconditioned=True, step_multipliers=MULTIPLIERS)
