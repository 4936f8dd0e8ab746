"""Input checks shared by the public functions: clear errors that name the argument."""
from __future__ import annotations

import functools
import math
import numbers
import os
import threading

import numpy as np


def as_float_array(name: str, value, *, ndim: int | tuple[int, ...], allow_empty: bool = False) -> np.ndarray:
    """``value`` as a float64 array of the given ``ndim``, finite, non-empty (unless allowed).

    Raises ``TypeError`` for non-numeric or complex input and ``ValueError`` naming ``name`` for a wrong
    number of dimensions, an empty array, or NaN/infinite entries.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise TypeError(f"{name} must be a real numeric array of a regular shape, "
                        f"got a ragged {type(value).__name__}") from exc
    if np.iscomplexobj(array):  # a float64 cast would silently drop the imaginary part
        raise TypeError(f"{name} must be real, got a complex array")
    try:
        array = array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real numeric array, got {type(value).__name__}") from exc
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in ndims:
        want = " or ".join(f"{k}-D" for k in ndims)
        raise ValueError(f"{name} must be {want}, got an array of shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return array


def as_matrix(name: str, value) -> np.ndarray:
    return as_float_array(name, value, ndim=2)


def as_vector(name: str, value, size: int | None = None) -> np.ndarray:
    vector = as_float_array(name, value, ndim=1)
    if size is not None and vector.shape[0] != size:
        raise ValueError(f"{name} must have length {size}, got {vector.shape[0]}")
    return vector


def as_step_multipliers(value, d: int) -> np.ndarray:
    """``value`` as a ``(d,)`` float64 array of positive finite step multipliers (a diagonal metric)."""
    multipliers = as_vector("step_multipliers", value, size=d)
    if not np.all(multipliers > 0):
        raise ValueError("step_multipliers must be positive (one step multiplier per coordinate), got "
                         f"minimum {float(np.min(multipliers)):.3g}")
    return multipliers


def as_positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        want = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {want} number, got {value}")
    return value


def as_momentum(momentum) -> float:
    """``momentum`` as a float heavy-ball coefficient in ``[0, 1)``."""
    momentum = as_positive_float("momentum", momentum, allow_zero=True)
    if momentum >= 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return momentum


_INT64_MAX = int(np.iinfo(np.int64).max)


def as_positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < 0 or (value == 0 and not allow_zero):
        want = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {want} integer, got {value}")
    if value > _INT64_MAX:  # counts index NumPy arrays and loops: they must fit in int64
        raise ValueError(f"{name} must be at most 2**63 - 1, got {value}")
    return value


def as_generator(seed, name: str = "seed") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed or an existing generator (never global state).

    Raises ``ValueError`` for ``None`` and ``TypeError``/``ValueError`` naming ``name`` for
    anything ``numpy.random.default_rng`` rejects (floats, strings, negative integers).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError(f"{name} must be given explicitly (an int or a numpy.random.Generator); "
                         "global random state is not used")
    try:
        return np.random.default_rng(seed)
    except TypeError as exc:
        raise TypeError(f"{name} must be a non-negative int, a sequence of them or a "
                        f"numpy.random.Generator, got {type(seed).__name__}") from exc
    except ValueError as exc:
        raise ValueError(f"{name} must be a non-negative int, a sequence of them or a "
                         f"numpy.random.Generator, got {seed!r}") from exc


def check_problem(X, y, prior_dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a regression problem ``(X, y)``: ``X`` is ``(n, d)``, ``y`` is ``(n,)``."""
    X = as_matrix("X", X)
    y = as_float_array("y", y, ndim=1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have one entry per row of X: X is {X.shape}, y has length {y.shape[0]}")
    if prior_dim is not None and prior_dim != X.shape[1]:
        raise ValueError(f"prior has dimension {prior_dim} but X has {X.shape[1]} columns")
    return X, y


def finite_result(names: str, value: float) -> float:
    """``value`` if it is finite, else a ``ValueError`` naming ``names``, the arguments whose scale took it
    out of the float64 range (a quantity computed with Python floats, which overflow to ``inf`` silently)."""
    if not math.isfinite(value):
        raise ValueError(f"the result would be {value}, outside the float64 range: {names} too large or too "
                         "small in scale; rescale them")
    return value


#: Multiplier of ``d·max|λ|`` below which a negative eigenvalue of a covariance is rounding.
EPS_DEFAULT_CLIP = float(np.finfo(np.float64).eps)


_GUARD = threading.local()  # depth of nested float_guard calls in this thread


def float_guard(*names: str):
    """Decorator: float64 overflow or an invalid operation inside the function becomes a ``ValueError``.

    NumPy would otherwise return ``inf``/``NaN`` with a ``RuntimeWarning`` (or SciPy would
    reject the intermediate with its own message) when finite but extreme inputs (``1e308``
    entries, huge scalings) overflow in a product. The error names the arguments ``names`` of
    the outermost guarded function, the one the user called. Underflow to zero is rounding and
    stays silent. A caller that has chosen to handle overflow itself
    (``numpy.errstate(over="ignore")``, as the divergence checks of the simulators and the GD
    iterate do) gets NumPy's ``inf`` unchanged.
    """
    subject = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def wrap(function):
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            depth = getattr(_GUARD, "depth", 0)
            if depth > 0 or np.geterr()["over"] == "ignore":
                return function(*args, **kwargs)
            _GUARD.depth = 1
            try:
                with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                    return function(*args, **kwargs)
            except FloatingPointError as exc:
                raise ValueError(f"{subject} hold values too large or too extreme for float64 arithmetic "
                                 f"in {function.__qualname__} ({exc}); rescale them") from None
            finally:
                _GUARD.depth = 0

        return guarded

    return wrap


def _memory_bytes() -> float:
    """Physical memory of this machine in bytes (``inf`` where the OS does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return math.inf


def check_allocation(names: str, *shape: int, itemsize: int = 8) -> None:
    """Refuse, naming ``names``, an array of ``shape`` larger than this machine's memory."""
    need = float(itemsize) * math.prod(float(k) for k in shape)
    available = _memory_bytes()
    if need > available:
        raise ValueError(f"{names}: the result would be an array of shape {tuple(shape)} ({need:.3g} bytes), more "
                         f"than this machine's memory ({available:.3g} bytes)")
