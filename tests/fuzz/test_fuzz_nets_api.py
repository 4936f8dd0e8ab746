"""Fuzzing the public Python API of variational_nets.

Every public entry point is called with valid arguments in which one or two are replaced by a
value drawn from a pool of bad and extreme ones (None, booleans, negative/zero/huge integers,
NaN, ±inf, 1e308, strings, lists, empty arrays, arrays of the wrong shape, dtype or
dimension, NaN arrays, legacy RandomState, arbitrary objects). Each call must either

* return a result that passes the entry point's check (finite values of the right shape), or
* raise ``ValueError`` / ``TypeError`` whose message names one of the replaced arguments (or an
  argument it must agree with, such as ``y`` for ``x``) and no command-line flag, or
* for training, raise ``TrainingDiverged`` (a run whose objective blew up is a result).

Anything else (IndexError, ZeroDivisionError, a NumPy error from deep inside, a silently
accepted bad value whose result is not finite) fails the test with the call that caused it.
"""
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from variational_nets import metrics
from variational_nets.backend import get_xp
from variational_nets.bfloat16 import bfloat16_from_float32, bfloat16_to_float32
from variational_nets.coordcheck import CoordCheckConfig, layer_names
from variational_nets.data import toy_regression, two_moons
from variational_nets.kernels import fused_factor_momentum_update
from variational_nets.losses import binary_ce_closed, softmax_ce, softmax_ce_closed, squared_error
from variational_nets.model import MLP, layer_activations
from variational_nets.optim import sgd, update_factor
from variational_nets.parametrization import Parametrization
from variational_nets.tensors import TensorSpec
from variational_nets.train import TrainingDiverged, fit, predict, train_state, train_step
from variational_nets.transfer import TransferConfig, expected_training_loss, synthetic_task

# --- the pool of bad and extreme values ---------------------------------------------------------

ARRAYS = [np.zeros(0), np.zeros((0, 2)), np.zeros((3, 0)), np.full((4, 2), np.nan),
          np.full((4, 1), np.inf), np.ones((4, 2), complex), np.array(["a", "b"]),
          np.ones((2, 2, 2)), np.ones(4, np.int64), np.ones((4, 1), np.float16),
          np.ones((4, 2)) * 1e308, np.array([[0.5, 0.5]]), np.arange(4) - 1, np.ones((5, 3)),
          np.array([object(), object()])]
WILD = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2, 3, -(10**12), 10**12, 2**63]),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 0.0, 0.5,
                     1.0, 1e-300, 2.5]),
    st.sampled_from(["", "abc", "mup", "float16", "3", "numpy", "cupy"]),
    st.lists(st.floats(-2, 2, allow_nan=False), max_size=4),
    st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=1, max_size=3),
    st.sampled_from(ARRAYS),
    st.sampled_from([np.random.RandomState(0), object(), {}, (), (1, 2), np.float64(2.0),
                     np.int64(2), np.random.default_rng(0)]),
)
#: Counts that make a call run long (epochs, samples, steps) come from this smaller pool: a
#: valid but huge count is a long run, not a bad argument.
COUNT = st.sampled_from([None, True, 0, -1, 1, 2, 2.0, "2", math.nan, math.inf, [2]])
COUNTS = {"epochs", "num_samples", "steps", "progress_every"}

# arguments that must agree with each other: an error may name either
GROUPS = [{"x", "y", "loss"}, {"xb", "yb", "loss"}, {"factor", "buf", "g", "z"},
          {"probs", "labels"}, {"mean", "y", "var"}, {"m", "v", "y", "labels", "t"},
          {"f", "y", "labels", "t"}, {"spec", "role", "fan_in", "fan_out", "kind", "layer"},
          {"model", "state"}, {"sizes", "rank", "covariance", "dtype", "variational"},
          {"num_points", "num_train"}, {"factor_momentum", "dtype"}, {"bits"}]


def _names(replaced):
    names = set(replaced)
    for group in GROUPS:
        if names & group:
            names |= group
    return names


def _finite(*arrays):
    return all(np.all(np.isfinite(np.asarray(a, dtype=float))) for a in arrays)


# --- the entry points: valid arguments and a check of the result ------------------------------

RNG = np.random.default_rng


def _regression():
    model = MLP((2, 5, 1), RNG(0), covariance="lowrank", rank=3, dtype=np.float64)
    return model, RNG(1).standard_normal((6, 2)), RNG(2).standard_normal((6, 1))


def _classifier():
    model = MLP((2, 5, 3), RNG(0), covariance="lowrank", rank=2, dtype=np.float64)
    return model, RNG(1).standard_normal((6, 2)), np.array([0, 1, 2, 0, 1, 2])


