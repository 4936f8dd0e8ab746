"""Fuzzing linear_theory's public API: every call succeeds or says which argument is wrong.

Each public callable is listed with a valid value for every argument and a strategy of bad or
extreme values for it. A case replaces one or two arguments by drawn values (finite extremes from
the subnormals to 1.8e308 and huge or tiny scalings, lists, wrong dtypes, empty arrays, wrong ranks
and sizes, NaN/inf, wrong types) and then requires one of:

- the call returns a finite result of the documented shape (a stability bound may be ``inf``, the
  documented value for a flat loss or a bound beyond the float range), with no warning;
- it raises ``ValueError``/``TypeError`` from linear_theory's own code whose message names one of
  the replaced arguments (word-bounded, so ``X`` does not match ``X_test``);
- a simulator raises :class:`DivergenceError` (a step above the bound with the check turned off).
"""
import re
import traceback
import warnings
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import linear_theory as lt

N, D = 4, 7
LIBRARY = Path(lt.__file__).parent
EXTREMES = (5e-324, 2.2250738585072014e-308, 1e-300, 1e-200, 1e-160, 1e-100, 1e100, 1e154, 1e160, 1e200,
            1e300, 1.7976931348623157e308)

_rng = np.random.default_rng(0)
X0 = lt.random_regression(N, D, condition_number=3.0, seed=1).X
Y0 = X0 @ _rng.standard_normal(D)
PRIOR = lt.Gaussian(_rng.standard_normal(D), _rng.standard_normal((D, D)) / 3)
LOWRANK = lt.Gaussian(PRIOR.mean, PRIOR.factor[:, :2])
MEANFIELD = lt.MeanFieldGaussian(PRIOR.mean, np.abs(_rng.standard_normal(D)) + 0.1)
_SEPARABLE = lt.separable_classification(6, D, margin=0.2, seed=2)
CX, CY = _SEPARABLE.X, _SEPARABLE.y
BOUND = lt.stability_bound(X0)
K = 3  # outputs of the multi-output (Kronecker) problems
Y0K = X0 @ _rng.standard_normal((D, K)) + 0.1 * _rng.standard_normal((N, K))
KPRIOR = lt.KroneckerGaussian(_rng.standard_normal((D, K)), _rng.standard_normal((D, 2)) / np.sqrt(D),
                              _rng.standard_normal((K, 2)))
KBOUND = lt.kronecker_step_bound(X0, KPRIOR)


# -- strategies of bad and extreme values -----------------------------------------------------------
def _finite(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=1.7e308, neginf=-1.7e308)


@st.composite
def extreme_arrays(draw, shape):
    """Finite float64 arrays of ``shape`` at the ends of the range, as arrays or nested lists."""
    seed = draw(st.integers(0, 2**32 - 1))
    base = np.random.default_rng(seed).standard_normal(shape)
    kind = draw(st.sampled_from(["scaled", "one entry", "constant", "spread", "hypothesis floats"]))
    with np.errstate(over="ignore", under="ignore"):  # the overflow is clipped to ±1.7e308 by _finite
        values = _extreme_values(draw, kind, base, seed, shape)
    return values.tolist() if draw(st.booleans()) and values.ndim <= 2 else values


def _extreme_values(draw, kind, base, seed, shape) -> np.ndarray:
    if kind == "scaled":
        values = _finite(base * draw(st.sampled_from(EXTREMES)))
    elif kind == "one entry":
        values = base.copy()
        values.flat[draw(st.integers(0, base.size - 1))] = draw(st.sampled_from(EXTREMES)) * draw(
            st.sampled_from([1.0, -1.0]))
    elif kind == "constant":
        values = np.full(shape, draw(st.sampled_from(EXTREMES)))
    elif kind == "spread":
        exponents = np.random.default_rng(seed + 1).uniform(-300, 300, shape)
        values = _finite(base * 10.0 ** exponents)
    else:
        values = np.array(draw(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64),
                                        min_size=base.size, max_size=base.size))).reshape(shape)
    return values


def malformed_arrays(shape):
    """Wrong dtypes, ranks, sizes, empty arrays, non-finite entries, ragged lists, non-arrays."""
    size = int(np.prod(shape))
    wrong_rank = (shape[:-1] if len(shape) > 1 else (2, shape[0]))
    return st.one_of(
        st.sampled_from([np.nan, np.inf, -np.inf]).map(lambda v: np.full(shape, v)),
        st.just(np.ones(shape, dtype=bool)), st.just(np.ones(shape, dtype=complex)),
        st.just(np.full(shape, "a")), st.just(np.ones(shape, dtype=object)),
        st.just(np.ones(shape, dtype=np.float32)), st.just(np.arange(size).reshape(shape)),
        st.just(np.zeros((0,) * len(shape))), st.just(np.zeros(wrong_rank)), st.just(np.zeros(shape + (1,))),
        st.just(np.ones(tuple(k + 1 for k in shape))), st.just([[1.0, 2.0], [3.0]]),
        st.none(), st.text(max_size=3), st.booleans(), st.floats(), st.just(object()),
    )


def bad_arrays(shape):
    return st.one_of(extreme_arrays(shape), extreme_arrays(shape), malformed_arrays(shape))


