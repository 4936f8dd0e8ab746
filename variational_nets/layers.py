"""Layers with hand-written forward and backward passes.

A layer with fan-in ``n_in`` and fan-out ``n_out`` holds its trainable tensors as
:class:`~variational_nets.tensors.Parameter` objects in ``layer.tensors``: the mean ``weight``
(n_out, n_in) and ``bias`` (n_out,), and for a :class:`VariationalLinear` the tensors of its
covariance family (:mod:`variational_nets.covariances`: ``factor_weight``/``factor_bias`` or
``scale_weight``/``scale_bias``). ``layer.params`` is a live view of their values by name.
"""
from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from .activations import ACTIVATIONS, ReLU, SiLU, make_activation
from .backend import asarray
from .covariances import FAMILIES as COVARIANCES
from .covariances import FactorGrad, make_covariance
from .parametrization import Parametrization
from .tensors import Parameter, TensorSpec
from .validation import as_choice, as_float_dtype, as_int, bad_type, bad_value

__all__ = ["Linear", "VariationalLinear", "FactorGrad", "COVARIANCES", "ACTIVATIONS", "SiLU",
           "ReLU", "make_activation"]


class _Values(MutableMapping):
    """``layer.params``: the values of ``layer.tensors`` by name, a live view.

    Assigning an existing name replaces that tensor's value (same spec); assigning a new name
    adds a tensor without a step multiplier, which the optimizer refuses.
    """

    def __init__(self, tensors: dict):
        self._tensors = tensors

    def __getitem__(self, name):
        return self._tensors[name].value

    def __setitem__(self, name, value):
        old = self._tensors.get(name)
        self._tensors[name] = Parameter.untyped(value) if old is None else old.with_value(value)

    def __delitem__(self, name):
        del self._tensors[name]

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self):
        return len(self._tensors)


def _check_rows(name, a, columns, rows=None):
    # O(1): the layers are the inner loop, their values are not scanned
    shape = getattr(a, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] != columns or (rows is not None
                                                                   and shape[0] != rows):
        want = f"({'N' if rows is None else rows}, {columns})"
        raise bad_value(name, f"an array of shape {want}",
                        got=type(a).__name__ if shape is None else f"shape {tuple(shape)}")


