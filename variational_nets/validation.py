"""Argument checks shared by every public function of :mod:`variational_nets`.

Each check returns the value converted to the type the library computes with (a Python ``int``
or ``float``, a tuple, an array) or raises an error whose message names the Python argument and
what was expected: ``invalid <name>: expected <what>, got <value>``. Wrong values raise
:class:`ArgumentValueError` (a ``ValueError``), wrong types :class:`ArgumentTypeError` (a
``TypeError``); both carry the argument's name in ``argument``, so that a command line can say
which of its options maps to it. The library itself never names a command-line flag.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

__all__ = ["ArgumentValueError", "ArgumentTypeError", "as_int", "as_float", "as_choice",
           "as_flag", "as_float_dtype", "as_distinct", "as_generator", "as_array", "as_labels", "array_namespace",
           "is_cupy_array", "bad_value", "bad_type", "check_memory", "physical_memory", "format_bytes"]


class ArgumentValueError(ValueError):
    """A bad value for the argument called ``argument``.

    Parameters
    ----------
    argument : str
        The Python name of the argument (``"batch_size"``, ``"widths"``).
    message : str
        The whole message, ``invalid <argument>: expected ..., got ...``.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


class ArgumentTypeError(TypeError):
    """A value of the wrong type for the argument called ``argument``.

    Parameters
    ----------
    argument : str
        The Python name of the argument.
    message : str
        The whole message, ``invalid <argument>: expected ..., got ...``.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad_value(name: str, expected: str, value=None, *, got: str | None = None) -> ArgumentValueError:
    """The :class:`ArgumentValueError` ``invalid <name>: expected <expected>, got <value>``.

    Parameters
    ----------
    name : str
        The argument's Python name.
    expected : str
        What a good value is (``"a positive integer"``).
    value : object
        What was given (shown by ``repr``, cut at 80 characters); a string is shown quoted.
    got : str, optional
        A description of what was given, shown as it is (``"shape (3, 2)"``), instead of
        ``value``.

    Returns
    -------
    ArgumentValueError
        To be raised by the caller.
    """
    shown = got if got is not None else _show(value)
    return ArgumentValueError(name, f"invalid {name}: expected {expected}, got {shown}")


def bad_type(name: str, expected: str, value) -> ArgumentTypeError:
    """The :class:`ArgumentTypeError` naming ``name``, the expected type and the type given.

    Parameters
    ----------
    name, expected, value
        As for :func:`bad_value`.

    Returns
    -------
    ArgumentTypeError
    """
    return ArgumentTypeError(name, f"invalid {name}: expected {expected}, "
                                   f"got {type(value).__name__} {_show(value)}")


def as_int(name: str, value, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as a Python ``int`` in ``[minimum, maximum]`` (bounds ``None``: unbounded).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int or numpy integer
        Booleans, floats and strings are refused (a float ``2.0`` is not an integer count).
    minimum, maximum : int or None, default 1 and None

    Returns
    -------
    int

    Raises
    ------
    ArgumentTypeError
        For a value that is not an integer.
    ArgumentValueError
        For an integer outside the bounds.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise bad_type(name, "an integer", value)
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            expected = {0: "an integer >= 0", 1: "a positive integer"}.get(
                minimum, f"an integer >= {minimum}")
        elif minimum is None:
            expected = f"an integer <= {maximum}"
        else:
            expected = f"an integer in [{minimum}, {maximum}]"
        raise bad_value(name, expected, value)
    return value


def as_float(name: str, value, *, low: float = -math.inf, high: float = math.inf,
             low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a Python ``float`` in the interval from ``low`` to ``high``.

    Parameters
    ----------
    name : str
    value : real number
        Python or NumPy ints and floats; booleans, strings, complex numbers and arrays refused.
        NaN is always refused.
    low, high : float
        Bounds of the interval.
    low_open, high_open : bool, default False
        Exclude the bound.
    allow_inf : bool, default False
        Accept ``±inf`` when it lies in the interval (``max_loss=inf`` means "no limit").

    Returns
    -------
    float

    Raises
    ------
    ArgumentTypeError
        For a value that is not a real number.
    ArgumentValueError
        For NaN, an infinite value (unless allowed) or a value outside the interval.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise bad_type(name, "a real number", value)
    value = float(value)
    inside = ((value > low if low_open else value >= low)
              and (value < high if high_open else value <= high))
    if math.isnan(value) or (math.isinf(value) and not allow_inf) or not inside:
        raise bad_value(name, _interval_text(low, high, low_open, high_open, allow_inf), value)
    return value


def _interval_text(low, high, low_open, high_open, allow_inf) -> str:
    finite = "" if allow_inf else "finite "
    if low == 0 and high == math.inf:
        return f"a {finite}number {'> 0' if low_open else '>= 0'}"
    if low == -math.inf and high == math.inf:
        return f"a {finite}number"
    if high == math.inf:
        return f"a {finite}number {'>' if low_open else '>='} {low:g}"
    return (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
            f"{')' if high_open else ']'}")


def as_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices`` (strings).

    Parameters
    ----------
    name : str
    value : str
    choices : sequence of str

    Returns
    -------
    str

    Raises
    ------
    ArgumentValueError
        For anything else (also a value of another type: a list or None is not a choice).
    """
    if not isinstance(value, str) or value not in choices:
        raise bad_value(name, "one of " + ", ".join(choices), value)
    return value


