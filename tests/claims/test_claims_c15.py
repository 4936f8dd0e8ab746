"""Claim C15: momentum and mini-batch SGD on the exponential and logistic losses beside GD.

The claim passes on its quick setting with its invariants judged and the rest reported; the same
seed gives the same numbers; the judged invariants fail for a run whose null-space part moved; the
optimizer table maps onto ``simulate_classification``'s options."""
import dataclasses

import numpy as np
import pytest

from linear_theory import Gaussian
from linear_theory.subspace import project_null
from proofs_check.claims import classification_beyond as c15
from proofs_check.claims.classification import invariant_measurements
from proofs_check.registry import Context, run_claim, select


@pytest.mark.parametrize("seed", [0, 2])
def test_claim_passes_quick(seed):
    (claim,) = select(["C15"])
    assert claim.kind == "conjecture"
    result = run_claim(claim, Context(seed=seed, quick=True))
    assert result.exception is None, result.exception
    assert result.passed, [m for m in result.outcome.measurements if not m.passed]
    judged = [m for m in result.outcome.measurements if m.judged]
    # the SVM's KKT residual and two invariants per (loss, optimizer) run are judged
    assert len(judged) == 1 + 2 * len(c15.LOSSES) * len(c15.OPTIMIZERS)
    reported = [m for m in result.outcome.measurements if not m.judged]
    assert len(reported) == 2 * len(c15.LOSSES) * (len(c15.OPTIMIZERS) - 1)
    summary, *traces = result.outcome.tables
    assert len(summary.rows) == len(c15.LOSSES) * len(c15.OPTIMIZERS) and len(traces) == len(c15.LOSSES)


def test_same_seed_same_numbers():
    first, _ = c15.run_beyond(Context(seed=1, quick=True))
    second, _ = c15.run_beyond(Context(seed=1, quick=True))
    for a, b in zip(first, second):
        assert np.array_equal(a.result.final.mean, b.result.final.mean)
        assert np.array_equal(a.result.trace.data_spread, b.result.trace.data_spread)


def test_optimizer_options_and_effective_steps():
    by_label = {o.label: o for o in c15.OPTIMIZERS}
    assert by_label["GD"].options(8) == {"optimizer": "gd"}
    assert by_label["heavy ball"].options(8) == {"optimizer": "momentum", "momentum": c15.MOMENTUM}
    assert by_label["SGD, b = n/4"].options(8) == {"optimizer": "sgd", "batch_size": 2}
    assert by_label["heavy ball"].effective_lr(1.0) == pytest.approx(1.0 / (1.0 - c15.MOMENTUM))
    assert by_label["heavy ball at eta (1 - m)"].effective_lr(1.0) == pytest.approx(1.0)


def test_invariants_fail_for_a_run_whose_null_space_part_moved():
    runs, (X, y, prior, svm, lrs) = c15.run_beyond(Context(quick=True))
    run = runs[1].result
    assert all(m.passed for m in invariant_measurements(run, X, prior))
    kick = project_null(X, np.random.default_rng(0).standard_normal(X.shape[1]))
    moved = dataclasses.replace(run, final=Gaussian(run.final.mean + 1e-6 * kick, run.final.factor))
    measurements = invariant_measurements(moved, X, prior)
    assert [m.passed for m in measurements] == [False, True]
