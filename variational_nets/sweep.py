"""Sweeps over a grid of (width, step size, seed, ...) points: local processes or a Dask cluster.

A sweep evaluates ``fn(point) -> {name: scalar}`` at every :class:`SweepPoint` of a grid and
collects the results into one table on disk. Where it runs:

* ``processes=1``: in this process, one point after another;
* ``processes=N`` (default: the number of CPUs): ``N`` local worker processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, started with ``spawn``, since a forked child
  of a process that has initialized CUDA cannot use the GPU);
* ``scheduler="tcp://host:port"``: the workers of a running Dask cluster
  (``dask.distributed``, the optional extra ``pip install ".[dask]"``).

Points that train on a GPU should not share it by accident: use ``processes=1`` on a one-GPU
machine, or a Dask cluster with one single-threaded worker per GPU.

The store is a JSON-lines file (``results_path``, suffix ``.jsonl``), one line per finished
point, appended and flushed to disk as each point finishes; a CSV table of the latest row of
every point in the file is written beside it (same name, suffix ``.csv``) when the sweep ends.
Sweeps resume: a point whose row is already in the file is not recomputed; the key is the
point's parameters (width, lr, seed and the free parameters), not ``fn``, so use a new file for
a new experiment. An interrupted sweep keeps every finished point; a last line cut off in the
middle of a write is dropped (with a warning) when the file is next read.

Failures: an exception raised by ``fn`` (or a worker lost by Dask or the process pool) does
not stop the sweep. The point is recorded with ``status="failed"`` and the error
(``"ValueError: message"``), reported in the progress line, counted in
:attr:`SweepResult.n_failed`, and computed again by the next run (``retry_failed=True``).
``KeyboardInterrupt`` and ``SystemExit`` in the in-process mode stop the sweep at once.

``fn`` must be a top-level function of an importable module (it is pickled for worker
processes and Dask workers) and must return a mapping from names to scalars (bool, int, float
or str; NumPy scalars are converted; NaN and inf are kept, written as JSON's ``NaN`` and
``Infinity`` extensions that Python's :mod:`json` reads back).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import csv
import importlib
import itertools
import json
import math
import multiprocessing
import numbers
import os
import pickle
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["SweepPoint", "SweepRow", "SweepResult", "grid", "run_sweep", "run_sweep_strict", "read_results",
           "main"]

_AXES = ("width", "lr", "seed")
_ROW_COLUMNS = ("status", "error", "elapsed_s")
_RESERVED = frozenset(_AXES + _ROW_COLUMNS)
_DASK_HINT = 'running a sweep on a Dask scheduler needs the optional extra: pip install ".[dask]"'


def _scalar(name: str, value, *, allow_nonfinite: bool):
    """A plain Python bool/int/float/str from ``value``, or TypeError/ValueError naming ``name``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not allow_nonfinite and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    raise TypeError(f"{name} must be a bool, int, float or str, got {type(value).__name__}")


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} names must be identifiers, got {name!r}")
    if name in _RESERVED:
        raise ValueError(f"{what} name {name!r} is reserved (reserved: {sorted(_RESERVED)})")
    return name


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: width, base step size, seed and free parameters.

    Parameters
    ----------
    width : int
        Network width, ``>= 1``.
    lr : float
        Base step size, finite and ``> 0``.
    seed : int
        Seed of the point's random generator, ``>= 0``.
    params : mapping or iterable of (name, value) pairs, optional
        Free parameters (e.g. ``parametrization="mup"``): identifier names other than
        ``width``, ``lr``, ``seed``, ``status``, ``error``, ``elapsed_s``; finite scalar values.
        Stored as a tuple of pairs sorted by name, so that equal points compare and hash equal.

    Points are the keys of a sweep's results, so values are normalized on construction
    (``lr=1`` and ``lr=1.0`` are the same point; NumPy scalars become Python scalars).

    Raises
    ------
    TypeError, ValueError
        Wrong types, non-positive width or step, negative seed, bad or repeated names.
    """

    width: int
    lr: float
    seed: int
    params: tuple = ()

    def __post_init__(self):
        width = self.width.item() if isinstance(self.width, np.generic) else self.width
        seed = self.seed.item() if isinstance(self.seed, np.generic) else self.seed
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {self.width!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        lr = self.lr
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
            raise TypeError(f"lr must be a real number, got {type(lr).__name__}")
        lr = float(lr)
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be finite and > 0, got {lr}")
        params = self.params
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        normalized = {}
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(f"params must be a mapping or (name, value) pairs, got {item!r}")
            name, value = item
            _check_name(name, "free parameter")
            if name in normalized:
                raise ValueError(f"free parameter {name!r} given twice")
            normalized[name] = _scalar(f"free parameter {name!r}", value, allow_nonfinite=False)
        object.__setattr__(self, "width", int(width))
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "params", tuple(sorted(normalized.items())))

    def param(self, name: str):
        """Value of the free parameter ``name`` (KeyError naming the known ones if absent)."""
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(f"no free parameter {name!r}; this point has {[k for k, _ in self.params]}")

    def as_dict(self) -> dict:
        """Flat ``{"width", "lr", "seed", *free parameters}``, for tables and JSON."""
        return {"width": self.width, "lr": self.lr, "seed": self.seed, **dict(self.params)}

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


def _axis(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"axis {name!r} must be a sequence of values, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"axis {name!r} is empty")
    seen = []
    for v in values:
        v = _scalar(f"axis {name!r} value", v, allow_nonfinite=False)
        if v in seen:
            raise ValueError(f"axis {name!r} repeats the value {v!r}")
        seen.append(v)
    return seen


def grid(*, width: Sequence[int], lr: Sequence[float], seed: Sequence[int],
         **free: Sequence) -> list[SweepPoint]:
    """All points of the product of the axes: ``width × lr × seed × free axes``.

    Order: ``width`` outermost, then ``lr``, ``seed``, then the free axes by name, each in the
    order given. ``len(result) = len(width) · len(lr) · len(seed) · Π len(free axis)``.

    Raises
    ------
    TypeError, ValueError
        An axis that is not a sequence (a string is not one), is empty or repeats a value, or
        values :class:`SweepPoint` rejects.
    """
    axes = {"width": _axis("width", width), "lr": _axis("lr", lr), "seed": _axis("seed", seed)}
    names = sorted(free)
    for name in names:
        axes[name] = _axis(_check_name(name, "free parameter"), free[name])
    points = []
    for values in itertools.product(*axes.values()):
        w, step, s, *rest = values
        points.append(SweepPoint(w, step, s, tuple(zip(names, rest))))
    return points


@dataclass(frozen=True)
class SweepRow:
    """The outcome of one point: ``status`` is ``"ok"`` or ``"failed"``.

    ``results`` holds ``(name, value)`` pairs in the order ``fn`` returned them (empty for a
    failed point); ``error`` is ``"ExceptionType: message"`` for a failed point, else None;
    ``elapsed_s`` is the wall time of ``fn`` on its worker.
    """

    point: SweepPoint
    status: str
    results: tuple = ()
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def value(self, name: str):
        """The result ``name`` (KeyError if ``fn`` did not return it or the point failed)."""
        for key, value in self.results:
            if key == name:
                return value
        raise KeyError(f"no result {name!r} for {self.point.label()} (status {self.status})")

    def as_dict(self) -> dict:
        """Flat row: point columns, results, status, error, elapsed_s."""
        return {**self.point.as_dict(), **dict(self.results), "status": self.status,
                "error": self.error, "elapsed_s": self.elapsed_s}

    def to_json(self) -> str:
        return json.dumps({
            "point": {"width": self.point.width, "lr": self.point.lr, "seed": self.point.seed,
                      "params": dict(self.point.params)},
            "status": self.status, "results": dict(self.results), "error": self.error,
            "elapsed_s": self.elapsed_s,
        })

    @classmethod
    def from_json(cls, record: dict) -> "SweepRow":
        p = record["point"]
        point = SweepPoint(p["width"], p["lr"], p["seed"], tuple(p.get("params", {}).items()))
        return cls(point, record["status"], tuple(record.get("results", {}).items()),
                   record.get("error"), float(record.get("elapsed_s", 0.0)))


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep, in the order of its points, and where they are stored.

    ``n_computed`` points were evaluated by this run, ``n_reused`` were read from the results
    file, ``n_failed`` of the rows are failures (see :func:`run_sweep`).
    """

    rows: tuple
    results_path: Path
    csv_path: Path
    n_computed: int
    n_reused: int

    @property
    def n_failed(self) -> int:
        return sum(not row.ok for row in self.rows)

    @property
    def failed(self) -> tuple:
        return tuple(row for row in self.rows if not row.ok)

    def column(self, name: str) -> list:
        """One column over the rows (a point column, a result, or status/error/elapsed_s);
        None where a row lacks it (failed points have no results)."""
        return [row.as_dict().get(name) for row in self.rows]


