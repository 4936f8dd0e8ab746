"""Tests of variational_nets.sweep: grids, local and Dask runs, resuming, failures, the table,
interrupts and lost workers.

The functions a sweep evaluates are top-level here, so that worker processes (spawned) and
Dask workers can import them by name.
"""
import csv
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from variational_nets.sweep import (SweepPoint, SweepRow, check_scheduler, grid, read_results, run_sweep,
                                    write_csv)


def quadratic_point(point):
    """A cheap stand-in for a training: a known function of the point, plus who ran it."""
    return {"loss": (point.lr - 0.01) ** 2 * point.width + point.seed,
            "width_sq": point.width ** 2, "pid": os.getpid()}


def expected_loss(point):
    return (point.lr - 0.01) ** 2 * point.width + point.seed


def refuse_seed_zero(point):
    if point.seed == 0:
        raise RuntimeError(f"recomputed a finished point: {point.label()}")
    return quadratic_point(point)


def fail_at_width_128(point):
    if point.width == 128:
        raise ValueError("diverged")
    return quadratic_point(point)


POINTS = grid(width=[64, 128], lr=[0.1, 0.01], seed=[0, 1])


# --- points and grids ------------------------------------------------------------------------

def test_grid_is_the_product_of_its_axes_in_order():
    points = grid(width=[64, 128], lr=[0.1, 0.01, 0.001], seed=[0, 1], act=["relu", "tanh"],
                  depth=[2])
    assert len(points) == 2 * 3 * 2 * 2 * 1
    expected = [(w, lr, s, (("act", a), ("depth", 2)))
                for w in (64, 128) for lr in (0.1, 0.01, 0.001) for s in (0, 1)
                for a in ("relu", "tanh")]
    assert [(p.width, p.lr, p.seed, p.params) for p in points] == expected
    assert points[1].param("act") == "tanh"
    assert points[0].as_dict() == {"width": 64, "lr": 0.1, "seed": 0, "act": "relu", "depth": 2}


@settings(max_examples=25)
@given(widths=st.lists(st.integers(1, 10_000), min_size=1, max_size=4, unique=True),
       lrs=st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=4, unique=True),
       seeds=st.lists(st.integers(0, 2**31), min_size=1, max_size=3, unique=True),
       extra=st.lists(st.sampled_from(["sp", "mup", "ntk"]), min_size=1, max_size=3,
                      unique=True))
def test_grid_points_are_distinct_and_complete(widths, lrs, seeds, extra):
    points = grid(width=widths, lr=lrs, seed=seeds, parametrization=extra)
    assert len(points) == len(set(points)) == len(widths) * len(lrs) * len(seeds) * len(extra)
    combos = {(p.width, p.lr, p.seed, p.param("parametrization")) for p in points}
    assert combos == set(itertools.product(widths, lrs, seeds, extra))


def test_points_are_normalized_keys():
    assert SweepPoint(64, 1, 0) == SweepPoint(np.int64(64), np.float32(1.0), np.int32(0))
    a = SweepPoint(64, 0.1, 0, {"b": 1, "a": "x"})
    b = SweepPoint(64, 0.1, 0, (("a", "x"), ("b", np.int64(1))))
    assert a == b and hash(a) == hash(b) and a.params == (("a", "x"), ("b", 1))
    assert SweepPoint(64, 0.1, 0) != SweepPoint(64, 0.1, 1)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"width": [], "lr": [0.1], "seed": [0]}, ValueError, "axis 'width' is empty"),
    ({"width": [64, 64], "lr": [0.1], "seed": [0]}, ValueError, "repeats the value 64"),
    ({"width": [64], "lr": [1, 1.0], "seed": [0]}, ValueError, "repeats"),
    ({"width": "64", "lr": [0.1], "seed": [0]}, TypeError, "must be a sequence"),
    ({"width": 64, "lr": [0.1], "seed": [0]}, TypeError, "must be a sequence"),
    ({"width": [0], "lr": [0.1], "seed": [0]}, ValueError, "width must be an integer >= 1"),
    ({"width": [64.5], "lr": [0.1], "seed": [0]}, ValueError, "width must be an integer"),
    ({"width": [64], "lr": [-0.1], "seed": [0]}, ValueError, "lr must be finite and > 0"),
    ({"width": [64], "lr": [float("nan")], "seed": [0]}, ValueError, "must be finite"),
    ({"width": [64], "lr": [0.1], "seed": [-1]}, ValueError, "seed must be an integer >= 0"),
    ({"width": [64], "lr": [0.1], "seed": [0], "status": [1]}, ValueError, "reserved"),
    ({"width": [64], "lr": [0.1], "seed": [0], "act": [[1]]}, TypeError, "bool, int, float"),
])
def test_bad_grids_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        grid(**kwargs)


