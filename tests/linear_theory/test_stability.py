"""Step thresholds of the factor under MC gradients (linear_theory.stability): the mean-square bound
with momentum against the second-moment map and against simulated paths, Ghosh et al.'s
expected-descent threshold against sampling, and the bisection measurement."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import linear_theory as lt
from linear_theory import (ThresholdResult, critical_sharpness, descent_step_threshold, factor_signal_to_noise,
                           mc_factor_threshold, predicted_mc_threshold)

momenta = st.sampled_from([0.0, 0.3, 0.5, 0.9, 0.99])


@given(st.floats(0.1, 10.0), st.integers(1, 200), st.integers(1, 64))
def test_plain_bound_is_unchanged(s_max, rank, mc_samples):
    # the formula callers relied on before momentum was added, bit for bit
    assert predicted_mc_threshold(s_max, rank, mc_samples) == 1.0 / (s_max ** 2 * (1.0 + (rank + 1.0) / mc_samples))
    assert predicted_mc_threshold(s_max, rank, mc_samples, 0.0) == predicted_mc_threshold(s_max, rank, mc_samples)


def second_moment_map(c, beta, kappa):
    """(E‖ℓ_t‖², E⟨ℓ_t, ℓ_{t−1}⟩, E‖ℓ_{t−1}‖²) → next, for ℓ' = ℓ((1+β)I − cẐ) − βℓ_{t−1}, E[Ẑ²] = κI."""
    a = (1 + beta) ** 2 - 2 * (1 + beta) * c + c ** 2 * kappa
    return np.array([[a, -2 * beta * (1 + beta - c), beta ** 2], [1 + beta - c, -beta, 0.0], [1.0, 0.0, 0.0]])


@given(momenta, st.integers(1, 100), st.integers(1, 16))
@settings(max_examples=40)
def test_heavy_ball_bound_is_where_the_second_moment_map_loses_stability(beta, rank, mc_samples):
    kappa = 1.0 + (rank + 1.0) / mc_samples
    c_star = 2.0 * predicted_mc_threshold(1.0, rank, mc_samples, beta)  # c = 2ηs² with s = 1
    radius = [np.max(np.abs(np.linalg.eigvals(second_moment_map(f * c_star, beta, kappa)))) for f in (0.98, 1.0, 1.02)]
    assert radius[0] < 1.0 < radius[2]
    assert radius[1] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("rank, mc_samples, beta", [(1, 1, 0.0), (6, 2, 0.5), (3, 5, 0.9)])
def test_second_moment_map_matches_sampled_steps(rank, mc_samples, beta):
    """One step of the real MC heavy-ball recursion from fixed (ℓ_t, ℓ_{t−1}), averaged over draws of Ẑ,
    against the map's first two rows (E‖ℓ_{t+1}‖², E⟨ℓ_{t+1}, ℓ_t⟩); 5 standard errors."""
    rng = np.random.default_rng(rank)
    now, before = rng.standard_normal(rank), rng.standard_normal(rank)
    c = 0.3
    z = rng.standard_normal((200_000, mc_samples, rank))
    step = np.einsum("r,pmr,pms->ps", now, z, z) / mc_samples  # ℓ_t Ẑ for every draw
    nxt = (1 + beta) * now - c * step - beta * before
    kappa = 1.0 + (rank + 1.0) / mc_samples
    predicted = second_moment_map(c, beta, kappa) @ np.array([now @ now, now @ before, before @ before])
    for sample, expected in ((np.sum(nxt ** 2, axis=1), predicted[0]), (nxt @ now, predicted[1])):
        assert abs(sample.mean() - expected) < 5 * sample.std() / np.sqrt(sample.size)
    # the deterministic heavy-ball bound (1 + β)/s² lies far above the MC one
    assert predicted_mc_threshold(1.0, rank, mc_samples, beta) < (1 + beta) / (1 + (rank + 1) / (2 * mc_samples))