def _check_results(out, point: SweepPoint) -> tuple:
    if not isinstance(out, Mapping):
        raise TypeError(f"fn must return a mapping of result names to scalars, "
                        f"got {type(out).__name__}")
    taken = set(point.as_dict()) | set(_ROW_COLUMNS)
    results = []
    for name, value in out.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"result names must be non-empty strings, got {name!r}")
        if name in taken:
            raise ValueError(f"result name {name!r} collides with a point or row column")
        results.append((name, _scalar(f"result {name!r}", value, allow_nonfinite=True)))
    return tuple(results)


def _run_point(fn: Callable, point: SweepPoint) -> SweepRow:
    """Evaluate ``fn`` at ``point`` on whatever worker runs this; failures become rows."""
    start = time.perf_counter()
    try:
        results = _check_results(fn(point), point)
    except Exception as exc:  # recorded, not raised: one bad point must not end the sweep
        return SweepRow(point, "failed", (), f"{type(exc).__name__}: {exc}",
                        time.perf_counter() - start)
    return SweepRow(point, "ok", results, None, time.perf_counter() - start)


def _lost_row(point: SweepPoint, exc: BaseException) -> SweepRow:
    return SweepRow(point, "failed", (), f"worker lost: {type(exc).__name__}: {exc}", 0.0)


