"""Where the points of a sweep run: in this process, in local worker processes, or on Dask."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from typing import Callable, Mapping

from .points import ROW_COLUMNS, SweepPoint, _scalar
from .store import SweepRow

_DASK_HINT = 'running a sweep on a Dask scheduler needs the optional extra: pip install ".[dask]"'


def _check_results(out, point: SweepPoint) -> tuple:
    if not isinstance(out, Mapping):
        raise TypeError(f"fn must return a mapping of result names to scalars, "
                        f"got {type(out).__name__}")
    taken = set(point.as_dict()) | set(ROW_COLUMNS)
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
