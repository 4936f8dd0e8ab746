"""Covariance families of a variational layer, one small class per family.

A family owns what differs between covariances: the tensors it adds to a layer, how a weight
sample is drawn, the gradient of those tensors at a sample, the closed-form output variance
with its backward pass, and (where defined) the KL term to the prior. The layer
(:class:`~variational_nets.layers.VariationalLinear`) only combines them with the mean.

Layout (shared with the fused kernel, :mod:`variational_nets.kernels`): the layer's mean is
``weight`` (n_out, n_in) and ``bias`` (n_out,), ``θ = concat(weight.ravel(), bias)``.

* :class:`FactorCovariance` (``"full"``, ``"lowrank"``): ``Cov(θ) = S Sᵀ`` with the factor
  ``S = concat(factor_weight.reshape(n_out·n_in, R), factor_bias)``, ``factor_weight``
  (n_out, n_in, R), ``factor_bias`` (n_out, R); ``"full"`` means ``R = n_out·n_in + n_out``.
  A sample is ``θ = μ + S z`` with one ``z ~ N(0, I_R)`` per mini-batch, so the factor's
  gradient is ``g zᵀ`` (``g = ∂L/∂θ`` at the sample), kept unexpanded as a :class:`FactorGrad`.
* :class:`DiagonalCovariance` (``"diagonal"``, mean field): ``Cov(θ) = diag(s²)`` with
  ``scale_weight`` (n_out, n_in) and ``scale_bias`` (n_out,).

A new family (a Kronecker factor, say) is a class with the same methods and an entry in
:data:`FAMILIES`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import asarray
from .tensors import Parameter, TensorSpec
from .validation import as_choice, as_int

__all__ = ["FactorGrad", "FactorCovariance", "DiagonalCovariance", "FAMILIES",
           "make_covariance"]


@dataclass(frozen=True)
class FactorGrad:
    """The gradient ``g[..., None] * z`` of a covariance factor, kept as its two pieces.

    Parameters
    ----------
    g : array
        Shape of the mean tensor.
    z : array (R,)
        The mini-batch's noise.
    """

    g: object
    z: object

    def dense(self):
        """The gradient as an array of the factor's shape (for checks; costs the factor's size).

        Returns
        -------
        array, shape ``g.shape + (R,)``
        """
        return self.g[..., None] * self.z


def _new(value, spec, parametrization, xp, dtype):
    return Parameter(asarray(value, xp, dtype), spec, parametrization.init_std(spec),
                     parametrization.lr_multiplier(spec))


def _companion_specs(names, mean_specs, role: str, *rank):
    """``(name, spec, mean shape)`` of a family's weight and bias tensors, in that order.

    ``names`` are the family's two tensor names; each spec copies the layer and fans of the
    mean tensor of its kind and takes ``role`` (and the ``rank`` of a factor).
    """
    for kind, name in zip(("weight", "bias"), names):
        mean = mean_specs[kind]
        shape = (mean.fan_out, mean.fan_in) if kind == "weight" else (mean.fan_out,)
        yield name, TensorSpec(kind, mean.layer, mean.fan_in, mean.fan_out, role, *rank), shape


class FactorCovariance:
    """``Cov(θ) = S Sᵀ`` with a factor ``S`` (P, R), ``P = n_out·n_in + n_out``.

    Parameters
    ----------
    rank : int
        ``R`` (positive).
    name : {"full", "lowrank"}, default "lowrank"
        Only a label: ``"full"`` is the factor of rank ``P``.

    Raises
    ------
    ValueError, TypeError
        For a rank that is not a positive integer.

    Notes
    -----
    A sample costs ``O(P R)`` (one matrix-vector product ``S z``); the closed-form variance
    ``O(N P R)`` for ``N`` rows. Init std and step multiplier of the factor: ``σ/√R`` and
    ``α/R`` (the parametrization's covariance rule).
    """

    tensor_names = ("factor_weight", "factor_bias")

    def __init__(self, rank: int, name: str = "lowrank"):
        self.rank = as_int("rank", rank)
        self.name = name

    def parameters(self, mean_specs, parametrization, rng, xp, dtype) -> dict:
        """The factor tensors of a layer whose mean tensors are ``mean_specs``.

        Parameters
        ----------
        mean_specs : dict
            ``{"weight": TensorSpec, "bias": TensorSpec}`` of the layer's mean.
        parametrization : Parametrization
        rng : numpy.random.Generator
            Draws ``factor_weight`` then ``factor_bias`` (standard normal × init std).
        xp : module
        dtype : numpy dtype

        Returns
        -------
        dict of Parameter
            ``factor_weight`` (n_out, n_in, R) and ``factor_bias`` (n_out, R).
        """
        out = {}
        for name, spec, shape in _companion_specs(self.tensor_names, mean_specs, "factor", self.rank):
            out[name] = _new(parametrization.init_std(spec) * rng.standard_normal(shape + (self.rank,)),
                             spec, parametrization, xp, dtype)
        return out

    def sample_noise(self, layer, rng):
        """``z ~ N(0, I_R)`` (one draw from ``rng``, moved to the layer's backend).

        Parameters
        ----------
        layer : VariationalLinear
            Gives the backend and dtype.
        rng : numpy.random.Generator
            Draws the ``R`` normals (one draw for the whole layer).

        Returns
        -------
        array (R,)
        """
        return asarray(rng.standard_normal(self.rank), layer.xp, layer.dtype)

    def sample(self, params, noise):
        """``(W, b)`` of the sample ``θ = μ + S z``.

        Parameters
        ----------
        params : mapping
            The layer's tensors by name (values).
        noise : array (R,)

        Returns
        -------
        (array (n_out, n_in), array (n_out,))
        """
        fw = params["factor_weight"]
        # S z as one matrix-vector product over the flattened factor (no copy: C-contiguous)
        w = params["weight"] + (fw.reshape(-1, self.rank) @ noise).reshape(fw.shape[:2])
        return w, params["bias"] + params["factor_bias"] @ noise

    def sample_grads(self, gw, gb, noise) -> dict:
        """Gradients of the factor tensors from those of the sampled weight and bias.

        Parameters
        ----------
        gw, gb : arrays
            ``∂L/∂W``, ``∂L/∂b`` at the sample.
        noise : array (R,)

        Returns
        -------
        dict of FactorGrad
            ``g zᵀ`` unexpanded.
        """
        return {"factor_weight": FactorGrad(gw, noise), "factor_bias": FactorGrad(gb, noise)}

    def variance(self, xp, params, x):
        """Closed-form output variance ``v_o = ‖S_oᵀ [x; 1]‖²`` given the inputs ``x``.

        ``S_o`` (n_in + 1, R) are the rows of ``S`` for output unit ``o``.

        Parameters
        ----------
        xp : module
        params : mapping
            Holds ``factor_weight`` (n_out, n_in, R) and ``factor_bias`` (n_out, R).
        x : array (N, n_in)

        Returns
        -------
        (v, cache)
            ``v`` (N, n_out) and what :meth:`variance_backward` needs.
        """
        n_out, n_in, r = params["factor_weight"].shape
        fw_t = xp.ascontiguousarray(params["factor_weight"].transpose(1, 0, 2)).reshape(n_in, n_out * r)
        a = (x @ fw_t).reshape(x.shape[0], n_out, r) + params["factor_bias"]
        return (a * a).sum(axis=2), (a, fw_t)

    def variance_backward(self, xp, params, x, dv, cache):
        """Backward of :meth:`variance`: ``(dx, grads)`` given ``∂L/∂v`` (N, n_out).

        Parameters
        ----------
        xp : module
        params : mapping
        x : array (N, n_in)
        dv : array (N, n_out)
        cache : from :meth:`variance`

        Returns
        -------
        (array (N, n_in), dict)
            The variance's part of ``∂L/∂x`` and the factor tensors' gradients (dense).
        """
        a, fw_t = cache
        n, n_out, r = a.shape
        da = (2.0 * dv)[:, :, None] * a
        da_flat = da.reshape(n, n_out * r)
        grads = {"factor_weight": xp.ascontiguousarray(
                     (x.T @ da_flat).reshape(x.shape[1], n_out, r).transpose(1, 0, 2)),
                 "factor_bias": da.sum(axis=0)}
        return da_flat @ fw_t.T, grads


class DiagonalCovariance:
    """``Cov(θ) = diag(s²)``: a scale per mean parameter (mean field).

    Notes
    -----
    A sample costs ``O(P)``; the closed-form variance ``O(N P)``. Each scale starts at its mean
    tensor's init std (a scale is a standard deviation) and inherits its step multiplier.
    """

    name = "diagonal"
    rank = 0
    tensor_names = ("scale_weight", "scale_bias")

    def parameters(self, mean_specs, parametrization, rng, xp, dtype) -> dict:
        """The scale tensors ``scale_weight`` (n_out, n_in), ``scale_bias`` (n_out,).

        Parameters
        ----------
        mean_specs, parametrization, rng, xp, dtype
            As for :meth:`FactorCovariance.parameters` (``rng`` is not used).

        Returns
        -------
        dict of Parameter
        """
        out = {}
        for name, spec, shape in _companion_specs(self.tensor_names, mean_specs, "scale"):
            out[name] = _new(np.full(shape, parametrization.init_std(spec)), spec,
                             parametrization, xp, dtype)
        return out

    def sample_noise(self, layer, rng):
        """``(ε_W, ε_b)`` standard normal, of the shapes of the weight and the bias.

        Parameters
        ----------
        layer : VariationalLinear
            Gives the shapes, the backend and the dtype.
        rng : numpy.random.Generator
            Draws ``ε_W`` then ``ε_b``.

        Returns
        -------
        tuple of two arrays
        """
        return (asarray(rng.standard_normal((layer.n_out, layer.n_in)), layer.xp, layer.dtype),
                asarray(rng.standard_normal(layer.n_out), layer.xp, layer.dtype))

    def sample(self, params, noise):
        """``(W, b) = (μ_W + s_W ε_W, μ_b + s_b ε_b)``.

        Parameters
        ----------
        params : mapping
        noise : tuple from :meth:`sample_noise`

        Returns
        -------
        (array, array)
        """
        return (params["weight"] + params["scale_weight"] * noise[0],
                params["bias"] + params["scale_bias"] * noise[1])

    def sample_grads(self, gw, gb, noise) -> dict:
        """``∂L/∂s = ∂L/∂θ · ε`` for both scales.

        Parameters
        ----------
        gw, gb : arrays
        noise : tuple

        Returns
        -------
        dict of arrays
        """
        return {"scale_weight": gw * noise[0], "scale_bias": gb * noise[1]}

    def variance(self, xp, params, x):
        """Closed-form output variance ``v_o = Σ_i s_{oi}² x_i² + s_o²``.

        Parameters
        ----------
        xp : module
        params : mapping
            Holds ``scale_weight`` (n_out, n_in) and ``scale_bias`` (n_out,).
        x : array (N, n_in)

        Returns
        -------
        (v, cache)
            ``v`` (N, n_out) and ``x²`` for :meth:`variance_backward`.
        """
        x2 = x * x
        return x2 @ (params["scale_weight"] ** 2).T + params["scale_bias"] ** 2, (x2,)

    def variance_backward(self, xp, params, x, dv, cache):
        """Backward of :meth:`variance` (see :meth:`FactorCovariance.variance_backward`).

        Parameters
        ----------
        xp, params, x, dv, cache
            As for :meth:`FactorCovariance.variance_backward`.

        Returns
        -------
        (array (N, n_in), dict)
        """
        (x2,) = cache
        sw, sb = params["scale_weight"], params["scale_bias"]
        grads = {"scale_weight": 2.0 * sw * (dv.T @ x2), "scale_bias": 2.0 * sb * dv.sum(axis=0)}
        return 2.0 * x * (dv @ (sw * sw)), grads

    def kl(self, xp, params, prior_stds):
        """``KL(q ‖ p)`` with the prior ``N(0, σ_p²)`` per tensor, and its gradients.

        ``KL = Σ [log(σ_p/|s|) + (s² + μ²)/(2σ_p²) − ½]``; ``∂/∂μ = μ/σ_p²``,
        ``∂/∂s = −1/s + s/σ_p²``.

        Parameters
        ----------
        xp : module
        params : mapping
        prior_stds : dict
            ``σ_p`` for "weight" and "bias".

        Returns
        -------
        (float, dict)
        """
        total = 0.0
        grads = {}
        for kind in ("weight", "bias"):
            mu, s = params[kind], params[f"scale_{kind}"]
            var_p = float(prior_stds[kind]) ** 2
            total += float(xp.sum(np.log(float(prior_stds[kind])) - xp.log(xp.abs(s))
                                  + (s * s + mu * mu) / (2.0 * var_p) - 0.5))
            grads[kind] = mu / var_p
            grads[f"scale_{kind}"] = -1.0 / s + s / var_p
        return total, grads


#: Covariance families by name.
FAMILIES = ("full", "lowrank", "diagonal")


def make_covariance(name: str, n_in: int, n_out: int, rank=None):
    """The covariance family ``name`` for a layer of fan-in ``n_in`` and fan-out ``n_out``.

    Parameters
    ----------
    name : {"full", "lowrank", "diagonal"}
    n_in, n_out : int
    rank : int, optional
        Rank of a ``"lowrank"`` factor, at most the layer's ``n_out·n_in + n_out`` parameters
        (required there, ignored otherwise).

    Returns
    -------
    FactorCovariance or DiagonalCovariance
        A new family object; it holds no tensors until the layer asks it for them.

    Raises
    ------
    ValueError, TypeError
        For an unknown name or a bad rank.
    """
    as_choice("covariance", name, FAMILIES)
    size = n_out * n_in + n_out
    if name == "diagonal":
        return DiagonalCovariance()
    if name == "full":
        return FactorCovariance(size, "full")
    # a factor (P, R) with R > P has rank P at most: say so rather than train a redundant one
    return FactorCovariance(as_int("rank", rank, maximum=size), "lowrank")
