"""The runner: evaluate a function at every point of a grid not yet stored, collect the rows."""
from __future__ import annotations

import numbers
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..files import check_output_file
from .executors import execute_dask, execute_local, check_scheduler
from .points import SweepPoint
from .store import SweepResult, SweepRow, append_row, check_results_path, load_rows, write_csv

__all__ = ["SweepFailed", "run_sweep", "run_sweep_strict"]


class SweepFailed(RuntimeError):
    """Points of a sweep that needs every point failed; the finished ones stay stored.

    Parameters
    ----------
    what : str
        What the points are (``"transfer"``), for the message.
    n_failed : int
        How many points failed (attribute ``n_failed``).
    errors : tuple of str
        ``"point label: error"`` for up to three of them (attribute ``errors``).
    """

    def __init__(self, what: str, n_failed: int, errors: tuple):
        super().__init__(f"{n_failed} {what} points failed: {'; '.join(errors)}")
        self.n_failed, self.errors = n_failed, errors


def run_sweep(fn: Callable[[SweepPoint], Mapping], points: Sequence[SweepPoint], *,
              results_path, scheduler: str | None = None, processes: int | None = None,
              progress: bool = True, retry_failed: bool = True, csv_path=None) -> SweepResult:
    """Evaluate ``fn`` at every point not already in ``results_path``; collect all rows.

    Cost: one call of ``fn`` per point not yet stored; the results file is read once.

    An interrupt (``KeyboardInterrupt``, or an exception raised by a signal handler) stops the
    sweep at once: every worker process it started is terminated, queued Dask points are
    cancelled, the rows of the finished points stay in ``results_path`` and the exception
    propagates. A second run resumes from there.

    Parameters
    ----------
    fn : callable
        ``fn(point) -> {name: scalar}``; a top-level function when it runs in worker
        processes or on Dask (it is pickled).
    points : sequence of SweepPoint
        Distinct points, e.g. from :func:`grid`.
    results_path : path ending in ``.jsonl``
        The store: one JSON line per finished point, appended as points finish. Its folder
        must exist (it is not created).
    scheduler : str, optional
        Address of a Dask scheduler (``"tcp://127.0.0.1:8786"``); runs the points on its
        workers. Needs the optional extra ``dask``; checked by :func:`check_scheduler` (a TCP
        connection within 2 s) before anything else happens.
    processes : int, optional
        Local worker processes (``1``: in this process). Default: the number of CPUs, at most
        one per point to compute. Not allowed together with ``scheduler``.
    progress : bool, optional
        Print one line per finished point to standard error (``k/N``, the point, its status
        and time, the elapsed time of the sweep).
    retry_failed : bool, optional
        Compute again the points whose stored row is a failure (default). With False they are
        returned as stored.
    csv_path : path ending in ``.csv``, optional
        Where to write, at the end, the CSV table of every point in the results file
        (atomically; see :func:`write_csv`). Default: no table.

    Returns
    -------
    SweepResult
        One row per point, in the order of ``points``.

    Raises
    ------
    TypeError
        ``fn`` not callable, or not picklable when it must be sent to workers; a point that
        is not a SweepPoint; ``scheduler`` not a string; paths that are not paths.
    ValueError
        No points, repeated points, ``processes < 1``, ``processes`` with ``scheduler``, a
        results path not ending in ``.jsonl`` or in a missing folder, a ``csv_path`` not ending
        in ``.csv``, an unreachable scheduler, a corrupt line in the results file.
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
    path = check_results_path(results_path)
    if csv_path is not None:
        csv_path = check_output_file(csv_path, name="csv_path", suffixes=(".csv",))
    if scheduler is not None:
        if not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string, got {type(scheduler).__name__}")
        if processes is not None:
            raise ValueError("processes applies to local runs; a Dask cluster sets its workers")
    elif processes is not None:
        if isinstance(processes, bool) or not isinstance(processes, numbers.Integral) \
                or processes < 1:
            raise ValueError(f"processes must be an integer >= 1, got {processes!r}")
    stored = load_rows(path)
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
    if todo and scheduler is not None:
        check_scheduler(scheduler)

    start = time.perf_counter()
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else \
        (lambda line: None)
    log(f"[sweep] {len(points)} points: {n_reused} already in {path.name}, "
        f"computing {len(todo)} on {where}")
    done = 0

    def on_row(row: SweepRow) -> None:
        nonlocal done
        append_row(path, row)
        stored[row.point] = row
        done += 1
        status = "ok" if row.ok else f"FAILED ({row.error})"
        log(f"[sweep] {done}/{len(todo)} {row.point.label()}: {status} in {row.elapsed_s:.2f} s"
            f" (elapsed {time.perf_counter() - start:.1f} s)")

    if todo:
        if scheduler is not None:
            execute_dask(fn, todo, scheduler, on_row)
        else:
            execute_local(fn, todo, n_workers, on_row)
    if csv_path is not None:
        write_csv(csv_path, stored.values())
    result = SweepResult(tuple(stored[p] for p in points), path, csv_path, len(todo), n_reused)
    if todo:
        log(f"[sweep] done: {len(todo)} computed, {n_reused} reused, {result.n_failed} failed"
            + ("" if csv_path is None else f"; table {csv_path}"))
    return result


def run_sweep_strict(fn, points, *, results_path=None, scheduler=None, processes=None, progress=True,
                     what: str = "sweep") -> tuple[list, str | None]:
    """:func:`run_sweep` for experiments that need every point: failures raise.

    Parameters
    ----------
    fn : callable
        ``fn(point) -> {name: scalar}``, as for :func:`run_sweep`.
    points : sequence of SweepPoint
        Distinct points.
    results_path : path ending in ``.jsonl``, optional
        The store. Without it the rows go to a temporary file (nothing to resume) and the
        points run in this process unless ``scheduler`` or ``processes`` says otherwise.
    scheduler : str, optional
        Address of a Dask scheduler, as for :func:`run_sweep`.
    processes : int, optional
        Local worker processes, as for :func:`run_sweep`.
    progress : bool, optional
        One line per finished point on standard error.
    what : str, optional
        What the points are, for the messages (``"transfer"``).

    Returns
    -------
    rows : tuple of SweepRow
        One row per point, in the order of ``points``.
    stored : str or None
        The results path, None for a temporary one.

    Raises
    ------
    SweepFailed
        A ``RuntimeError`` naming up to three failed points (the finished ones stay stored).
    TypeError, ValueError, ImportError
        As for :func:`run_sweep`.
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
        errors = tuple(f"{r.point.label()}: {r.error}" for r in sweep.failed[:3])
        raise SweepFailed(what, sweep.n_failed, errors)
    return sweep.rows, stored
