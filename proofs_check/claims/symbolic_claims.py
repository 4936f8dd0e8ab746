"""Symbolic claims S1–S9: the sympy derivations of :mod:`proofs_check.symbolic`.

Each measurement is one residual of a derivation: ``0.0`` when sympy proves it identically zero,
otherwise the largest ``|residual|`` at random rational points (seeded by the run's seed). The
tolerance is 0 because these are exact identities: any nonzero value is a wrong formula, not
rounding. The one numeric measurement (random 2×2 pairs in mpmath, S6) has a rounding tolerance
with its reason beside it.
"""
from __future__ import annotations

import sympy as sp

from .. import symbolic
from ..registry import Context, Measurement, Outcome, Table, claim

EXACT = "exact symbolic identity"


def _exact_measurements(result, ctx: Context, offset: int) -> tuple[Measurement, ...]:
    rng = ctx.rng(offset)
    return tuple(Measurement(name=r.name, error=symbolic.residual_size(r, rng), tolerance=0.0,
                             reason=EXACT)
                 for r in result.residuals)


@claim("S1-expected-loss",
       statement="E_{w~N(mu,LL^T)} ||y - Xw||^2 = ||y - X mu||^2 + ||XL||_F^2, derived by expanding in "
                 "z (w = mu + Lz) and integrating the moments of z (n=2, d=3, r=2, symbolic entries)",
       reference="docs/theory.md §1", kind="symbolic")
def check_expected_loss(ctx: Context) -> Outcome:
    result = symbolic.expected_loss()
    return Outcome(measurements=_exact_measurements(result, ctx, 101),
                   notes=(f"derived expectation has {len(result.derived.args)} terms",))


@claim("S2-gradients",
       statement="differentiating the derived expected loss gives grad_mu = -2X^T(y - X mu) and "
                 "grad_L = 2X^T X L entrywise (n=2, d=3, r=2)",
       reference="docs/theory.md §1", kind="symbolic")
def check_gradients(ctx: Context) -> Outcome:
    return Outcome(measurements=_exact_measurements(symbolic.gradients(), ctx, 102))


@claim("S3-gd-iterate",
       statement="GD on the mean solved in the eigenbasis (rsolve): e_t = (1 - 2 eta s^2)^t e_0, "
                 "contraction |1 - 2 eta s^2| per step, stable iff 0 < eta < 1/s^2",
       reference="docs/theory.md §2 C1", kind="symbolic")
def check_gd_iterate(ctx: Context) -> Outcome:
    result = symbolic.gd_iterate()
    return Outcome(measurements=_exact_measurements(result, ctx, 103),
                   notes=(f"rsolve: e_t = {result.solution}",
                          f"stable step set: {result.stable_set}",
                          f"squared singular values of the 2x3 example: {result.squared_singular_values}"))


@claim("S4-penalized-gvi",
       statement="stationary point of ||y-X mu||^2 + ||XL||_F^2 + lambda(||mu-mu0||^2 + ||L-L0||_F^2) "
                 "is mu0 + X^T(XX^T+lambda I)^-1(y - X mu0), (I - X^T(XX^T+lambda I)^-1 X)L0 "
                 "(n=1 d=2 symbolic; n=2 d=3 rational, lambda symbolic)",
       reference="docs/theory.md §2 C5", kind="symbolic")
def check_penalized(ctx: Context) -> Outcome:
    result = symbolic.penalized_w2_gvi()
    return Outcome(
        measurements=_exact_measurements(result, ctx, 104),
        notes=("alignment assumption: the W2 factor term equals ||L - L0||_F^2 when L^T L0 is "
               "symmetric PSD; at the solution L = A L0 with A symmetric positive definite "
               "(both residuals above), and L -> LQ leaves the objective unchanged, so the "
               "aligned and the W2 problems have the same minimizer covariance",))


@claim("S5-gaussian-mgf",
       statement="E_{w~N(mu,LL^T)} exp(-y x^T w) = exp(-y x^T mu + ||L^T x||^2 / 2) for y = +-1, "
                 "by integrating exp(a w) against the normal density (d=2, r=2)",
       reference="docs/theory.md §2 C7", kind="symbolic")
def check_mgf(ctx: Context) -> Outcome:
    result = symbolic.gaussian_mgf()
    return Outcome(measurements=_exact_measurements(result, ctx, 105),
                   notes=(f"1-D integral: E exp(a w) = {result.one_dimensional}",))