def test_bad_points_raise():
    with pytest.raises(TypeError, match="lr must be a real number"):
        SweepPoint(64, "0.1", 0)
    with pytest.raises(ValueError, match="identifiers"):
        SweepPoint(64, 0.1, 0, {"not a name": 1})
    with pytest.raises(ValueError, match="given twice"):
        SweepPoint(64, 0.1, 0, (("a", 1), ("a", 2)))
    with pytest.raises(ValueError, match="reserved"):
        SweepPoint(64, 0.1, 0, {"width": 2})


# --- local runs ----------------------------------------------------------------------------

def check_rows(result, points):
    assert [row.point for row in result.rows] == list(points)
    for row in result.rows:
        assert row.ok and row.error is None
        assert row.value("loss") == pytest.approx(expected_loss(row.point), rel=0, abs=0)
        assert row.value("width_sq") == row.point.width ** 2


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_local_run_in_process_writes_jsonl_and_csv(tmp_path, capsys):
    path = tmp_path / "sweep.jsonl"
    result = run_sweep(quadratic_point, POINTS, results_path=path, processes=1,
                       csv_path=tmp_path / "table.csv")
    assert result.csv_path == tmp_path / "table.csv"
    check_rows(result, POINTS)
    assert (result.n_computed, result.n_reused, result.n_failed) == (len(POINTS), 0, 0)
    assert set(result.column("pid")) == {os.getpid()}
    lines = path.read_text().splitlines()
    assert len(lines) == len(POINTS)
    assert json.loads(lines[0])["point"] == {"width": 64, "lr": 0.1, "seed": 0, "params": {}}
    table = read_csv(result.csv_path)
    assert list(table[0])[:3] == ["width", "lr", "seed"]
    assert len(table) == len(POINTS)
    for record, point in zip(table, POINTS):
        # floats are written with repr, so they read back exactly
        assert float(record["loss"]) == expected_loss(point)
        assert (int(record["width"]), float(record["lr"])) == (point.width, point.lr)
    err = capsys.readouterr().err
    assert f"{len(POINTS)}/{len(POINTS)} width=128 lr=0.01 seed=1: ok" in err
    assert "computing 8 on this process" in err


def test_two_processes_give_the_same_rows(tmp_path):
    result = run_sweep(quadratic_point, POINTS, results_path=tmp_path / "p2.jsonl",
                       processes=2, progress=False)
    check_rows(result, POINTS)
    assert os.getpid() not in set(result.column("pid"))  # really ran in worker processes
    serial = run_sweep(quadratic_point, POINTS, results_path=tmp_path / "p1.jsonl",
                       processes=1, progress=False)
    assert [r.results[:2] for r in result.rows] == [r.results[:2] for r in serial.rows]


def test_progress_false_prints_nothing(tmp_path, capsys):
    run_sweep(quadratic_point, POINTS[:2], results_path=tmp_path / "q.jsonl", processes=1,
              progress=False)
    assert capsys.readouterr() == ("", "")


# --- resuming --------------------------------------------------------------------------------

def test_resume_does_not_recompute_finished_points(tmp_path):
    path = tmp_path / "resume.jsonl"
    first = [p for p in POINTS if p.seed == 0]
    run_sweep(quadratic_point, first, results_path=path, processes=1, progress=False)
    calls = []

    def record_calls(point):
        calls.append(point)
        return refuse_seed_zero(point)

    result = run_sweep(record_calls, POINTS, results_path=path, processes=1, progress=False)
    assert calls == [p for p in POINTS if p.seed == 1]
    assert (result.n_computed, result.n_reused, result.n_failed) == (4, 4, 0)
    check_rows(result, POINTS)
    # a third run computes nothing and leaves the file as it was
    size = path.stat().st_size
    again = run_sweep(refuse_seed_zero, POINTS, results_path=path, processes=2, progress=False,
                      csv_path=tmp_path / "resume.csv")
    assert (again.n_computed, again.n_reused) == (0, len(POINTS))
    assert path.stat().st_size == size
    assert len(read_csv(again.csv_path)) == len(POINTS)


