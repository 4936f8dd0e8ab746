"""CPU speed of one IBVI training step: variational_nets (NumPy) against PyTorch.

The same network in both: MLP d_in → W → W → W → d_out with SiLU, low-rank (rank R) covariance
factors on the input and output layers, μP step sizes, float32, momentum SGD 0.9; one step =
one weight sample for the batch, forward, closed-form softmax bound on the output layer,
backward, update. PyTorch computes the same step with autograd and ``torch.optim.SGD`` (one
parameter group per tensor for the μP step sizes).

Prints the time per step of each and the ratio ``numpy / torch`` (below 1: NumPy faster) at each
width; the target is parity or better. Both are measured in this run, interleaved, median of
``--repeats``. Before timing, the first-step objective of both is compared from identical
parameters and noise (a check that the two compute the same thing).

Usage: ``python benchmarks/bench_nets_cpu.py [--widths 64 256 1024] [--d-in 3072] [--rank 16]
[--batch 128] [--steps 5] [--repeats 3]``. PyTorch is imported lazily and is not a dependency
of the package; without it this script prints how to install it and exits 0.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from variational_nets.model import MLP  # noqa: E402
from variational_nets.train import train_state, train_step  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also when loaded by file path
from torch_reference import torch_step_factory  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--d-in", type=int, default=3072)
    parser.add_argument("--d-out", type=int, default=10)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed; this benchmark compares against it on the CPU.\n"
              "Install it for the benchmark only (not a package dependency):\n"
              "    pip install torch==2.13.0")
        return 0
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"variational_nets (NumPy {np.__version__}) vs PyTorch {torch.__version__} on the CPU, "
          f"{os.cpu_count()} cores; MLP {args.d_in}→W→W→W→{args.d_out}, rank-{args.rank} factors "
          f"on input/output layers, batch {args.batch}, float32, median of {args.repeats}×{args.steps} steps")
    print(f"{'width':>6s} {'numpy ms/step':>14s} {'torch ms/step':>14s} {'numpy/torch':>12s} {'check':>10s}")
    rng = np.random.default_rng(0)
    for width in args.widths:
        sizes = (args.d_in, width, width, width, args.d_out)
        model = MLP(sizes, np.random.default_rng(1), covariance="lowrank", rank=args.rank)
        x = rng.standard_normal((args.batch, args.d_in)).astype(np.float32)
        labels = rng.integers(0, args.d_out, args.batch)
        tstep, tobjective, _, _ = torch_step_factory(torch, model, 1e-3, 0.9)
        xt, lt = torch.from_numpy(x), torch.from_numpy(labels)
        # same parameters, same noise: the two objectives agree to float32 rounding
        noise_rng = np.random.default_rng(2)
        noise = model.sample_noise(noise_rng)
        zs = [None if z is None else torch.from_numpy(np.array(z)) for z in noise]
        state = train_state(model, 1e-3, 0.9, loss="softmax_ce")
        np_obj = train_step(model, state, x, labels, np.random.default_rng(2)).objective
        with torch.no_grad():
            t_obj = float(tobjective(xt, lt, zs))
        check = abs(np_obj - t_obj) / abs(t_obj)
        step_rng = np.random.default_rng(3)
        times = {"numpy": [], "torch": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(args.steps):
                train_step(model, state, x, labels, step_rng)
            times["numpy"].append((time.perf_counter() - start) / args.steps)
            start = time.perf_counter()
            for _ in range(args.steps):
                # the z draw and copy belong to the step, as in train_step
                zs = [None if z is None else torch.from_numpy(np.array(z))
                      for z in model.sample_noise(step_rng)]
                tstep(xt, lt, zs)
            times["torch"].append((time.perf_counter() - start) / args.steps)
        tn, tt = statistics.median(times["numpy"]), statistics.median(times["torch"])
        print(f"{width:>6d} {1e3 * tn:>14.2f} {1e3 * tt:>14.2f} {tn / tt:>12.2f} {check:>10.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