# mpmath at 50 digits: sqrtm and svd_r of 2x2 matrices with entries of size <= 81 lose a few
# digits to conditioning; 1e-40 leaves ten digits of margin and is far below any formula error
# (a wrong cross term differs by O(1e-2) or more on these draws).
MP_DIGITS = 50
MP_TOLERANCE = 1e-40


@claim("S6-w2-bures",
       statement="W2^2 factor formula ||m1-m2||^2 + ||L1||^2 + ||L2||^2 - 2||L1^T L2||_* equals the "
                 "Bures formula: 1-D and commuting 2x2 (symbolic), general 2x2 (exact algebraic), "
                 "random 2x2 (mpmath, 50 digits)",
       reference="docs/theory.md §1", kind="symbolic")
def check_w2_bures(ctx: Context) -> Outcome:
    cases = 2 if ctx.quick else 5
    result = symbolic.w2_factor_vs_bures(rng=ctx.rng(106), mp_cases=cases, mp_digits=MP_DIGITS)
    measurements = _exact_measurements(result, ctx, 107) + (
        Measurement(name=f"factor - Bures, {cases} random rational 2x2 pairs (mpmath)",
                    error=result.mpmath_max_abs_difference, tolerance=MP_TOLERANCE,
                    reason=f"{MP_DIGITS}-digit rounding in sqrtm/svd_r, 10 digits left for conditioning"),)
    return Outcome(measurements=measurements)


@claim("S7-exact-limit",
       statement="exact rational example (n=2, d=3, r=2): the IBVI limit mu0 + X^+(y - X mu0), "
                 "P_null L0 equals the Lagrange solution of min W2^2(q, p) s.t. X mu = y, XL = 0",
       reference="docs/theory.md §2 C1", kind="symbolic")
def check_ibvi_limit(ctx: Context) -> Outcome:
    result = symbolic.ibvi_limit_exact()
    rows = tuple((f"mu[{i}]", str(result.limit_mean[i]), str(result.lagrange_mean[i]))
                 for i in range(result.limit_mean.rows))
    return Outcome(measurements=_exact_measurements(result, ctx, 108),
                   tables=(Table(title="mean: IBVI limit vs Lagrange solution",
                                 header=("entry", "IBVI limit", "Lagrange"), rows=rows),),
                   notes=(f"W2^2(q_inf, p) = {result.w2_squared}",))


@claim("S8-kronecker-balance",
       statement="W = M + A Z B^T: E||Y - XW||^2 = ||Y - XM||^2 + ||XA||^2 ||B||^2 and its gradients (n=d=k=a=b=2, "
                 "symbolic); ||A||^2 - ||B||^2 is conserved by the flow; <A, g_A> = <B, g_B> for every draw of Z, so a "
                 "plain step changes the balance by eta^2(||g_A||^2 - ||g_B||^2); the one-draw MC second moments; the "
                 "GD first-order term as a flow integral",
       reference="docs/theory.md §2 (C14)", kind="symbolic")
def check_kronecker_balance(ctx: Context) -> Outcome:
    result = symbolic.kronecker_balance()
    return Outcome(measurements=_exact_measurements(result, ctx, 109),
                   notes=(f"flow integral of the GD drift: {result.slope_integral}",
                          f"one-draw (E||g_A||^2, E||g_B||^2) on the rational example: {result.moments}"))


@claim("S9-mc-step-thresholds",
       statement="factor step with M MC samples: E[Zhat^2] = (1 + (r+1)/M) I; the heavy-ball second-moment map and "
                 "its stability root c* = 2(1 - beta^2)/((1 + beta) kappa - 2 beta); Ghosh et al.'s expected-descent "
                 "step 2/(a(1 + a^2/z)) and critical sharpness; with the factor's noise z = a^2 M/(r+1) it equals the "
                 "mean-square bound",
       reference="docs/theory.md §2 (C16)", kind="symbolic")
def check_mc_step_thresholds(ctx: Context) -> Outcome:
    result = symbolic.mc_step_thresholds()
    return Outcome(measurements=_exact_measurements(result, ctx, 110),
                   notes=(f"det(I - T(c)) = {result.heavy_ball_determinant}",
                          f"one-step expected change of (a/2)x^2: {sp.factor(result.expected_descent)}"))
