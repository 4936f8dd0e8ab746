r"""The methods of the image benchmark: IBVI and the baselines the paper compares it with.

Every method trains the same MLP ``d_in → W → … → W → C`` (``depth`` hidden layers, SiLU, μP by
default) with the same budget — :class:`Recipe`: momentum SGD (PyTorch's update, momentum 0.9),
``epochs`` passes of mini-batches of ``batch_size``, the base step ``lr`` — through the one
trainer loop :func:`~variational_nets.train.fit`. Predictions average *probabilities* over
``num_samples`` weight samples (one sample shared by a whole batch, as in training). Costs below
are per training step for a batch of ``B`` rows, with ``P`` the network's mean parameters,
``P_in``/``P_out`` those of its input/output layer, ``R`` the factor rank, ``H`` the last
hidden width and ``N`` the training set size.

============== ======================================================================= =====================
method         what it computes                                                        cost
============== ======================================================================= =====================
map            the deterministic network (the loss at the mean, no prior term)         ``O(B P)``
temperature    ``map`` with its logits divided by ``T``, fitted to the validation NLL  map + ``O(N_val C)``
               (:func:`fit_temperature`)
mfvi           mean-field VI: diagonal Gaussians on the input and output layers, the   ``O(B P)``
               negative ELBO per example (expected loss + KL(q ‖ p) / N), prior =
               the initialization's std
ensemble       ``ensemble_size`` map networks from independent seeds, probabilities    ``M ×`` map
               averaged
laplace        last-layer Laplace on the map network: the output layer's exact         map + ``O(N C² H²)``
               Gauss–Newton Hessian of the summed NLL (:func:`last_layer_hessian`),    + ``O(C³ H³)`` per
               posterior ``N(θ_map, (G + λI)⁻¹)``, ``λ`` chosen on the validation NLL  prior precision
swag           SWAG (Maddox et al. 2019) from the SGD iterates of map training: mean,  map + ``O(P K)``
               diagonal and rank-``K`` deviations of one snapshot per epoch over the   per snapshot
               last ``swag_fraction`` of the epochs (:class:`SWAGCollector`)
ibvi           IBVI: rank-``R`` factors on the input and output layers, expected loss  ``O(B P + R P_in)``
               only with the closed-form last layer (no KL, no weight decay)
ibvi-sampled   the same with the loss at one sampled output (Monte Carlo)              ``O(B P + R P_in)``
ibvi-output    IBVI with a factor on the output layer only (closed form)               ``O(B P + B C H R)``
============== ======================================================================= =====================

``temperature``, ``laplace`` and ``swag`` share the map network of the same seed (same
initialization and batch order, so the same weights), and SWAG's iterates are that run's.
:func:`fit_method` trains a method and returns a :class:`FittedMethod` whose predictor gives
probabilities for any inputs; :func:`training_peak_bytes` measures the memory of a training
step with :mod:`tracemalloc`.
"""
from __future__ import annotations

import math
import time
import tracemalloc
from collections import deque
from dataclasses import dataclass, fields, replace

import numpy as np
from scipy import linalg, optimize

from .backend import asarray
from .experiment import DEFAULT_RANK
from .model import MLP
from .parametrization import PARAMETRIZATIONS
from .train import TrainingDiverged, fit, predict, train_state, train_step
from .validation import (as_array, as_choice, as_float, as_generator, as_int, as_labels, bad_type,
                         bad_value)

__all__ = ["METHODS", "METHOD_DESCRIPTIONS", "Recipe", "FittedMethod", "fit_method",
           "training_peak_bytes", "softmax", "temperature_nll", "fit_temperature",
           "last_layer_hessian", "LAPLACE_PRIOR_PRECISIONS", "SWAGCollector", "SWAGMoments",
           "NetworkPredictor", "TemperaturePredictor", "EnsemblePredictor", "LaplacePredictor",
           "SWAGPredictor", "variational_share", "MAX_HALVINGS"]


@dataclass(frozen=True)
class _Spec:
    variational: str
    covariance: str
    expectation: str = "closed-form"
    kl: bool = False
    ensemble: bool = False
    posthoc: str | None = None