def _check_results_path(results_path) -> Path:
    path = Path(results_path)
    if path.suffix != ".jsonl":
        raise ValueError(f"results_path must end in .jsonl (JSON lines; the CSV table is "
                         f"written beside it), got {str(path)!r}")
    return path


def _load(path: Path) -> dict:
    """Latest row of every point in a results file; repairs a cut-off last line."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" unless a write was cut off
    if tail:
        warnings.warn(f"{path}: dropping an incomplete last line (an interrupted write)",
                      RuntimeWarning, stacklevel=3)
        with open(path, "r+b") as f:
            f.truncate(len(data) - len(tail))
    rows = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = SweepRow.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} line {number} is not a sweep row ({exc}); "
                             f"fix or remove that line, or use another results_path") from exc
        rows[row.point] = row
    return rows


def run_sweep_strict(fn, points, *, results_path=None, scheduler=None, processes=None, progress=True,
                     what: str = "sweep") -> tuple[list, str | None]:
    """:func:`run_sweep` for experiments that need every point: failures raise.

    Without ``results_path`` the rows go to a temporary file (nothing to resume) and the points run
    in this process unless ``scheduler`` or ``processes`` says otherwise. Returns the rows and the
    stored results path (``None`` for a temporary one).

    Raises ``RuntimeError`` naming up to three failed points (the finished ones stay stored).
    """
    if results_path is None:
        with tempfile.TemporaryDirectory() as tmp:
            sweep = run_sweep(fn, points, results_path=Path(tmp) / f"{what}.jsonl",
                              processes=1 if scheduler is None and processes is None else processes,
                              scheduler=scheduler, progress=progress)
        stored = None
    else:
        sweep = run_sweep(fn, points, results_path=results_path, scheduler=scheduler, processes=processes,
                          progress=progress)
        stored = str(sweep.results_path)
    if sweep.n_failed:
        errors = "; ".join(f"{r.point.label()}: {r.error}" for r in sweep.failed[:3])
        raise RuntimeError(f"{sweep.n_failed} {what} points failed: {errors}")
    return sweep.rows, stored


def read_results(results_path) -> SweepResult:
    """Every point stored in a results file (its latest row), as a :class:`SweepResult`.

    Raises ValueError for a path not ending in ``.jsonl`` or a line that is not a sweep row,
    FileNotFoundError if the file does not exist.
    """
    path = _check_results_path(results_path)
    if not path.exists():
        raise FileNotFoundError(f"no results file at {path}")
    rows = tuple(_load(path).values())
    return SweepResult(rows, path, path.with_suffix(".csv"), 0, len(rows))


def _append(path: Path, row: SweepRow) -> None:
    # One line per point, on disk before the next point is reported: an interrupted sweep
    # loses at most the points still running.
    with open(path, "a", encoding="utf-8") as f:
        f.write(row.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def _write_csv(path: Path, rows: Iterable[SweepRow]) -> None:
    rows = list(rows)
    free = sorted({k for r in rows for k, _ in r.point.params})
    results = []
    for r in rows:
        for k, _ in r.results:
            if k not in results:
                results.append(k)
    header = list(_AXES) + free + results + list(_ROW_COLUMNS)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v)
                             for k, v in r.as_dict().items()})
    os.replace(tmp, path)


def _dask_client(scheduler: str):
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ImportError(_DASK_HINT) from exc
    return Client(scheduler, set_as_default=False)


def _execute_dask(fn, todo, scheduler, on_row):
    client = _dask_client(scheduler)
    try:
        from dask.distributed import as_completed

        futures = {client.submit(_run_point, fn, p, pure=False): p for p in todo}
        # loop= because this client is not the default one (set_as_default=False keeps the
        # caller's Dask configuration untouched).
        for future in as_completed(futures, loop=client.loop):
            try:
                row = future.result()
            except Exception as exc:  # KilledWorker, lost connection: the point failed
                row = _lost_row(futures[future], exc)
            on_row(row)
    finally:
        client.close()


def _execute_local(fn, todo, processes, on_row):
    if processes == 1:
        for point in todo:
            on_row(_run_point(fn, point))
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = {pool.submit(_run_point, fn, p): p for p in todo}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    row = future.result()
                except Exception as exc:  # BrokenProcessPool: a worker died
                    row = _lost_row(futures[future], exc)
                on_row(row)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def run_sweep(fn: Callable[[SweepPoint], Mapping], points: Sequence[SweepPoint], *,
              results_path, scheduler: str | None = None, processes: int | None = None,
              progress: bool = True, retry_failed: bool = True) -> SweepResult:
    """Evaluate ``fn`` at every point not already in ``results_path``; collect all rows.

    Parameters
    ----------
    fn : callable
        ``fn(point) -> {name: scalar}``; a top-level function when it runs in worker
        processes or on Dask (it is pickled).
    points : sequence of SweepPoint
        Distinct points, e.g. from :func:`grid`.
    results_path : path ending in ``.jsonl``
        The store: one JSON line per finished point, appended as points finish. The CSV table
        of all points in the file is written to the same path with suffix ``.csv`` at the end.
    scheduler : str, optional
        Address of a Dask scheduler (``"tcp://127.0.0.1:8786"``); runs the points on its
        workers. Needs ``pip install ".[dask]"``.
    processes : int, optional
        Local worker processes (``1``: in this process). Default: the number of CPUs, at most
        one per point to compute. Not allowed together with ``scheduler``.
    progress : bool
        Print one line per finished point to standard error (``k/N``, the point, its status
        and time, the elapsed time of the sweep).
    retry_failed : bool
        Compute again the points whose stored row is a failure (default). With False they are
        returned as stored.

    Returns
    -------
    SweepResult
        One row per point, in the order of ``points``.

    Cost: one call of ``fn`` per point not yet stored; the results file is read once.

    Raises
    ------
    TypeError
        ``fn`` not callable, or not picklable when it must be sent to workers; a point that
        is not a SweepPoint; ``scheduler`` not a string.
    ValueError
        No points, repeated points, ``processes < 1``, ``processes`` with ``scheduler``, a
        results path not ending in ``.jsonl``, a corrupt line in the results file.
    ImportError
        ``scheduler`` given but dask.distributed not installed (names the extra to install).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    points = list(points)
    if not points:
        raise ValueError("points is empty")
    for p in points:
        if not isinstance(p, SweepPoint):
            raise TypeError(f"points must be SweepPoint instances, got {type(p).__name__}")
    if len(set(points)) != len(points):
        repeated = next(p for p in points if points.count(p) > 1)
        raise ValueError(f"points repeat {repeated.label()}")
    path = _check_results_path(results_path)
    if scheduler is not None:
        if not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string, got {type(scheduler).__name__}")
        if processes is not None:
            raise ValueError("processes applies to local runs; a Dask cluster sets its workers")
    elif processes is not None:
        if isinstance(processes, bool) or not isinstance(processes, numbers.Integral) \
                or processes < 1:
            raise ValueError(f"processes must be an integer >= 1, got {processes!r}")

    path.parent.mkdir(parents=True, exist_ok=True)
    stored = _load(path)
    todo = [p for p in points
            if p not in stored or (retry_failed and not stored[p].ok)]
    n_reused = len(points) - len(todo)
    if scheduler is None:
        n_workers = min(int(processes or os.cpu_count() or 1), max(len(todo), 1))
        where = "this process" if n_workers == 1 else f"{n_workers} local processes"
    else:
        where = f"Dask scheduler {scheduler}"
    if todo and (scheduler is not None or n_workers > 1):
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise TypeError(f"fn must be picklable (a top-level function of an importable "
                            f"module) to run on {where}: {exc}") from exc

    start = time.perf_counter()
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else \
        (lambda line: None)
    log(f"[sweep] {len(points)} points: {n_reused} already in {path.name}, "
        f"computing {len(todo)} on {where}")
    done = 0

    def on_row(row: SweepRow) -> None:
        nonlocal done
        _append(path, row)
        stored[row.point] = row
        done += 1
        status = "ok" if row.ok else f"FAILED ({row.error})"
        log(f"[sweep] {done}/{len(todo)} {row.point.label()}: {status} in {row.elapsed_s:.2f} s"
            f" (elapsed {time.perf_counter() - start:.1f} s)")

    if todo:
        if scheduler is not None:
            _execute_dask(fn, todo, scheduler, on_row)
        else:
            _execute_local(fn, todo, n_workers, on_row)
    csv_path = path.with_suffix(".csv")
    _write_csv(csv_path, stored.values())
    result = SweepResult(tuple(stored[p] for p in points), path, csv_path, len(todo), n_reused)
    if todo:
        log(f"[sweep] done: {len(todo)} computed, {n_reused} reused, {result.n_failed} failed; "
            f"table {csv_path}")
    return result


