"""End-to-end experiments: data, model, training, evaluation (used by the command line).

:func:`run_experiment` is the Python API of ``python -m variational_nets train``. Options are
checked by :meth:`ExperimentConfig.resolved` with messages that name the field
(``invalid width: expected a positive integer, got 0``); the command line maps a field to its
flag. :func:`training_memory` estimates the memory a run needs, so that a run too large for
the machine is refused before anything is allocated.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType

import numpy as np

from . import data as data_mod
from .backend import BACKENDS, get_xp
from .layers import ACTIVATIONS, COVARIANCES
from .metrics import classification_metrics, regression_metrics
from .model import MLP
from .optim import FACTOR_MOMENTUM
from .parametrization import PARAMETRIZATIONS
from .train import EXPECTATIONS, fit, predict, train_state
from .validation import as_choice, as_flag, as_float, as_int, bad_value, check_memory

__all__ = ["METHODS", "DEFAULT_RANK", "TaskDefaults", "TASK_DEFAULTS", "TASKS", "check_extra", "ExperimentConfig",
           "training_memory", "estimate_memory", "Spread", "ExperimentResult", "Trained", "load_dataset",
           "build_model", "fit_experiment", "evaluate", "check_plot", "run_experiment"]

#: The training methods: IBVI, ``"map"`` (the deterministic network trained on the loss alone)
#: and ``"vi-kl"`` (mean-field VI with a KL term).
METHODS = ("ibvi", "map", "vi-kl")
#: Rank of low-rank covariance factors when ``rank`` is not given.
DEFAULT_RANK = 16


@dataclass(frozen=True)
class TaskDefaults:
    """A task's data shape and its training defaults.

    ``width``, ``batch_size``, ``epochs``, ``covariance`` and ``noise_std`` are the defaults of
    :class:`ExperimentConfig`.

    Parameters
    ----------
    input_dim : int
        The network's input size.
    output_dim : int
        The network's output size (one output for regression and for two classes).
    num_examples : int
        Training plus test examples, for the memory estimate (CIFAR-10: the official files).
    loss : str
        The training loss, a name in :data:`variational_nets.losses.LOSSES`.
    width : int
        Default hidden width.
    batch_size : int
        Default mini-batch size.
    epochs : int
        Default number of epochs.
    covariance : str
        Default covariance family, one of :data:`variational_nets.layers.COVARIANCES`.
    noise_std : float or None, optional
        The likelihood std of the ``vi-kl`` regression ELBO; None for classification.
    extra : str or None, optional
        The optional extra whose package the task's data need (None: the base install).
    """

    input_dim: int
    output_dim: int
    num_examples: int
    loss: str
    width: int
    batch_size: int
    epochs: int
    covariance: str
    noise_std: float | None = None
    extra: str | None = None


#: The tasks and their defaults (read-only): the authors' toy recipe (3 hidden layers, μP, step
#: 1e-2, momentum 0.9) and sizes for the rest.
TASK_DEFAULTS = MappingProxyType({
    "toy-regression": TaskDefaults(input_dim=1, output_dim=1, num_examples=3 * 33 + 200,
                                   loss="squared_error", width=16, batch_size=16, epochs=500,
                                   covariance="full", noise_std=0.02),
    "two-moons": TaskDefaults(input_dim=2, output_dim=1, num_examples=600, loss="binary_ce",
                              width=64, batch_size=32, epochs=200, covariance="full"),
    "digits": TaskDefaults(input_dim=64, output_dim=10, num_examples=1797, loss="softmax_ce",
                           width=128, batch_size=32, epochs=50, covariance="lowrank", extra="data"),
    "cifar10": TaskDefaults(input_dim=3072, output_dim=10, num_examples=60000, loss="softmax_ce",
                            width=256, batch_size=128, epochs=10, covariance="lowrank"),
})
#: The task names, in the order of :data:`TASK_DEFAULTS`.
TASKS = tuple(TASK_DEFAULTS)
#: The package each optional extra brings, for the tasks that need one.
_EXTRA_PACKAGES = {"data": ("sklearn", "scikit-learn")}


def check_extra(task: str) -> None:
    """Refuse a task whose data need an optional extra that is not installed.

    Parameters
    ----------
    task : str
        A key of :data:`TASK_DEFAULTS`.

    Raises
    ------
    ValueError
        ``invalid task: the digits task needs scikit-learn: pip install "ibvi-theory[data]"``.
    """
    extra = TASK_DEFAULTS[task].extra
    if extra is None:
        return
    module, package = _EXTRA_PACKAGES[extra]
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"invalid task: the {task} task needs {package}: "
                         f'pip install "ibvi-theory[{extra}]"')


@dataclass(frozen=True)
class ExperimentConfig:
    """Options of one experiment; ``None`` means the task's default (see :data:`TASK_DEFAULTS`).

    Values are typed: integers for sizes, counts and the seed, floats (or integers) for step
    sizes, strings for the choices; :meth:`resolved` checks them and fills in the defaults.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    method : str, optional
        One of :data:`METHODS`.
    parametrization : str, optional
        One of :data:`variational_nets.parametrization.PARAMETRIZATIONS`.
    width : int, optional
        Hidden width.
    depth : int, optional
        Number of hidden layers.
    epochs : int, optional
        Passes over the training data.
    lr : float, optional
        Base step size (scaled per tensor by the parametrization).
    momentum : float, optional
        Heavy-ball coefficient in ``[0, 1)``.
    batch_size : int, optional
        Mini-batch size.
    seed : int, optional
        Seed of the data, the initialization and the training (three independent streams).
    backend : str, optional
        One of :data:`variational_nets.backend.BACKENDS`.
    data_dir : str, optional
        CIFAR-10: the folder with the official binary files.
    covariance : str, optional
        One of :data:`variational_nets.layers.COVARIANCES`; forced to ``"diagonal"`` for
        ``vi-kl`` (its KL is mean-field).
    rank : int, optional
        Rank of ``"lowrank"`` factors (default :data:`DEFAULT_RANK`, capped at the smallest
        variational layer's parameter count).
    expectation : str, optional
        The last layer's expected loss: ``"closed-form"`` or Monte Carlo (see
        :data:`variational_nets.train.EXPECTATIONS`).
    activation : str, optional
        One of :data:`variational_nets.layers.ACTIVATIONS`.
    num_samples : int, optional
        Weight samples for the test metrics.
    noise_std : float, optional
        The likelihood std of the ``vi-kl`` regression ELBO: the KL weight is
        ``2 noise_std² / N`` because the squared-error objective is ``2 noise_std²`` × the
        Gaussian negative log-likelihood.
    limit : int, optional
        CIFAR-10: keep the first ``limit`` records of each file.
    allow_small_files : bool, optional
        CIFAR-10: accept files with fewer than 10000 records.
    dtype : {"float32", "float64"}, optional
        The network's floating-point type.
    factor_momentum : str, optional
        How the momentum buffers of covariance factors are stored, one of
        :data:`variational_nets.optim.FACTOR_MOMENTUM`.
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

        Cheap: nothing is loaded or allocated (a CIFAR-10 folder is looked up, not read).

        Returns
        -------
        ExperimentConfig
            Every ``None`` replaced by the task's default, numbers converted to their types,
            the covariance and rank settled.

        Raises
        ------
        ValueError
            ``invalid <field>: expected ..., got ...`` for the first bad option, including a
            task whose optional extra is not installed and a missing CIFAR-10 folder.
        """
        task = as_choice("task", self.task, TASKS)
        d = TASK_DEFAULTS[task]
        method = as_choice("method", self.method, METHODS)
        as_choice("parametrization", self.parametrization, PARAMETRIZATIONS)
        as_choice("backend", self.backend, BACKENDS)
        width = as_int("width", d.width if self.width is None else self.width)
        depth = as_int("depth", self.depth)
        epochs = as_int("epochs", d.epochs if self.epochs is None else self.epochs)
        lr = as_float("lr", self.lr, low=0.0, low_open=True)
        batch = as_int("batch_size", d.batch_size if self.batch_size is None else self.batch_size)
        seed = as_int("seed", self.seed, minimum=0)
        covariance = "diagonal" if method == "vi-kl" else (self.covariance or d.covariance)
        as_choice("covariance", covariance, COVARIANCES)
        rank = as_int("rank", DEFAULT_RANK if self.rank is None else self.rank)
        if covariance == "lowrank" and method != "map":
            # a factor cannot have more columns than its layer has parameters (weights and bias)
            smallest = min((d.input_dim + 1) * width, (width + 1) * d.output_dim)
            if self.rank is None:
                rank = min(rank, smallest)
            elif rank > smallest:
                raise bad_value("rank", f"an integer in [1, {smallest}] (the smallest variational layer has "
                                   f"{smallest} parameters at width {width})", rank)
        as_choice("expectation", self.expectation, EXPECTATIONS)
        as_choice("activation", self.activation, tuple(ACTIVATIONS))
        num_samples = as_int("num_samples", self.num_samples)
        noise_std = self.noise_std if self.noise_std is not None else d.noise_std
        if noise_std is not None:
            noise_std = as_float("noise_std", noise_std, low=0.0, low_open=True)
        limit = None if self.limit is None else as_int("limit", self.limit)
        as_choice("dtype", self.dtype, ("float32", "float64"))
        as_choice("factor_momentum", self.factor_momentum, FACTOR_MOMENTUM)
        as_float("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        as_flag("allow_small_files", self.allow_small_files)
        check_extra(task)
        if task == "cifar10":
            data_mod.cifar10_folder(self.data_dir)  # fail on a missing directory before any work
        return replace(self, width=width, depth=depth, epochs=epochs, lr=lr, batch_size=batch,
                       seed=seed, covariance=covariance, rank=rank, num_samples=num_samples,
                       noise_std=noise_std, limit=limit)

    @property
    def loss(self) -> str:
        """The training loss of the task.

        Returns
        -------
        str
            A name in :data:`variational_nets.losses.LOSSES`.
        """
        return TASK_DEFAULTS[self.task].loss

    def layer_sizes(self) -> tuple:
        """The layer sizes of the network of a resolved config.

        Returns
        -------
        tuple of int
            ``(d_in, width, …, width, d_out)`` with ``depth`` hidden widths.
        """
        d = TASK_DEFAULTS[self.task]
        return (d.input_dim,) + (self.width,) * self.depth + (d.output_dim,)


# --- memory ------------------------------------------------------------------------------------

#: Rows of a prediction batch (:func:`~variational_nets.train.predict`'s default ``batch_size``).
_PREDICT_ROWS = 2048


def training_memory(sizes, *, covariance: str = "full", rank: int | None = None, batch_size: int = 32,
                    variational: str = "input-output", closed_form: bool = True, itemsize: int = 4,
                    num_examples: int = 0) -> int:
    r"""Bytes that training and evaluating an :class:`~variational_nets.model.MLP` takes.

    For layer ``l`` with ``P_l = n_in n_out + n_out`` mean parameters the trainer keeps the mean,
    its momentum buffer and its gradient (``3 P_l``). A variational layer adds its factor
    ``P_l × R_l`` and the factor's momentum buffer (``2 P_l R_l``, with ``R_l = P_l`` for
    ``"full"``) and one sampled weight (``P_l``), or a scale, its buffer, gradient and noise
    (``4 P_l``, ``"diagonal"``). The closed-form expected loss of a factor output layer also
    holds a transposed copy of its factor, its dense gradient (``2 P_L R_L``) and two
    ``B × n_L × R_L`` arrays. Activations: four arrays per layer output for a training batch of
    ``B`` rows, two for a prediction batch of ``b = min(2048, N)`` rows. The data:
    ``N (n_0 + n_L)`` values.

    .. math::

        \text{bytes} = s \Big(\sum_l 3P_l + [\text{var}_l](2 P_l R_l + P_l)
        + [\text{closed}](2 P_L R_L + 2 B n_L R_L) + (4B + 2b) \sum_{l \ge 1} n_l + N (n_0 + n_L)\Big)

    Measured against the peak of :mod:`tracemalloc` over :func:`fit_experiment` and
    :func:`evaluate` the estimate is within a factor of two (see the tests).

    Cost ``O(len(sizes))``.

    Parameters
    ----------
    sizes : sequence of int
        ``(d_in, h_1, …, h_L, d_out)`` as for :class:`~variational_nets.model.MLP`.
    covariance : {"full", "lowrank", "diagonal"}, optional
        The covariance family of the variational layers.
    rank : int, optional
        Rank of low-rank factors (required for ``"lowrank"``).
    batch_size : int, optional
        Training rows per step ``B``.
    variational : {"input-output", "all", "none", "output"}, optional
        Which layers carry a weight distribution.
    closed_form : bool, optional
        Whether the output layer's expected loss is the closed form (the default objective).
    itemsize : int, optional
        Bytes per value ``s`` (4 for float32, 8 for float64).
    num_examples : int, optional
        Training plus test examples ``N`` held in memory.

    Returns
    -------
    int
        Bytes, as a Python integer (absurd sizes do not overflow).

    Raises
    ------
    ValueError
        An unknown covariance or ``variational`` choice, a missing rank for ``"lowrank"``.
    """
    as_choice("covariance", covariance, COVARIANCES)
    as_choice("variational", variational, ("input-output", "all", "none", "output"))
    if covariance == "lowrank":
        rank = as_int("rank", rank)
    sizes = [int(s) for s in sizes]
    batch = int(batch_size)
    rows = min(_PREDICT_ROWS, int(num_examples)) if num_examples else _PREDICT_ROWS
    n_layers = len(sizes) - 1
    values = largest = 0
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        p = n_in * n_out + n_out
        values += 3 * p + (4 * batch + 2 * rows) * n_out
        largest = max(largest, p)
        role = "input" if i == 0 else ("output" if i == n_layers - 1 else "hidden")
        if not (variational == "all" or (variational == "input-output" and role != "hidden")
                or (variational == "output" and role == "output")):
            continue
        if covariance == "diagonal":
            values += 4 * p
            continue
        r = p if covariance == "full" else rank
        values += 2 * p * r + p
        largest = max(largest, p * r)
        if role == "output" and closed_form:
            values += 2 * p * r + 2 * batch * n_out * r
    values += 2 * largest  # the temporaries of one tensor's momentum update
    values += int(num_examples) * (sizes[0] + sizes[-1])
    return values * int(itemsize)


def estimate_memory(config: ExperimentConfig) -> int:
    """:func:`training_memory` of a resolved ``config`` (its network, covariance and data).

    Cost ``O(depth)``.

    Parameters
    ----------
    config : ExperimentConfig
        A resolved config (:meth:`ExperimentConfig.resolved`).

    Returns
    -------
    int
        Bytes.
    """
    d = TASK_DEFAULTS[config.task]
    return training_memory(config.layer_sizes(), covariance=config.covariance, rank=config.rank,
                           batch_size=config.batch_size,
                           variational="none" if config.method == "map" else "input-output",
                           closed_form=config.expectation == "closed-form",
                           itemsize=np.dtype(config.dtype).itemsize, num_examples=d.num_examples)


@dataclass(frozen=True)
class Spread:
    """Mean predictive spread (std over weight samples) on and away from the training data.

    Regression: std of the network output at test inputs inside the training clusters, in the
    gaps between clusters, and outside ``[−1, 1]``. Two moons: std of ``p(class 1)`` at test
    points within 0.2 of a training point (``on_data``), and at grid points farther than 0.5
    from every training point (``outside``; ``gaps`` is None). Other tasks have no spread.

    Parameters
    ----------
    on_data : float
        Mean spread on (or near) the training data.
    gaps : float or None
        Mean spread in the gaps between the regression clusters; None for two moons.
    outside : float
        Mean spread away from the training data.
    """

    on_data: float
    gaps: float | None
    outside: float


@dataclass(frozen=True)
class ExperimentResult:
    """Resolved configuration, test metrics, predictive spread and training cost.

    Parameters
    ----------
    config : ExperimentConfig
        The resolved configuration.
    metrics : RegressionMetrics or ClassificationMetrics
        The test metrics (:mod:`variational_nets.metrics`).
    spread : Spread or None
        The predictive spread on and away from the data (toy regression and two moons only).
    train_seconds : float
        Wall time of training.
    steps : int
        Optimizer steps taken.
    final_objective : float
        The mean training objective of the last epoch.
    num_parameters : int
        Trainable values of the model (means, factors, scales).
    """

    config: ExperimentConfig
    metrics: object
    spread: Spread | None
    train_seconds: float
    steps: int
    final_objective: float
    num_parameters: int

    def to_dict(self) -> dict:
        """The JSON form (what ``python -m variational_nets train --json`` writes).

        Returns
        -------
        dict
            The fields, with ``config``, ``metrics`` and ``spread`` as plain dicts.
        """
        return {"config": asdict(self.config), "metrics": asdict(self.metrics),
                "spread": None if self.spread is None else asdict(self.spread),
                "train_seconds": self.train_seconds, "steps": self.steps,
                "final_objective": self.final_objective, "num_parameters": self.num_parameters}


@dataclass(frozen=True)
class Trained:
    """A trained model with its data, configuration and history (what plots need).

    Parameters
    ----------
    config : ExperimentConfig
        The resolved configuration.
    model : MLP
        The trained network.
    dataset : variational_nets.data.Dataset
        The data it was trained on, with the test split.
    history : variational_nets.train.TrainHistory
        Objective per epoch, steps and wall time.
    """

    config: ExperimentConfig
    model: MLP
    dataset: object
    history: object


def _generators(seed: int):
    """The three generators of an experiment: data, initialization, training (in that order)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def load_dataset(config: ExperimentConfig, rng=None):
    """The data set of ``config.task`` (a resolved config).

    Parameters
    ----------
    config : ExperimentConfig
        A resolved config.
    rng : numpy.random.Generator, optional
        Draws the data of the synthetic tasks and the digits' split; default: the experiment's
        own data generator (the one :func:`fit_experiment` uses), so that loading the data
        first and handing it to :func:`fit_experiment` gives the same numbers.

    Returns
    -------
    variational_nets.data.Dataset
        The train/test split.

    Raises
    ------
    ValueError
        Malformed CIFAR-10 files (see :func:`variational_nets.data.cifar10`).
    """
    rng = _generators(config.seed)[0] if rng is None else rng
    if config.task == "toy-regression":
        return data_mod.toy_regression(rng, noise_std=config.noise_std)
    if config.task == "two-moons":
        return data_mod.two_moons(rng)
    if config.task == "digits":
        return data_mod.digits(rng)
    return data_mod.cifar10(config.data_dir, strict_counts=not config.allow_small_files,
                            limit=config.limit)