_SPECS = {
    "map": _Spec("none", "full"),
    "temperature": _Spec("none", "full", posthoc="temperature"),
    "mfvi": _Spec("input-output", "diagonal", kl=True),
    "ensemble": _Spec("none", "full", ensemble=True),
    "laplace": _Spec("none", "full", posthoc="laplace"),
    "swag": _Spec("none", "full", posthoc="swag"),
    "ibvi": _Spec("input-output", "lowrank"),
    "ibvi-sampled": _Spec("input-output", "lowrank", expectation="mc"),
    "ibvi-output": _Spec("output", "lowrank"),
}
#: The methods, in the order tables and figures list them.
METHODS = tuple(_SPECS)
#: One line per method (the command line's ``--help`` shows them).
METHOD_DESCRIPTIONS = {
    "map": "the deterministic network",
    "temperature": "map with temperature scaling fitted on the validation NLL",
    "mfvi": "mean-field VI with the KL term (ELBO) on the input and output layers",
    "ensemble": "deep ensemble of map networks, probabilities averaged",
    "laplace": "last-layer Laplace (exact output-layer Gauss-Newton), prior precision on validation NLL",
    "swag": "SWAG (diagonal plus low rank) from the SGD iterates of the last epochs",
    "ibvi": "IBVI, low-rank factors on the input and output layers, closed-form last layer",
    "ibvi-sampled": "IBVI as ibvi with the loss at one sampled output",
    "ibvi-output": "IBVI with a low-rank factor on the output layer only",
}
#: The prior precisions ``λ`` the Laplace baseline chooses from (half-decades, 1e-2 … 1e6).
LAPLACE_PRIOR_PRECISIONS = tuple(10.0 ** (k / 2.0) for k in range(-4, 13))


@dataclass(frozen=True)
class Recipe:
    """The architecture and training budget every method of the benchmark shares.

    Parameters
    ----------
    width : int, default 128
        Hidden width.
    depth : int, default 2
        Hidden layers (at least 1).
    epochs : int, default 20
    batch_size : int, default 128
    lr : float, default 0.1
        Base step size (the parametrization multiplies it per tensor).
    momentum : float, default 0.9
        In ``[0, 1)``.
    parametrization : {"mup", "sp", "ntp"}, default "mup"
    rank : int, default 16
        Rank of IBVI's factors (capped at a layer's parameter count).
    num_samples : int, default 16
        Weight samples per prediction.
    ensemble_size : int, default 5
    swag_rank : int, default 20
        The most deviation columns SWAG keeps.
    swag_fraction : float, default 0.5
        SWAG collects one snapshot per epoch over this last fraction of the epochs (at least 2).
    dtype : {"float32", "float64"}, default "float32"

    Raises
    ------
    ValueError, TypeError
        ``invalid <field>: ...`` for the first bad field.
    """

    width: int = 128
    depth: int = 2
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    parametrization: str = "mup"
    rank: int = DEFAULT_RANK
    num_samples: int = 16
    ensemble_size: int = 5
    swag_rank: int = 20
    swag_fraction: float = 0.5
    dtype: str = "float32"

    def __post_init__(self):
        for name in ("width", "depth", "epochs", "batch_size", "rank", "num_samples", "ensemble_size"):
            object.__setattr__(self, name, as_int(name, getattr(self, name)))
        object.__setattr__(self, "swag_rank", as_int("swag_rank", self.swag_rank, minimum=2))
        object.__setattr__(self, "lr", as_float("lr", self.lr, low=0, low_open=True))
        object.__setattr__(self, "momentum", as_float("momentum", self.momentum, low=0, high=1,
                                                      high_open=True))
        object.__setattr__(self, "swag_fraction", as_float("swag_fraction", self.swag_fraction, low=0,
                                                           high=1, low_open=True))
        as_choice("parametrization", self.parametrization, PARAMETRIZATIONS)
        as_choice("dtype", self.dtype, ("float32", "float64"))

    def sizes(self, d_in: int, num_classes: int) -> tuple:
        """``(d_in, width, …, width, num_classes)``.

        Parameters
        ----------
        d_in, num_classes : int

        Returns
        -------
        tuple of int
        """
        return (int(d_in),) + (self.width,) * self.depth + (int(num_classes),)

    def swag_epochs(self) -> int:
        """How many of the last epochs SWAG takes a snapshot after (at least 2, at most all).

        Returns
        -------
        int
        """
        return min(self.epochs, max(2, math.ceil(self.swag_fraction * self.epochs)))

    def as_dict(self) -> dict:
        """The fields by name (for sweep points and JSON).

        Returns
        -------
        dict
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FittedMethod:
    """A trained method of the benchmark.

    Parameters
    ----------
    method : str
    predictor : object
        ``predictor.probabilities(x, rng) -> (N, C)`` float64 probabilities.
    train_seconds : float
        Wall time of the training loop (every member, every epoch), without the post-hoc fit.
    epochs : int
    posthoc_seconds : float
        Wall time of the fit on the validation set (temperature, Laplace) or of SWAG's
        snapshots; 0 for the others.
    num_parameters : int
        Trainable scalars (means and covariance tensors; all members of an ensemble).
    variational_share : float
        Share of the network's mean parameters that lie in variational layers (0 for the
        deterministic methods).
    details : tuple of (str, float)
        What the method fitted (``("temperature", T)``, ``("prior_precision", λ)``, …).
    """

    method: str
    predictor: object
    train_seconds: float
    epochs: int
    posthoc_seconds: float
    num_parameters: int
    variational_share: float
    details: tuple = ()

    @property
    def seconds_per_epoch(self) -> float:
        """Training wall time per epoch (all members)."""
        return self.train_seconds / self.epochs


def variational_share(model: MLP) -> float:
    """Share of ``model``'s mean parameters (weights and biases) in its variational layers.

    Parameters
    ----------
    model : MLP

    Returns
    -------
    float
        In [0, 1].
    """
    sizes = [layer.n_out * (layer.n_in + 1) for layer in model.layers]
    var = [s for s, layer in zip(sizes, model.layers) if layer.variational]
    return float(sum(var) / sum(sizes))


# --- softmax, temperature --------------------------------------------------------------------

def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64 (max subtracted first).

    Parameters
    ----------
    logits : array_like (N, C)

    Returns
    -------
    numpy.ndarray (N, C)
    """
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check_logits(logits, labels):
    logits = as_array("logits", logits, ndim=2, dtype=np.float64)
    labels = as_labels("labels", labels, logits.shape[1])
    if labels.shape[0] != logits.shape[0]:
        raise bad_value("labels", f"{logits.shape[0]} labels, one per row of logits", got=f"{labels.shape[0]}")
    return logits, labels


