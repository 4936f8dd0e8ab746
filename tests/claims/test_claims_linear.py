"""Claims C1, C2, C4, C5 and the MC threshold: each passes at its quick setting, and each check's
measurements fail when handed a deliberately wrong object (the failure path)."""
import json

import numpy as np
import pytest

import linear_theory as lt
from proofs_check import Context, cli, run_claim, select
from proofs_check.claims import ensembles, penalized, theorem1
from proofs_check.claims._common import regression_setup

QUICK = Context(seed=0, quick=True)
LINEAR_IDS = ["C1-gd", "C1-sgd", "C1-momentum", "C1-mc", "C1-optimality", "C1-predictive", "C1-mc-threshold",
              "C2", "C4-meanfield", "C4-lowrank", "C5"]


@pytest.mark.parametrize("claim_id", LINEAR_IDS)
def test_claim_passes_quick(claim_id):
    (claim,) = select([claim_id])
    result = run_claim(claim, QUICK)
    assert result.exception is None, result.exception
    assert result.passed, [m for m in result.outcome.measurements if not m.passed]
    assert all(m.judged for m in result.outcome.measurements[:1])


@pytest.mark.parametrize("seed", [1, 2])
def test_c1_and_c2_pass_for_other_seeds(seed):
    for claim in select(["C1-gd", "C2"]):
        assert run_claim(claim, Context(seed=seed, quick=True)).passed


def _wrong(setup, result, **changes):
    """The same measurements with the reference limit replaced (a wrong closed form)."""
    return theorem1.convergence_measurements(setup.__class__(**{**setup.__dict__, **changes}), result)


def test_convergence_measurements_fail_for_a_wrong_limit():
    setup = regression_setup(QUICK)
    result = lt.simulate(setup.X, setup.y, setup.prior, lr=0.9 * lt.stability_bound(setup.X), steps=300)
    assert all(m.passed for m in theorem1.convergence_measurements(setup, result))
    # The "limit" of a prior whose factor was not projected (L_inf = L_0): must be rejected.
    wrong = lt.Gaussian(setup.limit.mean, setup.prior.factor)
    measurements = _wrong(setup, result, limit=wrong)
    assert not measurements[0].passed


def test_convergence_measurements_fail_when_invariants_drift():
    setup = regression_setup(QUICK)
    result = lt.simulate(setup.X, setup.y, setup.prior, lr=0.9 * lt.stability_bound(setup.X), steps=300)
    drifted_trace = lt.Trace(**{**result.trace.__dict__, "null_mean_drift": result.trace.null_mean_drift + 1e-6})
    drifted = lt.SimulationResult(**{**result.__dict__, "trace": drifted_trace})
    assert not theorem1.convergence_measurements(setup, drifted)[1].passed


def test_measured_rate_recovers_a_known_geometric_rate():
    steps = np.arange(200)
    errors = 0.3 * 0.9 ** steps + 1e-16
    assert abs(theorem1.measured_rate(steps, errors) - 0.9) < 1e-6
    assert np.isnan(theorem1.measured_rate(steps[:2], errors[:2]))


def test_heavy_ball_rate_matches_simulation_of_a_scalar_mode():
    lr, m, s = 0.2, 0.5, np.array([1.0])
    theta, velocity, history = 1.0, 0.0, []
    for _ in range(400):
        velocity = m * velocity + 2 * s[0] ** 2 * theta
        theta -= lr * velocity
        history.append(abs(theta))
    # Complex modes oscillate: compare the envelopes (max over a window longer than a period).
    envelope = lambda t: max(history[t - 20:t])
    empirical = (envelope(400) / envelope(200)) ** (1 / 200)
    assert abs(empirical - theorem1.heavy_ball_rate(s, lr, m)) < 1e-2