def build_model(config: ExperimentConfig, dataset, rng) -> MLP:
    """The MLP of ``config`` for ``dataset``: ``depth`` hidden layers of ``width``.

    Parameters
    ----------
    config : ExperimentConfig
        A resolved config (parametrization, activation, covariance, rank, backend, dtype).
    dataset : variational_nets.data.Dataset
        Decides the input size and the output size (one output for regression and two
        classes).
    rng : numpy.random.Generator
        Draws the initialization.

    Returns
    -------
    MLP
        Variational input and output layers, or a deterministic network for ``"map"``.
    """
    d_in = dataset.x_train.shape[1]
    d_out = 1 if dataset.num_classes in (None, 2) else dataset.num_classes
    variational = "none" if config.method == "map" else "input-output"
    return MLP((d_in,) + (config.width,) * config.depth + (d_out,), rng,
               parametrization=config.parametrization, activation=config.activation,
               variational=variational, covariance=config.covariance, rank=config.rank,
               backend=config.backend, dtype=np.dtype(config.dtype))


def fit_experiment(config: ExperimentConfig, progress=print, quiet=False, dataset=None) -> Trained:
    """Load data, build and train the model of ``config``.

    Parameters
    ----------
    config : ExperimentConfig
        The experiment; resolved here.
    progress : callable, optional
        Receives the epoch lines.
    quiet : bool, optional
        No epoch lines.
    dataset : variational_nets.data.Dataset, optional
        The data :func:`load_dataset` returned for this config, when the caller loaded it
        first (the command line does, to check the files before training).

    Returns
    -------
    Trained
        The model, its data, the resolved config and the training history.

    Raises
    ------
    ValueError
        Bad options (see :meth:`ExperimentConfig.resolved`), malformed data files.
    TrainingDiverged
        When the objective becomes NaN/inf or explodes.
    """
    config = config.resolved()
    get_xp(config.backend)
    rng_data, rng_init, rng_train = _generators(config.seed)
    dataset = load_dataset(config, rng_data) if dataset is None else dataset
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

    Parameters
    ----------
    trained : Trained
        From :func:`fit_experiment`.
    seed_offset : int, optional
        Selects the stream of the weight samples: ``numpy.random.default_rng([seed,
        seed_offset])``.

    Returns
    -------
    ExperimentResult
        Test metrics, predictive spread and the training cost.
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