def temperature_nll(logits, labels, temperature: float) -> float:
    """Mean NLL of ``softmax(logits / T)``: ``mean_n [log Σ_c e^{z_nc/T} − z_{n y_n}/T]``.

    Parameters
    ----------
    logits : array_like (N, C)
    labels : array_like of int (N,)
    temperature : float
        ``T > 0``.

    Returns
    -------
    float
        ``≥ 0``: the NLL of the probabilities calibrated by ``T``.

    Raises
    ------
    ValueError, TypeError
        Naming the argument.
    """
    logits, labels = _check_logits(logits, labels)
    t = as_float("temperature", temperature, low=0, low_open=True)
    z = logits / t
    zmax = z.max(axis=1)
    lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(z.shape[0]), labels]))


def fit_temperature(logits, labels, bounds=(1e-2, 1e2)) -> float:
    """The temperature ``T`` that minimises :func:`temperature_nll` on ``(logits, labels)``.

    With ``β = 1/T`` the NLL is convex in ``β`` and its derivative
    ``g(β) = mean_n [Σ_c p_nc(β) z_nc − z_{n y_n}]`` (``p(β) = softmax(β z)``) increases, so the
    minimiser is the root of ``g`` (Brent's method), or the nearer end of ``bounds`` when ``g``
    does not change sign inside them. Cost ``O(N C)`` per evaluation, about 40 evaluations.

    Parameters
    ----------
    logits : array_like (N, C)
    labels : array_like of int (N,)
    bounds : (float, float), default (0.01, 100)
        The range of ``T``.

    Returns
    -------
    float
        The minimising ``T``, inside ``bounds`` (an end of them when the NLL is monotone there).

    Raises
    ------
    ValueError, TypeError
        Naming the argument.
    """
    logits, labels = _check_logits(logits, labels)
    lo, hi = (as_float("bounds", b, low=0, low_open=True) for b in bounds)
    if not lo < hi:
        raise bad_value("bounds", "(low, high) with 0 < low < high", bounds)
    picked = logits[np.arange(logits.shape[0]), labels]

    def slope(beta):
        return float(np.mean((softmax(beta * logits) * logits).sum(axis=1) - picked))

    beta_lo, beta_hi = 1.0 / hi, 1.0 / lo
    if slope(beta_lo) >= 0:
        return hi
    if slope(beta_hi) <= 0:
        return lo
    return 1.0 / optimize.brentq(slope, beta_lo, beta_hi, xtol=1e-12, rtol=1e-12)


