"""Tests of the sympy derivations (proofs_check.symbolic) and the S claims that report them.

Each derivation must give residuals that sympy proves identically zero; each must also reject a
deliberately wrong candidate formula (the failure path), so the comparison is not vacuous.
"""
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from proofs_check import symbolic
from proofs_check.registry import Context, run_claim, select


def sizes(result):
    rng = np.random.default_rng(0)
    return {r.name: symbolic.residual_size(r, rng) for r in result.residuals}


DERIVATIONS = {
    "expected_loss": symbolic.expected_loss,
    "gradients": symbolic.gradients,
    "gd_iterate": symbolic.gd_iterate,
    "penalized_w2_gvi": symbolic.penalized_w2_gvi,
    "gaussian_mgf": symbolic.gaussian_mgf,
    "w2_factor_vs_bures": lambda: symbolic.w2_factor_vs_bures(mp_cases=0),
    "ibvi_limit_exact": symbolic.ibvi_limit_exact,
    "kronecker_balance": symbolic.kronecker_balance,
    "mc_step_thresholds": symbolic.mc_step_thresholds,
}


@pytest.mark.parametrize("name", sorted(DERIVATIONS))
def test_every_residual_is_exactly_zero(name):
    result = DERIVATIONS[name]()
    assert result.residuals, "a derivation without residuals checks nothing"
    for residual in result.residuals:
        assert symbolic.is_exactly_zero(residual.value), residual.name


# ---- failure paths: a wrong candidate must give a nonzero residual ------------------------

def _norm2(v):
    return sum(e ** 2 for e in v)


def test_expected_loss_without_trace_term_is_rejected():
    result = symbolic.expected_loss(candidate=lambda X, y, mu, L: _norm2(y - X * mu))
    assert sizes(result)["E||y-Xw||^2 - candidate"] > 0
    # The missing part is exactly ‖XL‖²_F: the derivation, not the candidate, supplies it.
    missing = sp.expand(result.derived - result.candidate - _norm2(result.X * result.L))
    assert missing == 0


def test_expected_loss_with_unsquared_trace_term_is_rejected():
    wrong = lambda X, y, mu, L: _norm2(y - X * mu) + sum(X * L)
    assert sizes(symbolic.expected_loss(candidate=wrong))["E||y-Xw||^2 - candidate"] > 0


def test_gradient_without_factor_two_is_rejected():
    wrong = lambda X, y, mu, L: (-X.T * (y - X * mu), X.T * X * L)
    found = sizes(symbolic.gradients(candidate=wrong))
    assert found["d/dmu - candidate"] > 0 and found["d/dL - candidate"] > 0


def test_gradient_with_wrong_sign_on_mean_is_rejected():
    wrong = lambda X, y, mu, L: (2 * X.T * (y - X * mu), 2 * X.T * X * L)
    found = sizes(symbolic.gradients(candidate=wrong))
    assert found["d/dmu - candidate"] > 0
    assert found["d/dL - candidate"] == 0.0


def test_wrong_contraction_factor_is_rejected():
    found = sizes(symbolic.gd_iterate(candidate_factor=lambda eta, s: 1 - eta * s ** 2))
    assert found["e_t - candidate^t e_0"] > 0
    assert found["e_{t+1}/e_t - candidate"] > 0
    assert found["eigenvectors of the GD map"] > 0
    # The derivation of the recursion itself does not depend on the candidate.
    assert found["error recursion (I-2eta X^T X)"] == 0.0
    assert found["rsolve solution satisfies recursion"] == 0.0


def test_wrong_stability_bound_is_rejected():
    found = sizes(symbolic.gd_iterate(candidate_upper=lambda s: 2 / s ** 2))
    assert found["stable interval - (0, candidate)"] > 0
    assert found["e_t - candidate^t e_0"] == 0.0


def test_gd_solution_and_stability_set_are_the_derived_ones():
    result = symbolic.gd_iterate()
    eta, s = sp.Symbol("eta", positive=True), sp.Symbol("s", positive=True)
    assert sp.simplify(result.factor - (1 - 2 * eta * s ** 2)) == 0
    assert result.stable_set.left_open and result.stable_set.right_open
    assert result.squared_singular_values == (0, 1, 3)


