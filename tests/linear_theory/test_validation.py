"""Bad input raises a clear ValueError/TypeError that names the argument (never a raw NumPy error).

Each case is (callable, exception type, regex on the message). The regexes include the argument's
name so that a message that does not say *which* input is wrong fails the test.
"""
import numpy as np
import pytest

from linear_theory import (DivergenceError, Gaussian, KroneckerGaussian, MeanFieldGaussian, bayes_posterior,
                           expected_loss, feature_regression_1d, gd_iterate, ibvi_limit, ibvi_limit_w2_squared,
                           mc_factor_threshold, predicted_mc_threshold, project_null, project_row, random_regression,
                           row_space_basis, row_space_solver, separable_classification, simulate,
                           simulate_classification, simulate_kronecker, stability_bound, w2, w2_gvi, w2_squared)

rng = np.random.default_rng(0)
N, D = 4, 9
X = rng.standard_normal((N, D))
y = rng.standard_normal(N)
P = Gaussian(rng.standard_normal(D), rng.standard_normal((D, D)))
LOW = Gaussian(P.mean, P.factor[:, :3])
MF = MeanFieldGaussian(np.zeros(D), np.ones(D))
NAN_X = X.copy()
NAN_X[1, 2] = np.nan
INF_Y = y.copy()
INF_Y[0] = np.inf
BOUND = 1.0 / np.linalg.norm(X, 2) ** 2


def sim(**kwargs):
    args = dict(lr=0.1 * BOUND, steps=2)
    args.update(kwargs)
    prior = args.pop("prior", P)
    return simulate(args.pop("X", X), args.pop("y", y), prior, **args)


