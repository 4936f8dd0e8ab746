"""Gaussians with factors and the factor-form 2-Wasserstein distance (docs/theory.md §1, §5).

Every tolerance below is a multiple of float64 rounding (``eps ≈ 2.2e-16``) scaled by the size
of the quantities involved, unless it says otherwise (standard errors for sampling).
"""
import warnings

import mpmath
import numpy as np
import ot
import pytest
from hypothesis import given, settings, strategies as st

from linear_theory import Gaussian, MeanFieldGaussian, ibvi_limit, w2, w2_squared

EPS = np.finfo(np.float64).eps


def haar(rng, k):
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


def random_gaussian(rng, d, r, scale=1.0):
    return Gaussian(scale * rng.standard_normal(d), scale * rng.standard_normal((d, r)))


def size_of(*gs):
    """The natural scale of W₂² for these inputs: rounding errors are relative to it."""
    return sum(float(np.sum(g.mean ** 2) + np.sum(g.factor ** 2)) for g in gs)


def exact_w2_squared(p, q, dps=50):
    """Independent exact route: the nuclear-norm formula in 50-digit arithmetic (mpmath).

    The float64 inputs convert to mpf exactly, so this is the true W₂² of the given Gaussians to
    about 1e-45; ``w2_squared`` uses the Procrustes difference ``L_p − L_qU`` in float64 instead.
    """
    with mpmath.workdps(dps):
        A = mpmath.matrix(p.factor.T.tolist()) * mpmath.matrix(q.factor.tolist())
        nuclear = sum(mpmath.svd_r(A, compute_uv=False))
        frob = sum(mpmath.mpf(float(x)) ** 2 for x in np.concatenate([p.factor.ravel(), q.factor.ravel()]))
        mean = sum((mpmath.mpf(float(a)) - mpmath.mpf(float(b))) ** 2 for a, b in zip(p.mean, q.mean))
        return float(mean + frob - 2 * nuclear)


