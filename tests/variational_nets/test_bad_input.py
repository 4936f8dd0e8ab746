"""Bad input to the network API raises a clear ValueError/TypeError that names the argument.

Each case is (callable, exception type, regex on the message); the regexes include the
argument's Python name, so a message that does not say *which* input is wrong fails. The first
group are the silent or raw failures a front-door review found (labels out of range, ±1 labels
for the binary loss, a ``g`` of the wrong length, NaN ``max_loss``, 1-D regression targets,
empty inputs, ``batch_size=0``, lists, a state of another model, a rank above the parameter
count).
"""
import math

import numpy as np
import pytest

from variational_nets.backend import asarray, xp_name
from variational_nets.factor_update import update_in_place
from variational_nets.layers import Linear
from variational_nets.losses import binary_ce, softmax_ce_closed, squared_error_closed
from variational_nets.model import MLP
from variational_nets.optim import update_factor
from variational_nets.parametrization import Parametrization
from variational_nets.train import (Objective, TrainingDiverged, fit, loss_and_grads, predict,
                                    train_state, train_step)

RNG = np.random.default_rng
REG = MLP((2, 4, 1), RNG(0), dtype=np.float64)
CLS = MLP((2, 4, 3), RNG(0), dtype=np.float64)
BIN = MLP((2, 4, 1), RNG(1), dtype=np.float64)
X = RNG(1).standard_normal((6, 2))
Y = RNG(2).standard_normal((6, 1))
LABELS = np.array([0, 1, 2, 0, 1, 2])


def _fit(model=REG, x=X, y=Y, loss="squared_error", state=None, **kw):
    state = state or train_state(model, 1e-2, loss=loss)
    args = dict(epochs=1, batch_size=3, rng=RNG(3), quiet=True)
    args.update(kw)
    return fit(model, state, x, y, **args)


FACTOR = dict(factor=np.zeros((3, 2, 4)), buf=np.zeros((3, 2, 4)), g=np.ones((3, 2)), z=np.ones(4))

