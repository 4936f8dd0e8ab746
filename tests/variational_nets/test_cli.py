"""``python -m variational_nets`` and the command-line machinery both CLIs share: bad input gives
one line naming the flag and exit 2 before any work, while the library's own message names the
Python argument; a run prints metrics and writes JSON and a plot; divergence is exit 1, a bug
exit 3, an interrupt 130/143; every ``--help`` lists the exit statuses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import variational_nets.cli.train as train_cli
from variational_nets.cli import PROG, main
from variational_nets.cli.common import EXIT_STATUS, flag_message, json_safe
from variational_nets.data import CIFAR_RECORD, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES
from variational_nets.experiment import run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = ["--epochs", "2", "--quiet"]
TRAIN = f"{PROG} train: error: "


@pytest.fixture
def no_training(monkeypatch):
    """Make any training an assertion failure: the options must be refused before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("trained although the options were refused")

    monkeypatch.setattr(train_cli, "fit_experiment", refuse)


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err.rstrip("\n")


# (command-line arguments, the flag the line names, a fragment of it, the same options for the
# Python API and the field its ValueError names; None where argparse alone refuses the value)
BAD = [
    (["--task", "mnist"], "--task", "invalid choice: 'mnist'", dict(task="mnist"), "task"),
    (["--method", "sgld"], "--method", "invalid choice: 'sgld'", dict(method="sgld"), "method"),
    (["--backend", "tpu"], "--backend", "invalid choice: 'tpu'", dict(backend="tpu"), "backend"),
    (["--parametrization", "ntk"], "--parametrization", "invalid choice", dict(parametrization="ntk"),
     "parametrization"),
    (["--width", "0"], "--width", "expected a positive integer, got '0'", dict(width=0), "width"),
    (["--width", "wide"], "--width", "expected a positive integer, got 'wide'", dict(width="wide"), "width"),
    (["--width", "1e3"], "--width", "expected a positive integer, got '1e3'", None, None),
    (["--rank", "-3"], "--rank", "expected a positive integer, got '-3'", dict(rank=-3), "rank"),
    (["--lr", "0"], "--lr", "expected a positive finite number, got '0'", dict(lr=0), "lr"),
    (["--lr", "nan"], "--lr", "expected a positive finite number, got 'nan'", dict(lr=float("nan")), "lr"),
    (["--lr", "inf"], "--lr", "expected a positive finite number, got 'inf'", None, None),
    (["--epochs", "-1"], "--epochs", "expected a positive integer, got '-1'", dict(epochs=-1), "epochs"),
    (["--batch-size", "0"], "--batch-size", "expected a positive integer", dict(batch_size=0), "batch_size"),
    (["--seed", "-1"], "--seed", "expected an integer >= 0, got '-1'", dict(seed=-1), "seed"),
    (["--seed", "1.5"], "--seed", "expected an integer >= 0, got '1.5'", dict(seed=1.5), "seed"),
    (["--num-samples", "0"], "--num-samples", "expected a positive integer", dict(num_samples=0),
     "num_samples"),
    (["--task", "cifar10"], "--data-dir", "expected the folder with the official CIFAR-10 binary files",
     dict(task="cifar10"), None),
    (["--task", "cifar10", "--data-dir", "/no/such/dir"], "--data-dir", "is not a directory",
     dict(task="cifar10", data_dir="/no/such/dir"), None),
    (["--task", "digits", "--plot", "x.png"], "--plot", "plots exist for toy-regression and two-moons",
     dict(task="digits", plot="x.png"), "plot"),
    (["--plot", "/nonexistent/x.png", "--json", "ok.json"], "--plot", "the folder '/nonexistent' of",
     None, None),
    (["--json", "/nonexistent/dir/a.json"], "--json", "does not exist", None, None),
    (["--json", "."], "--json", "'.' is a folder, expected a file name", None, None),
    (["--plot", "x.xyz"], "--plot", "expected a figure file name ending in .png, .pdf, .svg", None, None),
    (["--json", "same.png", "--plot", "same.png"], "--plot", "names the same file as --json", None, None),
    (["--width", "99999999"], "--width", "training at width 99999999 needs about", None, None),
    (["--covariance", "lowrank", "--rank", "10000000"], "--rank", "expected an integer in [1, 65] (the smallest "
     "variational layer has 65 parameters at width 64)", dict(covariance="lowrank", rank=10_000_000), "rank"),
]