# --- last-layer Laplace ------------------------------------------------------------------------

def last_layer_hessian(features, probs) -> np.ndarray:
    """Gauss–Newton Hessian of the summed softmax NLL with respect to the output layer.

    The output layer maps features ``h_n`` (H,) to logits ``f_n = W h_n + b``; its parameters are
    ordered as the network's layout ``θ = concat(W.ravel(), b)`` (``W`` (C, H) row-major, so
    ``P = C H + C``). With ``φ_n = [h_n; 1]`` and ``Λ_n = diag(p_n) − p_n p_nᵀ``,

    .. math::

        G = \\sum_n J_n^T Λ_n J_n, \\qquad
        G_{(c,i),(d,j)} = \\sum_n φ_{ni} φ_{nj} (p_{nc} δ_{cd} − p_{nc} p_{nd}).

    The logits are linear in ``θ``, so this is the exact Hessian of ``Σ_n NLL_n``, not an
    approximation. Built as the block diagonal ``Φᵀ diag(p_c) Φ`` minus ``AᵀA`` with
    ``A_{n,(c,i)} = p_nc φ_ni``: cost ``O(N C² (H+1)²)``, memory ``O(P² + N P)``.

    Parameters
    ----------
    features : array_like (N, H)
        Last hidden activations at the mean.
    probs : array_like (N, C)
        ``softmax(f_n)`` at the trained parameters.

    Returns
    -------
    numpy.ndarray (P, P)
        Symmetric positive semi-definite, float64.

    Raises
    ------
    ValueError, TypeError
        Naming the argument (shapes, NaN/inf, probabilities that are not rows summing to 1).
    """
    phi = as_array("features", features, ndim=2, dtype=np.float64)
    p = as_array("probs", probs, ndim=2, dtype=np.float64)
    if p.shape[0] != phi.shape[0]:
        raise bad_value("probs", f"{phi.shape[0]} rows, one per feature row", got=f"shape {p.shape}")
    if p.min() < 0 or np.max(np.abs(p.sum(axis=1) - 1)) > 1e-6:
        raise bad_value("probs", "rows of probabilities that sum to 1", got="other values")
    n, h = phi.shape
    c = p.shape[1]
    phi1 = np.hstack([phi, np.ones((n, 1))])
    a = (p[:, :, None] * phi1[:, None, :]).reshape(n, c * (h + 1))
    g = -(a.T @ a)
    for k in range(c):
        block = slice(k * (h + 1), (k + 1) * (h + 1))
        g[block, block] += (phi1 * p[:, k:k + 1]).T @ phi1
    # from the (class, feature-or-bias) order to the network's (all weights, then biases)
    weights = (np.arange(c)[:, None] * (h + 1) + np.arange(h)[None, :]).ravel()
    order = np.concatenate([weights, np.arange(c) * (h + 1) + h])
    g = g[np.ix_(order, order)]
    return 0.5 * (g + g.T)


# --- SWAG --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SWAGMoments:
    """SWAG's Gaussian over a parameter vector of length ``P``.

    Parameters
    ----------
    mean : numpy.ndarray (P,)
        Mean of the snapshots.
    diagonal : numpy.ndarray (P,)
        Their variance per coordinate (``ddof=0``; clipped at 0 against rounding).
    deviations : numpy.ndarray (P, K)
        The last ``K`` snapshots minus ``mean``.
    count : int
        Snapshots taken.
    """

    mean: np.ndarray
    diagonal: np.ndarray
    deviations: np.ndarray
    count: int

    def sample(self, rng) -> np.ndarray:
        """``θ = mean + √(diagonal/2) ⊙ z₁ + D z₂ / √(2(K − 1))`` (Maddox et al. 2019, eq. 4).

        Parameters
        ----------
        rng : numpy.random.Generator
            Draws ``z₁ ~ N(0, I_P)`` then ``z₂ ~ N(0, I_K)``.

        Returns
        -------
        numpy.ndarray (P,)
        """
        as_generator("rng", rng)
        k = self.deviations.shape[1]
        theta = self.mean + np.sqrt(self.diagonal / 2.0) * rng.standard_normal(self.mean.shape)
        if k > 1:
            theta = theta + self.deviations @ rng.standard_normal(k) / math.sqrt(2.0 * (k - 1))
        return theta


