"""Claims C12 and C13: both pass on their quick setting; each judged C12 check fails on a wrong input
(an unconverged run, hidden layers that train, the identity metric, a state off the invariant); the
oblique projector, the step choice and C13's two references are checked against independent routes."""
import dataclasses
import math

import numpy as np
import pytest

from proofs_check.claims import bridge
from proofs_check.registry import Context, run_claim, select

pytestmark = pytest.mark.usefixtures("blas_single_thread")
QUICK = Context(quick=True)


@pytest.mark.parametrize("claim_id,seed", [("C12", 0), ("C12", 3), ("C13", 0)])
def test_claim_passes_quick(claim_id, seed):
    (claim,) = select([claim_id])
    assert claim.kind == "extension"
    result = run_claim(claim, Context(seed=seed, quick=True))
    assert result.exception is None, result.exception
    assert result.passed, [m for m in result.outcome.measurements if not m.passed]
    assert all(m.reason for m in result.outcome.measurements)
    assert any(m.judged for m in result.outcome.measurements)
    assert any(not m.judged for m in result.outcome.measurements)


# -- C12 ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def problem():
    return bridge.bridge_problem(QUICK, "mup", 4, 8)


@pytest.fixture(scope="module")
def converged(problem):
    fresh = bridge.bridge_problem(QUICK, "mup", 4, 8)
    lr, momentum, rate = bridge.fastest_heavy_ball(fresh)
    return fresh, bridge.train_bridge(fresh, "test", lr=lr, momentum=momentum, max_steps=5000, predicted_rate=rate)


def _passed(measurements, prefix):
    return [m.passed for m in measurements if m.name.startswith(prefix)]


def test_frozen_network_freezes_exactly_the_input_and_hidden_layers(problem):
    for name, t in problem.model.tensors().items():
        assert t.trainable == name.startswith("layer2."), name
    assert problem.view.features.shape == (4, 9) and problem.view.factor.shape == (9, 9)


def test_unmovable_is_the_dense_oblique_projector(problem):
    X, D = problem.view.features, problem.view.mean_multipliers
    Q = np.eye(X.shape[1]) - (D[:, None] * X.T) @ np.linalg.solve((X * D) @ X.T, X)
    A = np.random.default_rng(0).standard_normal((X.shape[1], 5))
    np.testing.assert_allclose(bridge.unmovable(problem, A), Q @ A, rtol=0, atol=1e-12 * np.abs(A).max())
    assert np.max(np.abs(X @ bridge.unmovable(problem, A))) < 1e-12  # Q maps into null(X)
    moves = D[:, None] * X.T @ np.random.default_rng(1).standard_normal((X.shape[0], 3))
    assert np.max(np.abs(bridge.unmovable(problem, moves))) < 1e-12 * np.abs(moves).max()  # and kills range(DX^T)


def test_fastest_step_is_stable_and_contracts(problem):
    lr, momentum, rate = bridge.fastest_heavy_ball(problem)
    lam = problem.eigenvalues(problem.view.mean_multipliers)
    assert momentum in bridge.MOMENTA and 0 < rate < 1
    assert lr * lam[0] < 2 * (1 + momentum)  # heavy ball's stability bound on the mean's largest mode


def test_converged_run_passes_every_judged_check(converged):
    fresh, run = converged
    measurements = bridge.bridge_measurements(fresh, run)
    assert all(m.passed for m in measurements), [m for m in measurements if not m.passed]
    assert any(m.name.startswith("|measured contraction") for m in measurements)


def test_an_unconverged_run_fails_the_agreement_but_keeps_the_invariants():
    fresh = bridge.bridge_problem(QUICK, "mup", 4, 8)
    lr, momentum, rate = bridge.fastest_heavy_ball(fresh)
    run = bridge.train_bridge(fresh, "short", lr=lr, momentum=momentum, max_steps=60, record_every=20)
    measurements = bridge.bridge_measurements(fresh, run)
    assert not any(_passed(measurements, "||mu_T")) and not any(_passed(measurements, "||S_T"))
    assert all(_passed(measurements, "max_t"))


def test_hidden_layers_that_train_break_the_bridge():
    fresh = bridge.bridge_problem(QUICK, "mup", 4, 8)
    for layer in fresh.model.layers[:2]:
        for name, t in layer.tensors.items():
            layer.tensors[name] = dataclasses.replace(t, trainable=True)
    lr, momentum, _ = bridge.fastest_heavy_ball(fresh)
    run = bridge.train_bridge(fresh, "unfrozen", lr=0.2 * lr, momentum=momentum, max_steps=400)
    measurements = bridge.bridge_measurements(fresh, run)
    assert not any(_passed(measurements, "max |features")) and not any(_passed(measurements, "||mu_T"))


