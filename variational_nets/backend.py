"""Array backend: one code path over NumPy or CuPy.

The network code never imports NumPy or CuPy for array work directly; it receives an array
namespace ``xp`` from :func:`get_xp`. Random numbers are always drawn on the host from an explicit
:class:`numpy.random.Generator` and moved to the device with :func:`asarray`, so a seed gives the
same network on every backend.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .validation import array_namespace, as_choice, bad_type, bad_value

__all__ = ["BACKENDS", "cupy_available", "get_xp", "xp_name", "to_numpy", "asarray",
           "array_namespace", "one_blas_thread"]

BACKENDS = ("numpy", "cupy", "auto")


def cupy_available() -> bool:
    """Whether CuPy imports *and* sees a CUDA device (``import cupy`` alone is not enough).

    Returns
    -------
    bool
    """
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

    Returns
    -------
    module
        ``numpy`` or ``cupy``.

    Raises
    ------
    ValueError
        For an unknown name, or ``"cupy"`` without a usable CUDA device.
    """
    as_choice("backend", backend, BACKENDS)
    if backend == "numpy" or (backend == "auto" and not cupy_available()):
        return np
    if not cupy_available():
        raise bad_value("backend", "'numpy' or 'auto' here: 'cupy' needs CuPy and a CUDA "
                                   "device, and none is available", backend)
    import cupy

    return cupy


def xp_name(xp) -> str:
    """The name of the array namespace ``xp``.

    Parameters
    ----------
    xp : module

    Returns
    -------
    {"numpy", "cupy"}
    """
    name = getattr(xp, "__name__", None)
    if name not in ("numpy", "cupy"):
        raise bad_type("xp", "the numpy or cupy module", xp)
    return name


def to_numpy(array) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array; scalars pass through ``numpy.asarray``.

    Parameters
    ----------
    array : array or scalar

    Returns
    -------
    numpy.ndarray
    """
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return np.asarray(array)


def asarray(array, xp, dtype=None):
    """``array`` (NumPy or CuPy) as an array of namespace ``xp`` with ``dtype``.

    Parameters
    ----------
    array : array_like
    xp : module
    dtype : numpy dtype, optional

    Returns
    -------
    array of namespace ``xp``
    """
    try:
        if xp is np:
            return np.asarray(to_numpy(array), dtype=dtype)
        return xp.asarray(array, dtype=dtype)
    except (TypeError, ValueError):
        raise bad_type("array", f"an array convertible to {np.dtype(dtype).name if dtype else 'an array'}",
                       array) from None


@contextlib.contextmanager
def one_blas_thread():
    """Run BLAS on one thread inside the block, where threadpoolctl is installed (a no-op otherwise).

    Yields
    ------
    None

    Notes
    -----
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