def bad_scalars():
    return st.one_of(
        st.floats(), st.sampled_from(EXTREMES), st.sampled_from(EXTREMES).map(lambda v: -v),
        st.integers(-5, 10), st.integers(10**9, 10**30), st.none(), st.booleans(), st.text(max_size=3),
        st.just([1.0]), st.just(np.float32(1e-30)), st.just(np.int64(3)), st.just(np.array([2.0])),
        st.just(2.5), st.just(0.0), st.just(-0.0),
    )


def bad_counts():
    return st.one_of(st.integers(-3, 6), st.sampled_from([2.0, 2.5, None, "3", True, 10**30, np.int64(4)]))


@st.composite
def extreme_gaussians(draw, d=D, kinds=("gaussian", "meanfield")):
    """Valid Gaussians with extreme means, factors or scales (or a non-Gaussian, sometimes)."""
    kind = draw(st.sampled_from(kinds + ("other",)))
    if kind == "other":
        return draw(st.one_of(malformed_arrays((d, d)), st.just(PRIOR.factor)))
    mean = _finite(draw(extreme_arrays((d,))))
    if kind == "meanfield":
        return lt.MeanFieldGaussian(mean, _finite(draw(extreme_arrays((d,)))))
    width = draw(st.sampled_from([1, 2, d, d + 2]))
    return lt.Gaussian(mean, _finite(draw(extreme_arrays((d, width)))))


@st.composite
def extreme_kroneckers(draw, d=D, k=K):
    """Valid Kronecker Gaussians with extreme means or factors, both factors scaled alike, zero output
    factors, or a non-Kronecker."""
    kind = draw(st.sampled_from(["kronecker", "kronecker", "scaled factors", "zero output", "other"]))
    if kind == "other":
        return draw(st.one_of(malformed_arrays((d, k)), st.just(PRIOR), st.just(KPRIOR.mean)))
    if kind == "scaled factors":  # the same shape of prior at any scale: (A, B) → (tA, tB)
        scale = draw(st.sampled_from(EXTREMES))
        with np.errstate(over="ignore", under="ignore"):  # the overflow is clipped to ±1.7e308 by _finite
            return KPRIOR.replace(input_factor=_finite(KPRIOR.input_factor * scale),
                                  output_factor=_finite(KPRIOR.output_factor * scale))
    parts = {"mean": (d, k), "input_factor": (d, draw(st.sampled_from([1, 2, d, d + 2]))),
             "output_factor": (k, draw(st.sampled_from([1, 2, k + 1])))}
    extreme = draw(st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=3, unique=True))
    values = {name: _finite(draw(extreme_arrays(shape))) if name in extreme
              else np.random.default_rng(draw(st.integers(0, 99))).standard_normal(shape)
              for name, shape in parts.items()}
    if kind == "zero output":
        values["output_factor"] = np.zeros(parts["output_factor"])
    return lt.KroneckerGaussian(values["mean"], values["input_factor"], values["output_factor"])


def bad_bases(X=X0):
    """Row-space bases of another matrix (other rows, columns or values) and things that are no basis."""
    other = lt.random_regression(X.shape[0], X.shape[1], seed=5).X
    return st.one_of(st.sampled_from([lt.row_space_basis(other), lt.row_space_basis(X[:-1]),
                                      lt.row_space_basis(np.hstack([X, X[:, :1]])), lt.row_space_basis(X.T)]),
                     st.just(lt.row_space_solver(X)), malformed_arrays((D, N)))


def options(*values):
    return st.sampled_from(values)


# -- the public surface -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    default: Any
    bad: st.SearchStrategy


@dataclass(frozen=True)
class Spec:
    call: Callable[[dict], Any]
    slots: dict
    check: Callable[[Any], None]
    aliases: tuple = ()  # words a message may use for a replaced argument: ((arg, (words...)), ...)
    allow_inf: bool = False  # a documented inf (a stability bound of a flat loss) is a valid result


#: Trace fields documented as NaN in some cases: the cosine while the row-space mean is zero, the
#: factor's drift of the mean-field family (which has no factor).
DOCUMENTED_NAN = {"direction_cosine", "null_factor_drift"}
#: Fields documented as possibly infinite: the flow time of a Kronecker limit that keeps variance
#: (the flow never stops), the step bound of a flat loss.
DOCUMENTED_INF = {"flow_time", "stability_bound"}


def _is_finite(value) -> bool:
    if isinstance(value, (bool, int, str, np.integer, type(None))):
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value))
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.all(np.isfinite(value)))
    if isinstance(value, (tuple, list)):
        return all(_is_finite(v) for v in value)
    if is_dataclass(value):
        return all(not np.any(np.isnan(getattr(value, f.name))) if f.name in DOCUMENTED_INF
                   else not np.any(np.isinf(getattr(value, f.name))) if f.name in DOCUMENTED_NAN
                   else _is_finite(getattr(value, f.name)) for f in fields(value))
    return True


def _shape(value) -> tuple:
    return np.shape(np.asarray(value, dtype=float))


