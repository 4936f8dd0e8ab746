"""Layers with hand-written forward and backward passes.

Layout (shared with the fused kernel in variational_nets.kernels): a layer with fan-in ``n_in`` and fan-out
``n_out`` holds the mean ``weight`` (n_out, n_in) and ``bias`` (n_out,). A variational layer with a
covariance factor of rank ``R`` also holds ``factor_weight`` (n_out, n_in, R) and ``factor_bias``
(n_out, R); with ``θ = concat(weight.ravel(), bias)`` the factor is
``S = concat(factor_weight.reshape(n_out*n_in, R), factor_bias)`` and ``Cov(θ) = S Sᵀ`` ("full"
means ``R = n_out*n_in + n_out``). A diagonal (mean-field) layer holds ``scale_weight`` (n_out,
n_in) and ``scale_bias`` (n_out,) with ``Cov = diag(scale²)``.

A sample is ``θ = μ + S z`` with one ``z ~ N(0, I_R)`` per mini-batch shared by the batch, so the
factor gradient is ``g zᵀ`` with ``g = ∂L/∂θ`` at the sample. Backward passes return it unexpanded
as a :class:`FactorGrad` so that the optimizer never has to form it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import asarray
from .parametrization import Parametrization

COVARIANCES = ("full", "lowrank", "diagonal")


@dataclass(frozen=True)
class FactorGrad:
    """The gradient ``g[..., None] * z`` of a covariance factor, kept as its two pieces.

    ``g`` has the shape of the mean tensor, ``z`` (R,) is the mini-batch's noise.
    """

    g: object
    z: object

    def dense(self):
        """The gradient as an array of the factor's shape (for checks; costs the factor's size)."""
        return self.g[..., None] * self.z


# --------------------------------------------------------------------------------------------
# activations


def _sigmoid(xp, x):
    # tanh form: no overflow for large |x| on either backend
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


class SiLU:
    """``silu(x) = x σ(x)``, derivative ``σ(x) (1 + x (1 − σ(x)))``."""

    name = "silu"

    def forward(self, xp, x):
        s = _sigmoid(xp, x)
        return x * s, (x, s)

    def backward(self, xp, dy, cache):
        x, s = cache
        return dy * (s * (1.0 + x * (1.0 - s)))


class ReLU:
    """``relu(x) = max(x, 0)``; derivative 1 for ``x > 0``, else 0 (0 at the kink)."""

    name = "relu"

    def forward(self, xp, x):
        mask = x > 0
        return x * mask, mask

    def backward(self, xp, dy, cache):
        return dy * cache


ACTIVATIONS = {"silu": SiLU, "relu": ReLU}


def make_activation(name: str):
    """The activation called ``name`` ("silu" or "relu"); ValueError otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"invalid activation: expected one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


