"""Kronecker-factored Gaussians (linear_theory.kronecker): the vectorization stated in the docstring,
the expected loss and gradients against sampling and finite differences, the closed-form limit of
the flow against simulation, the first-order step correction, the W₂ distances against the dense
factor route, the step bound against the Hessian, and bad input."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import linear_theory as lt
from linear_theory import (DivergenceError, KroneckerGaussian, expected_balance_drift, kronecker_expected_loss,
                           kronecker_first_order, kronecker_gradients, kronecker_limit, kronecker_step_bound,
                           kronecker_w2_projection, kronecker_w2_squared, simulate_kronecker)
from linear_theory.kronecker import _mc_gradients, balance

EPS = np.finfo(np.float64).eps


def random_problem(seed, n=4, d=9, k=3, a=2, b=2, spread=1.0):
    rng = np.random.default_rng(seed)
    X = lt.random_regression(n, d, condition_number=2.0, seed=rng).X
    Y = rng.standard_normal((n, k))
    prior = KroneckerGaussian(rng.standard_normal((d, k)), spread * rng.standard_normal((d, a)) / np.sqrt(d),
                              rng.standard_normal((k, b)) / np.sqrt(k))
    return X, Y, prior


def split(prior, s):
    """The same prior covariance with its scale moved between the factors: ``(A/s, sB)``."""
    return prior.replace(input_factor=prior.input_factor / s, output_factor=s * prior.output_factor)


def boundary(X, prior):
    """The split ``s*`` of the phase boundary: ``‖P_row A₀‖²/s*² = s*²‖B₀‖²``."""
    row = np.sum((lt.row_space_basis(X).V.T @ prior.input_factor) ** 2)
    return (row / np.sum(prior.output_factor ** 2)) ** 0.25


shapes = st.fixed_dictionaries(dict(n=st.integers(1, 4), extra=st.integers(1, 4), k=st.integers(1, 3),
                                    a=st.integers(1, 3), b=st.integers(1, 3), seed=st.integers(0, 2 ** 16)))


def problem_of(shape, spread=1.0):
    return random_problem(shape["seed"], n=shape["n"], d=shape["n"] + shape["extra"], k=shape["k"],
                          a=shape["a"], b=shape["b"], spread=spread)


# ---- the family ----------------------------------------------------------------------------

def test_row_major_vectorization_has_covariance_kron_AAt_BBt():
    _, _, q = random_problem(0, d=3, k=2, a=2, b=2)
    draws = q.sample(200_000, np.random.default_rng(1)).reshape(200_000, -1)  # C order: vec_r(W)
    A, B = q.input_factor, q.output_factor
    cov = np.kron(A @ A.T, B @ B.T)
    np.testing.assert_allclose(q.as_gaussian().cov(), cov, rtol=1e-13, atol=1e-15)
    empirical = np.cov(draws, rowvar=False)
    # Standard error of a sample covariance entry: sqrt((Σ_ii Σ_jj + Σ_ij²)/N); 5 of them.
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / draws.shape[0])
    assert np.max(np.abs(empirical - cov) / se) < 5.0
    # ... while the column-major order would have (BBᵀ) ⊗ (AAᵀ), which differs here.
    assert np.max(np.abs(np.kron(B @ B.T, A @ A.T) - cov)) > 0.1
    np.testing.assert_allclose(draws.mean(axis=0), q.mean.ravel(), atol=5 * np.sqrt(np.max(np.diag(cov)) / 200_000))


@given(shapes)
@settings(max_examples=15)
def test_predictive_equals_the_dense_gaussian_at_every_output(shape):
    X, _, q = problem_of(shape)
    dense = q.as_gaussian()
    pred = q.predictive(X)
    k = q.outputs
    for j in range(k):
        rows = np.kron(X, np.eye(k)[j])  # x ⊗ e_j picks output j of vec_r(W)
        other = dense.predictive(rows)
        np.testing.assert_allclose(pred.mean[:, j], other.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(pred.variance[:, j], other.variance, rtol=1e-12, atol=1e-14)


def test_expected_loss_matches_sampling():
    X, Y, q = random_problem(2)
    draws = q.sample(100_000, np.random.default_rng(3))
    losses = np.sum((Y[None] - X[None] @ draws) ** 2, axis=(1, 2))
    se = losses.std() / np.sqrt(losses.size)
    assert abs(losses.mean() - kronecker_expected_loss(X, Y, q)) < 5 * se


@given(shapes)
@settings(max_examples=15)
def test_gradients_match_central_differences(shape):
    X, Y, q = problem_of(shape)
    grads = kronecker_gradients(X, Y, q)
    h = 1e-6
    for name in ("mean", "input_factor", "output_factor"):
        base = getattr(q, name)
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            step = np.zeros_like(base)
            step[index] = h
            up = kronecker_expected_loss(X, Y, q.replace(**{name: base + step}))
            down = kronecker_expected_loss(X, Y, q.replace(**{name: base - step}))
            numeric[index] = (up - down) / (2 * h)
        scale = 1.0 + np.max(np.abs(getattr(grads, name)))
        # Central differences of a quartic: error O(h²·|third derivative|) plus eps·loss/h.
        np.testing.assert_allclose(getattr(grads, name), numeric, atol=1e-6 * scale, err_msg=name)


def test_monte_carlo_gradients_are_unbiased_and_balanced():
    X, Y, q = random_problem(4)
    Z = np.random.default_rng(5).standard_normal((200_000, 2, 2))
    draws = [_mc_gradients(X, Y, q.mean, q.input_factor, q.output_factor, 1.0, Z[i::1000]) for i in range(1000)]
    exact = kronecker_gradients(X, Y, q)
    for i, name in enumerate(("mean", "input_factor", "output_factor")):
        batch_means = np.array([g[i] for g in draws])  # 1000 independent means of 200 draws
        se = batch_means.std(axis=0) / np.sqrt(len(draws))
        assert np.max(np.abs(batch_means.mean(axis=0) - getattr(exact, name)) / se) < 5.0, name
    # ⟨A, ĝ_A⟩ = ⟨B, ĝ_B⟩ for every single draw: the symmetry (A, B) → (λA, B/λ) of A ⊗ B.
    for z in Z[:50]:
        _, gA, gB = _mc_gradients(X, Y, q.mean, q.input_factor, q.output_factor, 1.0, z[None])
        lhs, rhs = np.sum(q.input_factor * gA), np.sum(q.output_factor * gB)
        assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + abs(rhs) + 1.0)


@pytest.mark.parametrize("mc_samples", [1, 3])
def test_expected_balance_drift_matches_monte_carlo_steps(mc_samples):
    X, Y, q = random_problem(6, a=3, b=2)
    rng = np.random.default_rng(7)
    values = []
    for _ in range(4000):
        Z = rng.standard_normal((mc_samples, 3, 2))
        _, gA, gB = _mc_gradients(X, Y, q.mean, q.input_factor, q.output_factor, 1.0, Z)
        values.append(np.sum(gA ** 2) - np.sum(gB ** 2))
    values = np.asarray(values)
    se = values.std() / np.sqrt(values.size)
    assert abs(values.mean() - expected_balance_drift(X, Y, q, mc_samples)) < 5 * se
    # the variance part is not negligible here (otherwise this test would not test it)
    assert abs(expected_balance_drift(X, Y, q, mc_samples) - expected_balance_drift(X, Y, q)) > 10 * se


@pytest.mark.parametrize("kw", [dict(), dict(optimizer="sgd", batch_size=2), dict(mc_samples=2)])
def test_one_plain_step_changes_the_balance_by_eta_squared_times_the_gradient_gap(kw):
    X, Y, q = random_problem(8)
    for lr in (1e-1, 1e-2, 1e-3):
        lr = lr * kronecker_step_bound(X, q)
        result = simulate_kronecker(X, Y, q, lr=lr, steps=1, seed=9, **kw)
        drift = result.trace.balance[1] - result.trace.balance[0]
        if not kw:
            predicted = lr ** 2 * expected_balance_drift(X, Y, q)
            # cancellation in ‖A‖² − ‖B‖² (size ~1) against a drift of size lr²: eps/lr² relative
            assert drift == pytest.approx(predicted, rel=1e-12 + 50 * EPS / lr ** 2)
        else:
            gA = (q.input_factor - result.final.input_factor) / lr
            gB = (q.output_factor - result.final.output_factor) / lr
            assert drift == pytest.approx(lr ** 2 * (np.sum(gA ** 2) - np.sum(gB ** 2)), rel=1e-6, abs=1e-14)


# ---- the limit of the flow and the first-order step correction -----------------------------

def test_limit_on_both_sides_of_the_phase_boundary():
    X, Y, q = random_problem(10)
    basis = lt.row_space_basis(X)
    row = np.sum((basis.V.T @ q.input_factor) ** 2)
    s_star = boundary(X, q)
    for ratio in (0.5, 0.9, 1.1, 2.0):
        prior = split(q, ratio * s_star)
        limit = kronecker_limit(X, Y, prior)
        assert limit.collapsed == (ratio < 1)
        assert limit.kept_variance == pytest.approx(max(0.0, 1.0 - ratio ** -4), rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(limit.limit.output_factor, limit.scale * prior.output_factor, rtol=1e-14)
        np.testing.assert_allclose(X @ limit.limit.mean, Y, atol=1e-12)
        null = lt.project_null(basis, prior.input_factor)
        if ratio > 1:
            assert math.isinf(limit.flow_time)
            np.testing.assert_allclose(limit.limit.input_factor, null, atol=1e-14)
        else:
            # collapsed: the row part of A stops at a finite flow time τ∞ where ‖B‖² reaches 0
            row_left = limit.limit.input_factor - null
            assert np.linalg.norm(row_left) > 0.1 * np.sqrt(row)
            w = np.sum((basis.V.T @ prior.input_factor) ** 2, axis=1)
            remaining = np.sum(prior.output_factor ** 2) + np.sum(w * np.expm1(-4 * basis.s ** 2 * limit.flow_time))
            assert abs(remaining) < 1e-12


def test_gd_reaches_the_flow_limit_at_first_order_in_the_step():
    """c²(η) = c² − e₁η + O(η²): the remainder after the first-order term shrinks fourfold per halving."""
    X, Y, q = random_problem(11)
    prior = split(q, 1.5 * boundary(X, q))
    limit = kronecker_limit(X, Y, prior)
    assert not limit.collapsed and limit.gd_slope > 0
    bound = kronecker_step_bound(X, prior)
    remainders = []
    for f in (0.2, 0.1, 0.05):
        lr = f * bound
        beta_inf = limit.kept_variance * np.sum(prior.output_factor ** 2)
        rate = 2 * lr * lt.row_space_basis(X).s[-1] ** 2 * min(1.0, beta_inf)
        result = simulate_kronecker(X, Y, prior, lr=lr, steps=int(35 / rate))
        kept = result.trace.kept_variance[-1]
        remainders.append(kept - (limit.kept_variance - limit.gd_slope * lr))
        # invariants and the exact-gradient line of B at every recorded step
        size = 1 + np.linalg.norm(prior.mean) + np.linalg.norm(prior.input_factor)
        assert np.max(result.trace.null_mean_drift) < 1e-11 * size
        assert np.max(result.trace.null_factor_drift) < 1e-11 * size
        assert np.max(result.trace.output_off_line) < 1e-12
    ratios = np.array(remainders[:-1]) / np.array(remainders[1:])
    assert np.all((ratios > 3.0) & (ratios < 5.5)), remainders


def test_collapsed_gd_ends_at_the_finite_time_limit_of_a():
    X, Y, q = random_problem(12)
    prior = split(q, 0.7 * boundary(X, q))
    limit = kronecker_limit(X, Y, prior)
    assert limit.collapsed
    errors = []
    for lr in (0.05, 0.025):
        result = simulate_kronecker(X, Y, prior, lr=lr, steps=int(60 / lr))
        assert result.trace.kept_variance[-1] < 1e-20
        errors.append(np.linalg.norm(result.final.input_factor - limit.limit.input_factor))
    # the discrete stopping point differs from the flow's at first order in the step
    assert 1.6 < errors[0] / errors[1] < 2.4


@given(shapes, st.floats(1.2, 3.0))
@settings(max_examples=10)
def test_first_order_quadrature_equals_the_closed_form(shape, ratio):
    X, Y, q = problem_of(shape)
    prior = split(q, ratio * boundary(X, q))
    closed = kronecker_limit(X, Y, prior).gd_slope
    assert kronecker_first_order(X, Y, prior) == pytest.approx(closed, rel=1e-8)
    assert kronecker_first_order(X, Y, prior, momentum=0.5) == pytest.approx(6.0 * closed, rel=1e-8)


def test_first_order_term_is_zero_when_collapsed_and_larger_with_mc_noise():
    X, Y, q = random_problem(13)
    assert kronecker_first_order(X, Y, split(q, 0.5 * boundary(X, q)), mc_samples=1) == 0.0
    prior = split(q, 2.0 * boundary(X, q))
    exact, one, four = (kronecker_first_order(X, Y, prior, mc_samples=m) for m in (0, 1, 4))
    # the Monte Carlo part scales like 1/M
    assert (one - exact) / (four - exact) == pytest.approx(4.0, rel=1e-6)


# ---- W₂ --------------------------------------------------------------------------------------

@given(shapes, shapes)
@settings(max_examples=20)
def test_kronecker_w2_equals_the_dense_factor_route(shape_p, shape_q):
    _, _, p = problem_of(shape_p)
    rng = np.random.default_rng(shape_q["seed"])
    q = KroneckerGaussian(rng.standard_normal(p.mean.shape), rng.standard_normal((p.dim, shape_q["a"])),
                          rng.standard_normal((p.outputs, shape_q["b"])))
    dense = lt.w2_squared(p.as_gaussian(), q.as_gaussian())
    assert kronecker_w2_squared(p, q) == pytest.approx(dense, rel=1e-10, abs=1e-12)
    assert kronecker_w2_squared(p, p) == 0.0


def test_kronecker_w2_keeps_digits_for_close_distributions():
    _, _, p = random_problem(14)
    q = p.replace(output_factor=p.output_factor * (1 + 1e-9))
    # W₂ = ‖A ⊗ B‖·1e-9 exactly (a pure rescaling); the nuclear-norm formula would lose it to rounding.
    expected = np.linalg.norm(p.input_factor) * np.linalg.norm(p.output_factor) * 1e-9
    assert math.sqrt(kronecker_w2_squared(p, q)) == pytest.approx(expected, rel=1e-6)


def test_projection_is_theorem1_limit_of_the_vectorized_problem():
    X, Y, q = random_problem(15, n=3, d=6, k=2)
    k = q.outputs
    projection = kronecker_w2_projection(X, Y, q)
    dense = lt.ibvi_limit(np.kron(X, np.eye(k)), Y.ravel(), q.as_gaussian())
    assert lt.w2(projection.as_gaussian(), dense) < 1e-12
    # the flow's limit keeps only c² of the null-space variance: W₂ gap (1 − c)‖P_null A₀‖‖B₀‖
    for s in (0.7, 1.5, 3.0):
        limit = kronecker_limit(X, Y, split(q, s))
        gap = lt.w2(limit.limit.as_gaussian(), kronecker_w2_projection(X, Y, split(q, s)).as_gaussian())
        assert gap == pytest.approx(limit.w2_to_projection, rel=1e-9, abs=1e-13)


# ---- step bound --------------------------------------------------------------------------------

def dense_factor_hessian(X, Y, q):
    """Hessian of ℓ̄ in (A, B) by central differences of the analytic gradient (exact for a cubic)."""
    A, B = q.input_factor, q.output_factor
    sizes = (A.size, B.size)
    theta = np.concatenate([A.ravel(), B.ravel()])

    def grad(t):
        g = kronecker_gradients(X, Y, q.replace(input_factor=t[:sizes[0]].reshape(A.shape),
                                                output_factor=t[sizes[0]:].reshape(B.shape)))
        return np.concatenate([g.input_factor.ravel(), g.output_factor.ravel()])

    h = 1e-4
    H = np.array([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    return 0.5 * (H + H.T)


@given(shapes)
@settings(max_examples=15)
def test_step_bound_is_two_over_the_top_hessian_eigenvalue(shape):
    X, Y, q = problem_of(shape, spread=3.0)
    top = max(np.linalg.eigvalsh(dense_factor_hessian(X, Y, q))[-1], 2 * np.linalg.norm(X, 2) ** 2)
    assert kronecker_step_bound(X, q) == pytest.approx(2.0 / top, rel=1e-7)
    assert kronecker_step_bound(X, q, "momentum", 0.5) == pytest.approx(3.0 / top, rel=1e-7)


def test_divergence_names_the_bound_and_check_stability_refuses_first():
    X, Y, q = random_problem(16)
    bound = kronecker_step_bound(X, q)
    with pytest.raises(ValueError, match=r"lr=.* is at or above the stability bound"):
        simulate_kronecker(X, Y, q, lr=1.01 * bound, steps=10)
    with pytest.raises(DivergenceError, match=re.escape(f"stability bound of this problem is {bound:.4g}")):
        simulate_kronecker(X, Y, q, lr=3 * bound, steps=2000, check_stability=False)


# ---- the simulator ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(optimizer="sgd", batch_size=2), dict(optimizer="momentum", momentum=0.5),
                                dict(mc_samples=2), dict(optimizer="sgd", batch_size=3, mc_samples=1)])
def test_every_optimizer_keeps_the_invariants_and_is_reproducible(kw):
    X, Y, q = random_problem(17)
    lr = 0.05 * kronecker_step_bound(X, q)
    first = simulate_kronecker(X, Y, q, lr=lr, steps=200, seed=3, record_every=7, **kw)
    again = simulate_kronecker(X, Y, q, lr=lr, steps=200, seed=3, record_every=7, **kw)
    np.testing.assert_array_equal(first.final.input_factor, again.final.input_factor)
    trace = first.trace
    np.testing.assert_array_equal(trace.steps, list(range(0, 201, 7)) + [200])
    size = 1 + np.linalg.norm(q.mean) + np.linalg.norm(q.input_factor)
    # every gradient of M and A lies in row(X): the null parts move by rounding only
    assert np.max(trace.null_mean_drift) < 200 * 100 * EPS * size
    assert np.max(trace.null_factor_drift) < 200 * 100 * EPS * size
    assert trace.balance[0] == pytest.approx(balance(q), rel=1e-15)
    assert trace.expected_loss[-1] < trace.expected_loss[0]
    assert trace.w2_to_projection[0] == pytest.approx(math.sqrt(kronecker_w2_squared(q, first.projection)), rel=1e-12)
    if kw.get("mc_samples", 0) == 0:
        assert np.max(trace.output_off_line) < 1e-12  # exact gradients keep B on the line of B₀
    else:
        assert np.max(trace.output_off_line) > 1e-6


def test_step_zero_is_the_prior():
    X, Y, q = random_problem(18)
    result = simulate_kronecker(X, Y, q, lr=0.01, steps=0)
    np.testing.assert_array_equal(result.final.input_factor, q.input_factor)
    assert result.trace.kept_variance.tolist() == [1.0]


# ---- bad input ---------------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    X, Y, q = random_problem(19)
    with pytest.raises(ValueError, match=r"input_factor must have shape \(d, a\) with d = 9"):
        KroneckerGaussian(q.mean, q.input_factor[:-1], q.output_factor)
    with pytest.raises(ValueError, match=r"output_factor must have shape \(k, b\) with k = 3"):
        KroneckerGaussian(q.mean, q.input_factor, q.output_factor[:-1])
    with pytest.raises(ValueError, match=r"mean contains 3 NaN"):
        KroneckerGaussian(np.where(np.eye(9, 3) > 0, np.nan, q.mean), q.input_factor, q.output_factor)
    with pytest.raises(TypeError, match="must be a linear_theory.KroneckerGaussian"):
        kronecker_expected_loss(X, Y, lt.Gaussian(np.zeros(9), np.eye(9)))
    with pytest.raises(ValueError, match=r"Y must have one row per row of X"):
        kronecker_gradients(X, Y[:-1], q)
    with pytest.raises(ValueError, match=r"mean must be \(d, k\)"):
        kronecker_limit(X, Y[:, :2], q)
    with pytest.raises(ValueError, match="output_factor must not be all zeros"):
        kronecker_limit(X, Y, q.replace(output_factor=np.zeros_like(q.output_factor)))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        simulate_kronecker(X, Y, q, optimizer="adam", lr=0.01, steps=1)
    with pytest.raises(ValueError, match="needs batch_size"):
        simulate_kronecker(X, Y, q, optimizer="sgd", lr=0.01, steps=1)
    with pytest.raises(ValueError, match="batch_size must be at most n = 4"):
        simulate_kronecker(X, Y, q, optimizer="sgd", batch_size=5, lr=0.01, steps=1)
    with pytest.raises(ValueError, match="momentum must be in"):
        simulate_kronecker(X, Y, q, optimizer="momentum", momentum=1.0, lr=0.01, steps=1)
    with pytest.raises(ValueError, match="lr must be a finite positive"):
        simulate_kronecker(X, Y, q, lr=-0.1, steps=1)
    with pytest.raises(ValueError, match="seed must be given explicitly"):
        simulate_kronecker(X, Y, q, lr=0.01, steps=1, seed=None)
    with pytest.raises(ValueError, match="derived for exact gradients only"):
        kronecker_first_order(X, Y, q, mc_samples=1, momentum=0.5)
    with pytest.raises(TypeError, match="p must be a KroneckerGaussian"):
        kronecker_w2_squared(q.as_gaussian(), q)
    with pytest.raises(ValueError, match="basis must be a RowSpaceBasis built from this X"):
        kronecker_limit(X, Y, q, basis=lt.row_space_basis(X[:, :5]))
    with pytest.raises(TypeError, match="q must be a linear_theory.KroneckerGaussian"):
        kronecker_expected_loss(X, Y, q.mean)
    with pytest.raises(ValueError, match=r"prior.mean is \(9, 3\)"):
        kronecker_w2_projection(X[:, :5], Y, q)


def test_a_basis_of_another_matrix_is_refused_and_a_truncated_one_of_this_x_accepted():
    X, Y, q = random_problem(20)
    other = lt.random_regression(*X.shape, seed=99).X
    for basis, error in ((lt.row_space_basis(other), ValueError), (lt.row_space_basis(X[:-1]), ValueError),
                         (lt.row_space_solver(X), TypeError)):
        with pytest.raises(error, match="basis must be a RowSpaceBasis built from this X"):
            kronecker_w2_projection(X, Y, q, basis=basis)
    # a basis that dropped singular values below its own rtol is still a basis of this X
    coarse = lt.row_space_basis(X, rtol=0.6)
    assert coarse.rank < lt.row_space_basis(X).rank
    kronecker_w2_projection(X, Y, q, basis=coarse)


# ---- float extremes: the closed forms are homogeneous in the factors and in X -----------------

#: Powers of two from the subnormal side to the overflow side of the squares: dividing by them is
#: exact, so every closed form must scale exactly (or to one rounding where a result is subnormal).
EXTREME_SCALES = [2.0 ** k for k in (-900, -540, -300, -60, 60, 300, 500)]


@pytest.mark.parametrize("scale", EXTREME_SCALES)
def test_limit_bound_and_first_order_scale_with_the_factors(scale):
    """(A, B) → (tA, tB): kept variance and flow time unchanged, e₁ and the W₂ gap times t², the
    factor block of the Hessian times t² (the mean block unchanged)."""
    X, Y, q = random_problem(21)
    prior = split(q, 2.0 * boundary(X, q))
    scaled = prior.replace(input_factor=scale * prior.input_factor, output_factor=scale * prior.output_factor)
    base, limit = kronecker_limit(X, Y, prior), kronecker_limit(X, Y, scaled)
    assert limit.kept_variance == base.kept_variance and limit.flow_time == base.flow_time
    assert limit.gd_slope == pytest.approx(base.gd_slope * scale ** 2, rel=1e-15)
    assert limit.w2_to_projection == pytest.approx(base.w2_to_projection * scale ** 2, rel=1e-15)
    # quadrature against the closed form at every scale (DOP853 at rtol 1e-11, relative absolute tolerances)
    assert kronecker_first_order(X, Y, scaled) == pytest.approx(limit.gd_slope, rel=1e-9)
    # the bound is 2/max(2s²_max, t²λ) with λ the top eigenvalue of the (A, B) block at t = 1
    s2_max = lt.row_space_basis(X).s[0] ** 2
    big = prior.replace(input_factor=8.0 * prior.input_factor, output_factor=8.0 * prior.output_factor)
    lam = 2.0 / kronecker_step_bound(X, big) / 64.0  # 64·λ dominates the mean block (checked below)
    assert 64.0 * lam > 2.0 * s2_max
    k = round(math.log2(scale))
    expected = math.ldexp(2.0 / lam, -2 * k) if 2 * k + math.log2(lam) > math.log2(2.0 * s2_max) else 1.0 / s2_max
    assert kronecker_step_bound(X, scaled) == pytest.approx(expected, rel=1e-14)


def test_collapsed_limit_keeps_its_flow_time_at_every_scale():
    X, Y, q = random_problem(22)
    prior = split(q, 0.5 * boundary(X, q))
    base = kronecker_limit(X, Y, prior)
    assert base.collapsed and math.isfinite(base.flow_time)
    for scale in EXTREME_SCALES:
        scaled = prior.replace(input_factor=scale * prior.input_factor, output_factor=scale * prior.output_factor)
        limit = kronecker_limit(X, Y, scaled)
        assert limit.flow_time == base.flow_time
        np.testing.assert_array_equal(limit.limit.input_factor, scale * base.limit.input_factor)
    # B₀ 1e100 times smaller than A₀: the collapse is almost instant (1 − e^{−x} ≈ x gives τ∞ ≈
    # ‖B₀‖²/(4‖XA₀‖²) to a relative 1e-100), and still found
    tiny = prior.replace(output_factor=1e-100 * prior.output_factor)
    first = np.sum(tiny.output_factor ** 2) / (4.0 * np.sum((X @ tiny.input_factor) ** 2))
    assert kronecker_limit(X, Y, tiny).flow_time == pytest.approx(first, rel=1e-13)


@pytest.mark.parametrize("scale", [2.0 ** k for k in (-260, -60, 60, 240)])
def test_closed_forms_scale_with_x(scale):
    """X → tX: the kept variance is unchanged, e₁ scales by t², the flow time and the step bound by 1/t²."""
    X, Y, q = random_problem(23)
    prior = split(q, 2.0 * boundary(X, q))
    base, limit = kronecker_limit(X, Y, prior), kronecker_limit(scale * X, Y, prior)
    assert limit.kept_variance == pytest.approx(base.kept_variance, rel=1e-14)
    assert limit.gd_slope == pytest.approx(base.gd_slope * scale ** 2, rel=1e-13)
    assert kronecker_first_order(scale * X, Y, prior) == pytest.approx(limit.gd_slope, rel=1e-9)
    assert kronecker_step_bound(scale * X, prior) == pytest.approx(kronecker_step_bound(X, prior) / scale ** 2,
                                                                   rel=1e-13)


def test_monte_carlo_first_order_has_a_limit_for_small_factors():
    """With MC draws e₁ = σ²(…) + (a term of the mean's residual, independent of σ): it converges as
    the factors shrink, to the same value at 2⁻⁴⁰ and 2⁻⁴⁰⁰ (the σ² part is 1e-24 relative there)."""
    X, Y, q = random_problem(24)
    q = split(q, 2.0 * boundary(X, q))
    values = [kronecker_first_order(X, Y, q.replace(input_factor=t * q.input_factor, output_factor=t * q.output_factor),
                                    mc_samples=2) for t in (2.0 ** -40, 2.0 ** -400)]
    assert values[0] > 0 and values[1] == pytest.approx(values[0], rel=1e-9)


def test_extremes_beyond_float64_are_named_not_inf():
    X, Y, q = random_problem(25)
    huge = q.replace(input_factor=1e160 * q.input_factor, output_factor=1e160 * q.output_factor)
    for call in (lambda: kronecker_gradients(X, Y, huge), lambda: expected_balance_drift(X, Y, huge),
                 lambda: kronecker_expected_loss(X, Y, huge), lambda: balance(huge)):
        with pytest.raises(ValueError, match=r"\bq\b"):
            call()
    with pytest.raises(ValueError, match=r"\bprior\b"):
        kronecker_limit(X, Y, huge)
    with pytest.raises(ValueError, match=r"^n: the result would be an array"):
        q.sample(2 ** 60, 0)
    # 1/s_max² beyond the float range is the documented inf, not a ZeroDivisionError
    assert kronecker_step_bound(1e-170 * X, q) == math.inf
