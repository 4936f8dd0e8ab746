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

from ._metric import Geometry, geometry, scaled_data
from ._recorder import (DIVERGENCE_FACTOR, OPTIMIZERS, DivergenceError, Recorder, RunOptions,  # noqa: F401
                        as_optimizer, check_run_options, check_step, descend)  # (re-exported: the constants)
from ._validation import as_matrix, as_momentum, as_positive_float, as_positive_int, check_problem, float_guard
from .closed_form import expected_loss
from .gaussian import Gaussian, MeanFieldGaussian, w2

__all__ = ["simulate", "stability_bound", "gd_ensemble", "DivergenceError", "SimulationResult", "Trace"]

FAMILIES = ("full", "lowrank", "meanfield")


@dataclass(frozen=True)
class Trace:
    """Quantities recorded every ``record_every`` steps (step 0 and the last step included).

    With a preconditioner ``P`` (step multipliers ``D``, or ``Σ₀``) ``P_null`` below is the
    oblique projector ``I − PXᵀ(XPXᵀ)⁺X``: the part of a move that preconditioned gradients
    cannot make.

    Parameters
    ----------
    steps : (k,) int array
        The recorded step counts.
    expected_loss : (k,) array
        ``ℓ̄(q_t)``.
    w2_to_prior : (k,) array
        ``W₂(q_t, p)``.
    w2_to_limit : (k,) array
        ``W₂(q_t, q∞)`` to the closed-form limit.
    null_mean_drift : (k,) array
        ``‖P_null(μ_t − μ₀)‖``, an invariant of Theorem 1 (zero up to rounding).
    null_factor_drift : (k,) array
        ``‖P_null(L_t − L₀)‖_F`` (NaN for the mean-field family).
    """

    steps: np.ndarray
    expected_loss: np.ndarray
    w2_to_prior: np.ndarray
    w2_to_limit: np.ndarray
    null_mean_drift: np.ndarray
    null_factor_drift: np.ndarray


@dataclass(frozen=True)
class SimulationResult:
    """Final distribution, trace, the closed-form limit it should reach and the stability bound.

    Parameters
    ----------
    final : Gaussian or MeanFieldGaussian
        The law after the last step.
    trace : Trace
        The recorded quantities.
    limit : Gaussian or MeanFieldGaussian
        The closed-form limit of the run (Theorem 1's, the ``D⁻¹``-metric one with step
        multipliers, the Σ₀-preconditioned one, or the mean-field point mass).
    stability_bound : float
        The full-batch bound of :func:`stability_bound` for this run.
    family : str
        The variational family.
    optimizer : str
        The optimizer.
    """

    final: Gaussian | MeanFieldGaussian
    trace: Trace
    limit: Gaussian | MeanFieldGaussian
    stability_bound: float
    family: str
    optimizer: str


@float_guard("X", "prior")
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
        The bound ``η*`` (``inf`` when ``X`` maps to zero, where the loss is flat, or when
        ``η*`` exceeds the float64 range).

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
    as_optimizer(optimizer)
    X = as_matrix("X", X)
    momentum = as_momentum(momentum)
    if preconditioned:
        if not isinstance(prior, Gaussian):
            raise TypeError("preconditioned=True needs prior, a linear_theory.Gaussian whose factor L₀ "
                            f"defines the preconditioner; got {type(prior).__name__}")
        if prior.dim != X.shape[1]:
            raise ValueError(f"prior has dimension {prior.dim} but X has {X.shape[1]} columns")
    A, _, scale, _ = scaled_data(X, step_multipliers=step_multipliers,
                                 factor_root=prior.factor if preconditioned else None)
    s_max = np.float64(np.linalg.norm(A, 2))
    if s_max == 0.0:
        return float("inf")
    # beyond the float range: inf or 0, the true limits
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        base = float(1.0 / (s_max * s_max) / scale)
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


# -- argument checks ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Settings:
    """The validated arguments of one :func:`simulate` run."""

    X: np.ndarray
    y: np.ndarray
    prior: Gaussian | MeanFieldGaussian
    family: str
    options: RunOptions
    lr_factor: float
    metric: Geometry
    bound: float

    @property
    def meanfield(self) -> bool:
        return self.family == "meanfield"


