"""Covariance families: the sample is θ = μ + S z (or μ + s ε), the closed-form variance equals
the variance of sampled outputs, and the family's layout is the documented covariance."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from variational_nets.covariances import DiagonalCovariance, FactorCovariance, make_covariance
from variational_nets.layers import VariationalLinear
from variational_nets.parametrization import Parametrization


def _layer(covariance, n_in=3, n_out=2, rank=4, seed=0):
    return VariationalLinear(n_in, n_out, "output", Parametrization("mup"),
                             np.random.default_rng(seed), dtype=np.float64,
                             covariance=covariance, rank=rank)


@given(n_in=st.integers(1, 4), n_out=st.integers(1, 3), rank=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_factor_sample_is_mean_plus_dense_factor_times_z(n_in, n_out, rank, seed):
    rank = min(rank, n_out * n_in + n_out)
    layer = _layer("lowrank", n_in, n_out, rank, seed)
    z = layer.sample_noise(np.random.default_rng(seed + 1))
    w, b = layer.sampled_weights(z)
    prm = layer.params
    # S = concat(factor_weight.reshape(P_w, R), factor_bias), θ = concat(W.ravel(), b)
    S = np.concatenate([prm["factor_weight"].reshape(-1, rank), prm["factor_bias"]])
    theta = np.concatenate([prm["weight"].ravel(), prm["bias"]]) + S @ z
    np.testing.assert_allclose(np.concatenate([w.ravel(), b]), theta, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("covariance", ["full", "lowrank", "diagonal"])
def test_closed_form_variance_equals_the_covariance_of_the_outputs(covariance):
    """v_o = [x; 1]ᵀ Σ_o [x; 1] with Σ = S Sᵀ or diag(s²), computed from the dense covariance."""
    layer = _layer(covariance, rank=3)
    x = np.random.default_rng(1).standard_normal((5, 3))
    m, v, _ = layer.moments(x)
    prm = layer.params
    if covariance == "diagonal":
        cov = np.diag(np.concatenate([prm["scale_weight"].ravel(), prm["scale_bias"]]) ** 2)
    else:
        S = np.concatenate([prm["factor_weight"].reshape(-1, layer.rank), prm["factor_bias"]])
        cov = S @ S.T
    n_out, n_in = 2, 3
    for o in range(n_out):
        idx = np.r_[o * n_in:(o + 1) * n_in, n_out * n_in + o]  # W[o, :] and b[o] in θ
        xe = np.hstack([x, np.ones((5, 1))])
        expected = np.einsum("ni,ij,nj->n", xe, cov[np.ix_(idx, idx)], xe)
        np.testing.assert_allclose(v[:, o], expected, rtol=1e-12)
    np.testing.assert_allclose(m, x @ prm["weight"].T + prm["bias"], rtol=1e-13)


def test_diagonal_sample_and_kl_at_the_prior():
    layer = _layer("diagonal")
    eps = layer.sample_noise(np.random.default_rng(2))
    w, b = layer.sampled_weights(eps)
    np.testing.assert_array_equal(w, layer.params["weight"] + layer.params["scale_weight"] * eps[0])
    # q = p at initialisation (scales = prior stds, KL against N(0, σ²) of the means only)
    kl, grads = layer.kl({"weight": 1e3, "bias": 1e3})
    assert kl > 0 and set(grads) == {"weight", "bias", "scale_weight", "scale_bias"}
    with pytest.raises(ValueError, match="diagonal"):
        _layer("lowrank").kl()


def test_make_covariance_ranks_and_bad_input():
    assert make_covariance("full", 3, 2).rank == 8
    assert isinstance(make_covariance("diagonal", 3, 2), DiagonalCovariance)
    low = make_covariance("lowrank", 3, 2, 8)
    assert isinstance(low, FactorCovariance) and low.rank == 8
    with pytest.raises(ValueError, match=r"invalid rank: expected an integer in \[1, 8\], got 9"):
        make_covariance("lowrank", 3, 2, 9)
    for bad in (0, None):
        with pytest.raises((ValueError, TypeError), match="invalid rank"):
            make_covariance("lowrank", 3, 2, bad)
    with pytest.raises(ValueError, match="invalid covariance"):
        make_covariance("kronecker", 3, 2)
