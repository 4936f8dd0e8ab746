"""GPU cost of one IBVI training step: variational_nets on CuPy (fused / unfused factor update)
against PyTorch doing the same step on the same GPU, in the same run.

The step (identical math in every route): MLP d_in → W → W → W → 10 with SiLU, μP, float32,
rank-R covariance factors on the input and output layers (R = 16), batch 128; one weight sample
``w = μ + S z`` of the input layer per step (z drawn on the host, as in ``train_step``), forward,
closed-form Jensen bound of the softmax cross-entropy on the output layer
(``−m_y + log Σ_c exp(m_c + v_c/2)``, ``v = ‖Sᵀ[h; 1]‖²``), backward (hand-written in ours,
autograd in PyTorch), momentum SGD 0.9 with the μP step of every tensor (``torch.optim.SGD`` with
one parameter group per tensor). The deterministic network is the same MLP without factors.

Routes, per width:
  ours_fused     variational_nets, CuPy, factor update by the fused kernel (sgd fused=True)
  ours_unfused   the same model, factor update as CuPy array expressions (fused=False)
  ours_bf16      fused, with the factors' momentum buffers stored as bfloat16
                 (factor_momentum="bfloat16": 6 instead of 8 bytes of state per factor element;
                 not PyTorch's exact update any more, see benchmarks/README.md)
  torch          PyTorch, parameters cloned from ours (same initial values)
  ours_det / torch_det   the deterministic network, for the memory overhead

Time per step: median over ``--steps`` steps after ``--warmup`` steps, each step synchronized
(``Device.synchronize`` / ``torch.cuda.synchronize``) and timed with ``perf_counter``.
Peak memory: bytes allocated at the peak of the warm-up steps, including parameters, optimizer
state, data and every temporary. Ours: the live parameters, buffers and data plus the peak of a
CuPy memory hook that follows every pool allocation and free (rounded sizes); if the hook is not
available, the pool's ``total_bytes()`` after the steps (an upper bound). PyTorch:
``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``. Memory overhead =
peak(IBVI) / peak(deterministic) − 1.

Ratios: ``speed`` = time(torch) / time(ours_fused) (above 1: ours faster; target: > 1 at
W ≥ 2048); ``fused gain`` = time(ours_unfused) / time(ours_fused); ``overhead ratio`` =
overhead(ours) / overhead(torch) with overheads relative to each one's own deterministic net;
``extra ratio`` = (peak(ours) − peak(ours, det)) / (peak(torch) − peak(torch, det)), the extra
bytes that variational layers cost, compared directly (target ≤ 0.5). The extra bytes are
dominated by the rank-R factor state: ours keeps the factor and its momentum buffer (2·P·R
words), PyTorch also the factor's gradient g zᵀ (3·P·R), so 2/3 is the floor of that ratio
while the update is PyTorch's exact one. ``extra bf16`` is the same ratio for ``ours_bf16``,
whose factor state is 1.5·P·R words: its floor is 1/2. Before timing, the first-step objective of ours
and PyTorch is compared from identical parameters and noise (``check`` = relative difference;
float32 rounding, about 1e-6).

Without a GPU (CuPy missing or no device) it prints why and exits 0. PyTorch is optional
(imported lazily; its columns are skipped with a message when it is missing or has no CUDA).
``--backend numpy`` runs the same code on the CPU (NumPy and PyTorch CPU; peak memory from
tracemalloc for ours, not measured for PyTorch) as a smoke test of the code paths:

    python benchmarks/bench_ibvi_gpu.py --json out/bench_ibvi.json
    python benchmarks/bench_ibvi_gpu.py --backend numpy --widths 64 128 --steps 3 --warmup 1
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

try:
    import variational_nets  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from variational_nets.backend import cupy_available  # noqa: E402
from variational_nets.model import MLP  # noqa: E402
from variational_nets.train import Objective, loss_and_grads, train_state, train_step  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by file path (tests)
import torch_reference  # noqa: E402

LR = 1e-3
MOMENTUM = 0.9
ROUTES = ("ours_fused", "ours_unfused", "ours_bf16", "torch", "ours_det", "torch_det")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--backend", choices=("cupy", "numpy"), default="cupy")
    parser.add_argument("--d-in", type=int, default=3072)
    parser.add_argument("--d-out", type=int, default=10)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (memory "
                                                              "is measured over them)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    args = parser.parse_args(argv)
    for name in ("d_in", "d_out", "rank", "batch", "steps", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(w < 1 for w in args.widths):
        parser.error("--widths must be positive")
    return args


# --- backends ---------------------------------------------------------------------------------

class Backend:
    """Synchronization, memory measurement and clean-up for NumPy or CuPy (same interface)."""

    def __init__(self, name):
        self.name = name
        if name == "cupy":
            import cupy

            self.xp = cupy
            self.pool = cupy.get_default_memory_pool()
        else:
            self.xp = np
            self.pool = None

    def sync(self):
        if self.name == "cupy":
            self.xp.cuda.Device().synchronize()

    def free(self):
        gc.collect()
        if self.name == "cupy":
            self.sync()
            self.pool.free_all_blocks()

    def peak_bytes(self, run, live_bytes):
        """Peak bytes allocated while ``run()`` executes, counting ``live_bytes`` already held."""
        if self.name == "numpy":
            tracemalloc.start()
            try:
                run()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return live_bytes + peak, "tracemalloc"
        hook = _cupy_peak_hook(self.xp)
        if hook is None:
            run()
            self.sync()
            return int(self.pool.total_bytes()), "pool total_bytes"
        with hook:
            run()
            self.sync()
        return live_bytes + hook.peak, "memory hook"


def _cupy_peak_hook(cupy):
    """A CuPy memory hook tracking the peak of (allocated − freed) bytes, or None."""
    try:
        from cupy.cuda import memory_hook
    except Exception:
        return None

    class PeakHook(memory_hook.MemoryHook):
        name = "PeakHook"

        def __init__(self):
            self.current = 0
            self.peak = 0

        def malloc_postprocess(self, **kwargs):
            self.current += int(kwargs.get("mem_size", kwargs.get("size", 0)))
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, **kwargs):
            self.current -= int(kwargs.get("mem_size", 0))

    return PeakHook()


def find_torch(backend_name, skip):
    if skip:
        return None, "PyTorch left out (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed: its columns are skipped"
    if backend_name == "cupy" and not torch.cuda.is_available():
        return None, "PyTorch has no CUDA device here: its columns are skipped"
    return torch, ""


class TorchDevice:
    def __init__(self, torch, backend_name):
        self.torch = torch
        self.cuda = backend_name == "cupy"
        self.device = torch.device("cuda" if self.cuda else "cpu")

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def free(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def tensor(self, array):
        """A torch-owned copy of a NumPy or CuPy array on this device."""
        torch = self.torch
        if isinstance(array, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device).clone()
        return torch.from_dlpack(array).clone()  # device-to-device copy, owned by torch

    def peak_bytes(self, run):
        if not self.cuda:
            run()
            return math.nan, "not measured on the CPU"
        self.torch.cuda.synchronize()
        self.torch.cuda.reset_peak_memory_stats()
        run()
        self.torch.cuda.synchronize()
        return int(self.torch.cuda.max_memory_allocated()), "max_memory_allocated"


# --- the PyTorch step -------------------------------------------------------------------------

def torch_step_factory(dev, model, lr, momentum):
    """PyTorch copy of ``model`` on ``dev`` (same values): step, objective, params, optimizer and
    the bytes of its parameters."""
    step, objective, tparams, opt = torch_reference.torch_step_factory(dev.torch, model, lr, momentum,
                                                                      to_tensor=dev.tensor)
    live = sum(int(p.numel()) * p.element_size() for p in tparams.values())
    return step, objective, tparams, opt, live


def torch_noise(dev, model, rng):
    """The next weight sample's z of every layer as torch tensors (drawn like train_step does)."""
    return [None if z is None else dev.tensor(z) for z in model.sample_noise(rng)]


