"""Data sets: toy regression, two moons, 8×8 digits, CIFAR-10 from the official binary files.

Every generator takes an explicit ``numpy.random.Generator``. Results are :class:`Dataset`
(NumPy arrays; inputs float32 (N, d); regression targets float32 (N, 1); class labels int64 (N,)).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .validation import as_flag, as_float, as_generator, as_int, bad_value, check_memory

__all__ = ["Dataset", "toy_regression", "two_moons", "digits", "cifar10", "cifar10_folder",
           "read_cifar10_file", "TOY_CLUSTERS", "TOY_TEST_RANGE", "CIFAR_RECORD",
           "CIFAR_RECORDS_PER_FILE", "CIFAR_TRAIN_FILES", "CIFAR_TEST_FILE"]

TOY_CLUSTERS = ((-1.0, -0.65), (0.25, 0.5), (0.75, 1.0))
TOY_TEST_RANGE = (-1.5, 1.5)
CIFAR_RECORD = 1 + 3072
CIFAR_RECORDS_PER_FILE = 10000
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"


@dataclass(frozen=True)
class Dataset:
    """A train/test split.

    Parameters
    ----------
    name : str
    x_train, y_train, x_test, y_test : numpy.ndarray
        Inputs float32 (N, d); regression targets float32 (N, 1); class labels int64 (N,).
    num_classes : int or None, default None
        None for regression.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None = None

    @property
    def is_regression(self) -> bool:
        """Whether the targets are real numbers (``num_classes`` is None)."""
        return self.num_classes is None


def _check_float32(name, *arrays):
    # the data sets are float32: a noise so large that samples leave its range is refused
    limit = float(np.finfo(np.float32).max)
    if not all(np.all(np.abs(a) <= limit) for a in arrays):
        raise bad_value(name, "a noise level whose samples fit in float32", got="overflowing samples")


def toy_regression(rng, noise_std: float = 0.02, points_per_cluster: int = 33,
                   num_test: int = 200) -> Dataset:
    """The authors' toy regression: ``y = sigmoid(10 x) − 0.5 + ε``, ``ε ~ N(0, noise_std²)``.

    Training inputs: ``points_per_cluster`` uniform points in each of ``[−1, −0.65]``,
    ``[0.25, 0.5]``, ``[0.75, 1.0]``; test inputs: ``num_test`` uniform on ``[−1.5, 1.5]``
    (targets with the same noise).

    Parameters
    ----------
    rng : numpy.random.Generator
    noise_std : float, default 0.02
        Finite, ``>= 0``.
    points_per_cluster, num_test : int, default 33 and 200
        Positive.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError, TypeError
        For a bad argument (named in the message).
    """
    as_generator("rng", rng)
    noise_std = as_float("noise_std", noise_std, low=0)
    points_per_cluster = as_int("points_per_cluster", points_per_cluster)
    num_test = as_int("num_test", num_test)
    for name, n in (("points_per_cluster", 3 * points_per_cluster), ("num_test", num_test)):
        check_memory(name, 24 * n, f"{n} points")  # float64 draws and float32 copies
    x_train = np.concatenate([rng.uniform(lo, hi, points_per_cluster) for lo, hi in TOY_CLUSTERS])
    x_test = rng.uniform(*TOY_TEST_RANGE, num_test)

    def target(x):
        return 1.0 / (1.0 + np.exp(-10.0 * x)) - 0.5 + noise_std * rng.standard_normal(x.shape)

    with np.errstate(over="ignore"):
        y_train, y_test = target(x_train), target(x_test)
    _check_float32("noise_std", y_train, y_test)
    as_col = lambda a: a.reshape(-1, 1).astype(np.float32)  # noqa: E731
    return Dataset("toy-regression", as_col(x_train), as_col(y_train), as_col(x_test), as_col(y_test))


