"""Expected losses of the last layer: closed forms and Monte Carlo versions.

Every loss is a mean over the ``N`` rows of a batch. With the output Gaussian ``f ~ N(m, diag v)``
given the features (the last layer's weights integrated out), the closed forms are

* squared error (exact): ``E Σ_o (f_o − y_o)² = Σ_o (m_o − y_o)² + v_o`` (sum of squares, no ½);
* softmax cross-entropy (Jensen bound): ``E[−f_y + log Σ_c e^{f_c}] ≤ −m_y + log Σ_c e^{m_c + v_c/2}``;
* binary cross-entropy with one logit (the same bound with a fixed zero logit):
  ``E[softplus(f) − t f] ≤ softplus(m + v/2) − t m``.

The Monte Carlo versions evaluate the same losses at sampled outputs ``f``. Each function returns
a :class:`LossValue` (value and gradients with respect to its inputs), shapes: m, v, f (N, C);
targets (N, C) floats for squared error, (N,) integers in ``[0, C)`` for softmax, (N,) or (N, 1)
in {0, 1} for binary. Cost ``O(N C)``. Each function checks its inputs (shapes, finite values,
labels in range) and raises ValueError naming the argument.
"""
from __future__ import annotations

from dataclasses import dataclass

from .activations import sigmoid
from .validation import array_namespace as _xp
from .validation import as_choice, bad_value

__all__ = ["LossValue", "Loss", "LOSSES", "get_loss", "squared_error_closed", "squared_error",
           "softmax_ce_closed", "softmax_ce", "binary_ce_closed", "binary_ce"]


@dataclass(frozen=True)
class LossValue:
    """A loss value with its gradients.

    Parameters
    ----------
    value : float
        The loss (a Python float).
    dm : array
        ``∂L/∂m`` (closed form) or ``∂L/∂f`` (at a sampled output).
    dv : array or None, default None
        ``∂L/∂v`` (closed form; None for the Monte Carlo form).
    """

    value: float
    dm: object
    dv: object = None


def _logsumexp_softmax(xp, z):
    zmax = z.max(axis=1, keepdims=True)
    e = xp.exp(z - zmax)
    s = e.sum(axis=1, keepdims=True)
    return (zmax + xp.log(s))[:, 0], e / s


def _onehot(xp, labels, num_classes, dtype):
    out = xp.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


def _binary_targets(t, n):
    return t.reshape(n, 1)


def _check(outputs, targets, kind="squared_error", target="y"):
    """Shapes (O(1)) and values of a loss's inputs; ``outputs`` maps names to arrays (N, C)."""
    (first, m), *rest = outputs.items()
    if not (hasattr(m, "shape") and hasattr(m, "dtype")) or m.ndim != 2 or m.shape[0] == 0:
        raise bad_value(first, "a non-empty 2-D array (N, C)", got=_shape(m))
    xp = _xp(m)
    for name, a in outputs.items():
        if name != first and (not hasattr(a, "shape") or tuple(a.shape) != tuple(m.shape)):
            raise bad_value(name, f"the shape of {first}, {tuple(m.shape)}", got=_shape(a))
        if not bool(xp.isfinite(a).all()):
            raise bad_value(name, "finite values", got="NaN or inf entries")
    n, c = m.shape
    if kind == "squared_error":
        if not hasattr(targets, "shape") or tuple(targets.shape) != (n, c):
            raise bad_value(target, f"shape {(n, c)}, that of {first}", got=_shape(targets))
        return
    if kind == "softmax_ce":
        shapes, k = ((n,),), c
    else:
        if c != 1:
            raise bad_value(first, "one logit per row, shape (N, 1)", got=_shape(m))
        shapes, k = ((n,), (n, 1)), 2
    if not hasattr(targets, "shape") or tuple(targets.shape) not in shapes:
        raise bad_value(target, f"shape {shapes[0]}, one per row of {first}", got=_shape(targets))
    if targets.dtype.kind not in "biuf" or bool(((targets < 0) | (targets >= k)
                                                 | (targets != xp.floor(targets))).any()):
        raise bad_value(target, f"integer labels in 0..{k - 1}", got="other values")


def _shape(a):
    return f"shape {tuple(a.shape)}" if hasattr(a, "shape") else type(a).__name__