class SWAGCollector:
    """Running first and second moments of parameter snapshots and the last ``max_rank`` of them.

    Memory ``(2 + max_rank) P`` float64 values; :meth:`add` costs ``O(P)``.

    Parameters
    ----------
    size : int
        ``P``, the length of a snapshot.
    max_rank : int, default 20
        How many of the latest snapshots are kept for the low-rank part (at least 2).

    Raises
    ------
    ValueError, TypeError
        For a size or rank that is not a positive integer (rank at least 2).
    """

    def __init__(self, size: int, max_rank: int = 20):
        self.size = as_int("size", size)
        self.max_rank = as_int("max_rank", max_rank, minimum=2)
        self._sum = np.zeros(self.size)
        self._sum_sq = np.zeros(self.size)
        self._last = deque(maxlen=self.max_rank)
        self.count = 0

    def add(self, theta) -> None:
        """Record one snapshot.

        Parameters
        ----------
        theta : array_like (P,)

        Raises
        ------
        ValueError, TypeError
            For a snapshot of the wrong length or with NaN/inf.
        """
        theta = as_array("theta", theta, ndim=1, dtype=np.float64)
        if theta.shape[0] != self.size:
            raise bad_value("theta", f"a vector of length {self.size}", got=f"shape {theta.shape}")
        self._sum += theta
        self._sum_sq += theta * theta
        self._last.append(theta.copy())
        self.count += 1

    def moments(self) -> SWAGMoments:
        """The SWAG Gaussian of the snapshots so far.

        Returns
        -------
        SWAGMoments

        Raises
        ------
        ValueError
            With fewer than two snapshots.
        """
        if self.count < 2:
            raise ValueError(f"SWAG needs at least two snapshots, got {self.count}")
        mean = self._sum / self.count
        diagonal = np.maximum(self._sum_sq / self.count - mean * mean, 0.0)
        deviations = np.stack([t - mean for t in self._last], axis=1)
        return SWAGMoments(mean, diagonal, deviations, self.count)


def _flat_parameters(model: MLP) -> np.ndarray:
    return np.concatenate([np.asarray(t.value, dtype=np.float64).ravel() for t in model.tensors().values()])


def _assign_parameters(model: MLP, theta) -> None:
    start = 0
    for t in model.tensors().values():
        size = t.value.size
        t.value[...] = asarray(theta[start:start + size].reshape(t.value.shape), model.xp, model.dtype)
        start += size


# --- predictors ----------------------------------------------------------------------------------

def _check_x(model, x):
    x = as_array("x", x, ndim=2)
    if x.shape[1] != model.sizes[0]:
        raise bad_value("x", f"shape (N, {model.sizes[0]}) for this model", got=f"shape {x.shape}")
    return x


class NetworkPredictor:
    """Probabilities of a network averaged over ``num_samples`` weight samples
    (:func:`~variational_nets.train.predict`; one pass for a deterministic network).

    Parameters
    ----------
    model : MLP
    num_samples : int
    """

    def __init__(self, model: MLP, num_samples: int):
        self.model, self.num_samples = model, as_int("num_samples", num_samples)

    def probabilities(self, x, rng) -> np.ndarray:
        """Predictive probabilities (N, C).

        Parameters
        ----------
        x : array_like (N, d_in)
        rng : numpy.random.Generator
            Draws the weight samples.

        Returns
        -------
        numpy.ndarray
        """
        return predict(self.model, x, "softmax_ce", self.num_samples, rng).mean


def _logits(model, x):
    return np.asarray(model.forward(asarray(_check_x(model, x), model.xp, model.dtype)).activations[-1],
                      dtype=np.float64)


