"""Where the points of a sweep run: in this process, in local worker processes, or on Dask.

Every executor calls ``on_row(row)`` in this process as each point finishes, and stops every
worker it started when it returns *or* raises: an interrupt (``KeyboardInterrupt``, or any
exception a signal handler raises) terminates the local worker processes at once and cancels the
points queued on a Dask cluster, so no worker is left running after the caller is gone.

Local workers are processes started with ``spawn`` (a forked child of a process that has
initialized CUDA cannot use the GPU). Each one receives a point through its own pipe, sends back
the row and waits for the next point; a worker that dies (killed, out of memory) loses only its
point, which is recorded as failed, and is replaced. Workers ignore SIGINT: Ctrl-C in a terminal
reaches the whole process group, and only this process decides what stops.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import socket
import threading
import time
from typing import Callable, Mapping

from .points import ROW_COLUMNS, SweepPoint, as_scalar
from .store import SweepRow

__all__ = ["DASK_HINT", "CONNECT_TIMEOUT", "check_scheduler", "execute_dask", "execute_local"]

#: The message of the ``ImportError`` raised when a scheduler is given without dask installed.
DASK_HINT = 'running a sweep on a Dask scheduler needs the optional extra dask: pip install "ibvi-theory[dask]"'
#: Seconds to wait for a TCP connection to a Dask scheduler before giving up.
CONNECT_TIMEOUT = 2.0
#: Seconds a terminated worker gets to exit before it is killed.
_STOP_GRACE = 1.0
_DEFAULT_DASK_PORT = 8786


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
        results.append((name, as_scalar(f"result {name!r}", value, allow_nonfinite=True)))
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


def _lost_row(point: SweepPoint, why: str) -> SweepRow:
    return SweepRow(point, "failed", (), f"worker lost: {why}", 0.0)


@contextlib.contextmanager
def _signals_blocked():
    """Hold SIGINT and SIGTERM while workers are started or stopped; they arrive afterwards."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --- Dask ------------------------------------------------------------------------------------

