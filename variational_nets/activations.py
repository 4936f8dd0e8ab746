"""Activations and the one sigmoid of the package.

Every function takes the array namespace ``xp`` (NumPy or CuPy) first. An activation is a small
class with ``forward(xp, x) -> (y, cache)`` and ``backward(xp, dy, cache) -> dx``.
"""
from __future__ import annotations

from .validation import as_choice

__all__ = ["sigmoid", "SiLU", "ReLU", "ACTIVATIONS", "make_activation"]


def sigmoid(xp, x):
    """The logistic function ``σ(x) = 1/(1 + e^{−x})``, computed as ``½(1 + tanh(x/2))``.

    The tanh form does not overflow for large ``|x|`` on either backend and keeps ``x``'s dtype.

    Parameters
    ----------
    xp : module
    x : array

    Returns
    -------
    array of the shape and dtype of ``x``, values in ``[0, 1]``
    """
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


class SiLU:
    """``silu(x) = x σ(x)``, derivative ``σ(x) (1 + x (1 − σ(x)))``. Cost ``O(size(x))``."""

    name = "silu"

    def forward(self, xp, x):
        """``(silu(x), cache)``.

        Parameters
        ----------
        xp : module
        x : array
            Pre-activations, any shape; the float dtype is kept.

        Returns
        -------
        (array, tuple)
            ``silu(x)`` and the cache ``(x, σ(x))`` for :meth:`backward`.
        """
        s = sigmoid(xp, x)
        return x * s, (x, s)

    def backward(self, xp, dy, cache):
        """``∂L/∂x`` from ``∂L/∂y`` (``dy``) and the forward cache.

        Parameters
        ----------
        xp : module
        dy : array
        cache : tuple
            ``(x, σ(x))`` from :meth:`forward`.

        Returns
        -------
        array
        """
        x, s = cache
        return dy * (s * (1.0 + x * (1.0 - s)))


class ReLU:
    """``relu(x) = max(x, 0)``; derivative 1 for ``x > 0``, else 0 (0 at the kink)."""

    name = "relu"

    def forward(self, xp, x):
        """``(relu(x), mask)``.

        Parameters
        ----------
        xp : module
        x : array
            Pre-activations, any shape; ``x = 0`` gives 0.

        Returns
        -------
        (array, array of bool)
            ``relu(x)`` and the mask ``x > 0`` for :meth:`backward`.
        """
        mask = x > 0
        return x * mask, mask

    def backward(self, xp, dy, cache):
        """``∂L/∂x = dy · 1[x > 0]``.

        Parameters
        ----------
        xp : module
        dy : array
        cache : array of bool
            The mask ``x > 0`` from :meth:`forward`.

        Returns
        -------
        array
        """
        return dy * cache


ACTIVATIONS = {"silu": SiLU, "relu": ReLU}


def make_activation(name: str):
    """The activation called ``name``.

    Parameters
    ----------
    name : {"silu", "relu"}

    Returns
    -------
    SiLU or ReLU

    Raises
    ------
    ValueError
        For another name.
    """
    return ACTIVATIONS[as_choice("activation", name, tuple(ACTIVATIONS))]()
