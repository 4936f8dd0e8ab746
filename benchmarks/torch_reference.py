"""The PyTorch reference of one IBVI training step, shared by the CPU and GPU benchmarks.

PyTorch is imported by the caller (it is not a dependency of the package). The step computes the
same objective as :func:`variational_nets.train.train_step` with the closed-form softmax bound on
the last layer: one weight sample ``w = μ + S z`` per variational hidden/input layer, SiLU, the
last layer's mean ``m`` and variance ``v = ‖S_oᵀ[h; 1]‖²``, loss ``logsumexp(m + v/2) − m_y``;
backward by autograd and ``torch.optim.SGD`` with one parameter group per tensor (μP steps).
"""
from __future__ import annotations

import numpy as np


def torch_step_factory(torch, model, lr, momentum, to_tensor=None):
    """A PyTorch copy of ``model`` (same values) and its step.

    Returns ``(step, objective, params, optimizer)``: ``step(x, labels, zs)`` does one training
    step and returns the loss, ``objective`` evaluates it, ``params`` maps the model's tensor names
    to the PyTorch tensors. ``to_tensor`` moves a NumPy/CuPy array to the wanted device (default:
    a CPU tensor).
    """
    if to_tensor is None:
        def to_tensor(array):
            return torch.tensor(np.array(array))
    params = {k: to_tensor(v).requires_grad_(True) for k, v in model.named_parameters().items()}
    mult = model.step_multipliers()
    optimizer = torch.optim.SGD([{"params": [p], "lr": lr * mult[k]} for k, p in params.items()],
                                lr=lr, momentum=momentum)
    n_layers = len(model.layers)
    ranks = [layer.rank for layer in model.layers]

    def objective(x, labels, zs):
        h = x
        for i in range(n_layers):
            w, b = params[f"layer{i}.weight"], params[f"layer{i}.bias"]
            if i == n_layers - 1:
                m = h @ w.T + b
                if ranks[i]:  # closed-form last layer: v_o = ‖S_oᵀ [h; 1]‖²
                    a = torch.einsum("ni,oir->nor", h, params[f"layer{i}.factor_weight"]) \
                        + params[f"layer{i}.factor_bias"]
                    m_plus = m + 0.5 * (a * a).sum(-1)
                else:
                    m_plus = m
                return (torch.logsumexp(m_plus, 1) - m.gather(1, labels[:, None])[:, 0]).mean()
            if ranks[i]:
                fw = params[f"layer{i}.factor_weight"]
                w = w + (fw.reshape(-1, ranks[i]) @ zs[i]).reshape(fw.shape[:2])
                b = b + params[f"layer{i}.factor_bias"] @ zs[i]
            h = torch.nn.functional.silu(h @ w.T + b)

    def step(x, labels, zs):
        optimizer.zero_grad(set_to_none=True)
        loss = objective(x, labels, zs)
        loss.backward()
        optimizer.step()
        return loss

    return step, objective, params, optimizer
