"""linear_theory.classification: expected losses and gradients, the hard-margin SVM, the simulator."""
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from linear_theory import (DivergenceError, Gaussian, classification_loss, hard_margin_svm, project_null,
                           separable_classification, simulate_classification)
from linear_theory.classification import classification_step_bound

# Central differences with step h have truncation error O(h²·f''') ≈ 1e-10 and rounding error
# O(eps·f/h) ≈ 1e-11 relative at h = 1e-5 for these O(1) losses; 1e-7 leaves a wide margin.
FD_TOL = 1e-7


def _problem(seed, n=6, d=10, scale=0.4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    q = Gaussian(0.3 * rng.standard_normal(d), scale * rng.standard_normal((d, 4)) / 2)
    return X, y, q


def _finite_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = h
        grad[idx] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_finite_differences(loss, seed):
    X, y, q = _problem(seed)
    exact = classification_loss(X, y, q, loss=loss)

    def value_mean(mean):
        return classification_loss(X, y, q.replace(mean=mean), loss=loss).value

    def value_factor(factor):
        return classification_loss(X, y, q.replace(factor=factor), loss=loss).value

    fd_mean = _finite_difference(value_mean, q.mean.copy())
    fd_factor = _finite_difference(value_factor, q.factor.copy())
    assert np.linalg.norm(exact.grad_mean - fd_mean) <= FD_TOL * np.linalg.norm(fd_mean)
    assert np.linalg.norm(exact.grad_factor - fd_factor) <= FD_TOL * np.linalg.norm(fd_factor)


def test_exponential_value_is_the_moment_generating_function():
    # E exp(−z), z ~ N(m, v), integrated by adaptive quadrature instead of the closed form.
    X, y, q = _problem(3)
    total = 0.0
    for x, label in zip(X, y):
        m, v = label * x @ q.mean, np.sum((q.factor.T @ x) ** 2)
        total += scipy.integrate.quad(lambda z: np.exp(-z - (z - m) ** 2 / (2 * v)) / np.sqrt(2 * np.pi * v),
                                      -np.inf, np.inf, epsabs=0, epsrel=1e-13)[0]
    assert classification_loss(X, y, q).value == pytest.approx(total, rel=1e-10)


@pytest.mark.parametrize("std, tol", [(0.5, 1e-13), (1.5, 1e-13), (2.0, 1e-10), (3.0, 1e-7)])
def test_logistic_quadrature_matches_adaptive_quadrature(std, tol):
    # Gauss–Hermite (64 nodes) against adaptive quadrature of E log(1 + e^{−z}), z ~ N(m, std²),
    # split at the kink region so quad reaches ~1e-15. The tolerances are the documented accuracy
    # of 64 nodes, which degrades with std (the poles of softplus at ±iπ come closer in ξ).
    x = np.array([[1.0, 0.0, 0.0]])
    for m in (-2.0, 0.3, 4.0):
        q = Gaussian(np.array([m, 0.5, -0.2]), np.diag([std, 1.0, 1.0]))

        def density(z):
            return np.logaddexp(0, -z) * np.exp(-(z - m) ** 2 / (2 * std ** 2)) / np.sqrt(2 * np.pi * std ** 2)

        ref = sum(scipy.integrate.quad(density, a, b, epsabs=0, epsrel=2e-14, limit=200)[0]
                  for a, b in ((-np.inf, -1), (-1, 0), (0, 1), (1, np.inf)))
        got = classification_loss(x, np.array([1.0]), q, loss="logistic").value
        assert got == pytest.approx(ref, rel=tol)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 8), extra=st.integers(1, 12),
       loss=st.sampled_from(["exponential", "logistic"]), scale=st.floats(0.01, 1.0))
