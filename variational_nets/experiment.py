"""End-to-end experiments: data, model, training, evaluation (used by the command line).

:func:`run_experiment` is the Python API of ``python -m variational_nets train``; both validate
their options with the same messages (``invalid <name> (--<option>): expected ..., got ...``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from . import data as data_mod
from .backend import BACKENDS, get_xp
from .layers import ACTIVATIONS, COVARIANCES
from .metrics import classification_metrics, regression_metrics
from .model import MLP
from .optim import FACTOR_MOMENTUM
from .parametrization import PARAMETRIZATIONS
from .train import EXPECTATIONS, fit, predict, train_state

TASKS = ("toy-regression", "two-moons", "digits", "cifar10")
METHODS = ("ibvi", "map", "vi-kl")

# the authors' toy recipe (3 hidden layers, μP, step 1e-2, momentum 0.9) and sizes for the rest
TASK_DEFAULTS = {
    "toy-regression": dict(width=16, batch_size=16, epochs=500, loss="squared_error",
                           covariance="full", noise_std=0.02),
    "two-moons": dict(width=64, batch_size=32, epochs=200, loss="binary_ce", covariance="full",
                      noise_std=None),
    "digits": dict(width=128, batch_size=32, epochs=50, loss="softmax_ce", covariance="lowrank",
                   noise_std=None),
    "cifar10": dict(width=256, batch_size=128, epochs=10, loss="softmax_ce", covariance="lowrank",
                    noise_std=None),
}
DEFAULT_RANK = 16


def _bad(name, option, expected, value):
    # str() of the value as given, so that "0" from the command line and 0 from Python read alike
    return ValueError(f"invalid {name} ({option}): expected {expected}, got '{value}'")


def _positive_int(name, option, value):
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise _bad(name, option, "a positive integer", value) from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise _bad(name, option, "a positive integer", value)
    return int(value)


def _positive_float(name, option, value):
    given = value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _bad(name, option, "a positive number", given) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise _bad(name, option, "a positive number", given)
    return float(value)


def _int(name, option, value):
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise _bad(name, option, "an integer", value) from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _bad(name, option, "an integer", value)
    return int(value)


def _choice(name, option, value, choices):
    if value not in choices:
        raise _bad(name, option, "one of " + ", ".join(choices), value)
    return value


@dataclass(frozen=True)
class ExperimentConfig:
    """Options of one experiment; ``None`` means the task's default (see :data:`TASK_DEFAULTS`).

    ``covariance`` is forced to "diagonal" for ``vi-kl`` (its KL is mean-field);
    ``rank`` (default 16) is used by "lowrank"; ``depth`` is the number of hidden layers.
    ``noise_std`` is the likelihood std of the ``vi-kl`` regression ELBO (the KL weight is
    ``2 noise_std² / N`` because the squared-error objective is ``2 noise_std²`` × the Gaussian
    negative log-likelihood). ``allow_small_files`` accepts CIFAR-10 files with fewer than 10000
    records; ``limit`` keeps the first records of each CIFAR-10 file.
    """

    task: str
    method: str = "ibvi"
    parametrization: str = "mup"
    width: int | None = None
    depth: int = 3
    epochs: int | None = None
    lr: float = 1e-2
    momentum: float = 0.9
    batch_size: int | None = None
    seed: int = 0
    backend: str = "numpy"
    data_dir: str | None = None
    covariance: str | None = None
    rank: int | None = None
    expectation: str = "closed-form"
    activation: str = "silu"
    num_samples: int = 16
    noise_std: float | None = None
    limit: int | None = None
    allow_small_files: bool = False
    dtype: str = "float32"
    factor_momentum: str = "exact"

    def resolved(self) -> "ExperimentConfig":
        """A copy with defaults filled in and every option checked.

        Raises
        ------
        ValueError
            ``invalid <name> (--<option>): expected ..., got ...`` for the first bad option.
        """
        task = _choice("task", "--task", self.task, TASKS)
        d = TASK_DEFAULTS[task]
        method = _choice("method", "--method", self.method, METHODS)
        _choice("parametrization", "--parametrization", self.parametrization, PARAMETRIZATIONS)
        _choice("backend", "--backend", self.backend, BACKENDS)
        width = _positive_int("width", "--width", d["width"] if self.width is None else self.width)
        depth = _positive_int("depth", "--depth", self.depth)
        epochs = _positive_int("epoch count", "--epochs", d["epochs"] if self.epochs is None else self.epochs)
        lr = _positive_float("step size", "--lr", self.lr)
        batch = _positive_int("batch size", "--batch-size",
                              d["batch_size"] if self.batch_size is None else self.batch_size)
        seed = _int("seed", "--seed", self.seed)
        covariance = "diagonal" if method == "vi-kl" else (self.covariance or d["covariance"])
        _choice("covariance", "--covariance", covariance, COVARIANCES)
        rank = _positive_int("rank", "--rank", DEFAULT_RANK if self.rank is None else self.rank)
        _choice("expectation", "--expectation", self.expectation, EXPECTATIONS)
        _choice("activation", "--activation", self.activation, tuple(ACTIVATIONS))
        num_samples = _positive_int("number of samples", "--num-samples", self.num_samples)
        noise_std = self.noise_std if self.noise_std is not None else d["noise_std"]
        if noise_std is not None:
            noise_std = _positive_float("noise std", "--noise-std", noise_std)
        limit = None if self.limit is None else _positive_int("limit", "--limit", self.limit)
        _choice("dtype", "--dtype", self.dtype, ("float32", "float64"))
        _choice("factor momentum", "--factor-momentum", self.factor_momentum, FACTOR_MOMENTUM)
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum < 1:
            raise _bad("momentum", "--momentum", "a number in [0, 1)", self.momentum)
        if task == "cifar10":
            data_mod._cifar_dir(self.data_dir)  # fail on a missing directory before any work
        return replace(self, width=width, depth=depth, epochs=epochs, lr=lr, batch_size=batch,
                       seed=seed, covariance=covariance, rank=rank, num_samples=num_samples,
                       noise_std=noise_std, limit=limit)

    @property
    def loss(self) -> str:
        return TASK_DEFAULTS[self.task]["loss"]


@dataclass(frozen=True)
class Spread:
    """Mean predictive spread (std over weight samples) on and away from the training data.

    Regression: std of the network output at test inputs inside the training clusters, in the
    gaps between clusters, and outside ``[−1, 1]``. Two moons: std of ``p(class 1)`` at test
    points within 0.2 of a training point (``on_data``), and at grid points farther than 0.5
    from every training point (``outside``; ``gaps`` is None). Other tasks: None.
    """

    on_data: float
    gaps: float | None
    outside: float


@dataclass(frozen=True)
class ExperimentResult:
    """Resolved configuration, test metrics, predictive spread and training cost."""

    config: ExperimentConfig
    metrics: object
    spread: Spread | None
    train_seconds: float
    steps: int
    final_objective: float
    num_parameters: int

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "metrics": asdict(self.metrics),
                "spread": None if self.spread is None else asdict(self.spread),
                "train_seconds": self.train_seconds, "steps": self.steps,
                "final_objective": self.final_objective, "num_parameters": self.num_parameters}


@dataclass(frozen=True)
class Trained:
    """A trained model with its data, configuration and history (what plots need)."""

    config: ExperimentConfig
    model: MLP
    dataset: object
    history: object


def load_dataset(config: ExperimentConfig, rng):
    """The data set of ``config.task`` (resolved config)."""
    if config.task == "toy-regression":
        return data_mod.toy_regression(rng, noise_std=config.noise_std)
    if config.task == "two-moons":
        return data_mod.two_moons(rng)
    if config.task == "digits":
        try:
            return data_mod.digits(rng)
        except ImportError as err:
            raise ValueError(f"invalid task (--task): {err}") from None
    return data_mod.cifar10(config.data_dir, strict_counts=not config.allow_small_files,
                            limit=config.limit)


def build_model(config: ExperimentConfig, dataset, rng) -> MLP:
    """The MLP of ``config`` for ``dataset``: ``depth`` hidden layers of ``width``."""
    d_in = dataset.x_train.shape[1]
    d_out = 1 if dataset.num_classes in (None, 2) else dataset.num_classes
    variational = "none" if config.method == "map" else "input-output"
    return MLP((d_in,) + (config.width,) * config.depth + (d_out,), rng,
               parametrization=config.parametrization, activation=config.activation,
               variational=variational, covariance=config.covariance, rank=config.rank,
               backend=config.backend, dtype=np.dtype(config.dtype))


def fit_experiment(config: ExperimentConfig, progress=print, quiet=False) -> Trained:
    """Load data, build and train the model of ``config``; ValueError for bad options."""
    config = config.resolved()
    get_xp(config.backend)
    rng_data, rng_init, rng_train = (np.random.default_rng(s)
                                     for s in np.random.SeedSequence(config.seed).spawn(3))
    dataset = load_dataset(config, rng_data)
    model = build_model(config, dataset, rng_init)
    kl_weight = 0.0
    if config.method == "vi-kl":
        n = dataset.x_train.shape[0]
        kl_weight = (2.0 * config.noise_std ** 2 if dataset.is_regression else 1.0) / n
    state = train_state(model, config.lr, config.momentum, loss=config.loss,
                        expectation=config.expectation, kl_weight=kl_weight,
                        factor_momentum=config.factor_momentum)
    history = fit(model, state, dataset.x_train, dataset.y_train, config.epochs,
                  config.batch_size, rng_train, quiet=quiet, progress=progress)
    return Trained(config, model, dataset, history)


def _regions_1d(x):
    inside = np.zeros(x.shape, bool)
    for lo, hi in data_mod.TOY_CLUSTERS:
        inside |= (x >= lo) & (x <= hi)
    outside = (x < data_mod.TOY_CLUSTERS[0][0]) | (x > data_mod.TOY_CLUSTERS[-1][1])
    return inside, ~inside & ~outside, outside


def _min_distance(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)


def evaluate(trained: Trained, seed_offset: int = 1) -> ExperimentResult:
    """Test metrics and predictive spread of a trained experiment (``num_samples`` samples).

    Regression: the predictive variance is the variance over samples plus an aleatoric variance
    estimated as the mean squared training residual of the predictive mean (its maximum-
    likelihood value given that mean, floored at 1e-8).
    """
    cfg, model, ds = trained.config, trained.model, trained.dataset
    rng = np.random.default_rng([cfg.seed, seed_offset])
    k = cfg.num_samples
    spread = None
    if ds.is_regression:
        pred = predict(model, ds.x_test, cfg.loss, k, rng)
        pred_train = predict(model, ds.x_train, cfg.loss, k, rng)
        noise_var = max(float(np.mean((pred_train.mean - ds.y_train) ** 2)), 1e-8)
        metrics = regression_metrics(pred.mean, pred.std ** 2 + noise_var, ds.y_test)
        if cfg.task == "toy-regression":
            regions = _regions_1d(ds.x_test[:, 0])
            spread = Spread(*(float(pred.std[r].mean()) for r in regions))
    else:
        pred = predict(model, ds.x_test, cfg.loss, k, rng)
        metrics = classification_metrics(pred.mean, ds.y_test)
        if cfg.task == "two-moons":
            near = _min_distance(ds.x_test, ds.x_train) < 0.2
            g = np.stack(np.meshgrid(np.linspace(-3, 4, 71), np.linspace(-3, 3.5, 66)), -1)
            grid = g.reshape(-1, 2).astype(np.float32)
            far = grid[_min_distance(grid, ds.x_train) > 0.5]
            pred_far = predict(model, far, cfg.loss, k, rng)
            spread = Spread(float(pred.std[near, 1].mean()), None, float(pred_far.std[:, 1].mean()))
    return ExperimentResult(cfg, metrics, spread, trained.history.seconds, trained.history.steps,
                            trained.history.epoch_objective[-1], model.num_parameters())


def run_experiment(config: ExperimentConfig | None = None, progress=print, quiet=False,
                   plot=None, **options) -> ExperimentResult:
    """Train and evaluate one configuration; optionally draw the predictive plot to ``plot``.

    Parameters
    ----------
    config : ExperimentConfig, optional
        Or give its fields as keyword ``options`` (``task=...`` is required).
    progress : callable
        Receives the progress lines (epoch lines); ``quiet=True`` silences them.
    plot : path, optional
        Predictive bands (regression) or decision map (two moons); ValueError for other tasks.

    Raises
    ------
    ValueError
        For an unknown task, method, backend, parametrization, a missing or malformed data
        directory, a non-positive width, rank, step size, epoch count or batch size — one line
        naming the option, the same as the command line prints.
    TrainingDiverged
        When the objective becomes NaN/inf or explodes (with the step).
    """
    if config is None:
        names = {f.name for f in fields(ExperimentConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown options: {', '.join(unknown)}")
        if "task" not in options:
            raise TypeError("run_experiment needs task=...")
        config = ExperimentConfig(**options)
    config = config.resolved()
    if plot is not None and config.task not in ("toy-regression", "two-moons"):
        raise ValueError(f"invalid plot (--plot): plots exist for toy-regression and two-moons, "
                         f"got task {config.task!r}")
    trained = fit_experiment(config, progress=progress, quiet=quiet)
    result = evaluate(trained)
    if plot is not None:
        from .plots import plot_experiment

        plot_experiment(trained, plot)
    return result
