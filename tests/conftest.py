"""Shared test configuration.

Hypothesis runs with a deterministic profile by default (as SciPy does): the same examples on
every run, no example database, no deadline. Set ``HYPOTHESIS_PROFILE=random`` for a
nondeterministic exploration run.

The ``xp`` fixture runs a test over every available array backend (NumPy always; CuPy only
where ``cupy.cuda.is_available()``), and skips the CuPy case cleanly elsewhere.

BLAS runs on one thread for the whole session: the suite's matrices are small, and on a 2-core
machine extra BLAS threads only spin and slow the suite down. Spawned
worker processes set their own limit where it matters (``one_blas_thread``).

``group_processes`` and ``sigterm`` serve the tests that stop a command line with SIGTERM and
check that none of its worker processes is left.
"""
import os
import signal
import time

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

from variational_nets.backend import cupy_available, one_blas_thread

matplotlib.use("Agg")
threadpool_limits(1)

settings.register_profile(
    "deterministic",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "random",
    derandomize=False,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """Array namespace: numpy, or cupy when a GPU is present (skipped otherwise)."""
    if request.param == "numpy":
        return np
    if not cupy_available():
        pytest.skip("CuPy with a CUDA device is not available")
    import cupy

    return cupy


def pytest_collection_modifyitems(config, items):
    if cupy_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU through CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="module")
def blas_single_thread():
    """BLAS on one thread for a test module that trains small networks (see ``one_blas_thread``)."""
    with one_blas_thread():
        yield


def _alive_in_group(pgid: int) -> list:
    """Processes of process group ``pgid`` that are alive (zombies, already dead and waiting for
    init to reap them, do not count), read from /proc/*/stat."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            alive.append(int(entry))
    return alive


@pytest.fixture
def group_processes():
    """``group_processes(pgid)``: the live processes of a process group (Linux, /proc)."""
    return _alive_in_group


@pytest.fixture
def sigterm():
    """``sigterm(proc)``: send SIGTERM, wait (30 s at most), return ``(out, err, seconds)``."""
    def stop(proc):
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        return out, err, time.monotonic() - sent
    return stop
