r"""Problems, priors and stable steps for property tests of IBVI code on the linear model.

Two layers:

* plain builders, usable anywhere (no test dependency): :func:`random_prior` draws a prior of a
  chosen kind, :func:`random_step_multipliers` a positive step-multiplier vector and
  :func:`stable_step_bound` gives the largest step the theory guarantees stable for a problem
  and an optimizer;
* `Hypothesis <https://hypothesis.readthedocs.io>`_ strategies built on them, for a user's own
  property tests: :func:`regression_problems` (overparametrized ``X`` with a chosen rank,
  conditioning and scaling), :func:`priors` (isotropic, general, low-rank factors),
  :func:`problems_with_priors`, :func:`step_multipliers` and :func:`stable_steps`.

Hypothesis is a test-time dependency: it is imported when a strategy is built, so
``import linear_theory.testing`` works without it (and ``import linear_theory`` never loads
this module). A typical property test::

    from hypothesis import given
    from linear_theory import testing

    @given(testing.problems_with_priors(n=4, d=12))
    def test_my_trainer(case):
        problem, prior = case
        ...

Every random path takes an explicit seed: the strategies draw an integer seed and build the
arrays with ``numpy.random.default_rng(seed)``, so a failing example is reproduced exactly.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._recorder import as_optimizer, check_batch_size
from ._validation import as_generator, as_matrix, as_positive_float, as_positive_int, as_vector
from .gaussian import Gaussian
from .problems import RegressionProblem, random_regression
from .simulate import stability_bound
from .stability import predicted_mc_threshold

__all__ = ["PRIOR_KINDS", "random_prior", "random_step_multipliers", "stable_step_bound",
           "regression_problems", "priors", "problems_with_priors", "step_multipliers", "stable_steps"]

#: ``"isotropic"``: ``N(μ₀, σ²I)``; ``"general"``: a full random factor; ``"lowrank"``: ``d × r``, ``r < d``.
PRIOR_KINDS = ("isotropic", "general", "lowrank")
#: Largest seed the strategies draw (numpy accepts any non-negative integer; 2³²−1 keeps them short).
_MAX_SEED = 2 ** 32 - 1


def random_prior(d: int, kind: str = "general", *, scale: float = 1.0, width: int | None = None,
                 seed=0) -> Gaussian:
    r"""A random prior ``N(μ₀, L₀L₀ᵀ)`` in ``R^d`` of the given kind.

    .. math::

        μ_0 = σ z, \quad z \sim N(0, I_d); \qquad
        L_0 = \begin{cases} σ I_d & \text{isotropic} \\
                            σ G/\sqrt{d},\ G \in R^{d×d} & \text{general} \\
                            σ G/\sqrt{r},\ G \in R^{d×r},\ r < d & \text{lowrank} \end{cases}

    with ``G`` standard normal, so ``E[Σ₀] = σ²I`` for the general kind and ``σ²I`` restricted to
    a random ``r``-dimensional subspace in expectation for the low-rank kind.

    Parameters
    ----------
    d : int
        Dimension, at least 1 (at least 2 for ``kind="lowrank"``).
    kind : {"isotropic", "general", "lowrank"}
    scale : float
        ``σ``, positive: the prior's standard deviation per coordinate (and of the mean's draw).
    width : int, optional
        Columns ``r`` of a low-rank factor, ``1 ≤ r < d`` (default ``max(1, d // 4)``); only for
        ``kind="lowrank"``.
    seed : int or numpy.random.Generator

    Returns
    -------
    Gaussian
        Factor of shape ``(d, d)`` (isotropic, general) or ``(d, r)`` (lowrank). Cost ``O(d²)``.

    Raises
    ------
    ValueError
        For an unknown ``kind``, a non-positive ``d`` or ``scale``, a ``width`` outside
        ``1..d−1`` or one given for another kind.
    TypeError
        For non-integer ``d``/``width``, a non-numeric ``scale`` or a bad ``seed``.
    """
    d = as_positive_int("d", d)
    scale = as_positive_float("scale", scale)
    if kind not in PRIOR_KINDS:
        raise ValueError(f"kind must be one of {PRIOR_KINDS}, got {kind!r}")
    if width is not None and kind != "lowrank":
        raise ValueError(f"width is the column count of a low-rank factor; kind={kind!r} has a d×d factor")
    rng = as_generator(seed)
    mean = scale * rng.standard_normal(d)
    if kind == "isotropic":
        return Gaussian(mean, scale * np.eye(d))
    if kind == "general":
        return Gaussian(mean, scale * rng.standard_normal((d, d)) / np.sqrt(d))
    if d < 2:
        raise ValueError("kind='lowrank' needs d >= 2 (a factor with fewer than d columns)")
    width = max(1, d // 4) if width is None else as_positive_int("width", width)
    if width >= d:
        raise ValueError(f"width must be below d = {d} for kind='lowrank', got {width}")
    return Gaussian(mean, scale * rng.standard_normal((d, width)) / np.sqrt(width))


def random_step_multipliers(d: int, *, spread: float = 8.0, seed=0) -> np.ndarray:
    """Per-coordinate step multipliers ``D``, log-uniform on ``[1/spread, 1]``, as a ``(d,)`` array.

    Parameters
    ----------
    d : int
        Length, at least 1.
    spread : float
        Ratio of the largest to the smallest possible multiplier, at least 1 (``1`` gives all ones).
    seed : int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(d,)`` float64, entries in ``[1/spread, 1]``. Cost ``O(d)``.

    Raises
    ------
    ValueError
        For a non-positive ``d`` or a ``spread`` below 1.
    """
    d = as_positive_int("d", d)
    spread = as_positive_float("spread", spread)
    if spread < 1.0:
        raise ValueError(f"spread must be at least 1 (largest over smallest multiplier), got {spread}")
    return np.exp(-np.log(spread) * as_generator(seed).uniform(0.0, 1.0, d))


def stable_step_bound(X, optimizer: str = "gd", *, momentum: float = 0.9, batch_size: int | None = None,
                      mc_samples: int = 0, rank: int | None = None, step_multipliers=None) -> float:
    r"""Largest step size the theory guarantees (or, where marked, suggests) stable for IBVI on ``X``.

    With ``s̃_max`` the largest singular value of ``XD^{½}`` (``D`` the step multipliers, the
    identity by default; the loss is ``‖y − Xw‖²`` without ½):

    .. math::

        η^* = \frac{c}{\tilde s_{max}^2}\cdot\frac{b}{n}\cdot
              \begin{cases} 1 & \text{exact gradients} \\
                            (1 + (r + 1)/M)^{-1} & M \text{ Monte Carlo samples, factor width } r
              \end{cases}

    * ``b/n`` (a batch of ``b`` of the ``n`` rows, gradients scaled by ``n/b``) makes every SGD
      step non-expansive, since ``(n/b)X_BᵀX_B ≼ (n/b)XᵀX``;
    * the Monte Carlo term is the mean-square bound of the factor's step
      (:func:`linear_theory.predicted_mc_threshold`);
    * ``c = 1`` for GD and SGD; for heavy-ball momentum ``m``, ``c = 1 + m`` with full-batch
      exact gradients (the spectral bound) and ``c = 1 − m`` with mini-batches or MC samples, a
      heuristic: heavy ball sums the noise of about ``1/(1 − m)`` steps.

    Parameters
    ----------
    X : (n, d) array
    optimizer : {"gd", "sgd", "momentum"}
    momentum : float
        Heavy-ball coefficient ``m`` in ``[0, 1)``, used for ``optimizer="momentum"``.
    batch_size : int, optional
        Rows per step ``b`` (required for ``"sgd"``; optional for ``"momentum"``).
    mc_samples : int
        ``M``: 0 for exact gradients.
    rank : int, optional
        Width ``r`` of the factor, required when ``mc_samples > 0``.
    step_multipliers : (d,) array, optional
        Positive per-coordinate multipliers ``D`` (``μ ← μ − ηD∇_μ``).

    Returns
    -------
    float
        ``η*`` (``inf`` for ``X = 0``). Cost: one largest singular value, ``O(n·d·min(n, d))``.

    Raises
    ------
    ValueError
        For an unknown ``optimizer``, ``"sgd"`` without ``batch_size``, ``"gd"`` with one, a batch
        size outside ``1..n``, ``mc_samples > 0`` without ``rank``, and the errors of
        :func:`linear_theory.stability_bound`.
    """
    as_optimizer(optimizer)
    X = as_matrix("X", X)
    n = X.shape[0]
    batch_size = check_batch_size(optimizer, batch_size, n)
    fraction = 1.0 if batch_size is None else batch_size / n
    mc_samples = as_positive_int("mc_samples", mc_samples, allow_zero=True)
    if mc_samples and rank is None:
        raise ValueError("mc_samples > 0 needs rank, the width of the covariance factor")
    multipliers = {} if step_multipliers is None else {"step_multipliers": step_multipliers}
    momentum_bound = stability_bound(X, "momentum", momentum, **multipliers)  # validates momentum
    bound = stability_bound(X, "gd", **multipliers)
    if not np.isfinite(bound):
        return bound
    if mc_samples:
        bound = predicted_mc_threshold(1.0 / np.sqrt(bound), rank, mc_samples)
    if optimizer == "momentum":
        bound = momentum_bound if mc_samples == 0 and batch_size is None else (1.0 - momentum) * bound
    return float(fraction * bound)


# ---------------------------------------------------------------------------------------------
# Hypothesis strategies


def _hypothesis():
    try:
        from hypothesis import strategies
    except ImportError as exc:  # a test-time dependency: say which extra provides it
        raise ImportError("linear_theory.testing strategies need hypothesis "
                          "(pip install hypothesis, or the project's 'test' extra)") from exc
    return strategies


_KIND_NAMES = {numbers.Integral: "an integer", numbers.Real: "a real number", str: "a string"}


_REQUIRED = object()


def _strategy(st, name: str, value, kind, default=_REQUIRED):
    """``value`` as a strategy: strategies pass through, a plain value of ``kind`` becomes ``just``.

    ``value=None`` gives ``default`` where one is given (a strategy, or ``None`` for "derived").
    """
    if value is None and default is not _REQUIRED:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {_KIND_NAMES[kind]} or a hypothesis strategy, got {type(value).__name__}")
    return st.just(value)


def _log_uniform(st, low: float, high: float):
    """Floats spread evenly in ``log10`` between ``low`` and ``high`` (both positive)."""
    return st.floats(np.log10(low), np.log10(high)).map(lambda e: float(10.0 ** e))


def regression_problems(n=None, d=None, *, rank_deficit=0, condition_number=None, scale=None,
                        noise=0.0):
    r"""Strategy for overparametrized regression problems ``X = U diag(s) Vᵀ``, ``y = Xw + noise``.

    Each argument is a value or a hypothesis strategy. The rank is ``max(1, n − rank_deficit)``;
    the singular values are geometric from ``scale`` down to ``scale / condition_number``
    (:func:`linear_theory.random_regression`), with Haar-random ``U`` and ``V``.

    Parameters
    ----------
    n : int or strategy, default integers 2..8
        Rows.
    d : int or strategy, optional
        Columns, ``d > n`` (overparametrized); default ``n`` plus 1..16.
    rank_deficit : int or strategy, default 0
        How far the rank lies below ``n`` (0: full row rank; the rank is at least 1).
    condition_number : float or strategy, default log-uniform on ``[1, 1e3]``
    scale : float or strategy, default log-uniform on ``[1e-3, 1e3]``
        Largest singular value.
    noise : float or strategy, default 0
        Standard deviation of the noise added to ``y``.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`linear_theory.RegressionProblem`. Each example costs ``O((n + d)·n²)``.

    Raises
    ------
    TypeError
        When ``n``, ``d``, ``rank_deficit``, ``condition_number``, ``scale`` or ``noise`` is
        neither a value of the right type nor a strategy.
    ImportError
        Without hypothesis.

    Notes
    -----
    A drawn ``d ≤ n`` or a negative ``rank_deficit`` is an error of the strategies given, raised
    as ``ValueError`` while drawing.
    """
    st = _hypothesis()
    n_st = _strategy(st, "n", n, numbers.Integral, default=st.integers(2, 8))
    extra_st = st.integers(1, 16)
    d_st = _strategy(st, "d", d, numbers.Integral, default=None)
    deficit_st = _strategy(st, "rank_deficit", rank_deficit, numbers.Integral)
    cond_st = _strategy(st, "condition_number", condition_number, numbers.Real,
                        default=_log_uniform(st, 1.0, 1e3))
    scale_st = _strategy(st, "scale", scale, numbers.Real, default=_log_uniform(st, 1e-3, 1e3))
    noise_st = _strategy(st, "noise", noise, numbers.Real)

    @st.composite
    def draw_problem(draw) -> RegressionProblem:
        rows = draw(n_st)
        cols = rows + draw(extra_st) if d_st is None else draw(d_st)
        if cols <= rows:
            raise ValueError(f"regression_problems draws overparametrized problems: d must exceed n, got "
                             f"n = {rows}, d = {cols}")
        deficit = draw(deficit_st)
        if deficit < 0:
            raise ValueError(f"rank_deficit must be non-negative, got {deficit}")
        return random_regression(rows, cols, rank=max(1, rows - deficit), condition_number=draw(cond_st),
                                 scale=draw(scale_st), noise=draw(noise_st), seed=draw(st.integers(0, _MAX_SEED)))

    return draw_problem()


def priors(d, *, kind=None, scale=None, width=None):
    """Strategy for priors ``N(μ₀, L₀L₀ᵀ)`` in ``R^d`` (see :func:`random_prior`).

    Parameters
    ----------
    d : int or strategy
        Dimension.
    kind : str or strategy, default any of :data:`PRIOR_KINDS`
    scale : float or strategy, default log-uniform on ``[1e-2, 1e2]``
    width : int or strategy, optional
        Columns of a low-rank factor (default integers ``1..d−1``); ignored for other kinds. A
        low-rank kind drawn for ``d = 1`` gives the general kind (no factor is narrower than 1).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`linear_theory.Gaussian`; each example costs ``O(d²)``.

    Raises
    ------
    TypeError
        When ``d``, ``kind``, ``scale`` or ``width`` is neither a value of the right type nor a strategy.
    ImportError
        Without hypothesis.
    """
    st = _hypothesis()
    d_st = _strategy(st, "d", d, numbers.Integral)
    kind_st = _strategy(st, "kind", kind, str, default=st.sampled_from(PRIOR_KINDS))
    scale_st = _strategy(st, "scale", scale, numbers.Real, default=_log_uniform(st, 1e-2, 1e2))
    width_st = _strategy(st, "width", width, numbers.Integral, default=None)

    @st.composite
    def draw_prior(draw) -> Gaussian:
        dim, family = draw(d_st), draw(kind_st)
        columns = None
        if family == "lowrank":
            if dim < 2:
                family = "general"
            else:
                columns = draw(st.integers(1, dim - 1) if width_st is None else width_st)
        return random_prior(dim, family, scale=draw(scale_st), width=columns, seed=draw(st.integers(0, _MAX_SEED)))

    return draw_prior()


def problems_with_priors(n=None, d=None, *, rank_deficit=0, condition_number=None, scale=None,
                         prior_kind=None, prior_scale=None, prior_width=None):
    """Strategy for ``(problem, prior)`` pairs: a :func:`regression_problems` example and a prior of its ``d``.

    Parameters
    ----------
    n, d, rank_deficit, condition_number, scale
        As in :func:`regression_problems`.
    prior_kind, prior_scale, prior_width
        ``kind``, ``scale`` and ``width`` of :func:`priors`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of ``(RegressionProblem, Gaussian)`` tuples.

    Raises
    ------
    TypeError
        When an argument of :func:`regression_problems` or :func:`priors` is neither a value of
        the right type nor a strategy.
    ImportError
        Without hypothesis.
    """
    st = _hypothesis()
    problem_st = regression_problems(n, d, rank_deficit=rank_deficit, condition_number=condition_number,
                                     scale=scale)
    return problem_st.flatmap(lambda problem: st.tuples(
        st.just(problem), priors(problem.d, kind=prior_kind, scale=prior_scale, width=prior_width)))


def step_multipliers(d, *, spread=None):
    """Strategy for positive per-coordinate step multipliers ``D`` (see :func:`random_step_multipliers`).

    Parameters
    ----------
    d : int or strategy
        Length.
    spread : float or strategy, default log-uniform on ``[1, 100]``
        Largest over smallest possible multiplier.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of ``(d,)`` float64 arrays with entries in ``[1/spread, 1]``.

    Raises
    ------
    TypeError
        When ``d`` or ``spread`` is neither a value of the right type nor a strategy.
    ImportError
        Without hypothesis.
    """
    st = _hypothesis()
    d_st = _strategy(st, "d", d, numbers.Integral)
    spread_st = _strategy(st, "spread", spread, numbers.Real, default=_log_uniform(st, 1.0, 100.0))
    return st.builds(lambda dim, ratio, seed: random_step_multipliers(dim, spread=ratio, seed=seed),
                     d_st, spread_st, st.integers(0, _MAX_SEED))


def stable_steps(X, optimizer: str = "gd", *, fraction=(0.05, 0.9), **bound_options):
    """Strategy for step sizes ``η = f·η*`` with ``f`` uniform in ``fraction`` (see :func:`stable_step_bound`).

    Parameters
    ----------
    X : (n, d) array
    optimizer : {"gd", "sgd", "momentum"}
    fraction : (float, float)
        ``0 < low ≤ high < 1``: the range of ``η / η*``.
    **bound_options
        ``momentum``, ``batch_size``, ``mc_samples``, ``rank``, ``step_multipliers`` of
        :func:`stable_step_bound`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of floats, every one strictly below the bound. Cost of building: one bound.

    Raises
    ------
    ValueError
        For a ``fraction`` outside ``(0, 1)`` or not increasing, an ``X = 0`` (no finite bound to
        scale), and the errors of :func:`stable_step_bound`.
    ImportError
        Without hypothesis.
    """
    st = _hypothesis()
    low, high = (as_positive_float("fraction", f) for f in as_vector("fraction", fraction, size=2))
    if not low <= high < 1.0:
        raise ValueError(f"fraction must satisfy 0 < low <= high < 1, got ({low}, {high})")
    bound = stable_step_bound(X, optimizer, **bound_options)
    if not np.isfinite(bound):
        raise ValueError("X is all zeros: every step is stable and there is no bound to scale")
    return st.floats(low, high).map(lambda f: float(f * bound))