class TemperaturePredictor:
    """``softmax(f(x) / T)`` of a deterministic network.

    Parameters
    ----------
    model : MLP
    temperature : float
    """

    def __init__(self, model: MLP, temperature: float):
        self.model = model
        self.temperature = as_float("temperature", temperature, low=0, low_open=True)

    def probabilities(self, x, rng=None) -> np.ndarray:
        """Predictive probabilities (N, C); ``rng`` is not used.

        Parameters
        ----------
        x : array_like (N, d_in)
        rng : ignored

        Returns
        -------
        numpy.ndarray
        """
        return softmax(_logits(self.model, x) / self.temperature)


class EnsemblePredictor:
    """The mean of the members' probabilities.

    Parameters
    ----------
    members : sequence of predictors
    """

    def __init__(self, members):
        self.members = tuple(members)
        if not self.members:
            raise bad_value("members", "at least one member", self.members)

    def probabilities(self, x, rng) -> np.ndarray:
        """Predictive probabilities (N, C).

        Parameters
        ----------
        x : array_like (N, d_in)
        rng : numpy.random.Generator
            Passed to every member in turn.

        Returns
        -------
        numpy.ndarray
        """
        return sum(m.probabilities(x, rng) for m in self.members) / len(self.members)


class LaplacePredictor:
    """Last-layer Laplace: ``θ_k = θ̂ + L⁻ᵀ z_k`` with ``L Lᵀ = G + λI``, probabilities of the
    logits ``W_k h(x) + b_k`` averaged over ``num_samples`` draws (the features ``h`` at the mean).

    Parameters
    ----------
    model : MLP
        The trained deterministic network (its output layer gives ``θ̂``).
    hessian : numpy.ndarray (P, P)
        :func:`last_layer_hessian` on the training set.
    prior_precision : float
        ``λ > 0``.
    num_samples : int

    Notes
    -----
    The Cholesky factorisation costs ``O(P³)`` once; a prediction ``O(K (N C H + P²))``.
    """

    def __init__(self, model: MLP, hessian, prior_precision: float, num_samples: int):
        self.model = model
        self.prior_precision = as_float("prior_precision", prior_precision, low=0, low_open=True)
        self.num_samples = as_int("num_samples", num_samples)
        last = model.layers[-1]
        self.theta = np.concatenate([np.asarray(last.params["weight"], np.float64).ravel(),
                                     np.asarray(last.params["bias"], np.float64)])
        hessian = np.asarray(hessian, dtype=np.float64)
        self.cholesky = linalg.cholesky(hessian + self.prior_precision * np.eye(hessian.shape[0]), lower=True)

    def probabilities(self, x, rng) -> np.ndarray:
        """Predictive probabilities (N, C).

        Parameters
        ----------
        x : array_like (N, d_in)
        rng : numpy.random.Generator
            Draws the ``K × P`` standard normals.

        Returns
        -------
        numpy.ndarray
        """
        as_generator("rng", rng)
        model = self.model
        h = np.asarray(model.forward(asarray(_check_x(model, x), model.xp, model.dtype)).activations[-2],
                       dtype=np.float64)
        c, hidden = model.layers[-1].n_out, model.layers[-1].n_in
        z = rng.standard_normal((self.theta.size, self.num_samples))
        thetas = self.theta[:, None] + linalg.solve_triangular(self.cholesky.T, z, lower=False)
        total = 0.0
        for k in range(self.num_samples):
            w = thetas[:c * hidden, k].reshape(c, hidden)
            total = total + softmax(h @ w.T + thetas[c * hidden:, k])
        return total / self.num_samples


class SWAGPredictor:
    """SWAG: probabilities averaged over ``num_samples`` parameter vectors drawn from
    :class:`SWAGMoments` and written into the network (restored to the mean afterwards).

    Parameters
    ----------
    model : MLP
        A deterministic network of the snapshots' layout.
    moments : SWAGMoments
    num_samples : int
    """

    def __init__(self, model: MLP, moments: SWAGMoments, num_samples: int):
        self.model, self.moments = model, moments
        self.num_samples = as_int("num_samples", num_samples)

    def probabilities(self, x, rng) -> np.ndarray:
        """Predictive probabilities (N, C).

        Parameters
        ----------
        x : array_like (N, d_in)
        rng : numpy.random.Generator
            Draws the parameter samples.

        Returns
        -------
        numpy.ndarray
        """
        as_generator("rng", rng)
        _check_x(self.model, x)
        total = 0.0
        try:
            for _ in range(self.num_samples):
                _assign_parameters(self.model, self.moments.sample(rng))
                total = total + softmax(_logits(self.model, x))
        finally:
            _assign_parameters(self.model, self.moments.mean)
        return total / self.num_samples


