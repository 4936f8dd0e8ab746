r"""Coordinate check (claim C9): typical activation size per layer against width, SP vs μP.

For each parametrization, width and seed an MLP ``d_in → W → … → W → C`` (variational input and
output layers with rank-``R`` factors, as trained by IBVI) takes ``k`` steps of the real
:func:`~variational_nets.train.train_step` (momentum SGD, closed-form softmax bound, one weight
sample per step). Before the first step and after every step the *typical size* of each layer's
output on a fixed probe batch is recorded,

.. math::

    \operatorname{size}(h) = \frac{1}{N n} \sum_{i, j} |h_{ij}|, \qquad h \in \mathbb{R}^{N \times n},

on two paths: the **mean** path (every weight at its mean) and the **sampled** path (one
weight sample, drawn from a fixed generator, so it moves only because the parameters move).
Layers are named ``h1 … hL`` (the hidden layers' outputs after the activation, ``h1`` being the
input layer's) and ``output`` (the network output before the softmax).

The result is summarised by the least-squares slope of ``log size`` (averaged over seeds)
against ``log width`` for every (parametrization, path, step, layer), with the standard error
of that slope across seeds (sample std of the per-seed slopes over ``√(seeds)``). μP predicts
slopes near 0 at every step; SP with a fixed step predicts growth once the updates dominate:
about ``width¹`` for the output and ``width^{1/2}`` for updated hidden layers
(``docs/theory.md §3 (C9)``).

Data: a synthetic classification task (standard normal inputs, labels from a random linear
teacher), one mini-batch per step; the probe batch is the first one. Every random path is
derived from the point's seed (:class:`numpy.random.SeedSequence`).

The grid (width × seed × parametrization) runs through :func:`variational_nets.sweep.run_sweep`
(in-process, local processes or Dask, resumable); :func:`coordcheck_point` is the function it
evaluates. Cost per point: ``k`` training steps and ``2(k + 1)`` forward passes on the probe
batch, each ``O(N (d_in W + (L − 1) W² + W C) + R (d_in W + W C))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backend import BACKENDS, asarray, get_xp, to_numpy
from .model import MLP, layer_activations
from .parametrization import PARAMETRIZATIONS
from .sweep import SweepPoint, grid, run_sweep_strict
from .train import TrainingDiverged, train_state, train_step
from .validation import as_choice, as_distinct, as_float, as_int, bad_type, bad_value, check_memory

PATHS = ("mean", "sampled")

__all__ = ["CoordCheckConfig", "CoordRecord", "CoordSlope", "CoordCheckResult", "coordcheck_point",
           "run_coordcheck", "coordcheck_slopes", "format_slopes", "layer_names", "PATHS"]


def _width(name, value):
    return as_int(name, value)


def _seed(name, value):
    return as_int(name, value, minimum=0)


def _parametrization(name, value):
    return as_choice(name, value, PARAMETRIZATIONS)


def _positive_lr(name, value):
    return as_float(name, value, low=0, low_open=True)


def check_dtype_name(name, value):
    """``value`` if it is ``"float32"`` or ``"float64"`` (the dtype of a sweep's networks).

    Parameters
    ----------
    name : str
    value : str

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    ValueError
        For anything else.
    """
    return as_choice(name, value, ("float32", "float64"))


@dataclass(frozen=True)
class CoordCheckConfig:
    """Settings of a coordinate check.

    Parameters
    ----------
    widths : tuple of int, default (64, 128, 256, 512)
        At least two distinct widths (a slope needs two); sorted.
    seeds : tuple of int, default 0..11
        Distinct, ``>= 0``.
    parametrizations : tuple of str, default ("sp", "mup")
    steps : int, default 3
        ``k`` SGD steps; sizes are recorded after 0..k steps.
    lr : float, default 0.3
        The base step size (the same for every parametrization, multiplied per tensor).
    momentum : float, default 0.9
    depth : int, default 3
        Hidden layers.
    d_in, num_classes : int, default 32 and 10
        Inputs and outputs of the synthetic task (``num_classes >= 2``).
    batch_size : int, default 64
        Rows per step and in the probe batch.
    rank : int, default 16
        Rank of the input/output covariance factors.
    backend : {"numpy", "cupy", "auto"}, default "numpy"
    dtype : {"float32", "float64"}, default "float32"

    Raises
    ------
    ValueError, TypeError
        ``invalid <name>: expected ..., got ...`` for the first bad field.
    """

    widths: tuple = (64, 128, 256, 512)
    seeds: tuple = tuple(range(12))
    parametrizations: tuple = ("sp", "mup")
    steps: int = 3
    lr: float = 0.3
    momentum: float = 0.9
    depth: int = 3
    d_in: int = 32
    num_classes: int = 10
    batch_size: int = 64
    rank: int = 16
    backend: str = "numpy"
    dtype: str = "float32"

    def __post_init__(self):
        widths = as_distinct("widths", self.widths, _width)
        if len(widths) < 2:
            raise bad_value("widths", "at least two widths (a slope needs two)", widths)
        object.__setattr__(self, "widths", tuple(sorted(widths)))
        object.__setattr__(self, "seeds", as_distinct("seeds", self.seeds, _seed))
        object.__setattr__(self, "parametrizations",
                           as_distinct("parametrizations", self.parametrizations, _parametrization))
        object.__setattr__(self, "steps", as_int("steps", self.steps, minimum=0))
        object.__setattr__(self, "lr", _positive_lr("lr", self.lr))
        object.__setattr__(self, "momentum", as_float("momentum", self.momentum, low=0, high=1,
                                                      high_open=True))
        for name in ("depth", "d_in", "num_classes", "batch_size", "rank"):
            object.__setattr__(self, name, as_int(name, getattr(self, name)))
        if self.num_classes < 2:
            raise bad_value("num_classes", "at least 2", self.num_classes)
        as_choice("backend", self.backend, BACKENDS)
        check_dtype_name("dtype", self.dtype)

    def point_params(self) -> dict:
        """The fixed settings every sweep point carries (they are part of its resume key).

        Returns
        -------
        dict
            Name to value; ``"experiment"`` is ``"coordcheck"``.
        """
        return {"experiment": "coordcheck", "steps": int(self.steps),
                "momentum": float(self.momentum), "depth": self.depth, "d_in": self.d_in,
                "num_classes": self.num_classes, "batch_size": self.batch_size,
                "rank": self.rank, "backend": self.backend, "dtype": self.dtype}

    def points(self) -> list:
        """The sweep grid: width × seed × parametrization at the one base step ``lr``.

        Returns
        -------
        list of SweepPoint
        """
        fixed = {k: [v] for k, v in self.point_params().items()}
        return grid(width=self.widths, lr=[self.lr], seed=self.seeds,
                    parametrization=self.parametrizations, **fixed)


def layer_names(depth: int) -> tuple:
    """``("h1", …, "h{depth}", "output")``: the outputs of the network's ``depth + 1`` layers.

    Parameters
    ----------
    depth : int
        Hidden layers (positive).

    Returns
    -------
    tuple of str
    """
    depth = as_int("depth", depth)
    check_memory("depth", 64 * depth, f"{depth} layer names")
    return tuple(f"h{i}" for i in range(1, depth + 1)) + ("output",)


def _result_name(path: str, step: int, layer: str) -> str:
    return f"{path}_t{step}_{layer}"


def synthetic_batches(rng, steps: int, batch_size: int, d_in: int, num_classes: int):
    """``max(steps, 1)`` mini-batches ``(x, labels)`` of a random linear-teacher task (NumPy).

    ``x ~ N(0, I)`` (batch_size, d_in) float32; ``labels = argmax(x T)`` with a standard normal
    teacher ``T`` (d_in, num_classes), so the task has signal to learn.
    """
    teacher = rng.standard_normal((d_in, num_classes))
    batches = []
    for _ in range(max(steps, 1)):
        x = rng.standard_normal((batch_size, d_in))
        batches.append((x.astype(np.float32), np.argmax(x @ teacher, axis=1).astype(np.int64)))
    return batches


def _sizes(xp, activations) -> list:
    # one host transfer for all layers: size = mean |h| (the coordinate-check statistic)
    return [float(v) for v in to_numpy(xp.stack([xp.abs(a).mean() for a in activations]))]


def point_model(point: SweepPoint, d_in: int, num_classes: int, rng) -> MLP:
    """The low-rank variational MLP of a sweep point: ``depth`` hidden layers of ``width``.

    Parameters
    ----------
    point : SweepPoint
        Its free parameters ``depth``, ``parametrization``, ``rank``, ``backend`` and ``dtype``
        set the network.
    d_in, num_classes : int
        Input and output sizes.
    rng : numpy.random.Generator
        Draws the initialization.

    Returns
    -------
    MLP
        Sizes ``(d_in, width, …, width, num_classes)``.
    """
    p = point.param
    sizes = (d_in,) + (point.width,) * int(p("depth")) + (num_classes,)
    return MLP(sizes, rng, parametrization=p("parametrization"), covariance="lowrank",
               rank=p("rank"), backend=p("backend"), dtype=np.dtype(p("dtype")))


def coordcheck_point(point: SweepPoint) -> dict:
    """Sizes of every layer, path and step for one (width, seed, parametrization) point.

    The points come from :meth:`CoordCheckConfig.points`, which validated the settings; the
    model and optimizer check them again (ValueError naming the setting).

    Parameters
    ----------
    point : SweepPoint
        Carries ``width``, ``lr``, ``seed`` and the free parameters of
        :meth:`CoordCheckConfig.point_params` plus ``parametrization``.

    Returns
    -------
    dict
        ``{"{path}_t{step}_{layer}": size}`` for path in ``PATHS``, step in ``0..steps``, layer
        in :func:`layer_names`; a size is NaN from the step at which training produced a NaN/inf
        objective on (reported, not raised: blow-up is a possible outcome under SP).

    Raises
    ------
    TypeError
        For a ``point`` that is not a SweepPoint.
    """
    if not isinstance(point, SweepPoint):
        raise bad_type("point", "a SweepPoint from CoordCheckConfig.points()", point)
    p = point.param
    steps, depth = int(p("steps")), int(p("depth"))
    seq_data, seq_init, seq_train, seq_probe = np.random.SeedSequence(point.seed).spawn(4)
    rng_data, rng_init, rng_train = (np.random.default_rng(s) for s in (seq_data, seq_init, seq_train))
    batches = synthetic_batches(rng_data, steps, p("batch_size"), p("d_in"), p("num_classes"))
    model = point_model(point, p("d_in"), p("num_classes"), rng_init)
    xp = model.xp
    # max_loss=inf: a large objective is a measurement here, not a failure; NaN still stops
    state = train_state(model, point.lr, p("momentum"), loss="softmax_ce", max_loss=math.inf)
    data = [(asarray(x, xp, model.dtype), asarray(y, xp)) for x, y in batches]
    probe = data[0][0]
    names = layer_names(depth)
    out = {}
    broken = False
    for step in range(steps + 1):
        for path in PATHS:
            if broken:
                values = [math.nan] * len(names)
            else:
                # the sampled path redraws the same weight noise from seq_probe at every step
                rng = None if path == "mean" else np.random.default_rng(seq_probe)
                values = _sizes(xp, layer_activations(model, probe, rng))
            out.update({_result_name(path, step, n): v for n, v in zip(names, values)})
        if step < steps and not broken:
            x, y = data[step]
            try:
                train_step(model, state, x, y, rng_train)
            except TrainingDiverged:  # NaN/inf objective: sizes are NaN from the next step on
                broken = True
    return out


@dataclass(frozen=True)
class CoordRecord:
    """One measured size: ``size`` of ``layer`` on ``path`` after ``step`` steps.

    Parameters
    ----------
    parametrization, path : str
    step : int
    layer : str
    width, seed : int
    size : float
    """

    parametrization: str
    path: str
    step: int
    layer: str
    width: int
    seed: int
    size: float


@dataclass(frozen=True)
class CoordSlope:
    """Log-log slope of the seed-averaged size against width, with its seed standard error.

    Parameters
    ----------
    parametrization, path : str
    step : int
    layer : str
    slope : float
        NaN when fewer than two widths have finite, positive sizes (blow-up).
    seed_se : float
        NaN with one seed.
    widths : tuple of int
    sizes : tuple of float
        The seed means at ``widths``.
    """

    parametrization: str
    path: str
    step: int
    layer: str
    slope: float
    seed_se: float
    widths: tuple
    sizes: tuple


@dataclass(frozen=True)
class CoordCheckResult:
    """All sizes of a coordinate check, its configuration and where the sweep stored them.

    Parameters
    ----------
    config : CoordCheckConfig
    layers : tuple of str
        From :func:`layer_names`.
    records : tuple of CoordRecord
    results_path : str or None
    """

    config: CoordCheckConfig
    layers: tuple
    records: tuple
    results_path: str | None

    def sizes(self, parametrization: str, path: str, step: int, layer: str) -> np.ndarray:
        """Sizes as an array (seeds, widths) in the config's order.

        Parameters
        ----------
        parametrization, path : str
        step : int
        layer : str

        Returns
        -------
        numpy.ndarray (seeds, widths)

        Raises
        ------
        KeyError
            When the result has no such sizes.
        """
        cfg = self.config
        table = {(r.seed, r.width): r.size for r in self.records
                 if (r.parametrization, r.path, r.step, r.layer) == (parametrization, path, step, layer)}
        if not table:
            raise KeyError(f"no sizes for {parametrization}/{path}/step {step}/{layer}")
        return np.array([[table[s, w] for w in cfg.widths] for s in cfg.seeds])


def _fit_slope(log_w, values):
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(log_w[ok], np.log(values[ok]), 1)[0])


def coordcheck_slopes(result: CoordCheckResult) -> tuple:
    """A :class:`CoordSlope` for every (parametrization, path, step, layer) of ``result``.

    ``slope`` = least-squares slope of ``log mean_seeds(size)`` on ``log width``; ``seed_se`` =
    ``std(per-seed slopes, ddof=1) / √seeds``. Cost ``O(records)``.

    Parameters
    ----------
    result : CoordCheckResult

    Returns
    -------
    tuple of CoordSlope

    Raises
    ------
    TypeError
        For another type.
    """
    if not isinstance(result, CoordCheckResult):
        raise bad_type("result", "a CoordCheckResult", result)
    cfg = result.config
    log_w = np.log(np.asarray(cfg.widths, dtype=float))
    out = []
    for param in cfg.parametrizations:
        for path in PATHS:
            for step in range(cfg.steps + 1):
                for layer in result.layers:
                    s = result.sizes(param, path, step, layer)
                    with np.errstate(invalid="ignore"):
                        mean = s.mean(axis=0)
                    per_seed = np.array([_fit_slope(log_w, row) for row in s])
                    finite = per_seed[np.isfinite(per_seed)]
                    se = (float(np.std(finite, ddof=1) / math.sqrt(finite.size))
                          if finite.size >= 2 else math.nan)
                    out.append(CoordSlope(param, path, step, layer, _fit_slope(log_w, mean), se,
                                          cfg.widths, tuple(float(v) for v in mean)))
    return tuple(out)


def format_slopes(slopes) -> str:
    """A text table: one row per (parametrization, path, step), one column per layer
    (``slope ± seed SE``).

    Parameters
    ----------
    slopes : sequence of CoordSlope

    Returns
    -------
    str
        The header and one line per (parametrization, path, step).

    Raises
    ------
    TypeError
        For entries that are not CoordSlope.
    """
    if isinstance(slopes, (str, bytes)) or not hasattr(slopes, "__iter__"):
        raise bad_type("slopes", "a sequence of CoordSlope (from coordcheck_slopes)", slopes)
    slopes = tuple(slopes)
    if not all(isinstance(s, CoordSlope) for s in slopes):
        raise bad_type("slopes", "a sequence of CoordSlope (from coordcheck_slopes)", slopes)
    layers = []
    for s in slopes:
        if s.layer not in layers:
            layers.append(s.layer)
    rows = {}
    for s in slopes:
        rows.setdefault((s.parametrization, s.path, s.step), {})[s.layer] = s
    head = f"{'param':<6s} {'path':<8s} {'step':>4s}  " + "  ".join(f"{n:>15s}" for n in layers)
    lines = ["log-log slope of mean |h| against width (± seed standard error)", head]
    for (param, path, step), by_layer in rows.items():
        cells = "  ".join(f"{by_layer[n].slope:+7.3f} ± {by_layer[n].seed_se:5.3f}" for n in layers)
        lines.append(f"{param:<6s} {path:<8s} {step:>4d}  {cells}")
    return "\n".join(lines)


def _records_from_rows(config, rows) -> tuple:
    names = layer_names(config.depth)
    records = []
    for row in rows:
        pt = row.point
        for path in PATHS:
            for step in range(config.steps + 1):
                for layer in names:
                    records.append(CoordRecord(pt.param("parametrization"), path, step, layer,
                                               pt.width, pt.seed,
                                               float(row.value(_result_name(path, step, layer)))))
    return tuple(records)


def run_coordcheck(config: CoordCheckConfig | None = None, *, results_path=None,
                   scheduler: str | None = None, processes: int | None = None,
                   progress: bool = False) -> CoordCheckResult:
    """Run the coordinate check of ``config`` through :func:`~variational_nets.sweep.run_sweep`.

    Parameters
    ----------
    config : CoordCheckConfig, optional
        Default: ``CoordCheckConfig()`` (widths 64…512, 12 seeds, 3 steps, NumPy).
    results_path : path ending in ``.jsonl``, optional
        Where the sweep stores its rows (resumable; a CSV table is written beside it). Default:
        a temporary file, and the points run in this process.
    scheduler, processes, progress
        As for :func:`~variational_nets.sweep.run_sweep` (Dask scheduler address, local worker
        processes, progress lines).

    Returns
    -------
    CoordCheckResult

    Raises
    ------
    ValueError
        Bad settings (see :class:`CoordCheckConfig`).
    RuntimeError
        When a point failed (the errors are listed; the sweep keeps the finished points).
    """
    config = CoordCheckConfig() if config is None else config
    if not isinstance(config, CoordCheckConfig):
        raise bad_type("config", "a CoordCheckConfig", config)
    get_xp(config.backend)  # a missing GPU is a ValueError before any point runs
    points = config.points()
    rows, stored = run_sweep_strict(coordcheck_point, points, results_path=results_path, scheduler=scheduler,
                                    processes=processes, progress=progress, what="coordinate-check")
    return CoordCheckResult(config, layer_names(config.depth),
                            _records_from_rows(config, rows), stored)