def test_resume_in_worker_processes(tmp_path):
    path = tmp_path / "resume2.jsonl"
    run_sweep(quadratic_point, [p for p in POINTS if p.seed == 0], results_path=path,
              processes=2, progress=False)
    result = run_sweep(refuse_seed_zero, POINTS, results_path=path, processes=2,
                       progress=False)
    assert result.n_failed == 0, [r.error for r in result.failed]
    assert (result.n_computed, result.n_reused) == (4, 4)


def interrupt_at_third(point, _count=[0]):
    _count[0] += 1
    if _count[0] == 3:
        raise KeyboardInterrupt
    return quadratic_point(point)


def test_interrupted_sweep_keeps_finished_points(tmp_path):
    path = tmp_path / "interrupted.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(interrupt_at_third, POINTS, results_path=path, processes=1, progress=False)
    assert len(path.read_text().splitlines()) == 2
    result = run_sweep(quadratic_point, POINTS, results_path=path, processes=1, progress=False)
    assert (result.n_computed, result.n_reused) == (len(POINTS) - 2, 2)
    check_rows(result, POINTS)


def test_cut_off_last_line_is_dropped_and_recomputed(tmp_path):
    path = tmp_path / "cut.jsonl"
    run_sweep(quadratic_point, POINTS[:3], results_path=path, processes=1, progress=False)
    text = path.read_text()
    path.write_text(text[: len(text) - 20])  # the last write stopped half way
    with pytest.warns(RuntimeWarning, match="incomplete last line"):
        result = run_sweep(quadratic_point, POINTS[:3], results_path=path, processes=1,
                           progress=False)
    assert (result.n_computed, result.n_reused) == (1, 2)
    assert [json.loads(line)["point"]["seed"] for line in path.read_text().splitlines()] == \
        [p.seed for p in POINTS[:3]]
    check_rows(result, POINTS[:3])


def test_corrupt_line_raises(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"not": "a row"}\n')
    with pytest.raises(ValueError, match="line 1 is not a sweep row"):
        run_sweep(quadratic_point, POINTS, results_path=path, processes=1)


# --- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize("processes", [1, 2])
def test_failing_points_are_recorded_and_retried(tmp_path, processes, capsys):
    path = tmp_path / "fail.jsonl"
    table_path = tmp_path / "fail.csv"
    result = run_sweep(fail_at_width_128, POINTS, results_path=path, processes=processes,
                       csv_path=table_path)
    assert result.n_failed == 4
    for row in result.rows:
        if row.point.width == 128:
            assert row.status == "failed" and row.error == "ValueError: diverged"
            assert row.results == ()
            with pytest.raises(KeyError):
                row.value("loss")
        else:
            assert row.ok and row.value("loss") == expected_loss(row.point)
    assert "FAILED (ValueError: diverged)" in capsys.readouterr().err
    table = read_csv(result.csv_path)
    assert sorted(r["status"] for r in table) == ["failed"] * 4 + ["ok"] * 4
    # kept as failures when asked, recomputed by default
    kept = run_sweep(refuse_seed_zero, POINTS, results_path=path, processes=1,
                     retry_failed=False, progress=False)
    assert (kept.n_computed, kept.n_failed) == (0, 4)
    fixed = run_sweep(quadratic_point, POINTS, results_path=path, processes=1, progress=False,
                      csv_path=table_path)
    assert (fixed.n_computed, fixed.n_reused, fixed.n_failed) == (4, 4, 0)
    check_rows(fixed, POINTS)
    assert [r["status"] for r in read_csv(fixed.csv_path)] == ["ok"] * len(POINTS)
    assert read_results(path).n_failed == 0  # the latest row of each point wins


def return_list(point):
    return [1.0]


def return_colliding(point):
    return {"lr": 1.0}


