r"""Image corruptions in the manner of MNIST-C, and one out-of-distribution set (NumPy/SciPy).

Every corruption is a pure function ``corruption(images, severity, rng) -> images``:

* ``images``: a real array (N, H, W) with values in [0, 1] (a grey image per row, ink = 1, as
  MNIST scaled to [0, 1]); the result has the same shape and dtype, values in [0, 1], and is a
  new array (the input is never changed);
* ``severity``: a number in ``[0, 5]``, as the five levels of MNIST-C / CIFAR-10-C; every
  parameter below is a function of the strength ``f = severity / 5``, and severity 0 returns
  the images unchanged (a copy); the benchmark uses severity 5, the strongest;
* ``rng``: a :class:`numpy.random.Generator`; the same generator state gives the same output.

Geometric corruptions resample each image at ``A (p − c) + c + t`` (``p`` an output pixel's
centre, ``c`` the image centre) with bilinear interpolation and ink 0 outside the image. Sizes
that are given in pixels for 28×28 MNIST scale with the image side ``H``.

Cost: ``O(N H W)`` for each corruption, ``O(N H W L)`` for the blurs over ``L`` taps.
:data:`CORRUPTIONS` maps names to the functions; :func:`corrupt` applies one by name.
:func:`out_of_distribution` gives the out-of-distribution set of the benchmark.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
from scipy import ndimage

from .validation import as_array, as_choice, as_float, as_generator, bad_value

__all__ = ["CORRUPTIONS", "MAX_SEVERITY", "corrupt", "out_of_distribution", "as_images",
           "gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear",
           "scale", "rotate", "translate", "brightness", "contrast", "stripe", "zigzag",
           "dotted_line", "fog"]

MAX_SEVERITY = 5.0


def as_images(x, image_shape) -> np.ndarray:
    """Rows of ``H·W`` pixels as images (N, H, W) (a view when ``x`` is contiguous).

    Parameters
    ----------
    x : array_like (N, H·W)
    image_shape : (int, int)

    Returns
    -------
    numpy.ndarray (N, H, W)

    Raises
    ------
    ValueError
        When the rows do not hold ``H·W`` pixels.
    """
    x = np.asarray(x)
    h, w = (int(s) for s in image_shape)
    if x.ndim != 2 or x.shape[1] != h * w:
        raise bad_value("x", f"rows of {h}·{w} = {h * w} pixels", got=f"shape {x.shape}")
    return x.reshape(x.shape[0], h, w)


def _check_images(images):
    images = as_array("images", images, ndim=3)
    if images.dtype.kind != "f":
        images = images.astype(np.float64)
    if images.min() < 0 or images.max() > 1:
        raise bad_value("images", "values in [0, 1]",
                        got=f"values from {float(images.min()):.3g} to {float(images.max()):.3g}")
    return images


def _check(images, severity, rng):
    images = _check_images(images)
    severity = as_float("severity", severity, low=0.0, high=MAX_SEVERITY)
    as_generator("rng", rng)
    return images, severity / MAX_SEVERITY


def _finish(out, images):
    return np.clip(out, 0.0, 1.0).astype(images.dtype, copy=False)


def _centred_grid(h, w):
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                             indexing="ij")
    return rows - (h - 1) / 2.0, cols - (w - 1) / 2.0


def _resample(images, matrices, shifts):
    """Image ``n`` sampled at ``A_n (p − c) + c + t_n``, A (N, 2, 2), t (N, 2): bilinear, with ink 0
    outside the image and interpolated across its edge (SciPy's ``mode="grid-constant"``)."""
    n, h, w = images.shape
    r, c = _centred_grid(h, w)
    src_r = matrices[:, 0, 0, None, None] * r + matrices[:, 0, 1, None, None] * c
    src_c = matrices[:, 1, 0, None, None] * r + matrices[:, 1, 1, None, None] * c
    src_r = src_r + (h - 1) / 2.0 + shifts[:, 0, None, None]
    src_c = src_c + (w - 1) / 2.0 + shifts[:, 1, None, None]
    # bilinear interpolation on the image padded by one pixel of zeros on every side
    padded = np.pad(images.astype(np.float64, copy=False), ((0, 0), (1, 1), (1, 1)))
    src_r = np.clip(src_r + 1.0, 0.0, h + 1.0)
    src_c = np.clip(src_c + 1.0, 0.0, w + 1.0)
    r0 = np.minimum(np.floor(src_r).astype(np.intp), h)
    c0 = np.minimum(np.floor(src_c).astype(np.intp), w)
    dr, dc = src_r - r0, src_c - c0
    k = np.arange(n)[:, None, None]
    return ((1 - dr) * ((1 - dc) * padded[k, r0, c0] + dc * padded[k, r0, c0 + 1])
            + dr * ((1 - dc) * padded[k, r0 + 1, c0] + dc * padded[k, r0 + 1, c0 + 1]))


def _signs(rng, n):
    return np.where(rng.random(n) < 0.5, -1.0, 1.0)


# The numpydoc sections of every corruption (the public signature is ``(images, severity, rng)``).
_CORRUPTION_SECTIONS = """
Parameters
----------
images : array_like, shape (N, H, W)
    Grey images with values in [0, 1] (ink = 1), finite; a non-float array is read as float64.
severity : float
    Strength in [0, 5]; the formula above uses ``f = severity / 5``, and severity 0 returns an
    unchanged copy.
rng : numpy.random.Generator
    Source of the random draws; the same state gives the same output. A deterministic
    corruption checks it and draws nothing from it.

Returns
-------
numpy.ndarray, shape (N, H, W)
    The corrupted images: a new array (the input is not changed) of the input's float dtype,
    values clipped to [0, 1].

Raises
------
ValueError
    For images that are not 3-D, empty, not finite or outside [0, 1], or a severity outside
    [0, 5].
TypeError
    For images that are not a real numeric array, a severity that is not a real number, or an
    ``rng`` that is not a :class:`numpy.random.Generator`.
"""


def _corruption(body):
    """The public ``name(images, severity, rng)`` around ``body(images, f, rng)``.

    The wrapper checks the arguments, returns a copy at severity 0 and clips what ``body``
    returns to [0, 1] in the images' dtype; ``body`` gets the checked images and the strength
    ``f = severity / 5`` in ``(0, 1]``. The wrapper keeps ``body``'s name, and its own signature
    ``(images, severity, rng)``; its docstring is ``body``'s (the formula) followed by the
    numpydoc sections every corruption shares (:data:`_CORRUPTION_SECTIONS`), so that help() and
    the API page show it whole without one block written fifteen times.
    """
    def corruption(images, severity, rng):
        images, f = _check(images, severity, rng)
        if f == 0:
            return images.copy()
        return _finish(body(images, f, rng), images)

    for attr in ("__module__", "__name__", "__qualname__"):
        setattr(corruption, attr, getattr(body, attr))
    if body.__doc__ is not None:  # None under ``python -OO``
        corruption.__doc__ = inspect.cleandoc(body.__doc__) + "\n" + _CORRUPTION_SECTIONS
    return corruption


@_corruption
def gaussian_noise(images, f, rng):
    """Additive Gaussian noise: ``x + σ ε`` with ``σ = 0.5 f``, ``ε ~ N(0, 1)`` per pixel."""
    return images + 0.5 * f * rng.standard_normal(images.shape)


@_corruption
def shot_noise(images, f, rng):
    """Photon (shot) noise: ``Poisson(λ x) / λ`` per pixel with ``λ = 4 / f²`` photons at ink 1.
    """
    lam = 4.0 / f ** 2
    return rng.poisson(lam * images) / lam


@_corruption
def impulse_noise(images, f, rng):
    """Salt-and-pepper noise: each pixel becomes 0 or 1 (equally likely) with probability ``0.3 f``.
    """
    hit = rng.random(images.shape) < 0.3 * f
    salt = rng.random(images.shape) < 0.5
    return np.where(hit, salt.astype(np.float64), images)


@_corruption
def glass_blur(images, f, rng):
    """Frosted glass: a Gaussian blur of std ``0.7 f · H/28`` pixels, then every pixel takes the
    value of a uniformly random pixel within ``δ = max(1, round(2 f · H/28))`` rows and columns
    (clipped at the border).
    """
    n, h, w = images.shape
    unit = h / 28.0
    blurred = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0.0, 0.7 * f * unit, 0.7 * f * unit))
    delta = max(1, int(round(2 * f * unit)))
    rows = np.clip(np.arange(h)[None, :, None] + rng.integers(-delta, delta + 1, (n, h, w)), 0, h - 1)
    cols = np.clip(np.arange(w)[None, None, :] + rng.integers(-delta, delta + 1, (n, h, w)), 0, w - 1)
    return blurred[np.arange(n)[:, None, None], rows, cols]


