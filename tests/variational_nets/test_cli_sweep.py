"""``python -m variational_nets sweep transfer|coordcheck``: a tiny transfer sweep on a Dask
LocalCluster on loopback (resumed without recomputing), a local coordinate check with its
outputs, bad input (one line, exit 2, nothing written), a grid that diverges everywhere (one
line, exit 1), and SIGTERM on a sweep with two worker processes (exit 143 within 2 s, no
process left, finished points kept, the resume command works)."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from variational_nets.cli import PROG, main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRANSFER = ["sweep", "transfer", "--task", "synthetic", "--widths", "8", "16", "--lrs", "0.05", "0.2",
            "--seeds", "0", "--batch-size", "256", "--quiet"]


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
    # one worker process on loopback TCP, so points really travel by pickle to another process
    # through a scheduler address
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
    assert set(first["drift"]) == {"sp", "mup"}
    assert sorted(os.listdir(tmp_path)) == ["summary.json", "transfer.jsonl"]  # no CSV unless asked


def test_second_local_run_reports_nothing_to_compute(tmp_path, capsys):
    results = tmp_path / "t.jsonl"
    argv = [a for a in TRANSFER if a != "--quiet"] + ["--results", str(results), "--processes", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert "8 already in t.jsonl, computing 0" in capsys.readouterr().err


def test_coordcheck_sweep_writes_table_csv_json_and_figure(tmp_path, capsys):
    results, summary, figure = tmp_path / "cc.jsonl", tmp_path / "cc.json", tmp_path / "cc.png"
    argv = ["sweep", "coordcheck", "--widths", "8", "16", "--seeds", "0", "1", "--steps", "1",
            "--lr", "0.1", "--results", str(results), "--processes", "1", "--csv", str(tmp_path / "cc.csv"),
            "--json", str(summary), "--plot", str(figure), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "log-log slope" in out and "mup    sampled     1" in out
    data = json.loads(summary.read_text())
    assert data["config"]["lr"] == 0.1 and len(data["slopes"]) == 2 * 2 * 2 * 4
    assert figure.stat().st_size > 10_000
    assert len(results.read_text().splitlines()) == 2 * 2 * 2
    assert len((tmp_path / "cc.csv").read_text().splitlines()) == 1 + 2 * 2 * 2
    assert sorted(os.listdir(tmp_path)) == ["cc.csv", "cc.json", "cc.jsonl", "cc.png"]


def test_csv_without_results_comes_from_the_temporary_store(tmp_path, capsys):
    assert main(TRANSFER + ["--processes", "1", "--csv", str(tmp_path / "t.csv")]) == 0
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 1 + 8
    assert os.listdir(tmp_path) == ["t.csv"]


def test_a_grid_that_diverges_everywhere_says_so_in_one_line(tmp_path, capsys):
    argv = ["sweep", "transfer", "--task", "synthetic", "--widths", "8", "16", "--lrs", "1e5", "1e6",
            "--seeds", "0", "--processes", "1", "--quiet", "--json", str(tmp_path / "s.json")]
    assert main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["every base step (1e+05, 1e+06) diverged for sp at widths 8, 16; mup at widths 8, 16: "
                   "no best step to compare; try smaller --lrs"]
    summary = json.loads((tmp_path / "s.json").read_text(), parse_constant=pytest.fail)
    assert summary["drift"]["sp"]["train_loss"] == "nan"  # strict JSON: no NaN literal


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD = [
    (["transfer", "--widths", "8", "x"], "--widths", "expected a positive integer, got 'x'"),
    (["transfer", "--widths", "8", "0"], "--widths", "expected a positive integer, got '0'"),
    (["transfer", "--widths", "8"], "--widths", "expected at least two values (a transfer compares two)"),
    (["transfer", "--lrs", "0.1", "0.1"], "--lrs", "expected distinct values, got values that repeat"),
    (["transfer", "--seeds", "-1"], "--seeds", "expected an integer >= 0, got '-1'"),
    (["transfer", "--steps", "2"], None, "unrecognized arguments: --steps 2"),
    (["coordcheck", "--lr", "0.1", "0.2"], None, "unrecognized arguments: 0.2"),
    (["coordcheck", "--task", "digits"], None, "unrecognized arguments: --task digits"),
    (["transfer", "--task", "cifar10"], "--data-dir", "expected the folder with the CIFAR-10 binary files for task='cifar10'"),
    (["transfer", "--task", "cifar10", "--data-dir", "/no/such"], "--data-dir", "is not a directory"),
    (["transfer", "--backend", "tpu"], "--backend", "invalid choice: 'tpu'"),
    (["transfer", "--processes", "two"], "--processes", "expected a positive integer, got 'two'"),
    (["transfer", "--processes", "0"], "--processes", "expected a positive integer, got '0'"),
    (["transfer", "--processes", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler",
     "not allowed with argument --processes"),
    (["transfer", "--results", "/nonexistent/x.jsonl"], "--results", "the folder '/nonexistent' of"),
    (["transfer", "--results", "r.csv"], "--results", "expected a file name ending in .jsonl"),
    (["transfer", "--csv", "r.jsonl"], "--csv", "expected a file name ending in .csv"),
    (["transfer", "--results", "r.jsonl", "--json", "r.jsonl"], "--json", "names the same file as --results"),
    (["transfer", "--plot", "/nonexistent/t.png"], "--plot", "does not exist"),
    (["transfer", "--widths", "8", "99999999"], "--widths", "the sweep at width 99999999"),
    (["coordcheck", "--widths", "8"], "--widths", "expected at least two widths (a slope needs two)"),
    (["coordcheck", "--lr", "-1"], "--lr", "expected a positive finite number, got '-1'"),
    (["coordcheck", "--steps", "-2"], "--steps", "expected an integer >= 0"),
]


@pytest.mark.parametrize("extra,flag,fragment", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_options_exit_2_with_one_line_and_nothing_written(extra, flag, fragment, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    assert main(["sweep", *extra]) == 2
    assert time.perf_counter() - start < 1.0  # refused at once, before any point runs
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (f"error: argument {flag}: " if flag else "error: ") in err and fragment in err, err
    assert os.listdir(tmp_path) == []


def test_the_experiment_is_a_subcommand(capsys):
    assert main(["sweep", "--experiment", "transfer"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --experiment" in err, err


def test_an_unreachable_scheduler_is_one_line_after_a_short_timeout(capsys):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    assert main(["sweep", "transfer", "--scheduler", address]) == 2
    assert time.perf_counter() - start < 3.0
    err = capsys.readouterr().err
    assert err == (f"{PROG} sweep transfer: error: argument --scheduler: cannot reach {address} within 2 s "
                   "(Connection refused)\n")


def test_missing_dask_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    assert main(["sweep", "transfer", "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert capsys.readouterr().err.endswith(
        'error: argument --scheduler: running a sweep on a Dask scheduler needs the optional extra dask: '
        'pip install "ibvi-theory[dask]"\n')


# --- SIGTERM on a sweep in two worker processes ------------------------------------------------

SWEEP = [sys.executable, "-m", "variational_nets", "sweep", "transfer", "--task", "synthetic",
         "--widths", "64", "128", "256", "--lrs", "0.05", "0.1", "0.2", "--seeds", "0", "1",
         "--epochs", "3", "--processes", "2", "--quiet"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_sigterm_stops_the_sweep_and_every_worker_within_two_seconds(tmp_path, group_processes, sigterm):
    results = tmp_path / "r.jsonl"
    command = SWEEP + ["--results", str(results)]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (results.exists() and len(results.read_text().splitlines()) >= 2
                    and len(group_processes(proc.pid)) >= 3):
                break  # two points finished, the two workers (and the resource tracker) are running
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        assert len(group_processes(proc.pid)) >= 3
        out, err, stopped = sigterm(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"SIGTERM to exit: {stopped:.3f} s")
    assert proc.returncode == 143
    assert stopped < 2.0
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    finished = len(results.read_text().splitlines())
    match = re.fullmatch(rf"{PROG} sweep transfer: terminated \(SIGTERM\): (\d+) of 36 points finished, "
                         rf"kept in {re.escape(str(results))}; resume: (.*)", lines[0])
    assert match and int(match.group(1)) == finished, lines[0]
    # every process the command started is gone: the workers at once; the resource tracker of
    # multiprocessing sees its pipe close when the command exits and follows within a moment
    deadline = time.monotonic() + 5
    while group_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_processes(proc.pid) == []
    # the printed command resumes: the finished points are not computed again
    resume = match.group(2).split()
    assert resume[:3] == ["python", "-m", "variational_nets"] and resume[3:] == command[3:]
    again = subprocess.run([sys.executable, *resume[1:]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert len(results.read_text().splitlines()) == 36  # each point once: none was computed twice