def two_moons(rng, num_points: int = 600, noise: float = 0.1, num_train: int = 200) -> Dataset:
    """Two interleaving half circles (as scikit-learn's ``make_moons``), labels 0/1.

    Upper moon ``(cos t, sin t)``, lower moon ``(1 − cos t, ½ − sin t)``, ``t`` evenly spaced on
    ``[0, π]``, Gaussian noise of std ``noise`` on both coordinates; shuffled, the first
    ``num_train`` points are the training set.

    Parameters
    ----------
    rng : numpy.random.Generator
    num_points : int, default 600
        At least 2.
    noise : float, default 0.1
        Finite, ``>= 0``.
    num_train : int, default 200
        ``0 < num_train < num_points``.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError, TypeError
        For a bad argument (named in the message).
    """
    as_generator("rng", rng)
    num_points = as_int("num_points", num_points, minimum=2)
    noise = as_float("noise", noise, low=0)
    num_train = as_int("num_train", num_train, maximum=num_points - 1)
    check_memory("num_points", 64 * num_points, f"{num_points} points")
    n_upper = num_points // 2
    n_lower = num_points - n_upper
    t_up = np.linspace(0.0, np.pi, n_upper)
    t_lo = np.linspace(0.0, np.pi, n_lower)
    x = np.concatenate([np.stack([np.cos(t_up), np.sin(t_up)], axis=1),
                        np.stack([1.0 - np.cos(t_lo), 0.5 - np.sin(t_lo)], axis=1)])
    y = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    with np.errstate(over="ignore"):
        x = x + noise * rng.standard_normal(x.shape)
    _check_float32("noise", x)
    perm = rng.permutation(num_points)
    x, y = x[perm].astype(np.float32), y[perm]
    return Dataset("two-moons", x[:num_train], y[:num_train], x[num_train:], y[num_train:], 2)


def digits(rng, test_fraction: float = 1 / 3) -> Dataset:
    """The 8×8 digits of scikit-learn (1797 images, pixels scaled to [0, 1]), random split.

    Parameters
    ----------
    rng : numpy.random.Generator
    test_fraction : float, default 1/3
        In ``(0, 1)``.

    Returns
    -------
    Dataset

    Raises
    ------
    ImportError
        When scikit-learn (optional extra ``data``) is not installed.
    ValueError, TypeError
        For a bad argument.
    """
    as_generator("rng", rng)
    test_fraction = as_float("test_fraction", test_fraction, low=0, high=1, low_open=True,
                             high_open=True)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("the digits task needs scikit-learn: pip install 'ibvi-theory[data]'") from err
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    perm = rng.permutation(x.shape[0])
    n_test = int(round(test_fraction * x.shape[0]))
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], 10)


def cifar10_folder(data_dir) -> str:
    """The folder that holds the CIFAR-10 binary files: ``data_dir`` or the extracted
    ``cifar-10-batches-bin`` inside it (the files themselves are checked when read).

    Parameters
    ----------
    data_dir : path-like

    Returns
    -------
    str

    Raises
    ------
    ValueError, TypeError
        For None, a non-path or a path that is not a directory (the message names
        ``data_dir``).
    """
    if data_dir is None:
        raise bad_value("data_dir", "the folder with the official CIFAR-10 binary files "
                                    "(data_batch_1.bin ... test_batch.bin)", None)
    try:
        data_dir = os.fspath(data_dir)
    except TypeError:
        raise TypeError(f"invalid data_dir: expected a path, got {type(data_dir).__name__}") from None
    if not os.path.isdir(data_dir):
        raise bad_value("data_dir", "an existing directory", got=f"{data_dir!r}, which is not a directory")
    nested = os.path.join(data_dir, "cifar-10-batches-bin")
    if not os.path.exists(os.path.join(data_dir, CIFAR_TEST_FILE)) and os.path.isdir(nested):
        return nested
    return data_dir




