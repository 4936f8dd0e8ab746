"""linear_theory.testing: the builders give what they promise (kinds, ranks, conditioning, scales,
stable steps), the strategies draw valid problems, and a property test over them runs the
conformance kit on a trainer — the way a user writes one."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linear_theory as lt
from linear_theory import testing
from proofs_check.conform import assert_conforms

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("kind,width", [("isotropic", None), ("general", None), ("lowrank", 3), ("lowrank", None)])
def test_random_prior_kinds(kind, width):
    prior = testing.random_prior(12, kind, scale=0.5, width=width, seed=1)
    expected_width = 12 if kind != "lowrank" else (width or 3)
    assert prior.factor.shape == (12, expected_width)
    if kind == "isotropic":
        assert np.array_equal(prior.factor, 0.5 * np.eye(12))
    assert np.array_equal(prior.mean, testing.random_prior(12, kind, scale=0.5, width=width, seed=1).mean)


@pytest.mark.parametrize("args,kwargs,error,message", [
    ((5, "diagonal"), {}, ValueError, "kind must be one of"),
    ((5, "general"), {"width": 2}, ValueError, "width is the column count"),
    ((5, "lowrank"), {"width": 5}, ValueError, "width must be below d = 5"),
    ((1, "lowrank"), {}, ValueError, "needs d >= 2"),
    ((0,), {}, ValueError, "d must be a positive integer"),
    ((5,), {"scale": -1.0}, ValueError, "scale must be"),
    ((5.0,), {}, TypeError, "d must be an integer"),
])
def test_random_prior_errors_name_the_argument(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        testing.random_prior(*args, **kwargs)


def test_random_step_multipliers_range_and_errors():
    D = testing.random_step_multipliers(200, spread=8.0, seed=0)
    assert D.shape == (200,) and D.min() >= 1 / 8 and D.max() <= 1.0 and D.max() / D.min() > 6
    assert np.array_equal(testing.random_step_multipliers(4, spread=1.0), np.ones(4))
    with pytest.raises(ValueError, match="spread must be at least 1"):
        testing.random_step_multipliers(4, spread=0.5)


def test_stable_step_bound_against_its_formula():
    X = lt.random_regression(6, 15, condition_number=3.0, scale=2.0, seed=0).X
    s_max2 = np.linalg.norm(X, 2) ** 2
    D = testing.random_step_multipliers(15, seed=1)
    s_max2_D = np.linalg.norm(X * np.sqrt(D), 2) ** 2
    cases = [
        (dict(), 1 / s_max2),
        (dict(optimizer="sgd", batch_size=2), (2 / 6) / s_max2),
        (dict(optimizer="momentum", momentum=0.5), 1.5 / s_max2),
        (dict(optimizer="momentum", momentum=0.5, batch_size=3), 0.5 * 0.5 / s_max2),
        (dict(mc_samples=2, rank=5), 1 / (s_max2 * (1 + 6 / 2))),
        (dict(optimizer="momentum", momentum=0.9, mc_samples=1, rank=3), 0.1 / (s_max2 * (1 + 4))),
        (dict(step_multipliers=D), 1 / s_max2_D),
    ]
    for kwargs, expected in cases:
        assert testing.stable_step_bound(X, **kwargs) == pytest.approx(expected, rel=1e-12), kwargs


@pytest.mark.parametrize("kwargs,message", [
    (dict(optimizer="adam"), "optimizer must be one of"),
    (dict(optimizer="sgd"), "needs batch_size"),
    (dict(batch_size=2), "full batch"),
    (dict(optimizer="sgd", batch_size=7), "batch_size must be at most n = 6"),
    (dict(mc_samples=1), "needs rank"),
    (dict(optimizer="momentum", momentum=1.0), "momentum must be in"),
])
def test_stable_step_bound_errors(kwargs, message):
    X = lt.random_regression(6, 15, seed=0).X
    with pytest.raises(ValueError, match=message):
        testing.stable_step_bound(X, **kwargs)


@given(testing.regression_problems(rank_deficit=st.integers(0, 2), condition_number=st.floats(1.0, 100.0)))
def test_regression_problems_are_overparametrized_with_the_rank_and_spectrum_asked(problem):
    n, d = problem.X.shape
    s = np.linalg.svd(problem.X, compute_uv=False)
    rank = problem.singular_values.size
    assert d > n and rank <= n
    assert np.linalg.matrix_rank(problem.X) == rank
    np.testing.assert_allclose(s[:rank], problem.singular_values, rtol=1e-10)
    assert np.all(np.isfinite(problem.y))


@given(testing.regression_problems(n=4, d=9, condition_number=50.0, scale=st.sampled_from([1e-3, 1.0, 1e3])))
def test_regression_problems_take_fixed_values_and_scales(problem):
    s = problem.singular_values
    assert problem.X.shape == (4, 9)
    assert s[0] / s[-1] == pytest.approx(50.0, rel=1e-10)
    assert s[0] in (pytest.approx(1e-3), pytest.approx(1.0), pytest.approx(1e3))


@given(testing.priors(st.integers(2, 20)))
def test_priors_have_a_matching_factor(prior):
    assert prior.factor.shape[0] == prior.dim and 1 <= prior.width <= prior.dim
    assert np.all(np.isfinite(prior.factor)) and np.linalg.norm(prior.factor) > 0


@given(testing.problems_with_priors(n=st.integers(2, 5), condition_number=st.floats(1.0, 10.0)).flatmap(
    lambda case: st.tuples(st.just(case), testing.stable_steps(case[0].X, "sgd", batch_size=1))))
def test_stable_steps_do_not_diverge(drawn):
    (problem, prior), lr = drawn
    assert 0 < lr < testing.stable_step_bound(problem.X, "sgd", batch_size=1)
    family = "full" if prior.width == prior.dim else "lowrank"
    run = lt.simulate(problem.X, problem.y, prior, family=family, optimizer="sgd", batch_size=1, lr=lr,
                      steps=200, seed=0)
    assert run.trace.expected_loss[-1] <= run.trace.expected_loss[0] * (1 + 1e-12)


@given(testing.step_multipliers(st.integers(1, 30)))
def test_step_multiplier_strategy_draws_positive_vectors(D):
    assert D.ndim == 1 and np.all(D > 0) and np.all(D <= 1.0)


def test_strategies_reject_bad_arguments():
    with pytest.raises(TypeError, match="n must be an integer or a hypothesis strategy"):
        testing.regression_problems(n="four")
    with pytest.raises(ValueError, match="fraction must satisfy"):
        testing.stable_steps(np.eye(2, 3), fraction=(0.5, 1.5))


@given(st.data())
def test_a_problem_strategy_that_is_not_overparametrized_fails_while_drawing(data):
    with pytest.raises(ValueError, match="d must exceed n"):
        data.draw(testing.regression_problems(n=5, d=st.integers(1, 5)))


# The use the kit is for: a property test of a trainer over problems of every rank, conditioning,
# scaling and prior kind. Conditioning stays below 4 so the step counts (which grow like κ²) stay small.
@settings(max_examples=12)
@given(testing.problems_with_priors(n=st.integers(2, 5), rank_deficit=st.integers(0, 1),
                                    condition_number=st.floats(1.0, 4.0), prior_scale=st.floats(0.1, 10.0)),
       st.sampled_from([None, "random"]))
def test_the_numpy_example_conforms_on_every_drawn_problem(case, multipliers):
    from examples.numpy_ibvi_trainer import train

    problem, prior = case
    assert_conforms(train, problem=problem, prior=prior, step_multipliers=multipliers, members=8)


def test_importing_linear_theory_needs_no_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import linear_theory\n"
            "assert 'linear_theory.testing' not in sys.modules\n"
            "from linear_theory import testing\n"
            "testing.random_prior(3, seed=0)\n"
            "try:\n    testing.priors(3)\nexcept ImportError as e:\n    print('ImportError', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    assert "ImportError linear_theory.testing strategies need hypothesis" in done.stdout