def test_ensemble_z_scores_detect_a_shifted_limit():
    setup = regression_setup(QUICK, n=6, d=15)
    members = lt.gd_ensemble(setup.X, setup.y, setup.prior.sample(2000, 0), lr=0.5 * lt.stability_bound(setup.X),
                             steps=300)
    directions = lt.project_null(setup.X, np.random.default_rng(1).standard_normal((15, 5))).T
    z_mean, z_var = ensembles.ensemble_z_scores(members, setup.limit, directions)
    assert np.max(np.abs(z_mean)) < ensembles.Z_TOLERANCE and np.max(np.abs(z_var)) < ensembles.Z_TOLERANCE
    shifted = lt.Gaussian(setup.limit.mean + 0.2 * directions[0] / np.linalg.norm(directions[0]), setup.limit.factor)
    wider = lt.Gaussian(setup.limit.mean, 1.2 * setup.limit.factor)
    assert np.max(np.abs(ensembles.ensemble_z_scores(members, shifted, directions)[0])) > ensembles.Z_TOLERANCE
    assert np.max(np.abs(ensembles.ensemble_z_scores(members, wider, directions)[1])) > ensembles.Z_TOLERANCE


def test_feasible_minimization_beats_a_wrong_candidate():
    setup = regression_setup(QUICK, n=5, d=12)
    found, value = theorem1.minimize_over_feasible(setup, np.random.default_rng(0))
    assert value <= lt.w2_squared(setup.limit, setup.prior) * (1 + 1e-9)
    # A feasible but non-optimal candidate (null-space mean shifted) has a strictly larger value.
    shift = lt.project_null(setup.X, np.ones(12))
    worse = lt.Gaussian(setup.limit.mean + shift, setup.limit.factor)
    assert lt.w2_squared(worse, setup.prior) > value + 1e-3


def test_penalized_minimizer_rejects_a_wrong_closed_form():
    setup = regression_setup(QUICK, n=5, d=12)
    X, y, prior = setup.X, setup.y, setup.prior
    numeric = penalized.minimize_penalized(X, y, prior, 0.5, np.random.default_rng(0))
    right = lt.w2_gvi(X, y, prior, 0.5)
    wrong = lt.w2_gvi(X, y, prior, 1.0)  # λ in the wrong place (a factor 2 off)
    assert lt.w2(right, numeric) < 1e-5 * setup.prior_to_limit
    assert lt.w2(wrong, numeric) > 1e-2 * setup.prior_to_limit
    f = penalized.penalized_objective
    assert f(X, y, prior, 0.5, wrong) > f(X, y, prior, 0.5, numeric)


def test_cli_list_run_json_and_exit_codes(tmp_path, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for claim_id in LINEAR_IDS:
        assert claim_id in out
    path = tmp_path / "r.json"
    assert cli.main(["run", "--only", "C1-gd", "--only", "C5", "--quick", "--quiet", "--json", str(path)]) == 0
    payload = json.loads(path.read_text())
    assert [c["id"] for c in payload["claims"]] == ["C1-gd", "C5"]
    assert all(m["error"] <= m["tolerance"] for c in payload["claims"] for m in c["measurements"] if m["tolerance"] is not None)
    assert payload["environment"]["numpy"] == np.__version__
    out = capsys.readouterr().out
    assert "<=" in out and "2 passed, 0 failed" in out
    assert cli.main(["run", "--only", "no-such-claim"]) == 2
    assert "no-such-claim" in capsys.readouterr().err


def test_cli_exits_nonzero_when_a_claim_fails(monkeypatch, capsys):
    from proofs_check import registry

    def failing(ctx):
        return registry.Outcome((registry.Measurement("deliberately wrong", 1.0, 0.5, "test"),))

    monkeypatch.setitem(registry._REGISTRY, "Z9-failing", registry.Claim("Z9-failing", "fails", "test", "extension",
                                                                        failing))
    assert cli.main(["run", "--only", "Z9-failing", "--quiet"]) == cli.EXIT_FAILED
    assert "FAIL" in capsys.readouterr().out


def test_a_crashing_check_is_reported_not_raised(monkeypatch):
    from proofs_check import registry

    def crashing(ctx):
        raise RuntimeError("boom")

    claim = registry.Claim("Z8-crash", "crashes", "test", "extension", crashing)
    result = run_claim(claim, QUICK)
    assert result.status == "ERROR" and "boom" in result.exception and not result.passed
