"""A plain-PyTorch IBVI trainer for the linear model, wired through the conformance protocol.

The mean and the covariance factor are ``torch.nn.Parameter`` tensors in float64, trained by
``torch.optim.SGD`` on the expected loss ``E_q ‖y − Xw‖²`` (closed form, or Monte Carlo with one
reparametrized draw ``w = μ + Lz`` per sample shared by the whole batch), started at the prior,
without a KL term or weight decay. Per-coordinate step multipliers scale the gradients before
the optimizer step, which for SGD (with or without momentum) is the same as per-coordinate
learning rates. :class:`~proofs_check.conform.TensorTrainer` turns the three methods into a
trainer the kit can call. Check it (PyTorch is not a dependency of this project)::

    python -m proofs_check.conform examples.pytorch_ibvi_trainer:TorchIBVITrainer
    python -m proofs_check.conform examples.pytorch_ibvi_trainer:TorchIBVITrainer --optimizer momentum --mc-samples 1
    python -m proofs_check.conform examples.pytorch_ibvi_trainer:TorchIBVITrainer --step-multipliers random

The same adapter shape fits a trainer built on a framework's layers (for example a variational
linear layer): ``start`` copies ``prior_mean``/``prior_factor`` into the layer's tensors and builds
its optimizer, ``step`` runs one optimizer step, ``state`` copies the tensors out.
"""
from __future__ import annotations

import numpy as np
import torch

from proofs_check.conform import TensorTrainer


class TorchIBVITrainer(TensorTrainer):
    """IBVI on ``y ≈ Xw`` with ``w ~ N(mean, factor · factorᵀ)``, by ``torch.optim.SGD`` in float64."""

    def start(self, X, y, prior_mean, prior_factor, lr, seed, options):
        def tensor(array):  # a float64 copy (the kit's arrays may be read-only)
            return torch.from_numpy(np.array(array, dtype=np.float64))

        self.X, self.y = tensor(X), tensor(y)
        self.mean, self.factor = torch.nn.Parameter(tensor(prior_mean)), torch.nn.Parameter(tensor(prior_factor))
        self.options = options
        self.generator = torch.Generator().manual_seed(int(seed))
        self.multipliers = None if options.step_multipliers is None else tensor(options.step_multipliers)
        momentum = options.momentum if options.optimizer == "momentum" else 0.0
        lr_factor = lr if options.lr_factor is None else options.lr_factor
        self.optimizer = torch.optim.SGD([{"params": [self.mean], "lr": lr},
                                          {"params": [self.factor], "lr": lr_factor}], momentum=momentum)

    def expected_loss(self, XB, yB):
        """``‖y_B − X_Bμ‖² + ‖X_BL‖²_F``, or its Monte Carlo estimate with samples shared by the batch."""
        samples = self.options.mc_samples
        if samples == 0:
            return torch.sum((yB - XB @ self.mean) ** 2) + torch.sum((XB @ self.factor) ** 2)
        Z = torch.randn(self.factor.shape[1], samples, generator=self.generator, dtype=torch.float64)
        weights = self.mean[:, None] + self.factor @ Z  # (d, M): one draw per sample, for every row
        return torch.sum((yB[:, None] - XB @ weights) ** 2) / samples

    def step(self):
        n = self.X.shape[0]
        rows = self.options.batch_size or n
        if rows == n:
            XB, yB = self.X, self.y
        else:
            batch = torch.randperm(n, generator=self.generator)[:rows]
            XB, yB = self.X[batch], self.y[batch]
        self.optimizer.zero_grad()
        loss = (n / rows) * self.expected_loss(XB, yB)
        loss.backward()
        if self.multipliers is not None:
            self.mean.grad.mul_(self.multipliers)
            self.factor.grad.mul_(self.multipliers[:, None])
        self.optimizer.step()

    def state(self):
        return self.mean.detach().numpy().copy(), self.factor.detach().numpy().copy()