def like_prior(result, args):
    """A Gaussian of the prior's dimension and width (the closed forms keep the factor's shape)."""
    assert isinstance(result, lt.Gaussian)
    assert (result.dim, result.width) == (args["prior"].dim, args["prior"].width)


def gaussian_like(mean="mean", factor="factor", meanfield=False):
    def check(result, args):
        assert isinstance(result, lt.MeanFieldGaussian if meanfield else lt.Gaussian)
        assert result.mean.shape == _shape(args[mean])
        if not meanfield and factor is not None:
            assert result.factor.shape == _shape(args[factor])
    return check


def array_shaped(shape_of):
    """The result is an array of ``shape_of(args)``."""
    def check(result, args):
        assert isinstance(result, np.ndarray) and result.shape == shape_of(args)
    return check


def scalar(allow_inf=False):
    def check(result, args):
        assert isinstance(result, float)
        assert result >= 0.0 and (allow_inf or np.isfinite(result))
    return check


def kronecker_like_prior(result, args):
    """A Kronecker Gaussian of the prior's shapes (the W₂ projection keeps both factors' widths)."""
    assert isinstance(result, lt.KroneckerGaussian)
    prior = args["prior"]
    assert (result.mean.shape, result.input_factor.shape, result.output_factor.shape) == (
        prior.mean.shape, prior.input_factor.shape, prior.output_factor.shape)


def kronecker_limit_like(result, args):
    assert isinstance(result, lt.KroneckerLimit)
    assert 0.0 <= result.kept_variance <= 1.0 and result.collapsed == (result.kept_variance == 0.0)
    assert result.limit.input_factor.shape == args["prior"].input_factor.shape
    assert result.w2_to_projection >= 0.0 and result.gd_slope >= 0.0


def kronecker_gradient_like(result, args):
    q = args["q"]
    assert isinstance(result, lt.KroneckerGradient)
    assert (result.mean.shape, result.input_factor.shape, result.output_factor.shape) == (
        q.mean.shape, q.input_factor.shape, q.output_factor.shape)


def kronecker_run_like(result, args):
    assert isinstance(result, lt.KroneckerSimulation)
    assert result.final.mean.shape == args["prior"].mean.shape
    steps = result.trace.steps
    assert steps[0] == 0 and steps[-1] == args["steps"] and np.all(np.diff(steps) > 0)
    assert all(np.shape(getattr(result.trace, f.name)) == steps.shape for f in fields(result.trace))


def real_number(result, args):
    """A finite float of either sign (a drift of the balance)."""
    assert isinstance(result, float)


def ok(result, args):
    return None


REGRESSION = {"X": Slot(X0, bad_arrays((N, D))), "y": Slot(Y0, bad_arrays((N,))),
              "prior": Slot(PRIOR, extreme_gaussians(kinds=("gaussian",)))}
MULTIPLIERS = Slot(None, st.one_of(bad_arrays((D,)), st.just(np.full(D, 1e-300)), st.just(np.geomspace(1e-300, 1e300, D))))
CLASSIFICATION = {"X": Slot(CX, bad_arrays((6, D))), "y": Slot(CY, st.one_of(bad_arrays((6,)), st.just(-CY), st.just(CY * 2))),
                  "prior": Slot(PRIOR, extreme_gaussians(kinds=("gaussian",)))}
LOSS = Slot("exponential", st.one_of(options("exponential", "logistic", "hinge", "", None, 3)))
GAUSSIAN_WORDS = ("mean", "factor", "scale", "Gaussian", "MeanFieldGaussian")
KRONECKER_WORDS = ("mean", "input_factor", "output_factor", "KroneckerGaussian")  # for ``self`` only
KRONECKER = {"X": Slot(X0, bad_arrays((N, D))), "Y": Slot(Y0K, bad_arrays((N, K))),
             "prior": Slot(KPRIOR, extreme_kroneckers())}
BASIS = Slot(None, bad_bases())
MOMENTA = st.one_of(bad_scalars(), st.sampled_from([0.0, 0.5, 1.0 - 1e-16, 1.0, 1.5]))