# --- measurements -----------------------------------------------------------------------------

def timed(step, sync, steps):
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def nbytes(arrays):
    return int(sum(int(a.nbytes) for a in arrays))


def bench_ours(be, model, x, labels, fused, args, seed, factor_momentum="exact"):
    state = train_state(model, LR, MOMENTUM, loss="softmax_ce", fused=fused,
                        factor_momentum=factor_momentum)
    rng = np.random.default_rng(seed)
    live = nbytes(list(model.named_parameters().values()) + list(state.optimizer.buffers.values())
                  + [x, labels])

    def step():
        train_step(model, state, x, labels, rng)

    peak, how = be.peak_bytes(lambda: [step() for _ in range(args.warmup)], live)
    seconds = timed(step, be.sync, args.steps)
    del state
    return seconds, peak, how


def bench_torch(dev, model, x, labels, args, seed):
    step, _, tparams, opt, live = torch_step_factory(dev, model, LR, MOMENTUM)
    xt, lt = dev.tensor(x), dev.tensor(labels)
    rng = np.random.default_rng(seed)

    def one():
        step(xt, lt, torch_noise(dev, model, rng))

    peak, how = dev.peak_bytes(lambda: [one() for _ in range(args.warmup)])
    seconds = timed(one, dev.sync, args.steps)
    del step, tparams, opt, xt, lt
    return seconds, peak, how


