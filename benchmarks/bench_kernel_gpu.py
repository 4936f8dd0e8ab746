"""Micro-benchmark of the fused factor update against unfused routes, on one GPU, in one run.

For a factor of shape (P, R) (R = 16 by default) and P in 1e6, 1e7, 5e7, times one SGD-with-
momentum step on the factor, including forming its gradient g zᵀ where a route needs it:

  fused          variational_nets.kernels.fused_factor_momentum_update (one pass, no g zᵀ)
  fused_bf16     the same kernel with the buffer stored as bfloat16 (float32 only; the
                 optimizer's factor_momentum="bfloat16"): 12 instead of 16 bytes per element
  cupy_two_step  g zᵀ materialized, then a one-pass CuPy ElementwiseKernel momentum update
                 (the best unfused route: what a fused optimizer would do)
  cupy_naive     g zᵀ materialized, then buf *= m; buf += grad; factor -= lr * buf
  torch_foreach  torch.optim.SGD(foreach=True) (PyTorch's default on CUDA), grad = outer(g, z)
  torch_fused    torch.optim.SGD(fused=True), where the installed PyTorch has it

Each route first takes one step from the same state and is compared with the fused kernel
(max |difference| / max |value|), then is timed: median over --repeats CUDA-event timings
of single steps after --warmup steps. "model GB/s" divides the route's own memory traffic
(model_words_per_elem x P x R words, from the count in the kernels module docstring) by its
time; "useful GB/s" divides the fused kernel's minimal traffic (4 P R words) by the route's
time, so it compares routes on one scale. Ratios are time(route) / time(fused). The events
enclose the whole call, Python included, so at small P the launch overhead (tens of
microseconds) shows in the time: that is the cost per update a training loop pays.

Without a GPU (or without CuPy) it prints why and exits 0. PyTorch is optional (rows skipped
with a message). The table is also written as JSON to --json PATH.

    python benchmarks/bench_kernel_gpu.py --json out/bench_kernel_gpu.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    from variational_nets.kernels import bfloat16_from_float32, fused_factor_momentum_update
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from variational_nets.kernels import bfloat16_from_float32, fused_factor_momentum_update

LR = 1e-3
MOMENTUM = 0.9

# Words of (P, R) traffic per step for each route (benchmarks/README.md has the count).
MODEL_WORDS = {
    "fused": 4,
    "fused_bf16": 3,      # factor read and write, plus two half-size buffer words
    "cupy_two_step": 6,   # write g zᵀ; read grad, buf, factor; write buf, factor
    "cupy_naive": 11,     # g zᵀ (1), buf *= m (2), buf += grad (3), lr * buf (2), -= (3)
    "torch_foreach": 9,   # g zᵀ (1), _foreach_mul_ (2), _foreach_add_ (3), _foreach_add_ (3)
    "torch_fused": 6,     # g zᵀ (1), one fused pass (5)
}
# Extra (P, R) arrays each route allocates per step beyond factor and buffer.
TEMP_ARRAYS = {"fused": 0, "fused_bf16": 0, "cupy_two_step": 1, "cupy_naive": 2, "torch_foreach": 1,
               "torch_fused": 1}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 5e7],
                        help="numbers of rows P of the factor (default: 1e6 1e7 5e7)")
    parser.add_argument("--rank", type=int, default=16, help="factor rank R (default 16)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    if args.rank < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--rank and --repeats must be >= 1, --warmup >= 0")
    if any(p < 1 for p in args.sizes):
        parser.error("--sizes must be >= 1")
    return args


def write_json(path, record):
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def find_cupy():
    """(cupy module or None, reason)."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        return None, f"CuPy is not importable ({type(exc).__name__}: {exc})"
    try:
        if not cupy.cuda.is_available():
            return None, "CuPy sees no CUDA device"
    except Exception as exc:
        return None, f"CuPy cannot query CUDA ({type(exc).__name__}: {exc})"
    return cupy, ""