def test_wrong_lambda_placement_is_rejected():
    def wrong(X, y, mu0, L0, lam):
        inner = (lam * X * X.T + sp.eye(X.rows)).inv()
        return mu0 + X.T * inner * (y - X * mu0), (sp.eye(X.cols) - X.T * inner * X) * L0

    found = sizes(symbolic.penalized_w2_gvi(candidate=wrong))
    for key in ("mean, symbolic n=1 d=2", "factor, symbolic n=1 d=2",
                "mean, rational n=2 d=3", "factor, rational n=2 d=3"):
        assert found[key] > 0, key


def test_penalized_factor_without_projection_is_rejected():
    def wrong(X, y, mu0, L0, lam):
        mean, _ = symbolic.penalized_formula(X, y, mu0, L0, lam)
        return mean, L0

    found = sizes(symbolic.penalized_w2_gvi(candidate=wrong))
    assert found["mean, rational n=2 d=3"] == 0.0
    assert found["factor, rational n=2 d=3"] > 0


def test_penalized_limits_in_lambda():
    # λ → ∞ gives the prior, λ → 0 the IBVI limit: read off the solved stationary point.
    result = symbolic.penalized_w2_gvi()
    lam = sp.Symbol("lambda", positive=True)
    limit = symbolic.ibvi_limit_exact()  # same X, μ₀, L₀ but a different y: compare factors only
    factor_at_zero = result.factor_rational.applyfunc(lambda e: sp.limit(e, lam, 0))
    assert factor_at_zero == limit.limit_factor
    factor_at_inf = result.factor_rational.applyfunc(lambda e: sp.limit(e, lam, sp.oo))
    assert factor_at_inf == sp.Matrix(((1, 0), (1, 1), (0, 3)))


def test_mgf_without_half_is_rejected():
    def wrong(x, y_label, mu, L):
        proj = L.T * x
        return sp.exp(-y_label * (x.T * mu)[0, 0] + (proj.T * proj)[0, 0])

    found = sizes(symbolic.gaussian_mgf(candidate=wrong))
    assert all(value > 0 for value in found.values()), found


def test_mgf_with_wrong_sign_of_label_is_rejected():
    def wrong(x, y_label, mu, L):
        return symbolic.mgf_formula(x, -y_label, mu, L)

    found = sizes(symbolic.gaussian_mgf(candidate=wrong))
    assert all(value > 0 for value in found.values()), found


def test_product_of_square_roots_fails_only_for_non_commuting_covariances():
    def wrong(sigma1, sigma2):
        return (symbolic.psd_sqrt(sigma1) * symbolic.psd_sqrt(sigma2)).trace()

    found = sizes(symbolic.w2_factor_vs_bures(candidate_cross=wrong, mp_cases=0))
    assert found["factor - Bures, 1-D, symbolic"] == 0.0
    assert found["factor - Bures, commuting diagonal 2x2, symbolic"] == 0.0
    assert found["factor - Bures, general 2x2, exact algebraic"] > 1e-3


def test_bures_without_inner_square_root_is_rejected():
    def wrong(sigma1, sigma2):
        root2 = symbolic.psd_sqrt(sigma2)
        return (root2 * sigma1 * root2).trace()

    found = sizes(symbolic.w2_factor_vs_bures(candidate_cross=wrong, mp_cases=0))
    assert all(value > 0 for value in found.values()), found


def test_w2_mpmath_cross_check_is_at_rounding_level():
    result = symbolic.w2_factor_vs_bures(rng=np.random.default_rng(3), mp_cases=3, mp_digits=50)
    # 50 digits, 2x2 matrices with entries below 100: rounding is far below 1e-40.
    assert result.mpmath_max_abs_difference < 1e-40


def test_limit_without_null_projection_is_rejected():
    def wrong(X, y, mu0, L0):
        mean, _ = symbolic.ibvi_limit_formula(X, y, mu0, L0)
        return mean, L0

    found = sizes(symbolic.ibvi_limit_exact(candidate=wrong))
    assert found["mean: candidate - Lagrange"] == 0.0
    assert found["covariance: candidate - Lagrange"] > 0
    assert found["W2^2(candidate, p) - W2^2(Lagrange, p)"] > 0