SPECS = {
    "Gaussian": Spec(lambda a: lt.Gaussian(a["mean"], a["factor"]),
                     {"mean": Slot(PRIOR.mean, bad_arrays((D,))), "factor": Slot(PRIOR.factor, bad_arrays((D, 3)))},
                     gaussian_like()),
    "MeanFieldGaussian": Spec(lambda a: lt.MeanFieldGaussian(a["mean"], a["scale"]),
                              {"mean": Slot(PRIOR.mean, bad_arrays((D,))), "scale": Slot(MEANFIELD.scale, bad_arrays((D,)))},
                              gaussian_like(meanfield=True)),
    "Gaussian.isotropic": Spec(lambda a: lt.Gaussian.isotropic(a["mean"], a["scale"], a["d"]),
                               {"mean": Slot(0.0, st.one_of(bad_scalars(), bad_arrays((D,)))),
                                "scale": Slot(1.0, bad_scalars()), "d": Slot(D, bad_counts())}, ok),
    "MeanFieldGaussian.isotropic": Spec(lambda a: lt.MeanFieldGaussian.isotropic(a["mean"], a["scale"], a["d"]),
                                        {"mean": Slot(0.0, st.one_of(bad_scalars(), bad_arrays((D,)))),
                                         "scale": Slot(1.0, bad_scalars()), "d": Slot(D, bad_counts())}, ok),
    "Gaussian.from_cov": Spec(lambda a: lt.Gaussian.from_cov(a["mean"], a["cov"], a["tol"]),
                              {"mean": Slot(PRIOR.mean, bad_arrays((D,))),
                               "cov": Slot(PRIOR.cov(), st.one_of(
                                   bad_arrays((D, D)), st.sampled_from(EXTREMES).map(lambda c: np.diag(np.full(D, c))),
                                   st.sampled_from(EXTREMES).map(lambda c: PRIOR.cov() * c))),
                               "tol": Slot(None, bad_scalars())}, gaussian_like(factor=None)),
    "Gaussian.sample": Spec(lambda a: a["self"].sample(a["n"], a["rng"]),
                            {"self": Slot(PRIOR, extreme_gaussians().filter(lambda g: hasattr(g, "sample"))),
                             "n": Slot(3, bad_counts()), "rng": Slot(0, bad_scalars())}, ok,
                            aliases=(("self", GAUSSIAN_WORDS),)),
    "Gaussian.predictive": Spec(lambda a: a["self"].predictive(a["X_test"]),
                                {"self": Slot(PRIOR, extreme_gaussians().filter(lambda g: hasattr(g, "predictive"))),
                                 "X_test": Slot(X0, bad_arrays((3, D)))}, ok, aliases=(("self", GAUSSIAN_WORDS),)),
    "Gaussian.cov": Spec(lambda a: a["self"].cov(), {"self": Slot(PRIOR, extreme_gaussians(kinds=("gaussian",)).filter(
        lambda g: isinstance(g, lt.Gaussian)))}, array_shaped(lambda a: (a["self"].dim,) * 2),
        aliases=(("self", GAUSSIAN_WORDS),)),
    "Gaussian.replace": Spec(lambda a: PRIOR.replace(mean=a["mean"], factor=a["factor"]),
                             {"mean": Slot(None, bad_arrays((D,))), "factor": Slot(None, bad_arrays((D, 2)))}, ok),
    "w2": Spec(lambda a: lt.w2(a["p"], a["q"], metric=a["metric"]),
               {"p": Slot(PRIOR, extreme_gaussians()), "q": Slot(LOWRANK, extreme_gaussians()),
                "metric": Slot(None, bad_arrays((D,)))}, scalar(), aliases=(("p", GAUSSIAN_WORDS), ("q", GAUSSIAN_WORDS))),
    "w2_squared": Spec(lambda a: lt.w2_squared(a["p"], a["q"], metric=a["metric"]),
                       {"p": Slot(PRIOR, extreme_gaussians()), "q": Slot(MEANFIELD, extreme_gaussians()),
                        "metric": Slot(None, bad_arrays((D,)))}, scalar(),
                       aliases=(("p", GAUSSIAN_WORDS + ("W2",)), ("q", GAUSSIAN_WORDS + ("W2",)))),
    "row_space_basis": Spec(lambda a: lt.row_space_basis(a["X"], a["rtol"]),
                            {"X": Slot(X0, bad_arrays((N, D))), "rtol": Slot(None, bad_scalars())}, ok),
    "row_space_solver": Spec(lambda a: lt.row_space_solver(a["X"], a["method"], a["rtol"]),
                             {"X": Slot(X0, bad_arrays((N, D))), "method": Slot("auto", options("gram", "svd", "qr", None, 1)),
                              "rtol": Slot(None, bad_scalars())}, ok),
    "RowSpaceSolver.pinv": Spec(lambda a: lt.row_space_solver(a["X"]).pinv(a["b"]),
                                {"X": Slot(X0, bad_arrays((N, D))), "b": Slot(Y0, bad_arrays((N,)))}, ok),
    "RowSpaceSolver.shifted_solve": Spec(lambda a: lt.row_space_solver(a["X"]).shifted_solve(a["b"], a["lam"]),
                                         {"X": Slot(X0, bad_arrays((N, D))), "b": Slot(np.ones((N, 2)), bad_arrays((N, 2))),
                                          "lam": Slot(0.1, bad_scalars())},
                                         array_shaped(lambda a: (_shape(a["X"])[1],) + _shape(a["b"])[1:])),
    "RowSpaceSolver.spectral_map": Spec(lambda a: lt.row_space_solver(a["X"]).spectral_map(a["b"], lambda s: 1.0 / s),
                                        {"X": Slot(X0, bad_arrays((N, D))), "b": Slot(Y0, bad_arrays((N,)))},
                                        array_shaped(lambda a: (_shape(a["X"])[1],) + _shape(a["b"])[1:])),
    "RowSpaceSolver.project_null": Spec(lambda a: lt.row_space_solver(a["X"]).project_null(a["A"]),
                                        {"X": Slot(X0, bad_arrays((N, D))), "A": Slot(PRIOR.factor, bad_arrays((D, D)))},
                                        array_shaped(lambda a: _shape(a["A"]))),
    "project_null": Spec(lambda a: lt.project_null(a["X_or_solver"], a["A"]),
                         {"X_or_solver": Slot(X0, bad_arrays((N, D))), "A": Slot(PRIOR.factor, bad_arrays((D, 3)))},
                         array_shaped(lambda a: _shape(a["A"])), aliases=(("X_or_solver", ("X",)),)),
    "project_row": Spec(lambda a: lt.project_row(lt.row_space_basis(a["X"]), a["A"]),
                        {"X": Slot(X0, bad_arrays((N, D))), "A": Slot(PRIOR.mean, bad_arrays((D,)))},
                        array_shaped(lambda a: _shape(a["A"]))),
    "ibvi_limit": Spec(lambda a: lt.ibvi_limit(a["X"], a["y"], a["prior"], step_multipliers=a["step_multipliers"]),
                       dict(REGRESSION, step_multipliers=MULTIPLIERS), like_prior),
    "ibvi_limit_w2_squared": Spec(lambda a: lt.ibvi_limit_w2_squared(a["X"], a["y"], a["prior"],
                                                                      step_multipliers=a["step_multipliers"]),
                                  dict(REGRESSION, step_multipliers=MULTIPLIERS), scalar()),
    "w2_gvi": Spec(lambda a: lt.w2_gvi(a["X"], a["y"], a["prior"], a["lam"], step_multipliers=a["step_multipliers"]),
                   dict(REGRESSION, lam=Slot(0.5, bad_scalars()), step_multipliers=MULTIPLIERS), like_prior),
    "gd_iterate": Spec(lambda a: lt.gd_iterate(a["X"], a["y"], a["prior"], a["lr"], a["steps"],
                                               step_multipliers=a["step_multipliers"]),
                       dict(REGRESSION, lr=Slot(0.5 * BOUND, bad_scalars()), steps=Slot(5, bad_counts()),
                            step_multipliers=MULTIPLIERS), like_prior),
    "bayes_posterior": Spec(lambda a: lt.bayes_posterior(a["X"], a["y"], a["prior"], a["noise_var"]),
                            dict(REGRESSION, noise_var=Slot(0.1, bad_scalars())), like_prior),
    "expected_loss": Spec(lambda a: lt.expected_loss(a["X"], a["y"], a["q"]),
                          {"X": Slot(X0, bad_arrays((N, D))), "y": Slot(Y0, bad_arrays((N,))),
                           "q": Slot(PRIOR, extreme_gaussians())}, scalar(), aliases=(("q", GAUSSIAN_WORDS),)),
    "stability_bound": Spec(lambda a: lt.stability_bound(a["X"], a["optimizer"], a["momentum"], a["prior"],
                                                         a["preconditioned"], step_multipliers=a["step_multipliers"]),
                            {"X": Slot(X0, bad_arrays((N, D))), "optimizer": Slot("gd", options("gd", "momentum", "adam", None)),
                             "momentum": Slot(0.9, bad_scalars()), "prior": Slot(None, extreme_gaussians(kinds=("gaussian",))),
                             "preconditioned": Slot(False, st.booleans()), "step_multipliers": MULTIPLIERS},
                            scalar(allow_inf=True), aliases=(("preconditioned", ("prior",)),), allow_inf=True),
    "simulate": Spec(lambda a: lt.simulate(a["X"], a["y"], a["prior"], family=a["family"], optimizer=a["optimizer"],
                                           lr=a["lr"], steps=a["steps"], mc_samples=a["mc_samples"], seed=a["seed"],
                                           record_every=a["record_every"], batch_size=a["batch_size"],
                                           lr_factor=a["lr_factor"], step_multipliers=a["step_multipliers"]),
                     dict(REGRESSION, family=Slot("full", options("full", "lowrank", "meanfield", "diag")),
                          optimizer=Slot("gd", options("gd", "sgd", "momentum", "adam")),
                          lr=Slot(0.1 * BOUND, bad_scalars()), steps=Slot(4, bad_counts()),
                          mc_samples=Slot(0, bad_counts()), seed=Slot(0, bad_scalars()),
                          record_every=Slot(None, bad_counts()), batch_size=Slot(None, bad_counts()),
                          lr_factor=Slot(None, bad_scalars()), step_multipliers=MULTIPLIERS), ok,
                     aliases=(("family", ("prior",)), ("optimizer", ("batch_size",)), ("batch_size", ("optimizer",))),
                     allow_inf=True),  # stability_bound is inf for an X whose 1/s_max² is beyond the float range
    "gd_ensemble": Spec(lambda a: lt.gd_ensemble(a["X"], a["y"], a["initial"], lr=a["lr"], steps=a["steps"]),
                        {"X": Slot(X0, bad_arrays((N, D))), "y": Slot(Y0, bad_arrays((N,))),
                         "initial": Slot(PRIOR.sample(3, 0), bad_arrays((3, D))), "lr": Slot(0.1 * BOUND, bad_scalars()),
                         "steps": Slot(3, bad_counts())}, array_shaped(lambda a: _shape(a["initial"]))),
    "random_regression": Spec(lambda a: lt.random_regression(a["n"], a["d"], rank=a["rank"], condition_number=a["kappa"],
                                                             spectrum=a["spectrum"], scale=a["scale"], noise=a["noise"],
                                                             seed=a["seed"]),
                              {"n": Slot(4, bad_counts()), "d": Slot(7, bad_counts()), "rank": Slot(None, bad_counts()),
                               "kappa": Slot(10.0, bad_scalars()), "spectrum": Slot(None, bad_arrays((4,))),
                               "scale": Slot(1.0, bad_scalars()), "noise": Slot(0.0, bad_scalars()),
                               "seed": Slot(0, bad_scalars())}, ok,
                              aliases=(("kappa", ("condition_number",)), ("n", ("rank", "spectrum")),
                                       ("d", ("rank", "spectrum")), ("rank", ("spectrum",)))),
    "feature_regression_1d": Spec(lambda a: lt.feature_regression_1d(a["n"], a["d"], lengthscale=a["lengthscale"],
                                                                     noise=a["noise"], seed=a["seed"]),
                                  {"n": Slot(6, bad_counts()), "d": Slot(9, bad_counts()),
                                   "lengthscale": Slot(0.35, bad_scalars()), "noise": Slot(0.0, bad_scalars()),
                                   "seed": Slot(0, bad_scalars())}, ok),
    "FeatureRegression1D.features": Spec(lambda a: lt.feature_regression_1d(4, 6).features(a["x"]),
                                         {"x": Slot(np.zeros(3), bad_arrays((3,)))},
                                         array_shaped(lambda a: (_shape(a["x"])[0], 6))),
    "separable_classification": Spec(lambda a: lt.separable_classification(a["n"], a["d"], margin=a["margin"], seed=a["seed"]),
                                     {"n": Slot(5, bad_counts()), "d": Slot(3, bad_counts()),
                                      "margin": Slot(0.1, bad_scalars()), "seed": Slot(0, bad_scalars())}, ok),
    "classification_loss": Spec(lambda a: lt.classification_loss(a["X"], a["y"], a["q"], loss=a["loss"],
                                                                 quadrature_nodes=a["quadrature_nodes"]),
                                {"X": CLASSIFICATION["X"], "y": CLASSIFICATION["y"],
                                 "q": Slot(PRIOR, extreme_gaussians(kinds=("gaussian",))), "loss": LOSS,
                                 "quadrature_nodes": Slot(16, bad_counts())}, ok, aliases=(("q", GAUSSIAN_WORDS),)),
    "hard_margin_svm": Spec(lambda a: lt.hard_margin_svm(a["X"], a["y"]),
                            {"X": CLASSIFICATION["X"], "y": CLASSIFICATION["y"]}, ok),
    "classification_step_bound": Spec(lambda a: lt.classification_step_bound(a["X"], a["y"], a["prior"], a["loss"]),
                                      dict(CLASSIFICATION, loss=LOSS), scalar(allow_inf=True), allow_inf=True),
    "simulate_classification": Spec(lambda a: lt.simulate_classification(
        a["X"], a["y"], a["prior"], loss=a["loss"], lr=a["lr"], steps=a["steps"], mc_samples=a["mc_samples"],
        seed=a["seed"], optimizer=a["optimizer"], batch_size=a["batch_size"], momentum=a["momentum"],
        record_steps=a["record_steps"], quadrature_nodes=8),
        dict(CLASSIFICATION, loss=LOSS, lr=Slot(1e-6, bad_scalars()), steps=Slot(3, bad_counts()),
             mc_samples=Slot(0, bad_counts()), seed=Slot(0, bad_scalars()),
             optimizer=Slot("gd", options("gd", "sgd", "momentum", "lbfgs")), batch_size=Slot(None, bad_counts()),
             momentum=Slot(0.9, bad_scalars()), record_steps=Slot(None, st.one_of(bad_arrays((3,)), st.just([0, 2, 1]))),
             ), ok,
        aliases=(("optimizer", ("batch_size",)), ("batch_size", ("optimizer",)), ("steps", ("record_steps",)),
                 ("X", ("data",)), ("y", ("data",)), ("momentum", ("lr", "step bound")))),
    "default_record_steps": Spec(lambda a: lt.default_record_steps(a["steps"], a["points"]),
                                 {"steps": Slot(10, bad_counts()), "points": Slot(40, bad_counts())}, ok),
    "predicted_mc_threshold": Spec(lambda a: lt.predicted_mc_threshold(a["s_max"], a["rank"], a["mc_samples"],
                                                                       momentum=a["momentum"]),
                                   {"s_max": Slot(1.0, bad_scalars()), "rank": Slot(2, bad_counts()),
                                    "mc_samples": Slot(1, bad_counts()), "momentum": Slot(0.0, MOMENTA)}, scalar()),
    "mc_factor_threshold": Spec(lambda a: lt.mc_factor_threshold(a["X"], a["rank"], mc_samples=a["mc_samples"], steps=a["steps"],
                                                                 seeds=a["seeds"], rel_tol=a["rel_tol"],
                                                                 momentum=a["momentum"], prior_scale=a["prior_scale"]),
                                {"X": Slot(X0, bad_arrays((N, D))), "rank": Slot(2, bad_counts()),
                                 "mc_samples": Slot(1, bad_counts()), "steps": Slot(10, st.sampled_from([-1, 0, 2.5, None])),
                                 "seeds": Slot((0,), st.sampled_from([(), None, 3, "ab", (-1,), (0.5,), [0, 1]])),
                                 "rel_tol": Slot(0.3, st.sampled_from([-1.0, 0.0, 1e-300, 1e-17, 2.0, np.nan,
                                                                       np.inf, "x", None])),
                                 "momentum": Slot(0.0, MOMENTA), "prior_scale": Slot(1.0, bad_scalars())}, ok),
    "descent_step_threshold": Spec(lambda a: lt.descent_step_threshold(a["sharpness"], a["signal_to_noise"]),
                                   {"sharpness": Slot(2.0, bad_scalars()), "signal_to_noise": Slot(10.0, bad_scalars())},
                                   scalar()),
    "critical_sharpness": Spec(lambda a: lt.critical_sharpness(a["lr"], a["signal_to_noise"]),
                               {"lr": Slot(0.1, bad_scalars()), "signal_to_noise": Slot(10.0, bad_scalars())}, scalar()),
    "factor_signal_to_noise": Spec(lambda a: lt.factor_signal_to_noise(a["s_max"], a["rank"], a["mc_samples"]),
                                   {"s_max": Slot(1.0, bad_scalars()), "rank": Slot(2, bad_counts()),
                                    "mc_samples": Slot(1, bad_counts())}, scalar()),
    # -- Kronecker-factored Gaussians (multi-output regression) --
    "KroneckerGaussian": Spec(lambda a: lt.KroneckerGaussian(a["mean"], a["input_factor"], a["output_factor"]),
                              {"mean": Slot(KPRIOR.mean, bad_arrays((D, K))),
                               "input_factor": Slot(KPRIOR.input_factor, bad_arrays((D, 2))),
                               "output_factor": Slot(KPRIOR.output_factor, bad_arrays((K, 2)))},
                              lambda r, a: (isinstance(r, lt.KroneckerGaussian) and r.mean.shape == _shape(a["mean"]))
                              or pytest.fail("not a KroneckerGaussian of the mean's shape")),
    "KroneckerGaussian.sample": Spec(lambda a: a["self"].sample(a["n"], a["rng"]),
                                     {"self": Slot(KPRIOR, extreme_kroneckers().filter(lambda g: hasattr(g, "sample"))),
                                      "n": Slot(3, bad_counts()), "rng": Slot(0, bad_scalars())},
                                     array_shaped(lambda a: (a["n"],) + a["self"].mean.shape),
                                     aliases=(("self", KRONECKER_WORDS), ("rng", ("seed",)))),
    "KroneckerGaussian.predictive": Spec(lambda a: a["self"].predictive(a["X_test"]),
                                         {"self": Slot(KPRIOR, extreme_kroneckers().filter(
                                             lambda g: isinstance(g, lt.KroneckerGaussian))),
                                          "X_test": Slot(X0, bad_arrays((3, D)))}, ok,
                                         aliases=(("self", KRONECKER_WORDS),)),
    "KroneckerGaussian.as_gaussian": Spec(lambda a: a["self"].as_gaussian(),
                                          {"self": Slot(KPRIOR, extreme_kroneckers().filter(
                                              lambda g: isinstance(g, lt.KroneckerGaussian)))},
                                          lambda r, a: (isinstance(r, lt.Gaussian) and r.dim == D * K)
                                          or pytest.fail("not a Gaussian on vec(W)"),
                                          aliases=(("self", KRONECKER_WORDS),)),
    "KroneckerGaussian.replace": Spec(lambda a: KPRIOR.replace(mean=a["mean"], input_factor=a["input_factor"],
                                                               output_factor=a["output_factor"]),
                                      {"mean": Slot(None, bad_arrays((D, K))),
                                       "input_factor": Slot(None, bad_arrays((D, 3))),
                                       "output_factor": Slot(None, bad_arrays((K, 1)))}, ok),
    "balance": Spec(lambda a: lt.kronecker.balance(a["q"]), {"q": Slot(KPRIOR, extreme_kroneckers())}, real_number),
    "kronecker_expected_loss": Spec(lambda a: lt.kronecker_expected_loss(a["X"], a["Y"], a["q"]),
                                    dict(KRONECKER, q=KRONECKER["prior"]), scalar()),
    "kronecker_gradients": Spec(lambda a: lt.kronecker_gradients(a["X"], a["Y"], a["q"]),
                                dict(KRONECKER, q=KRONECKER["prior"]), kronecker_gradient_like),
    "expected_balance_drift": Spec(lambda a: lt.expected_balance_drift(a["X"], a["Y"], a["q"], a["mc_samples"]),
                                   dict(KRONECKER, q=KRONECKER["prior"], mc_samples=Slot(0, bad_counts())), real_number),
    "kronecker_limit": Spec(lambda a: lt.kronecker_limit(a["X"], a["Y"], a["prior"], basis=a["basis"]),
                            dict(KRONECKER, basis=BASIS), kronecker_limit_like),
    "kronecker_w2_projection": Spec(lambda a: lt.kronecker_w2_projection(a["X"], a["Y"], a["prior"], basis=a["basis"]),
                                    dict(KRONECKER, basis=BASIS), kronecker_like_prior),
    "kronecker_first_order": Spec(lambda a: lt.kronecker_first_order(a["X"], a["Y"], a["prior"], mc_samples=a["mc_samples"],
                                                                     momentum=a["momentum"], basis=a["basis"]),
                                  dict(KRONECKER, mc_samples=Slot(0, bad_counts()), momentum=Slot(0.0, MOMENTA),
                                       basis=BASIS), scalar(),
                                  aliases=(("momentum", ("mc_samples",)), ("mc_samples", ("momentum",)))),
    "kronecker_w2_squared": Spec(lambda a: lt.kronecker_w2_squared(a["p"], a["q"]),
                                 {"p": Slot(KPRIOR, extreme_kroneckers()),
                                  "q": Slot(lt.kronecker_limit(X0, Y0K, KPRIOR).limit, extreme_kroneckers())}, scalar()),
    "kronecker_step_bound": Spec(lambda a: lt.kronecker_step_bound(a["X"], a["q"], a["optimizer"], a["momentum"],
                                                                   basis=a["basis"]),
                                 {"X": KRONECKER["X"], "q": KRONECKER["prior"],
                                  "optimizer": Slot("gd", options("gd", "sgd", "momentum", "adam", None, 1)),
                                  "momentum": Slot(0.9, MOMENTA), "basis": BASIS}, scalar(allow_inf=True),
                                 allow_inf=True),
    "simulate_kronecker": Spec(lambda a: lt.simulate_kronecker(
        a["X"], a["Y"], a["prior"], optimizer=a["optimizer"], lr=a["lr"], steps=a["steps"], batch_size=a["batch_size"],
        mc_samples=a["mc_samples"], momentum=a["momentum"], seed=a["seed"], record_every=a["record_every"],
        check_stability=a["check_stability"]),
        dict(KRONECKER, optimizer=Slot("gd", options("gd", "sgd", "momentum", "adam", None)),
             lr=Slot(0.1 * KBOUND, bad_scalars()), steps=Slot(4, bad_counts()), batch_size=Slot(None, bad_counts()),
             mc_samples=Slot(0, bad_counts()), momentum=Slot(0.9, MOMENTA), seed=Slot(0, bad_scalars()),
             record_every=Slot(None, bad_counts()), check_stability=Slot(True, st.booleans())), kronecker_run_like,
        aliases=(("optimizer", ("batch_size",)), ("batch_size", ("optimizer",)), ("check_stability", ("lr",))),
        allow_inf=True),  # the step bound is inf for a flat loss
}


