"""Issue 4, item 8: IBVI against the deterministic network on the toy regression and two moons,
with the authors' recipe (3 hidden layers, μP, step 1e-2, momentum 0.9), several seeds.

Comparisons use paired differences over the test points, pooled over seeds; "at least as good"
means the IBVI-minus-deterministic mean difference is below two standard errors of that
difference (a one-sided check at about 2.3 % false-alarm rate when the two are equal). Where the
claim does not hold with the default recipe we say so with a strict xfail that records the
measured numbers (it fails loudly the day the behaviour changes), instead of widening a margin.
"""
import math

import numpy as np
import pytest

from variational_nets.experiment import ExperimentConfig, evaluate, fit_experiment
from variational_nets.train import predict

SEEDS = (0, 1, 2)
K = 64  # weight samples at evaluation: relative standard error of a std estimate 1/√(2·63) ≈ 9 %
SPREAD_SE = 1 / math.sqrt(2 * (K - 1))


pytestmark = pytest.mark.usefixtures("blas_single_thread")


def _runs(task, epochs=None):
    out = {}
    for seed in SEEDS:
        for method in ("ibvi", "map"):
            cfg = ExperimentConfig(task=task, method=method, seed=seed, num_samples=K, epochs=epochs)
            trained = fit_experiment(cfg, quiet=True)
            out[method, seed] = (trained, evaluate(trained))
    return out


def _per_point(trained, kind):
    ds, cfg = trained.dataset, trained.config
    pred = predict(trained.model, ds.x_test, cfg.loss, K, np.random.default_rng([cfg.seed, 5]))
    if kind == "squared_error":
        return ((pred.mean - ds.y_test) ** 2)[:, 0]
    p_label = pred.mean[np.arange(ds.y_test.size), ds.y_test]
    if kind == "nll":
        return -np.log(np.maximum(p_label, 1e-300))
    return (np.argmax(pred.mean, 1) == ds.y_test).astype(float)


def _paired(runs, kind):
    """Pooled mean of (IBVI − deterministic) per test point and its standard error."""
    diffs = [_per_point(runs["ibvi", s][0], kind) - _per_point(runs["map", s][0], kind) for s in SEEDS]
    d = np.concatenate(diffs)
    return d.mean(), d.std(ddof=1) / math.sqrt(d.size)


@pytest.fixture(scope="module")
def regression():
    return _runs("toy-regression")


@pytest.fixture(scope="module")
def moons():
    return _runs("two-moons")


def test_regression_ibvi_nll_better_than_deterministic(regression):
    for seed in SEEDS:
        ibvi, det = regression["ibvi", seed][1].metrics, regression["map", seed][1].metrics
        # measured: IBVI about −1.3, deterministic +3 … +12 (overconfident in the gaps)
        assert ibvi.gaussian_nll < det.gaussian_nll, (seed, ibvi, det)


def test_regression_spread_small_on_clusters_grows_in_gaps_and_outside(regression):
    for seed in SEEDS:
        s = regression["ibvi", seed][1].spread
        # growth must exceed the sampling error of a K-sample std estimate
        assert s.gaps > (1 + 2 * SPREAD_SE) * s.on_data, (seed, s)
        assert s.outside > (1 + SPREAD_SE) * s.on_data, (seed, s)
        det = regression["map", seed][1].spread
        assert det.on_data == det.gaps == det.outside == 0.0


@pytest.mark.xfail(strict=True, reason="measured with the default recipe (500 epochs): IBVI test "
                   "MSE is higher than the deterministic network's by about 0.006 ± 0.001 per "
                   "seed (RMSE ≈ 0.12 vs 0.09), the excess coming from the gap (−0.65, 0.25) "
                   "where the latent sigmoid jumps; NLL is far better (see above)")
def test_regression_rmse_at_least_as_good(regression):
    mean, se = _paired(regression, "squared_error")
    assert mean < 2 * se, (mean, se)


def test_moons_accuracy_at_least_as_good_and_spread(moons):
    mean, se = _paired(moons, "accuracy")
    assert -mean < 2 * se, (mean, se)  # accuracy: higher is better
    for seed in SEEDS:
        assert moons["ibvi", seed][1].metrics.accuracy > 0.97
        s = moons["ibvi", seed][1].spread
        assert s.outside > (1 + 2 * SPREAD_SE) * s.on_data, (seed, s)


@pytest.mark.xfail(strict=True, reason="measured with the default recipe (200 epochs): IBVI NLL "
                   "≈ 0.013 vs 0.007 for the deterministic network (difference 2–4 standard "
                   "errors): IBVI is still shrinking its variance; at 600 epochs the two agree "
                   "(next test)")
def test_moons_nll_at_least_as_good_default_epochs(moons):
    mean, se = _paired(moons, "nll")
    assert mean < 2 * se, (mean, se)


def test_moons_nll_at_least_as_good_longer_training():
    runs = _runs("two-moons", epochs=600)
    mean, se = _paired(runs, "nll")
    assert mean < 2 * se, (mean, se)