def test_limit_ignoring_prior_mean_is_rejected():
    def wrong(X, y, mu0, L0):
        _, factor = symbolic.ibvi_limit_formula(X, y, mu0, L0)
        return X.pinv() * y, factor

    found = sizes(symbolic.ibvi_limit_exact(candidate=wrong))
    assert found["mean: candidate - Lagrange"] > 0
    assert found["covariance: candidate - Lagrange"] == 0.0


def test_ibvi_limit_solves_the_constraints():
    result = symbolic.ibvi_limit_exact()
    X = sp.Matrix(((1, 2, 0), (0, 1, -1)))
    assert X * result.lagrange_mean == sp.Matrix([1, 2])
    assert X * result.lagrange_factor == sp.zeros(2, 2)
    assert result.w2_squared.is_Rational and result.w2_squared > 0


@pytest.fixture(scope="module")
def kronecker_wrong():
    """One derivation with every candidate replaced by a plausible wrong formula."""
    return sizes(symbolic.kronecker_balance(
        candidate_loss=lambda X, Y, M, A, B: _norm2(Y - X * M) + _norm2(X * A * B.T),
        candidate_gradients=lambda X, Y, M, A, B: (-2 * X.T * (Y - X * M), 2 * _norm2(B) * X.T * X * A,
                                                   2 * _norm2(A) * B),
        candidate_conserved=lambda A, B: _norm2(A) + _norm2(B),
        candidate_moments=lambda X, E, A, B: tuple(
            4 * (a * _norm2(X.T * E * B) + _norm2(X.T * X * A) * (_norm2(B) ** 2 + 2 * _norm2(B.T * B)))
            for a in (A.cols, B.cols)),
        candidate_slope=lambda s, w, beta_inf: beta_inf * sum(si ** 2 * wi for si, wi in zip(s, w)) / 4))


def test_kronecker_wrong_candidates_are_rejected(kronecker_wrong):
    found = kronecker_wrong
    # ‖XAZBᵀ‖² has expectation ‖XA‖²‖B‖², not ‖XABᵀ‖²
    assert found["E||Y - XW||^2 - candidate"] > 0
    # the M and A gradients were right, the B gradient used ‖A‖² for ‖XA‖²
    assert found["d/dM - candidate"] == 0.0 and found["d/dA - candidate"] == 0.0
    assert found["d/dB - candidate"] > 0
    # ‖A‖² + ‖B‖² decreases along the flow; its one-step change has other terms
    assert found["d/dt conserved quantity along the flow"] > 0
    assert found["one step: C(theta - eta G) - C(theta) - (-2 eta(<A,G_A> - <B,G_B>) "
                 "+ eta^2(||G_A||^2 - ||G_B||^2))"] > 0
    # the per-draw symmetry does not depend on a candidate
    assert found["<A, df/dA> - <B, df/dB> for every draw of Z"] == 0.0
    assert found["E||g_A||^2 - candidate (rational example, one draw)"] > 0
    assert found["E||g_B||^2 - candidate (rational example, one draw)"] > 0
    assert found["flow integral of the GD drift - candidate (two singular values)"] > 0


def test_mc_thresholds_wrong_candidates_are_rejected():
    found = sizes(symbolic.mc_step_thresholds(
        candidate_threshold=lambda s, r, m, beta: (1 + beta) / (s ** 2 * (1 + (r + 1) / m)),
        candidate_descent=lambda a, z: 2 / a,
        candidate_critical=lambda lr, z: 2 * sp.sqrt(z / 3) * sp.sinh(sp.asinh((3 / lr) * sp.sqrt(3 / z)))))
    # naive "(1 + β) times the plain bound" is not the heavy-ball mean-square root
    assert found["det(I - T) at c* = 2 s^2 candidate threshold"] > 0
    assert found["grid points where rho(T) < 1 disagrees with c < c*"] > 0
    # the noiseless bound 2/a ignores the MC noise term of the expected descent
    assert found["E[l(x - rho g)] - l(x) at rho = candidate descent step"] > 0
    assert found["rho H (1 + H^2/z) - 2 at H = candidate critical sharpness"] > 0
    # the moment derivations do not depend on the candidates
    assert found["E[Zhat^2] - (1 + (r+1)/m) I (r = m = 2)"] == 0.0
    assert found["E||l_{t+1}||^2 - heavy-ball map (r = m = 2)"] == 0.0