CASES = {
    # -- the front-door findings ------------------------------------------------------------
    "label -1": (lambda: _fit(CLS, y=np.array([0, 1, -1, 0, 1, 2]), loss="softmax_ce"),
                 ValueError, r"invalid y: expected labels in 0\.\.2, got labels from -1"),
    "label 99": (lambda: _fit(CLS, y=np.array([0, 1, 99, 0, 1, 2]), loss="softmax_ce"),
                 ValueError, r"invalid y: expected labels in 0\.\.2"),
    "binary ±1": (lambda: _fit(BIN, y=np.array([1, -1, 1, -1, 1, 1]), loss="binary_ce"),
                  ValueError, r"invalid y: expected labels in 0\.\.1"),
    "g wrong length": (lambda: update_factor(**{**FACTOR, "g": np.ones((3, 1))}, lr=0.1,
                                             momentum=0.9, xp=np),
                       ValueError, r"invalid g: expected shape \(3, 2\)"),
    "z wrong length": (lambda: update_factor(**{**FACTOR, "z": np.ones(3)}, lr=0.1,
                                             momentum=0.9, xp=np),
                       ValueError, r"invalid z: expected shape \(4,\)"),
    "full g wrong shape": (lambda: update_in_place(FACTOR["factor"], FACTOR["buf"], np.ones((3, 2)),
                                                   None, 0.1, 0.9),
                           ValueError, r"invalid g: expected the factor's shape"),
    "buf dtype": (lambda: update_factor(**{**FACTOR, "buf": np.zeros((3, 2, 4), np.float32)},
                                        lr=0.1, momentum=0.9, xp=np),
                  TypeError, r"invalid buf: expected dtype float64"),
    "factor 0-D": (lambda: update_factor(np.float64(1.0), np.float64(0.0), np.ones(()), None, 0.1,
                                         0.9, np),
                   ValueError, r"invalid factor"),
    "max_loss nan": (lambda: train_state(REG, 1e-2, max_loss=math.nan), ValueError,
                     r"invalid max_loss"),
    "max_loss negative": (lambda: train_state(REG, 1e-2, max_loss=-1.0), ValueError,
                          r"invalid max_loss"),
    "y 1-D regression": (lambda: _fit(y=Y[:, 0]), ValueError, r"invalid y: expected a 2-D array"),
    "y rows": (lambda: _fit(y=Y[:4]), ValueError, r"invalid y: expected shape \(6, 1\)"),
    "empty x": (lambda: _fit(x=np.zeros((0, 2)), y=np.zeros((0, 1))), ValueError,
                r"invalid x: expected a non-empty array"),
    "x too large for float32": (lambda: predict(MLP((2, 4, 1), RNG(0)), np.full((2, 2), 1e300),
                                                "squared_error", rng=RNG(0)),
                                ValueError, r"invalid x: expected values within the model's float32"),
    "predict batch 0": (lambda: predict(REG, X, "squared_error", rng=RNG(0), batch_size=0),
                        ValueError, r"invalid batch_size: expected a positive integer"),
    "predict list rng": (lambda: predict(REG, X.tolist(), "squared_error", rng=[1]), TypeError,
                         r"invalid rng"),
    "predict loss/outputs": (lambda: predict(REG, X, "softmax_ce", rng=RNG(0)), ValueError,
                             r"invalid loss"),
    "x list of strings": (lambda: _fit(x=[["a", "b"]] * 6), TypeError, r"invalid x"),
    "state of another model": (lambda: _fit(state=train_state(MLP((2, 4, 1), RNG(5)), 1e-2)),
                               ValueError, r"invalid state: expected the training state of this model"),
    "state not a state": (lambda: _fit(state=object()), TypeError, r"invalid state"),
    "rank above parameter count": (lambda: MLP((2, 4, 1), RNG(0), covariance="lowrank", rank=13),
                                   ValueError, r"invalid rank: expected an integer in \[1, 12\]"),
    "rng not a Generator": (lambda: MLP((2, 4, 1), 0), TypeError, r"invalid rng"),
    # -- losses, layers, model ------------------------------------------------------------------
    "softmax needs two outputs": (lambda: _fit(BIN, y=np.zeros(6, int), loss="softmax_ce"),
                                  ValueError, r"invalid loss: expected 'binary_ce'"),
    "binary needs one output": (lambda: _fit(CLS, y=np.zeros(6, int), loss="binary_ce"),
                                ValueError, r"invalid loss: expected 'softmax_ce'"),
    "binary 2 columns": (lambda: _fit(BIN, y=np.zeros((6, 2)), loss="binary_ce"), ValueError,
                         r"invalid y: expected binary labels of shape"),
    "binary count": (lambda: _fit(BIN, y=np.zeros(4), loss="binary_ce"), ValueError,
                     r"invalid y: expected 6 labels"),
    "train_step yb shape": (lambda: train_step(CLS, train_state(CLS, 1e-2, loss="softmax_ce"), X,
                                               np.zeros((6, 3)), RNG(0)),
                            ValueError, r"invalid yb: expected shape \(6,\)"),
    "loss v shape": (lambda: squared_error_closed(np.zeros((3, 2)), np.zeros((3, 1)),
                                                  np.zeros((3, 2))),
                     ValueError, r"invalid v: expected the shape of m"),
    "loss y shape": (lambda: squared_error_closed(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3)),
                     ValueError, r"invalid y: expected shape \(3, 2\)"),
    "loss m nan": (lambda: softmax_ce_closed(np.full((3, 2), np.nan), np.zeros((3, 2)),
                                             np.zeros(3, int)),
                   ValueError, r"invalid m: expected finite values"),
    "binary t range": (lambda: binary_ce(np.zeros((3, 1)), np.array([0, 2, 1])), ValueError,
                       r"invalid t: expected integer labels in 0\.\.1"),
    "binary logits": (lambda: binary_ce(np.zeros((3, 2)), np.array([0, 1, 1])), ValueError,
                      r"invalid f: expected one logit per row"),
    "layer parametrization": (lambda: Linear(2, 3, "input", "mup", RNG(0)), TypeError,
                              r"invalid parametrization"),
    "layer rng": (lambda: Linear(2, 3, "input", Parametrization(), 0), TypeError, r"invalid rng"),
    "layer x columns": (lambda: Linear(2, 3, "input", Parametrization(), RNG(0)).forward(np.ones((2, 3))),
                        ValueError, r"invalid x: expected an array of shape \(N, 2\)"),
    "model x columns": (lambda: REG.forward(np.ones((2, 3))), ValueError,
                        r"invalid x: expected an array of shape \(N, 2\)"),
    "model noise": (lambda: REG.forward(X, noise=(None,)), ValueError, r"invalid noise"),
    "backward fp": (lambda: REG.backward(object(), np.ones((6, 1))), TypeError, r"invalid fp"),
    "backward dout": (lambda: REG.backward(REG.forward(X), np.ones((6, 2))), ValueError,
                      r"invalid dout: expected an array of the output's shape"),
    "asarray strings": (lambda: asarray(["a"], np, np.float32), TypeError, r"invalid array"),
    "xp_name": (lambda: xp_name(math), TypeError, r"invalid xp"),
    "parametrization name": (lambda: Parametrization("ntk"), ValueError, r"invalid name"),
    "MLP parametrization name": (lambda: MLP((2, 4, 1), RNG(0), parametrization="ntk"), ValueError,
                                 r"invalid parametrization"),
    "MLP parametrization type": (lambda: MLP((2, 4, 1), RNG(0), parametrization=3), TypeError,
                                 r"invalid parametrization"),
    "MLP sizes type": (lambda: MLP("abc", RNG(0)), TypeError, r"invalid sizes"),
    "MLP sizes memory": (lambda: MLP((10**6, 10**6, 1), RNG(0), covariance="full"), ValueError,
                         r"invalid sizes: .* needs about .* of memory, more than this machine.s"),
    "KL needs diagonal": (lambda: loss_and_grads(REG, X, Y, Objective("squared_error", kl_weight=0.1),
                                                 None),
                          ValueError, r"diagonal"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_names_the_argument(case):
    call, error, match = CASES[case]
    with pytest.raises(error, match=match):
        call()


def test_an_overflowing_forward_pass_is_a_divergence_not_a_usage_error():
    """Finite but huge inputs that make the network overflow: fit reports a divergence, predict
    names ``x``; neither warns."""
    big = np.full((6, 2), 1e300)
    with np.errstate(all="raise"):
        with pytest.raises(TrainingDiverged):
            _fit(x=big)
        with pytest.raises(ValueError, match=r"invalid x: expected inputs for which the network's"):
            predict(REG, big, "squared_error", rng=RNG(0))