# --- training ----------------------------------------------------------------------------------

def _check_dataset(dataset):
    for name in ("x_train", "y_train", "x_val", "y_val", "num_classes"):
        if getattr(dataset, name, None) is None:
            raise bad_type("dataset", "a classification Dataset with a validation split "
                                      "(data.mnist, data.digits(split=...), data.synthetic_images)", dataset)
    return dataset


def _network(spec: _Spec, recipe: Recipe, sizes, rng) -> MLP:
    # a factor cannot have more columns than its layer has parameters
    smallest = min(n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    return MLP(sizes, rng, parametrization=recipe.parametrization, variational=spec.variational,
               covariance=spec.covariance, rank=min(recipe.rank, smallest), dtype=np.dtype(recipe.dtype))


def _state(spec: _Spec, recipe: Recipe, model: MLP, num_train: int):
    return train_state(model, recipe.lr, recipe.momentum, loss="softmax_ce", expectation=spec.expectation,
                       kl_weight=1.0 / num_train if spec.kl else 0.0)


def _seeds(seed: int):
    """Generators of a method's run: initialization, training, post-hoc (three per member)."""
    return np.random.SeedSequence([as_int("seed", seed, minimum=0), 11]).spawn(3)


#: How many times :func:`fit_method` halves the step of a run that diverged before it gives up.
MAX_HALVINGS = 4


def fit_method(method: str, dataset, recipe: Recipe, seed: int) -> FittedMethod:
    """Train ``method`` on ``dataset.x_train`` (post-hoc fits on the validation split).

    The same ``seed`` gives the same network for map, temperature, laplace and swag (same
    initialization and batch order); ensemble members use seeds spawned from it. A run whose
    objective diverges is started again from the same initialization with half the base step,
    at most :data:`MAX_HALVINGS` times (the same rule for every method; the step used is in
    ``details`` as ``("lr", step)``).

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    dataset : Dataset
        A classification data set with a validation split.
    recipe : Recipe
    seed : int
        ``>= 0``.

    Returns
    -------
    FittedMethod
        The trained predictor, its timings and what the post-hoc fit chose.

    Raises
    ------
    ValueError, TypeError
        For an unknown method, a data set without a validation split, a bad seed.
    TrainingDiverged
        When the objective still becomes NaN/inf at ``lr / 2**MAX_HALVINGS``.
    """
    spec = _SPECS[as_choice("method", method, METHODS)]
    _check_dataset(dataset)
    if not isinstance(recipe, Recipe):
        raise bad_type("recipe", "a Recipe", recipe)
    seed = as_int("seed", seed, minimum=0)
    for halvings in range(MAX_HALVINGS + 1):
        try:
            return _fit(method, spec, dataset, replace(recipe, lr=recipe.lr / 2 ** halvings), seed)
        except TrainingDiverged:
            if halvings == MAX_HALVINGS:
                raise
    raise AssertionError("unreachable")


def _fit(method, spec, dataset, recipe, seed) -> FittedMethod:
    sizes = recipe.sizes(dataset.x_train.shape[1], dataset.num_classes)
    seq_init, seq_train, seq_post = _seeds(seed)
    n = dataset.x_train.shape[0]
    members = recipe.ensemble_size if spec.ensemble else 1
    inits, trains = seq_init.spawn(members), seq_train.spawn(members)
    models, seconds, posthoc, details = [], 0.0, 0.0, [("lr", recipe.lr)]
    collector = None
    for init, train in zip(inits, trains):
        model = _network(spec, recipe, sizes, np.random.default_rng(init))
        state = _state(spec, recipe, model, n)
        rng = np.random.default_rng(train)
        if spec.posthoc == "swag":
            collector = SWAGCollector(model.num_parameters(), recipe.swag_rank)
            first = recipe.epochs - recipe.swag_epochs()
            # epoch by epoch through the one trainer loop: the same steps as one call of fit
            for epoch in range(recipe.epochs):
                seconds += fit(model, state, dataset.x_train, dataset.y_train, 1, recipe.batch_size, rng,
                               quiet=True).seconds
                if epoch >= first:
                    start = time.perf_counter()
                    collector.add(_flat_parameters(model))
                    posthoc += time.perf_counter() - start
        else:
            seconds += fit(model, state, dataset.x_train, dataset.y_train, recipe.epochs, recipe.batch_size,
                           rng, quiet=True).seconds
        models.append(model)
    model = models[0]
    start = time.perf_counter()
    if spec.posthoc == "temperature":
        t = fit_temperature(_logits(model, dataset.x_val), dataset.y_val)
        predictor = TemperaturePredictor(model, t)
        details.append(("temperature", t))
    elif spec.posthoc == "laplace":
        predictor, precision = _fit_laplace(model, dataset, recipe, np.random.default_rng(seq_post))
        details.append(("prior_precision", precision))
    elif spec.posthoc == "swag":
        moments = collector.moments()
        predictor = SWAGPredictor(model, moments, recipe.num_samples)
        details.extend((("snapshots", float(moments.count)), ("swag_rank", float(moments.deviations.shape[1]))))
    elif spec.ensemble:
        predictor = EnsemblePredictor(NetworkPredictor(m, recipe.num_samples) for m in models)
    else:
        predictor = NetworkPredictor(model, recipe.num_samples)
    posthoc += time.perf_counter() - start
    return FittedMethod(method, predictor, seconds, recipe.epochs, posthoc,
                        sum(m.num_parameters() for m in models), variational_share(model), tuple(details))


def _fit_laplace(model, dataset, recipe, rng):
    """The Laplace predictor whose prior precision gives the lowest validation NLL."""
    from .metrics import nll

    h = np.asarray(model.forward(asarray(dataset.x_train, model.xp, model.dtype)).activations[-2], np.float64)
    probs = softmax(_logits(model, dataset.x_train))
    hessian = last_layer_hessian(h, probs)
    best = None
    state = rng.bit_generator.state
    for precision in LAPLACE_PRIOR_PRECISIONS:
        predictor = LaplacePredictor(model, hessian, precision, recipe.num_samples)
        rng.bit_generator.state = state  # the same draws for every λ: differences are λ's alone
        value = nll(predictor.probabilities(dataset.x_val, rng), dataset.y_val)
        if best is None or value < best[0]:
            best = (value, precision, predictor)
    return best[2], best[1]


# --- memory --------------------------------------------------------------------------------------

def training_peak_bytes(method: str, dataset, recipe: Recipe, seed: int = 0, steps: int = 2) -> int:
    """Peak bytes traced by :mod:`tracemalloc` while the method's training state is built and
    ``steps`` training steps are taken on one mini-batch (NumPy's allocations are traced).

    What is counted: the networks' tensors, the optimizer's momentum buffers, the step's
    temporaries (activations, gradients, closed-form moments) and what the method keeps while
    it trains — every member of an ensemble, SWAG's moment buffers. Not counted: the data set
    (allocated before tracing starts; the mini-batch is copied inside). The post-hoc fits
    (temperature, Laplace) come after training and are not part of a training step.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    dataset : Dataset
    recipe : Recipe
    seed : int, default 0
    steps : int, default 2
        The first step allocates the gradients; the second shows the steady state.

    Returns
    -------
    int
        Peak traced bytes above those allocated before the state was built.

    Raises
    ------
    ValueError, TypeError
        For a bad argument.
    """
    spec = _SPECS[as_choice("method", method, METHODS)]
    _check_dataset(dataset)
    steps = as_int("steps", steps)
    sizes = recipe.sizes(dataset.x_train.shape[1], dataset.num_classes)
    rows = min(recipe.batch_size, dataset.x_train.shape[0])
    x, y = dataset.x_train[:rows], dataset.y_train[:rows]
    rng = np.random.default_rng(seed)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        kept = [_network(spec, recipe, sizes, rng) for _ in range(recipe.ensemble_size if spec.ensemble else 1)]
        model = kept[0]
        state = _state(spec, recipe, model, dataset.x_train.shape[0])
        collector = SWAGCollector(model.num_parameters(), recipe.swag_rank) if spec.posthoc == "swag" else None
        xb = asarray(x, model.xp, model.dtype)
        yb = asarray(y, model.xp)
        for _ in range(steps):
            train_step(model, state, xb, yb, rng)
        if collector is not None:
            for _ in range(recipe.swag_rank):
                collector.add(_flat_parameters(model))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return int(peak)
