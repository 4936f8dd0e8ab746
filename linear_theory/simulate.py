r"""Simulators of IBVI on the linear model: GD, mini-batch SGD, heavy-ball momentum and Monte
Carlo gradients, for the full, low-rank and mean-field Gaussian families.

Every run starts at the prior (the initialization) and minimizes the expected loss only,
``ℓ̄(μ, L) = ‖y − Xμ‖² + ‖XL‖²_F`` (no KL term, no ½), with gradients

.. math::

    ∇_μ ℓ̄ = -2X^T(y - Xμ), \qquad ∇_L ℓ̄ = 2X^TXL ;

a mini-batch ``B`` of size ``b`` uses ``(n/b)`` times the batch gradient (unbiased), Monte Carlo
with ``M`` samples ``w = μ + Lz`` uses ``−2X_Bᵀr`` and ``−2X_Bᵀr zᵀ`` averaged over the samples.
Momentum is the heavy-ball form of ``torch.optim.SGD``: ``v ← m v + g``, ``θ ← θ − η v``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._metric import geometry, scaled_data
from ._validation import (as_generator, as_matrix, as_positive_float, as_positive_int, check_problem)
from .gaussian import Gaussian, MeanFieldGaussian, w2

__all__ = ["simulate", "stability_bound", "gd_ensemble", "DivergenceError", "SimulationResult", "Trace"]

FAMILIES = ("full", "lowrank", "meanfield")
OPTIMIZERS = ("gd", "sgd", "momentum")
#: A run is declared divergent when the expected loss exceeds this multiple of its start value.
DIVERGENCE_FACTOR = 1e8


class DivergenceError(RuntimeError):
    """The iterates blew up; carries the step, the step size and the stability bound."""

    def __init__(self, step: int, lr: float, bound: float, detail: str):
        self.step, self.lr, self.bound = step, lr, bound
        super().__init__(f"iterates diverged at step {step} ({detail}); lr={lr:.4g} while the "
                         f"stability bound of this problem is {bound:.4g}")


@dataclass(frozen=True)
class Trace:
    """Quantities recorded every ``record_every`` steps (step 0 and the last step included).

    ``null_mean_drift`` is ``‖P_null(μ_t − μ₀)‖`` and ``null_factor_drift`` ``‖P_null(L_t − L₀)‖_F``
    (the invariants of Theorem 1; NaN for the mean-field family's factor). With a preconditioner
    ``P`` (step multipliers ``D``, or ``Σ₀``) ``P_null`` is the oblique projector
    ``I − PXᵀ(XPXᵀ)⁺X``: the part of a move that preconditioned gradients cannot make.
    """

    steps: np.ndarray
    expected_loss: np.ndarray
    w2_to_prior: np.ndarray
    w2_to_limit: np.ndarray
    null_mean_drift: np.ndarray
    null_factor_drift: np.ndarray


@dataclass(frozen=True)
class SimulationResult:
    """Final distribution, trace, the closed-form limit it should reach and the stability bound."""

    final: Gaussian | MeanFieldGaussian
    trace: Trace
    limit: Gaussian | MeanFieldGaussian
    stability_bound: float
    family: str
    optimizer: str


def stability_bound(X, optimizer: str = "gd", momentum: float = 0.9, prior: Gaussian | None = None,
                    preconditioned: bool = False, *, step_multipliers=None) -> float:
    r"""Largest stable step of full-batch (heavy-ball) GD on ``ℓ̄``.

    GD contracts each row-space direction by ``1 − 2ηs_i²``: stable iff ``η < 1/s_max²``.
    Heavy ball (``v ← mv + g``, ``θ ← θ − ηv``) is stable iff ``η < (1 + m)/s_max²``. A
    preconditioner ``P`` replaces ``s_max`` by that of ``XP^{½}``: of ``XD^{½}`` for step
    multipliers ``D`` (steps ``ηD∇``), of ``XL₀`` for ``Σ₀ = L₀L₀ᵀ`` (``preconditioned=True``).
    Mini-batch and MC noise only lower these bounds.

    .. math::

        η^* = \frac{1}{s_{max}(XP^{1/2})^2} \ (\text{GD}), \qquad
        η^* = \frac{1 + m}{s_{max}(XP^{1/2})^2} \ (\text{heavy ball}).

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    optimizer : {"gd", "sgd", "momentum"}
        ``"sgd"`` has the bound of ``"gd"`` (its full-batch limit).
    momentum : float
        Heavy-ball coefficient ``m ∈ [0, 1)``, used when ``optimizer="momentum"``.
    prior : Gaussian, optional
        Needed when ``preconditioned=True``: its factor ``L₀`` is the preconditioner's root.
    preconditioned : bool
        Precondition by the prior's covariance ``Σ₀`` (claim C3).
    step_multipliers : (d,) array, optional
        Per-coordinate step multipliers ``D``, positive and finite (docs/theory.md §4 (C12)).

    Returns
    -------
    float
        The bound ``η*`` (``inf`` when ``X`` maps to zero: the loss is flat).

    Raises
    ------
    TypeError
        When ``preconditioned`` lacks a Gaussian prior.
    ValueError
        For an unknown ``optimizer``, a non-finite or non-2-D ``X``, a ``momentum`` outside
        ``[0, 1)``, non-positive ``step_multipliers`` of the wrong length, or
        ``step_multipliers`` together with ``preconditioned=True``.

    Notes
    -----
    Cost: one largest singular value, ``O(n·d·min(n, d))`` (plus ``O(n·d·r)`` for ``XL₀``).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    X = as_matrix("X", X)
    momentum = as_positive_float("momentum", momentum, allow_zero=True)
    if momentum >= 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if preconditioned:
        if not isinstance(prior, Gaussian):
            raise TypeError("preconditioned=True needs prior, a linear_theory.Gaussian whose factor L₀ "
                            f"defines the preconditioner; got {type(prior).__name__}")
        if prior.dim != X.shape[1]:
            raise ValueError(f"prior has dimension {prior.dim} but X has {X.shape[1]} columns")
    A, _, scale, _ = scaled_data(X, step_multipliers=step_multipliers,
                                 factor_root=prior.factor if preconditioned else None)
    s_max = float(np.linalg.norm(A, 2))
    if s_max == 0.0:
        return float("inf")
    with np.errstate(over="ignore", under="ignore"):
        base = 1.0 / s_max ** 2 / scale
    return (1.0 + momentum) * base if optimizer == "momentum" else base


def _meanfield_prior(prior, d):
    if isinstance(prior, MeanFieldGaussian):
        return prior
    if isinstance(prior, Gaussian) and prior.factor.shape == (d, d):
        diag = np.diag(prior.factor)
        if np.array_equal(prior.factor, np.diag(diag)):
            return MeanFieldGaussian(prior.mean, diag)
    raise ValueError("family='meanfield' needs a MeanFieldGaussian prior (or a Gaussian with a "
                     "diagonal d×d factor)")


def simulate(X, y, prior, *, family: str = "full", optimizer: str = "gd", lr: float,
             steps: int, lr_factor: float | None = None, batch_size: int | None = None,
             mc_samples: int = 0, momentum: float = 0.9, seed=0, record_every: int | None = None,
             preconditioned: bool = False, check_stability: bool = True,
             step_multipliers=None) -> SimulationResult:
    """Run IBVI on the linear model from the prior and record the trace.

    Parameters
    ----------
    X, y : (n, d) data and (n,) targets.
    prior : :class:`Gaussian` (families ``"full"``: factor ``d × d``; ``"lowrank"``: ``d × r``,
        ``r < d``) or :class:`MeanFieldGaussian` (family ``"meanfield"``).
    optimizer : ``"gd"`` (full batch), ``"sgd"`` (mini-batches of ``batch_size`` rows drawn
        without replacement each step) or ``"momentum"`` (heavy ball; full batch unless
        ``batch_size`` is given).
    lr, lr_factor : step sizes of the mean and of the factor/scale (``lr_factor`` defaults to ``lr``).
    mc_samples : 0 for exact expected-loss gradients, ``M ≥ 1`` for reparametrized MC gradients.
    seed : int or ``numpy.random.Generator`` for batches and MC draws.
    record_every : trace spacing (default ``max(1, steps // 100)``).
    preconditioned : multiply both gradients by ``Σ₀ = L₀L₀ᵀ`` (claim C3; full/low-rank only).
    check_stability : raise ``ValueError`` before running when a step exceeds the full-batch
        stability bound (see :func:`stability_bound`).
    step_multipliers : (d,) positive per-coordinate step multipliers ``D``: both gradients are
        multiplied by ``D`` (``μ ← μ − ηD∇_μ``, ``L ← L − η_L D∇_L``); the limit is then the
        ``D⁻¹``-metric W₂ projection (docs/theory.md §4 (C12)). Not with ``preconditioned``.

    Cost per step ``O(b·d·r·(1 + M))``; per record ``O(n·d·r + d·r²)``.

    Raises
    ------
    ValueError
        Bad shapes or values, an unknown family/optimizer, a prior of the wrong family, a batch
        size outside ``1..n``, or a step above the stability bound.
    DivergenceError
        When the iterates become non-finite or the expected loss grows by ``1e8`` over its start.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not isinstance(prior, (Gaussian, MeanFieldGaussian)):
        raise TypeError(f"prior must be a Gaussian or MeanFieldGaussian, got {type(prior).__name__}")
    X, y = check_problem(X, y, prior.dim)
    n, d = X.shape
    lr = as_positive_float("lr", lr)
    lr_factor = lr if lr_factor is None else as_positive_float("lr_factor", lr_factor)
    steps = as_positive_int("steps", steps, allow_zero=True)
    mc_samples = as_positive_int("mc_samples", mc_samples, allow_zero=True)
    momentum = as_positive_float("momentum", momentum, allow_zero=True)
    if momentum >= 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    record_every = max(1, steps // 100) if record_every is None else as_positive_int("record_every", record_every)
    if optimizer == "sgd" and batch_size is None:
        raise ValueError("optimizer='sgd' needs batch_size (rows per step)")
    if optimizer == "gd" and batch_size is not None:
        raise ValueError("optimizer='gd' is full batch; use optimizer='sgd' with batch_size")
    if batch_size is not None:
        batch_size = as_positive_int("batch_size", batch_size)
        if batch_size > n:
            raise ValueError(f"batch_size must be at most n = {n}, got {batch_size}")
    rng = as_generator(seed)

    meanfield = family == "meanfield"
    if meanfield:
        if preconditioned:
            raise ValueError("preconditioned=True is defined for the full and low-rank families only")
        prior = _meanfield_prior(prior, d)
    else:
        if not isinstance(prior, Gaussian):
            raise ValueError(f"family={family!r} needs a Gaussian prior with a factor, got a MeanFieldGaussian")
        r = prior.width
        if family == "full" and r != d:
            raise ValueError(f"family='full' needs a d×d prior factor (d = {d}), got width r = {r}; "
                             "use family='lowrank'")
        if family == "lowrank" and r >= d:
            raise ValueError(f"family='lowrank' needs a prior factor of width r < d = {d}, got r = {r}")

    metric = geometry(X, step_multipliers=step_multipliers, factor_root=prior.factor if preconditioned else None)
    bound = stability_bound(X, optimizer, momentum, prior if preconditioned else None, preconditioned,
                            step_multipliers=step_multipliers)
    if check_stability:
        for name, value in (("lr", lr), ("lr_factor", lr_factor)):
            if value >= bound:
                raise ValueError(f"{name}={value:.4g} is at or above the stability bound {bound:.4g} of "
                                 f"optimizer={optimizer!r} on this X (1/s_max² for GD, (1+m)/s_max² for "
                                 "momentum); pass check_stability=False to run it anyway")

    mu0 = prior.mean
    limit_mean = mu0 + metric.shift(y - X @ mu0)
    if meanfield:
        col_sq = np.sum(X ** 2, axis=0)
        scale0 = prior.scale
        limit = MeanFieldGaussian(limit_mean, np.where(col_sq > 0, 0.0, scale0))
        spread = scale0.copy()
    else:
        L0 = prior.factor
        limit = Gaussian(limit_mean, metric.project_null(L0))
        spread = L0.copy()
    mu = mu0.copy()
    vel_mu = np.zeros_like(mu)
    vel_spread = np.zeros_like(spread)

    def current():
        return MeanFieldGaussian(mu, spread) if meanfield else Gaussian(mu, spread)

    def loss_now():
        res = y - X @ mu
        extra = float(col_sq @ spread ** 2) if meanfield else float(np.sum((X @ spread) ** 2))
        return float(res @ res) + extra

    records = {k: [] for k in ("steps", "loss", "w2p", "w2l", "dmu", "dL")}
    loss0 = loss_now()
    loss_ceiling = DIVERGENCE_FACTOR * max(loss0, np.finfo(float).tiny)

    def record(t):
        q = current()
        loss = loss_now()
        if not np.isfinite(loss) or loss > loss_ceiling:
            raise DivergenceError(t, max(lr, lr_factor), bound,
                                  f"expected loss {loss:.3g} > {DIVERGENCE_FACTOR:.0e} × start {loss0:.3g}")
        records["steps"].append(t)
        records["loss"].append(loss)
        records["w2p"].append(w2(q, prior))
        records["w2l"].append(w2(q, limit))
        records["dmu"].append(float(np.linalg.norm(metric.project_null(mu - mu0))))
        records["dL"].append(np.nan if meanfield else float(np.linalg.norm(metric.project_null(spread - L0))))

    full_batch = batch_size is None or batch_size == n
    record(0)
    # Overflow is how divergence shows up; it is detected below and raised as DivergenceError.
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            if full_batch:
                XB, yB, scale = X, y, 1.0
            else:
                rows = rng.choice(n, size=batch_size, replace=False)
                XB, yB, scale = X[rows], y[rows], n / batch_size
            if mc_samples == 0:
                g_mu = -2.0 * scale * (XB.T @ (yB - XB @ mu))
                if meanfield:
                    g_spread = 2.0 * scale * spread * np.sum(XB ** 2, axis=0)
                else:
                    g_spread = 2.0 * scale * (XB.T @ (XB @ spread))
            elif meanfield:
                eps = rng.standard_normal((mc_samples, d))
                R = yB[:, None] - XB @ (mu[:, None] + (spread * eps).T)  # (b, M)
                XtR = XB.T @ R  # (d, M)
                g_mu = -2.0 * scale * XtR.mean(axis=1)
                g_spread = -2.0 * scale * (XtR * eps.T).mean(axis=1)
            else:
                Z = rng.standard_normal((mc_samples, spread.shape[1]))
                R = yB[:, None] - (XB @ mu)[:, None] - (XB @ spread) @ Z.T  # (b, M)
                g_mu = -2.0 * scale * (XB.T @ R.mean(axis=1))
                g_spread = -2.0 * scale * (XB.T @ (R @ Z / mc_samples))
            if not metric.identity:
                g_mu = metric.precondition(g_mu)
                g_spread = metric.precondition(g_spread)
            if optimizer == "momentum":
                vel_mu = momentum * vel_mu + g_mu
                vel_spread = momentum * vel_spread + g_spread
                g_mu, g_spread = vel_mu, vel_spread
            mu = mu - lr * g_mu
            spread = spread - lr_factor * g_spread
            if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(spread))):
                raise DivergenceError(t, max(lr, lr_factor), bound, "non-finite parameters")
            if t % record_every == 0 or t == steps:
                record(t)

    trace = Trace(steps=np.asarray(records["steps"]), expected_loss=np.asarray(records["loss"]),
                  w2_to_prior=np.asarray(records["w2p"]), w2_to_limit=np.asarray(records["w2l"]),
                  null_mean_drift=np.asarray(records["dmu"]), null_factor_drift=np.asarray(records["dL"]))
    return SimulationResult(final=current(), trace=trace, limit=limit, stability_bound=bound,
                            family=family, optimizer=optimizer)


def gd_ensemble(X, y, initial, *, lr: float, steps: int) -> np.ndarray:
    """Plain GD on ``‖y − Xw‖²`` for an ensemble of point estimates, all at once.

    ``initial`` is ``(K, d)`` (e.g. ``prior.sample(K, rng)``); every member takes ``steps`` steps
    ``w ← w + 2ηXᵀ(y − Xw)`` and the ``(K, d)`` result is returned (Proposition S1: the members
    converge to ``P_null w₀ + X⁺y``). Cost ``O(steps·K·n·d)``.

    Raises ``ValueError`` for mismatched shapes or a step at or above ``1/s_max²``.
    """
    X, y = check_problem(X, y)
    W = np.array(initial, dtype=np.float64, copy=True)
    if W.ndim != 2 or W.shape[1] != X.shape[1] or not np.all(np.isfinite(W)):
        raise ValueError(f"initial must be a finite (K, d) array with d = {X.shape[1]}, got shape {W.shape}")
    lr = as_positive_float("lr", lr)
    steps = as_positive_int("steps", steps, allow_zero=True)
    bound = stability_bound(X)
    if lr >= bound:
        raise ValueError(f"lr={lr:.4g} is at or above the stability bound {bound:.4g} (1/s_max²)")
    for _ in range(steps):
        W += 2.0 * lr * (y[None, :] - W @ X.T) @ X
    return W
