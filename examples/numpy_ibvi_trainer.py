"""A plain NumPy IBVI trainer for the linear model, written to the conformance protocol.

IBVI trains a Gaussian ``q = N(mean, factor · factorᵀ)`` by (stochastic) gradient descent on the
expected loss only, ``E_q ‖y − Xw‖² = ‖y − Xμ‖² + ‖XL‖²_F``, starting at the prior: no KL term, no
weight decay (docs/theory.md §1). Check it against the theorems::

    python -m proofs_check.conform examples.numpy_ibvi_trainer:train
    python -m proofs_check.conform examples.numpy_ibvi_trainer:train --optimizer sgd --batch-size 2
    python -m proofs_check.conform examples.numpy_ibvi_trainer:train --mc-samples 1 --optimizer momentum
    python -m proofs_check.conform examples.numpy_ibvi_trainer:train --step-multipliers random

or from a test: ``assert_conforms(train, optimizer="sgd", batch_size=2)`` (see docs/conformance.md).
Cost per step ``O(b·d·r·(1 + M))`` for a batch of ``b`` rows, factor width ``r`` and ``M`` samples.
"""
from __future__ import annotations

import numpy as np

from proofs_check.conform import TrainerResult, TrainerTrace


def train(X, y, prior_mean, prior_factor, lr, steps, seed, *, optimizer="gd", batch_size=None, momentum=0.9,
          mc_samples=0, step_multipliers=None, lr_factor=None, record_every=0) -> TrainerResult:
    """Train ``(mean, factor)`` from the prior for ``steps`` steps; options as in the protocol.

    Gradients of the expected loss (exact: ``mc_samples = 0``) are ``−2Xᵀ(y − Xμ)`` and ``2XᵀXL``;
    with ``M`` samples ``w = μ + Lz`` shared by every row of the batch they are ``−2X_Bᵀr`` and
    ``−2X_Bᵀr zᵀ`` averaged over the samples (``r = y_B − X_Bw``), times ``n/b`` for a batch of ``b``.
    Heavy ball as ``torch.optim.SGD``: ``v ← m v + g``, ``θ ← θ − η D v``.

    Raises
    ------
    ValueError
        For an unknown ``optimizer`` or ``"sgd"`` without ``batch_size``.
    """
    if optimizer not in ("gd", "sgd", "momentum"):
        raise ValueError(f"optimizer must be 'gd', 'sgd' or 'momentum', got {optimizer!r}")
    if optimizer == "sgd" and batch_size is None:
        raise ValueError("optimizer='sgd' needs batch_size")
    rng = np.random.default_rng(seed)
    n, d = X.shape
    rows = n if batch_size is None else batch_size
    beta = momentum if optimizer == "momentum" else 0.0
    D = np.ones(d) if step_multipliers is None else np.asarray(step_multipliers, dtype=np.float64)
    lr_factor = lr if lr_factor is None else lr_factor
    mean, factor = np.array(prior_mean, dtype=np.float64), np.array(prior_factor, dtype=np.float64)
    velocity_mean, velocity_factor = np.zeros_like(mean), np.zeros_like(factor)
    recorded, means, factors = [], [], []

    def record(t):
        recorded.append(t)
        means.append(mean.copy())
        factors.append(factor.copy())

    if record_every:
        record(0)
    for t in range(1, steps + 1):
        if rows == n:
            XB, yB = X, y
        else:
            batch = rng.choice(n, size=rows, replace=False)
            XB, yB = X[batch], y[batch]
        scale = n / rows
        if mc_samples == 0:
            grad_mean = -2.0 * scale * XB.T @ (yB - XB @ mean)
            grad_factor = 2.0 * scale * XB.T @ (XB @ factor)
        else:
            Z = rng.standard_normal((factor.shape[1], mc_samples))  # one draw per sample, shared by the batch
            residual = yB[:, None] - XB @ (mean[:, None] + factor @ Z)  # (b, M)
            grad_mean = -2.0 * scale * XB.T @ residual.mean(axis=1)
            grad_factor = -2.0 * scale * XB.T @ residual @ Z.T / mc_samples
        velocity_mean = beta * velocity_mean + grad_mean
        velocity_factor = beta * velocity_factor + grad_factor
        mean = mean - lr * D * velocity_mean
        factor = factor - lr_factor * D[:, None] * velocity_factor
        if record_every and (t % record_every == 0 or t == steps):
            record(t)
    trace = TrainerTrace(np.array(recorded), np.stack(means), np.stack(factors)) if record_every else None
    return TrainerResult(mean, factor, trace)
