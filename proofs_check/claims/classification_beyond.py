r"""C15 — classification beyond Theorem 2's assumptions [conjecture] (docs/theory.md §2 (C15)).

Theorem 2 (C7) is about full-batch GD on the exponential loss. The paper leaves open what
heavy-ball momentum and mini-batch SGD do, on the exponential and on the logistic loss (its
expectation by Gauss–Hermite quadrature, as in C8). On C7's data (every point a support vector)
and from the same prior, with the same base step ``η`` (half of GD's bound at the prior), four
optimizers of :func:`linear_theory.simulate_classification` run side by side: GD, heavy ball
(momentum 0.9) at the same step, heavy ball at ``η(1 − m)`` (the same effective step as GD, which
separates what momentum does from what a larger step does) and mini-batch SGD (a quarter of the
rows per step, ``n/b`` times their gradient).

*Judged*: the null-space invariants ``P_null μ_t = P_null μ₀``, ``P_null L_t = P_null L₀`` — every
one of these gradients is a combination of data rows, whatever the optimizer — to rounding, and
the SVM's KKT residual. *Reported*, against the step count and beside plain GD: the direction
``1 − cos∠(μ_t − P_null μ₀, ŵ)``, the spread ``‖XL_t‖_F`` and its fitted late decay exponent.
The references printed with them are Theorem 2's expansion for the exponential loss (C7) at the
effective step ``η/(1 − m)`` (heavy ball with momentum ``m`` moves like GD with that step once
its gradients change slowly) and the exponent ``λ_min(diag(√α) XXᵀ diag(√α))`` of C7.

Steps: 1000 (``--quick``), 3000 (default), 100 000 (``--full``); the convergence in direction is
logarithmic, so the step counts matter less than the comparison at equal counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linear_theory import simulate_classification
from linear_theory.classification import ClassificationResult, classification_step_bound, default_record_steps

from ..registry import Context, Measurement, Outcome, Table, claim
from .classification import (classification_problem, fitted_decay_exponent, invariant_measurements,
                             predicted_one_minus_cos, spread_exponent)

LOSSES = ("exponential", "logistic")
#: Momentum of the heavy-ball runs (the paper's recipe).
MOMENTUM = 0.9


@dataclass(frozen=True)
class Optimizer:
    """One optimizer of the comparison: its name and :func:`simulate_classification` options."""

    label: str
    optimizer: str
    momentum: float = 0.0
    batch_fraction: float = 1.0
    step_scale: float = 1.0  # the run's step is step_scale × the base step

    def options(self, n: int) -> dict:
        out = {"optimizer": self.optimizer}
        if self.optimizer == "momentum":
            out["momentum"] = self.momentum
        if self.batch_fraction < 1.0:
            out["batch_size"] = max(1, int(round(self.batch_fraction * n)))
        return out

    def effective_lr(self, lr: float) -> float:
        """``η'/(1 − m)`` for the run's step ``η'``: the GD step heavy ball moves like once its gradients
        change slowly (``η'`` itself for GD and SGD)."""
        return self.step_scale * lr / (1.0 - self.momentum)


OPTIMIZERS = (Optimizer("GD", "gd"), Optimizer("heavy ball", "momentum", MOMENTUM),
              Optimizer("heavy ball at eta (1 - m)", "momentum", MOMENTUM, step_scale=1.0 - MOMENTUM),
              Optimizer("SGD, b = n/4", "sgd", batch_fraction=0.25))


def sizes(ctx: Context) -> tuple[int, int, int]:
    """``(n, d, steps)``."""
    if ctx.quick:
        return 6, 24, 1_000
    return (8, 32, 100_000) if ctx.full else (8, 32, 3_000)


@dataclass(frozen=True)
class BeyondRun:
    """One optimizer on one loss, with the references its numbers are read against."""

    loss: str
    optimizer: Optimizer
    result: ClassificationResult
    asymptote: float  # Theorem 2's 1 - cos at the effective step (exponential-loss expansion)
    exponent: float  # fitted late decay exponent of ||X L_t||_F

    @property
    def one_minus_cos(self) -> float:
        return float(1.0 - self.result.trace.direction_cosine[-1])

    @property
    def spread_ratio(self) -> float:
        spread = self.result.trace.data_spread
        return float(spread[-1] / spread[0])


def run_beyond(ctx: Context) -> tuple[tuple, tuple]:
    """Every (loss, optimizer) run on C7's data; returns ``(runs, (X, y, prior, svm, lr_by_loss))``."""
    n, d, steps = sizes(ctx)
    X, y, prior, svm = classification_problem(ctx, n, d, offset=150)
    grid = default_record_steps(steps, 30)
    runs, lrs = [], {}
    for loss in LOSSES:
        lrs[loss] = lr = 0.5 * classification_step_bound(X, y, prior, loss)
        for k, opt in enumerate(OPTIMIZERS):
            ctx.progress(f"C15: {loss} loss, {opt.label}, {steps} steps")
            result = simulate_classification(X, y, prior, loss=loss, lr=opt.step_scale * lr, steps=steps,
                                             record_steps=grid,
                                             seed=ctx.rng(151 + k), **opt.options(n))
            T = int(result.trace.steps[-1])
            asymptote = float(predicted_one_minus_cos(X, y, svm, opt.effective_lr(lr), [T])[0])
            runs.append(BeyondRun(loss, opt, result, asymptote,
                                  fitted_decay_exponent(result.trace.steps, result.trace.data_spread)))
    return tuple(runs), (X, y, prior, svm, lrs)


def trace_tables(runs) -> tuple[Table, ...]:
    """Per loss: ``1 − cos`` and ``‖XL_t‖_F`` of every optimizer at about ten common step counts."""
    tables = []
    for loss in LOSSES:
        mine = [r for r in runs if r.loss == loss]
        steps = mine[0].result.trace.steps
        rows = []
        for i in np.unique(np.linspace(1, steps.size - 1, 10).astype(int)):
            row = [int(steps[i])]
            for r in mine:
                row += [f"{1.0 - r.result.trace.direction_cosine[i]:.3e}", f"{r.result.trace.data_spread[i]:.3e}"]
            rows.append(tuple(row))
        header = ("step t",) + tuple(f"{r.optimizer.label}: {q}" for r in mine for q in ("1 - cos", "||X L_t||"))
        tables.append(Table(f"C15 {loss} loss: direction to the SVM and spread on the data against the step count",
                            header, tuple(rows)))
    return tuple(tables)


def summary_table(runs, predicted_exponent: float) -> Table:
    rows = tuple((r.loss, r.optimizer.label, f"{r.result.lr:.3g}", f"{r.one_minus_cos:.3e}", f"{r.asymptote:.3e}",
                  f"{r.one_minus_cos / r.asymptote:.3g}", f"{r.exponent:.3f}", f"{r.spread_ratio:.3e}")
                 for r in runs)
    return Table(f"C15 at the last step: direction, Theorem 2's asymptote at the effective step eta/(1 - m), "
                 f"decay of the spread (C7's exponent {predicted_exponent:.3f})",
                 ("loss", "optimizer", "eta", "1 - cos", "asymptote", "ratio", "exponent of ||XL_t||",
                  "||XL_T|| / ||XL_0||"), rows)


@claim("C15", statement="Heavy-ball momentum and mini-batch SGD on the exponential and logistic losses: the null-space "
       "invariants hold to rounding; the direction to the SVM and ||X L_t|| against the step count are reported "
       "beside plain GD", reference="docs/theory.md §2 (C15)", kind="conjecture")
def check(ctx: Context) -> Outcome:
    runs, (X, y, prior, svm, lrs) = run_beyond(ctx)
    predicted = spread_exponent(X, svm)
    measurements = [Measurement("KKT residual of the NNLS hard-margin SVM", svm.kkt_residual, 1e-10,
                                "active-set NNLS polished on the support in float64: rounding times cond(X_S)")]
    for r in runs:
        measurements.extend(invariant_measurements(r.result, X, prior, label=f" [{r.loss}, {r.optimizer.label}]"))
    for loss in LOSSES:
        gd = next(r for r in runs if r.loss == loss and r.optimizer.optimizer == "gd")
        for r in runs:
            if r.loss != loss or r is gd:
                continue
            where = f" [{loss}, {r.optimizer.label}]"
            ratio = r.optimizer.effective_lr(1.0) / gd.optimizer.effective_lr(1.0)
            measurements.append(Measurement("(1 - cos) / GD's (1 - cos) at the last step" + where,
                                            r.one_minus_cos / gd.one_minus_cos, None,
                                            f"effective step {ratio:g}x GD's" + ("" if r.optimizer.momentum
                                                                                  else ", noisy gradients")))
            measurements.append(Measurement("||X L_T|| / GD's ||X L_T||" + where, r.spread_ratio / gd.spread_ratio,
                                            None, "below 1: the spread collapses faster than under GD"))
    n, d, steps = sizes(ctx)
    notes = (f"n={n}, d={d}, {steps} steps, every point a support vector; base step half of GD's bound at the prior: "
             + ", ".join(f"{loss} {lr:.3g}" for loss, lr in lrs.items())
             + f"; momentum {MOMENTUM}; mini-batches drawn without replacement, n/b times their gradient",)
    return Outcome(tuple(measurements), tables=(summary_table(runs, predicted), *trace_tables(runs)), notes=notes)
