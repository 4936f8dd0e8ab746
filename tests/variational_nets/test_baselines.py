"""The benchmark's methods, each against an independent reference on a small case: the fitted
temperature is a stationary point of the validation NLL; the last-layer Hessian equals a
finite-difference Hessian of the summed NLL; the ensemble equals the mean of its members'
predictions; SWAG's moments equal NumPy's over the stored iterates; plus the shared recipe,
divergence handling and the memory probe."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from variational_nets import baselines as B
from variational_nets.data import synthetic_images
from variational_nets.metrics import nll
from variational_nets.train import TrainingDiverged, predict

pytestmark = pytest.mark.usefixtures("blas_single_thread")
TINY = B.Recipe(width=16, depth=1, epochs=2, batch_size=64, num_samples=4, ensemble_size=3, swag_rank=4)


@pytest.fixture(scope="module")
def task():
    return synthetic_images(np.random.default_rng(0), split=(200, 60, 60), side=8)


# --- temperature scaling ---------------------------------------------------------------------

@given(n=st.integers(5, 60), c=st.integers(2, 6), scale=st.floats(0.3, 8.0), seed=st.integers(0, 2 ** 32 - 1))
def test_fitted_temperature_is_a_stationary_point_of_the_validation_nll(n, c, scale, seed):
    rng = np.random.default_rng(seed)
    logits = scale * rng.normal(size=(n, c))
    labels = rng.integers(0, c, n)
    t = B.fit_temperature(logits, labels)
    h = 1e-5 * t
    slope = (B.temperature_nll(logits, labels, t + h) - B.temperature_nll(logits, labels, t - h)) / (2 * h)
    if 1e-2 < t < 1e2:  # an interior minimum: zero derivative (central difference, error O(h²))
        assert abs(slope) * t < 1e-6
    else:  # at a bound the NLL still falls towards it
        assert (slope <= 0) if t == 1e2 else (slope >= 0)
    for other in np.clip((0.5 * t, 2 * t), 1e-2, 1e2):  # the minimum over the bounded range
        assert B.temperature_nll(logits, labels, t) <= B.temperature_nll(logits, labels, other) + 1e-12


def test_temperature_nll_is_the_nll_of_the_scaled_softmax():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(30, 4)), rng.integers(0, 4, 30)
    assert B.temperature_nll(logits, labels, 1.7) == pytest.approx(nll(B.softmax(logits / 1.7), labels), rel=1e-12)


def test_temperature_of_separable_logits_goes_to_the_lower_bound():
    logits = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert B.fit_temperature(logits, [0, 1]) == 1e-2  # sharper is always better on the validation set


# --- last-layer Laplace --------------------------------------------------------------------------

def _summed_nll(theta, features, labels, c):
    h = features.shape[1]
    w, b = theta[:c * h].reshape(c, h), theta[c * h:]
    z = features @ w.T + b
    z = z - z.max(axis=1, keepdims=True)
    return float(np.sum(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]))


@pytest.mark.parametrize("n,h,c,seed", [(7, 3, 4, 0), (12, 2, 2, 1), (5, 4, 3, 2)])
def test_last_layer_hessian_equals_a_finite_difference_hessian(n, h, c, seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, h))
    labels = rng.integers(0, c, n)
    theta = rng.normal(size=c * h + c)
    w, b = theta[:c * h].reshape(c, h), theta[c * h:]
    hessian = B.last_layer_hessian(features, B.softmax(features @ w.T + b))
    eps = 1e-4
    p = theta.size
    reference = np.empty((p, p))
    for i in range(p):
        for j in range(p):
            e_i, e_j = np.eye(p)[i] * eps, np.eye(p)[j] * eps
            reference[i, j] = (_summed_nll(theta + e_i + e_j, features, labels, c)
                               - _summed_nll(theta + e_i - e_j, features, labels, c)
                               - _summed_nll(theta - e_i + e_j, features, labels, c)
                               + _summed_nll(theta - e_i - e_j, features, labels, c)) / (4 * eps ** 2)
    # second differences: truncation O(eps²) ≈ 1e-8, rounding ≈ 1e-16 · N / eps² ≈ 1e-7
    assert np.max(np.abs(hessian - reference)) < 1e-5 * max(1.0, np.max(np.abs(reference)))
    assert np.allclose(hessian, hessian.T) and np.linalg.eigvalsh(hessian).min() > -1e-10


def test_laplace_with_a_huge_prior_precision_predicts_the_map_network(task):
    fitted = B.fit_method("map", task, TINY, 0)
    model = fitted.predictor.model
    h = np.asarray(model.forward(task.x_train).activations[-2], np.float64)
    hessian = B.last_layer_hessian(h, B.softmax(np.asarray(model.forward(task.x_train).activations[-1], np.float64)))
    laplace = B.LaplacePredictor(model, hessian, 1e12, num_samples=3)
    map_probs = fitted.predictor.probabilities(task.x_test, None)
    # posterior std 1e-6 around the map weights: predictions agree to float32 rounding of the logits
    assert np.max(np.abs(laplace.probabilities(task.x_test, np.random.default_rng(0)) - map_probs)) < 1e-4


def test_laplace_chooses_its_prior_precision_on_the_grid(task):
    fitted = B.fit_method("laplace", task, TINY, 0)
    assert dict(fitted.details)["prior_precision"] in B.LAPLACE_PRIOR_PRECISIONS
    map_model = B.fit_method("map", task, TINY, 0).predictor.model
    # the same seed gives the same network for map and the post-hoc methods
    assert np.array_equal(fitted.predictor.model.layers[0].params["weight"], map_model.layers[0].params["weight"])


# --- ensembles ---------------------------------------------------------------------------------

def test_ensemble_equals_the_mean_of_its_members_predictions(task):
    fitted = B.fit_method("ensemble", task, TINY, 0)
    members = fitted.predictor.members
    assert len(members) == TINY.ensemble_size
    expected = np.mean([predict(m.model, task.x_test, "softmax_ce", 1).mean for m in members], axis=0)
    assert np.allclose(fitted.predictor.probabilities(task.x_test, np.random.default_rng(0)), expected, atol=1e-12)
    weights = [m.model.layers[0].params["weight"] for m in members]
    assert not np.allclose(weights[0], weights[1])  # independent initializations
    assert fitted.num_parameters == TINY.ensemble_size * members[0].model.num_parameters()


# --- SWAG ---------------------------------------------------------------------------------------

@given(count=st.integers(2, 9), size=st.integers(1, 12), rank=st.integers(2, 12), seed=st.integers(0, 2 ** 32 - 1))
def test_swag_moments_equal_numpys_over_the_stored_iterates(count, size, rank, seed):
    iterates = np.random.default_rng(seed).normal(size=(count, size))
    collector = B.SWAGCollector(size, rank)
    for theta in iterates:
        collector.add(theta)
    moments = collector.moments()
    assert np.allclose(moments.mean, iterates.mean(axis=0), atol=1e-12)
    assert np.allclose(moments.diagonal, iterates.var(axis=0), atol=1e-12)
    kept = iterates[-rank:]
    assert np.allclose(moments.deviations, (kept - iterates.mean(axis=0)).T, atol=1e-12)
    if count <= rank:  # every iterate kept: D Dᵀ/(K − 1) is NumPy's sample covariance
        k = moments.deviations.shape[1]
        cov = moments.deviations @ moments.deviations.T / (k - 1)
        assert np.allclose(cov, np.atleast_2d(np.cov(iterates.T)), atol=1e-12)


def test_swag_samples_have_the_stated_mean_and_covariance():
    iterates = np.random.default_rng(1).normal(size=(5, 3)) * [1.0, 2.0, 0.5]
    collector = B.SWAGCollector(3, 5)
    for theta in iterates:
        collector.add(theta)
    moments = collector.moments()
    rng = np.random.default_rng(2)
    draws = np.stack([moments.sample(rng) for _ in range(40000)])
    k = moments.deviations.shape[1]
    expected = np.diag(moments.diagonal) / 2 + moments.deviations @ moments.deviations.T / (2 * (k - 1))
    scale = np.sqrt(np.diag(expected))
    # 40 000 draws: standard errors of the mean and of each covariance entry below 1 % of the scale
    assert np.all(np.abs(draws.mean(0) - moments.mean) < 0.03 * scale)
    assert np.all(np.abs(np.cov(draws.T) - expected) < 0.05 * np.outer(scale, scale))


def test_swag_snapshots_the_last_epochs_of_the_map_run(task):
    fitted = B.fit_method("swag", task, B.Recipe(width=16, depth=1, epochs=6, batch_size=64, num_samples=4,
                                                 swag_rank=3, swag_fraction=0.5), 0)
    details = dict(fitted.details)
    assert details["snapshots"] == 3 and details["swag_rank"] == 3
    probs = fitted.predictor.probabilities(task.x_test, np.random.default_rng(0))
    assert probs.shape == (60, 10) and np.allclose(probs.sum(1), 1)
    # sampling leaves the network at the SWAG mean
    assert np.allclose(B._flat_parameters(fitted.predictor.model), fitted.predictor.moments.mean, atol=1e-6)


def test_swag_needs_two_snapshots():
    collector = B.SWAGCollector(2)
    collector.add([1.0, 2.0])
    with pytest.raises(ValueError, match="at least two snapshots"):
        collector.moments()
    with pytest.raises(ValueError, match="invalid theta: expected a vector of length 2"):
        collector.add([1.0])


# --- every method -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", B.METHODS)
def test_every_method_trains_and_predicts_probabilities(method, task):
    fitted = B.fit_method(method, task, TINY, 0)
    probs = fitted.predictor.probabilities(task.x_test, np.random.default_rng(0))
    assert probs.shape == (60, 10) and np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1)
    assert fitted.epochs == TINY.epochs and fitted.train_seconds > 0 and fitted.seconds_per_epoch > 0
    assert dict(fitted.details)["lr"] <= TINY.lr
    variational = method in ("mfvi", "ibvi", "ibvi-sampled", "ibvi-output")
    assert (fitted.variational_share > 0) == variational
    assert B.METHOD_DESCRIPTIONS[method]


def test_shares_of_variational_parameters():
    from variational_nets.model import MLP

    sizes = (784, 128, 128, 10)
    p = [128 * 785, 128 * 129, 10 * 129]
    both = MLP(sizes, np.random.default_rng(0), covariance="lowrank", rank=2)
    out = MLP(sizes, np.random.default_rng(0), variational="output", covariance="lowrank", rank=2)
    assert B.variational_share(both) == pytest.approx((p[0] + p[2]) / sum(p))
    assert B.variational_share(out) == pytest.approx(p[2] / sum(p))


def test_a_diverging_run_is_retried_with_half_the_step(task, monkeypatch):
    calls = []
    real = B._fit

    def diverge_twice(method, spec, dataset, recipe, seed):
        calls.append(recipe.lr)
        if len(calls) <= 2:
            raise TrainingDiverged(3, math.inf)
        return real(method, spec, dataset, recipe, seed)

    monkeypatch.setattr(B, "_fit", diverge_twice)
    fitted = B.fit_method("map", task, TINY, 0)
    assert calls == [TINY.lr, TINY.lr / 2, TINY.lr / 4] and dict(fitted.details)["lr"] == TINY.lr / 4
    calls.clear()
    monkeypatch.setattr(B, "_fit", lambda *a: (calls.append(1), (_ for _ in ()).throw(TrainingDiverged(1, 1e9)))[1])
    with pytest.raises(TrainingDiverged):
        B.fit_method("map", task, TINY, 0)
    assert len(calls) == B.MAX_HALVINGS + 1


def test_peak_training_memory_orders_the_methods(task):
    peak = {m: B.training_peak_bytes(m, task, TINY) for m in ("map", "ibvi-output", "ibvi", "ensemble", "swag")}
    assert peak["map"] < peak["ibvi-output"] < peak["ibvi"]
    assert peak["ensemble"] > peak["map"] and peak["swag"] > peak["map"]
    assert B.training_peak_bytes("map", task, TINY) == pytest.approx(peak["map"], rel=0.01)  # repeatable


@pytest.mark.parametrize("call,error,match", [
    (lambda t: B.fit_method("sgld", t, TINY, 0), ValueError, "invalid method: expected one of map"),
    (lambda t: B.fit_method("map", t, TINY, -1), ValueError, "invalid seed"),
    (lambda t: B.fit_method("map", t, {"width": 3}, 0), TypeError, "invalid recipe"),
    (lambda t: B.fit_method("map", None, TINY, 0), TypeError, "invalid dataset"),
    (lambda t: B.Recipe(width=0), ValueError, "invalid width"),
    (lambda t: B.Recipe(swag_fraction=0), ValueError, "invalid swag_fraction"),
    (lambda t: B.Recipe(momentum=1.0), ValueError, "invalid momentum"),
    (lambda t: B.fit_temperature([[1.0, 2.0]], [2]), ValueError, "invalid labels"),
    (lambda t: B.last_layer_hessian(np.ones((3, 2)), np.ones((2, 2)) / 2), ValueError, "invalid probs"),
])
def test_bad_input_names_the_argument(task, call, error, match):
    with pytest.raises(error, match=match):
        call(task)
