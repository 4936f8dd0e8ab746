r"""The network as a linear model: its output layer on fixed features, and its linearization.

Two views of a one-output :class:`~variational_nets.model.MLP` (``docs/theory.md §4 (C12), (C13)``):

* **The output layer on fixed features** (:func:`output_layer_model`). With every layer below the
  output layer deterministic (or frozen, :meth:`~variational_nets.model.MLP.freeze`), the output
  is ``f(x) = θᵀ[h(x); 1]`` with ``θ = concat(weight.ravel(), bias) ~ N(μ, SSᵀ)``, ``h`` the last
  hidden features: the linear model of ``docs/theory.md §1`` with data ``X = [h(x), 1]``, prior
  mean ``μ``, prior factor ``S`` and per-coordinate step multipliers read from the layer's tensors.
* **The linearization at the current parameters** (:func:`jacobian`, :func:`empirical_ntk`).
  ``f(x; θ) ≈ f(x; θ₀) + J(x)(θ − θ₀)`` in the mean tensors of every layer. A step of SGD with
  step multipliers ``α_t`` moves the outputs by ``−η Θ(x, X) ∂L/∂f(X)`` to first order, with the
  empirical neural tangent kernel

  .. math::

      Θ(x, x') = \sum_t α_t \,\Big\langle \frac{∂f(x)}{∂θ_t}, \frac{∂f(x')}{∂θ_t} \Big\rangle .

  For an affine layer ``h_l = W_l a_{l−1} + b_l`` the per-example gradients are outer products,
  ``∂f/∂W_l = δ_l a_{l−1}ᵀ``, ``∂f/∂b_l = δ_l`` with ``δ_l = ∂f/∂h_l``, so each layer adds
  ``α_W (Δ_l Δ_l'ᵀ) ⊙ (A_{l−1} A_{l−1}'ᵀ) + α_b Δ_l Δ_l'ᵀ``: the kernel costs
  ``O(N N' Σ_l (n_in + n_out))`` after one forward and one backward pass per input set, and never
  stores a per-example gradient.

Everything is taken on the mean path (no weight sample) and returned as float64 NumPy arrays.
The signals ``δ_l`` come from the layers' and activations' own backward passes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import asarray, to_numpy
from .covariances import FactorCovariance
from .model import MLP
from .train import check_inputs
from .validation import bad_type, bad_value

__all__ = ["OutputLayerModel", "output_layer_model", "jacobian", "empirical_ntk"]


@dataclass(frozen=True)
class OutputLayerModel:
    """The output layer of a network as a linear model on its input features.

    Parameters
    ----------
    features : numpy.ndarray (N, P)
        ``X = [h(x), 1]``: the last hidden features of the inputs (mean path) and a bias column;
        ``P = n_in + 1``.
    mean : numpy.ndarray (P,)
        ``μ = concat(weight.ravel(), bias)``.
    factor : numpy.ndarray (P, R)
        ``S = concat(factor_weight.reshape(n_in, R), factor_bias)``: ``Cov(θ) = SSᵀ``.
    mean_multipliers : numpy.ndarray (P,)
        Step multiplier of each coordinate of ``μ`` (the weight's for the first ``n_in``, the
        bias's for the last), as the optimizer applies them.
    factor_multipliers : numpy.ndarray (P,)
        Step multiplier of each row of ``S`` (the factor tensors' multipliers).
    """

    features: np.ndarray
    mean: np.ndarray
    factor: np.ndarray
    mean_multipliers: np.ndarray
    factor_multipliers: np.ndarray


def _check_model(model, what: str):
    if not isinstance(model, MLP):
        raise bad_type("model", "an MLP", model)
    if model.sizes[-1] != 1:
        raise bad_value("model", f"a network with one output ({what} is defined per scalar output)",
                        got=f"{model.sizes[-1]} outputs")


def _features(model, x, upto: int):
    """Mean-path output of layers ``0 .. upto − 1`` (after their activations) and the forward pass."""
    x = asarray(check_inputs(model, x), model.xp, model.dtype)
    fp = model.forward(x)
    return (x if upto == 0 else fp.activations[upto - 1]), fp


def output_layer_model(model, x) -> OutputLayerModel:
    """The output layer of ``model`` as the linear model ``f(x) = θᵀ[h(x); 1]``, ``θ ~ N(μ, SSᵀ)``.

    The view is exact for the network's closed-form output moments: ``m = Xμ`` and
    ``v = ‖Sᵀ[h(x); 1]‖²`` row by row, whatever the layers below are; it is the linear model that
    training moves when the layers below are deterministic or frozen
    (``docs/theory.md §4 (C12)``). Values are copies (float64): train the model, then call this
    again to read the trained layer.

    Parameters
    ----------
    model : MLP
        One output; a variational output layer with a covariance factor (``"full"`` or
        ``"lowrank"``).
    x : array_like (N, d_in)
        Inputs (finite, non-empty).

    Returns
    -------
    OutputLayerModel
        The last layer as a linear-Gaussian model over the features ``[h(x); 1]``.

    Raises
    ------
    ValueError, TypeError
        For a model that is not an MLP, has several outputs or an output layer without a factor,
        and for inputs that do not fit it.

    Notes
    -----
    Cost: one mean-path forward pass, ``O(N Σ_l n_l n_{l+1})``, plus copying the output layer's
    ``O(P R)`` factor.
    """
    _check_model(model, "the output layer's linear model")
    layer = model.layers[-1]
    if not isinstance(layer.family, FactorCovariance):
        raise bad_value("model", "an MLP whose output layer has a covariance factor "
                                 "(covariance='full' or 'lowrank', variational='output' or 'input-output')",
                        got=f"an output layer with covariance {layer.covariance!r}")
    h, _ = _features(model, x, len(model.layers) - 1)
    h = to_numpy(h).astype(np.float64)
    t = layer.tensors
    n_in, rank = layer.n_in, layer.rank
    features = np.hstack([h, np.ones((h.shape[0], 1))])
    mean = np.concatenate([to_numpy(t["weight"].value).reshape(-1), to_numpy(t["bias"].value)]).astype(np.float64)
    factor = np.vstack([to_numpy(t["factor_weight"].value).reshape(n_in, rank),
                        to_numpy(t["factor_bias"].value)]).astype(np.float64)

    def per_row(weight_name, bias_name):
        return np.concatenate([np.full(n_in, t[weight_name].multiplier), [t[bias_name].multiplier]])

    return OutputLayerModel(features, mean, factor, per_row("weight", "bias"),
                            per_row("factor_weight", "factor_bias"))


def _signals(model, x):
    """Per layer ``(a_{l−1}, δ_l)``: each layer's input and ``∂f/∂h_l`` per row, on the mean path.

    ``f`` summed over the rows has ``∂/∂h_l`` equal to each row's own ``∂f_n/∂h_l`` (rows do not
    interact), so one backward pass from ``∂f/∂f = 1`` gives every row's signal.
    """
    _, fp = _features(model, x, 0)
    xp = model.xp
    last = len(model.layers) - 1
    d = xp.ones_like(fp.activations[-1])
    out = [None] * len(model.layers)
    for i in range(last, -1, -1):
        if i < last:
            d = model.activation.backward(xp, d, fp.act_caches[i])
        layer_input = fp.caches[i][0]
        out[i] = (to_numpy(layer_input).astype(np.float64), to_numpy(d).astype(np.float64))
        if i > 0:
            d, _ = model.layers[i].backward(d, fp.caches[i])
    return out


def jacobian(model, x) -> dict:
    """Per-example gradients ``∂f(x_n)/∂θ_t`` of the mean output for every mean tensor ``θ_t``.

    Parameters
    ----------
    model : MLP
        One output.
    x : array_like (N, d_in)

    Returns
    -------
    dict
        ``{"layer{i}.weight": (N, n_out, n_in), "layer{i}.bias": (N, n_out)}`` (float64), the keys
        of ``model.named_parameters()`` for the mean tensors.

    Raises
    ------
    ValueError, TypeError
        For a model that is not an MLP or has several outputs, and an ``x`` that does not fit it.

    Notes
    -----
    Memory ``O(N P)`` for ``P`` mean parameters: meant for checks on small networks;
    :func:`empirical_ntk` gives the kernel without it. Cost one forward and one backward pass
    plus ``O(N P)``.
    """
    _check_model(model, "the Jacobian")
    grads = {}
    for i, (a, delta) in enumerate(_signals(model, x)):
        grads[f"layer{i}.weight"] = delta[:, :, None] * a[:, None, :]
        grads[f"layer{i}.bias"] = delta
    return grads


def empirical_ntk(model, x1, x2=None) -> np.ndarray:
    r"""The empirical neural tangent kernel ``Θ(x1, x2) = Σ_t α_t ⟨∂f(x1)/∂θ_t, ∂f(x2)/∂θ_t⟩``.

    The sum runs over the trainable mean tensors (weights and biases of every layer; frozen
    tensors do not move and are left out), weighted by their step multipliers ``α_t``: the
    kernel of one SGD step, ``f⁺(x) − f(x) = −η Σ_n Θ(x, x_n) ∂L/∂f(x_n) + O(η²)``.
    Covariance tensors are not part of it (they move the output's variance, not its mean).

    .. math::

        Θ(x, x') = \sum_l α_{W_l} (δ_l(x) \cdot δ_l(x'))\,(a_{l-1}(x) \cdot a_{l-1}(x'))
                   + α_{b_l}\, δ_l(x) \cdot δ_l(x') .

    Parameters
    ----------
    model : MLP
        One output.
    x1 : array_like (N1, d_in)
    x2 : array_like (N2, d_in), optional
        Default ``x1`` (the Gram matrix, symmetric positive semi-definite).

    Returns
    -------
    numpy.ndarray (N1, N2)
        Float64.

    Raises
    ------
    ValueError, TypeError
        For a model that is not an MLP or has several outputs, and an ``x1`` or ``x2`` that does
        not fit it.

    Notes
    -----
    Cost one forward and one backward pass per input set and ``O(N1 N2 Σ_l (n_in + n_out))``;
    memory ``O((N1 + N2) Σ_l n_l)``, no per-example gradient.
    """
    _check_model(model, "the tangent kernel")
    s1 = _signals(model, x1)
    s2 = s1 if x2 is None else _signals(model, x2)
    kernel = 0.0
    for layer, (a1, d1), (a2, d2) in zip(model.layers, s1, s2):
        w, b = layer.tensors["weight"], layer.tensors["bias"]
        dd = d1 @ d2.T
        if w.trainable:
            kernel = kernel + w.multiplier * dd * (a1 @ a2.T)
        if b.trainable:
            kernel = kernel + b.multiplier * dd
    if np.isscalar(kernel):  # every mean tensor is frozen
        return np.zeros((s1[0][0].shape[0], s2[0][0].shape[0]))
    return kernel