@pytest.mark.parametrize("fn,match", [
    (return_list, "TypeError: fn must return a mapping"),
    (return_colliding, "ValueError: result name 'lr' collides"),
])
def test_bad_results_are_recorded_as_failures(tmp_path, fn, match):
    result = run_sweep(fn, POINTS[:1], results_path=tmp_path / "r.jsonl", processes=1,
                       progress=False)
    assert result.rows[0].error.startswith(match)


def test_nan_results_are_kept(tmp_path):
    path = tmp_path / "nan.jsonl"
    run_sweep(nan_point, POINTS[:1], results_path=path, processes=1, progress=False)
    row = read_results(path).rows[0]
    assert row.ok and np.isnan(row.value("loss")) and row.value("inf") == float("inf")


def nan_point(point):
    return {"loss": float("nan"), "inf": np.float32(np.inf)}


@pytest.mark.parametrize("kwargs,error,match", [
    ({"results_path": "x.csv"}, ValueError, r"results_path: expected a file name ending in \.jsonl"),
    ({"csv_path": "x.jsonl"}, ValueError, r"csv_path: expected a file name ending in \.csv"),
    ({"processes": 0}, ValueError, "processes must be an integer >= 1"),
    ({"processes": 2, "scheduler": "tcp://127.0.0.1:1"}, ValueError, "processes applies"),
    ({"scheduler": 8786}, TypeError, "address string"),
])
def test_bad_arguments_raise(tmp_path, kwargs, error, match):
    kwargs = {"results_path": tmp_path / "a.jsonl", **kwargs}
    with pytest.raises(error, match=match):
        run_sweep(quadratic_point, POINTS, **kwargs)


def test_bad_points_and_functions_raise(tmp_path):
    path = tmp_path / "b.jsonl"
    with pytest.raises(ValueError, match="points is empty"):
        run_sweep(quadratic_point, [], results_path=path)
    with pytest.raises(ValueError, match="points repeat"):
        run_sweep(quadratic_point, POINTS + POINTS[:1], results_path=path)
    with pytest.raises(TypeError, match="SweepPoint"):
        run_sweep(quadratic_point, [(64, 0.1, 0)], results_path=path)
    with pytest.raises(TypeError, match="fn must be callable"):
        run_sweep(None, POINTS, results_path=path)
    with pytest.raises(TypeError, match="must be picklable"):
        run_sweep(lambda p: {}, POINTS, results_path=path, processes=2)
    assert not path.exists()


def test_row_json_round_trip():
    row = SweepRow(SweepPoint(64, 0.1, 3, {"act": "relu"}), "ok", (("loss", 0.1 + 0.2),),
                   None, 1.5)
    assert SweepRow.from_json(json.loads(row.to_json())) == row


# --- Dask ------------------------------------------------------------------------------------

def test_missing_dask_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r'extra dask: pip install "ibvi-theory\[dask\]"'):
        run_sweep(quadratic_point, POINTS, results_path=tmp_path / "d.jsonl",
                  scheduler="tcp://127.0.0.1:1")


def test_dask_local_cluster_runs_and_resumes(tmp_path):
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "dask.jsonl"
    # A worker process on loopback TCP: the points and fn really travel by pickle to another
    # process, through the same address string a remote scheduler would have.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        first = [p for p in POINTS if p.seed == 0] + [POINTS[1]]
        run_sweep(fail_at_width_128, first, results_path=path, scheduler=address,
                  progress=False)
        result = run_sweep(refuse_seed_zero_unless_failed, POINTS, results_path=path,
                           scheduler=address, progress=False)
    # seed-0 points at width 64 were finished on the first run and must not be recomputed;
    # the width-128 ones failed there and are retried.
    assert result.n_failed == 0, [r.error for r in result.failed]
    assert (result.n_computed, result.n_reused) == (len(POINTS) - 3, 3)
    check_rows(result, POINTS)
    assert os.getpid() not in set(result.column("pid"))


def refuse_seed_zero_unless_failed(point):
    if point.seed == 0 and point.width == 64:
        raise RuntimeError(f"recomputed a finished point: {point.label()}")
    return quadratic_point(point)


# --- files: only the ones asked for ----------------------------------------------------------

