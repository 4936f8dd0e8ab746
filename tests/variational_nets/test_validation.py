"""The shared argument checks: conversions, bounds, and messages that name the argument."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from variational_nets import validation as V


@given(value=st.integers(-10**6, 10**6), minimum=st.sampled_from([None, 0, 1, 5]),
       maximum=st.sampled_from([None, 10, 10**6]))
def test_as_int_accepts_exactly_the_integers_in_bounds(value, minimum, maximum):
    inside = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    for given_value in (value, np.int64(value)):
        if inside:
            out = V.as_int("n", given_value, minimum=minimum, maximum=maximum)
            assert out == value and type(out) is int
        else:
            with pytest.raises(V.ArgumentValueError, match=r"^invalid n: expected") as info:
                V.as_int("n", given_value, minimum=minimum, maximum=maximum)
            assert info.value.argument == "n" and isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [True, 2.0, "3", None, [1], np.float64(2)])
def test_as_int_refuses_non_integers_with_a_type_error(value):
    with pytest.raises(V.ArgumentTypeError, match="invalid batch_size: expected an integer") as info:
        V.as_int("batch_size", value)
    assert info.value.argument == "batch_size" and isinstance(info.value, TypeError)


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_as_float_positive_and_unit_interval(value):
    ok_positive = math.isfinite(value) and value > 0
    ok_unit = math.isfinite(value) and 0 <= value < 1
    for check, ok in ((lambda v: V.as_float("lr", v, low=0, low_open=True), ok_positive),
                      (lambda v: V.as_float("lr", v, low=0, high=1, high_open=True), ok_unit)):
        if ok:
            assert check(value) == value
        else:
            with pytest.raises(ValueError, match="invalid lr"):
                check(value)


def test_as_float_inf_only_when_allowed_and_types():
    assert V.as_float("max_loss", math.inf, low=0, low_open=True, allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="invalid max_loss"):
        V.as_float("max_loss", math.nan, low=0, low_open=True, allow_inf=True)
    for bad in (True, "1", 1j, None, np.ones(2)):
        with pytest.raises(TypeError, match="invalid lr: expected a real number"):
            V.as_float("lr", bad)


def test_choice_flag_distinct_generator():
    assert V.as_choice("loss", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="invalid loss: expected one of a, b, got 'c'"):
        V.as_choice("loss", "c", ("a", "b"))
    with pytest.raises(ValueError, match="invalid loss"):
        V.as_choice("loss", ["a"], ("a", "b"))
    assert V.as_flag("quiet", np.bool_(True)) is True
    with pytest.raises(TypeError, match="invalid quiet: expected True or False"):
        V.as_flag("quiet", 1)
    assert V.as_distinct("widths", [3, 1], V.as_int) == (3, 1)
    with pytest.raises(ValueError, match="repeat"):
        V.as_distinct("widths", (2, 2), V.as_int)
    with pytest.raises(ValueError, match="at least one value"):
        V.as_distinct("widths", (), V.as_int)
    with pytest.raises(TypeError, match="expected a sequence"):
        V.as_distinct("widths", "64", V.as_int)
    rng = np.random.default_rng(0)
    assert V.as_generator("rng", rng) is rng
    for bad in (0, None, np.random.RandomState(0)):
        with pytest.raises(TypeError, match="invalid rng: expected a numpy.random.Generator"):
            V.as_generator("rng", bad)


@given(rows=st.integers(0, 4), cols=st.integers(0, 3), ndim=st.sampled_from([1, 2]),
       poison=st.sampled_from([None, math.nan, math.inf]), as_list=st.booleans())
def test_as_array_shapes_emptiness_and_finiteness(rows, cols, ndim, poison, as_list):
    a = np.ones((rows, cols)) if ndim == 2 else np.ones(rows)
    if poison is not None and a.size:
        a.flat[0] = poison
    value = a.tolist() if as_list else a
    if a.size == 0:
        with pytest.raises(ValueError, match="invalid x"):
            V.as_array("x", value, ndim=ndim)
        return
    if poison is not None:
        with pytest.raises(ValueError, match="invalid x: expected finite values"):
            V.as_array("x", value, ndim=ndim)
        return
    out = V.as_array("x", value, ndim=ndim)
    assert isinstance(out, np.ndarray) and out.shape == a.shape
    with pytest.raises(ValueError, match=f"invalid x: expected a {3 - ndim}-D array"):
        V.as_array("x", value, ndim=3 - ndim)


@pytest.mark.parametrize("bad", ["abc", [[1.0, 2.0], [3.0]], np.array([1 + 1j]),
                                 np.array([object()])])
def test_as_array_refuses_non_numeric(bad):
    with pytest.raises(TypeError, match="invalid x: expected a real numeric array"):
        V.as_array("x", bad, ndim=1)


@given(labels=st.lists(st.integers(-3, 6), min_size=1, max_size=12), k=st.integers(1, 5))
def test_as_labels_range(labels, k):
    if min(labels) < 0 or max(labels) >= k:
        with pytest.raises(ValueError, match=rf"invalid y: expected labels in 0..{k - 1}"):
            V.as_labels("y", labels, k)
    else:
        out = V.as_labels("y", np.array(labels, np.float64), k)
        assert out.dtype == np.int64 and out.tolist() == labels
        with pytest.raises(ValueError, match="invalid y: expected integer class labels"):
            V.as_labels("y", np.array(labels, np.float64), k, allow_float=False)
    with pytest.raises(ValueError, match="invalid y: expected integer class labels"):
        V.as_labels("y", np.array(labels) + 0.5, 10)