def check_plot(config: ExperimentConfig, plot) -> None:
    """Refuse a ``plot`` path the plot of ``config`` cannot be drawn to.

    Parameters
    ----------
    config : ExperimentConfig
        A resolved config.
    plot : str or os.PathLike
        Where the plot goes.

    Raises
    ------
    ValueError
        A task without a plot (only toy-regression and two-moons have one), or a path
        :func:`variational_nets.plots.check_figure_path` refuses; the message names ``plot``.
    """
    from .plots import check_figure_path

    if config.task not in ("toy-regression", "two-moons"):
        raise ValueError(f"invalid plot: plots exist for toy-regression and two-moons, "
                         f"got task {config.task!r}")
    check_figure_path(plot, name="plot")


def run_experiment(config: ExperimentConfig | None = None, progress=print, quiet=False,
                   plot=None, **options) -> ExperimentResult:
    """Train and evaluate one configuration; optionally draw the predictive plot to ``plot``.

    Parameters
    ----------
    config : ExperimentConfig, optional
        Or give its fields as keyword ``options`` (``task=...`` is required).
    progress : callable, optional
        Receives the progress lines (epoch lines).
    quiet : bool, optional
        No progress lines.
    plot : str or os.PathLike, optional
        Predictive bands and uncertainty (regression, two moons; ValueError for other tasks),
        in the format of its suffix. Checked before training: its folder must exist.
    **options
        The fields of :class:`ExperimentConfig`, when ``config`` is not given.

    Returns
    -------
    ExperimentResult
        Test metrics, predictive spread and the training cost.

    Raises
    ------
    TypeError
        Unknown keyword options, or no ``task``.
    ValueError
        For an unknown task, method, backend, parametrization, a missing or malformed data
        directory, a non-positive width, rank, step size, epoch count or batch size, a run that
        needs more memory than the machine has (:func:`estimate_memory`), a ``plot`` path that
        cannot be written — one line naming the field.
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
    if plot is not None:
        check_plot(config, plot)
    check_memory("width", estimate_memory(config), f"training at width {config.width}")
    trained = fit_experiment(config, progress=progress, quiet=quiet)
    result = evaluate(trained)
    if plot is not None:
        from .plots import plot_experiment

        plot_experiment(trained, plot)
    return result