def first_step_check(dev, model, x, labels):
    """|objective(ours) − objective(torch)| / |objective(torch)| at the same parameters and z."""
    _, objective, *_ = torch_step_factory(dev, model, LR, MOMENTUM)
    rng_ours, rng_torch = np.random.default_rng(7), np.random.default_rng(7)
    zs = torch_noise(dev, model, rng_torch)
    with dev.torch.no_grad():
        t_obj = float(objective(dev.tensor(x), dev.tensor(labels), zs))
    ours, _, _ = loss_and_grads(model, x, labels, Objective("softmax_ce"), model.sample_noise(rng_ours))
    return abs(ours - t_obj) / abs(t_obj)


def run_width(be, torch_dev, width, args, rows):
    xp = be.xp
    rng = np.random.default_rng([width, 0])
    x = xp.asarray(rng.standard_normal((args.batch, args.d_in)).astype(np.float32))
    labels = xp.asarray(rng.integers(0, args.d_out, args.batch))
    sizes = (args.d_in, width, width, width, args.d_out)
    record = {"width": width}

    det = MLP(sizes, np.random.default_rng([width, 1]), variational="none", backend=be.name)
    record["ours_det_ms"], record["ours_det_peak_bytes"], record["ours_memory_method"] = (
        _ms_bytes(bench_ours(be, det, x, labels, True, args, 2)))
    if torch_dev is not None:
        record["torch_det_ms"], record["torch_det_peak_bytes"], record["torch_memory_method"] = (
            _ms_bytes(bench_torch(torch_dev, det, x, labels, args, 2)))
        torch_dev.free()
    del det
    be.free()

    model = MLP(sizes, np.random.default_rng([width, 1]), covariance="lowrank", rank=args.rank,
                backend=be.name)
    if torch_dev is not None:
        record["check"] = first_step_check(torch_dev, model, x, labels)
        torch_dev.free()
        # PyTorch starts from the initial values, before ours trains them
        record["torch_ms"], record["torch_peak_bytes"], _ = (
            _ms_bytes(bench_torch(torch_dev, model, x, labels, args, 3)))
        torch_dev.free()
    for key, fused, factor_momentum in (("ours_fused", True, "exact"),
                                        ("ours_unfused", False, "exact"),
                                        ("ours_bf16", True, "bfloat16")):
        record[f"{key}_ms"], record[f"{key}_peak_bytes"], _ = (
            _ms_bytes(bench_ours(be, model, x, labels, fused, args, 3, factor_momentum)))
        be.free()
    del model, x, labels
    be.free()
    _ratios(record)
    rows.append(record)
    print_row(record)


def _ms_bytes(result):
    seconds, peak, how = result
    return 1e3 * seconds, peak, how


def _ratios(r):
    nan = math.nan
    r["fused_gain"] = r["ours_unfused_ms"] / r["ours_fused_ms"]
    r["speed_vs_torch"] = r.get("torch_ms", nan) / r["ours_fused_ms"]
    r["ours_overhead"] = r["ours_fused_peak_bytes"] / r["ours_det_peak_bytes"] - 1.0
    r["torch_overhead"] = r.get("torch_peak_bytes", nan) / r.get("torch_det_peak_bytes", nan) - 1.0
    r["overhead_ratio"] = r["ours_overhead"] / r["torch_overhead"] if r["torch_overhead"] else nan
    torch_extra = r.get("torch_peak_bytes", nan) - r.get("torch_det_peak_bytes", nan)
    r["extra_ratio"] = (r["ours_fused_peak_bytes"] - r["ours_det_peak_bytes"]) / torch_extra if torch_extra else nan
    r["extra_ratio_bf16"] = ((r["ours_bf16_peak_bytes"] - r["ours_det_peak_bytes"]) / torch_extra
                             if torch_extra else nan)
    r["speed_vs_torch_bf16"] = r.get("torch_ms", nan) / r["ours_bf16_ms"]


