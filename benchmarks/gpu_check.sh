#!/usr/bin/env bash
# GPU checks of issue 5, in one run (about 3-5 minutes; hard limit 7.5 minutes):
#   1. every test of a CuPy code path (fused kernel, backends, fused training step),
#   2. the fused-kernel micro-benchmark (benchmarks/bench_kernel_gpu.py),
#   3. the IBVI training-step benchmark against PyTorch (benchmarks/bench_ibvi_gpu.py).
# Run from anywhere: bash benchmarks/gpu_check.sh. Logs and JSON go to $OUT (default
# ./gpu_check_out). The package need not be installed (PYTHONPATH=repository root); no network.
# Each part has its own `timeout`, so one that hangs cannot eat the others' time; the exit
# status is that of the tests (a benchmark that fails or times out is reported, not fatal).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
start=$SECONDS

nvidia-smi -L 2>&1 | tee "$OUT/nvidia_smi.txt"
python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'gpu', cupy.cuda.is_available())" 2>&1 | tee -a "$OUT/nvidia_smi.txt"

echo "== tests of the CuPy code paths (limit 150 s)"
# -k keeps every test that runs CuPy: the xp-fixture tests ([cupy] ids, 'backend' names), the
# gpu-marked ones (-k matches marker names) and the fused-update tests; g++ shim tests stay out.
timeout -k 10 150 python3 -m pytest -q -x -p no:cacheprovider -rs \
    tests/test_kernels.py tests/variational_nets -k "cupy or gpu or fused or backend" \
    2>&1 | tee "$OUT/pytest.log"
tests_rc=${PIPESTATUS[0]}
echo "tests exit status $tests_rc ($((SECONDS - start)) s so far)"

echo "== fused-kernel micro-benchmark (limit 90 s)"
timeout -k 10 90 python3 benchmarks/bench_kernel_gpu.py --json "$OUT/bench_kernel.json" \
    2>&1 | tee "$OUT/bench_kernel.log"
echo "bench_kernel exit status ${PIPESTATUS[0]} ($((SECONDS - start)) s so far)"

echo "== IBVI step benchmark, CuPy fused / unfused vs PyTorch (limit 190 s)"
timeout -k 10 190 python3 benchmarks/bench_ibvi_gpu.py --json "$OUT/bench_ibvi.json" \
    2>&1 | tee "$OUT/bench_ibvi.log"
echo "bench_ibvi exit status ${PIPESTATUS[0]} ($((SECONDS - start)) s in all)"
exit "$tests_rc"