@_corruption
def motion_blur(images, f, rng):
    """Motion blur: the mean of the image shifted along a segment of length ``0.35 f H`` pixels in
    a uniformly random direction (per image), over ``max(2, ⌈length⌉) + 1`` equally spaced taps.
    """
    n, h, _ = images.shape
    length = 0.35 * f * h
    theta = rng.uniform(0.0, np.pi, n)
    direction = np.stack([np.sin(theta), np.cos(theta)], -1)
    eye = np.broadcast_to(np.eye(2), (n, 2, 2))
    taps = np.linspace(-0.5, 0.5, max(2, math.ceil(length)) + 1)
    total = sum(_resample(images, eye, t * length * direction) for t in taps)
    return total / taps.size


@_corruption
def shear(images, f, rng):
    """Horizontal shear about the centre: ``A = [[1, 0], [s, 1]]`` with ``s = ±0.6 f`` (random sign).
    """
    n = images.shape[0]
    s = 0.6 * f * _signs(rng, n)
    matrices = np.zeros((n, 2, 2))
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    matrices[:, 1, 0] = s
    return _resample(images, matrices, np.zeros((n, 2)))


@_corruption
def scale(images, f, rng):
    """Zoom out about the centre: the digit shrinks by the factor ``1 − 0.5 f`` (``A = I/(1 − 0.5 f)``).

    The generator is not used (the corruption is deterministic) but is checked.
    """
    n = images.shape[0]
    matrices = np.broadcast_to(np.eye(2) / (1.0 - 0.5 * f), (n, 2, 2))
    return _resample(images, matrices, np.zeros((n, 2)))