def squared_error_closed(m, v, y) -> LossValue:
    """Exact expected squared error ``mean_n Σ_o (m − y)² + v``.

    Parameters
    ----------
    m, v : arrays (N, C)
        Output mean and variance.
    y : array (N, C)
        Targets.

    Returns
    -------
    LossValue
        With ``dm = 2(m − y)/N`` and ``dv = 1/N``.
    """
    _check({"m": m, "v": v}, y)
    n = m.shape[0]
    r = m - y
    value = float(((r * r).sum() + v.sum()) / n)
    return LossValue(value, 2.0 * r / n, _xp(m).full(v.shape, 1.0 / n, dtype=v.dtype))


def squared_error(f, y) -> LossValue:
    """Squared error ``mean_n Σ_o (f − y)²`` at a sampled output.

    Parameters
    ----------
    f, y : arrays (N, C)

    Returns
    -------
    LossValue
    """
    _check({"f": f}, y)
    n = f.shape[0]
    r = f - y
    return LossValue(float((r * r).sum() / n), 2.0 * r / n)


def softmax_ce_closed(m, v, labels) -> LossValue:
    """Jensen bound ``mean_n [−m_y + log Σ_c exp(m_c + v_c/2)]`` on the expected cross-entropy.

    Parameters
    ----------
    m, v : arrays (N, C)
    labels : integer array (N,)
        Values in ``0 .. C − 1`` (checked by the callers, :func:`~variational_nets.train.fit`).

    Returns
    -------
    LossValue
    """
    _check({"m": m, "v": v}, labels, "softmax_ce", "labels")
    xp = _xp(m)
    n, c = m.shape
    lse, p = _logsumexp_softmax(xp, m + 0.5 * v)
    onehot = _onehot(xp, labels, c, m.dtype)
    value = float((lse - (m * onehot).sum(axis=1)).sum() / n)
    return LossValue(value, (p - onehot) / n, 0.5 * p / n)


def softmax_ce(f, labels) -> LossValue:
    """Cross-entropy ``mean_n [−f_y + log Σ_c exp f_c]`` at a sampled output.

    Parameters
    ----------
    f : array (N, C)
    labels : integer array (N,)

    Returns
    -------
    LossValue
    """
    _check({"f": f}, labels, "softmax_ce", "labels")
    xp = _xp(f)
    n, c = f.shape
    lse, p = _logsumexp_softmax(xp, f)
    onehot = _onehot(xp, labels, c, f.dtype)
    return LossValue(float((lse - (f * onehot).sum(axis=1)).sum() / n), (p - onehot) / n)


def binary_ce_closed(m, v, t) -> LossValue:
    """Bound ``mean_n [softplus(m + v/2) − t m]`` on the expected binary cross-entropy.

    Parameters
    ----------
    m, v : arrays (N, 1)
    t : array (N,) or (N, 1)
        Targets in {0, 1}.

    Returns
    -------
    LossValue
    """
    _check({"m": m, "v": v}, t, "binary_ce", "t")
    xp = _xp(m)
    n = m.shape[0]
    t = _binary_targets(t, n).astype(m.dtype)
    a = m + 0.5 * v
    value = float((xp.logaddexp(0.0, a) - t * m).sum() / n)
    s = sigmoid(xp, a)
    return LossValue(value, (s - t) / n, 0.5 * s / n)


def binary_ce(f, t) -> LossValue:
    """Binary cross-entropy with logits ``mean_n [softplus(f) − t f]`` at a sampled output.

    Parameters
    ----------
    f : array (N, 1)
    t : array (N,) or (N, 1)

    Returns
    -------
    LossValue
    """
    _check({"f": f}, t, "binary_ce", "t")
    xp = _xp(f)
    n = f.shape[0]
    t = _binary_targets(t, n).astype(f.dtype)
    value = float((xp.logaddexp(0.0, f) - t * f).sum() / n)
    return LossValue(value, (sigmoid(xp, f) - t) / n)


@dataclass(frozen=True)
class Loss:
    """A named loss with its closed form and its Monte Carlo (sampled-output) form.

    Parameters
    ----------
    name : str
    closed : callable
        ``closed(m, v, targets) -> LossValue``.
    sampled : callable
        ``sampled(f, targets) -> LossValue``.
    """

    name: str
    closed: object
    sampled: object


LOSSES = {
    "squared_error": Loss("squared_error", squared_error_closed, squared_error),
    "softmax_ce": Loss("softmax_ce", softmax_ce_closed, softmax_ce),
    "binary_ce": Loss("binary_ce", binary_ce_closed, binary_ce),
}


def get_loss(name: str) -> Loss:
    """The loss called ``name``.

    Parameters
    ----------
    name : {"squared_error", "softmax_ce", "binary_ce"}

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        For an unknown name.
    """
    return LOSSES[as_choice("loss", name, tuple(LOSSES))]