class Linear:
    """Deterministic affine layer ``h = x Wᵀ + b``.

    Parameters
    ----------
    n_in, n_out : int
        Fan-in and fan-out (positive).
    role : {"input", "hidden", "output"}
        Position in the network; decides init std and step multiplier.
    parametrization : Parametrization
    rng : numpy.random.Generator
        Draws the initial weights, then the biases (on the host, then moved to ``xp``).
    xp : module
        Array namespace (numpy or cupy).
    dtype : numpy dtype
        float32 for training, float64 for gradient checks.

    Raises
    ------
    ValueError, TypeError
        For sizes that are not positive integers, an unknown role, a parametrization that is
        not a :class:`Parametrization` or an ``rng`` that is not a Generator.

    Notes
    -----
    Forward costs ``O(N n_in n_out)`` for a batch of ``N`` rows; so does backward.
    """

    variational = False
    covariance = None
    family = None
    rank = 0

    def __init__(self, n_in, n_out, role, parametrization, rng, xp=np, dtype=np.float32):
        self.n_in, self.n_out = as_int("n_in", n_in), as_int("n_out", n_out)
        self.role = as_choice("role", role, ("input", "hidden", "output"))
        if not isinstance(parametrization, Parametrization):
            raise bad_type("parametrization", "a Parametrization", parametrization)
        if not isinstance(rng, np.random.Generator):
            raise bad_type("rng", "a numpy.random.Generator", rng)
        self.xp, self.dtype = xp, as_float_dtype("dtype", dtype)
        self.parametrization = parametrization
        #: Every trainable tensor of the layer, by name.
        self.tensors: dict = {}
        for kind, shape, fan_in in (("weight", (self.n_out, self.n_in), self.n_in),
                                    ("bias", (self.n_out,), 1)):
            spec = TensorSpec(kind, role, fan_in, self.n_out)
            std = parametrization.init_std(spec)
            self.tensors[kind] = Parameter(asarray(std * rng.standard_normal(shape), xp, self.dtype),
                                           spec, std, parametrization.lr_multiplier(spec))

    # --- the tensors by name --------------------------------------------------------------
    @property
    def params(self) -> MutableMapping:
        """The tensors' values by name (a live view of :attr:`tensors`)."""
        return _Values(self.tensors)

    @property
    def init_stds(self) -> dict:
        """Initial standard deviation of each tensor, by name."""
        return {name: t.init_std for name, t in self.tensors.items()}

    @property
    def multipliers(self) -> dict:
        """Step-size multiplier of each tensor, by name."""
        return {name: t.multiplier for name, t in self.tensors.items()}

    # --- sampling -----------------------------------------------------------------------
    def sample_noise(self, rng):
        """Noise of one weight sample (None: nothing to sample).

        Parameters
        ----------
        rng : numpy.random.Generator
            Not drawn from: a deterministic layer has no noise.

        Returns
        -------
        None
        """
        return None

    def sampled_weights(self, noise):
        """``(W, b)`` of the sample defined by ``noise`` (the mean for ``noise=None``).

        Parameters
        ----------
        noise : as from :meth:`sample_noise`, or None

        Returns
        -------
        (array (n_out, n_in), array (n_out,))
        """
        prm = self.params
        if noise is None or self.family is None:
            return prm["weight"], prm["bias"]
        return self.family.sample(prm, noise)

    # --- sampled / mean path ------------------------------------------------------------
    def forward(self, x, noise=None, keep_weight=True):
        """``h = x W_sᵀ + b_s`` at the sample ``noise`` (mean for None); returns (h, cache).

        Parameters
        ----------
        x : array (N, n_in)
        noise : optional
            From :meth:`sample_noise`.
        keep_weight : bool, default True
            ``False`` leaves the (sampled) weight out of the cache, so that it is freed at once:
            only ``dx`` needs it, and the network's first layer does not compute ``dx``.

        Returns
        -------
        (array (N, n_out), tuple)
        """
        _check_rows("x", x, self.n_in)
        w, b = self.sampled_weights(noise)
        return x @ w.T + b, (x, w if keep_weight else None, noise)

    def backward(self, dh, cache, input_grad=True):
        """Gradients of the loss: returns ``(dx, grads)`` with ``grads`` keyed like ``params``.

        Parameters
        ----------
        dh : array (N, n_out)
            ``∂L/∂h``.
        cache : tuple
            From :meth:`forward`.
        input_grad : bool, default True
            ``False`` skips ``dx = dh W`` (returned as None): the network's first layer has no
            use for it, and at ``n_in ≫ n_out`` it is as costly as the weight gradient.

        Returns
        -------
        (array (N, n_in) or None, dict)
            On the sampled path the covariance gradients come from the family (factor
            gradients as :class:`FactorGrad`); on the mean path they are zero.

        Raises
        ------
        ValueError
            For ``input_grad=True`` after a forward pass with ``keep_weight=False``.
        """
        x, w, noise = cache
        _check_rows("dh", dh, self.n_out, x.shape[0])
        if input_grad and w is None:
            raise ValueError("the forward pass kept no weight (keep_weight=False): "
                             "no input gradient can be computed")
        gw = dh.T @ x
        gb = dh.sum(axis=0)
        grads = {"weight": gw, "bias": gb}
        if self.family is not None:
            if noise is None:
                grads.update({name: self.xp.zeros_like(self.tensors[name].value)
                              for name in self.family.tensor_names})
            else:
                grads.update(self.family.sample_grads(gw, gb, noise))
        return (dh @ w if input_grad else None), grads

    # --- closed-form output moments -----------------------------------------------------
    def moments(self, x):
        """Mean and variance of each output unit over the weights, given ``x``: ``(m, v, cache)``.

        ``m = x μ_Wᵀ + μ_b``; ``v`` from the covariance family (zero for a deterministic layer).
        Shapes: x (N, n_in) → m, v (N, n_out).

        Parameters
        ----------
        x : array (N, n_in)

        Returns
        -------
        (array, array, tuple)
        """
        _check_rows("x", x, self.n_in)
        prm = self.params
        m = x @ prm["weight"].T + prm["bias"]
        if self.family is None:
            return m, self.xp.zeros_like(m), (x, None)
        v, cache = self.family.variance(self.xp, prm, x)
        return m, v, (x, cache)

    def moments_backward(self, dm, dv, cache):
        """Backward of :meth:`moments` given ``∂L/∂m`` and ``∂L/∂v``: returns ``(dx, grads)``.

        Parameters
        ----------
        dm, dv : arrays (N, n_out)
        cache : tuple
            From :meth:`moments`.

        Returns
        -------
        (array (N, n_in), dict)
        """
        x, variance_cache = cache
        _check_rows("dm", dm, self.n_out, x.shape[0])
        if self.family is not None:
            _check_rows("dv", dv, self.n_out, x.shape[0])
        prm = self.params
        dx = dm @ prm["weight"]
        grads = {"weight": dm.T @ x, "bias": dm.sum(axis=0)}
        if self.family is None:
            return dx, grads
        dx_v, cov_grads = self.family.variance_backward(self.xp, prm, x, dv, variance_cache)
        grads.update(cov_grads)
        return dx + dx_v, grads

    def kl(self, prior_stds=None):
        """KL divergence to the prior and its gradients; zero for a deterministic layer.

        Parameters
        ----------
        prior_stds : dict, optional
            Not used by a deterministic layer.

        Returns
        -------
        (float, dict)
        """
        return 0.0, {}


