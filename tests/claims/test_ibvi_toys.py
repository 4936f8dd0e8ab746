"""IBVI against the deterministic network on the toy regression and two moons,
with the authors' recipe (3 hidden layers, μP, step 1e-2, momentum 0.9), several seeds.

Comparisons use paired differences over the test points, pooled over seeds; "at least as good"
means the IBVI-minus-deterministic mean difference is below two standard errors of that
difference (a one-sided check at about 2.3 % false-alarm rate when the two are equal). These
tests pin what holds on every seed tried and where an effect comes from. The comparisons over
paired seeds — IBVI's NLL far below, its RMSE above the deterministic network's, two moons'
NLL at 200 and 600 epochs — are the registered claim C11-toy
(``python -m proofs_check --only C11-toy --full``: 10 seeds; tests/claims/test_claims_c11.py).

The authors' scripts (inferno-ml/inferno, ``docs/examples/ibvi/classification/run.py`` and the
IBVI toy-regression ``run.py``) use the same model (SiLU MLP, full-rank factors on the input and
output layers only, μP, SGD 1e-2 with momentum 0.9, one weight sample per batch, 16 samples at
test, the K-sample mean as the regression prediction, no noise parameter) and, for two moons,
the same size and data as ours (3 × 64, noise 0.1, 200/400 points, batch 32). They differ in the
expected loss: they use the plain loss at one sampled output, our ``expectation="mc"``; our
default is the exact closed form. The authors' own published curves show test MSE ≈ 0.015–0.02
(RMSE ≈ 0.12–0.14) over the last 100 of 300 epochs on the toy regression
(``docs/examples/varibo/regression/plots/learning_curves.svg``) and test accuracy ≈ 0.95, still
rising, at epoch 200 on two moons (``docs/examples/ibvi/classification/plots/learning_curves.svg``).
The authors never compare IBVI with the deterministic network on these toys.
"""
import math

import numpy as np
import pytest

from variational_nets.data import TOY_CLUSTERS
from variational_nets.experiment import ExperimentConfig, evaluate, fit_experiment
from variational_nets.train import predict

SEEDS = (0, 1, 2)
K = 64  # weight samples at evaluation: relative standard error of a std estimate 1/√(2·63) ≈ 9 %
SPREAD_SE = 1 / math.sqrt(2 * (K - 1))


pytestmark = pytest.mark.usefixtures("blas_single_thread")


def _runs(task, epochs=None, methods=("ibvi", "map"), **options):
    out = {}
    for seed in SEEDS:
        for method in methods:
            cfg = ExperimentConfig(task=task, method=method, seed=seed, num_samples=K,
                                   epochs=epochs, **options)
            trained = fit_experiment(cfg, quiet=True)
            out[method, seed] = (trained, evaluate(trained))
    return out


def _per_point(trained, kind):
    ds, cfg = trained.dataset, trained.config
    pred = predict(trained.model, ds.x_test, cfg.loss, K, np.random.default_rng([cfg.seed, 5]))
    if kind == "squared_error":
        return ((pred.mean - ds.y_test) ** 2)[:, 0]
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


def _regression_squared_errors(trained):
    """Squared errors of the K-sample mean and of the mean-path network f(μ), and the test x."""
    ds, cfg = trained.dataset, trained.config
    pred = predict(trained.model, ds.x_test, cfg.loss, K, np.random.default_rng([cfg.seed, 5]))
    f_mu = np.asarray(trained.model.forward(ds.x_test.astype(trained.model.dtype)).activations[-1])
    y = ds.y_test[:, 0]
    return (pred.mean[:, 0] - y) ** 2, (f_mu[:, 0].astype(np.float64) - y) ** 2, ds.x_test[:, 0]


def test_regression_rmse_excess_lies_in_the_gap_and_not_in_the_averaging(regression):
    """Where IBVI's RMSE excess (claim C11-toy) comes from (pooled over seeds, paired per test point).

    * the squared-error excess of IBVI over the deterministic network is positive, and at least
      80 % of it lies in the gap (−0.65, 0.25) (measured: 99 % on these seeds, 98 % over 12);
    * on the training clusters IBVI fits to the noise level: RMSE below 2 noise std (0.04), i.e. a
      mean-function error below √3 noise std (measured 0.022–0.032 over 12 seeds);
    * the mean-path network f(μ) has a positive excess too (more than two standard errors of the
      paired difference), so the excess is in the learned mean function, not an artefact of
      averaging K sampled functions (measured: f(μ) is worse than the K-sample mean on 7 of 12
      seeds).
    """
    gap_lo, gap_hi = TOY_CLUSTERS[0][1], TOY_CLUSTERS[1][0]
    excess, excess_gap, excess_mu = [], [], []
    for seed in SEEDS:
        se_ibvi, se_mu, x = _regression_squared_errors(regression["ibvi", seed][0])
        se_det, _, _ = _regression_squared_errors(regression["map", seed][0])
        gap = (x > gap_lo) & (x < gap_hi)
        clusters = np.zeros(x.shape, bool)
        for lo, hi in TOY_CLUSTERS:
            clusters |= (x >= lo) & (x <= hi)
        noise_std = regression["ibvi", seed][0].config.noise_std
        assert math.sqrt(se_ibvi[clusters].mean()) < 2 * noise_std, seed
        excess.append(se_ibvi - se_det)
        excess_gap.append(np.where(gap, se_ibvi - se_det, 0.0))
        excess_mu.append(se_mu - se_det)
    total, in_gap = np.concatenate(excess).sum(), np.concatenate(excess_gap).sum()
    assert total > 0 and in_gap >= 0.8 * total, (total, in_gap)
    d = np.concatenate(excess_mu)
    assert d.mean() > 2 * d.std(ddof=1) / math.sqrt(d.size), (d.mean(), d.std(ddof=1))


def test_regression_rmse_excess_also_with_the_authors_mc_loss(regression):
    """The authors train on the loss at one sampled output (our ``expectation="mc"``), not on the
    closed form; with it IBVI's squared-error excess is still there (paired difference above two
    standard errors). The per-point standard error ignores that the points of one seed share one
    learned function, so the seed is the honest unit: over 30 seeds the per-seed MSE excess is
    0.0047 ± 0.0012 and IBVI is better on 8 of them; these three seeds are all worse."""
    runs = _runs("toy-regression", methods=("ibvi",), expectation="mc")
    runs.update({k: v for k, v in regression.items() if k[0] == "map"})  # same seeds and data
    mean, se = _paired(runs, "squared_error")
    assert mean > 2 * se, (mean, se)


def test_moons_accuracy_at_least_as_good_and_spread(moons):
    mean, se = _paired(moons, "accuracy")
    assert -mean < 2 * se, (mean, se)  # accuracy: higher is better
    for seed in SEEDS:
        assert moons["ibvi", seed][1].metrics.accuracy > 0.97
        s = moons["ibvi", seed][1].spread
        assert s.outside > (1 + 2 * SPREAD_SE) * s.on_data, (seed, s)