def _check_family(family: str, prior, d: int, preconditioned: bool):
    """The prior in the form ``family`` needs (a diagonal Gaussian becomes mean-field)."""
    if family == "meanfield":
        if preconditioned:
            raise ValueError("preconditioned=True is defined for the full and low-rank families only")
        return _meanfield_prior(prior, d)
    if not isinstance(prior, Gaussian):
        raise ValueError(f"family={family!r} needs a Gaussian prior with a factor, got a MeanFieldGaussian")
    r = prior.width
    if family == "full" and r != d:
        raise ValueError(f"family='full' needs a d×d prior factor (d = {d}), got width r = {r}; "
                         "use family='lowrank'")
    if family == "lowrank" and r >= d:
        raise ValueError(f"family='lowrank' needs a prior factor of width r < d = {d}, got r = {r}")
    return prior


def _check_arguments(X, y, prior, *, family, optimizer, lr, steps, lr_factor, batch_size, mc_samples, momentum,
                     seed, record_every, preconditioned, check_stability, step_multipliers) -> _Settings:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if not isinstance(prior, (Gaussian, MeanFieldGaussian)):
        raise TypeError(f"prior must be a Gaussian or MeanFieldGaussian, got {type(prior).__name__}")
    X, y = check_problem(X, y, prior.dim)
    n, d = X.shape
    # per step and draw: the draw (r ≤ d floats), the residuals (b ≤ n) and their products (d)
    options = check_run_options(n, optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size,
                                mc_samples=mc_samples, momentum=momentum, seed=seed, record_every=record_every,
                                draw_size=max(n, d))
    lr_factor = options.lr if lr_factor is None else as_positive_float("lr_factor", lr_factor)
    prior = _check_family(family, prior, d, preconditioned)
    metric = geometry(X, step_multipliers=step_multipliers, factor_root=prior.factor if preconditioned else None)
    bound = stability_bound(X, optimizer, options.momentum, prior if preconditioned else None, preconditioned,
                            step_multipliers=step_multipliers)
    if check_stability:
        of = "X" if step_multipliers is None else "X D^(1/2), D = step_multipliers"
        for name, value in (("lr", options.lr), ("lr_factor", lr_factor)):
            check_step(name, value, bound, f"stability bound {bound:.4g} of optimizer={optimizer!r} (1/s_max² of "
                                           f"{of} for GD, (1+m)/s_max² for momentum)")
    return _Settings(X=X, y=y, prior=prior, family=family, options=options, lr_factor=lr_factor, metric=metric,
                     bound=bound)


# -- per-family gradients ----------------------------------------------------------------------
def _factor_gradients(XB, yB, mu, L, scale, mc_samples, rng):
    """``(∇_μ, ∇_L)`` of ``scale·‖y_B − X_B w‖²`` under ``N(μ, LLᵀ)``: exact, or MC with ``M`` samples."""
    if mc_samples == 0:
        return -2.0 * scale * (XB.T @ (yB - XB @ mu)), 2.0 * scale * (XB.T @ (XB @ L))
    Z = rng.standard_normal((mc_samples, L.shape[1]))
    R = yB[:, None] - (XB @ mu)[:, None] - (XB @ L) @ Z.T  # (b, M) residuals of the samples
    return -2.0 * scale * (XB.T @ R.mean(axis=1)), -2.0 * scale * (XB.T @ (R @ Z / mc_samples))


def _meanfield_gradients(XB, yB, mu, s, scale, mc_samples, rng):
    """``(∇_μ, ∇_s)`` of ``scale·‖y_B − X_B w‖²`` under ``N(μ, diag(s²))``: exact, or MC."""
    if mc_samples == 0:
        return -2.0 * scale * (XB.T @ (yB - XB @ mu)), 2.0 * scale * s * np.sum(XB ** 2, axis=0)
    eps = rng.standard_normal((mc_samples, s.shape[0]))
    R = yB[:, None] - XB @ (mu[:, None] + (s * eps).T)  # (b, M)
    XtR = XB.T @ R  # (d, M)
    return -2.0 * scale * XtR.mean(axis=1), -2.0 * scale * (XtR * eps.T).mean(axis=1)


