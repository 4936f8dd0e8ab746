"""Row/null-space tools: projectors, the two solver routes, the auto choice, pseudo-inverse.

Dense references (``numpy.linalg.pinv``, ``I − X⁺X``) are formed here only at small ``d``.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from linear_theory import (RowSpaceBasis, RowSpaceSolver, project_null, project_row, random_regression,
                           row_space_basis, row_space_solver)
from linear_theory.subspace import GRAM_MAX_CONDITION

EPS = np.finfo(np.float64).eps
seeds = st.integers(0, 2**32 - 1)


@st.composite
def data_matrices(draw, max_n=12, max_d=30):
    """(X, rank, kappa): wide, square-ish and tall shapes, full rank or rank deficient."""
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    rank = draw(st.integers(1, min(n, d)))
    kappa = draw(st.sampled_from([1.0, 10.0, 1e3]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e4]))
    problem = random_regression(n, d, rank=rank, condition_number=kappa, scale=scale, seed=draw(seeds))
    return problem.X, rank, kappa


def solvers(X):
    out = [row_space_solver(X, method="svd"), row_space_solver(X, method="auto")]
    n, d = X.shape
    if out[1].method == "gram":
        out.append(row_space_solver(X, method="gram"))
    return out


@given(data=data_matrices(), m=st.integers(1, 4), seed=seeds)
def test_projectors_split_identity_idempotent_and_annihilate(data, m, seed):
    X, rank, kappa = data
    n, d = X.shape
    A = np.random.default_rng(seed).standard_normal((d, m))
    norm_A, norm_X = np.linalg.norm(A), np.linalg.norm(X, 2)
    for solver in solvers(X):
        assert solver.rank == rank
        P_null, P_row = solver.project_null(A), solver.project_row(A)
        # P_row + P_null = I: project_null is defined as A − P_row A, so this holds to one rounding
        assert np.linalg.norm(P_row + P_null - A) <= 4 * EPS * norm_A
        # idempotence and X P_null = 0: each projector application is accurate to O(κ·eps) on the
        # Gram route (refined solve) and O(d·eps) on the SVD route
        tol = 100 * (kappa + d) * EPS * norm_A
        assert np.linalg.norm(solver.project_null(P_null) - P_null) <= tol, solver.method
        assert np.linalg.norm(solver.project_row(P_row) - P_row) <= tol, solver.method
        assert np.linalg.norm(X @ P_null) <= tol * norm_X, solver.method
        # vectors: the same maps column by column
        np.testing.assert_allclose(solver.project_null(A[:, 0]), P_null[:, 0], rtol=0, atol=tol)


@given(data=data_matrices(), seed=seeds)
def test_projectors_match_dense_reference(data, seed):
    X, rank, kappa = data
    d = X.shape[1]
    A = np.random.default_rng(seed).standard_normal((d, 3))
    s = np.linalg.svd(X, compute_uv=False)
    dense_null = np.eye(d) - np.linalg.pinv(X, rcond=max(X.shape) * EPS) @ X
    expected = dense_null @ A
    tol = 100 * (kappa + d) * EPS * np.linalg.norm(A)  # pinv is accurate to O(κ·eps) as well
    for solver in solvers(X):
        assert np.linalg.norm(solver.project_null(A) - expected) <= tol
    basis = row_space_basis(X)
    assert np.linalg.norm(project_null(basis, A) - expected) <= tol
    assert np.linalg.norm(project_null(X, A) - expected) <= tol
    assert np.linalg.norm(project_row(basis, A) - (A - expected)) <= tol
    assert np.linalg.norm(project_row(X, A) - (A - expected)) <= tol
    assert s[rank - 1] > 0


@given(data=data_matrices(), seed=seeds)
def test_pinv_agrees_with_numpy(data, seed):
    X, rank, kappa = data
    n = X.shape[0]
    b = np.random.default_rng(seed).standard_normal((n, 2))
    expected = np.linalg.pinv(X, rcond=max(X.shape) * EPS) @ b
    size = np.linalg.norm(expected)
    # forward error of a minimum-norm least-squares solve: O(κ·eps) relative, O(κ²·eps) when
    # X is rank deficient and b has a part outside col(X) (Wedin's bound); κ ≤ 1e3 here
    tol = 100 * (kappa + kappa ** 2 * (rank < n)) * EPS * size
    for solver in solvers(X):
        got = solver.pinv(b)
        assert np.linalg.norm(got - expected) <= tol, solver.method
        # one column at a time: the refinement may stop at another step, so equal to the same O(κ·eps)
        assert np.linalg.norm(solver.pinv(b[:, 0]) - got[:, 0]) <= tol
        # spectral_map with φ = 1/s is the same map without refinement: O(κ²·eps) on the Gram route
        phi = solver.spectral_map(b, lambda s: 1.0 / s)
        assert np.linalg.norm(phi - expected) <= 100 * kappa ** 2 * EPS * size, solver.method


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1e3, 1e4])
def test_gram_and_svd_routes_agree_to_kappa_eps(kappa):
    worst = 0.0
    for seed in range(5):
        problem = random_regression(20, 60, condition_number=kappa, seed=seed)
        X = problem.X
        rng = np.random.default_rng(seed)
        b, A = rng.standard_normal(20), rng.standard_normal((60, 3))
        gram, svd = row_space_solver(X, method="gram"), row_space_solver(X, method="svd")
        assert gram.method == "gram" and svd.method == "svd"
        np.testing.assert_allclose(gram.singular_values, svd.singular_values, rtol=100 * kappa ** 2 * EPS)
        for lam in (0.0, 1e-3, 1.0):
            ref = svd.shifted_solve(b, lam)
            worst = max(worst, np.linalg.norm(gram.shifted_solve(b, lam) - ref) / np.linalg.norm(ref))
        worst = max(worst, np.linalg.norm(gram.project_null(A) - svd.project_null(A)) / np.linalg.norm(A))
    # Both routes are backward stable, so they differ by the forward error O(κ·eps); the
    # constant 100 covers n = 20 (measured worst about 5·κ·eps at κ = 1, 0.2·κ·eps at κ ≥ 1e3).
    # Without refinement the Gram route would be off by O(κ²·eps) = 2e-8 at κ = 1e4.
    assert worst <= 100 * kappa * EPS


def test_shifted_solve_matches_dense_ridge():
    problem = random_regression(8, 25, condition_number=30.0, seed=3)
    X = problem.X
    b = np.random.default_rng(0).standard_normal(8)
    for lam in (1e-6, 0.1, 10.0):
        dense = X.T @ np.linalg.solve(X @ X.T + lam * np.eye(8), b)
        for solver in solvers(X):
            # κ(XXᵀ + λI) ≤ 900: the dense solve itself is accurate to about 1e-13
            np.testing.assert_allclose(solver.shifted_solve(b, lam), dense, rtol=1e-11, atol=1e-14)


def test_auto_route_choice():
    well = random_regression(10, 40, condition_number=10.0, seed=0).X
    assert row_space_solver(well).method == "gram"
    ill = random_regression(10, 40, condition_number=1e6, seed=0).X
    assert row_space_solver(ill).method == "svd"
    assert row_space_solver(random_regression(10, 40, condition_number=GRAM_MAX_CONDITION * 10, seed=1).X).method == "svd"
    deficient = random_regression(10, 40, rank=6, seed=0).X
    solver = row_space_solver(deficient)
    assert solver.method == "svd" and solver.rank == 6
    tall = random_regression(40, 10, seed=0).X
    assert row_space_solver(tall).method == "svd"
    # forcing the Gram route on a numerically rank-deficient X is refused rather than inverting noise
    with pytest.raises(ValueError, match="method='gram' needs X of full row rank"):
        row_space_solver(deficient, method="gram")
    with pytest.raises(ValueError, match="method='gram' needs a wide X"):
        row_space_solver(tall, method="gram")


def test_auto_on_ill_conditioned_x_keeps_float64_accuracy():
    for kappa in (1e6, 1e9):
        X = random_regression(10, 40, condition_number=kappa, seed=2).X
        b = np.random.default_rng(1).standard_normal(10)
        solver = row_space_solver(X)
        x = solver.pinv(b)
        # consistent system (full row rank): the residual is backward-error sized, eps·‖X‖‖x‖
        assert np.linalg.norm(X @ x - b) <= 100 * EPS * np.linalg.norm(X, 2) * np.linalg.norm(x)


@given(n=st.integers(1, 10), d=st.integers(1, 30), seed=seeds)
def test_row_space_basis_orthonormal_with_requested_spectrum(n, d, seed):
    rank = min(n, d)
    spectrum = np.geomspace(5.0, 0.5, rank)
    X = random_regression(n, d, spectrum=spectrum, seed=seed).X
    basis = row_space_basis(X)
    assert isinstance(basis, RowSpaceBasis) and basis.rank == rank
    assert basis.V.shape == (d, rank) and basis.U.shape == (n, rank)
    np.testing.assert_allclose(basis.V.T @ basis.V, np.eye(rank), atol=50 * d * EPS)
    np.testing.assert_allclose(basis.s, spectrum, rtol=50 * max(n, d) * EPS)
    np.testing.assert_allclose((basis.U * basis.s) @ basis.V.T, X, atol=50 * max(n, d) * EPS * 5.0)


def test_rank_tolerance_decides_rank():
    spectrum = np.array([1.0, 1e-3, 1e-9])
    X = random_regression(3, 10, spectrum=spectrum, seed=0).X
    assert row_space_basis(X).rank == 3
    assert row_space_basis(X, rtol=1e-6).rank == 2
    assert row_space_solver(X, method="svd", rtol=1e-2).rank == 1
    zero = row_space_solver(np.zeros((3, 5)))
    assert zero.rank == 0 and zero.stability_bound == float("inf")
    np.testing.assert_array_equal(zero.project_null(np.ones(5)), np.ones(5))


def test_solver_properties():
    spectrum = np.array([4.0, 2.0, 0.5])
    X = random_regression(3, 9, spectrum=spectrum, seed=4).X
    for solver in solvers(X):
        assert isinstance(solver, RowSpaceSolver)
        assert solver.cond == pytest.approx(8.0, rel=1e-12)
        assert solver.stability_bound == pytest.approx(1 / 16, rel=1e-12)


@given(data=data_matrices(), c=st.sampled_from([1e-200, 1e-150, 1e120]))
def test_pseudo_inverse_is_homogeneous_at_extreme_scales(data, c):
    """(cX)⁺ = X⁺/c: the route chosen for cX (SVD where XXᵀ would leave the float range) keeps it."""
    X, rank, kappa = data
    b = X @ np.random.default_rng(0).standard_normal(X.shape[1])  # b ∈ col(X)
    base = row_space_solver(X).pinv(b)
    scaled = row_space_solver(c * X).pinv(b)
    # both are O(κ·eps) forward-accurate; c·X rounds each entry by eps
    tol = 1e3 * kappa * max(X.shape) * EPS * np.linalg.norm(base)
    assert np.linalg.norm(c * scaled - base) <= tol
    assert row_space_solver(c * X).rank == row_space_solver(X).rank


def test_gram_route_is_not_taken_outside_the_float_range():
    X = random_regression(3, 8, seed=1).X
    assert row_space_solver(X).method == "gram"
    for c in (1e-160, 1e160):  # ‖cX‖² under- or overflows the normal range
        assert row_space_solver(c * X).method == "svd"
        with pytest.raises(ValueError, match="method='gram' needs X whose Gram matrix"):
            row_space_solver(c * X, method="gram")
    with pytest.raises(ValueError, match=r"X and b hold values too large .* RowSpaceSolver\.spectral_map"):
        row_space_solver(X).spectral_map(np.full(3, 1e308), lambda s: 1e10 / s)