HEADER = (f"{'width':>6s} {'fused ms':>9s} {'unfused ms':>10s} {'torch ms':>9s} {'det ms':>7s} "
          f"{'tdet ms':>8s} {'torch/fused':>11s} {'unf/fused':>9s} {'ours MB':>9s} {'det MB':>8s} "
          f"{'torch MB':>9s} {'tdet MB':>8s} {'ovh ours':>8s} {'ovh torch':>9s} {'ovh ratio':>9s} "
          f"{'extra ratio':>11s} {'bf16 ms':>8s} {'bf16 MB':>8s} {'extra bf16':>10s} "
          f"{'check':>8s}")


def print_row(r):
    mb = 1.0 / 2 ** 20
    g = r.get
    nan = math.nan
    print(f"{r['width']:>6d} {r['ours_fused_ms']:>9.2f} {r['ours_unfused_ms']:>10.2f} "
          f"{g('torch_ms', nan):>9.2f} {r['ours_det_ms']:>7.2f} {g('torch_det_ms', nan):>8.2f} "
          f"{r['speed_vs_torch']:>11.2f} {r['fused_gain']:>9.2f} "
          f"{r['ours_fused_peak_bytes'] * mb:>9.1f} {r['ours_det_peak_bytes'] * mb:>8.1f} "
          f"{g('torch_peak_bytes', nan) * mb:>9.1f} {g('torch_det_peak_bytes', nan) * mb:>8.1f} "
          f"{r['ours_overhead']:>8.1%} {r['torch_overhead']:>9.1%} {r['overhead_ratio']:>9.2f} "
          f"{r['extra_ratio']:>11.2f} {r['ours_bf16_ms']:>8.2f} "
          f"{r['ours_bf16_peak_bytes'] * mb:>8.1f} {r['extra_ratio_bf16']:>10.3f} "
          f"{g('check', nan):>8.1e}", flush=True)


def device_info(be):
    if be.name == "numpy":
        return "CPU (NumPy smoke mode)"
    props = be.xp.cuda.runtime.getDeviceProperties(be.xp.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backend == "cupy" and not cupy_available():
        print("No GPU: CuPy is missing or sees no CUDA device. This benchmark measures an IBVI "
              "training step on a GPU; nothing was run. (Smoke test on the CPU: "
              "--backend numpy --widths 64 128.)")
        return 0
    be = Backend(args.backend)
    torch, reason = find_torch(args.backend, args.no_torch)
    if torch is None:
        print(reason)
    torch_dev = None if torch is None else TorchDevice(torch, args.backend)
    record = {"device": device_info(be), "backend": args.backend,
              "torch": None if torch is None else torch.__version__,
              "numpy": np.__version__, "settings": {k: v for k, v in vars(args).items() if k != "json"},
              "rows": []}
    if args.backend == "cupy":
        record["cupy"] = be.xp.__version__
    print(f"device: {record['device']}; torch {record['torch']}; MLP {args.d_in}→W→W→W→{args.d_out}, "
          f"rank-{args.rank} factors on input/output layers, batch {args.batch}, float32, μP, "
          f"momentum {MOMENTUM}; median of {args.steps} steps after {args.warmup} warm-up steps")
    print(HEADER)
    start = time.perf_counter()
    for width in args.widths:
        run_width(be, torch_dev, width, args, record["rows"])
        record["seconds"] = time.perf_counter() - start
        write_json(args.json, record)  # after every width: a run cut short keeps its rows
    print(f"total {record['seconds']:.1f} s; torch/fused > 1: ours faster (target at W >= 2048); "
          f"ovh ratio = relative memory overhead over each deterministic net, ours / torch; "
          f"extra ratio = extra bytes over the deterministic net, ours / torch (target <= 0.5; floor 2/3, "
          f"see the module docstring); extra bf16 = the same with bfloat16 factor buffers (floor 1/2)")
    return 0


def write_json(path, record):
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(record, fh, indent=2, default=lambda v: None)


if __name__ == "__main__":
    sys.exit(main())
