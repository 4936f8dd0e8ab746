"""Data sets: the toy generators and the CIFAR-10 binary reader (on small files we write)."""
import os

import numpy as np
import pytest

from variational_nets import data as D


def test_toy_regression_layout():
    ds = D.toy_regression(np.random.default_rng(0))
    assert ds.x_train.shape == (99, 1) and ds.y_train.shape == (99, 1)
    assert ds.x_test.shape == (200, 1) and ds.is_regression
    x = ds.x_train[:, 0]
    for k, (lo, hi) in enumerate(D.TOY_CLUSTERS):
        part = x[33 * k:33 * (k + 1)]
        assert part.min() >= lo and part.max() <= hi
    assert ds.x_test.min() >= -1.5 and ds.x_test.max() <= 1.5
    # residuals against the latent function: noise std 0.02; the std estimate over 99 points
    # has relative standard error 1/√198 ≈ 7 %, allow 4 standard errors
    r = ds.y_train[:, 0] - (1 / (1 + np.exp(-10 * x)) - 0.5)
    assert abs(r.std() / 0.02 - 1) < 4 / np.sqrt(198)


def test_two_moons_layout_and_shape():
    ds = D.two_moons(np.random.default_rng(0))
    assert ds.x_train.shape == (200, 2) and ds.x_test.shape == (400, 2) and ds.num_classes == 2
    y = np.concatenate([ds.y_train, ds.y_test])
    assert np.bincount(y).tolist() == [300, 300]
    noiseless = D.two_moons(np.random.default_rng(0), noise=0.0)
    x, y = np.concatenate([noiseless.x_train, noiseless.x_test]), np.concatenate([noiseless.y_train, noiseless.y_test])
    upper, lower = x[y == 0], x[y == 1]
    # noise-free points lie exactly on the unit half circles (float32 rounding: 1e-6)
    assert np.allclose(np.hypot(*upper.T), 1.0, atol=1e-6)
    assert np.allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert upper[:, 1].min() >= -1e-6 and lower[:, 1].max() <= 0.5 + 1e-6


def test_generators_are_reproducible_and_need_a_generator():
    a = D.two_moons(np.random.default_rng(3))
    b = D.two_moons(np.random.default_rng(3))
    assert np.array_equal(a.x_train, b.x_train)
    with pytest.raises(TypeError, match="Generator"):
        D.toy_regression(3)


def test_digits():
    pytest.importorskip("sklearn")
    ds = D.digits(np.random.default_rng(0))
    assert ds.x_train.shape[1] == 64 and ds.num_classes == 10
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert 0 <= ds.x_train.min() and ds.x_train.max() <= 1


def _write_cifar(folder, n=7, label_fn=lambda i: i % 10, files=None, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    written = {}
    for name in files or (D.CIFAR_TRAIN_FILES + (D.CIFAR_TEST_FILE,)):
        rec = np.empty((n, D.CIFAR_RECORD), np.uint8)
        rec[:, 0] = [label_fn(i) for i in range(n)]
        rec[:, 1:] = rng.integers(0, 256, (n, 3072))
        rec.tofile(os.path.join(folder, name))
        written[name] = rec
    return written


def test_cifar_reader_round_trip(tmp_path):
    written = _write_cifar(tmp_path, n=7)
    ds = D.cifar10(tmp_path, strict_counts=False)
    assert ds.x_train.shape == (35, 3072) and ds.x_test.shape == (7, 3072)
    assert ds.y_train.tolist() == [i % 10 for i in range(7)] * 5
    img, lab = D.read_cifar10_file(tmp_path / "test_batch.bin", strict_counts=False)
    assert np.array_equal(img, written["test_batch.bin"][:, 1:]) and lab.dtype == np.int64
    # standardisation per channel with the training statistics
    assert abs(ds.x_train.reshape(-1, 3, 1024).mean(axis=(0, 2))).max() < 1e-4


def test_cifar_nested_folder_and_limit(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-bin", n=5)
    ds = D.cifar10(tmp_path, strict_counts=False, limit=2)
    assert ds.x_train.shape == (10, 3072) and ds.x_test.shape == (2, 3072)


def test_cifar_strict_counts_reject_small_files(tmp_path):
    _write_cifar(tmp_path, n=3)
    with pytest.raises(ValueError, match="holds 3 records, expected 10000"):
        D.cifar10(tmp_path)


def test_cifar_truncated_file(tmp_path):
    _write_cifar(tmp_path, n=4)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="data_batch_3.bin.*not a whole number"):
        D.cifar10(tmp_path, strict_counts=False)


def test_cifar_empty_file(tmp_path):
    _write_cifar(tmp_path, n=4)
    (tmp_path / "test_batch.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="0 bytes"):
        D.cifar10(tmp_path, strict_counts=False)


def test_cifar_bad_label(tmp_path):
    _write_cifar(tmp_path, n=4, label_fn=lambda i: 12 if i == 2 else 1)
    with pytest.raises(ValueError, match="label 12"):
        D.cifar10(tmp_path, strict_counts=False)


def test_cifar_missing_file_and_directory(tmp_path):
    _write_cifar(tmp_path, n=2, files=D.CIFAR_TRAIN_FILES[:4])
    with pytest.raises(ValueError, match="missing CIFAR-10 file.*data_batch_5.bin"):
        D.cifar10(tmp_path, strict_counts=False)
    with pytest.raises(ValueError, match="invalid data_dir.*not a directory"):
        D.cifar10(tmp_path / "nope")
    with pytest.raises(ValueError, match="invalid data_dir"):
        D.cifar10(None)


def test_cifar_pickle_version_is_rejected_not_unpickled(tmp_path):
    # the python version ships data_batch_1 (no .bin, pickled): our reader only opens *.bin files
    import pickle

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({"data": 1}))
    with pytest.raises(ValueError, match="missing CIFAR-10 file"):
        D.cifar10(tmp_path, strict_counts=False)
