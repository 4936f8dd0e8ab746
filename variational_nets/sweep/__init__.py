"""Sweeps over a grid of (width, step size, seed, ...) points: local processes or a Dask cluster.

A sweep evaluates ``fn(point) -> {name: scalar}`` at every :class:`SweepPoint` of a grid and
collects the results into one table on disk. The package has one module per concern:
:mod:`.points` (points and grids, the keys of the results), :mod:`.store` (the JSON-lines store
and the CSV table), :mod:`.executors` (where points run) and :mod:`.runner` (:func:`run_sweep`).
Where it runs:

* ``processes=1``: in this process, one point after another;
* ``processes=N`` (default: the number of CPUs): ``N`` local worker processes started with
  ``spawn`` (a forked child of a process that has initialized CUDA cannot use the GPU);
* ``scheduler="tcp://host:port"``: the workers of a running Dask cluster
  (``dask.distributed``, the optional extra ``pip install "ibvi-theory[dask]"``); an unreachable
  address is refused after a TCP connection attempt of at most 2 s.

Points that train on a GPU should not share it by accident: use ``processes=1`` on a one-GPU
machine, or a Dask cluster with one single-threaded worker per GPU.

The store is a JSON-lines file (``results_path``, suffix ``.jsonl``, in a folder that exists),
one line per finished point, appended and flushed to disk as each point finishes. A CSV table of
the latest row of every point in the file is written only when asked (``csv_path``), atomically,
when the sweep ends. Sweeps resume: a point whose row is already in the file is not recomputed;
the key is the point's parameters (width, lr, seed and the free parameters), not ``fn``, so use
a new file for a new experiment. An interrupted sweep keeps every finished point; a last line cut
off in the middle of a write is dropped (with a warning) when the file is next read.

Interrupts: ``KeyboardInterrupt`` (or an exception raised by a signal handler, as the command
line's SIGTERM handler does) stops the sweep at once, terminates every worker process it started
and cancels its queued Dask points, then propagates.

Failures: an exception raised by ``fn`` (or a worker lost by Dask or a local worker that died)
does not stop the sweep. The point is recorded with ``status="failed"`` and the error
(``"ValueError: message"``), reported in the progress line, counted in
:attr:`SweepResult.n_failed`, and computed again by the next run (``retry_failed=True``).

``fn`` must be a top-level function of an importable module (it is pickled for worker
processes and Dask workers) and must return a mapping from names to scalars (bool, int, float
or str; NumPy scalars are converted; NaN and inf are kept, written as JSON's ``NaN`` and
``Infinity`` extensions that Python's :mod:`json` reads back).
"""
from .executors import CONNECT_TIMEOUT, check_scheduler
from .points import SweepPoint, grid
from .runner import SweepFailed, run_sweep, run_sweep_strict
from .store import SweepResult, SweepRow, read_results, write_csv

__all__ = ["SweepPoint", "SweepRow", "SweepResult", "SweepFailed", "grid", "run_sweep", "run_sweep_strict",
           "read_results", "write_csv", "check_scheduler", "CONNECT_TIMEOUT"]