@given(st.floats(0.05, 20.0), st.floats(0.01, 1e4))
def test_critical_sharpness_inverts_the_descent_step(sharpness, z):
    lr = descent_step_threshold(sharpness, z)
    assert critical_sharpness(lr, z) == pytest.approx(sharpness, rel=1e-9)
    assert critical_sharpness(lr, z) < 2.0 / lr
    # without noise (z → ∞) the threshold is 2/ρ; the relative gap is about (2/ρ)²/z
    assert critical_sharpness(lr, 1e8 * (2.0 / lr) ** 2) == pytest.approx(2.0 / lr, rel=1e-7)


def test_descent_step_matches_sampled_one_step_change():
    """½a x² with gradient a(x + ε̄), ε̄ ~ N(0, h/N): expected loss decreases below the step, grows above."""
    rng = np.random.default_rng(1)
    a, x, h, n_s = 1.5, 0.4, 0.3, 4
    z = n_s * (a * x) ** 2 / h
    rho_star = descent_step_threshold(a, z)
    for f, grows in ((0.9, False), (1.1, True)):
        grad = a * (x + np.sqrt(h / n_s) * rng.standard_normal(400_000))
        change = 0.5 * a * (x - f * rho_star * grad) ** 2 - 0.5 * a * x ** 2
        se = change.std() / np.sqrt(change.size)
        assert abs(change.mean()) > 5 * se
        assert (change.mean() > 0) == grows


@given(st.floats(0.1, 5.0), st.integers(1, 100), st.integers(1, 32))
def test_ghosh_with_the_factors_noise_is_the_mean_square_bound(s_max, rank, mc_samples):
    z = factor_signal_to_noise(s_max, rank, mc_samples)
    assert descent_step_threshold(2 * s_max ** 2, z) == pytest.approx(predicted_mc_threshold(s_max, rank, mc_samples),
                                                                       rel=1e-12)


@pytest.fixture(scope="module")
def X():
    return lt.random_regression(4, 40, spectrum=np.ones(4), seed=0).X


def test_measured_threshold_with_momentum_lies_at_the_mean_square_bound(X):
    result = mc_factor_threshold(X, 12, steps=300, seeds=(0, 1), momentum=0.9)
    assert isinstance(result, ThresholdResult)
    assert (result.momentum, result.prior_scale) == (0.9, 1.0)
    assert result.predicted == predicted_mc_threshold(1.0, 12, 1, 0.9)
    assert result.exact_bound == pytest.approx(1.9, rel=1e-12)
    # Jensen: at or above the bound (3 % bisection, plus seed spread); tight at this rank
    assert 0.9 < result.ratio < 1.2
    assert result.threshold < 0.02 * result.exact_bound


def test_prior_scale_does_not_move_the_measured_threshold(X):
    base = mc_factor_threshold(X, 6, steps=200, seeds=(0,))
    for scale in (1e-3, 1e3):
        assert mc_factor_threshold(X, 6, steps=200, seeds=(0,), prior_scale=scale).per_seed == base.per_seed


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(momentum=1.0), ValueError, "momentum must be in"),
    (dict(momentum=-0.1), ValueError, "momentum must be a finite non-negative"),
    (dict(prior_scale=0.0), ValueError, "prior_scale must be a finite positive"),
    (dict(prior_scale="big"), TypeError, "prior_scale must be a real number"),
])
def test_bad_threshold_arguments_name_the_argument(X, kwargs, error, word):
    with pytest.raises(error, match=word):
        mc_factor_threshold(X, 2, steps=10, seeds=(0,), **kwargs)


def test_bad_bound_arguments_name_the_argument():
    with pytest.raises(ValueError, match="momentum must be in"):
        predicted_mc_threshold(1.0, 4, 1, momentum=1.5)
    with pytest.raises(ValueError, match="sharpness must be a finite positive"):
        descent_step_threshold(0.0, 1.0)
    with pytest.raises(ValueError, match="signal_to_noise must be a finite positive"):
        critical_sharpness(0.1, -1.0)
    with pytest.raises(TypeError, match="rank must be an integer"):
        factor_signal_to_noise(1.0, 2.5)
    assert math.isfinite(critical_sharpness(1e-6, 1e-6))


# -- the ends of the float64 range --------------------------------------------------------------

#: The log route at the ends of the range is accurate to about |ln value|·eps ≤ 2e-13 relative, so
#: the defining equations hold to 1e-12 in logarithms.
LOG_TOLERANCE = 1e-12