def as_flag(name: str, value) -> bool:
    """``value`` as a ``bool``; only ``True``/``False`` (or NumPy booleans) are accepted.

    Parameters
    ----------
    name : str
    value : bool

    Returns
    -------
    bool

    Raises
    ------
    ArgumentTypeError
        For anything else (``"yes"``, ``1``).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise bad_type(name, "True or False", value)
    return bool(value)


def as_float_dtype(name: str, value) -> np.dtype:
    """``value`` as the NumPy dtype float32 or float64.

    Parameters
    ----------
    name : str
    value : dtype-like
        ``numpy.float32``, ``"float64"``, a ``numpy.dtype``.

    Returns
    -------
    numpy.dtype

    Raises
    ------
    ArgumentTypeError
        For something that is not a dtype.
    ArgumentValueError
        For another dtype.
    """
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise bad_type(name, "float32 or float64", value) from None
    if dtype not in (np.float32, np.float64):
        raise bad_value(name, "float32 or float64", got=str(dtype))
    return dtype


def as_distinct(name: str, values, check) -> tuple:
    """A non-empty tuple of distinct values, each converted by ``check(name, value)``.

    Parameters
    ----------
    name : str
    values : sequence
        A list, tuple or array; a string or a single number is refused.
    check : callable
        ``check(name, value) -> converted value`` (raises for a bad entry).

    Returns
    -------
    tuple

    Raises
    ------
    ArgumentTypeError
        For a value that is not a sequence.
    ArgumentValueError
        For an empty sequence, repeated values, or a bad entry (from ``check``).
    """
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise bad_type(name, "a sequence", values)
    values = tuple(check(name, v) for v in values)
    if not values:
        raise bad_value(name, "at least one value", values)
    if len(set(values)) != len(values):
        raise bad_value(name, "distinct values", got=f"values that repeat, {_show(values)}")
    return values


def as_generator(name: str, rng) -> np.random.Generator:
    """``rng`` itself if it is a :class:`numpy.random.Generator`.

    Parameters
    ----------
    name : str
    rng : numpy.random.Generator
        Seeds, ``None`` and the legacy ``RandomState`` are refused: every random path of the
        library takes an explicit generator.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ArgumentTypeError
        For anything else.
    """
    if not isinstance(rng, np.random.Generator):
        raise bad_type(name, "a numpy.random.Generator (numpy.random.default_rng(seed))", rng)
    return rng


def physical_memory() -> int | None:
    """This machine's physical memory in bytes.

    Returns
    -------
    int or None
        From ``os.sysconf`` (page size × physical pages), else ``MemTotal`` of
        ``/proc/meminfo``; None when neither says.
    """
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def format_bytes(count: int) -> str:
    """``count`` bytes with a binary prefix and three significant digits.

    Parameters
    ----------
    count : int

    Returns
    -------
    str
        ``"1.5 KiB"``, ``"142 PiB"``, ``"3.2e+04 YiB"``.
    """
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if value < 1024:
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} YiB"


def check_memory(name: str, nbytes: int, what: str) -> None:
    """Refuse, before allocating, an argument that would need more than the physical memory.

    Parameters
    ----------
    name : str
        The argument that decides the size.
    nbytes : int
        The estimated bytes.
    what : str
        What would be allocated or run (``"training at width 99999999"``), for the message.

    Raises
    ------
    ArgumentValueError
        ``invalid <name>: <what> needs about <bytes> of memory, more than this machine's <bytes>``
        when ``nbytes`` exceeds :func:`physical_memory`. Nothing is checked when the machine's
        memory cannot be read.
    """
    available = physical_memory()
    if available is not None and nbytes > available:
        raise ArgumentValueError(name, f"invalid {name}: {what} needs about {format_bytes(nbytes)} of memory, "
                                       f"more than this machine's {format_bytes(available)}")


def is_cupy_array(value) -> bool:
    """Whether ``value`` is a CuPy array, decided without importing CuPy (optional, slow).

    Parameters
    ----------
    value : object

    Returns
    -------
    bool
    """
    return type(value).__module__.split(".")[0] == "cupy"


def array_namespace(value):
    """The array module of ``value``: ``cupy`` for a CuPy array, ``numpy`` for anything else.

    Parameters
    ----------
    value : object

    Returns
    -------
    module
    """
    if is_cupy_array(value):
        import cupy

        return cupy
    return np


def as_array(name: str, value, *, ndim: int, dtype=None, allow_empty: bool = False):
    """``value`` as a finite real array with ``ndim`` dimensions (NumPy or CuPy, as given).

    Parameters
    ----------
    name : str
    value : array_like
        NumPy or CuPy array, or a (nested) list or tuple of numbers, which is converted.
    ndim : int
        The number of dimensions required.
    dtype : numpy dtype, optional
        Convert to it (a float dtype); ``None`` keeps the array's own (real) dtype.
    allow_empty : bool, default False

    Returns
    -------
    array
        A NumPy array (for lists and NumPy input) or a CuPy array (for CuPy input).

    Raises
    ------
    ArgumentTypeError
        For a value that is not a real numeric array (strings, objects, complex numbers,
        ragged lists).
    ArgumentValueError
        For the wrong number of dimensions, an empty array, or NaN/inf entries.
    """
    xp = array_namespace(value)
    try:
        array = xp.asarray(value)
    except (TypeError, ValueError):
        raise bad_type(name, "a real numeric array", value) from None
    if array.dtype.kind not in "biuf":
        raise bad_type(name, "a real numeric array", value)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    if array.ndim != ndim:
        raise bad_value(name, f"a {ndim}-D array", got=f"shape {tuple(array.shape)}")
    if array.size == 0 and not allow_empty:
        raise bad_value(name, "a non-empty array", got=f"shape {tuple(array.shape)}")
    if array.dtype.kind == "f" and not bool(xp.isfinite(array).all()):
        raise bad_value(name, "finite values", got="NaN or inf entries")
    return array


def as_labels(name: str, value, num_classes: int, *, allow_float: bool = True):
    """Class labels: a 1-D integer array with values in ``0 .. num_classes − 1``.

    Parameters
    ----------
    name : str
    value : array_like
        Integers, or floats with integer values (converted to int64).
    num_classes : int
        ``K``; for the binary loss ``K = 2`` (labels 0 and 1).
    allow_float : bool, default True
        Accept floats with integer values; with False the array must have an integer dtype.

    Returns
    -------
    array of int64 (NumPy or CuPy, as given)

    Raises
    ------
    ArgumentTypeError
        For non-numeric input.
    ArgumentValueError
        For a shape other than ``(N,)``, empty or non-integer values, or labels outside the
        range.
    """
    labels = as_array(name, value, ndim=1)
    xp = array_namespace(labels)
    if labels.dtype.kind == "f" and not (allow_float and bool((labels == xp.round(labels)).all())):
        raise bad_value(name, "integer class labels", got=f"{labels.dtype} values")
    labels = labels.astype(np.int64, copy=False)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise bad_value(name, f"labels in 0..{num_classes - 1}", got=f"labels from {low} to {high}")
    return labels