class VariationalLinear(Linear):
    """Affine layer with Gaussian weights ``θ ~ N(μ, S Sᵀ)`` (factor) or ``N(μ, diag(s²))``.

    Parameters
    ----------
    n_in, n_out, role, parametrization, rng, xp, dtype
        As for :class:`Linear`; ``rng`` draws the mean, then the covariance tensors.
    covariance : {"full", "lowrank", "diagonal"}
        ``"full"``: factor of rank ``R = n_out*n_in + n_out``; ``"lowrank"``: factor of rank
        ``rank``; ``"diagonal"``: a scale per parameter (mean field). See
        :mod:`variational_nets.covariances`.
    rank : int, optional
        Rank of a low-rank factor (required for "lowrank", at most ``n_out*n_in + n_out``;
        ignored otherwise).

    Raises
    ------
    ValueError, TypeError
        For an unknown covariance or a missing, non-positive or too large rank.

    Notes
    -----
    A sample costs ``O(n_out n_in R)`` (the matrix-vector product ``S z``); the closed-form
    moments :meth:`moments` cost ``O(N n_out n_in R)`` and are meant for the output layer.
    Init std and step multiplier of the factor: ``σ/√R`` and ``α/R`` (``docs/theory.md §3``).
    """

    variational = True

    def __init__(self, n_in, n_out, role, parametrization, rng, xp=np, dtype=np.float32,
                 covariance="full", rank=None):
        as_choice("covariance", covariance, COVARIANCES)
        super().__init__(n_in, n_out, role, parametrization, rng, xp, dtype)
        self.family = make_covariance(covariance, self.n_in, self.n_out, rank)
        self.covariance = covariance
        self.rank = self.family.rank
        means = {kind: self.tensors[kind].spec for kind in ("weight", "bias")}
        self.tensors.update(self.family.parameters(means, parametrization, rng, xp, self.dtype))

    def sample_noise(self, rng):
        """``z ~ N(0, I_R)`` (factor) or ``(ε_W, ε_b)`` standard normal (diagonal).

        Parameters
        ----------
        rng : numpy.random.Generator
            Handed to the covariance family, which draws from it.

        Returns
        -------
        array (R,) or tuple of two arrays
        """
        return self.family.sample_noise(self, rng)

    def kl(self, prior_stds=None):
        """``KL(q ‖ p)`` for a diagonal layer with prior ``N(0, σ_p²)`` per tensor, and its grads.

        Parameters
        ----------
        prior_stds : dict, optional
            ``σ_p`` for "weight" and "bias" (default: the init std of the mean tensor).

        Returns
        -------
        (float, dict)
            See :meth:`~variational_nets.covariances.DiagonalCovariance.kl`.

        Raises
        ------
        ValueError
            For a covariance other than ``"diagonal"``.
        """
        if not hasattr(self.family, "kl"):
            raise ValueError("the KL term is implemented for diagonal (mean-field) layers only; "
                             f"this layer has covariance {self.covariance!r}")
        prior_stds = prior_stds or {k: self.tensors[k].init_std for k in ("weight", "bias")}
        return self.family.kl(self.xp, self.params, prior_stds)