#: Transports of dask.distributed; only the TCP-based ones can be probed before connecting.
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def _host_port(address: str):
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in _SCHEMES:
        raise ValueError(f"scheduler: expected an address like tcp://HOST:PORT (transports: "
                         f"{', '.join(_SCHEMES)}), got {address!r}")
    if scheme not in ("tcp", "tls"):
        return None  # inproc, ucx, websockets: nothing to probe over TCP
    host, colon, port = rest.rpartition(":")
    if not colon or "]" in port:  # no port given (an IPv6 address ends in "]")
        host, port = rest, str(_DEFAULT_DASK_PORT)
    if not port.isdigit() or not host.strip("[]"):
        raise ValueError(f"scheduler: expected an address like tcp://HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


def check_scheduler(address, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast when a sweep cannot run on the Dask scheduler at ``address``.

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` (``tls://`` likewise; a bare ``HOST:PORT`` means TCP). Other
        transports are not probed.
    timeout : float, optional
        Seconds to wait for the TCP connection (default :data:`CONNECT_TIMEOUT`).

    Raises
    ------
    TypeError
        ``address`` is not a string.
    ImportError
        ``dask.distributed`` is not installed (the message names the extra to install).
    ValueError
        A malformed address, or no TCP connection to it within ``timeout`` (refused,
        unknown host, timed out); one line naming ``scheduler``.

    Notes
    -----
    Costs one TCP connection, opened and closed; nothing is sent.
    """
    if not isinstance(address, str):
        raise TypeError(f"scheduler must be an address string, got {type(address).__name__}")
    try:
        import dask.distributed  # noqa: F401
    except ImportError as exc:
        raise ImportError(DASK_HINT) from exc
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"scheduler: cannot reach {address} within {timeout:g} s ({reason})") from None


def execute_dask(fn, todo, scheduler, on_row):
    from dask.distributed import Client, as_completed

    client = Client(scheduler, set_as_default=False, timeout=f"{max(CONNECT_TIMEOUT, 10.0):g}s")
    futures = {}
    try:
        futures = {client.submit(_run_point, fn, p, pure=False): p for p in todo}
        # loop= because this client is not the default one (set_as_default=False keeps the
        # caller's Dask configuration untouched).
        for future in as_completed(futures, loop=client.loop):
            try:
                row = future.result()
            except Exception as exc:  # KilledWorker, lost connection: the point failed
                row = _lost_row(futures[future], f"{type(exc).__name__}: {exc}")
            on_row(row)
    finally:
        with _signals_blocked():
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(list(futures), force=True)
            client.close(timeout=_STOP_GRACE * 2)


# --- local processes -------------------------------------------------------------------------

def _worker_loop(conn, fn) -> None:
    """Body of a local worker: evaluate the points sent through ``conn`` until it sends None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # started while the parent held SIGINT and SIGTERM (see _Workers.start): take SIGTERM again,
    # so that the parent's terminate() ends this process at once
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    while True:
        try:
            point = conn.recv()
        except EOFError:  # the parent is gone
            return
        if point is None:
            return
        conn.send(_run_point(fn, point))


class _Workers:
    """Local worker processes, each with its own pipe and at most one point in flight."""

    def __init__(self, fn, context):
        self.fn, self.context = fn, context
        self.busy = {}  # connection -> (process, point)

    def start(self, point: SweepPoint) -> None:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_loop, args=(child, self.fn), daemon=True)
        # Started with SIGINT ignored, which the child inherits: a Ctrl-C during its start-up
        # must not print a traceback from the child. The parent's SIGINT and SIGTERM are held,
        # not lost, until the new worker is registered, so that an interrupt cannot orphan it.
        with _signals_blocked():
            if threading.current_thread() is threading.main_thread():
                handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    process.start()
                finally:
                    signal.signal(signal.SIGINT, handler)
            else:
                process.start()
            self.busy[parent] = (process, point)
        child.close()
        parent.send(point)

    def give(self, conn, point: SweepPoint) -> None:
        process, _ = self.busy[conn]
        conn.send(point)
        self.busy[conn] = (process, point)

    def retire(self, conn) -> None:
        process, _ = self.busy.pop(conn)
        with contextlib.suppress(OSError):
            conn.send(None)
        conn.close()
        process.join(_STOP_GRACE)
        if process.is_alive():
            process.kill()
            process.join()

    def stop_all(self) -> None:
        """Terminate every worker now (SIGTERM, then SIGKILL after a grace period)."""
        with _signals_blocked():
            processes = [p for p, _ in self.busy.values()]
            for process in processes:
                process.terminate()
            deadline = time.monotonic() + _STOP_GRACE
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
            for conn in self.busy:
                conn.close()
            self.busy.clear()


def execute_local(fn, todo, processes, on_row):
    if processes == 1:
        for point in todo:
            on_row(_run_point(fn, point))
        return
    pending = list(reversed(todo))
    workers = _Workers(fn, multiprocessing.get_context("spawn"))

    def lost(conn) -> None:
        process, point = workers.busy.pop(conn)
        conn.close()
        process.join()
        on_row(_lost_row(point, f"the worker process exited with code {process.exitcode}"))
        if pending:
            workers.start(pending.pop())

    try:
        while pending and len(workers.busy) < processes:
            workers.start(pending.pop())
        while workers.busy:
            by_sentinel = {p.sentinel: conn for conn, (p, _) in workers.busy.items()}
            ready = multiprocessing.connection.wait(list(workers.busy) + list(by_sentinel))
            for conn in [r for r in ready if r in workers.busy]:
                try:
                    row = conn.recv()
                except (EOFError, OSError):  # it died before sending its row
                    lost(conn)
                    continue
                on_row(row)
                if pending:
                    workers.give(conn, pending.pop())
                else:
                    workers.retire(conn)
            for sentinel in [r for r in ready if r in by_sentinel]:
                conn = by_sentinel[sentinel]
                # still busy and nothing left to read in its pipe: it died mid-point
                if conn in workers.busy and not conn.poll():
                    lost(conn)
    finally:
        workers.stop_all()