def test_writes_only_the_results_file_unless_a_table_is_asked_for(tmp_path):
    result = run_sweep(quadratic_point, POINTS[:2], results_path=tmp_path / "only.jsonl", processes=1,
                       progress=False)
    assert result.csv_path is None
    assert os.listdir(tmp_path) == ["only.jsonl"]


def test_a_missing_folder_is_refused_not_created(tmp_path):
    with pytest.raises(ValueError, match="results_path: the folder .* does not exist"):
        run_sweep(quadratic_point, POINTS, results_path=tmp_path / "no" / "x.jsonl")
    with pytest.raises(ValueError, match="csv_path: the folder .* does not exist"):
        run_sweep(quadratic_point, POINTS, results_path=tmp_path / "x.jsonl", csv_path=tmp_path / "no" / "t.csv")
    assert os.listdir(tmp_path) == []


def test_write_csv_replaces_the_table_in_one_step(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old table\n")
    rows = run_sweep(quadratic_point, POINTS[:2], results_path=tmp_path / "t.jsonl", processes=1,
                     progress=False).rows
    assert write_csv(target, rows) == target
    assert len(read_csv(target)) == 2
    assert sorted(os.listdir(tmp_path)) == ["t.csv", "t.jsonl"]  # no temporary file left behind


# --- lost workers and interrupts -------------------------------------------------------------

def exit_at_width_128_seed_1(point):
    if point.width == 128 and point.seed == 1:
        os._exit(3)  # the worker process dies in the middle of the point
    return quadratic_point(point)


def test_a_dying_worker_loses_only_its_point(tmp_path):
    result = run_sweep(exit_at_width_128_seed_1, POINTS, results_path=tmp_path / "lost.jsonl",
                       processes=2, progress=False)
    lost = {p for p in POINTS if p.width == 128 and p.seed == 1}
    assert {r.point for r in result.failed} == lost
    assert all(r.error == "worker lost: the worker process exited with code 3" for r in result.failed)
    check_rows(type(result)(tuple(r for r in result.rows if r.ok), result.results_path, None, 0, 0),
               [p for p in POINTS if p not in lost])


def hang_unless_seed_0(point):
    if point.seed == 0:
        return quadratic_point(point)
    marker = Path(os.environ["SWEEP_TEST_MARKERS"]) / f"{point.width}-{point.lr}"
    marker.write_text(str(os.getpid()))
    time.sleep(120)
    return quadratic_point(point)


def _process_exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_an_interrupt_stops_the_workers_at_once_and_keeps_finished_points(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("SWEEP_TEST_MARKERS", str(markers))
    path = tmp_path / "int.jsonl"
    sent = {}

    def interrupt_when_both_workers_hang():
        deadline = time.monotonic() + 60
        while len(os.listdir(markers)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # both markers written: the two workers sleep inside their points
        sent["at"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt in the main thread

    watcher = threading.Thread(target=interrupt_when_both_workers_hang, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(hang_unless_seed_0, POINTS, results_path=path, processes=2, progress=False)
    stopped = time.monotonic() - sent["at"]
    watcher.join()
    assert stopped < 2.0  # the workers were terminated, not waited for (a point takes 120 s)
    pids = [int(m.read_text()) for m in markers.iterdir()]
    assert len(pids) == 2 and not any(_process_exists(pid) for pid in pids)
    finished = [json.loads(line)["point"] for line in path.read_text().splitlines()]
    assert [p["seed"] for p in finished] == [0, 0]  # the two seed-0 points done before the hang
    resumed = run_sweep(quadratic_point, POINTS, results_path=path, processes=1, progress=False)
    assert (resumed.n_computed, resumed.n_reused) == (len(POINTS) - 2, 2)
    check_rows(resumed, POINTS)


# --- the scheduler check ---------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_refused_within_the_timeout(tmp_path):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf"scheduler: cannot reach {address} within 2 s"):
        run_sweep(quadratic_point, POINTS, results_path=tmp_path / "s.jsonl", scheduler=address)
    assert time.monotonic() - start < 2.5
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:port", "tcp://:8786", "nope://127.0.0.1:8786"])
def test_a_malformed_scheduler_address_is_refused(address):
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="scheduler: expected an address like tcp://HOST:PORT"):
        check_scheduler(address)