# -- the loop ------------------------------------------------------------------------------------
def _run(run: _Settings, limit) -> tuple[Gaussian | MeanFieldGaussian, Trace]:
    X, y, prior, metric, options = run.X, run.y, run.prior, run.metric, run.options
    law = MeanFieldGaussian if run.meanfield else Gaussian
    gradients = _meanfield_gradients if run.meanfield else _factor_gradients
    mu0 = prior.mean
    spread0 = prior.scale if run.meanfield else prior.factor
    recorder = Recorder(Trace, loss0=expected_loss(X, y, prior), lr=max(options.lr, run.lr_factor), bound=run.bound)

    def record(t, params):
        mu, spread = params
        q = law(mu, spread)
        loss = expected_loss(X, y, q)
        recorder.check_loss(t, loss)
        factor_drift = np.nan if run.meanfield else float(np.linalg.norm(metric.project_null(spread - spread0)))
        recorder.add(Trace(steps=t, expected_loss=loss, w2_to_prior=w2(q, prior), w2_to_limit=w2(q, limit),
                           null_mean_drift=float(np.linalg.norm(metric.project_null(mu - mu0))),
                           null_factor_drift=factor_drift))

    def step_gradients(params):
        XB, yB, scale = options.batch(X, y)
        g_mu, g_spread = gradients(XB, yB, *params, scale, options.mc_samples, options.rng)
        if not metric.identity:
            g_mu, g_spread = metric.precondition(g_mu), metric.precondition(g_spread)
        return g_mu, g_spread

    mu, spread = descend(options, (mu0.copy(), spread0.copy()), (options.lr, run.lr_factor), step_gradients,
                         recorder, record)
    return law(mu, spread), recorder.trace()


def _limit(run: _Settings):
    """The closed-form limit of the run: Theorem 1's (or the metric's), mean-field: a point mass."""
    X, y, prior, metric = run.X, run.y, run.prior, run.metric
    mean = prior.mean + metric.shift(y - X @ prior.mean)
    if run.meanfield:
        return MeanFieldGaussian(mean, np.where(np.sum(X ** 2, axis=0) > 0, 0.0, prior.scale))
    return Gaussian(mean, metric.project_null(prior.factor))


