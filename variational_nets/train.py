"""Training: IBVI (expected loss only), the deterministic baseline and mean-field VI (ELBO).

One trainer loop serves all three methods; they differ only in the model and the objective:

* ``ibvi``: variational input/output layers, objective = expected loss (closed-form last layer
  or Monte Carlo), no KL, no weight decay; the prior is the initialisation.
* ``map``: the same architecture with every layer deterministic, objective = the loss at the
  mean (no prior term, i.e. the plain network; named after the point-estimate baseline).
* ``vi-kl``: diagonal (mean-field) variational input/output layers, objective =
  expected loss + ``kl_weight`` · KL(q ‖ p), the negative ELBO per training example.

Each step draws one weight sample per mini-batch, shared by the batch (:func:`train_step`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .activations import sigmoid
from .backend import asarray, to_numpy
from .covariances import FactorGrad
from .losses import get_loss
from .model import MLP
from .optim import SGD, sgd
from .validation import (as_array, as_choice, as_float, as_flag, as_generator,
                         as_int, as_labels, bad_type, bad_value, check_memory)

__all__ = ["TrainingDiverged", "Objective", "TrainState", "StepResult", "TrainHistory",
           "Prediction", "EXPECTATIONS", "train_state", "loss_and_grads", "train_step", "fit",
           "predict", "check_inputs", "check_targets"]

EXPECTATIONS = ("closed-form", "mc")


class TrainingDiverged(RuntimeError):
    """The objective became NaN/inf or exceeded ``max_loss``.

    Parameters
    ----------
    step : int
        The 1-based step whose objective diverged (no update was made).
    value : float
        That objective.
    epoch : int, optional
        The 1-based epoch, when known.
    """

    def __init__(self, step: int, value: float, epoch: int | None = None):
        where = f"step {step}" + (f" (epoch {epoch})" if epoch is not None else "")
        super().__init__(f"training diverged at {where}: objective = {value!r}; "
                         "try a smaller lr")
        self.step, self.value, self.epoch = step, value, epoch


@dataclass(frozen=True)
class Objective:
    """What a step minimises.

    Parameters
    ----------
    loss : {"squared_error", "softmax_ce", "binary_ce"}
        Name in :data:`~variational_nets.losses.LOSSES`.
    expectation : {"closed-form", "mc"}, default "closed-form"
        The expectation over the last layer: closed form, or at the sampled output.
    kl_weight : float, default 0.0
        Weight of the KL term (0 for IBVI and the deterministic network; finite, ``>= 0``).
    max_loss : float, default 1e6
        An objective above it counts as diverged (positive; ``inf`` for no limit; not NaN).

    Raises
    ------
    ValueError, TypeError
        ``invalid <field>: ...`` for a bad field.
    """

    loss: str
    expectation: str = "closed-form"
    kl_weight: float = 0.0
    max_loss: float = 1e6

    def __post_init__(self):
        get_loss(self.loss)
        as_choice("expectation", self.expectation, EXPECTATIONS)
        object.__setattr__(self, "kl_weight", as_float("kl_weight", self.kl_weight, low=0))
        object.__setattr__(self, "max_loss", as_float("max_loss", self.max_loss, low=0,
                                                      low_open=True, allow_inf=True))


@dataclass
class TrainState:
    """Optimizer state and objective of a training run (mutated by :func:`train_step`).

    Parameters
    ----------
    optimizer : SGD
    objective : Objective
    """

    optimizer: object
    objective: Objective


@dataclass(frozen=True)
class StepResult:
    """Objective of one step (before its update) and the KL part of it.

    Parameters
    ----------
    objective, kl : float
    """

    objective: float
    kl: float


@dataclass(frozen=True)
class TrainHistory:
    """Mean objective per epoch, number of steps and wall time in seconds.

    Parameters
    ----------
    epoch_objective : tuple of float
    steps : int
    seconds : float
    """

    epoch_objective: tuple
    steps: int
    seconds: float


def train_state(model, lr, momentum=0.9, loss="squared_error", expectation="closed-form",
                kl_weight=0.0, max_loss=1e6, fused=True, factor_momentum="exact") -> TrainState:
    """A fresh training state (zero momentum buffers) for ``model``.

    Parameters
    ----------
    model : MLP
        The network to train; its tensors carry their step multipliers.
    lr : float
        Base step size (positive, finite), as for :func:`~variational_nets.optim.sgd`.
    momentum : float, default 0.9
        As for :func:`~variational_nets.optim.sgd`.
    loss, expectation, kl_weight, max_loss
        The :class:`Objective`.
    fused : bool, default True
        The fused CUDA kernel for covariance-factor updates on CuPy.
    factor_momentum : {"exact", "bfloat16"}, default "exact"
        Store the factors' momentum buffers in bfloat16 (see :func:`~variational_nets.optim.sgd`).

    Returns
    -------
    TrainState
        The optimizer (zero momentum buffers) and the objective it minimizes.

    Raises
    ------
    ValueError, TypeError
        For a model that is not an MLP and the optimizer's and objective's bad arguments
        (named in the message).
    """
    _check_model(model)
    objective = Objective(loss, expectation, kl_weight, max_loss)
    return TrainState(sgd(model, lr, momentum, fused=fused, factor_momentum=factor_momentum),
                      objective)


def _check_model(model):
    if not isinstance(model, MLP):
        raise bad_type("model", "an MLP", model)


def _check_state(model, state):
    if not isinstance(state, TrainState) or not isinstance(state.optimizer, SGD):
        raise bad_type("state", "a TrainState from train_state(model, ...)", state)
    if state.optimizer.model_id not in (None, id(model)):
        raise bad_value("state", "the training state of this model (train_state(model, ...))",
                        got="a state built for another model")


def check_inputs(model, x, name: str = "x"):
    """Inputs for ``model``: a finite, non-empty 2-D array with ``sizes[0]`` columns.

    Parameters
    ----------
    model : MLP
    x : array_like (N, d_in)
        NumPy or CuPy array, or nested lists (converted).
    name : str, default "x"
        The argument's name in messages.

    Returns
    -------
    array
        ``x`` as an array (NumPy or CuPy, as given).

    Raises
    ------
    ValueError, TypeError
        Naming ``name``: wrong shape or type, empty, NaN/inf.
    """
    x = as_array(name, x, ndim=2)
    if x.shape[1] != model.sizes[0]:
        raise bad_value(name, f"shape (N, {model.sizes[0]}) for this model", got=f"shape {tuple(x.shape)}")
    limit = float(np.finfo(model.dtype).max)
    if x.dtype.kind == "f" and float(abs(x).max()) > limit:
        raise bad_value(name, f"values within the model's {model.dtype} range (|x| <= {limit:.3g})",
                        got=f"|x| up to {float(abs(x).max()):.3g}")
    return x


def check_targets(model, y, loss: str, rows: int, name: str = "y"):
    """Targets for ``model`` and ``loss``, one per input row.

    * ``"squared_error"``: finite floats of shape ``(N, d_out)``;
    * ``"softmax_ce"``: integer labels ``(N,)`` in ``0 .. d_out − 1`` (``d_out ≥ 2``);
    * ``"binary_ce"``: labels ``(N,)`` or ``(N, 1)`` in {0, 1} for a model with ``d_out = 1``.

    Parameters
    ----------
    model : MLP
    y : array_like
    loss : str
    rows : int
        ``N``, the number of input rows.
    name : str, default "y"

    Returns
    -------
    array
        ``y`` as an array (labels as int64).

    Raises
    ------
    ValueError, TypeError
        Naming ``name``, or ``loss`` when the model's output does not fit the loss.
    """
    d_out = model.sizes[-1]
    get_loss(loss)
    if loss == "squared_error":
        y = as_array(name, y, ndim=2)
        if tuple(y.shape) != (rows, d_out):
            raise bad_value(name, f"shape ({rows}, {d_out}): one row of {d_out} target(s) per "
                                  "input", got=f"shape {tuple(y.shape)}")
        return y
    if loss == "softmax_ce":
        if d_out < 2:
            raise bad_value("loss", "'binary_ce' or 'squared_error' for a model with one output "
                                    "(softmax needs at least two)", loss)
        labels = as_labels(name, y, d_out)
    else:
        if d_out != 1:
            raise bad_value("loss", f"'softmax_ce' or 'squared_error' for a model with {d_out} "
                                    "outputs (binary_ce needs one)", loss)
        y_arr = as_array(name, y, ndim=2 if np.ndim(y) == 2 else 1)
        if y_arr.ndim == 2 and y_arr.shape[1] != 1:
            raise bad_value(name, "binary labels of shape (N,) or (N, 1)", got=f"shape {y_arr.shape}")
        labels = as_labels(name, y_arr.reshape(-1), 2)
    if labels.shape[0] != rows:
        raise bad_value(name, f"{rows} labels, one per input", got=f"{labels.shape[0]}")
    return labels


def loss_and_grads(model, xb, yb, objective: Objective, noise):
    """Objective value, KL part and gradients of every tensor at the weight sample ``noise``.

    Parameters
    ----------
    model : MLP
    xb : array (B, d_in)
    yb : targets (see :func:`check_targets`)
    objective : Objective
    noise : tuple or None
        From ``model.sample_noise``.

    Returns
    -------
    (float, float, dict)
        Objective, KL part and the gradients keyed like ``model.named_parameters()``;
        ``(nan, 0.0, {})`` when the forward pass overflowed (a diverging run).
    """
    loss = get_loss(objective.loss)
    closed = objective.expectation == "closed-form"
    # an overflow (a diverging run) is a non-finite objective, which train_step reports
    with np.errstate(over="ignore", invalid="ignore"):
        fp = model.forward(xb, noise, closed_form=closed)
        out = fp.activations[-1]
        if not _all_finite(model.xp, out, fp.variance):
            return math.nan, 0.0, {}
        if closed:
            lv = loss.closed(out, fp.variance, yb)
            grads = model.backward(fp, lv.dm, lv.dv)
        else:
            lv = loss.sampled(out, yb)
            grads = model.backward(fp, lv.dm)
    kl = 0.0
    if objective.kl_weight > 0:
        kl, kl_grads = model.kl()
        for name, g in kl_grads.items():
            mine = grads[name]
            if isinstance(mine, FactorGrad):  # only diagonal layers have a KL; keep the guard
                raise ValueError("a KL term needs diagonal covariances")
            grads[name] = mine + objective.kl_weight * g
    return lv.value + objective.kl_weight * kl, kl, grads


def train_step(model, state: TrainState, xb, yb, rng) -> StepResult:
    """One step of momentum SGD on a mini-batch, with one weight sample shared by the batch.

    Parameters
    ----------
    model : MLP
    state : TrainState
    xb : array (B, d_in) of the model's backend
    yb : targets of the model's backend (see :mod:`variational_nets.losses`)
    rng : numpy.random.Generator
        Draws the weight sample ``z`` (host side).

    Returns
    -------
    StepResult

    Raises
    ------
    TrainingDiverged
        When the objective is NaN/inf or above ``state.objective.max_loss`` (no update done).
    ValueError, TypeError
        For a state of another model, a batch whose shape does not fit the model, or an
        ``rng`` that is not a Generator. (Entries are not scanned for NaN here, on the hot
        path: a NaN input gives a NaN objective, which raises TrainingDiverged.)
    """
    _check_model(model)
    _check_state(model, state)
    as_generator("rng", rng)
    _check_batch(model, xb, yb, state.objective.loss)
    noise = model.sample_noise(rng) if model.is_variational else None
    value, kl, grads = loss_and_grads(model, xb, yb, state.objective, noise)
    if not math.isfinite(value) or value > state.objective.max_loss:
        raise TrainingDiverged(state.optimizer.steps + 1, value)
    state.optimizer.step(model, grads)
    return StepResult(value, kl)


def _all_finite(xp, *arrays) -> bool:
    return all(bool(xp.isfinite(a).all()) for a in arrays if a is not None)


def _check_batch(model, xb, yb, loss):
    # shapes only (O(1)): train_step is the inner loop
    for name, a in (("xb", xb), ("yb", yb)):
        if not hasattr(a, "shape"):
            raise bad_type(name, "an array of the model's backend", a)
    if len(xb.shape) != 2 or xb.shape[0] == 0 or xb.shape[1] != model.sizes[0]:
        raise bad_value("xb", f"shape (B, {model.sizes[0]}) with B >= 1", got=f"shape {tuple(xb.shape)}")
    d_out = model.sizes[-1]
    if loss == "squared_error":
        wanted = ((xb.shape[0], d_out),)
    elif loss == "softmax_ce":
        wanted = ((xb.shape[0],),)
    else:
        wanted = ((xb.shape[0],), (xb.shape[0], 1))
    if tuple(yb.shape) not in wanted:
        raise bad_value("yb", f"shape {wanted[0]} for loss {loss!r}", got=f"shape {tuple(yb.shape)}")


def fit(model, state: TrainState, x, y, epochs: int, batch_size: int, rng, quiet=False,
        progress=print, progress_every=None) -> TrainHistory:
    """Train for ``epochs`` passes over ``(x, y)`` in shuffled mini-batches (last one smaller).

    Parameters
    ----------
    model : MLP
    state : TrainState
        From :func:`train_state` for this model.
    x : array_like (N, d_in)
        NumPy or CuPy array or nested lists; moved to the model's backend.
    y : array_like
        Targets for the state's loss (see :func:`check_targets`).
    epochs, batch_size : int
        Positive.
    rng : numpy.random.Generator
        Shuffles the rows and draws the weight samples.
    quiet : bool, default False
    progress : callable, default print
        Receives ``epoch e/E  objective ...`` every ``progress_every`` epochs (default: 10
        lines per run) unless ``quiet``.
    progress_every : int, optional

    Returns
    -------
    TrainHistory
        The mean objective per epoch, the step count and the wall time.

    Raises
    ------
    ValueError, TypeError
        Non-positive epochs or batch size, shapes that do not match the model, NaN/inf or empty
        inputs, labels outside the loss's range, a state of another model, a non-Generator
        ``rng``.
    TrainingDiverged
        With the step and epoch at which the objective became NaN/inf or exploded.
    """
    _check_model(model)
    _check_state(model, state)
    epochs = as_int("epochs", epochs)
    batch_size = as_int("batch_size", batch_size)
    as_generator("rng", rng)
    quiet = as_flag("quiet", quiet)
    if not callable(progress):
        raise bad_type("progress", "a callable (print, list.append)", progress)
    if progress_every is not None:
        progress_every = as_int("progress_every", progress_every)
    x = check_inputs(model, x)
    loss_name = state.objective.loss
    y = check_targets(model, y, loss_name, x.shape[0])
    xp = model.xp
    x = asarray(x, xp, model.dtype)
    y = asarray(y, xp, None if loss_name == "softmax_ce" else model.dtype)
    n = x.shape[0]
    every = progress_every or max(1, epochs // 10)
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm = xp.asarray(rng.permutation(n))
        total, count = 0.0, 0
        for lo in range(0, n, batch_size):
            idx = perm[lo:lo + batch_size]
            try:
                result = train_step(model, state, x[idx], y[idx], rng)
            except TrainingDiverged as err:
                raise TrainingDiverged(err.step, err.value, epoch) from None
            total += result.objective * idx.shape[0]
            count += idx.shape[0]
        history.append(total / count)
        if not quiet and (epoch % every == 0 or epoch == epochs):
            progress(f"epoch {epoch:>5d}/{epochs}  objective {history[-1]:.5g}  "
                     f"({time.perf_counter() - start:.1f} s)")
    return TrainHistory(tuple(history), state.optimizer.steps, time.perf_counter() - start)


@dataclass(frozen=True)
class Prediction:
    """Predictive summary over ``num_samples`` weight samples (NumPy arrays).

    Parameters
    ----------
    mean : numpy.ndarray
        Regression: mean network output (N, d_out); classification: probabilities averaged
        over the samples (N, C).
    std : numpy.ndarray
        Standard deviation over the samples of the output (regression) or of the probabilities
        (classification), ``ddof=0``; zero for a deterministic network.
    num_samples : int
    """

    mean: np.ndarray
    std: np.ndarray
    num_samples: int


def _probabilities(xp, f, loss_name):
    if loss_name == "softmax_ce":
        e = xp.exp(f - f.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p = sigmoid(xp, f[:, :1])
    return xp.concatenate([1.0 - p, p], axis=1)


def predict(model, x, loss: str, num_samples: int = 16, rng=None, batch_size: int = 2048) -> Prediction:
    """Predictive mean and spread over ``num_samples`` weight samples.

    Each sample draws the noise of every variational layer once and applies it to all rows of
    ``x``; classification averages *probabilities* (softmax, or sigmoid for ``binary_ce``, which
    gives two columns ``[1 − p, p]``). A deterministic network uses one pass.
    Cost ``num_samples`` forward passes.

    Parameters
    ----------
    model : MLP
    x : array_like (N, d_in)
    loss : {"squared_error", "softmax_ce", "binary_ce"}
        Decides what is averaged (outputs, softmax or sigmoid probabilities).
    num_samples : int, default 16
    rng : numpy.random.Generator
        Required for a variational model.
    batch_size : int, default 2048
        Rows per forward pass.

    Returns
    -------
    Prediction
        The mean and the spread over the ``num_samples`` weight samples.

    Raises
    ------
    ValueError, TypeError
        Non-positive ``num_samples`` or ``batch_size``, wrong input shape, NaN/inf or empty
        inputs, a loss that does not fit the model's outputs, or a variational model without a
        Generator ``rng``.
    """
    _check_model(model)
    num_samples = as_int("num_samples", num_samples)
    batch_size = as_int("batch_size", batch_size)
    x = check_inputs(model, x)
    get_loss(loss)
    d_out = model.sizes[-1]
    if (loss == "softmax_ce" and d_out < 2) or (loss == "binary_ce" and d_out != 1):
        raise bad_value("loss", f"a loss that fits a model with {d_out} output(s)", loss)
    xp = model.xp
    if rng is not None or model.is_variational:
        if rng is None:
            raise ValueError("invalid rng: predict needs a numpy.random.Generator for a "
                             "variational model, got None")
        as_generator("rng", rng)
    if not model.is_variational:
        num_samples = 1
    noise_size = sum(layer.n_out * (layer.n_in + 1) for layer in model.layers if layer.variational)
    check_memory("num_samples", num_samples * noise_size * model.dtype.itemsize,
                 f"{num_samples} weight samples")
    noises = [model.sample_noise(rng) if model.is_variational else None for _ in range(num_samples)]
    means, sqs = [], []
    for lo in range(0, x.shape[0], batch_size):
        xb = asarray(x[lo:lo + batch_size], xp, model.dtype)
        s1 = s2 = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            for noise in noises:
                f = model.forward(xb, noise).activations[-1].astype(np.float64)
                out = f if loss == "squared_error" else _probabilities(xp, f, loss)
                s1 = s1 + out
                s2 = s2 + out * out
        mean = s1 / num_samples
        if not _all_finite(xp, mean, s2):
            raise bad_value("x", "inputs for which the network's outputs are finite",
                            got=f"rows {lo}..{lo + xb.shape[0] - 1} that overflow it")
        means.append(to_numpy(mean))
        sqs.append(to_numpy(xp.sqrt(xp.maximum(s2 / num_samples - mean * mean, 0.0))))
    return Prediction(np.concatenate(means), np.concatenate(sqs), num_samples)