@pytest.mark.parametrize("argv,flag,fragment,api,field", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_one_line_naming_the_flag_before_any_work(argv, flag, fragment, api, field, capsys,
                                                             tmp_path, monkeypatch, no_training):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--task", "two-moons", *QUICK, *argv])  # argv last: its options win
    line = _one_line(capsys)
    assert code == 2
    assert line.startswith(f"{TRAIN}argument {flag}: "), line
    assert fragment in line
    assert os.listdir(tmp_path) == []  # nothing written
    if api is None:
        return
    with pytest.raises((ValueError, TypeError)) as info:  # the library names the Python argument, never a flag
        run_experiment(quiet=True, **{"task": "two-moons", **api})
    assert "--" not in str(info.value).replace("(--data-dir)", "")  # data.py's own message, mapped alike
    if field is not None:
        assert str(info.value).startswith((f"invalid {field}:", f"{field}:"))


def test_malformed_cifar_directory_is_a_usage_error(tmp_path, capsys, no_training):
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * (CIFAR_RECORD - 1))
    code = main(["train", "--task", "cifar10", "--data-dir", str(tmp_path), *QUICK])
    line = _one_line(capsys)
    assert code == 2 and "data_batch_1.bin" in line and line.startswith(f"{TRAIN}argument --data-dir: ")


def test_argparse_errors_are_one_line(capsys):
    assert main(["train", "--task", "two-moons", "--bogus"]) == 2
    assert main(["fly"]) == 2
    assert main(["train"]) == 2  # --task is required
    assert main(["train", "--task", "two-moons", "--wid", "8"]) == 2  # no abbreviations
    assert main([]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5 and all(line.startswith(f"{PROG}") and ": error: " in line for line in lines)


def test_module_entry_point_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "variational_nets", "train", "--task", "nope"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--task" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sweep", "--help"],
                                  ["sweep", "transfer", "--help"], ["sweep", "coordcheck", "--help"]])