CASES = {
    # -- Gaussians ----------------------------------------------------------------------------
    "mean 2-D": (lambda: Gaussian(np.zeros((D, 1)), np.eye(D)), ValueError, r"mean must be 1-D"),
    "factor 1-D": (lambda: Gaussian(np.zeros(D), np.ones(D)), ValueError, r"factor must be 2-D"),
    "factor rows": (lambda: Gaussian(np.zeros(D), np.ones((D + 1, 2))), ValueError, r"factor must have shape \(d, r\)"),
    "mean NaN": (lambda: Gaussian(np.full(D, np.nan), np.eye(D)), ValueError, r"mean contains 9 NaN or infinite"),
    "factor inf": (lambda: Gaussian(np.zeros(2), [[np.inf, 0], [0, 1]]), ValueError, r"factor contains 1 NaN"),
    "mean empty": (lambda: Gaussian(np.zeros(0), np.zeros((0, 1))), ValueError, r"mean must not be empty"),
    "mean string": (lambda: Gaussian("abc", np.eye(3)), TypeError, r"mean must be a real numeric array"),
    "mean complex": (lambda: Gaussian(np.zeros(2) + 1j, np.eye(2)), TypeError, r"mean must be real"),
    "factor ragged": (lambda: Gaussian(np.zeros(2), [[1.0, 2.0], [3.0]]), TypeError, r"factor must be a real numeric array"),
    "scale length": (lambda: MeanFieldGaussian(np.zeros(3), np.ones(4)), ValueError, r"scale must have length 3"),
    "isotropic scale 0": (lambda: Gaussian.isotropic(0.0, 0.0, 3), ValueError, r"scale must be a finite positive"),
    "isotropic no d": (lambda: Gaussian.isotropic(0.0, 1.0), ValueError, r"d is required"),
    "isotropic d 0": (lambda: MeanFieldGaussian.isotropic(0.0, 1.0, 0), ValueError, r"d must be a positive integer"),
    "isotropic d float": (lambda: Gaussian.isotropic(0.0, 1.0, 3.0), TypeError, r"d must be an integer"),
    "isotropic mean/d": (lambda: Gaussian.isotropic(np.zeros(3), 1.0, 4), ValueError, r"mean must have length 4"),
    "from_cov not PSD": (lambda: Gaussian.from_cov(np.zeros(2), [[1.0, 0.0], [0.0, -0.5]]), ValueError,
                         r"cov is not positive semi-definite"),
    "from_cov asymmetric": (lambda: Gaussian.from_cov(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]]), ValueError,
                            r"cov must be symmetric"),
    "from_cov shape": (lambda: Gaussian.from_cov(np.zeros(3), np.eye(2)), ValueError, r"cov must have shape \(3, 3\)"),
    "from_cov NaN": (lambda: Gaussian.from_cov(np.zeros(2), [[np.nan, 0], [0, 1]]), ValueError, r"cov contains 1 NaN"),
    "from_cov tol": (lambda: Gaussian.from_cov(np.zeros(2), np.eye(2), tol=-1.0), ValueError, r"tol must be"),
    "sample n 0": (lambda: P.sample(0, 1), ValueError, r"n must be a positive integer"),
    "sample rng None": (lambda: P.sample(3, None), ValueError, r"rng must be given explicitly"),
    "sample rng float": (lambda: P.sample(3, 1.5), TypeError, r"rng must be a non-negative int"),
    "predictive cols": (lambda: P.predictive(np.zeros((2, D + 1))), ValueError, r"X_test must have 9 columns"),
    "predictive NaN": (lambda: MF.predictive(np.full(D, np.nan)), ValueError, r"X_test contains"),
    # -- W2 -----------------------------------------------------------------------------------
    "w2 type": (lambda: w2_squared(P, P.cov()), TypeError, r"q must be a Gaussian or MeanFieldGaussian"),
    "w2 p type": (lambda: w2(None, P), TypeError, r"p must be a Gaussian"),
    "w2 dims": (lambda: w2_squared(P, Gaussian.isotropic(0.0, 1.0, 3)), ValueError, r"p and q must have the same dimension"),
    # -- subspaces ----------------------------------------------------------------------------
    "basis NaN": (lambda: row_space_basis(NAN_X), ValueError, r"X contains 1 NaN"),
    "basis rtol": (lambda: row_space_basis(X, -1.0), ValueError, r"rtol must be a finite non-negative"),
    "solver method": (lambda: row_space_solver(X, method="qr"), ValueError, r"method must be 'auto', 'gram' or 'svd'"),
    "solver gram tall": (lambda: row_space_solver(X.T, method="gram"), ValueError, r"method='gram' needs a wide X"),
    "solver gram deficient": (lambda: row_space_solver(np.vstack([X, X[0]]), method="gram"), ValueError,
                              r"method='gram' needs X of full row rank"),
    "pinv b rows": (lambda: row_space_solver(X).pinv(np.ones(D)), ValueError, r"b must have 4 rows"),
    "shifted lam": (lambda: row_space_solver(X).shifted_solve(y, -1.0), ValueError, r"lam must be a finite non-negative"),
    "project A rows": (lambda: project_null(X, np.ones(N)), ValueError, r"A must have 9 rows"),
    "project basis A rows": (lambda: project_row(row_space_basis(X), np.ones(N)), ValueError, r"A must have 9 rows"),
    "project X 1-D": (lambda: project_null(np.ones(D), np.ones(D)), ValueError, r"X must be 2-D"),
    # -- closed forms -------------------------------------------------------------------------
    "ibvi X NaN": (lambda: ibvi_limit(NAN_X, y, P), ValueError, r"X contains 1 NaN"),
    "ibvi y inf": (lambda: ibvi_limit(X, INF_Y, P), ValueError, r"y contains 1 NaN or infinite"),
    "ibvi y length": (lambda: ibvi_limit(X, np.ones(N + 1), P), ValueError, r"y must have one entry per row of X"),
    "ibvi y 2-D": (lambda: ibvi_limit(X, y[:, None], P), ValueError, r"y must be 1-D"),
    "ibvi prior dim": (lambda: ibvi_limit(X[:, :5], y, P), ValueError, r"prior has dimension 9 but X has 5 columns"),
    "ibvi prior type": (lambda: ibvi_limit(X, y, MF), TypeError, r"prior must be a linear_theory.Gaussian"),
    "ibvi empty": (lambda: ibvi_limit(np.zeros((0, D)), np.zeros(0), P), ValueError, r"X must not be empty"),
    "ibvi solver": (lambda: ibvi_limit(X, y, P, solver=row_space_solver(X[:3])), ValueError,
                    r"solver must be a RowSpaceSolver built from this X"),
    "ibvi w2 y": (lambda: ibvi_limit_w2_squared(X, y[:2], P), ValueError, r"y must have one entry per row"),
    "gvi lam negative": (lambda: w2_gvi(X, y, P, -0.1), ValueError, r"lam must be a finite non-negative"),
    "gvi lam NaN": (lambda: w2_gvi(X, y, P, float("nan")), ValueError, r"lam must be a finite non-negative"),
    "gvi lam string": (lambda: w2_gvi(X, y, P, "1"), TypeError, r"lam must be a real number"),
    "gd lr 0": (lambda: gd_iterate(X, y, P, 0.0, 3), ValueError, r"lr must be a finite positive"),
    "gd steps negative": (lambda: gd_iterate(X, y, P, 0.1, -1), ValueError, r"steps must be a non-negative integer"),
    "gd steps float": (lambda: gd_iterate(X, y, P, 0.1, 2.0), TypeError, r"steps must be an integer"),
    "gd overflow": (lambda: gd_iterate(X, y, P, 10 * BOUND, 10**6), ValueError,
                    r"lr=.* is above the stability bound .* overflows"),
    "bayes noise": (lambda: bayes_posterior(X, y, P, -1.0), ValueError, r"noise_var must be a finite non-negative"),
    "bayes not interpolable": (lambda: bayes_posterior(X, y, Gaussian(np.zeros(D), np.ones((D, 1)))), ValueError,
                               r"noise_var=0 needs data that the prior can interpolate"),
    "bayes prior type": (lambda: bayes_posterior(X, y, "prior"), TypeError, r"prior must be a linear_theory.Gaussian"),
    "expected_loss q": (lambda: expected_loss(X, y, {"mean": 0}), TypeError, r"q must be a Gaussian or MeanFieldGaussian"),
    "expected_loss X cols": (lambda: expected_loss(X[:, :3], y, P), ValueError, r"prior has dimension 9 but X has 3"),
    # -- step multipliers ---------------------------------------------------------------------
    "multipliers length": (lambda: ibvi_limit(X, y, P, step_multipliers=np.ones(D - 1)), ValueError,
                           r"step_multipliers must have length 9"),
    "multipliers zero": (lambda: w2_gvi(X, y, P, 0.1, step_multipliers=np.r_[0.0, np.ones(D - 1)]), ValueError,
                         r"step_multipliers must be positive"),
    "multipliers negative": (lambda: gd_iterate(X, y, P, 0.1, 2, step_multipliers=-np.ones(D)), ValueError,
                             r"step_multipliers must be positive"),
    "multipliers NaN": (lambda: ibvi_limit_w2_squared(X, y, P, step_multipliers=np.full(D, np.nan)), ValueError,
                        r"step_multipliers contains 9 NaN"),
    "multipliers 2-D": (lambda: stability_bound(X, step_multipliers=np.ones((D, 1))), ValueError,
                        r"step_multipliers must be 1-D"),
    "multipliers string": (lambda: sim(step_multipliers="ones"), TypeError, r"step_multipliers must be a real"),
    "multipliers and preconditioned": (lambda: stability_bound(X, prior=P, preconditioned=True,
                                                               step_multipliers=np.ones(D)), ValueError,
                                       r"step_multipliers cannot be combined with preconditioned=True"),
    "multipliers solver": (lambda: ibvi_limit(X, y, P, step_multipliers=np.arange(1.0, D + 1),
                                              solver=row_space_solver(X)), ValueError,
                           r"solver must be a RowSpaceSolver of X \* sqrt\(step_multipliers"),
    "w2 metric length": (lambda: w2(P, P, metric=np.ones(2)), ValueError, r"metric must have length 9"),
    "w2 overflow": (lambda: w2_squared(Gaussian(np.full(D, 1e200), P.factor), P), ValueError,
                    r"W2\^2\(p, q\) overflows float64"),
    # -- simulate -----------------------------------------------------------------------------
    "sim family": (lambda: sim(family="diag"), ValueError, r"family must be one of \('full', 'lowrank', 'meanfield'\)"),
    "sim optimizer": (lambda: sim(optimizer="adam"), ValueError, r"optimizer must be one of \('gd', 'sgd', 'momentum'\)"),
    "sim full r": (lambda: sim(prior=LOW), ValueError, r"family='full' needs a d×d prior factor \(d = 9\), got width r = 3"),
    "sim lowrank r": (lambda: sim(family="lowrank"), ValueError, r"family='lowrank' needs a prior factor of width r < d"),
    "sim meanfield prior": (lambda: sim(family="meanfield", prior=LOW), ValueError,
                            r"family='meanfield' needs a MeanFieldGaussian prior"),
    "sim full prior mf": (lambda: sim(prior=MF), ValueError, r"family='full' needs a Gaussian prior"),
    "sim prior type": (lambda: sim(prior=P.cov()), TypeError, r"prior must be a Gaussian or MeanFieldGaussian"),
    "sim lr above bound": (lambda: sim(lr=1.01 * BOUND), ValueError, r"lr=.* is at or above the stability bound"),
    "sim lr_factor above bound": (lambda: sim(lr_factor=2 * BOUND), ValueError,
                                  r"lr_factor=.* is at or above the stability bound"),
    "sim diverges": (lambda: sim(lr=3 * BOUND, steps=400, check_stability=False), DivergenceError,
                     r"stability bound of this problem is"),
    "sim lr missing": (lambda: sim(lr=None), TypeError, r"lr must be a real number"),
    "sim steps negative": (lambda: sim(steps=-1), ValueError, r"steps must be a non-negative integer"),
    "sim batch > n": (lambda: sim(optimizer="sgd", batch_size=N + 1), ValueError, r"batch_size must be at most n = 4"),
    "sim batch 0": (lambda: sim(optimizer="sgd", batch_size=0), ValueError, r"batch_size must be a positive integer"),
    "sim sgd no batch": (lambda: sim(optimizer="sgd"), ValueError, r"optimizer='sgd' needs batch_size"),
    "sim gd batch": (lambda: sim(batch_size=2), ValueError, r"optimizer='gd' is full batch"),
    "sim mc negative": (lambda: sim(mc_samples=-1), ValueError, r"mc_samples must be a non-negative integer"),
    "sim momentum 1": (lambda: sim(optimizer="momentum", momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    "sim record 0": (lambda: sim(record_every=0), ValueError, r"record_every must be a positive integer"),
    "sim seed None": (lambda: sim(seed=None), ValueError, r"seed must be given explicitly"),
    "sim seed string": (lambda: sim(seed="a"), TypeError, r"seed must be a non-negative int"),
    "sim preconditioned mf": (lambda: sim(family="meanfield", prior=MF, preconditioned=True), ValueError,
                              r"preconditioned=True is defined for the full and low-rank"),
    "sim X NaN": (lambda: sim(X=NAN_X), ValueError, r"X contains 1 NaN"),
    "sim empty": (lambda: sim(X=np.zeros((0, D)), y=np.zeros(0)), ValueError, r"X must not be empty"),
    "stability X NaN": (lambda: stability_bound(NAN_X), ValueError, r"X contains 1 NaN"),
    "stability optimizer": (lambda: stability_bound(X, "lbfgs"), ValueError, r"optimizer must be one of"),
    "stability momentum": (lambda: stability_bound(X, "momentum", momentum=-0.5), ValueError, r"momentum must be"),
    "stability preconditioned": (lambda: stability_bound(X, preconditioned=True), TypeError,
                                 r"preconditioned=True needs prior"),
    "mc threshold rank": (lambda: mc_factor_threshold(X, D), ValueError, r"rank must be below d = 9"),
    "mc threshold zero X": (lambda: mc_factor_threshold(np.zeros((2, 5)), 2), ValueError, r"X must not be all zeros"),
    "mc threshold seeds": (lambda: mc_factor_threshold(X, 2, seeds=()), ValueError, r"seeds must hold at least one"),
    "mc prediction": (lambda: predicted_mc_threshold(0.0, 2), ValueError, r"s_max must be a finite positive"),
    # -- generators ---------------------------------------------------------------------------
    "regression n": (lambda: random_regression(0, 5), ValueError, r"n must be a positive integer"),
    "regression rank": (lambda: random_regression(3, 5, rank=4), ValueError, r"rank must be at most min\(n, d\) = 3"),
    "regression kappa": (lambda: random_regression(3, 5, condition_number=0.5), ValueError,
                         r"condition_number must be at least 1"),
    "regression spectrum": (lambda: random_regression(3, 5, spectrum=[1.0, -1.0, 2.0]), ValueError,
                            r"spectrum must hold positive"),
    "regression spectrum length": (lambda: random_regression(3, 5, spectrum=[1.0]), ValueError,
                                   r"spectrum must have length 3"),
    "regression scale": (lambda: random_regression(3, 5, scale=-2.0), ValueError, r"scale must be a finite positive"),
    "regression noise": (lambda: random_regression(3, 5, noise=float("inf")), ValueError, r"noise must be"),
    "regression noise overflow": (lambda: random_regression(4, 7, condition_number=1.7e308, noise=1.7e308),
                                  ValueError, r"condition_number and noise hold values too large"),
    "ibvi w2 multipliers overflow": (lambda: ibvi_limit_w2_squared(X, y, P, step_multipliers=np.full(D, 5e-324)),
                                     ValueError, r"prior and step_multipliers hold values too large"),
    "features lengthscale": (lambda: feature_regression_1d(5, 8, lengthscale=0.0), ValueError, r"lengthscale must be"),
    "features x": (lambda: feature_regression_1d(5, 8).features(np.zeros((2, 2))), ValueError, r"x must be 1-D"),
    "classification margin": (lambda: separable_classification(5, 3, margin=1.0), ValueError, r"margin must be below 1"),
    "classification n": (lambda: separable_classification(1, 3), ValueError, r"n must be at least 2"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_raises_clear_error(case):
    call, exc_type, pattern = CASES[case]
    with pytest.raises(exc_type, match=pattern) as info:
        call()
    # raised by linear_theory's own checks, not from deep inside NumPy/SciPy
    assert "linear_theory" in info.traceback[-1].path.as_posix()


def test_divergence_error_is_not_a_value_error():
    """Divergence with check_stability=False is a runtime event, distinct from bad arguments."""
    assert issubclass(DivergenceError, RuntimeError) and not issubclass(DivergenceError, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_every_array_argument_rejects_non_finite_values(bad):
    Xb, yb = X.copy(), y.copy()
    Xb[0, 0], yb[0] = bad, bad
    prior_mean = P.mean.copy()
    prior_mean[0] = bad
    for call, name in ((lambda: ibvi_limit(Xb, y, P), "X"), (lambda: w2_gvi(X, yb, P, 1.0), "y"),
                       (lambda: gd_iterate(Xb, y, P, 0.1, 1), "X"), (lambda: bayes_posterior(X, yb, P, 1.0), "y"),
                       (lambda: Gaussian(prior_mean, P.factor), "mean"), (lambda: row_space_solver(Xb), "X"),
                       (lambda: simulate(X, yb, P, lr=0.1 * BOUND, steps=1), "y")):
        with pytest.raises(ValueError, match=rf"{name} contains 1 NaN or infinite"):
            call()


# -- the shared guards ------------------------------------------------------------------------------
def test_float_guard_names_the_outermost_call_and_leaves_handled_overflow_alone():
    from linear_theory._validation import float_guard

    @float_guard("b")
    def inner(b):
        return np.asarray(b) * 1e300

    @float_guard("a")
    def outer(a):
        return inner(a)

    with pytest.raises(ValueError, match=r"^a hold values too large .* in .*outer \(overflow encountered in multiply\)"):
        outer(np.full(2, 1e10))
    np.testing.assert_array_equal(outer(np.ones(2)), np.full(2, 1e300))  # no overflow, no change
    with np.errstate(over="ignore"):  # a caller that handles overflow itself gets NumPy's inf
        assert np.all(np.isinf(outer(np.full(2, 1e10))))
    assert np.geterr()["over"] == "warn"  # and the guard leaves the error state as it found it


def test_counts_and_allocations_are_bounded():
    from linear_theory._validation import as_positive_int, check_allocation

    assert as_positive_int("n", 2**63 - 1) == 2**63 - 1
    with pytest.raises(ValueError, match=r"n must be at most 2\*\*63 - 1, got 9223372036854775808"):
        as_positive_int("n", 2**63)
    check_allocation("n", 1000, 1000)  # 8 MB
    with pytest.raises(ValueError, match=r"n: the result would be an array of shape \(1000000000000, 1000000000000\) \(8e\+24 bytes\)"):
        check_allocation("n", 10**12, 10**12)


# -- the simulators share one check of their run options ---------------------------------------
def _simulators():
    problem = separable_classification(6, 4, margin=0.2, seed=1)
    cprior = Gaussian(np.zeros(4), np.eye(4) / 4)
    kprior = KroneckerGaussian(np.zeros((D, 2)), P.factor[:, :2] / 3, np.eye(2) / 2)
    Y = rng.standard_normal((N, 2))
    return {
        "simulate": lambda **kw: simulate(X, y, P, **{"lr": 0.1 * BOUND, "steps": 2, **kw}),
        "simulate_kronecker": lambda **kw: simulate_kronecker(X, Y, kprior, **{"lr": 1e-3, "steps": 2, **kw}),
        "simulate_classification": lambda **kw: simulate_classification(
            problem.X, problem.y, cprior, **{"lr": 1e-3, "steps": 2, **kw}),
    }


RUN_OPTION_CASES = [
    (dict(optimizer="adam"), ValueError, r"optimizer must be one of \('gd', 'sgd', 'momentum'\), got 'adam'"),
    (dict(optimizer=["gd"]), ValueError, r"optimizer must be one of"),
    (dict(optimizer="sgd"), ValueError, r"optimizer='sgd' needs batch_size"),
    (dict(optimizer="gd", batch_size=2), ValueError, r"optimizer='gd' is full batch"),
    (dict(optimizer="sgd", batch_size=99), ValueError, r"batch_size must be at most n = \d+, got 99"),
    (dict(optimizer="sgd", batch_size=2.0), TypeError, r"batch_size must be an integer"),
    (dict(optimizer="momentum", momentum=1.0), ValueError, r"momentum must be in \[0, 1\), got 1.0"),
    (dict(mc_samples=-1), ValueError, r"mc_samples must be a non-negative integer"),
    (dict(mc_samples=2 ** 62), ValueError, r"^mc_samples: the result would be an array"),
    (dict(steps=1.5), TypeError, r"steps must be an integer"),
    (dict(lr=0.0), ValueError, r"lr must be a finite positive number"),
    (dict(seed=None), ValueError, r"seed must be given explicitly"),
    (dict(seed=-3), ValueError, r"seed must be a non-negative int"),
]


@pytest.mark.parametrize("name", ["simulate", "simulate_kronecker", "simulate_classification"])
@pytest.mark.parametrize("kwargs, error, pattern", RUN_OPTION_CASES)
def test_every_simulator_checks_its_run_options_alike(name, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        _simulators()[name](**kwargs)


@pytest.mark.parametrize("name", ["simulate", "simulate_kronecker"])
def test_regression_simulators_check_record_every(name):
    with pytest.raises(ValueError, match=r"record_every must be a positive integer"):
        _simulators()[name](record_every=0)