def test_mc_threshold_plain_case_is_the_old_bound():
    beta, s, r, m = sp.Symbol("beta"), sp.Symbol("s", positive=True), sp.Symbol("r"), sp.Symbol("m")
    plain = symbolic.mc_mean_square_threshold_formula(s, r, m, 0)
    assert sp.simplify(plain - 1 / (s ** 2 * (1 + (r + 1) / m))) == 0
    # deterministic heavy ball (κ = 1 as m → ∞) gives back (1 + β)/s²
    limit = sp.limit(symbolic.mc_mean_square_threshold_formula(s, r, m, beta), m, sp.oo)
    assert sp.simplify(limit - (1 + beta) / s ** 2) == 0


# ---- building blocks ---------------------------------------------------------------------

@given(st.integers(min_value=0, max_value=6))
@settings(max_examples=7)
def test_standard_normal_moments_are_double_factorials(k):
    expected = 0 if k % 2 else sp.factorial2(k - 1)
    assert symbolic.standard_normal_moment(k) == expected


@given(n=st.integers(1, 2), d=st.integers(1, 3), r=st.integers(1, 2))
@settings(max_examples=8)
def test_expected_loss_holds_for_every_small_shape(n, d, r):
    result = symbolic.expected_loss(n, d, r)
    assert symbolic.is_exactly_zero(result.residuals[0].value)
    assert result.X.shape == (n, d) and result.L.shape == (d, r)


@given(n=st.integers(1, 2), d=st.integers(1, 3), r=st.integers(1, 2))
@settings(max_examples=6)
def test_gradients_hold_for_every_small_shape(n, d, r):
    result = symbolic.gradients(n, d, r)
    assert result.grad_mean.shape == (d, 1) and result.grad_factor.shape == (d, r)
    assert all(symbolic.is_exactly_zero(res.value) for res in result.residuals)


@given(seed=st.integers(0, 2 ** 16), value=st.fractions(min_value=-50, max_value=50))
@settings(max_examples=15)
def test_residual_size_of_a_nonzero_constant_is_its_absolute_value(seed, value):
    size = symbolic.residual_size(sp.Rational(value.numerator, value.denominator),
                                  np.random.default_rng(seed))
    assert size == pytest.approx(abs(float(value)), rel=1e-15, abs=0.0)


def test_residual_size_is_zero_only_for_identities():
    x = sp.Symbol("x", real=True)
    assert symbolic.residual_size((x + 1) ** 2 - x ** 2 - 2 * x - 1) == 0.0
    assert symbolic.residual_size(sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1) == 0.0
    assert symbolic.residual_size((x + 1) ** 2 - x ** 2 - 1) > 0


def test_nuclear_norm_and_psd_sqrt_exact():
    A = sp.Matrix([[3, 0], [4, 5]])
    # singular values of [[3,0],[4,5]] are √45 and √5: sum 4√5.
    assert sp.simplify(symbolic.nuclear_norm(A) - 4 * sp.sqrt(5)) == 0
    S = sp.Matrix([[5, 4], [4, 5]])
    root = symbolic.psd_sqrt(S)
    assert (root * root - S).applyfunc(sp.simplify) == sp.zeros(2, 2)
    # A repeated eigenvalue (1, twice) needs an orthonormal basis of its eigenspace.
    T = sp.Matrix([[2, 1, 1], [1, 2, 1], [1, 1, 2]])
    root = symbolic.psd_sqrt(T)
    assert (root * root - T).applyfunc(sp.simplify) == sp.zeros(3, 3)
    assert (root - root.T).applyfunc(sp.simplify) == sp.zeros(3, 3)


# ---- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, word", [(dict(n=0), "n"), (dict(d=-1), "d"), (dict(r=1.5), "r"),
                                          (dict(n=True), "n")])