def find_torch():
    try:
        import torch
    except Exception as exc:
        return None, f"PyTorch is not importable ({type(exc).__name__}): skipping its rows"
    if not torch.cuda.is_available():
        return None, "PyTorch has no CUDA device: skipping its rows"
    return torch, ""


def median_ms(step, make_events, repeats, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start, end = make_events()
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_ms(end))
    return statistics.median(times), min(times)


class CupyEvents:
    def __init__(self, cupy):
        self.cupy = cupy

    def __call__(self):
        cupy = self.cupy

        class Ev:
            def __init__(self):
                self.event = cupy.cuda.Event()

            def record(self):
                self.event.record()

            def synchronize(self):
                self.event.synchronize()

            def elapsed_ms(self, other):
                return cupy.cuda.get_elapsed_time(self.event, other.event)

        return Ev(), Ev()


class TorchEvents:
    def __init__(self, torch):
        self.torch = torch

    def __call__(self):
        torch = self.torch

        class Ev:
            def __init__(self):
                self.event = torch.cuda.Event(enable_timing=True)

            def record(self):
                self.event.record()

            def synchronize(self):
                self.event.synchronize()

            def elapsed_ms(self, other):
                return self.event.elapsed_time(other.event)

        return Ev(), Ev()


def rel_diff(xp, a, ref):
    scale = float(xp.abs(ref).max())
    return float(xp.abs(a - ref).max()) / scale if scale > 0 else float(xp.abs(a - ref).max())


def cupy_routes(cupy, dtype):
    momentum_kernel = cupy.ElementwiseKernel(
        "T grad, T lr, T momentum", "T buf, T factor",
        "buf = momentum * buf + grad; factor = factor - lr * buf",
        "bench_momentum_update")
    lr, m = dtype.type(LR), dtype.type(MOMENTUM)

    def fused(factor, buf, g, z):
        fused_factor_momentum_update(factor, buf, g, z, LR, MOMENTUM)

    def two_step(factor, buf, g, z):
        grad = g[:, None] * z
        momentum_kernel(grad, lr, m, buf, factor)

    def naive(factor, buf, g, z):
        grad = g[:, None] * z
        buf *= m
        buf += grad
        factor -= lr * buf

    routes = {"fused": fused, "cupy_two_step": two_step, "cupy_naive": naive}
    if dtype == np.float32:
        routes["fused_bf16"] = fused  # same call: the buffer it gets is bfloat16 (bench_size)
    return routes