@_corruption
def rotate(images, f, rng):
    """Rotation about the centre by ``±90° f`` (random sign per image).
    """
    n = images.shape[0]
    angle = np.deg2rad(90.0 * f) * _signs(rng, n)
    cos, sin = np.cos(angle), np.sin(angle)
    matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    return _resample(images, matrices, np.zeros((n, 2)))


@_corruption
def translate(images, f, rng):
    """Translation by ``0.3 f H`` pixels in a uniformly random direction (per image).
    """
    n, h, _ = images.shape
    theta = rng.uniform(0.0, 2 * np.pi, n)
    shifts = 0.3 * f * h * np.stack([np.sin(theta), np.cos(theta)], -1)
    return _resample(images, np.broadcast_to(np.eye(2), (n, 2, 2)), shifts)


@_corruption
def brightness(images, f, rng):
    """Brightness: ``x + 0.6 f`` (the background turns grey); deterministic, ``rng`` checked only.
    """
    return images + 0.6 * f


@_corruption
def contrast(images, f, rng):
    """Contrast: ``m + (1 − 0.8 f)(x − m)`` with ``m`` each image's mean pixel; deterministic.
    """
    mean = images.mean(axis=(1, 2), keepdims=True)
    return mean + (1.0 - 0.8 * f) * (images - mean)


@_corruption
def stripe(images, f, rng):
    """Stripe: the pixels of a vertical band of ``max(1, round(0.25 f W))`` columns at a uniformly
    random position are inverted, ``x ↦ 1 − x`` (per image).
    """
    n, _, w = images.shape
    width = max(1, int(round(0.25 * f * w)))
    start = rng.integers(0, w - width + 1, n)
    cols = np.arange(w)[None, :]
    band = (cols >= start[:, None]) & (cols < start[:, None] + width)
    return np.where(band[:, None, :], 1.0 - images, images)


