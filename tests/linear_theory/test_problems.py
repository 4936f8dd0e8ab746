"""Problem generators: the spectrum asked for, rank deficiency, seeds, separability with margin."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from linear_theory import (ClassificationProblem, FeatureRegression1D, RegressionProblem, feature_regression_1d,
                           random_regression, separable_classification)

EPS = np.finfo(np.float64).eps
seeds = st.integers(0, 2**32 - 1)


@given(n=st.integers(1, 15), d=st.integers(1, 40), data=st.data(), seed=seeds,
       kappa=st.sampled_from([1.0, 10.0, 1e4]), scale=st.sampled_from([1e-2, 1.0, 50.0]))
def test_random_regression_spectrum_and_rank(n, d, data, seed, kappa, scale):
    rank = data.draw(st.integers(1, min(n, d)))
    problem = random_regression(n, d, rank=rank, condition_number=kappa, scale=scale, seed=seed)
    assert isinstance(problem, RegressionProblem)
    assert problem.X.shape == (n, d) and problem.y.shape == (n,) and problem.w_true.shape == (d,)
    assert (problem.n, problem.d) == (n, d)
    s = np.linalg.svd(problem.X, compute_uv=False)
    # the first `rank` singular values are the requested geometric ladder (SVD backward error
    # max(n, d)·eps·s_max); the rest are zero to that level
    expected = scale * np.geomspace(1.0, 1.0 / kappa, rank)
    np.testing.assert_allclose(problem.singular_values, expected, rtol=1e-14)
    np.testing.assert_allclose(s[:rank], expected, rtol=0, atol=20 * max(n, d) * EPS * scale)
    assert np.all(s[rank:] <= 20 * max(n, d) * EPS * scale)
    if rank >= 2:  # a single singular value has condition number 1 whatever was asked
        # s_min is known to max(n, d)·eps·s_max absolutely, i.e. to κ·max(n, d)·eps relatively
        assert s[0] / s[rank - 1] == pytest.approx(kappa, rel=100 * kappa * max(n, d) * EPS)
    np.testing.assert_allclose(problem.y, problem.X @ problem.w_true, atol=1e-14 * scale * (1 + n))


def test_random_regression_explicit_spectrum_any_order():
    problem = random_regression(3, 8, spectrum=[0.5, 3.0, 1.0], seed=1)
    np.testing.assert_array_equal(problem.singular_values, [3.0, 1.0, 0.5])
    np.testing.assert_allclose(np.linalg.svd(problem.X, compute_uv=False), [3.0, 1.0, 0.5], rtol=1e-14)


def test_random_regression_seeds_and_noise():
    a, b, c = (random_regression(200, 300, noise=0.3, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.allclose(a.X, c.X)
    g = random_regression(200, 300, noise=0.3, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(g.X, a.X)
    residual = a.y - a.X @ a.w_true
    # sample std of 200 N(0, 0.3²) draws: standard error 0.3/√400 = 0.015; allow 5 of them
    assert abs(residual.std(ddof=1) - 0.3) <= 5 * 0.015
    assert abs(residual.mean()) <= 5 * 0.3 / np.sqrt(200)


def test_feature_regression_1d():
    problem = feature_regression_1d(12, 40, lengthscale=0.35, seed=2)
    assert isinstance(problem, FeatureRegression1D)
    assert problem.X.shape == (12, 40) and problem.y.shape == (12,) and problem.inputs.shape == (12,)
    np.testing.assert_array_equal(problem.features(problem.inputs), problem.X)
    np.testing.assert_allclose(problem.y, np.sin(2 * problem.inputs), atol=0)  # noise = 0
    assert np.all(np.diff(problem.inputs) >= 0)
    in_clusters = ((problem.inputs >= -2.0) & (problem.inputs <= -0.5)) | ((problem.inputs >= 0.8) & (problem.inputs <= 1.8))
    assert np.all(in_clusters)
    assert np.sum(problem.inputs < 0) == 6
    # n < d distinct inputs through smooth bumps: full row rank (overparametrized)
    assert np.linalg.matrix_rank(problem.X) == 12
    np.testing.assert_allclose(problem.features([problem.centers[3]])[0, 3], 1.0)
    noisy = feature_regression_1d(12, 40, noise=0.1, seed=2)
    assert not np.allclose(noisy.y, np.sin(2 * noisy.inputs))
    np.testing.assert_array_equal(feature_regression_1d(12, 40, seed=2).inputs, problem.inputs)


@given(n=st.integers(2, 60), d=st.integers(1, 30), margin=st.sampled_from([0.0, 0.1, 0.5, 0.9]), seed=seeds)
def test_separable_classification(n, d, margin, seed):
    problem = separable_classification(n, d, margin=margin, seed=seed)
    assert isinstance(problem, ClassificationProblem)
    assert problem.X.shape == (n, d) and problem.y.shape == (n,)
    assert np.linalg.norm(problem.w_sep) == pytest.approx(1.0, rel=1e-15)
    scores = problem.X @ problem.w_sep
    assert set(np.unique(problem.y)) == {-1.0, 1.0}  # both classes present
    np.testing.assert_array_equal(problem.y, np.sign(scores))  # separated by w_sep
    assert np.all(problem.y * scores >= margin - 1e-15 * np.abs(scores))  # with the margin asked for
    assert problem.margin == margin
    again = separable_classification(n, d, margin=margin, seed=seed)
    np.testing.assert_array_equal(again.X, problem.X)


def test_features_far_from_every_centre_are_zero_without_warnings():
    import warnings

    problem = feature_regression_1d(4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        far = problem.features(np.array([1e308, -1e308, 1e160]))
    np.testing.assert_array_equal(far, 0.0)  # exp(−(x − c)²/2ℓ²) underflows: 0 is the float64 value


@pytest.mark.parametrize("steps,points,match", [(-1, 40, "steps must be a non-negative integer"),
                                                (10, 0, "points must be a positive integer"),
                                                (2.5, 40, "steps must be an integer"),
                                                (10**30, 40, r"steps must be at most 2\*\*63 - 1"),
                                                (10, None, "points must be an integer")])
def test_default_record_steps_checks_its_arguments(steps, points, match):
    from linear_theory import default_record_steps

    with pytest.raises((TypeError, ValueError), match=match):
        default_record_steps(steps, points)


def test_sizes_beyond_the_machine_memory_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"n and d: the result would be an array .* more than this machine's memory"):
        random_regression(10**12, 10**12)
    with pytest.raises(ValueError, match="d: the result would be an array"):
        from linear_theory import Gaussian

        Gaussian.isotropic(0.0, 1.0, 10**10)
