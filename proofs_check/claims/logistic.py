r"""C8 — the questions of Theorem 2 for the logistic loss [conjecture].

GD on ``ℓ̄ = Σ_n E_{w~q} log(1 + exp(−y_n x_nᵀw))``, the expectation by 64-node Gauss–Hermite
quadrature (deterministic; see :func:`linear_theory.classification_loss`), plus one short run with
Monte Carlo gradients for comparison. What is *reported*: the direction ``1 − cos`` to the SVM
next to the exponential-loss asymptote (the logistic tail ``σ(−z) ≈ e^{−z}`` suggests the same
expansion), the fitted decay exponent of ``‖XL_t‖`` next to the exponential-loss prediction.

What is *judged* holds for any loss of ``xᵀw`` and any step below ``2/β``: the gradients lie in
``row(X)`` (null-space invariants to rounding), and the expected loss is ``β``-smooth with
``β = s_max²/4`` (also for the quadrature, which integrates quadratics exactly), so GD with
``η < 2/β`` never increases it (descent lemma).
"""
from __future__ import annotations

import numpy as np

from linear_theory import simulate_classification
from linear_theory.classification import ClassificationResult, classification_step_bound, default_record_steps

from ..registry import Context, Measurement, Outcome, claim
from .classification import (classification_problem, fitted_decay_exponent, invariant_measurements,
                             predicted_one_minus_cos, spread_exponent, trace_table)


def descent_measurement(result: ClassificationResult) -> Measurement:
    """Largest relative increase of the expected loss between recorded steps (descent lemma)."""
    loss = result.trace.expected_loss
    rise = float(np.max(np.diff(loss) / loss[:-1]))
    return Measurement("largest relative rise of the expected logistic loss between grid steps", max(rise, 0.0),
                       1e-12, f"lr={result.lr:.3g} < 2/beta = {result.step_bound:.3g} (beta = s_max^2/4): GD cannot "
                              "increase a beta-smooth convex loss; rounding only")


def sizes(ctx: Context) -> tuple[int, int, int, int]:
    """``(n, d, steps, mc_steps)``."""
    return (6, 24, 5_000, 1_000) if ctx.quick else (8, 32, 30_000, 5_000)


@claim("C8", statement="Logistic loss (Gauss-Hermite expectation): same questions as Theorem 2 - direction to the "
       "SVM, collapse of ||X L_t||, null-space invariants - measured and reported",
       reference="beyond Theorem 2", kind="conjecture")
def check(ctx: Context) -> Outcome:
    n, d, steps, mc_steps = sizes(ctx)
    X, y, prior, svm = classification_problem(ctx, n, d, offset=80)
    lr = 0.5 * classification_step_bound(X, y, prior, "logistic")
    ctx.progress(f"C8: GD on the logistic expected loss (quadrature), n={n}, d={d}, {steps} steps")
    result = simulate_classification(X, y, prior, loss="logistic", lr=lr, steps=steps,
                                     record_steps=np.union1d(default_record_steps(steps, 30), [mc_steps]))
    ctx.progress(f"C8: the same with Monte Carlo gradients (M=8), {mc_steps} steps")
    mc = simulate_classification(X, y, prior, loss="logistic", lr=lr, steps=mc_steps, mc_samples=8,
                                 seed=ctx.rng(81), record_steps=default_record_steps(mc_steps, 10))
    T = int(result.trace.steps[-1])
    one_minus_cos = float(1.0 - result.trace.direction_cosine[-1])
    asymptote = float(predicted_one_minus_cos(X, y, svm, lr, [T])[0])
    exponent = fitted_decay_exponent(result.trace.steps, result.trace.data_spread)
    quad_at_mc = float(1.0 - result.trace.direction_cosine[np.searchsorted(result.trace.steps, mc_steps)])
    measurements = (
        Measurement(f"1 - cos(mu_T - P_null mu0, SVM w) at T={T}, quadrature gradients", one_minus_cos, None,
                    f"exponential-loss asymptote at the same eta, T: {asymptote:.3e}"),
        Measurement("ratio of that 1 - cos to the exponential-loss asymptote", one_minus_cos / asymptote, None,
                    "near 1 if the logistic tail behaves like e^-z"),
        Measurement("fitted decay exponent of ||X L_t||_F (late third of the log grid)", exponent, None,
                    f"exponential-loss prediction lambda_min(diag(sqrt a) G diag(sqrt a)) = {spread_exponent(X, svm):.3f}"),
        Measurement("||X L_T||_F / ||X L_0||_F", float(result.trace.data_spread[-1] / result.trace.data_spread[0]),
                    None, "collapse of the uncertainty on the data"),
        Measurement(f"1 - cos at T={mc_steps} with MC gradients (M=8)", float(1.0 - mc.trace.direction_cosine[-1]),
                    None, f"quadrature run at the same step: {quad_at_mc:.3e}"),
        descent_measurement(result),
        *invariant_measurements(result, X, prior),
        *invariant_measurements(mc, X, prior, label=", MC run"),
    )
    return Outcome(measurements=measurements,
                   tables=(trace_table(result, X, y, "C8 logistic loss: direction and spread against the step count "
                                                     "(asymptote column: the exponential-loss prediction)"),),
                   notes=(f"n={n}, d={d}, lr={lr:.3g} = half of 8/s_max^2, every point a support vector",))
