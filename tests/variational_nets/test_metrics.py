"""Metrics against brute-force loop references and on edge cases."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from variational_nets import metrics as M

# the vectorised and the loop references sum the same float64 numbers in different orders
RTOL = 1e-12


def ece_reference(probs, labels, n_bins=15):
    """Loop over bins with explicit interval tests (the last bin closed on the right)."""
    edges = np.linspace(0, 1, n_bins + 1)
    n = len(labels)
    total = 0.0
    for m in range(n_bins):
        lo, hi = edges[m], edges[m + 1]
        members = []
        for i in range(n):
            c = max(probs[i])
            inside = (lo <= c < hi) or (m == n_bins - 1 and c == hi)
            if inside:
                members.append(i)
        if members:
            acc = sum(int(np.argmax(probs[i]) == labels[i]) for i in members) / len(members)
            conf = sum(max(probs[i]) for i in members) / len(members)
            total += len(members) / n * abs(acc - conf)
    return total


def references(probs, labels):
    n, c = probs.shape
    acc = sum(int(np.argmax(probs[i]) == labels[i]) for i in range(n)) / n
    nll = -sum(math.log(max(probs[i, labels[i]], 1e-300)) for i in range(n)) / n
    brier = sum(sum((probs[i, k] - (k == labels[i])) ** 2 for k in range(c)) for i in range(n)) / n
    return acc, nll, brier, ece_reference(probs, labels)


def _check(probs, labels):
    got = M.classification_metrics(probs, labels)
    ref = references(probs, labels)
    for g, r in zip((got.accuracy, got.nll, got.brier, got.ece), ref):
        assert g == pytest.approx(r, rel=RTOL, abs=1e-15)
    return got


@given(n=st.integers(1, 40), c=st.integers(1, 6), seed=st.integers(0, 2**16),
       temperature=st.sampled_from([0.1, 1.0, 10.0]))
def test_random_probabilities_match_reference(n, c, seed, temperature):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) / temperature
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    _check(probs, rng.integers(0, c, n))


def test_all_correct_confident():
    probs = np.eye(3)[[0, 1, 2, 1]]
    got = _check(probs, np.array([0, 1, 2, 1]))
    assert (got.accuracy, got.nll, got.brier, got.ece) == (1.0, 0.0, 0.0, 0.0)


def test_all_wrong_confident_probability_zero_on_label():
    probs = np.eye(3)[[1, 2, 0]]
    got = _check(probs, np.array([0, 1, 2]))
    assert got.accuracy == 0.0 and got.brier == 2.0 and got.ece == 1.0
    assert got.nll == pytest.approx(-math.log(1e-300))  # finite: clipped at 1e-300


def test_confidence_exactly_one_goes_to_last_bin():
    # one row with confidence 1.0 (correct) and one with 0.95 (wrong): both in the last bin
    probs = np.array([[1.0, 0.0], [0.95, 0.05]])
    labels = np.array([0, 1])
    assert M.ece(probs, labels) == pytest.approx(abs(0.5 - 0.975), rel=RTOL)
    _check(probs, labels)


def test_one_class():
    probs = np.ones((5, 1))
    got = _check(probs, np.zeros(5, dtype=int))
    assert (got.accuracy, got.nll, got.brier, got.ece) == (1.0, 0.0, 0.0, 0.0)


def test_uniform_two_classes_ties_go_to_lowest_index():
    probs = np.full((4, 2), 0.5)
    got = _check(probs, np.array([0, 0, 1, 1]))
    assert got.accuracy == 0.5 and got.ece == pytest.approx(0.0, abs=1e-15)
    assert got.nll == pytest.approx(math.log(2), rel=RTOL)


def test_bin_boundaries_are_half_open():
    # confidence exactly at an interior edge 2/3 = 10/15 belongs to the bin starting there
    c = np.linspace(0, 1, 16)[10]
    probs = np.array([[c, 1 - c], [c, 1 - c]])
    assert M.ece(probs, np.array([0, 0])) == pytest.approx(1 - c, rel=RTOL)
    assert M.ece(probs, np.array([0, 0])) == pytest.approx(ece_reference(probs, [0, 0]), rel=RTOL)


def test_regression_metrics_reference():
    rng = np.random.default_rng(0)
    m, y, v = rng.standard_normal(7), rng.standard_normal(7), rng.uniform(0.1, 2, 7)
    ref_nll = sum(0.5 * math.log(2 * math.pi * v[i]) + (y[i] - m[i]) ** 2 / (2 * v[i]) for i in range(7)) / 7
    ref_rmse = math.sqrt(sum((y[i] - m[i]) ** 2 for i in range(7)) / 7)
    got = M.regression_metrics(m, v, y)
    assert got.gaussian_nll == pytest.approx(ref_nll, rel=RTOL)
    assert got.rmse == pytest.approx(ref_rmse, rel=RTOL)
    perfect = M.regression_metrics(y, 1.0, y)
    assert perfect.rmse == 0.0 and perfect.gaussian_nll == pytest.approx(0.5 * math.log(2 * math.pi))


@pytest.mark.parametrize("probs,labels,match", [
    (np.array([0.5, 0.5]), np.array([0]), "probs"),
    (np.array([[0.6, 0.6]]), np.array([0]), "sum to 1"),
    (np.array([[np.nan, 1.0]]), np.array([0]), "finite"),
    (np.array([[1.2, -0.2]]), np.array([0]), "in \\[0, 1\\]"),
    (np.array([[0.5, 0.5]]), np.array([2]), "labels"),
    (np.array([[0.5, 0.5]]), np.array([0.0]), "labels"),
])
def test_bad_classification_input(probs, labels, match):
    with pytest.raises(ValueError, match=match):
        M.classification_metrics(probs, labels)


def test_bad_regression_input():
    with pytest.raises(ValueError, match="var"):
        M.gaussian_nll(np.zeros(3), np.array([1.0, 0.0, 1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        M.rmse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="n_bins"):
        M.ece(np.eye(2), np.array([0, 1]), n_bins=0)


# --- out-of-distribution detection ------------------------------------------------------------

def _auroc_by_pairs(a, b):
    """The definition itself: P(out > in) + ½ P(out = in) over all pairs."""
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return float(np.mean((b > a) + 0.5 * (b == a)))


@given(n=st.integers(1, 40), m=st.integers(1, 40), seed=st.integers(0, 2 ** 32 - 1),
       decimals=st.sampled_from([0, 1, 3]))
def test_auroc_equals_the_pairwise_definition_with_ties(n, m, seed, decimals):
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=n), decimals)
    b = np.round(rng.normal(0.7, size=m), decimals)  # rounding makes ties common
    assert M.auroc(a, b) == pytest.approx(_auroc_by_pairs(a, b), abs=1e-12)


def test_auroc_against_scikit_learn_and_its_extremes():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.5, size=200)
    expected = metrics.roc_auc_score(np.r_[np.zeros(300), np.ones(200)], np.r_[a, b])
    assert M.auroc(a, b) == pytest.approx(expected, abs=1e-12)
    assert M.auroc([0.0, 0.1], [0.2, 0.3]) == 1.0 and M.auroc([0.2, 0.3], [0.0, 0.1]) == 0.0
    assert M.auroc([1.0, 1.0], [1.0]) == 0.5


def test_predictive_entropy_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=20)
    probs[0] = [1.0, 0, 0, 0, 0]
    assert np.allclose(M.predictive_entropy(probs), stats.entropy(probs, axis=1), atol=1e-12)
    assert M.predictive_entropy(np.full((2, 4), 0.25)) == pytest.approx([math.log(4)] * 2)
    assert M.predictive_entropy(probs)[0] == 0.0


@pytest.mark.parametrize("call,match", [
    (lambda: M.auroc([], [1.0]), "invalid scores_in: expected a non-empty array"),
    (lambda: M.auroc([1.0], [[1.0]]), "invalid scores_out: expected a 1-D array"),
    (lambda: M.auroc([np.nan], [1.0]), "invalid scores_in: expected finite values"),
    (lambda: M.predictive_entropy([[0.5, 0.6]]), "invalid probs: expected rows that sum to 1"),
])
def test_bad_detection_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