def _draw_polyline(points, h, w, thickness):
    """Ink (N, H, W) in [0, 1] of polylines through ``points`` (N, K, 2): ``1`` within
    ``thickness`` pixels of a segment, falling off linearly over one more pixel."""
    r, c = np.meshgrid(np.arange(h) + 0.0, np.arange(w) + 0.0, indexing="ij")
    grid = np.stack([r, c], -1)[None, None]
    a, b = points[:, :-1, None, None, :], points[:, 1:, None, None, :]
    ab = b - a
    t = np.clip(((grid - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    d = np.sqrt(((grid - (a + t[..., None] * ab)) ** 2).sum(-1)).min(axis=1)
    return np.clip(1.0 + thickness - d, 0.0, 1.0)


@_corruption
def zigzag(images, f, rng):
    """Zigzag: a bright polyline of 4 segments crossing the image from a random left-edge row to a
    random right-edge row, its vertices alternating ``±0.25 H`` about the straight path, drawn
    ``0.5 · H/28`` pixels thick with opacity ``f`` (``max(x, f · line)``).
    """
    n, h, w = images.shape
    cols = np.linspace(0.0, w - 1.0, 5)
    start, end = rng.uniform(0, h - 1, n), rng.uniform(0, h - 1, n)
    rows = start[:, None] + (end - start)[:, None] * np.linspace(0, 1, 5)
    rows = rows + 0.25 * h * np.array([0, 1, -1, 1, 0])[None, :] * _signs(rng, n)[:, None]
    points = np.stack([np.clip(rows, 0, h - 1), np.broadcast_to(cols, rows.shape)], -1)
    line = _draw_polyline(points, h, w, 0.5 * h / 28.0)
    return np.maximum(images, f * line)


@_corruption
def dotted_line(images, f, rng):
    """Dotted line: dots every ``3 · H/28`` pixels along the segment between two uniformly random
    points on the top and bottom edges, each dot a pixel disc of radius ``0.5 · H/28``, with
    opacity ``f`` (``max(x, f · dots)``).
    """
    n, h, w = images.shape
    unit = h / 28.0
    top = np.stack([np.zeros(n), rng.uniform(0, w - 1, n)], -1)
    bottom = np.stack([np.full(n, h - 1.0), rng.uniform(0, w - 1, n)], -1)
    count = max(2, int(np.hypot(h, w) / (3 * unit)) + 1)
    t = np.linspace(0, 1, count)[None, :, None]
    dots = top[:, None, :] + t * (bottom - top)[:, None, :]  # (N, count, 2)
    r, c = np.meshgrid(np.arange(h) + 0.0, np.arange(w) + 0.0, indexing="ij")
    d = np.sqrt((r[None, None] - dots[..., 0, None, None]) ** 2
                + (c[None, None] - dots[..., 1, None, None]) ** 2).min(axis=1)
    ink = np.clip(1.0 + 0.5 * unit - d, 0.0, 1.0)
    return np.maximum(images, f * ink)


@_corruption
def fog(images, f, rng):
    """Fog: ``x + 0.7 f · φ`` with ``φ`` a smooth random field in [0, 1] (per image): standard
    normal values on a 4×4 grid, upsampled to (H, W) by cubic splines and rescaled to [0, 1].
    """
    n, h, w = images.shape
    coarse = rng.standard_normal((n, 4, 4))
    # cubic-spline zoom is separable: field = U_h coarse U_wᵀ with U the zoom of the unit vectors
    field = np.einsum("ia,nab,jb->nij", _zoom_matrix(4, h), coarse, _zoom_matrix(4, w))
    lo = field.min(axis=(1, 2), keepdims=True)
    hi = field.max(axis=(1, 2), keepdims=True)
    field = (field - lo) / np.maximum(hi - lo, 1e-12)
    return images + 0.7 * f * field


def _zoom_matrix(size_in, size_out):
    """(size_out, size_in): column ``a`` is :func:`scipy.ndimage.zoom` (cubic, ``grid_mode``) of
    the ``a``-th unit vector, so that zooming a vector ``v`` is ``U v``."""
    eye = np.eye(size_in)
    return np.stack([ndimage.zoom(e, size_out / size_in, order=3, mode="nearest", grid_mode=True)
                     for e in eye], axis=1)


#: The corruptions by name, in the order tables and figures list them.
CORRUPTIONS = {fn.__name__.replace("_", "-"): fn for fn in (
    gaussian_noise, shot_noise, impulse_noise, glass_blur, motion_blur, shear, scale, rotate,
    translate, brightness, contrast, stripe, zigzag, dotted_line, fog)}


def corrupt(name: str, images, severity, rng):
    """Apply the corruption ``name`` (a key of :data:`CORRUPTIONS`).

    Parameters
    ----------
    name : str
    images : array (N, H, W) in [0, 1]
        Passed on to the corruption.
    severity : float in [0, 5]
        Passed on; 0 gives a copy of ``images``.
    rng : numpy.random.Generator
        Passed on; the same state gives the same corrupted images.

    Returns
    -------
    array (N, H, W) in [0, 1]
        The images corrupted by ``name`` at ``severity``.

    Raises
    ------
    ValueError, TypeError
        For an unknown name or a bad argument.
    """
    return CORRUPTIONS[as_choice("name", name, tuple(CORRUPTIONS))](images, severity, rng)


def out_of_distribution(images):
    """The out-of-distribution set of the benchmark: the test images inverted, ``1 − x``.

    Why this set: it needs no download, it keeps each digit's shape (a classifier cannot tell
    it apart by a blank or an unusual stroke count) while every background pixel moves from 0 to
    1, far from all training images — a method that stays confident there is overconfident away
    from its data. The alternatives were weaker tests: digits rotated by 90° are partly still
    digits (0, 1 and 8 map to themselves or to a digit-like shape), and noise images have none of
    the digits' structure, which any method can flag.

    Parameters
    ----------
    images : array (N, H, W) in [0, 1]

    Returns
    -------
    array (N, H, W) in [0, 1], same dtype
        ``1 − images``.

    Raises
    ------
    ValueError, TypeError
        For images that are not 3-D, finite and in [0, 1].
    """
    images = _check_images(images)
    return _finish(1.0 - images, images)