def _parse_value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _load_function(spec: str) -> Callable:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"function must be given as module:function, got {spec!r}")
    fn = getattr(importlib.import_module(module_name), attr, None)
    if not callable(fn):
        raise ValueError(f"{spec!r} is not a function")
    return fn


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m variational_nets.sweep module:function --width ... --results``.

    Returns 0 when every point finished, 1 when some failed (their errors are in the table).
    """
    parser = argparse.ArgumentParser(
        prog="python -m variational_nets.sweep",
        description="Run fn(point) over width x lr x seed (x free axes), locally or on Dask; "
                    "resumable.")
    parser.add_argument("function", help="module:function taking a SweepPoint, returning a "
                                         "dict of scalars")
    parser.add_argument("--width", type=int, nargs="+", required=True)
    parser.add_argument("--lr", type=float, nargs="+", required=True)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                        help="a free axis; values parsed as int, float or string (repeatable)")
    parser.add_argument("--results", required=True, help="results file (.jsonl)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler address; default: local processes")
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    free = {}
    for text in args.param:
        name, sep, values = text.partition("=")
        if not sep:
            parser.error(f"--param must be NAME=V1,V2,..., got {text!r}")
        free[name] = [_parse_value(v) for v in values.split(",")]
    try:
        fn = _load_function(args.function)
        points = grid(width=args.width, lr=args.lr, seed=args.seed, **free)
    except (ValueError, TypeError, ImportError) as exc:
        parser.error(str(exc))
    result = run_sweep(fn, points, results_path=args.results, scheduler=args.scheduler,
                       processes=args.processes, progress=not args.quiet)
    print(f"{len(result.rows)} points ({result.n_computed} computed, {result.n_reused} reused, "
          f"{result.n_failed} failed); table: {result.csv_path}")
    return 1 if result.n_failed else 0


if __name__ == "__main__":
    # Run the imported module's main, so that points and rows are variational_nets.sweep's
    # classes (not __main__'s) in this process and in every worker.
    from variational_nets.sweep import main as _main

    sys.exit(_main())