# --------------------------------------------------------------------------------------------
# linear layers


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
        Draws the initial weights (on the host, then moved to ``xp``).
    xp : module
        Array namespace (numpy or cupy).
    dtype : numpy dtype
        float32 for training, float64 for gradient checks.

    Notes
    -----
    Forward costs ``O(N n_in n_out)`` for a batch of ``N`` rows; so does backward.
    """

    variational = False
    covariance = None
    rank = 0

    def __init__(self, n_in, n_out, role, parametrization, rng, xp=np, dtype=np.float32):
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"invalid {name}: expected a positive integer, got {value!r}")
        if not isinstance(parametrization, Parametrization):
            raise TypeError("parametrization must be a Parametrization, "
                            f"got {type(parametrization).__name__}")
        self.n_in, self.n_out, self.role = int(n_in), int(n_out), role
        self.xp, self.dtype = xp, np.dtype(dtype)
        self.parametrization = parametrization
        self.params: dict = {}
        self.init_stds: dict = {}
        self.multipliers: dict = {}
        for kind, shape, fan_in in (("weight", (self.n_out, self.n_in), self.n_in),
                                    ("bias", (self.n_out,), 1)):
            std = parametrization.init_std(kind, role, fan_in, self.n_out)
            self._add(kind, std * rng.standard_normal(shape),
                      std, parametrization.lr_multiplier(kind, role, fan_in, self.n_out))

    def _add(self, name, value, std, multiplier):
        self.params[name] = asarray(value, self.xp, self.dtype)
        self.init_stds[name] = float(std)
        self.multipliers[name] = float(multiplier)

    # --- sampling -----------------------------------------------------------------------
    def sample_noise(self, rng):
        """Noise of one weight sample (None: nothing to sample)."""
        return None

    def sampled_weights(self, noise):
        """``(W, b)`` of the sample defined by ``noise`` (the mean for ``noise=None``)."""
        return self.params["weight"], self.params["bias"]

    # --- sampled / mean path ------------------------------------------------------------
    def forward(self, x, noise=None, keep_weight=True):
        """``h = x W_sᵀ + b_s`` at the sample ``noise`` (mean for None); returns (h, cache).

        ``keep_weight=False`` leaves the (sampled) weight out of the cache, so that it is freed
        at once: only ``dx`` needs it, and the network's first layer does not compute ``dx``.
        """
        w, b = self.sampled_weights(noise)
        return x @ w.T + b, (x, w if keep_weight else None, noise)

    def backward(self, dh, cache, input_grad=True):
        """Gradients of the loss: returns ``(dx, grads)`` with ``grads`` keyed like ``params``.

        ``input_grad=False`` skips ``dx = dh W`` (returned as None): the network's first layer
        has no use for it, and at ``n_in ≫ n_out`` it is as costly as the weight gradient.
        """
        x, w, noise = cache
        if input_grad and w is None:
            raise ValueError("the forward pass kept no weight (keep_weight=False): "
                             "no input gradient can be computed")
        gw = dh.T @ x
        gb = dh.sum(axis=0)
        return (dh @ w if input_grad else None), self._sample_grads(gw, gb, noise)

    def _sample_grads(self, gw, gb, noise):
        return {"weight": gw, "bias": gb}

    # --- closed-form output moments -----------------------------------------------------
    def moments(self, x):
        """Mean and variance of each output unit over the weights, given ``x``: ``(m, v, cache)``.

        A deterministic layer has ``v = 0``.
        """
        m = x @ self.params["weight"].T + self.params["bias"]
        return m, self.xp.zeros_like(m), (x,)

    def moments_backward(self, dm, dv, cache):
        """Backward of :meth:`moments` given ``∂L/∂m`` and ``∂L/∂v``: returns ``(dx, grads)``."""
        (x,) = cache
        return dm @ self.params["weight"], {"weight": dm.T @ x, "bias": dm.sum(axis=0)}

    def kl(self, prior_stds=None):
        """KL divergence to the prior and its gradients; zero for a deterministic layer."""
        return 0.0, {}


class VariationalLinear(Linear):
    """Affine layer with Gaussian weights ``θ ~ N(μ, S Sᵀ)`` (factor) or ``N(μ, diag(s²))``.

    Parameters
    ----------
    n_in, n_out, role, parametrization, rng, xp, dtype
        As for :class:`Linear`.
    covariance : {"full", "lowrank", "diagonal"}
        ``"full"``: factor of rank ``R = n_out*n_in + n_out``; ``"lowrank"``: factor of rank
        ``rank``; ``"diagonal"``: a scale per parameter (mean field).
    rank : int, optional
        Rank of a low-rank factor (required for "lowrank", ignored otherwise).

    Notes
    -----
    A sample costs ``O(n_out n_in R)`` (the matrix-vector product ``S z``); the closed-form
    moments :meth:`moments` cost ``O(N n_out n_in R)`` and are meant for the output layer.
    Init std and step multiplier of the factor: ``σ/√R`` and ``α/R`` (THEORY.md §3).

    Raises
    ------
    ValueError
        For an unknown covariance or a missing/non-positive rank.
    """

    variational = True

    def __init__(self, n_in, n_out, role, parametrization, rng, xp=np, dtype=np.float32,
                 covariance="full", rank=None):
        if covariance not in COVARIANCES:
            raise ValueError(f"invalid covariance (--covariance): expected one of "
                             f"{', '.join(COVARIANCES)}, got {covariance!r}")
        super().__init__(n_in, n_out, role, parametrization, rng, xp, dtype)
        self.covariance = covariance
        p = parametrization
        if covariance == "diagonal":
            self.rank = 0
            for kind, shape in (("weight", (self.n_out, self.n_in)), ("bias", (self.n_out,))):
                std = self.init_stds[kind]
                # a scale is a standard deviation: initialise it at the prior std itself
                self._add(f"scale_{kind}", np.full(shape, std), std, self.multipliers[kind])
            return
        if covariance == "full":
            rank = self.n_out * self.n_in + self.n_out
        elif isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank <= 0:
            raise ValueError(f"invalid rank (--rank): expected a positive integer, got {rank!r}")
        self.rank = int(rank)
        for kind, shape in (("weight", (self.n_out, self.n_in, self.rank)),
                            ("bias", (self.n_out, self.rank))):
            std = p.factor_init_std(self.init_stds[kind], self.rank)
            self._add(f"factor_{kind}", std * rng.standard_normal(shape), std,
                      p.factor_lr_multiplier(self.multipliers[kind], self.rank))

    def sample_noise(self, rng):
        """``z ~ N(0, I_R)`` (factor) or ``(ε_W, ε_b)`` standard normal (diagonal)."""
        if self.covariance == "diagonal":
            return (asarray(rng.standard_normal((self.n_out, self.n_in)), self.xp, self.dtype),
                    asarray(rng.standard_normal(self.n_out), self.xp, self.dtype))
        return asarray(rng.standard_normal(self.rank), self.xp, self.dtype)

    def sampled_weights(self, noise):
        prm = self.params
        if noise is None:
            return prm["weight"], prm["bias"]
        if self.covariance == "diagonal":
            return (prm["weight"] + prm["scale_weight"] * noise[0],
                    prm["bias"] + prm["scale_bias"] * noise[1])
        fw = prm["factor_weight"]
        # S z as one matrix-vector product over the flattened factor (no copy: C-contiguous)
        w = prm["weight"] + (fw.reshape(-1, self.rank) @ noise).reshape(fw.shape[:2])
        return w, prm["bias"] + prm["factor_bias"] @ noise

    def _sample_grads(self, gw, gb, noise):
        grads = {"weight": gw, "bias": gb}
        if noise is None:
            return grads
        if self.covariance == "diagonal":
            grads["scale_weight"] = gw * noise[0]
            grads["scale_bias"] = gb * noise[1]
        else:
            grads["factor_weight"] = FactorGrad(gw, noise)
            grads["factor_bias"] = FactorGrad(gb, noise)
        return grads

    def backward(self, dh, cache, input_grad=True):
        """As :meth:`Linear.backward`; on the mean path (noise None) covariance grads are zero."""
        dx, grads = super().backward(dh, cache, input_grad)
        if cache[2] is None:
            for name in self.params:
                grads.setdefault(name, self.xp.zeros_like(self.params[name]))
        return dx, grads

    def moments(self, x):
        """Closed-form output mean and variance: ``m = x μ_Wᵀ + μ_b``, ``v_o = ‖S_oᵀ [x; 1]‖²``.

        ``S_o`` (n_in+1, R) are the rows of ``S`` for output unit ``o``; diagonal:
        ``v_o = Σ_i s_{oi}² x_i² + s_o²``. Shapes: x (N, n_in) → m, v (N, n_out).
        """
        xp = self.xp
        prm = self.params
        m = x @ prm["weight"].T + prm["bias"]
        if self.covariance == "diagonal":
            x2 = x * x
            v = x2 @ (prm["scale_weight"] ** 2).T + prm["scale_bias"] ** 2
            return m, v, (x, x2)
        n_out, n_in, r = prm["factor_weight"].shape
        fw_t = xp.ascontiguousarray(prm["factor_weight"].transpose(1, 0, 2)).reshape(n_in, n_out * r)
        a = (x @ fw_t).reshape(x.shape[0], n_out, r) + prm["factor_bias"]
        v = (a * a).sum(axis=2)
        return m, v, (x, a, fw_t)

    def moments_backward(self, dm, dv, cache):
        xp = self.xp
        prm = self.params
        x = cache[0]
        dx = dm @ prm["weight"]
        grads = {"weight": dm.T @ x, "bias": dm.sum(axis=0)}
        if self.covariance == "diagonal":
            x2 = cache[1]
            sw, sb = prm["scale_weight"], prm["scale_bias"]
            grads["scale_weight"] = 2.0 * sw * (dv.T @ x2)
            grads["scale_bias"] = 2.0 * sb * dv.sum(axis=0)
            dx = dx + 2.0 * x * (dv @ (sw * sw))
            return dx, grads
        _, a, fw_t = cache
        n, n_out, r = a.shape
        da = (2.0 * dv)[:, :, None] * a
        da_flat = da.reshape(n, n_out * r)
        grads["factor_weight"] = xp.ascontiguousarray(
            (x.T @ da_flat).reshape(self.n_in, n_out, r).transpose(1, 0, 2))
        grads["factor_bias"] = da.sum(axis=0)
        return dx + da_flat @ fw_t.T, grads

    def kl(self, prior_stds=None):
        """``KL(q ‖ p)`` for a diagonal layer with prior ``N(0, σ_p²)`` per tensor, and its grads.

        ``KL = Σ [log(σ_p/|s|) + (s² + μ²)/(2σ_p²) − ½]``; ``∂/∂μ = μ/σ_p²``,
        ``∂/∂s = −1/s + s/σ_p²``. ``prior_stds`` maps "weight"/"bias" to ``σ_p`` (default: the
        init std of the mean tensor). Only defined for ``covariance="diagonal"`` (ValueError else).
        """
        if self.covariance != "diagonal":
            raise ValueError("the KL term is implemented for diagonal (mean-field) layers only; "
                             f"this layer has covariance {self.covariance!r}")
        xp = self.xp
        prior_stds = prior_stds or {k: self.init_stds[k] for k in ("weight", "bias")}
        total = 0.0
        grads = {}
        for kind in ("weight", "bias"):
            mu, s = self.params[kind], self.params[f"scale_{kind}"]
            var_p = float(prior_stds[kind]) ** 2
            total += float(xp.sum(np.log(float(prior_stds[kind])) - xp.log(xp.abs(s))
                                  + (s * s + mu * mu) / (2.0 * var_p) - 0.5))
            grads[kind] = mu / var_p
            grads[f"scale_{kind}"] = -1.0 / s + s / var_p
        return total, grads