def test_every_help_lists_the_exit_statuses(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert EXIT_STATUS in out
    for code in ("0 ", "1 ", "2 ", "3 ", "130", "143"):
        assert f"\n  {code}" in out


def test_small_run_prints_and_writes_json_and_plot(tmp_path, capsys):
    out, fig = tmp_path / "r.json", tmp_path / "bands.png"
    code = main(["train", "--task", "toy-regression", "--epochs", "20", "--json", str(out),
                 "--plot", str(fig)])
    text = capsys.readouterr().out
    assert code == 0
    assert "epoch    20/20" in text and "test metrics: rmse" in text and "predictive std" in text
    result = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert result["config"]["width"] == 16 and result["config"]["batch_size"] == 16
    assert result["steps"] == 20 * 7 and np.isfinite(result["metrics"]["gaussian_nll"])
    assert fig.stat().st_size > 1000
    assert sorted(os.listdir(tmp_path)) == ["bands.png", "r.json"]


def test_divergence_is_exit_1_with_one_line_and_no_files(tmp_path, capsys):
    code = main(["train", "--task", "toy-regression", "--epochs", "3", "--lr", "1e5", "--quiet",
                 "--json", str(tmp_path / "r.json")])
    line = _one_line(capsys)
    assert code == 1 and line.startswith(f"{PROG} train: training diverged at step ")
    assert os.listdir(tmp_path) == []


def test_an_error_inside_the_run_is_internal_not_the_users(monkeypatch, capsys):
    def broken(trained, seed_offset=1):
        raise ValueError("an invalid shape deep inside")

    monkeypatch.setattr(train_cli, "evaluate", broken)
    code = main(["train", "--task", "toy-regression", "--epochs", "1", "--quiet"])
    line = _one_line(capsys)
    assert code == 3
    assert line.startswith(f"{PROG} train: internal error: ValueError: an invalid shape deep inside (at ")
    assert "test_cli.py" in line and "usage" not in line and "argument" not in line


@pytest.mark.parametrize("interrupt,code,word", [(KeyboardInterrupt, 130, "interrupted (SIGINT)"),
                                                 ("terminated", 143, "terminated (SIGTERM)")])
def test_an_interrupt_is_one_line_with_the_command_to_rerun(monkeypatch, capsys, interrupt, code, word):
    from variational_nets.cli.common import Terminated

    exc = Terminated if interrupt == "terminated" else interrupt

    def stop(*args, **kwargs):
        raise exc()

    monkeypatch.setattr(train_cli, "fit_experiment", stop)
    assert main(["train", "--task", "two-moons", "--seed", "3"]) == code
    line = _one_line(capsys)
    assert line == (f"{PROG} train: {word}: training stopped, nothing written; rerun: "
                    f"{PROG} train --task two-moons --seed 3")


def test_cifar_through_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in CIFAR_TRAIN_FILES + (CIFAR_TEST_FILE,):
        rec = rng.integers(0, 256, (6, CIFAR_RECORD)).astype(np.uint8)
        rec[:, 0] = np.arange(6) % 10
        rec.tofile(tmp_path / name)
    code = main(["train", "--task", "cifar10", "--data-dir", str(tmp_path), "--allow-small-files",
                 "--width", "8", "--rank", "2", "--epochs", "1", "--quiet"])
    assert code == 0 and "accuracy" in capsys.readouterr().out
    assert main(["train", "--task", "cifar10", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--quiet"]) == 2  # official sizes required without --allow-small-files
    assert "argument --data-dir: " in capsys.readouterr().err


def test_digits_api_run():
    pytest.importorskip("sklearn")
    r = run_experiment(task="digits", epochs=1, width=16, quiet=True)
    assert 0 <= r.metrics.accuracy <= 1 and r.config.covariance == "lowrank" and r.config.rank == 16


# --- the shared machinery --------------------------------------------------------------------

FLAGS = {"widths": "--widths", "batch_size": "--batch-size", "results": "--results", "seeds": "--seeds",
         "data_dir": "--data-dir", "lr": "--lr"}


@pytest.mark.parametrize("message,expected", [
    ("invalid widths: a slope needs at least two widths, got (8,)",
     "argument --widths: a slope needs at least two widths, got (8,)"),
    ("invalid widths (--widths): values repeat in (8, 8)", "argument --widths: values repeat in (8, 8)"),
    ("invalid batch size (--batch-size): expected a positive integer, got 0",
     "argument --batch-size: expected a positive integer, got 0"),
    ("invalid batch_size: expected a positive integer, got 0",
     "argument --batch-size: expected a positive integer, got 0"),
    ("results_path: the folder 'x' of 'x/a.jsonl' does not exist",
     "argument --results: the folder 'x' of 'x/a.jsonl' does not exist"),
    ("invalid data directory (--data-dir): '/x' is not a directory", "argument --data-dir: '/x' is not a directory"),
    ("invalid data directory: the cifar10 task needs the folder",
     "argument --data-dir: the cifar10 task needs the folder"),
    ("invalid seeds: expected integers >= 0, got -1", "argument --seeds: expected integers >= 0, got -1"),
    ("invalid lrs (--lrs): a transfer needs at least two", "invalid lrs: a transfer needs at least two"),
    ("fn must be picklable", "fn must be picklable"),
])
def test_flag_message_maps_python_names_to_flags(message, expected):
    aliases = {"results_path": "results", "data directory": "data_dir"}
    assert flag_message(message, FLAGS, aliases) == expected


def test_json_safe_writes_non_finite_floats_as_strings():
    assert json_safe({"a": [1.0, float("inf"), (float("nan"),)], "b": "x"}) == {"a": [1.0, "inf", ["nan"]],
                                                                                "b": "x"}
