"""Command line: bad input gives one line naming the option and exit 2, with the same text as
the ValueError of the Python API; a small run prints metrics and writes JSON and a plot."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from variational_nets.cli import PROG, main
from variational_nets.data import CIFAR_RECORD, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES
from variational_nets.experiment import run_experiment

QUICK = ["--epochs", "2", "--quiet"]

# (command-line arguments, the same options for the Python API, the option the message names)
BAD = [
    (["--task", "mnist"], dict(task="mnist"), "--task"),
    (["--task", "two-moons", "--method", "sgld"], dict(task="two-moons", method="sgld"), "--method"),
    (["--task", "two-moons", "--backend", "tpu"], dict(task="two-moons", backend="tpu"), "--backend"),
    (["--task", "two-moons", "--parametrization", "ntk"], dict(task="two-moons", parametrization="ntk"),
     "--parametrization"),
    (["--task", "two-moons", "--width", "0"], dict(task="two-moons", width=0), "--width"),
    (["--task", "two-moons", "--width", "wide"], dict(task="two-moons", width="wide"), "--width"),
    (["--task", "two-moons", "--rank", "-3"], dict(task="two-moons", rank=-3), "--rank"),
    (["--task", "two-moons", "--lr", "0"], dict(task="two-moons", lr=0), "--lr"),
    (["--task", "two-moons", "--lr", "nan"], dict(task="two-moons", lr=float("nan")), "--lr"),
    (["--task", "two-moons", "--epochs", "-1"], dict(task="two-moons", epochs=-1), "--epochs"),
    (["--task", "two-moons", "--batch-size", "0"], dict(task="two-moons", batch_size=0), "--batch-size"),
    (["--task", "cifar10"], dict(task="cifar10"), "--data-dir"),
    (["--task", "cifar10", "--data-dir", "/no/such/dir"], dict(task="cifar10", data_dir="/no/such/dir"),
     "--data-dir"),
    (["--task", "digits", "--plot", "x.png"], dict(task="digits", plot="x.png"), "--plot"),
]


@pytest.mark.parametrize("argv,api,option", BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_bad_input_one_line_exit_2_same_message_as_api(argv, api, option, capsys):
    code = main(["train", *QUICK, *argv])  # argv last: its options win
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and option in err
    with pytest.raises(ValueError) as info:
        run_experiment(quiet=True, **api)
    assert err == f"{PROG}: error: {info.value}\n"


def test_malformed_cifar_directory_same_message(tmp_path, capsys):
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * (CIFAR_RECORD - 1))
    code = main(["train", "--task", "cifar10", "--data-dir", str(tmp_path), *QUICK])
    err = capsys.readouterr().err
    assert code == 2 and "data_batch_1.bin" in err and "--data-dir" in err
    with pytest.raises(ValueError) as info:
        run_experiment(task="cifar10", data_dir=str(tmp_path), epochs=2, quiet=True)
    assert err == f"{PROG}: error: {info.value}\n"


def test_argparse_errors_are_one_line(capsys):
    assert main(["train", "--task", "two-moons", "--bogus"]) == 2
    assert main(["fly"]) == 2
    assert main(["train"]) == 2  # --task is required
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"{PROG}: error:") for line in lines)


def test_module_entry_point_exit_code():
    proc = subprocess.run([sys.executable, "-m", "variational_nets", "train", "--task", "nope"],
                          capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--task" in proc.stderr


def test_small_run_prints_and_writes_json_and_plot(tmp_path, capsys):
    out, fig = tmp_path / "r.json", tmp_path / "bands.png"
    code = main(["train", "--task", "toy-regression", "--epochs", "20", "--json", str(out),
                 "--plot", str(fig)])
    text = capsys.readouterr().out
    assert code == 0
    assert "epoch    20/20" in text and "test metrics: rmse" in text and "predictive std" in text
    result = json.loads(out.read_text())
    assert result["config"]["width"] == 16 and result["config"]["batch_size"] == 16
    assert result["steps"] == 20 * 7 and np.isfinite(result["metrics"]["gaussian_nll"])
    assert fig.stat().st_size > 1000


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


def test_digits_api_run():
    pytest.importorskip("sklearn")
    r = run_experiment(task="digits", epochs=1, width=16, quiet=True)
    assert 0 <= r.metrics.accuracy <= 1 and r.config.covariance == "lowrank" and r.config.rank == 16
