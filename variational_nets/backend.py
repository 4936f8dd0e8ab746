"""Array backend: one code path over NumPy or CuPy.

The network code never imports NumPy or CuPy for array work directly; it receives an array
namespace ``xp`` from :func:`get_xp`. Random numbers are always drawn on the host from an explicit
:class:`numpy.random.Generator` and moved to the device with :func:`asarray`, so a seed gives the
same network on every backend.
"""
from __future__ import annotations

import contextlib

import numpy as np

BACKENDS = ("numpy", "cupy", "auto")


def cupy_available() -> bool:
    """True when CuPy imports *and* sees a CUDA device (``import cupy`` alone is not enough)."""
    try:
        import cupy
    except Exception:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:
        return False


def get_xp(backend: str = "numpy"):
    """The array namespace for ``backend``.

    Parameters
    ----------
    backend : {"numpy", "cupy", "auto"}
        ``"auto"`` picks CuPy where ``cupy.cuda.is_available()`` and NumPy otherwise.

    Raises
    ------
    ValueError
        For an unknown name, or ``"cupy"`` without a usable CUDA device.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"invalid backend (--backend): expected one of {', '.join(BACKENDS)}, "
                         f"got {backend!r}")
    if backend == "numpy" or (backend == "auto" and not cupy_available()):
        return np
    if not cupy_available():
        raise ValueError("invalid backend (--backend): 'cupy' needs CuPy and a CUDA device, "
                         "and none is available here")
    import cupy

    return cupy


def xp_name(xp) -> str:
    """``"numpy"`` or ``"cupy"``."""
    return "cupy" if xp.__name__.startswith("cupy") else "numpy"


def to_numpy(array) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array; scalars pass through ``numpy.asarray``."""
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return np.asarray(array)


def asarray(array, xp, dtype=None):
    """``array`` (NumPy or CuPy) as an array of namespace ``xp`` with ``dtype``."""
    if xp is np:
        return np.asarray(to_numpy(array), dtype=dtype)
    return xp.asarray(array, dtype=dtype)


@contextlib.contextmanager
def one_blas_thread():
    """Run BLAS on one thread inside the block, where threadpoolctl is installed (a no-op otherwise).

    The networks of the quick experiments multiply matrices of at most a few hundred columns:
    BLAS threads only spin-wait there, which on a loaded 2-core machine makes runs 10–50× slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