def test_bad_sizes_raise_value_error_naming_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=rf"^{word} must be a positive integer"):
        symbolic.expected_loss(**kwargs)


def test_other_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="k must be a non-negative integer"):
        symbolic.standard_normal_moment(-1)
    with pytest.raises(ValueError, match="points must be a positive integer"):
        symbolic.residual_size(sp.Integer(1), points=0)
    with pytest.raises(ValueError, match="mp_cases must be a non-negative integer"):
        symbolic.w2_factor_vs_bures(mp_cases=-1)
    with pytest.raises(ValueError, match="d must be a positive integer"):
        symbolic.gaussian_mgf(d=0)
    with pytest.raises(ValueError, match="matrix must be a square sympy Matrix"):
        symbolic.psd_sqrt(sp.Matrix([[1, 2]]))


# ---- the registered claims ---------------------------------------------------------------

CLAIM_IDS = ("S1-expected-loss", "S2-gradients", "S3-gd-iterate", "S4-penalized-gvi",
             "S5-gaussian-mgf", "S6-w2-bures", "S7-exact-limit", "S8-kronecker-balance", "S9-mc-step-thresholds")


def test_symbolic_claims_are_registered():
    found = {c.id: c for c in select(["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"])}
    assert tuple(sorted(found)) == CLAIM_IDS
    assert all(c.kind == "symbolic" for c in found.values())


@pytest.mark.parametrize("claim_id", CLAIM_IDS)
def test_symbolic_claims_pass(claim_id):
    (c,) = select([claim_id])
    result = run_claim(c, Context(seed=0, quick=True))
    assert result.exception is None, result.exception
    assert result.passed
    assert all(m.tolerance is not None for m in result.outcome.measurements)


_PENALIZED = symbolic.penalized_formula  # captured before any monkeypatching

WRONG_FORMULAS = {
    "S1-expected-loss": ("expected_loss_formula", lambda X, y, mu, L: _norm2(y - X * mu)),
    "S2-gradients": ("gradient_formula", lambda X, y, mu, L: (-X.T * (y - X * mu), X.T * X * L)),
    "S3-gd-iterate": ("gd_contraction_factor", lambda eta, s: 1 - eta * s ** 2),
    "S4-penalized-gvi": ("penalized_formula",
                            lambda X, y, mu0, L0, lam: _PENALIZED(X, y, mu0, L0, 2 * lam)),
    "S5-gaussian-mgf": ("mgf_formula",
                        lambda x, y, mu, L: sp.exp(-y * (x.T * mu)[0, 0] + _norm2(L.T * x))),
    "S6-w2-bures": ("bures_cross_term",
                    lambda s1, s2: (symbolic.psd_sqrt(s1) * symbolic.psd_sqrt(s2)).trace()),
    "S7-exact-limit": ("ibvi_limit_formula",
                            lambda X, y, mu0, L0: (X.pinv() * y, L0)),
    "S8-kronecker-balance": ("balance_formula", lambda A, B: _norm2(A) - 2 * _norm2(B)),
    "S9-mc-step-thresholds": ("mc_mean_square_threshold_formula",
                              lambda s, r, m, beta: 1 / (s ** 2 * (1 + r / m) * (1 - beta))),
}


@pytest.mark.parametrize("claim_id", CLAIM_IDS)
def test_symbolic_claims_fail_with_a_wrong_formula(claim_id, monkeypatch):
    name, wrong = WRONG_FORMULAS[claim_id]
    monkeypatch.setattr(symbolic, name, wrong)
    (c,) = select([claim_id])
    result = run_claim(c, Context(seed=0, quick=True))
    assert result.exception is None, result.exception
    assert result.status == "FAIL"


def test_residual_size_is_nan_when_zero_is_not_proved(monkeypatch):
    # An identity that sympy "fails" to prove must not be reported as a proved 0.0: it comes
    # back as NaN, which never passes a tolerance.
    x = sp.Symbol("x", real=True)
    monkeypatch.setattr(symbolic, "is_exactly_zero", lambda value: False)
    size = symbolic.residual_size((x + 1) ** 2 - x ** 2 - 2 * x - 1)
    assert np.isnan(size)
