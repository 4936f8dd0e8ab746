"""``python -m variational_nets sweep``: a tiny transfer sweep on a Dask LocalCluster on loopback
(resumed without recomputing), a local coordinate check with its outputs, and bad input."""
import json
import os

import pytest

from variational_nets.cli import main

TRANSFER = ["sweep", "--experiment", "transfer", "--task", "synthetic", "--widths", "8", "16",
            "--lrs", "0.05", "0.2", "--seeds", "0", "--batch-size", "256", "--quiet"]


@pytest.fixture(autouse=True)
def _one_blas_thread(monkeypatch):
    # Dask and spawned workers start new interpreters: the environment reaches them, the
    # threadpoolctl limit of this process would not. Tiny matrices: BLAS threads only spin.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")


def test_transfer_sweep_on_dask_resumes(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    results = tmp_path / "transfer.jsonl"
    summary = tmp_path / "summary.json"
    # settings as in tests/test_sweep.py: one worker process on loopback TCP, so points really
    # travel by pickle to another process through a scheduler address
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        argv = TRANSFER + ["--results", str(results), "--scheduler", cluster.scheduler_address,
                           "--json", str(summary)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        lines = results.read_text().splitlines()
        assert len(lines) == 2 * 2 * 2  # widths × lrs × parametrizations
        assert "best-step drift" in out and "test_nll" in out
        first = json.loads(summary.read_text())
        # second run: every point is in the file, nothing is recomputed or appended
        assert main(argv) == 0
        assert results.read_text().splitlines() == lines
        assert json.loads(summary.read_text())["curves"] == first["curves"]
    assert results.with_suffix(".csv").exists()
    assert set(first["drift"]) == {"sp", "mup"}


def test_second_local_run_reports_nothing_to_compute(tmp_path, capsys):
    results = tmp_path / "t.jsonl"
    argv = [a for a in TRANSFER if a != "--quiet"] + ["--results", str(results), "--processes", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert "8 already in t.jsonl, computing 0" in capsys.readouterr().err


def test_coordcheck_sweep_writes_table_json_and_figure(tmp_path, capsys):
    results, summary, figure = tmp_path / "cc.jsonl", tmp_path / "cc.json", tmp_path / "cc.png"
    argv = ["sweep", "--experiment", "coordcheck", "--widths", "8", "16", "--seeds", "0", "1",
            "--steps", "1", "--lrs", "0.1", "--results", str(results), "--processes", "1",
            "--json", str(summary), "--plot", str(figure), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "log-log slope" in out and "mup    sampled     1" in out
    data = json.loads(summary.read_text())
    assert data["config"]["lr"] == 0.1 and len(data["slopes"]) == 2 * 2 * 2 * 4
    assert figure.stat().st_size > 10_000
    assert len(results.read_text().splitlines()) == 2 * 2 * 2


@pytest.mark.parametrize("extra,match", [
    (["--experiment", "nope"], r"invalid experiment \(--experiment\)"),
    (["--experiment", "transfer", "--widths", "8", "x"], r"invalid widths \(--widths\).*'x'"),
    (["--experiment", "transfer", "--widths", "8", "0"], r"invalid widths \(--widths\)"),
    (["--experiment", "transfer", "--steps", "2"], "--steps"),
    (["--experiment", "coordcheck", "--lrs", "0.1", "0.2"], "exactly one base step"),
    (["--experiment", "coordcheck", "--task", "digits"], "does not take it"),
    (["--experiment", "transfer", "--task", "cifar10"], r"--data-dir"),
    (["--experiment", "transfer", "--backend", "tpu"], r"invalid backend"),
    (["--experiment", "transfer", "--processes", "two"], r"invalid processes"),
])
def test_bad_options_exit_2_with_one_line(extra, match, tmp_path, capsys):
    assert main(["sweep", "--results", str(tmp_path / "r.jsonl")] + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    import re
    assert re.search(match, err), err
    assert not os.path.exists(tmp_path / "r.jsonl")