@float_guard("X", "y", "prior")
def simulate(X, y, prior, *, family: str = "full", optimizer: str = "gd", lr: float,
             steps: int, lr_factor: float | None = None, batch_size: int | None = None,
             mc_samples: int = 0, momentum: float = 0.9, seed=0, record_every: int | None = None,
             preconditioned: bool = False, check_stability: bool = True,
             step_multipliers=None) -> SimulationResult:
    r"""Run IBVI on the linear model from the prior and record the trace.

    Each step moves the mean and the factor (or the mean-field scale) against the gradient of
    the expected loss ``ℓ̄(μ, L) = ‖y − Xμ‖² + ‖XL‖²_F`` (or of a mini-batch and/or Monte Carlo
    estimate of it), optionally preconditioned and with heavy-ball momentum:

    .. math::

        v_μ \leftarrow m v_μ + P g_μ, \quad μ \leftarrow μ - η v_μ, \qquad
        v_L \leftarrow m v_L + P g_L, \quad L \leftarrow L - η_L v_L

    (``m = 0`` without momentum; ``P`` is ``I``, ``D`` for step multipliers or ``Σ₀`` when
    preconditioned).

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets of the expected loss, finite.
    prior : Gaussian or MeanFieldGaussian
        The initialization: a :class:`Gaussian` for the families ``"full"`` (factor ``d × d``) and
        ``"lowrank"`` (``d × r``, ``r < d``), a :class:`MeanFieldGaussian` (or a Gaussian with a
        diagonal ``d × d`` factor) for ``"meanfield"``.
    family : {"full", "lowrank", "meanfield"}
        The variational family.
    optimizer : {"gd", "sgd", "momentum"}
        ``"gd"`` full batch; ``"sgd"`` mini-batches of ``batch_size`` rows drawn without
        replacement each step (``n/b`` times their gradient, unbiased); ``"momentum"`` heavy ball
        as ``torch.optim.SGD`` (full batch unless ``batch_size`` is given).
    lr : float
        Step size of the mean.
    steps : int
        Number of steps, ``≥ 0``.
    lr_factor : float, optional
        Step size of the factor or scale (defaults to ``lr``).
    batch_size : int, optional
        Rows per step, ``1..n``.
    mc_samples : int
        ``0`` for exact expected-loss gradients, ``M ≥ 1`` for reparametrized MC gradients.
    momentum : float
        Heavy-ball coefficient ``m ∈ [0, 1)``.
    seed : int or numpy.random.Generator
        For the batches and MC draws.
    record_every : int, optional
        Trace spacing (default ``max(1, steps // 100)``); step 0 and the last step are recorded.
    preconditioned : bool
        Multiply both gradients by ``Σ₀ = L₀L₀ᵀ`` (claim C3; full/low-rank only).
    check_stability : bool
        Raise ``ValueError`` before running when a step exceeds the full-batch stability bound
        (see :func:`stability_bound`).
    step_multipliers : (d,) array, optional
        Positive per-coordinate step multipliers ``D``: both gradients are multiplied by ``D``;
        the limit is then the ``D⁻¹``-metric W₂ projection (docs/theory.md §4 (C12)). Not with
        ``preconditioned``.

    Returns
    -------
    SimulationResult
        The final law, the trace, the closed-form limit, the stability bound and the settings.

    Raises
    ------
    TypeError
        For arguments of the wrong type (a prior that is not a Gaussian, a non-integer count).
    ValueError
        Bad shapes or values, an unknown family/optimizer, a prior of the wrong family, a batch
        size outside ``1..n``, a step above the stability bound, or inputs that overflow float64.
    DivergenceError
        When the iterates become non-finite or the expected loss grows by ``1e8`` over its start.

    Notes
    -----
    Cost per step ``O(b·d·r·(1 + M))``; per record ``O(n·d·r + d·r²)``.
    """
    run = _check_arguments(X, y, prior, family=family, optimizer=optimizer, lr=lr, steps=steps,
                           lr_factor=lr_factor, batch_size=batch_size, mc_samples=mc_samples, momentum=momentum,
                           seed=seed, record_every=record_every, preconditioned=preconditioned,
                           check_stability=check_stability, step_multipliers=step_multipliers)
    limit = _limit(run)
    final, trace = _run(run, limit)
    return SimulationResult(final=final, trace=trace, limit=limit, stability_bound=run.bound,
                            family=family, optimizer=optimizer)


@float_guard("X", "y", "initial")
def gd_ensemble(X, y, initial, *, lr: float, steps: int) -> np.ndarray:
    r"""Plain GD on ``‖y − Xw‖²`` for an ensemble of point estimates, all at once.

    Every member takes ``steps`` steps

    .. math::

        w \leftarrow w + 2η X^T(y - Xw),

    so the members converge to ``P_null w₀ + X⁺y`` (Proposition S1, claim C2).

    Parameters
    ----------
    X : (n, d) array
        Inputs, finite.
    y : (n,) array
        Targets every member fits, finite.
    initial : (K, d) array
        The members' initial weights (e.g. ``prior.sample(K, rng)``).
    lr : float
        Step size, below the stability bound ``1/s_max²``.
    steps : int
        Number of steps, ``≥ 0``.

    Returns
    -------
    (K, d) array
        The members after ``steps`` steps.

    Raises
    ------
    TypeError
        For non-numeric arrays or a non-integer ``steps``.
    ValueError
        For mismatched shapes, non-finite input, a step at or above ``1/s_max²``, or overflow.

    Notes
    -----
    Cost ``O(steps·K·n·d)``.
    """
    X, y = check_problem(X, y)
    W = as_matrix("initial", initial).copy()
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"initial must be a (K, d) array with d = {X.shape[1]}, got shape {W.shape}")
    lr = as_positive_float("lr", lr)
    steps = as_positive_int("steps", steps, allow_zero=True)
    bound = stability_bound(X)
    if lr >= bound:
        raise ValueError(f"lr={lr:.4g} is at or above the stability bound {bound:.4g} (1/s_max² of X)")
    for _ in range(steps):
        W += 2.0 * lr * (y[None, :] - W @ X.T) @ X
    return W
