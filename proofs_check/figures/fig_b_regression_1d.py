"""(b) 1-D feature regression: prior, IBVI limit, exact posterior and the collapsed mean-field fit.

The prior is isotropic, ``N(0, I_d)`` over the weights of ``d`` Gaussian-bump features. For an
isotropic prior the *noiseless* Bayesian posterior equals the IBVI limit exactly (claim C3), so
the posterior panel uses a small observation noise (variance ``NOISE_VAR``) to show the
posterior a Bayesian would fit to slightly noisy measurements; the IBVI panel is the
noiseless one. The mean-field panel is a real GD run (``simulate(family="meanfield")``): every
feature the data touch loses its variance, so the band collapses also away from the data.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from linear_theory import (Gaussian, MeanFieldGaussian, bayes_posterior, feature_regression_1d, ibvi_limit,
                           simulate)

NAME = "regression_1d"
CAPTION = ("Predictive mean and ±2 standard deviations of a 1-D regression through Gaussian-bump features: "
           "the isotropic prior, the IBVI limit (which keeps the prior's uncertainty away from the data), "
           "the exact Bayesian posterior with noise variance 0.01, and the mean-field GD fit whose "
           "uncertainty collapses everywhere the features touch the data.")
CLAIMS = ("C1-predictive", "C4-meanfield", "C3")

NOISE_VAR = 1e-2


def _panel(ax, grid, predictive, problem, title, color):
    mean, std = predictive.mean, predictive.std
    ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color=color, alpha=0.25, lw=0, label="±2 std")
    ax.plot(grid, mean, color=color, lw=1.8, label="predictive mean")
    ax.plot(problem.inputs, problem.y, "k.", ms=7, label="data")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)


def make(ctx) -> Figure:
    n, d, steps = (12, 40, 1000) if ctx.quick else (16, 60, 3000)
    problem = feature_regression_1d(n, d, seed=ctx.rng(1))
    X, y = problem.X, problem.y
    prior = Gaussian.isotropic(0.0, 1.0, d)
    s_max = float(np.linalg.norm(X, 2))
    ctx.progress(f"regression_1d: mean-field GD, {steps} steps")
    meanfield = simulate(X, y, MeanFieldGaussian.isotropic(0.0, 1.0, d), family="meanfield",
                         lr=0.9 / s_max ** 2, steps=steps, record_every=steps).final
    fits = [
        ("prior N(0, I)", prior, "tab:gray"),
        ("IBVI limit q∞ (= noiseless posterior)", ibvi_limit(X, y, prior), "tab:blue"),
        (f"exact posterior, noise variance {NOISE_VAR:g}", bayes_posterior(X, y, prior, noise_var=NOISE_VAR),
         "tab:green"),
        (f"mean-field IBVI after {steps} GD steps", meanfield, "tab:red"),
    ]
    grid = np.linspace(-3.2, 3.2, 161 if ctx.quick else 321)
    features = problem.features(grid)

    figure = Figure(figsize=(9.0, 6.4), layout="constrained")
    axes = figure.subplots(2, 2, sharex=True, sharey=True)
    for ax, (title, q, color) in zip(axes.flat, fits):
        _panel(ax, grid, q.predictive(features), problem, title, color)
    for ax in axes[1]:
        ax.set_xlabel("input x (dimensionless)")
    for ax in axes[:, 0]:
        ax.set_ylabel("prediction f(x) = φ(x)ᵀw")
    axes[0, 0].set_ylim(-3.5, 3.5)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    figure.suptitle(f"1-D feature regression (n = {n} points, d = {d} features): predictive ±2 std")
    return figure