def test_gradients_lie_in_the_row_space(seed, n, extra, loss, scale):
    X, y, q = _problem(seed, n=n, d=n + extra, scale=scale)
    g = classification_loss(X, y, q, loss=loss)
    # Xᵀc has no null-space part; what is left is the rounding of the projector, O(eps·‖g‖).
    assert np.linalg.norm(project_null(X, g.grad_mean)) <= 1e-12 * max(np.linalg.norm(g.grad_mean), 1e-300)
    assert np.linalg.norm(project_null(X, g.grad_factor)) <= 1e-12 * max(np.linalg.norm(g.grad_factor), 1e-300)


# -- the hard-margin SVM ------------------------------------------------------------------------------
def test_svm_on_hand_checkable_data():
    # Constraints w₁ ≥ 1 (from (1, 0), +1) and w₂ ≥ 1 (from (0, −1), −1) are active; (3, 3) and
    # (−2, 0.5) have margins 6 and 1.5. So ŵ = (1, 1), α = (1, 1, 0, 0), margin 1/√2.
    X = np.array([[1.0, 0.0], [0.0, -1.0], [3.0, 3.0], [-2.0, 0.5]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    svm = hard_margin_svm(X, y)
    np.testing.assert_allclose(svm.w, [1.0, 1.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(svm.dual, [1.0, 1.0, 0.0, 0.0], rtol=0, atol=1e-12)
    assert svm.support.tolist() == [True, True, False, False]
    assert svm.margin == pytest.approx(1 / np.sqrt(2), rel=1e-12)
    assert svm.kkt_residual <= 1e-12


def test_svm_single_point_is_its_scaled_input():
    svm = hard_margin_svm(np.array([[3.0, 4.0]]), np.array([-1.0]))
    np.testing.assert_allclose(svm.w, [-0.12, -0.16], rtol=1e-12)
    assert svm.margin == pytest.approx(5.0)


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12), d=st.integers(2, 8))
def test_svm_matches_slsqp_on_the_primal(seed, n, d):
    problem = separable_classification(n, d, margin=0.2, seed=seed)
    X, y = problem.X, problem.y
    svm = hard_margin_svm(X, y)
    Z = y[:, None] * X
    assert svm.kkt_residual <= 1e-10
    assert np.min(Z @ svm.w) >= 1 - 1e-10
    ref = scipy.optimize.minimize(lambda w: 0.5 * w @ w, problem.w_sep / problem.margin, jac=lambda w: w,
                                  constraints=[{"type": "ineq", "fun": lambda w: Z @ w - 1, "jac": lambda w: Z}],
                                  method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    # SLSQP stops at ftol 1e-14 on ½‖w‖²: its w is accurate to about √ftol relative.
    assert np.linalg.norm(ref.x - svm.w) <= 1e-6 * np.linalg.norm(svm.w)
    assert 0.5 * svm.w @ svm.w <= 0.5 * ref.x @ ref.x * (1 + 1e-10)


def test_svm_rejects_non_separable_data():
    with pytest.raises(ValueError, match="not linearly separable"):
        hard_margin_svm(np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="zero row"):
        hard_margin_svm(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([1.0, -1.0]))


@pytest.mark.parametrize("labels, match", [([1.0, 0.0], "labels -1 or \\+1"), ([1.0, 2.0], "labels"),
                                           ([1.0], "one entry per row of X")])
def test_bad_labels_raise(labels, match):
    with pytest.raises(ValueError, match=match):
        hard_margin_svm(np.eye(2), np.array(labels))


def test_bad_inputs_of_the_loss_raise():
    X, y, q = _problem(0)
    with pytest.raises(ValueError, match="loss must be one of"):
        classification_loss(X, y, q, loss="hinge")
    with pytest.raises(TypeError, match="q must be"):
        classification_loss(X, y, q.mean)
    with pytest.raises(ValueError, match="columns"):
        classification_loss(X[:, :-1], y, q)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        classification_loss(X_nan, y, q)


# -- the simulator -----------------------------------------------------------------------------------
def _separable(seed=0, n=6, d=20):
    problem = separable_classification(n, d, margin=0.0, seed=seed)
    X = problem.X / np.sqrt(d)
    prior = Gaussian(0.5 * np.random.default_rng(seed).standard_normal(d), 0.5 * np.eye(d))
    return X, problem.y, prior


def test_simulator_keeps_invariants_and_turns_to_the_svm():
    X, y, prior = _separable()
    lr = 0.5 * classification_step_bound(X, y, prior)
    result = simulate_classification(X, y, prior, lr=lr, steps=3000)
    tr = result.trace
    assert tr.steps[0] == 0 and tr.steps[-1] == 3000
    assert np.max(tr.null_mean_drift) <= 1e-12 and np.max(tr.null_factor_drift) <= 1e-12
    c = 1 - tr.direction_cosine
    assert c[-1] < 0.05 and c[-1] < c[1]
    assert tr.data_spread[-1] < 0.2 * tr.data_spread[0]


def test_simulator_first_step_is_one_gradient_step():
    # One recorded step must equal a step of size lr along the public gradient.
    X, y, prior = _separable(1)
    for loss in ("exponential", "logistic"):
        lr = 0.3 * classification_step_bound(X, y, prior, loss)
        g = classification_loss(X, y, prior, loss=loss)
        final = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=1).final
        np.testing.assert_allclose(final.mean, prior.mean - lr * g.grad_mean, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(final.factor, prior.factor - lr * g.grad_factor, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_monte_carlo_step_is_unbiased(loss):
    # K independent one-step runs with M samples each: their mean step matches the exact step
    # within 5 standard errors of the mean (estimated from the K runs themselves).
    X, y, prior = _separable(2, n=4, d=8)
    lr = 0.3 * classification_step_bound(X, y, prior, loss)
    exact = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=1).final
    runs = np.array([simulate_classification(X, y, prior, loss=loss, lr=lr, steps=1, mc_samples=200,
                                             seed=np.random.default_rng([7, k])).final.mean for k in range(40)])
    se = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(runs.mean(axis=0) - exact.mean) <= 5 * se + 1e-15)


def test_simulator_validation_and_divergence():
    X, y, prior = _separable()
    bound = classification_step_bound(X, y, prior)
    with pytest.raises(ValueError, match="step bound"):
        simulate_classification(X, y, prior, lr=2 * bound, steps=10)
    with pytest.raises(ValueError, match="labels"):
        simulate_classification(X, 2 * y, prior, lr=0.1 * bound, steps=10)
    with pytest.raises(ValueError, match="not linearly separable"):
        simulate_classification(np.vstack([X, X[:1]]), np.append(y, -y[0]), prior, lr=0.1 * bound, steps=10)
    with pytest.raises(ValueError, match="record_steps"):
        simulate_classification(X, y, prior, lr=0.1 * bound, steps=10, record_steps=np.array([0, 5, 3]))
    with pytest.raises(ValueError, match="record_steps"):
        simulate_classification(X, y, prior, lr=0.1 * bound, steps=10, record_steps=np.array([0, 20]))
    with pytest.raises(ValueError, match="lr"):
        simulate_classification(X, y, prior, lr=-1.0, steps=10)
    with pytest.raises(DivergenceError, match="diverged"):
        simulate_classification(X, y, prior, lr=1e4 * bound, steps=50, check_stability=False)


# -- optimizers: mini-batch SGD and heavy-ball momentum (docs/theory.md §2 (C15)) -----------------------
EPS = np.finfo(np.float64).eps
OPTIMIZER_RUNS = [("gd", None), ("sgd", 2), ("momentum", None), ("momentum", 3)]


@pytest.mark.parametrize("mc_samples", [0, 2])
@pytest.mark.parametrize("optimizer,batch_size", OPTIMIZER_RUNS)
@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_invariants_hold_at_every_recorded_step_for_every_optimizer(loss, optimizer, batch_size, mc_samples):
    X, y, prior = _separable(3)
    steps = 400
    lr = 0.2 * classification_step_bound(X, y, prior, loss)
    result = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=steps, mc_samples=mc_samples, seed=5,
                                     optimizer=optimizer, batch_size=batch_size, momentum=0.5,
                                     record_steps=np.arange(0, steps + 1, 20))
    tr = result.trace
    np.testing.assert_array_equal(tr.steps, np.arange(0, steps + 1, 20))
    # every gradient (batch, MC, velocity) lies in row(X): the null-space parts move only by
    # rounding, at most eps·‖state‖ per step (100× headroom)
    size = 1 + np.linalg.norm(prior.mean) + np.linalg.norm(prior.factor) + np.max(tr.row_mean_norm)
    tol = 100 * steps * EPS * size
    assert np.max(tr.null_mean_drift) <= tol and np.max(tr.null_factor_drift) <= tol
    assert tr.expected_loss[-1] < tr.expected_loss[0]
    assert np.all(np.isfinite(result.final.mean)) and result.final.factor.shape == prior.factor.shape


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_degenerate_optimizers_are_gd_bit_for_bit(loss):
    X, y, prior = _separable(4)
    lr = 0.3 * classification_step_bound(X, y, prior, loss)
    gd = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=60)
    full_batch = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=60, optimizer="sgd", batch_size=len(y))
    no_momentum = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=60, optimizer="momentum", momentum=0.0)
    for other in (full_batch, no_momentum):
        np.testing.assert_array_equal(other.final.mean, gd.final.mean)
        np.testing.assert_array_equal(other.final.factor, gd.final.factor)
        np.testing.assert_array_equal(other.trace.expected_loss, gd.trace.expected_loss)


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_momentum_steps_are_the_heavy_ball_on_the_public_gradient(loss):
    X, y, prior = _separable(5)
    lr, m, steps = 0.2 * classification_step_bound(X, y, prior, loss), 0.7, 5
    result = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=steps, optimizer="momentum", momentum=m)
    mean, factor = prior.mean.copy(), prior.factor.copy()
    v_mean, v_factor = np.zeros_like(mean), np.zeros_like(factor)
    for _ in range(steps):  # v ← m v + g, θ ← θ − η v, as torch.optim.SGD
        g = classification_loss(X, y, Gaussian(mean, factor), loss=loss)
        v_mean, v_factor = m * v_mean + g.grad_mean, m * v_factor + g.grad_factor
        mean, factor = mean - lr * v_mean, factor - lr * v_factor
    # the same arithmetic in another order: rounding of a few O(1) steps
    np.testing.assert_allclose(result.final.mean, mean, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(result.final.factor, factor, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_mini_batch_step_is_unbiased(loss):
    # K one-step runs on random batches of 2 of 6 rows: their mean step is the full-batch step
    # within 5 standard errors (estimated from the K runs; each batch gradient is scaled by n/b)
    X, y, prior = _separable(6)
    lr = 0.3 * classification_step_bound(X, y, prior, loss)
    exact = simulate_classification(X, y, prior, loss=loss, lr=lr, steps=1).final
    runs = np.array([simulate_classification(X, y, prior, loss=loss, lr=lr, steps=1, optimizer="sgd", batch_size=2,
                                             seed=np.random.default_rng([11, k])).final.mean for k in range(200)])
    se = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(runs.mean(axis=0) - exact.mean) <= 5 * se + 1e-15)


def test_optimizer_arguments_are_checked():
    X, y, prior = _separable()
    lr = 0.1 * classification_step_bound(X, y, prior)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        simulate_classification(X, y, prior, lr=lr, steps=3, optimizer="adam")
    with pytest.raises(ValueError, match="optimizer='sgd' needs batch_size"):
        simulate_classification(X, y, prior, lr=lr, steps=3, optimizer="sgd")
    with pytest.raises(ValueError, match="optimizer='gd' is full batch"):
        simulate_classification(X, y, prior, lr=lr, steps=3, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be at most n = 6"):
        simulate_classification(X, y, prior, lr=lr, steps=3, optimizer="sgd", batch_size=7)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        simulate_classification(X, y, prior, lr=lr, steps=3, optimizer="momentum", momentum=1.0)
    # the heavy-ball bound is (1 + m) times the GD one
    bound = classification_step_bound(X, y, prior)
    result = simulate_classification(X, y, prior, lr=1.2 * bound, steps=2, optimizer="momentum", momentum=0.5)
    assert result.step_bound == pytest.approx(1.5 * bound, rel=1e-15)
    with pytest.raises(ValueError, match="times 1 \\+ momentum"):
        simulate_classification(X, y, prior, lr=1.6 * bound, steps=2, optimizer="momentum", momentum=0.5)


# -- float extremes -------------------------------------------------------------------------------
def test_exponential_loss_that_overflows_is_a_clear_error():
    X, y = np.eye(2), np.array([1.0, -1.0])
    # exponent ½‖Lᵀx‖² = 800 > log(max float) = 709.78: the expected loss is not a float64
    with pytest.raises(ValueError, match=r"expected exponential loss of q on X overflows float64: .* = 800"):
        classification_loss(X, y, Gaussian(np.zeros(2), 40.0 * np.eye(2)))
    with pytest.raises(ValueError, match="expected exponential loss of prior on X overflows"):
        simulate_classification(X, y, Gaussian(np.zeros(2), 40.0 * np.eye(2)), lr=1e-3, steps=1,
                                check_stability=False)
    # just below, the value is the closed form itself: e^{½·37²} per point
    q = Gaussian(np.zeros(2), 37.0 * np.eye(2))
    assert classification_loss(X, y, q).value == pytest.approx(2 * np.exp(0.5 * 37.0 ** 2), rel=1e-14)


def test_logistic_loss_of_extremely_wide_laws_is_finite_and_homogeneous():
    # for √v ≫ 1, log(1 + e^{−z}) = max(0, −z) to within e^{−|z|}, so ℓ̄ is homogeneous of degree 1
    # in the width; the quadrature keeps that exactly (its nodes scale with √v)
    X, y = np.eye(2), np.array([1.0, -1.0])
    values = [classification_loss(X, y, Gaussian(np.zeros(2), s * np.eye(2)), loss="logistic").value
              for s in (1e100, 1e120, 1e150)]
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(np.array(values[1:]) / values[0], [1e20, 1e50], rtol=1e-13)
    with pytest.raises(ValueError, match=r"variances ‖Lᵀx‖² of q on X overflow float64"):  # v = 1e600
        classification_loss(X, y, Gaussian(np.zeros(2), 1e300 * np.eye(2)), loss="logistic")


def test_step_bound_at_float_extremes_is_a_number_without_warnings():
    import warnings

    X, y, prior = _separable()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert classification_step_bound(1e-200 * X, y, prior, "logistic") == np.inf  # 8/s_max² > max float
        assert classification_step_bound(X, y, Gaussian(prior.mean, 1e3 * prior.factor)) == 0.0  # β overflows
    with pytest.raises(TypeError, match="prior must be a linear_theory.Gaussian"):
        classification_step_bound(X, y, prior.factor)


@pytest.mark.parametrize("failure", ["no convergence", "non-finite"])
def test_svm_solver_failure_is_a_clear_error_naming_x(monkeypatch, failure):
    """Columns of wildly different scales (1e-300 beside 1e308) can stop SciPy's NNLS or make it return
    NaN without a floating-point flag; either is reported as X being too badly scaled."""
    def broken(E, f, maxiter=None):
        if failure == "no convergence":
            raise RuntimeError("Maximum number of iterations reached.")
        return np.full(E.shape[1], np.nan), np.nan

    monkeypatch.setattr(scipy.optimize, "nnls", broken)
    problem = separable_classification(5, 3, margin=0.2, seed=0)
    with pytest.raises(ValueError, match=r"^X is too badly scaled for the hard-margin SVM"):
        hard_margin_svm(problem.X, problem.y)
