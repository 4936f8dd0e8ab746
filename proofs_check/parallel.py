"""Run claims in worker processes, results in claim order.

The checks are independent and mostly single-threaded (small matrices, BLAS held to one thread),
so on a machine with ``k`` cores ``k`` worker processes finish the default run about ``k`` times
sooner. Each claim draws its random numbers from ``(seed, offset)`` alone
(:meth:`proofs_check.registry.Context.rng`), so the numbers do not depend on which process ran
it: the output is the same as a sequential run's, except for the times.

Workers are spawned (a fresh interpreter: no state shared with the caller), hold BLAS to one
thread, and ignore SIGINT, so that an interrupt reaches the parent alone, which then terminates
every worker before it returns.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Callable, Sequence

from .registry import Claim, ClaimResult, Context, run_claim

__all__ = ["available_cpus", "resolve_jobs", "parallelizable", "run_claims_in_processes"]

#: Most worker processes :func:`resolve_jobs` picks by itself (each holds NumPy, SciPy and
#: SymPy, about 200 MB).
MAX_AUTO_JOBS = 4
#: Seconds between checks for an interrupt while waiting for a worker.
_POLL = 0.2


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one).

    Returns
    -------
    int
        At least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs, n_claims: int) -> int:
    """The number of processes to use for ``n_claims`` claims.

    Parameters
    ----------
    jobs : int or None
        A positive count, or ``None`` for "as many as there are CPUs" (at most
        :data:`MAX_AUTO_JOBS`).
    n_claims : int
        Never more processes than claims.

    Returns
    -------
    int
        1 means: run in this process, no workers.

    Raises
    ------
    ValueError
        For a ``jobs`` that is not a positive integer or ``None``.
    """
    if jobs is None:
        jobs = min(available_cpus(), MAX_AUTO_JOBS)
    elif isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"invalid jobs: expected a positive integer or None, got {jobs!r}")
    return max(1, min(jobs, n_claims))


def parallelizable(claims: Sequence[Claim]) -> bool:
    """Whether every claim can run in a worker: its check is a function of :mod:`proofs_check.claims`.

    Parameters
    ----------
    claims : sequence of Claim

    Returns
    -------
    bool
        False when any check comes from elsewhere (a claim registered by a test or a user's
        script): a fresh worker process could not import it, or would not share its state, so
        such claims run in the calling process.
    """
    package = __package__ + ".claims."
    return all(getattr(c.check, "__module__", "").startswith(package) for c in claims)


def _initialize_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_one(claim: Claim, seed: int, quick: bool, full: bool, quiet: bool) -> ClaimResult:
    from variational_nets.backend import one_blas_thread

    def progress(message: str) -> None:
        if not quiet:
            print(f"      ... [{claim.id}] {message}", file=sys.stderr, flush=True)

    # inside the call: BLAS libraries are loaded by the claim's imports, after the worker started
    with one_blas_thread():
        return run_claim(claim, Context(seed=seed, quick=quick, full=full, progress=progress))


def run_claims_in_processes(claims: Sequence[Claim], ctx: Context, jobs: int, *, quiet: bool,
                            on_start: Callable[[int, Claim], None],
                            on_result: Callable[[ClaimResult], None]) -> None:
    """Run ``claims`` in ``jobs`` spawned processes; hand each result over in claim order.

    Parameters
    ----------
    claims : sequence of Claim
        Every check must be a function of :mod:`proofs_check.claims` (:func:`parallelizable`).
    ctx : Context
        Its seed, ``quick`` and ``full`` go to the workers; its ``progress`` does not (a worker
        prints its own progress lines on stderr unless ``quiet``).
    jobs : int
        Worker processes, at least 2.
    quiet : bool
        No progress lines from the workers.
    on_start : callable
        ``on_start(i, claim)`` before waiting for the ``i``-th (1-based) result.
    on_result : callable
        ``on_result(result)`` for each result, in claim order, as soon as it and every earlier
        one have finished.

    Notes
    -----
    An exception in the caller while waiting (``KeyboardInterrupt``, or the command line's
    SIGTERM exception) terminates every worker, then propagates. Cost: the claims' own cost
    divided by about ``jobs``, plus the start of ``jobs`` interpreters (about a second each).
    """
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(jobs, initializer=_initialize_worker)
    try:
        pending = [pool.apply_async(_run_one, (c, ctx.seed, ctx.quick, ctx.full, quiet)) for c in claims]
        for i, (claim, future) in enumerate(zip(claims, pending), 1):
            on_start(i, claim)
            while not future.ready():
                future.wait(_POLL)
            on_result(future.get())
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
