"""Claims C14 (Kronecker factors) and C16 (MC step thresholds): each passes at its quick setting, and
each fails when its prediction is replaced by a plausible wrong one (the failure path)."""
import dataclasses

import numpy as np
import pytest

import linear_theory as lt
import linear_theory.stability
from proofs_check import Context, run_claim, select
from proofs_check.claims import kronecker

QUICK = Context(seed=0, quick=True)
IDS = ["C14-flow", "C14-stochastic", "C16"]


def run(claim_id, ctx=QUICK):
    (claim,) = select([claim_id])
    return run_claim(claim, ctx)


@pytest.fixture(scope="module")
def quick_results():
    return {claim_id: run(claim_id) for claim_id in IDS}


@pytest.mark.parametrize("claim_id", IDS)
def test_claim_passes_quick(claim_id, quick_results):
    result = quick_results[claim_id]
    assert result.exception is None, result.exception
    assert result.passed, [m for m in result.outcome.measurements if not m.passed]
    assert result.claim.kind == "extension"
    assert result.outcome.tables and all(len(row) == len(t.header) for t in result.outcome.tables for row in t.rows)


def test_c14_family_is_selected_by_its_prefix():
    assert [c.id for c in select(["C14"])] == ["C14-flow", "C14-stochastic"]


def test_c14_flow_passes_for_another_seed():
    assert run("C14-flow", Context(seed=3, quick=True)).passed


def failing(result):
    assert result.exception is None, result.exception
    return [m.name for m in result.outcome.measurements if not m.passed]


def test_c14_flow_rejects_theorys_collapsed_limit(monkeypatch):
    """The stated A∞ = P_null A₀ (docs/theory.md §2 (C14)) is what the simulation refutes when collapsed."""
    exact = lt.kronecker_limit

    def theory(X, Y, prior, *, basis=None):
        limit = exact(X, Y, prior, basis=basis)
        null_A = lt.project_null(lt.row_space_basis(X), prior.input_factor)
        return dataclasses.replace(limit, limit=limit.limit.replace(input_factor=null_A))

    monkeypatch.setattr(lt, "kronecker_limit", theory)
    assert failing(run("C14-flow")) == ["max over collapsed splits of |extrapolated A_T - finite-time A_inf| / its "
                                        "error estimate"]


@pytest.mark.parametrize("field, change, name", [
    ("kept_variance", lambda v: v ** 0.5, "closed-form c^2"),
    ("gd_slope", lambda v: 0.8 * v, "closed-form e1"),
])
def test_c14_flow_rejects_a_wrong_kept_variance_or_slope(monkeypatch, field, change, name):
    exact = lt.kronecker_limit

    def wrong(X, Y, prior, *, basis=None):
        limit = exact(X, Y, prior, basis=basis)
        return limit if limit.collapsed else dataclasses.replace(limit, **{field: change(getattr(limit, field))})

    monkeypatch.setattr(lt, "kronecker_limit", wrong)
    assert any(name in failed for failed in failing(run("C14-flow")))


@pytest.mark.parametrize("wrong_factor, name", [
    (lambda m: 1.0 / (1.0 - m), "heavy ball (m = 0.5): |(c^2 - c^2(eta))/eta"),  # "effective step η/(1 − m)" only
    (None, "MC: |mean over seeds"),                                      # MC variance terms left out
])
def test_c14_stochastic_rejects_a_wrong_first_order_term(monkeypatch, wrong_factor, name):
    exact = lt.kronecker_first_order

    def wrong(X, Y, prior, *, mc_samples=0, momentum=0.0, basis=None):
        plain = exact(X, Y, prior, basis=basis)
        if momentum > 0:
            if wrong_factor is None:
                return exact(X, Y, prior, momentum=momentum, basis=basis)
            return plain * wrong_factor(momentum)
        return plain if wrong_factor is None else exact(X, Y, prior, mc_samples=mc_samples, basis=basis)

    monkeypatch.setattr(lt, "kronecker_first_order", wrong)
    assert [failed for failed in failing(run("C14-stochastic")) if failed.startswith(name)]


def test_c16_rejects_the_naive_heavy_ball_bound(monkeypatch):
    """(1 + β) times the plain MC bound (momentum as a larger effective step would suggest the opposite)."""
    def naive(s_max, rank, mc_samples=1, momentum=0.0):
        return (1.0 + momentum) / (s_max ** 2 * (1.0 + (rank + 1.0) / mc_samples))

    monkeypatch.setattr(linear_theory.stability, "predicted_mc_threshold", naive)
    assert any("measured must not lie below it" in failed for failed in failing(run("C16")))


def test_c16_table_has_the_three_predictions_and_a_scale_invariant_threshold(quick_results):
    result = quick_results["C16"]
    (table,) = result.outcome.tables
    rows = {(r[0], r[1], r[2], r[3]): r for r in table.rows}
    assert rows[(8, 1, 0.0, 1.0)][4] == rows[(8, 1, 0.0, 10.0)][4]
    assert rows[(32, 1, 0.9, 1.0)][6] == "n/a"  # Ghosh et al.'s condition has no momentum
    heavy = rows[(32, 1, 0.9, 1.0)]
    assert heavy[4] < 0.01 * heavy[7]  # far below the deterministic heavy-ball bound


def test_extrapolation_recovers_a_known_polynomial():
    steps = np.array([0.4, 0.2, 0.1])
    value, error = kronecker.extrapolate(steps, 0.7 - 0.3 * steps + 0.5 * steps ** 2 + 2.0 * steps ** 3)
    assert abs(value - 0.7) <= error
    value, error = kronecker.extrapolate(steps, 0.7 - 0.3 * steps + 0.5 * steps ** 2)
    assert value == pytest.approx(0.7, abs=1e-14) and error > 0.01  # the line misses the η² term