def _names_an_argument(message: str, replaced: list[str], aliases: dict) -> bool:
    words = [w for name in replaced for w in (name, *aliases.get(name, ()))]
    return any(re.search(rf"(?<![\w.]){re.escape(w)}(?!\w)", message) for w in words)


def run_case(spec: Spec, args: dict, replaced: list[str]) -> None:
    """Assert the contract of the module docstring for one call."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = spec.call(args)
    except lt.DivergenceError:
        return
    except (ValueError, TypeError) as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        assert Path(frame.filename).resolve().is_relative_to(LIBRARY.resolve()), (
            f"raised outside linear_theory ({frame.filename}:{frame.lineno}): {exc!r}")
        assert _names_an_argument(str(exc), replaced, dict(spec.aliases)), (
            f"the message does not name any of {replaced}: {exc}")
        return
    assert spec.allow_inf or _is_finite(result), f"non-finite result {result!r}"
    spec.check(result, args)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=30)
@given(data=st.data())
def test_public_call_succeeds_or_names_the_bad_argument(name, data):
    spec = SPECS[name]
    replaced = data.draw(st.lists(st.sampled_from(sorted(spec.slots)), min_size=1, max_size=2, unique=True),
                         label="replaced")
    args = {key: slot.default for key, slot in spec.slots.items()}
    for key in replaced:
        args[key] = data.draw(spec.slots[key].bad, label=key)
    run_case(spec, args, replaced)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_valid_defaults_succeed(name):
    """The baseline of every case: with no argument replaced the call returns a checked result."""
    spec = SPECS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = {key: slot.default for key, slot in spec.slots.items()}
        result = spec.call(args)
    assert spec.allow_inf or _is_finite(result)
    spec.check(result, args)


def test_every_public_callable_is_fuzzed():
    """Functions and classes in __all__ that take user input each have at least one spec."""
    results = {"Predictive", "RowSpaceBasis", "RowSpaceSolver", "DivergenceError", "SimulationResult", "Trace",
               "RegressionProblem", "FeatureRegression1D", "ClassificationProblem", "ThresholdResult",
               "ClassificationLoss", "SVMSolution", "ClassificationTrace", "ClassificationResult",
               "KroneckerGradient", "KroneckerLimit", "KroneckerTrace", "KroneckerSimulation"}
    constants = {"LOSSES", "DEFAULT_QUADRATURE_NODES"}
    covered = {name.split(".")[0] for name in SPECS} | {"RowSpaceSolver", "FeatureRegression1D"}
    missing = set(lt.__all__) - results - constants - covered
    assert not missing, f"public names without a fuzz spec: {sorted(missing)}"