def test_the_identity_metric_limit_is_not_what_the_network_reaches(converged):
    fresh, run = converged
    wrong = dataclasses.replace(fresh, view=dataclasses.replace(
        fresh.view, mean_multipliers=np.ones_like(fresh.view.mean_multipliers)))
    measurements = bridge.bridge_measurements(wrong, run)
    assert not any(_passed(measurements, "||mu_T")) and not any(_passed(measurements, "||S_T"))


def test_a_state_off_the_invariant_fails_it(converged):
    fresh, run = converged
    kick = bridge.unmovable(fresh, np.random.default_rng(2).standard_normal((fresh.view.mean.size, 1)))[:, 0]
    moved = dataclasses.replace(run.states[3], mean=run.states[3].mean + 1e-6 * kick)
    bad = dataclasses.replace(run, states=run.states[:3] + (moved,) + run.states[4:])
    measurements = bridge.bridge_measurements(fresh, bad)
    assert _passed(measurements, "max_t ||Q(mu") == [False] and _passed(measurements, "max_t ||Q(S") == [True]


def test_only_ntp_closes_the_gap_to_the_specified_prior():
    gaps = {p: bridge.posterior_gap(bridge.bridge_problem(QUICK, p, 4, 8)) for p in bridge.PARAMETRIZATIONS}
    n_in = 8
    assert gaps["ntp"].multiplier_ratio == pytest.approx(gaps["ntp"].variance_ratio, rel=1e-12)
    for p in ("sp", "mup"):  # each misses alpha_W/alpha_b = sigma_W^2/sigma_b^2 by the fan-in
        assert gaps[p].multiplier_ratio / gaps[p].variance_ratio == pytest.approx(n_in, rel=1e-12)
        assert gaps[p].specified_gap > bridge.MIN_GAP
    assert gaps["ntp"].specified_gap < bridge.CLOSED_FORM_RTOL
    assert all(g.realized_gap > bridge.MIN_GAP for g in gaps.values())  # a Wishart S0 S0^T is not diagonal
    assert all(m.passed for m in bridge.gap_measurements(tuple(gaps.values())))


def test_gap_measurements_fail_when_the_prediction_does_not_hold():
    no_gap_expected = bridge.PosteriorGap("x", 0.5, 0.5, 0.3, 0.2, 0.3)
    gap_expected = bridge.PosteriorGap("y", 1.0, 0.5, 0.3, 0.0, 0.3)
    assert not any(m.passed for m in bridge.gap_measurements((no_gap_expected,)) if m.judged)
    assert not any(m.passed for m in bridge.gap_measurements((gap_expected,)) if m.judged)


# -- C13 ----------------------------------------------------------------------------------------------
def test_references_coincide_when_only_the_output_layer_trains():
    config = bridge.lazy_config(QUICK)
    data = bridge.lazy_data(QUICK, config)
    model = bridge.lazy_network("ntp", 32, config.d_in, 0)
    model.freeze([0])  # the tangent kernel is then the output layer's Gram matrix X D X^T
    mean_a, std_a, mean_b, f0_test, lam = bridge._references(model, *data)
    np.testing.assert_allclose(mean_b, mean_a, rtol=1e-9, atol=1e-9 * np.abs(mean_a).max())
    assert lam > 0 and np.all(std_a >= 0)
    x_test = data[2]
    np.testing.assert_allclose(f0_test, model.forward(x_test).activations[-1][:, 0], rtol=1e-13)


def test_slopes_recover_a_known_power_law():
    config = bridge.LazyConfig(widths=(64, 128, 256, 512), seeds=(0, 1, 2))
    rng = np.random.default_rng(0)
    points, slopes = [], {}
    for param in bridge.LAZY_PARAMETRIZATIONS:
        for seed in config.seeds:
            slopes[param, seed] = -0.5 + 0.1 * seed if param == "ntp" else 0.05 * seed
            scale = rng.uniform(0.5, 2.0)
            for w in config.widths:
                g = scale * w ** slopes[param, seed]
                points.append(bridge.LazyPoint(param, w, seed, (g, 2 * g, 3 * g), 0.0, 1))
    result = bridge.LazyResult(config, tuple(points), {})
    for s in result.slopes():
        per_seed = np.array([slopes[s.parametrization, k] for k in config.seeds])
        assert s.slope == pytest.approx(per_seed.mean(), abs=1e-12)
        assert s.seed_se == pytest.approx(per_seed.std(ddof=1) / math.sqrt(3), abs=1e-12)
    assert result.gaps("ntp", 1).shape == (3, 4)


def test_quick_lazy_run_separates_ntp_from_mup():
    result = bridge.run_lazy(QUICK)
    ntp, mup = result.gaps("ntp", 1), result.gaps("mup", 1)
    # at the widest quick width NTP stays near its linearization, muP has moved away from it
    assert ntp[:, -1].max() < mup[:, -1].min()
    assert max(p.residual for p in result.points) < 1e-3
    assert all(np.isfinite(g) and g > 0 for p in result.points for g in p.gaps)