@pytest.mark.parametrize("sharpness, z", [(1e-10, 1e-320), (1e-100, 1e-300), (1e150, 1e300), (1e-150, 1e-300),
                                          (1e-10, 5e-324)])
def test_descent_step_at_the_float_extremes_solves_its_equation(sharpness, z):
    """ρ·a·(1 + a²/z) = 2, checked in logarithms: the direct formula overflows in a²/z there."""
    rho = descent_step_threshold(sharpness, z)
    assert rho > 0
    log_ratio = 2.0 * math.log(sharpness) - math.log(z)
    residual = math.log(rho) + math.log(sharpness) + float(np.logaddexp(0.0, log_ratio)) - math.log(2.0)
    assert abs(residual) < LOG_TOLERANCE


@pytest.mark.parametrize("lr, z", [(1.0, 5e-324), (1e200, 1.7e308), (1e-300, 1e-300), (1e-150, 1e300),
                                   (1e150, 1e-300), (0.1, 10.0), (5e-324, 1.0)])
def test_critical_sharpness_at_the_float_extremes_solves_its_equation(lr, z):
    """ρH(1 + H²/z) = 2 in logarithms, where (3/ρ)√(3/z) or √(z/3)·sinh(·) leave the float range."""
    H = critical_sharpness(lr, z)
    assert 0 < H < 2.0 / lr or H == pytest.approx(2.0 / lr, rel=1e-15)
    residual = (math.log(lr) + math.log(H) + float(np.logaddexp(0.0, 2.0 * math.log(H) - math.log(z)))
                - math.log(2.0))
    assert abs(residual) < LOG_TOLERANCE


def test_thresholds_beyond_the_float_range_name_their_argument():
    """(H_crit is below both 2/ρ and (2z/ρ)^⅓, so it never leaves the range.)"""
    with pytest.raises(ValueError, match=r"\bs_max\b"):
        predicted_mc_threshold(1e-170, 2 ** 62, 1)  # 1/(s²κ) ≈ 2e321
    with pytest.raises(ValueError, match=r"\bsharpness\b"):
        descent_step_threshold(5e-324, 1.0)
    # representable although s² is not: 1/(s²κ) with s = 1e-160, κ ≈ 4.6e18
    kappa = 1.0 + (2 ** 62 + 1.0)
    value = predicted_mc_threshold(1e-160, 2 ** 62, 1)
    assert math.log(value) == pytest.approx(-2.0 * math.log(1e-160) - math.log(kappa), rel=LOG_TOLERANCE)
    z = factor_signal_to_noise(1e78, 2 ** 62, 1)  # (2s²)² overflows, z ≈ 8.7e293 does not
    assert math.log(z) == pytest.approx(math.log(4.0) + 4.0 * math.log(1e78) - math.log(2 ** 62 + 1.0),
                                        rel=LOG_TOLERANCE)


@pytest.mark.parametrize("k", [-300, 300])
def test_measured_threshold_scales_exactly_as_one_over_s_max_squared(X, k):
    """X → 2ᵏX multiplies every step of the simulation by powers of two: the bisection takes the same
    decisions and each threshold is 4⁻ᵏ times the one at k = 0 (to the rounding of the geometric
    mean, which leaves the float range at these scales and is taken from the two roots)."""
    base = mc_factor_threshold(X, 6, steps=100, seeds=(0,))
    scaled = mc_factor_threshold(math.ldexp(1.0, k) * X, 6, steps=100, seeds=(0,))
    assert math.ldexp(scaled.per_seed[0], 2 * k) == pytest.approx(base.per_seed[0], rel=1e-14)


@pytest.mark.parametrize("seeds, error, word", [
    ((), ValueError, "seeds must hold at least one seed"),
    (None, TypeError, "seeds must be a sequence"),
    (3, TypeError, "seeds must be a sequence"),
    ("ab", TypeError, "seeds must be a sequence"),
    ((0, -1), ValueError, r"seeds\[1\] must be a non-negative integer"),
    ((0.5,), TypeError, r"seeds\[0\] must be an integer"),
])
def test_bad_seeds_name_the_argument(X, seeds, error, word):
    with pytest.raises(error, match=word):
        mc_factor_threshold(X, 2, steps=10, seeds=seeds)