def _fit_args():
    model, x, y = _regression()
    return dict(model=model, state=train_state(model, 1e-2), x=x, y=y, epochs=2, batch_size=4,
                rng=RNG(3), quiet=True, progress=print, progress_every=None)


def _fit_check(history, args):
    return len(history.epoch_objective) == args["epochs"] and _finite(history.epoch_objective)


def _predict_args():
    model, x, _ = _classifier()
    return dict(model=model, x=x, loss="softmax_ce", num_samples=3, rng=RNG(4), batch_size=4)


def _predict_check(pred, args):
    n = np.asarray(args["x"]).shape[0]
    return pred.mean.shape == (n, 3) and _finite(pred.mean, pred.std) and \
        np.allclose(pred.mean.sum(1), 1.0)


def _step_args():
    model, x, y = _classifier()
    return dict(model=model, state=train_state(model, 1e-2, loss="softmax_ce"), xb=x, yb=y,
                rng=RNG(5))


def _factor_args():
    rng = RNG(6)
    return dict(factor=rng.standard_normal((3, 2, 4)), buf=np.zeros((3, 2, 4)),
                g=rng.standard_normal((3, 2)), z=rng.standard_normal(4), lr=0.1, momentum=0.9)


def _factor_check(_, args):
    return _finite(args["factor"], args["buf"]) if isinstance(args["factor"], np.ndarray) else True


TARGETS = {
    "MLP": (MLP, lambda: dict(sizes=(2, 4, 1), rng=RNG(0), parametrization="mup",
                              activation="silu", variational="input-output",
                              covariance="lowrank", rank=2, backend="numpy", dtype=np.float32),
            lambda m, a: all(_finite(v) for v in m.named_parameters().values())),
    "train_state": (train_state, lambda: dict(model=_regression()[0], lr=0.1, momentum=0.9,
                                              loss="squared_error", expectation="closed-form",
                                              kl_weight=0.0, max_loss=1e6, fused=True,
                                              factor_momentum="exact"),
                    lambda s, a: math.isfinite(s.optimizer.lr)),
    "sgd": (sgd, lambda: dict(model=_regression()[0], lr=0.1, momentum=0.9, fused=True,
                              factor_momentum="exact"),
            lambda s, a: all(math.isfinite(m) and m > 0 for m in s.multipliers.values())),
    "fit": (fit, _fit_args, _fit_check),
    "predict": (predict, _predict_args, _predict_check),
    "train_step": (train_step, _step_args, lambda r, a: math.isfinite(r.objective)),
    "layer_activations": (layer_activations,
                          lambda: dict(model=_regression()[0], x=RNG(1).standard_normal((3, 2)),
                                       rng=RNG(2)),
                          lambda acts, a: _finite(*acts)),
    "update_factor": (update_factor, lambda: {**_factor_args(), "xp": np, "fused": False},
                      _factor_check),
    "fused_update": (fused_factor_momentum_update, _factor_args, _factor_check),
    "Parametrization": (Parametrization, lambda: dict(name="mup", optimizer="sgd"),
                        lambda p, a: True),
    "init_std": (Parametrization("mup").init_std,
                 lambda: dict(spec="weight", role="hidden", fan_in=3, fan_out=4),
                 lambda v, a: math.isfinite(v) and v > 0),
    "factor_lr": (Parametrization.factor_lr_multiplier,
                  lambda: dict(mean_multiplier=2.0, rank=3), lambda v, a: math.isfinite(v) and v > 0),
    "TensorSpec": (TensorSpec, lambda: dict(kind="weight", layer="output", fan_in=3, fan_out=2,
                                            role="factor", rank=2), lambda s, a: True),
    "accuracy": (metrics.accuracy, lambda: dict(probs=np.array([[0.2, 0.8], [0.6, 0.4]]),
                                                labels=np.array([1, 0])),
                 lambda v, a: 0 <= v <= 1),
    "ece": (metrics.ece, lambda: dict(probs=np.array([[0.2, 0.8], [0.6, 0.4]]),
                                      labels=np.array([1, 1]), n_bins=5),
            lambda v, a: 0 <= v <= 1),
    "gaussian_nll": (metrics.gaussian_nll, lambda: dict(mean=np.zeros(3), var=np.ones(3),
                                                        y=np.ones(3)),
                     lambda v, a: math.isfinite(v)),
    "rmse": (metrics.rmse, lambda: dict(mean=np.zeros((3, 1)), y=np.ones((3, 1))),
             lambda v, a: math.isfinite(v) and v >= 0),
    "softmax_ce_closed": (softmax_ce_closed, lambda: dict(m=np.zeros((3, 4)), v=np.ones((3, 4)),
                                                          labels=np.array([0, 3, 1])),
                          lambda lv, a: math.isfinite(lv.value)),
    "softmax_ce": (softmax_ce, lambda: dict(f=np.zeros((3, 4)), labels=np.array([0, 3, 1])),
                   lambda lv, a: math.isfinite(lv.value)),
    "binary_ce_closed": (binary_ce_closed, lambda: dict(m=np.zeros((3, 1)), v=np.ones((3, 1)),
                                                        t=np.array([0, 1, 1])),
                         lambda lv, a: math.isfinite(lv.value)),
    "squared_error": (squared_error, lambda: dict(f=np.zeros((3, 2)), y=np.ones((3, 2))),
                      lambda lv, a: math.isfinite(lv.value)),
    "toy_regression": (toy_regression, lambda: dict(rng=RNG(0), noise_std=0.02,
                                                    points_per_cluster=4, num_test=5),
                       lambda d, a: _finite(d.x_train, d.y_train, d.x_test, d.y_test)),
    "two_moons": (two_moons, lambda: dict(rng=RNG(0), num_points=20, noise=0.1, num_train=8),
                  lambda d, a: _finite(d.x_train, d.x_test)),
    "synthetic_task": (synthetic_task, lambda: dict(rng=RNG(0), num_train=8, num_test=4, d_in=3,
                                                    num_classes=3),
                       lambda d, a: _finite(d.x_train)),
    "expected_training_loss": (expected_training_loss,
                               lambda: {**dict(zip(("model", "x", "y"), _classifier())),
                                        "loss": "softmax_ce", "num_samples": 2, "rng": RNG(0),
                                        "batch_size": 4},
                               lambda v, a: math.isfinite(v)),
    "CoordCheckConfig": (CoordCheckConfig, lambda: dict(widths=(8, 16), seeds=(0,), steps=1,
                                                        lr=0.1, momentum=0.9, depth=2, d_in=4,
                                                        num_classes=3, batch_size=4, rank=2),
                         lambda c, a: True),
    "TransferConfig": (TransferConfig, lambda: dict(widths=(8, 16), lrs=(0.1, 0.2), seeds=(0,),
                                                    task="synthetic", epochs=1, batch_size=8,
                                                    rank=2, num_samples=2),
                       lambda c, a: True),
    "layer_names": (layer_names, lambda: dict(depth=3), lambda n, a: len(n) == a["depth"] + 1),
    "get_xp": (get_xp, lambda: dict(backend="numpy"), lambda xp, a: xp is np),
    "bfloat16_from_float32": (bfloat16_from_float32, lambda: dict(x=np.ones(3, np.float32)),
                              lambda b, a: b.dtype == np.uint16),
    "bfloat16_to_float32": (bfloat16_to_float32, lambda: dict(bits=np.ones(3, np.uint16)),
                            lambda f, a: f.dtype == np.float32),
}