def pot_w2_squared(p_mean, q_mean, p_cov, q_cov):
    """POT's Bures-Wasserstein distance squared, with its LinAlgError on NaN input read as NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # POT's sqrt of negative eigenvalues
        try:
            return float(ot.gaussian.bures_wasserstein_distance(p_mean, q_mean, p_cov, q_cov)) ** 2
        except np.linalg.LinAlgError:
            return float("nan")


dims = st.integers(1, 7)
widths = st.integers(1, 9)
seeds = st.integers(0, 2**32 - 1)


# -- the Gaussian type -------------------------------------------------------------------------

def test_arrays_are_read_only_copies():
    mean, factor = np.zeros(3), np.eye(3)
    g = Gaussian(mean, factor)
    mean[0] = 5.0
    assert g.mean[0] == 0.0
    with pytest.raises(ValueError):
        g.factor[0, 0] = 2.0
    assert g.dim == 3 and g.width == 3


def test_isotropic_and_replace():
    g = Gaussian.isotropic(1.5, 2.0, 4)
    np.testing.assert_array_equal(g.mean, np.full(4, 1.5))
    np.testing.assert_array_equal(g.cov(), 4.0 * np.eye(4))
    h = g.replace(mean=np.zeros(4))
    np.testing.assert_array_equal(h.factor, g.factor)
    np.testing.assert_array_equal(h.mean, np.zeros(4))
    mf = MeanFieldGaussian.isotropic(0.0, 3.0, 5)
    np.testing.assert_array_equal(mf.scale, np.full(5, 3.0))


@pytest.mark.parametrize("r", [1, 3, 8])
def test_sample_moments_within_standard_errors(r):
    rng = np.random.default_rng(11)
    d, m = 4, 40_000
    g = random_gaussian(rng, d, r)
    draws = g.sample(m, rng)
    assert draws.shape == (m, d)
    cov = g.cov()
    se_mean = np.sqrt(np.diag(cov) / m)
    # 5 standard errors: a false alarm has probability below 1e-5 per coordinate
    assert np.all(np.abs(draws.mean(axis=0) - g.mean) < 5 * se_mean + 1e-15)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / m)  # Var of x_i x_j products
    assert np.all(np.abs(np.cov(draws.T) - cov) < 5 * se_cov + 1e-15)
    np.testing.assert_array_equal(g.sample(5, 3), g.sample(5, np.random.default_rng(3)))


def test_meanfield_sample_and_predictive():
    rng = np.random.default_rng(2)
    mf = MeanFieldGaussian(rng.standard_normal(5), rng.standard_normal(5))
    X_test = rng.standard_normal((7, 5))
    dense = mf.as_gaussian().predictive(X_test)
    pred = mf.predictive(X_test)
    np.testing.assert_allclose(pred.mean, dense.mean, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(pred.variance, dense.variance, rtol=1e-13)
    draws = mf.sample(30_000, 4)
    se = np.abs(mf.scale) / np.sqrt(30_000)
    assert np.all(np.abs(draws.mean(axis=0) - mf.mean) < 5 * se)


@given(d=dims, r=widths, m=st.integers(1, 6), seed=seeds)
def test_predictive_matches_dense_covariance(d, r, m, seed):
    rng = np.random.default_rng(seed)
    g = random_gaussian(rng, d, r)
    X_test = rng.standard_normal((m, d))
    pred = g.predictive(X_test)
    assert pred.mean.shape == pred.variance.shape == (m,)
    dense_var = np.einsum("ij,jk,ik->i", X_test, g.cov(), X_test)
    scale = np.sum(X_test ** 2, axis=1) * np.sum(g.factor ** 2)
    assert np.all(np.abs(pred.variance - dense_var) <= 10 * (d + r) * EPS * scale)
    np.testing.assert_allclose(pred.std, np.sqrt(pred.variance))
    single = g.predictive(X_test[0])
    assert single.mean.shape == (1,)


# -- from_cov ------------------------------------------------------------------------------------

@given(d=dims, rank=st.integers(0, 7), seed=seeds)
def test_from_cov_roundtrip(d, rank, seed):
    rank = min(rank, d)
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((d, rank))
    cov = B @ B.T
    mean = rng.standard_normal(d)
    g = Gaussian.from_cov(mean, cov)
    np.testing.assert_array_equal(g.mean, mean)
    # eigh is backward stable: ‖QΛQᵀ − Σ‖ ≲ d·eps·‖Σ‖, and clipping moves at most tol = d·eps·‖Σ‖
    top = max(np.linalg.norm(cov, 2), 1e-300)
    assert np.max(np.abs(g.cov() - cov)) <= 20 * d * EPS * top
    if rank == 0:
        assert g.width == 1 and not np.any(g.factor)
    else:
        assert g.width >= rank  # rounding may keep a few tiny positive eigenvalues


def test_from_cov_clips_within_tolerance_and_rejects_beyond():
    rng = np.random.default_rng(5)
    d = 5
    Q = haar(rng, d)
    evals = np.array([3.0, 1.0, 0.5, 0.0, 0.0])
    tol = d * EPS * 3.0  # the documented default: d·eps·max|λ|
    inside = (Q * (evals + np.array([0, 0, 0, -0.4 * tol, 0]))) @ Q.T
    g = Gaussian.from_cov(np.zeros(d), 0.5 * (inside + inside.T))
    assert g.width == 3 or g.width == 4  # the clipped eigenvalue is dropped; a rounding one may stay
    np.testing.assert_allclose(np.linalg.eigvalsh(g.cov())[-3:], [0.5, 1.0, 3.0], rtol=1e-13)
    beyond = (Q * (evals + np.array([0, 0, 0, -1e-6, 0]))) @ Q.T
    with pytest.raises(ValueError, match=r"cov is not positive semi-definite: smallest eigenvalue -1\.0"):
        Gaussian.from_cov(np.zeros(d), 0.5 * (beyond + beyond.T))
    # a user-given tol widens the band
    g2 = Gaussian.from_cov(np.zeros(d), 0.5 * (beyond + beyond.T), tol=1e-5)
    assert np.all(np.linalg.eigvalsh(g2.cov()) > -1e-14)


# -- W2 properties ------------------------------------------------------------------------------

@given(d=dims, r1=widths, r2=widths, seed=seeds, scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_w2_symmetric_nonnegative(d, r1, r2, seed, scale):
    rng = np.random.default_rng(seed)
    p, q = random_gaussian(rng, d, r1, scale), random_gaussian(rng, d, r2, scale)
    a, b = w2_squared(p, q), w2_squared(q, p)
    assert a >= 0.0 and b >= 0.0
    # two different SVDs (of L_qᵀL_p and L_pᵀL_q): each backward stable to O(r·eps) of the sizes
    assert abs(a - b) <= 50 * max(r1, r2) * EPS * size_of(p, q)
    assert w2(p, q) == pytest.approx(np.sqrt(a), rel=1e-15)


@given(d=dims, r=widths, seed=seeds)
def test_w2_exactly_zero_for_equal_inputs(d, r, seed):
    rng = np.random.default_rng(seed)
    p = random_gaussian(rng, d, r)
    copy = Gaussian(p.mean.copy(), p.factor.copy())
    assert w2_squared(p, p) == 0.0
    assert w2_squared(p, copy) == 0.0
    mf = MeanFieldGaussian(p.mean, rng.standard_normal(d))
    assert w2_squared(mf, MeanFieldGaussian(mf.mean.copy(), mf.scale.copy())) == 0.0


@given(d=dims, r=widths, pad=st.integers(0, 4), seed=seeds)
def test_w2_invariant_under_orthogonal_mixing_and_zero_padding(d, r, pad, seed):
    rng = np.random.default_rng(seed)
    p, q = random_gaussian(rng, d, r), random_gaussian(rng, d, r + 2)
    base = w2_squared(p, q)
    tol = 100 * (r + pad + 2) * EPS * size_of(p, q)  # rounding of L·U and of the r×r SVD
    U = haar(rng, r)
    rotated = Gaussian(p.mean, p.factor @ U)
    padded = Gaussian(p.mean, np.hstack([p.factor, np.zeros((d, pad))]))
    assert abs(w2_squared(rotated, q) - base) <= tol
    assert abs(w2_squared(padded, q) - base) <= tol
    # the same law written with a rotated, padded factor is at distance zero (to rounding)
    assert w2_squared(p, Gaussian(p.mean, np.hstack([p.factor @ U, np.zeros((d, pad))]))) <= tol


@given(m1=st.floats(-5, 5), m2=st.floats(-5, 5), r1=widths, r2=widths, seed=seeds)
def test_w2_one_dimensional_closed_form(m1, m2, r1, r2, seed):
    rng = np.random.default_rng(seed)
    L1, L2 = rng.standard_normal((1, r1)), rng.standard_normal((1, r2))
    s1, s2 = np.linalg.norm(L1), np.linalg.norm(L2)
    expected = (m1 - m2) ** 2 + (s1 - s2) ** 2
    got = w2_squared(Gaussian([m1], L1), Gaussian([m2], L2))
    assert got == pytest.approx(expected, rel=1e-12, abs=50 * EPS * (m1 ** 2 + m2 ** 2 + s1 ** 2 + s2 ** 2))


@given(d=dims, r=st.tuples(widths, widths, widths), seed=seeds)
def test_w2_triangle_inequality(d, r, seed):
    rng = np.random.default_rng(seed)
    a, b, c = (random_gaussian(rng, d, k) for k in r)
    slack = 1e-12 * np.sqrt(size_of(a, b, c))  # rounding in each W₂ (relative 1e-13 at these sizes)
    assert w2(a, c) <= w2(a, b) + w2(b, c) + slack


@given(d=dims, r1=widths, r2=widths, seed=seeds, c=st.sampled_from([-3.0, 1e-4, 7.0]))
def test_w2_scales_and_is_translation_invariant(d, r1, r2, seed, c):
    rng = np.random.default_rng(seed)
    p, q = random_gaussian(rng, d, r1), random_gaussian(rng, d, r2)
    base = w2_squared(p, q)
    tol = 100 * max(r1, r2) * EPS * size_of(p, q)
    scaled = w2_squared(Gaussian(c * p.mean, c * p.factor), Gaussian(c * q.mean, c * q.factor))
    assert abs(scaled - c * c * base) <= c * c * tol
    shift = rng.standard_normal(d)
    moved = w2_squared(Gaussian(p.mean + shift, p.factor), Gaussian(q.mean + shift, q.factor))
    assert abs(moved - base) <= tol + 10 * EPS * np.sum(shift ** 2)


@settings(max_examples=15)
@given(d=st.integers(1, 8), seed=seeds)
def test_w2_agrees_with_pot_on_well_conditioned_full_rank(d, seed):
    rng = np.random.default_rng(seed)
    # I + E with ‖E‖ ≤ 0.3 keeps κ(Σ) below (1.3/0.7)² ≈ 3.5, where sqrtm is accurate
    def factor():
        E = rng.standard_normal((d, d))
        return np.eye(d) + 0.3 * E / np.linalg.norm(E, 2)

    p, q = Gaussian(rng.standard_normal(d), factor()), Gaussian(rng.standard_normal(d), factor())
    ours = w2(p, q)
    theirs = np.sqrt(pot_w2_squared(p.mean, q.mean, p.cov(), q.cov()))
    assert ours == pytest.approx(theirs, rel=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_w2_exact_on_commuting_singular_covariances_where_pot_fails(seed):
    rng = np.random.default_rng(seed)
    d = 6
    Q = haar(rng, d)
    lam1 = np.array([4.0, 1.0, 0.25, 0.0, 0.0, 0.0])
    lam2 = np.array([0.0, 2.0, 1.0, 0.5, 0.0, 0.0])
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    # Commuting covariances: W₂² = ‖μ₁ − μ₂‖² + Σ_i (√λ1_i − √λ2_i)², known exactly
    exact = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(lam1) - np.sqrt(lam2)) ** 2)
    p, q = Gaussian(m1, Q * np.sqrt(lam1)), Gaussian(m2, Q * np.sqrt(lam2))
    assert w2_squared(p, q) == pytest.approx(exact, rel=1e-14)
    # factors of their own ranks (3 and 3 columns, not d): the same value
    narrow_p, narrow_q = Gaussian(m1, Q[:, :3] * np.sqrt(lam1[:3])), Gaussian(m2, Q[:, 1:4] * np.sqrt(lam2[1:4]))
    assert w2_squared(narrow_p, narrow_q) == pytest.approx(exact, rel=1e-14)
    pot = pot_w2_squared(m1, m2, p.cov(), q.cov())
    assert not (abs(pot - exact) <= 1e-6 * exact), f"POT unexpectedly accurate: {pot} vs {exact}"


@pytest.mark.parametrize("seed", range(4))
def test_w2_exact_on_the_singular_ibvi_limit_against_mpmath(seed):
    rng = np.random.default_rng(seed)
    d, n = 5, 2
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    prior = random_gaussian(rng, d, d)
    limit = ibvi_limit(X, y, prior)  # covariance of rank d − n = 3: singular
    other = ibvi_limit(rng.standard_normal((n, d)), y, prior)  # singular too, different null space
    for p, q in ((limit, prior), (limit, other)):
        exact = exact_w2_squared(p, q)
        assert w2_squared(p, q) == pytest.approx(exact, rel=1e-13)  # rounding of a 5×5 SVD
        pot = pot_w2_squared(p.mean, q.mean, p.cov(), q.cov())
        assert not (abs(pot - exact) <= 1e-10 * exact), f"POT unexpectedly exact: {pot} vs {exact}"


@given(d=dims, seed=seeds)
def test_meanfield_w2_equals_gaussian_w2_of_diagonal_factor(d, seed):
    rng = np.random.default_rng(seed)
    a = MeanFieldGaussian(rng.standard_normal(d), rng.standard_normal(d))  # signed scales: |s| is the std
    b = MeanFieldGaussian(rng.standard_normal(d), rng.standard_normal(d))
    dense = w2_squared(a.as_gaussian(), b.as_gaussian())
    tol = 100 * d * EPS * (size_of(a.as_gaussian(), b.as_gaussian()))
    assert abs(w2_squared(a, b) - dense) <= tol
    g = random_gaussian(rng, d, 3)
    assert abs(w2_squared(a, g) - w2_squared(a.as_gaussian(), g)) == 0.0
    assert abs(w2_squared(g, b) - w2_squared(g, b.as_gaussian())) == 0.0
    np.testing.assert_array_equal(a.as_gaussian().factor, np.diag(np.abs(a.scale)))


# -- W₂ in the D⁻¹ metric, and at the ends of the float64 range --------------------------------------

@given(d=dims, r1=widths, r2=widths, seed=seeds, spread=st.sampled_from([0.0, 1.0, 3.0]),
       scale=st.sampled_from([1e-6, 1.0, 1e6]))
def test_w2_in_a_diagonal_metric_is_the_exact_distance_of_the_rescaled_laws(d, r1, r2, seed, spread, scale):
    rng = np.random.default_rng(seed)
    p, q = random_gaussian(rng, d, r1), random_gaussian(rng, d, r2)
    D = scale * 10.0 ** rng.uniform(-spread / 2, spread / 2, d)
    value = w2_squared(p, q, metric=D)
    # the inner product ⟨u, D⁻¹u⟩: the 50-digit nuclear-norm route on D^{-½}-scaled Gaussians
    w = 1.0 / np.sqrt(D)
    scaled = [Gaussian(g.mean * w, g.factor * w[:, None]) for g in (p, q)]
    assert value == pytest.approx(exact_w2_squared(*scaled), rel=1e-9, abs=1e3 * EPS * size_of(*scaled))
    assert w2(p, q, metric=D) == pytest.approx(np.sqrt(value), rel=1e-15)
    # a constant metric c·1 divides the Euclidean W₂² by c
    assert w2_squared(p, q, metric=np.full(d, scale)) == pytest.approx(w2_squared(p, q) / scale, rel=1e-12,
                                                                       abs=1e3 * EPS * size_of(p, q) / scale)


@given(d=dims, r1=widths, r2=widths, seed=seeds, c=st.sampled_from([2.0 ** -1000, 1e-250, 1e-160, 1e160, 1e250]))
def test_w2_stays_finite_and_scales_at_extreme_magnitudes(d, r1, r2, seed, c):
    rng = np.random.default_rng(seed)
    p, q = random_gaussian(rng, d, r1), random_gaussian(rng, d, r2)
    small = w2(p, q)
    # W₂ is homogeneous: the power-of-two rescaling keeps it exact where the squares would
    # overflow or underflow (c·p is a rounding of c times p, so the relative error is O(eps))
    big = w2(Gaussian(c * p.mean, c * p.factor), Gaussian(c * q.mean, c * q.factor))
    assert np.isfinite(big)
    assert big == pytest.approx(c * small, rel=1e3 * EPS * max(1.0, size_of(p, q) / max(small, 1e-300) ** 2))
    if c > 1e155:
        with pytest.raises(ValueError, match=r"overflows float64; use w2\(p, q\)"):
            w2_squared(Gaussian(c * p.mean, c * p.factor), Gaussian(c * q.mean, c * q.factor))


def test_w2_metric_must_be_positive_with_one_entry_per_coordinate():
    p = Gaussian.isotropic(0.0, 1.0, 3)
    with pytest.raises(ValueError, match="metric must have length 3"):
        w2_squared(p, p, metric=np.ones(4))
    with pytest.raises(ValueError, match="metric must hold positive"):
        w2(p, p, metric=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="metric contains 1 NaN"):
        w2(p, p, metric=np.array([1.0, np.nan, 1.0]))


@given(d=dims, rank=st.integers(1, 7), seed=seeds, c=st.sampled_from([1e-300, 5e-200, 1e200, 1e300]))
def test_from_cov_is_exact_at_extreme_scales(d, rank, seed, c):
    rank = min(rank, d)
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((d, rank))
    cov = (B @ B.T) * c  # a rounding of c·Σ: relative error eps per entry
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow warning on the way
        g = Gaussian.from_cov(np.zeros(d), cov)
    # the power-of-two scaling makes the factor homogeneous: √c times the unscaled one's, so the
    # covariance it represents is c·Σ to the backward error of eigh (tested at c = 1 above)
    top = np.linalg.norm(B, 2) ** 2
    scaled = g.factor / np.sqrt(c)
    assert np.max(np.abs(scaled @ scaled.T - B @ B.T)) <= 20 * d * EPS * top
    assert g.width >= rank  # as at c = 1, rounding may keep a few tiny positive eigenvalues


def test_from_cov_of_a_finite_1e308_diagonal():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = Gaussian.from_cov(np.zeros(3), np.diag([1e308, 1.7e308, 2.0]))
    np.testing.assert_allclose(np.sort(np.linalg.norm(g.factor, axis=0)), np.sqrt([2.0, 1e308, 1.7e308]),
                               rtol=4 * EPS)
    with pytest.raises(ValueError, match="cov is not positive semi-definite"):
        Gaussian.from_cov(np.zeros(2), np.diag([1e308, -1e308]))


def test_products_that_overflow_raise_a_clear_error():
    g = Gaussian(np.full(3, 1e200), np.eye(3) * 1e200)
    with pytest.raises(ValueError, match=r"mean and factor hold values too large .* in Gaussian\.cov"):
        g.cov()
    with pytest.raises(ValueError, match=r"X_test and the Gaussian hold values too large"):
        g.predictive(np.full((2, 3), 1e200))
    # below overflow the same products are ordinary floats: (1e150)² rounded once
    small = Gaussian(np.zeros(3), np.eye(3) * 1e150)
    np.testing.assert_allclose(small.predictive(np.eye(3)).variance, np.full(3, 1e300), rtol=2 * EPS)
