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

from .backend import asarray, to_numpy
from .layers import FactorGrad
from .losses import get_loss
from .optim import sgd

EXPECTATIONS = ("closed-form", "mc")


class TrainingDiverged(RuntimeError):
    """The objective became NaN/inf or exceeded ``max_loss``; ``step`` is the 1-based step."""

    def __init__(self, step: int, value: float, epoch: int | None = None):
        where = f"step {step}" + (f" (epoch {epoch})" if epoch is not None else "")
        super().__init__(f"training diverged at {where}: objective = {value!r}; "
                         "try a smaller --lr")
        self.step, self.value, self.epoch = step, value, epoch


@dataclass(frozen=True)
class Objective:
    """What a step minimises: ``loss`` (name in :data:`~variational_nets.losses.LOSSES`),
    its expectation over the last layer (``"closed-form"`` or ``"mc"``), and the weight of the
    KL term (0 for IBVI and the deterministic network)."""

    loss: str
    expectation: str = "closed-form"
    kl_weight: float = 0.0
    max_loss: float = 1e6

    def __post_init__(self):
        get_loss(self.loss)
        if self.expectation not in EXPECTATIONS:
            raise ValueError(f"invalid expectation: expected one of {', '.join(EXPECTATIONS)}, "
                             f"got {self.expectation!r}")
        if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise ValueError(f"invalid kl_weight: expected a finite number >= 0, got {self.kl_weight!r}")


@dataclass
class TrainState:
    """Optimizer state and objective of a training run (mutated by :func:`train_step`)."""

    optimizer: object
    objective: Objective


@dataclass(frozen=True)
class StepResult:
    """Objective of one step (before its update) and the KL part of it."""

    objective: float
    kl: float


@dataclass(frozen=True)
class TrainHistory:
    """Mean objective per epoch, number of steps and wall time in seconds."""

    epoch_objective: tuple
    steps: int
    seconds: float


def train_state(model, lr, momentum=0.9, loss="squared_error", expectation="closed-form",
                kl_weight=0.0, max_loss=1e6, fused=True, factor_momentum="exact") -> TrainState:
    """A fresh training state (zero momentum buffers) for ``model``; ValueError on bad input.

    ``fused`` chooses the fused CUDA kernel for covariance-factor updates on CuPy;
    ``factor_momentum="bfloat16"`` stores the factors' momentum buffers in bfloat16 (see
    :func:`~variational_nets.optim.sgd`).
    """
    return TrainState(sgd(model, lr, momentum, fused=fused, factor_momentum=factor_momentum),
                      Objective(loss, expectation, float(kl_weight), float(max_loss)))


def loss_and_grads(model, xb, yb, objective: Objective, noise):
    """Objective value, KL part and gradients of every tensor at the weight sample ``noise``."""
    loss = get_loss(objective.loss)
    if objective.expectation == "closed-form":
        fp = model.forward(xb, noise, closed_form=True)
        lv = loss.closed(fp.activations[-1], fp.variance, yb)
        grads = model.backward(fp, lv.dm, lv.dv)
    else:
        fp = model.forward(xb, noise)
        lv = loss.sampled(fp.activations[-1], yb)
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

    Raises
    ------
    TrainingDiverged
        When the objective is NaN/inf or above ``state.objective.max_loss`` (no update done).
    """
    noise = model.sample_noise(rng) if model.is_variational else None
    value, kl, grads = loss_and_grads(model, xb, yb, state.objective, noise)
    if not math.isfinite(value) or value > state.objective.max_loss:
        raise TrainingDiverged(state.optimizer.steps + 1, value)
    state.optimizer.step(model, grads)
    return StepResult(value, kl)


def _check_data(model, x, y, name="x"):
    if x.ndim != 2 or x.shape[1] != model.sizes[0]:
        raise ValueError(f"invalid {name}: expected shape (N, {model.sizes[0]}), got {tuple(x.shape)}")
    if y is not None and y.shape[0] != x.shape[0]:
        raise ValueError(f"invalid targets: {y.shape[0]} rows for {x.shape[0]} inputs")
    if not np.all(np.isfinite(to_numpy(x))):
        raise ValueError(f"invalid {name}: contains NaN or inf")


def fit(model, state: TrainState, x, y, epochs: int, batch_size: int, rng, quiet=False,
        progress=print, progress_every=None) -> TrainHistory:
    """Train for ``epochs`` passes over ``(x, y)`` in shuffled mini-batches (last one smaller).

    Prints ``epoch e/E  objective ...`` every ``progress_every`` epochs (default: 10 lines per
    run) unless ``quiet``. ``x``, ``y`` may be NumPy arrays; they are moved to the model's backend.

    Raises
    ------
    ValueError
        Non-positive epochs or batch size, shapes that do not match the model, NaN/inf inputs.
    TrainingDiverged
        With the step and epoch at which the objective became NaN/inf or exploded.
    """
    for name, value in (("epochs (--epochs)", epochs), ("batch size (--batch-size)", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"invalid {name}: expected a positive integer, got {value!r}")
    _check_data(model, x, y)
    xp = model.xp
    x = asarray(x, xp, model.dtype)
    y = asarray(y, xp, None if get_loss(state.objective.loss).name == "softmax_ce" else model.dtype)
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

    ``mean``: regression — mean network output (N, d_out); classification — probabilities
    averaged over the samples (N, C). ``std``: standard deviation over the samples of the output
    (regression) or of the probabilities (classification), ``ddof=0``; zero for a deterministic
    network.
    """

    mean: np.ndarray
    std: np.ndarray
    num_samples: int


def _probabilities(xp, f, loss_name):
    if loss_name == "softmax_ce":
        e = xp.exp(f - f.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p = 0.5 * (1.0 + xp.tanh(0.5 * f[:, :1]))
    return xp.concatenate([1.0 - p, p], axis=1)


def predict(model, x, loss: str, num_samples: int = 16, rng=None, batch_size: int = 2048) -> Prediction:
    """Predictive mean and spread over ``num_samples`` weight samples.

    Each sample draws the noise of every variational layer once and applies it to all rows of
    ``x``; classification averages *probabilities* (softmax, or sigmoid for ``binary_ce``, which
    gives two columns ``[1 − p, p]``). A deterministic network uses one pass.
    Cost ``num_samples`` forward passes.

    Raises
    ------
    ValueError
        Non-positive ``num_samples``, wrong input shape, NaN/inf inputs, or a variational model
        without ``rng``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise ValueError(f"invalid num_samples: expected a positive integer, got {num_samples!r}")
    _check_data(model, x, None)
    get_loss(loss)
    xp = model.xp
    if not model.is_variational:
        num_samples = 1
    elif rng is None:
        raise ValueError("predict needs an rng for a variational model")
    noises = [model.sample_noise(rng) if model.is_variational else None for _ in range(num_samples)]
    means, sqs = [], []
    for lo in range(0, x.shape[0], batch_size):
        xb = asarray(x[lo:lo + batch_size], xp, model.dtype)
        s1 = s2 = 0.0
        for noise in noises:
            f = model.forward(xb, noise).activations[-1].astype(np.float64)
            out = f if loss == "squared_error" else _probabilities(xp, f, loss)
            s1 = s1 + out
            s2 = s2 + out * out
        mean = s1 / num_samples
        means.append(to_numpy(mean))
        sqs.append(to_numpy(xp.sqrt(xp.maximum(s2 / num_samples - mean * mean, 0.0))))
    return Prediction(np.concatenate(means), np.concatenate(sqs), num_samples)