def _call(target, replace, values):
    fn, make_args, check = TARGETS[target]
    args = make_args()
    names = list(args)
    chosen = [names[i % len(names)] for i in replace]
    for name, value in zip(chosen, values):
        args[name] = value
    try:
        result = fn(**args)
    except TrainingDiverged:
        assert target in ("fit", "train_step"), f"{target}: TrainingDiverged"
        return
    except (ValueError, TypeError) as err:
        message = str(err)
        assert "--" not in message, f"{target}({chosen}): message names a flag: {message}"
        named = _names(chosen)
        assert any(re.search(rf"\b{re.escape(n)}\b", message) for n in named), \
            f"{target} with {dict(zip(chosen, values))!r}: message names none of {sorted(named)}: " \
            f"{type(err).__name__}: {message}"
        return
    assert check(result, args), f"{target} with {dict(zip(chosen, values))!r} returned {result!r}"


@settings(max_examples=2500, suppress_health_check=list(HealthCheck), deadline=None)
@given(data=st.data(), target=st.sampled_from(sorted(TARGETS)))
def test_every_call_succeeds_cleanly_or_names_the_bad_argument(data, target):
    _, make_args, _ = TARGETS[target]
    names = list(make_args())
    k = data.draw(st.integers(1, min(2, len(names))), label="how many")
    replace = data.draw(st.lists(st.integers(0, len(names) - 1), min_size=k, max_size=k,
                                 unique=True), label="which")
    values = [data.draw(COUNT if names[i] in COUNTS else WILD, label=names[i]) for i in replace]
    # a RuntimeWarning (overflow, invalid value, division by zero) is an unclean result too
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _call(target, replace, values)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_valid_arguments_succeed(target):
    """The baseline of the fuzz test: with nothing replaced every entry point succeeds."""
    fn, make_args, check = TARGETS[target]
    args = make_args()
    assert check(fn(**args), args)
