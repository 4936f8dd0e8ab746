"""Closed forms (C1, C3, C5): IBVI limit, W₂-GVI path, exact GD iterate, Bayesian posterior.

References are independent routes: explicit GD steps written out here, dense textbook formulas
with ``d × d`` matrices at small ``d``, Monte Carlo with standard errors, perturbations of the
feasible set for optimality. Scalings check that each closed form transforms as it must.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from linear_theory import (Gaussian, MeanFieldGaussian, bayes_posterior, expected_loss, gd_iterate, ibvi_limit,
                           ibvi_limit_w2_squared, random_regression, row_space_solver, w2, w2_gvi, w2_squared)

EPS = np.finfo(np.float64).eps
seeds = st.integers(0, 2**32 - 1)


@st.composite
def problems(draw, max_n=8, max_d=20):
    """(X, y, prior, kappa) covering n < d, n = d − 1, rank-deficient X, r < d, r > n, r > d."""
    shape = draw(st.sampled_from(["wide", "d-1", "deficient", "random"]))
    if shape == "wide":
        n = draw(st.integers(1, max_n))
        d = draw(st.integers(n + 1, max_d))
        rank = n
    elif shape == "d-1":
        d = draw(st.integers(2, max_n + 1))
        n, rank = d - 1, d - 1
    elif shape == "deficient":
        n = draw(st.integers(2, max_n))
        d = draw(st.integers(n + 1, max_d))
        rank = draw(st.integers(1, n - 1))
    else:
        n, d = draw(st.integers(1, max_n)), draw(st.integers(1, max_d))
        rank = min(n, d)
    kappa = draw(st.sampled_from([1.0, 5.0, 100.0]))
    seed = draw(seeds)
    problem = random_regression(n, d, rank=rank, condition_number=kappa, seed=seed)
    rng = np.random.default_rng(seed + 1)
    r = draw(st.sampled_from([1, max(1, n // 2), n + 1, d, d + 2]))  # r < d, r > n, r > d
    y = problem.y if rank < n else rng.standard_normal(n)  # rank-deficient: keep y ∈ col(X)
    prior = Gaussian(rng.standard_normal(d), rng.standard_normal((d, r)) / np.sqrt(r))
    return problem.X, y, prior, kappa


def dense_null(X):
    return np.eye(X.shape[1]) - np.linalg.pinv(X, rcond=max(X.shape) * EPS) @ X


# -- ibvi_limit ----------------------------------------------------------------------------------

@given(problems())
def test_ibvi_limit_interpolates_and_keeps_null_space(problem):
    X, y, prior, kappa = problem
    limit = ibvi_limit(X, y, prior)
    assert limit.mean.shape == prior.mean.shape and limit.factor.shape == prior.factor.shape
    P = dense_null(X)
    size = np.linalg.norm(prior.mean) + np.linalg.norm(np.linalg.pinv(X) @ y)
    tol = 100 * kappa * max(X.shape) * EPS  # O(κ·eps) forward error of X⁺ and of pinv itself
    # C1: interpolation, and the null-space parts of mean and factor are the prior's
    assert np.linalg.norm(X @ limit.mean - y) <= tol * np.linalg.norm(X, 2) * size
    np.testing.assert_allclose(P @ limit.mean, P @ prior.mean, atol=tol * size)
    np.testing.assert_allclose(limit.factor, P @ prior.factor, atol=tol * np.linalg.norm(prior.factor))
    # among interpolants the mean is the closest to μ₀: μ∞ − μ₀ ∈ row(X)
    np.testing.assert_allclose(P @ (limit.mean - prior.mean), 0.0, atol=tol * size)


@given(problems())
def test_ibvi_limit_w2_value_matches_procrustes_route(problem):
    X, y, prior, kappa = problem
    limit = ibvi_limit(X, y, prior)
    value = ibvi_limit_w2_squared(X, y, prior)  # ‖X⁺(Xμ₀ − y)‖² + ‖P_row L₀‖²_F
    procrustes = w2_squared(limit, prior)  # minimizes over couplings, a different computation
    assert procrustes == pytest.approx(value, rel=1e-9, abs=1e-12)


@settings(max_examples=15)
@given(problems(), seeds)
def test_ibvi_limit_is_w2_closest_among_minimizers(problem, seed):
    """Second route for optimality: every other minimizer of ℓ̄ (Xμ = y, XL = 0) is farther."""
    X, y, prior, kappa = problem
    limit = ibvi_limit(X, y, prior)
    best = w2_squared(limit, prior)
    P = dense_null(X)
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    for width in (prior.width, prior.width + 2, 1):
        for step in (1e-3, 0.3):
            mean = limit.mean + step * P @ rng.standard_normal(d)
            factor = P @ (np.hstack([limit.factor, np.zeros((d, max(0, width - prior.width)))])[:, :width]
                          + step * rng.standard_normal((d, width)))
            other = Gaussian(mean, factor)
            assert expected_loss(X, y, other) <= 1e-9 * (1 + np.sum(y ** 2))  # it is a minimizer
            assert w2_squared(other, prior) >= best - 1e-10 * (1 + best)


@given(problems(), st.sampled_from([1e-3, 2.0, 1e3]))
def test_closed_forms_transform_under_scalings(problem, c):
    X, y, prior, kappa = problem
    base = ibvi_limit(X, y, prior)
    tol = 1e-9 * (1 + np.linalg.norm(base.mean) + np.linalg.norm(base.factor))
    # X → cX, y → cy: the same interpolants, the same limit
    same = ibvi_limit(c * X, c * y, prior)
    np.testing.assert_allclose(same.mean, base.mean, atol=tol)
    np.testing.assert_allclose(same.factor, base.factor, atol=tol)
    # y, μ₀, L₀ → c·(y, μ₀, L₀): the whole limit scales by c
    scaled = ibvi_limit(X, c * y, Gaussian(c * prior.mean, c * prior.factor))
    np.testing.assert_allclose(scaled.mean, c * base.mean, atol=c * tol)
    np.testing.assert_allclose(scaled.factor, c * base.factor, atol=c * tol)
    # W₂-GVI: (cX, cy, c²λ) is the same problem; GD: (cX, cy, η/c²) takes the same steps
    lam, lr = 0.3, 0.2 / np.linalg.norm(X, 2) ** 2
    a, b = w2_gvi(X, y, prior, lam), w2_gvi(c * X, c * y, prior, c * c * lam)
    assert w2(a, b) <= tol
    g1, g2 = gd_iterate(X, y, prior, lr, 7), gd_iterate(c * X, c * y, prior, lr / c ** 2, 7)
    assert w2(g1, g2) <= tol


# -- gd_iterate ----------------------------------------------------------------------------------

def explicit_gd(X, y, prior, lr, steps):
    """Plain GD on ℓ̄ = ‖y − Xμ‖² + ‖XL‖²_F, written out step by step (independent route)."""
    mu, L = prior.mean.copy(), prior.factor.copy()
    for _ in range(steps):
        mu = mu + 2 * lr * X.T @ (y - X @ mu)
        L = L - 2 * lr * X.T @ (X @ L)
    return Gaussian(mu, L)


@given(problems(), st.sampled_from([0, 1, 2, 5, 40]), st.sampled_from([0.1, 0.5, 0.99]))
def test_gd_iterate_equals_explicit_steps(problem, steps, fraction):
    X, y, prior, kappa = problem
    lr = fraction / np.linalg.norm(X, 2) ** 2
    closed = gd_iterate(X, y, prior, lr, steps)
    if steps == 0:
        assert closed is prior
    loop = explicit_gd(X, y, prior, lr, steps)
    # each explicit step adds O(eps·‖state‖) that is never amplified (contraction ≤ 1); the closed
    # form costs O(κ²·eps) through its spectral map (no refinement on the Gram route), so 1e3·κ²·eps
    size = 1 + np.linalg.norm(loop.mean) + np.linalg.norm(loop.factor)
    tol = (1e3 * kappa ** 2 + 10 * steps) * EPS * size
    assert np.linalg.norm(closed.mean - loop.mean) <= tol
    assert np.linalg.norm(closed.factor - loop.factor) <= tol


@given(problems())
def test_gd_iterate_at_large_steps_is_the_limit(problem):
    X, y, prior, kappa = problem
    s = np.linalg.svd(X, compute_uv=False)
    s_min = s[s > max(X.shape) * EPS * s[0]][-1]
    lr = 0.5 / s[0] ** 2
    # slowest contraction 1 − 2ηs_min² = 1 − 1/κ²; enough steps to reach 1e-20
    # (one step suffices when 2ηs_min² = 1, where the log below is −inf)
    with np.errstate(divide="ignore"):
        steps = max(1, int(np.ceil(np.log(1e-20) / np.log1p(-2 * lr * s_min ** 2))))
    limit = ibvi_limit(X, y, prior)
    closed = gd_iterate(X, y, prior, lr, steps)
    size = 1 + np.linalg.norm(limit.mean) + np.linalg.norm(limit.factor)
    assert w2(closed, limit) <= 1e3 * kappa ** 2 * EPS * size


def test_gd_iterate_oscillating_and_divergent_modes():
    problem = random_regression(3, 6, spectrum=[2.0, 1.0, 0.5], seed=1)
    X, y = problem.X, problem.y
    prior = Gaussian.isotropic(0.0, 1.0, 6)
    bound = 1 / 4.0
    # 1 < 2ηs² < 2 for the top mode: oscillates but converges; matches explicit steps
    for lr, steps in ((0.9 * bound, 9), (1.2 * bound, 6)):
        closed, loop = gd_iterate(X, y, prior, lr, steps), explicit_gd(X, y, prior, lr, steps)
        np.testing.assert_allclose(closed.mean, loop.mean, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(closed.factor, loop.factor, rtol=1e-11, atol=1e-12)


# -- w2_gvi --------------------------------------------------------------------------------------

@given(problems(), st.sampled_from([1e-4, 0.1, 10.0]))
def test_w2_gvi_matches_dense_formula(problem, lam):
    X, y, prior, kappa = problem
    n, d = X.shape
    H = X.T @ np.linalg.solve(X @ X.T + lam * np.eye(n), np.eye(n))  # d × n, small d only
    mean = prior.mean + H @ (y - X @ prior.mean)
    factor = (np.eye(d) - H @ X) @ prior.factor
    q = w2_gvi(X, y, prior, lam)
    # κ(XXᵀ + λI) ≤ (s_max² + λ)/λ ≤ 1e4 here: the dense solve is the less accurate of the two
    cond = (np.linalg.norm(X, 2) ** 2 + lam) / lam
    tol = 100 * cond * EPS * (1 + np.linalg.norm(mean) + np.linalg.norm(factor))
    assert np.linalg.norm(q.mean - mean) <= tol
    assert np.linalg.norm(q.factor - factor) <= tol


@given(problems())
def test_w2_gvi_lam_zero_is_ibvi_limit(problem):
    X, y, prior, kappa = problem
    a, b = w2_gvi(X, y, prior, 0.0), ibvi_limit(X, y, prior)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.factor, b.factor)


def test_w2_gvi_small_lam_rate_towards_limit():
    problem = random_regression(6, 20, condition_number=4.0, seed=7)
    X, y = problem.X, np.random.default_rng(0).standard_normal(6)
    prior = Gaussian(np.random.default_rng(1).standard_normal(20), np.random.default_rng(2).standard_normal((20, 20)))
    s_min = problem.singular_values[-1]
    limit = ibvi_limit(X, y, prior)
    radius = np.sqrt(ibvi_limit_w2_squared(X, y, prior))
    errors = []
    lams = [1e-4, 1e-5, 1e-6, 1e-7]  # λ/s_min² ≤ 1.6e-3: deep in the first-order regime
    for lam in lams:
        err = w2(w2_gvi(X, y, prior, lam), limit)
        # mode by mode the map moves by λ/(s² + λ) ≤ λ/s_min² times its size: W₂ ≤ (λ/s_min²)·W₂(p, q∞)
        assert err <= lam / s_min ** 2 * radius * (1 + 1e-9)
        errors.append(err)
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    # first order in λ: each 10× smaller λ gives a 10× smaller distance, up to the relative
    # second-order correction O(λ/s_min²) ≤ 1.6e-3
    np.testing.assert_allclose(ratios, 10.0, rtol=5e-3)


def test_w2_gvi_large_lam_rate_towards_prior():
    problem = random_regression(6, 20, condition_number=4.0, seed=8)
    X, y = problem.X, np.random.default_rng(3).standard_normal(6)
    prior = Gaussian(np.zeros(20), np.eye(20))
    s_max = problem.singular_values[0]
    radius = np.sqrt(ibvi_limit_w2_squared(X, y, prior))
    errors = []
    lams = [1e3, 1e4, 1e5, 1e6]  # s_max²/λ ≤ 1e-3: first-order regime
    for lam in lams:
        err = w2(w2_gvi(X, y, prior, lam), prior)
        assert err <= s_max ** 2 / lam * radius * (1 + 1e-9)  # filter s²/(s² + λ) ≤ s_max²/λ
        errors.append(err)
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 10.0, rtol=5e-3)  # relative correction O(s_max²/λ) ≤ 1e-3


# -- bayes_posterior -----------------------------------------------------------------------------

def dense_posterior(X, y, prior, noise_var):
    S0 = prior.cov()
    K = X @ S0 @ X.T + noise_var * np.eye(X.shape[0])
    gain = S0 @ X.T @ np.linalg.pinv(K)
    return prior.mean + gain @ (y - X @ prior.mean), S0 - gain @ X @ S0


@given(problems(), st.sampled_from([1e-2, 1.0, 30.0]))
def test_bayes_posterior_with_noise_matches_textbook_formula(problem, noise_var):
    X, y, prior, kappa = problem
    post = bayes_posterior(X, y, prior, noise_var)
    mean, cov = dense_posterior(X, y, prior, noise_var)
    # κ(XΣ₀Xᵀ + σ²I) ≤ 1 + ‖XL₀‖²/σ² bounds the error of the dense reference
    cond = 1 + np.linalg.norm(X @ prior.factor, 2) ** 2 / noise_var
    scale = 1 + np.linalg.norm(prior.mean) + np.linalg.norm(prior.factor) ** 2 + np.linalg.norm(y)
    tol = 100 * cond * max(X.shape) * EPS * scale
    assert np.linalg.norm(post.mean - mean) <= tol
    assert np.linalg.norm(post.cov() - cov) <= tol
    assert post.factor.shape == prior.factor.shape


@given(problems())
def test_noiseless_posterior_with_isotropic_prior_is_ibvi_limit(problem):
    X, y, prior, kappa = problem
    d = X.shape[1]
    iso = Gaussian.isotropic(prior.mean, 0.7, d)
    post, limit = bayes_posterior(X, y, iso), ibvi_limit(X, y, iso)
    size = 1 + np.linalg.norm(limit.mean) + np.linalg.norm(limit.factor)
    assert w2(post, limit) <= 100 * kappa * max(X.shape) * EPS * size


def test_noiseless_posterior_general_prior_differs_from_ibvi_limit_and_matches_dense():
    problem = random_regression(4, 10, condition_number=3.0, seed=2)
    X, y = problem.X, problem.y
    rng = np.random.default_rng(5)
    prior = Gaussian(rng.standard_normal(10), rng.standard_normal((10, 10)))
    post = bayes_posterior(X, y, prior)
    mean, cov = dense_posterior(X, y, prior, 0.0)
    np.testing.assert_allclose(post.mean, mean, atol=1e-11 * (1 + np.linalg.norm(mean)))
    np.testing.assert_allclose(post.cov(), cov, atol=1e-11 * (1 + np.linalg.norm(cov)))
    np.testing.assert_allclose(X @ post.mean, y, atol=1e-11 * np.linalg.norm(y))  # interpolates
    # C3: for a non-isotropic Σ₀ the IBVI limit is not the posterior (a gap far above rounding)
    assert w2(post, ibvi_limit(X, y, prior)) > 1e-2
    # continuity in the noise: σ² = 1e-10 is within O(σ²/a_min²) of the noiseless posterior
    assert w2(bayes_posterior(X, y, prior, 1e-10), post) <= 1e-4


# -- expected_loss -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["full", "lowrank", "meanfield"])
def test_expected_loss_matches_monte_carlo(kind):
    rng = np.random.default_rng(9)
    n, d, m = 5, 8, 200_000
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    if kind == "meanfield":
        q = MeanFieldGaussian(rng.standard_normal(d), rng.standard_normal(d))
    else:
        q = Gaussian(rng.standard_normal(d), rng.standard_normal((d, d if kind == "full" else 3)))
    draws = q.sample(m, rng)
    losses = np.sum((y[None, :] - draws @ X.T) ** 2, axis=1)
    se = losses.std(ddof=1) / np.sqrt(m)
    assert abs(expected_loss(X, y, q) - losses.mean()) <= 5 * se  # 5 standard errors


# -- step multipliers: the D⁻¹ metric (docs/theory.md §4 (C12)) ------------------------------------

@st.composite
def step_multipliers(draw, d):
    """Positive ``D`` of length ``d``: log-uniform over a chosen spread, times an overall scale."""
    spread = draw(st.sampled_from([0.0, 1.0, 2.0]))  # decades between the smallest and largest entry
    scale = draw(st.sampled_from([1e-8, 1.0, 1e8]))
    rng = np.random.default_rng(draw(seeds))
    return scale * 10.0 ** rng.uniform(-spread / 2, spread / 2, d)


def dense_metric_limit(X, y, prior, D):
    """``μ₀ + DXᵀ(XDXᵀ)⁺(y − Xμ₀)``, ``(I − DXᵀ(XDXᵀ)⁺X)L₀`` with dense matrices (small d only)."""
    Dm = np.diag(D)
    G = X @ Dm @ X.T
    gain = Dm @ X.T @ np.linalg.pinv(G, rcond=1e-10, hermitian=True)  # G's zero eigenvalues are ~eps·‖G‖
    return prior.mean + gain @ (y - X @ prior.mean), (np.eye(X.shape[1]) - gain @ X) @ prior.factor


def tilde_condition(X, D):
    """``κ(XD^{½})`` over its numerically nonzero singular values."""
    s = np.linalg.svd(X * np.sqrt(D / D.max()), compute_uv=False)
    s = s[s > max(X.shape) * EPS * s[0]]
    return float(s[0] / s[-1])


@given(st.data(), problems())
def test_step_multiplier_limit_matches_dense_weighted_pseudo_inverse(data, problem):
    X, y, prior, kappa = problem
    D = data.draw(step_multipliers(X.shape[1]))
    limit = ibvi_limit(X, y, prior, step_multipliers=D)
    mean, factor = dense_metric_limit(X, y, prior, D)
    # the dense route solves through XDXᵀ, whose condition number is κ(XD^{½})²
    size = 1 + np.linalg.norm(mean) + np.linalg.norm(factor)
    tol = 100 * tilde_condition(X, D) ** 2 * max(X.shape) * EPS * size
    assert np.linalg.norm(limit.mean - mean) <= tol
    assert np.linalg.norm(limit.factor - factor) <= tol
    assert limit.factor.shape == prior.factor.shape
    # it minimizes the loss: interpolates and XL∞ = 0
    scale = np.linalg.norm(X, 2) * size
    assert np.linalg.norm(X @ limit.mean - y) <= tol * scale
    assert np.linalg.norm(X @ limit.factor) <= tol * scale


@settings(max_examples=15)
@given(st.data(), problems(), seeds)
def test_step_multiplier_limit_is_the_w2_projection_in_the_inverse_metric(data, problem, seed):
    X, y, prior, kappa = problem
    D = data.draw(step_multipliers(X.shape[1]))
    limit = ibvi_limit(X, y, prior, step_multipliers=D)
    best = w2_squared(limit, prior, metric=D)
    # the value Theorem 1's formula gives in the D⁻¹ metric, through another computation
    value = ibvi_limit_w2_squared(X, y, prior, step_multipliers=D)
    assert value == pytest.approx(best, rel=1e-8, abs=1e-12 * (1 + best))
    # every other minimizer of ℓ̄ is farther from the prior in that metric
    P = dense_null(X)
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    for step in (1e-3, 0.3):
        spread = np.sqrt(D)  # perturbations of the D⁻¹-metric's natural size
        other = Gaussian(limit.mean + P @ (step * spread * rng.standard_normal(d)),
                         P @ (limit.factor + step * spread[:, None] * rng.standard_normal(limit.factor.shape)))
        assert w2_squared(other, prior, metric=D) >= best - 1e-9 * (1 + best)


@given(problems(), st.sampled_from([1e-300, 1e-3, 7.0, 1e300]))
def test_constant_step_multipliers_give_the_identity_limit(problem, c):
    X, y, prior, kappa = problem
    d = X.shape[1]
    plain = ibvi_limit(X, y, prior)
    scaled = ibvi_limit(X, y, prior, step_multipliers=np.full(d, c))
    size = 1 + np.linalg.norm(plain.mean) + np.linalg.norm(plain.factor)
    # the same pseudo-inverse through another route (X⁺X L₀ against the SVD basis): O(κ·eps)
    assert w2(scaled, plain) <= 100 * kappa * max(X.shape) * EPS * size
    # the W₂ value scales as 1/c in the D⁻¹ metric, and the GVI path with λ/c is the same
    base = ibvi_limit_w2_squared(X, y, prior)
    assert ibvi_limit_w2_squared(X, y, prior, step_multipliers=np.full(d, c)) == pytest.approx(
        base / c, rel=1e-9, abs=1e-12 / c)


@given(st.data(), problems(), st.sampled_from([1e-3, 0.1, 10.0]))
def test_step_multiplier_w2_gvi_matches_dense_formula(data, problem, lam):
    X, y, prior, kappa = problem
    n, d = X.shape
    D = data.draw(step_multipliers(d))
    # argmin ℓ̄(q) + λ W₂²_{D⁻¹}(q, p): μ_λ = μ₀ + DXᵀ(XDXᵀ + λI)⁻¹(y − Xμ₀)
    H = np.diag(D) @ X.T @ np.linalg.inv(X @ np.diag(D) @ X.T + lam * np.eye(n))
    mean = prior.mean + H @ (y - X @ prior.mean)
    factor = (np.eye(d) - H @ X) @ prior.factor
    q = w2_gvi(X, y, prior, lam, step_multipliers=D)
    cond = (np.linalg.norm(X * np.sqrt(D), 2) ** 2 + lam) / lam
    tol = 100 * cond * max(X.shape) * EPS * (1 + np.linalg.norm(mean) + np.linalg.norm(factor))
    assert np.linalg.norm(q.mean - mean) <= tol
    assert np.linalg.norm(q.factor - factor) <= tol
    assert w2_gvi(X, y, prior, 0.0, step_multipliers=D).mean == pytest.approx(
        ibvi_limit(X, y, prior, step_multipliers=D).mean, abs=0.0)


def explicit_multiplier_gd(X, y, prior, lr, steps, D):
    """GD with per-coordinate steps ``ηD``, written out step by step (independent route)."""
    mu, L = prior.mean.copy(), prior.factor.copy()
    for _ in range(steps):
        mu = mu + 2 * lr * D * (X.T @ (y - X @ mu))
        L = L - 2 * lr * D[:, None] * (X.T @ (X @ L))
    return Gaussian(mu, L)


@given(st.data(), problems(), st.sampled_from([1, 5, 40]), st.sampled_from([0.1, 0.5, 0.99]))
def test_step_multiplier_gd_iterate_equals_explicit_steps(data, problem, steps, fraction):
    X, y, prior, kappa = problem
    D = data.draw(step_multipliers(X.shape[1]))
    lr = fraction / np.linalg.norm(X * np.sqrt(D), 2) ** 2  # below the bound 1/s_max(XD^{½})²
    closed = gd_iterate(X, y, prior, lr, steps, step_multipliers=D)
    loop = explicit_multiplier_gd(X, y, prior, lr, steps, D)
    # as for D = 1 (test above), with κ(XD^{½}) in place of κ(X)
    size = 1 + np.linalg.norm(loop.mean) + np.linalg.norm(loop.factor)
    tol = (1e3 * tilde_condition(X, D) ** 2 + 10 * steps) * EPS * size
    assert np.linalg.norm(closed.mean - loop.mean) <= tol
    assert np.linalg.norm(closed.factor - loop.factor) <= tol


def test_step_multiplier_solver_must_be_of_the_scaled_data():
    problem = random_regression(3, 7, seed=4)
    X, y = problem.X, problem.y
    prior = Gaussian.isotropic(0.0, 1.0, 7)
    D = np.linspace(0.5, 2.0, 7)
    solver = row_space_solver(X * np.sqrt(D / D.max()))
    a = ibvi_limit(X, y, prior, step_multipliers=D, solver=solver)
    b = ibvi_limit(X, y, prior, step_multipliers=D)
    np.testing.assert_array_equal(a.mean, b.mean)
    with pytest.raises(ValueError, match="solver must be a RowSpaceSolver of X"):
        ibvi_limit(X, y, prior, step_multipliers=D, solver=row_space_solver(X))
