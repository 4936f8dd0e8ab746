"""A multilayer perceptron whose input and output layers are variational (by default).

``sizes = (d_in, h_1, ..., h_L, d_out)`` gives ``L + 1`` affine layers with an activation after
every layer but the last. Parameters are named ``"layer{i}.{name}"`` (``name`` as in
:mod:`variational_nets.layers`), e.g. ``"layer0.factor_weight"``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import asarray, get_xp, xp_name
from .layers import COVARIANCES, Linear, VariationalLinear, make_activation
from .parametrization import PARAMETRIZATIONS, Parametrization
from .validation import (as_array, as_choice, as_float_dtype, as_generator, as_int, bad_type,
                         bad_value, check_memory)

__all__ = ["MLP", "ForwardPass", "layer_activations", "VARIATIONAL_CHOICES"]

VARIATIONAL_CHOICES = ("input-output", "all", "none", "output")


@dataclass(frozen=True)
class ForwardPass:
    """A forward pass kept for the backward pass and for inspection.

    Parameters
    ----------
    activations : tuple of arrays
        ``activations[i]`` is the output of layer ``i`` after its activation (the last entry is
        the network output ``f``, or the mean ``m`` for a closed-form last layer).
    variance : array or None
        The closed-form output variance ``v`` (None on a sampled or mean path).
    caches, act_caches : tuple
        What the layers' and the activations' backward passes need.
    noise : tuple
        The weight sample's noise per layer (None entries: mean).
    closed_form : bool
        Whether the last layer gave its closed-form moments.
    """

    activations: tuple
    variance: object
    caches: tuple
    act_caches: tuple
    noise: tuple
    closed_form: bool


class MLP:
    """Variational MLP.

    Parameters
    ----------
    sizes : sequence of int
        ``(d_in, h_1, ..., h_L, d_out)`` with ``L ≥ 1`` (at least one hidden layer: the μP table
        distinguishes input, hidden and output layers), all positive.
    rng : numpy.random.Generator
        Draws the initial parameters.
    parametrization : Parametrization or str, default "mup"
    activation : {"silu", "relu"}
    variational : {"input-output", "all", "none", "output"}
        Which layers carry a weight distribution (``"none"``: deterministic network).
    covariance : {"full", "lowrank", "diagonal"}
    rank : int, optional
        Rank of low-rank factors.
    backend : {"numpy", "cupy", "auto"}
    dtype : float32 or float64

    Raises
    ------
    ValueError, TypeError
        For sizes that are not positive integers, fewer than three sizes, unknown options.
    """

    def __init__(self, sizes, rng, parametrization="mup", activation="silu",
                 variational="input-output", covariance="full", rank=None, backend="numpy",
                 dtype=np.float32):
        as_generator("rng", rng)
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise bad_type("sizes", "a sequence of positive integers", sizes)
        sizes = tuple(sizes)
        if len(sizes) < 3:
            raise bad_value("sizes", "(d_in, hidden..., d_out) with at least one hidden layer",
                            sizes)
        sizes = tuple(as_int("sizes", s) for s in sizes)
        as_choice("variational", variational, VARIATIONAL_CHOICES)
        as_choice("covariance", covariance, COVARIANCES)
        if isinstance(parametrization, str):
            parametrization = Parametrization(as_choice("parametrization", parametrization,
                                                        PARAMETRIZATIONS))
        elif not isinstance(parametrization, Parametrization):
            raise bad_type("parametrization", "a Parametrization or its name", parametrization)
        dtype = as_float_dtype("dtype", dtype)
        self.xp = get_xp(backend)
        self.sizes = tuple(int(s) for s in sizes)
        self.parametrization = parametrization
        self.activation = make_activation(activation)
        self.dtype = dtype
        n_layers = len(sizes) - 1
        roles = ["input"] + ["hidden"] * (n_layers - 2) + ["output"]
        is_var = [variational == "all"
                  or (variational == "input-output" and role in ("input", "output"))
                  or (variational == "output" and role == "output") for role in roles]
        _check_memory(self.sizes, is_var, covariance, rank, dtype)
        self.layers = []
        for i in range(n_layers):
            role = roles[i]
            args = (self.sizes[i], self.sizes[i + 1], role, parametrization, rng, self.xp, dtype)
            if is_var[i]:
                self.layers.append(VariationalLinear(*args, covariance=covariance, rank=rank))
            else:
                self.layers.append(Linear(*args))

    # --- bookkeeping ---------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """``"numpy"`` or ``"cupy"``."""
        return xp_name(self.xp)

    @property
    def is_variational(self) -> bool:
        """Whether any layer carries a weight distribution."""
        return any(layer.variational for layer in self.layers)

    def tensors(self) -> dict:
        """Every trainable tensor as a :class:`~variational_nets.tensors.Parameter`, by name.

        Returns
        -------
        dict
            ``{"layer{i}.{name}": Parameter}`` (the layers' own objects, values not copied).
        """
        return {f"layer{i}.{k}": t for i, layer in enumerate(self.layers)
                for k, t in layer.tensors.items()}

    def named_parameters(self) -> dict:
        """Every trainable tensor's value, by name (the arrays themselves, not copies).

        Returns
        -------
        dict
        """
        return {name: t.value for name, t in self.tensors().items()}

    def step_multipliers(self) -> dict:
        """Step-size multiplier of every trainable tensor (same keys as named_parameters).

        Returns
        -------
        dict
            ``None`` for a tensor added by hand without one.
        """
        return {name: t.multiplier for name, t in self.tensors().items()}

    def init_stds(self) -> dict:
        """Initial standard deviation of every trainable tensor.

        Returns
        -------
        dict
        """
        return {name: t.init_std for name, t in self.tensors().items()}

    def freeze(self, layers) -> None:
        """Freeze every tensor of the given layers: the optimizer no longer updates them.

        The layers' forward and backward passes are unchanged (their gradients are still
        computed, and flow to the layers below); :meth:`~variational_nets.optim.SGD.step` skips
        tensors marked ``trainable=False``. With the input and hidden layers frozen, the output
        layer is trained on fixed features: a linear model (``docs/theory.md §4 (C12)``).

        Parameters
        ----------
        layers : sequence of int
            Layer indices ``0 .. len(self.layers) − 1`` (negative indices count from the end).

        Raises
        ------
        ValueError, TypeError
            For a string, a non-integer or an index outside the network.
        """
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise bad_type("layers", "a sequence of layer indices", layers)
        count = len(self.layers)
        indices = []
        for i in layers:
            i = as_int("layers", i, minimum=-count, maximum=count - 1)
            indices.append(i % count)
        for i in indices:
            tensors = self.layers[i].tensors
            for name, t in tensors.items():
                tensors[name] = t.frozen()

    def num_parameters(self) -> int:
        """Number of trainable scalars (means and covariance tensors).

        Returns
        -------
        int
        """
        return int(sum(v.size for v in self.named_parameters().values()))

    # --- forward / backward --------------------------------------------------------------
    def sample_noise(self, rng) -> tuple:
        """One weight sample's noise for every layer (None for deterministic layers).

        Parameters
        ----------
        rng : numpy.random.Generator

        Returns
        -------
        tuple
            One entry per layer.

        Raises
        ------
        TypeError
            For an ``rng`` that is not a Generator.
        """
        as_generator("rng", rng)
        return tuple(layer.sample_noise(rng) for layer in self.layers)

    def forward(self, x, noise=None, closed_form=False) -> ForwardPass:
        """Forward pass at the sample ``noise`` (a tuple from :meth:`sample_noise`; None: means).

        With ``closed_form=True`` the last layer is not sampled: its output mean and variance
        given the features are returned (``activations[-1]`` = m, ``variance`` = v).
        Cost ``O(N Σ_l n_l n_{l+1})`` plus the samples ``O(Σ n_out n_in R)``.

        Parameters
        ----------
        x : array (N, d_in) of the model's backend and dtype
        noise : tuple, optional
        closed_form : bool, default False

        Returns
        -------
        ForwardPass

        Raises
        ------
        ValueError
            For an ``x`` whose shape does not fit, or a ``noise`` with the wrong number of
            entries (O(1) checks: the values are not scanned, this is the inner loop).
        """
        if not hasattr(x, "shape") or len(x.shape) != 2 or x.shape[1] != self.sizes[0]:
            raise bad_value("x", f"an array of shape (N, {self.sizes[0]})",
                            got=f"shape {tuple(x.shape)}" if hasattr(x, "shape") else type(x).__name__)
        if noise is not None and (not isinstance(noise, tuple) or len(noise) != len(self.layers)):
            raise bad_value("noise", f"a tuple of {len(self.layers)} entries from sample_noise",
                            got=type(noise).__name__)
        xp = self.xp
        noise = noise if noise is not None else (None,) * len(self.layers)
        h = x
        acts, caches, act_caches = [], [], []
        variance = None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and closed_form:
                h, variance, cache = layer.moments(h)
            else:
                # the first layer's backward skips dx, the only use of its sampled weight: do
                # not keep that weight (a P-sized array) alive until the backward pass
                h, cache = layer.forward(h, noise[i], keep_weight=i > 0)
            caches.append(cache)
            if i < last:
                h, ac = self.activation.forward(xp, h)
                act_caches.append(ac)
            acts.append(h)
        return ForwardPass(tuple(acts), variance, tuple(caches), tuple(act_caches), tuple(noise),
                           closed_form)

    def backward(self, fp: ForwardPass, dout, dvar=None) -> dict:
        """Gradients of every trainable tensor given ``∂L/∂out`` (and ``∂L/∂v`` if closed form).

        Parameters
        ----------
        fp : ForwardPass
            From :meth:`forward` of this model.
        dout : array
            ``∂L/∂`` of the network output (or of the mean ``m``), the output's shape.
        dvar : array, optional
            ``∂L/∂v`` for a closed-form pass (required there).

        Returns
        -------
        dict
            Keyed like :meth:`named_parameters`; factor gradients of sampled layers are
            :class:`~variational_nets.covariances.FactorGrad` (``g zᵀ`` unexpanded).

        Raises
        ------
        ValueError, TypeError
            For a ``fp`` that is not a ForwardPass of this model's depth, or gradients whose
            shape is not the output's.
        """
        if not isinstance(fp, ForwardPass) or len(fp.caches) != len(self.layers):
            raise bad_type("fp", "the ForwardPass of this model's forward()", fp)
        shape = tuple(fp.activations[-1].shape)
        for name, g in (("dout", dout),) + ((("dvar", dvar),) if fp.closed_form else ()):
            if not hasattr(g, "shape") or tuple(g.shape) != shape:
                raise bad_value(name, f"an array of the output's shape {shape}",
                                got=f"shape {tuple(g.shape)}" if hasattr(g, "shape") else type(g).__name__)
        grads = {}
        last = len(self.layers) - 1
        d = dout
        for i in range(last, -1, -1):
            layer = self.layers[i]
            if i < last:
                d = self.activation.backward(self.xp, d, fp.act_caches[i])
            if i == last and fp.closed_form:
                d, g = layer.moments_backward(d, dvar, fp.caches[i])
            else:
                # the input's gradient is never used: skip its (N × d_in × h_1) product
                d, g = layer.backward(d, fp.caches[i], input_grad=i > 0)
            for k, v in g.items():
                grads[f"layer{i}.{k}"] = v
        return grads

    def kl(self):
        """Sum of the layers' KL terms and their gradients (diagonal layers only).

        Returns
        -------
        (float, dict)

        Raises
        ------
        ValueError
            For a variational layer that is not diagonal.
        """
        total, grads = 0.0, {}
        for i, layer in enumerate(self.layers):
            if layer.variational:
                value, g = layer.kl()
                total += value
                grads.update({f"layer{i}.{k}": v for k, v in g.items()})
        return total, grads


def layer_activations(model: MLP, x, rng=None) -> tuple:
    """Per-layer activations of one forward pass: the mean path (``rng=None``) or one sample.

    Parameters
    ----------
    model : MLP
    x : array (N, d_in)
    rng : numpy.random.Generator, optional
        When given, one weight sample (shared by the batch) is drawn from it.

    Returns
    -------
    tuple of arrays
        Output of each layer after its activation; the last entry is the network output.

    Raises
    ------
    ValueError, TypeError
        For a model that is not an MLP, an ``x`` that does not fit it (shape, NaN/inf, empty)
        or an ``rng`` that is not a Generator.
    """
    if not isinstance(model, MLP):
        raise bad_type("model", "an MLP", model)
    x = as_array("x", x, ndim=2)
    if x.shape[1] != model.sizes[0]:
        raise bad_value("x", f"shape (N, {model.sizes[0]}) for this model", got=f"shape {x.shape}")
    x = asarray(x, model.xp, model.dtype)
    noise = model.sample_noise(rng) if rng is not None else None
    return model.forward(x, noise).activations


def _check_memory(sizes, is_var, covariance, rank, dtype):
    """Refuse a model whose tensors alone exceed this machine's physical memory, before any
    allocation (one ValueError with the estimate instead of a MemoryError mid-way)."""
    count = 0
    for n_in, n_out, var in zip(sizes[:-1], sizes[1:], is_var):
        p = n_out * (n_in + 1)
        if var:
            r = {"full": p, "diagonal": 1}.get(covariance, rank if isinstance(rank, int) else 1)
            count += p * r
        count += p
    check_memory("sizes", count * dtype.itemsize,
                 f"{count:.3g} trainable values of {dtype.name} for sizes {sizes} and "
                 f"covariance {covariance!r}")