def bench_size(cupy, torch, n_rows, rank, dtype, args, rows):
    rng = cupy.random.default_rng(args.seed)
    g = rng.standard_normal(n_rows, dtype=dtype)
    z = rng.standard_normal(rank, dtype=dtype)
    factor0 = rng.standard_normal((n_rows, rank), dtype=dtype)
    buf0 = rng.standard_normal((n_rows, rank), dtype=dtype)
    f_ref, b_ref = factor0.copy(), buf0.copy()
    fused_factor_momentum_update(f_ref, b_ref, g, z, LR, MOMENTUM)
    elements = n_rows * rank
    useful_bytes = MODEL_WORDS["fused"] * elements * dtype.itemsize
    timings = {}

    def record(route, med, best, diff):
        timings[route] = med
        model_bytes = MODEL_WORDS[route] * elements * dtype.itemsize
        rows.append({
            "P": n_rows, "R": rank, "dtype": dtype.name, "route": route,
            "median_ms": med, "min_ms": best,
            "model_words_per_elem": MODEL_WORDS[route],
            "gbps_model": model_bytes / (med * 1e-3) / 1e9,
            "gbps_useful": useful_bytes / (med * 1e-3) / 1e9,
            "temp_bytes": TEMP_ARRAYS[route] * elements * dtype.itemsize,
            "max_rel_diff_vs_fused": diff,
        })

    for route, step in cupy_routes(cupy, dtype).items():
        factor = factor0.copy()
        buf = bfloat16_from_float32(buf0) if route == "fused_bf16" else buf0.copy()
        step(factor, buf, g, z)
        diff = rel_diff(cupy, factor, f_ref)
        med, best = median_ms(lambda: step(factor, buf, g, z), CupyEvents(cupy),
                              args.repeats, args.warmup)
        record(route, med, best, diff)
        del factor, buf
        cupy.get_default_memory_pool().free_all_blocks()

    if torch is not None:
        tg, tz = torch.from_dlpack(g), torch.from_dlpack(z)
        t_ref = torch.from_dlpack(f_ref)
        for route, options in (("torch_foreach", {"foreach": True}),
                               ("torch_fused", {"fused": True})):
            param = torch.nn.Parameter(torch.from_dlpack(factor0).clone())
            try:
                opt = torch.optim.SGD([param], lr=LR, momentum=MOMENTUM, **options)
            except (TypeError, RuntimeError, ValueError) as exc:
                print(f"  {route}: not available in this PyTorch ({exc})")
                continue
            opt.state[param]["momentum_buffer"] = torch.from_dlpack(buf0).clone()

            def step():
                param.grad = torch.outer(tg, tz)
                opt.step()

            with torch.no_grad():
                step()
                diff = float((param - t_ref).abs().max() / t_ref.abs().max())
            med, best = median_ms(step, TorchEvents(torch), args.repeats, args.warmup)
            record(route, med, best, diff)
            del param, opt
            torch.cuda.empty_cache()

    # Give the pooled memory back before the next size (and PyTorch's allocator) needs it.
    del factor0, buf0, f_ref, b_ref
    cupy.get_default_memory_pool().free_all_blocks()
    for row in rows:
        if row["P"] == n_rows and "fused" in timings:
            row["ratio_to_fused"] = row["median_ms"] / timings["fused"]


def device_info(cupy):
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props.get("name", b"?")
    name = name.decode() if isinstance(name, bytes) else str(name)
    info = {"name": name, "compute_capability": dev.compute_capability,
            "cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion()}
    # Newer CUDA releases dropped memoryClockRate from the properties; report it if present.
    clock_khz, bus_bits = props.get("memoryClockRate"), props.get("memoryBusWidth")
    if clock_khz and bus_bits:
        info["peak_gbps_nominal"] = 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    return info


def print_table(rows):
    header = (f"{'P':>10} {'route':>14} {'median ms':>10} {'model GB/s':>11} "
              f"{'useful GB/s':>12} {'x fused':>8} {'temp MB':>9} {'rel diff':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['P']:>10.3g} {r['route']:>14} {r['median_ms']:>10.3f} "
              f"{r['gbps_model']:>11.1f} {r['gbps_useful']:>12.1f} "
              f"{r.get('ratio_to_fused', float('nan')):>8.2f} {r['temp_bytes'] / 1e6:>9.0f} "
              f"{r['max_rel_diff_vs_fused']:>9.1e}")


def main(argv=None) -> int:
    args = parse_args(argv)
    record = {"benchmark": "fused factor momentum update", "lr": LR, "momentum": MOMENTUM,
              "rank": args.rank, "dtype": args.dtype, "repeats": args.repeats, "rows": []}
    cupy, reason = find_cupy()
    if cupy is None:
        print(f"no CUDA GPU available: {reason}; skipping the GPU benchmark.")
        record["skipped"] = reason
        write_json(args.json, record)
        return 0
    torch, torch_reason = find_torch()
    if torch is None:
        print(torch_reason)
    record["device"] = device_info(cupy)
    record["torch"] = None if torch is None else torch.__version__
    print(f"device: {record['device']}; torch: {record['torch']}")
    dtype = np.dtype(args.dtype)
    start = time.perf_counter()
    rows = record["rows"]
    for size in args.sizes:
        bench_size(cupy, torch, int(size), args.rank, dtype, args, rows)
    record["wall_s"] = time.perf_counter() - start
    print_table(rows)
    print(f"total {record['wall_s']:.1f} s")
    write_json(args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