def read_cifar10_file(path, strict_counts: bool = True, limit: int | None = None):
    """Read one CIFAR-10 binary file: records of 1 label byte + 3072 pixel bytes (R, G, B planes).

    Parameters
    ----------
    path : path-like
    strict_counts : bool, default True
        Require exactly 10000 records, as in the official files. With False any positive whole
        number of records up to 10000 is accepted (small files written by tests; subsets).
    limit : int, optional
        Keep only the first ``limit`` records.

    Returns
    -------
    (images uint8 (N, 3072), labels int64 (N,))

    Raises
    ------
    ValueError
        Missing file, size that is not a whole number of 3073-byte records (truncated file),
        wrong record count, labels outside 0..9. The file is read as raw bytes; nothing is
        unpickled.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"invalid path: expected a path, got {type(path).__name__}") from None
    strict_counts = as_flag("strict_counts", strict_counts)
    if limit is not None:
        limit = as_int("limit", limit)
    if not os.path.isfile(path):
        raise ValueError(f"invalid data_dir: missing CIFAR-10 file {path!r}")
    size = os.path.getsize(path)
    if size == 0 or size % CIFAR_RECORD:
        raise ValueError(f"invalid data_dir: {path!r} has {size} bytes, not a whole number of "
                         f"{CIFAR_RECORD}-byte records (truncated or not a CIFAR-10 binary file)")
    count = size // CIFAR_RECORD
    if count > CIFAR_RECORDS_PER_FILE or (strict_counts and count != CIFAR_RECORDS_PER_FILE):
        raise ValueError(f"invalid data_dir: {path!r} holds {count} records, "
                         f"expected {CIFAR_RECORDS_PER_FILE}")
    raw = np.fromfile(path, dtype=np.uint8).reshape(count, CIFAR_RECORD)
    if limit is not None:
        raw = raw[:limit]
    labels = raw[:, 0].astype(np.int64)
    if labels.size and labels.max() > 9:
        raise ValueError(f"invalid data_dir: {path!r} has label {int(labels.max())}, expected "
                         "0..9 (not a CIFAR-10 binary file?)")
    return np.ascontiguousarray(raw[:, 1:]), labels


def cifar10(data_dir, strict_counts: bool = True, limit: int | None = None) -> Dataset:
    """CIFAR-10 from the official binary version (``cifar-10-binary.tar.gz``, extracted).

    ``data_dir`` holds ``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin`` (or the
    extracted ``cifar-10-batches-bin`` folder inside it). Nothing is downloaded. Pixels are scaled
    to [0, 1] and standardised per channel with the training mean and std; layout (N, 3072) in
    the file's channel-major order. ``limit`` keeps the first ``limit`` records of each file;
    ``strict_counts`` as in :func:`read_cifar10_file`.

    Parameters
    ----------
    data_dir : path-like
    strict_counts : bool, default True
    limit : int, optional

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Missing or malformed directory/file (see :func:`read_cifar10_file`), a bad ``limit``.
    """
    strict_counts = as_flag("strict_counts", strict_counts)
    if limit is not None:
        limit = as_int("limit", limit)
    folder = cifar10_folder(data_dir)
    parts = [read_cifar10_file(os.path.join(folder, f), strict_counts, limit) for f in CIFAR_TRAIN_FILES]
    x_test_u8, y_test = read_cifar10_file(os.path.join(folder, CIFAR_TEST_FILE), strict_counts, limit)
    x_train = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y_train = np.concatenate([p[1] for p in parts])
    x_test = x_test_u8.astype(np.float32) / 255.0
    channels_train = x_train.reshape(-1, 3, 1024)
    mean = channels_train.mean(axis=(0, 2), keepdims=True)
    std = channels_train.std(axis=(0, 2), keepdims=True) + 1e-6

    def standardise(x):
        return ((x.reshape(-1, 3, 1024) - mean) / std).reshape(-1, 3072).astype(np.float32)

    return Dataset("cifar10", standardise(x_train), y_train, standardise(x_test), y_test, 10)
