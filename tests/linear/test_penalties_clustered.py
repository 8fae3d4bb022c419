"""Clustered MTL pieces: value, gradients, the constraint projection, the optimal M."""

import cvxpy as cp
import numpy as np
import pytest
from cvx_oracle import solve_reference_clustered
from test_penalties_smooth import numeric_gradient

from multitask.linear.penalties import clustered


def random_M(rng, n_tasks=5):
    Q, _ = np.linalg.qr(rng.standard_normal((n_tasks, n_tasks)))
    return (Q * rng.uniform(0, 1, n_tasks)) @ Q.T


def test_value_matches_cvxpy_matrix_frac():
    rng = np.random.default_rng(40)
    W, M, eta = rng.standard_normal((4, 5)), random_M(rng), 0.7
    Wt, Mv = cp.Variable((5, 4)), cp.Variable((5, 5), symmetric=True)
    Wt.value, Mv.value = W.T, M
    expected = eta * (1 + eta) * cp.matrix_frac(Wt, eta * np.eye(5) + Mv).value
    assert clustered.cmtl_value(W, M, eta) == pytest.approx(expected, rel=1e-10)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(41)
    W, M, eta = rng.standard_normal((4, 5)), random_M(rng), 0.7
    grad_W = numeric_gradient(lambda X: clustered.cmtl_value(X, M, eta), W)
    grad_M = numeric_gradient(lambda X: clustered.cmtl_value(W, X, eta), M)
    np.testing.assert_allclose(clustered.cmtl_grad_W(W, M, eta), grad_W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(clustered.cmtl_grad_M(W, M, eta), grad_M, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("k", [1, 2.5, 4])
def test_projection_matches_cvxpy(k):
    rng = np.random.default_rng(42)
    A = rng.standard_normal((5, 5)) * 1.5
    M = (A + A.T) / 2
    X = cp.Variable((5, 5), symmetric=True)
    constraints = [X >> 0, np.eye(5) - X >> 0, cp.trace(X) == k]
    cp.Problem(cp.Minimize(cp.sum_squares(X - M)), constraints).solve(solver="CLARABEL")
    P = clustered.project_cluster_constraint(M, k)
    np.testing.assert_allclose(P, X.value, atol=1e-6)
    eig = np.linalg.eigvalsh(P)
    assert eig.min() > -1e-12 and eig.max() < 1 + 1e-12
    assert np.trace(P) == pytest.approx(k, abs=1e-10)


@pytest.mark.parametrize("k", [1, 2, 3.5])
def test_optimal_M_matches_cvxpy(k):
    rng = np.random.default_rng(43)
    W, eta = rng.standard_normal((6, 5)), 0.5
    M = cp.Variable((5, 5), symmetric=True)
    constraints = [M >> 0, np.eye(5) - M >> 0, cp.trace(M) == k]
    problem = cp.Problem(cp.Minimize(cp.matrix_frac(W.T, eta * np.eye(5) + M)), constraints)
    problem.solve(solver="CLARABEL")
    M_opt = clustered.cmtl_optimal_M(W, eta, k)
    assert np.trace(M_opt) == pytest.approx(k, abs=1e-9)
    eig = np.linalg.eigvalsh(M_opt)
    assert eig.min() > -1e-12 and eig.max() < 1 + 1e-12
    value = clustered.cmtl_value(W, M_opt, eta) / (eta * (1 + eta))
    assert value == pytest.approx(problem.value, rel=1e-6)
    # no worse than cvxpy's M made exactly feasible
    M_cvx = clustered.project_cluster_constraint(M.value, k)
    assert clustered.cmtl_value(W, M_opt, eta) <= clustered.cmtl_value(W, M_cvx, eta) + 1e-12


def test_optimal_M_of_rank_deficient_W_is_feasible():
    W = np.zeros((3, 4))
    W[:, 0] = 1.0
    M = clustered.cmtl_optimal_M(W, 0.5, 3)
    assert np.trace(M) == pytest.approx(3)
    assert np.linalg.eigvalsh(M).max() < 1 + 1e-12


def test_reference_solution_is_a_fixed_point_of_the_pieces():
    """At the cvxpy optimum (W, M): M minimises the term for W, and the W-gradient of
    datafit + alpha * term vanishes (squared loss, intercepts fitted)."""
    rng = np.random.default_rng(44)
    X_list = [rng.standard_normal((15, 4)) for _ in range(4)]
    w_true = rng.standard_normal(4)
    y_list = [X @ (w_true + 0.3 * rng.standard_normal(4)) for X in X_list]
    alpha, eta, k = 0.1, 0.5, 2
    W, b, M, _ = solve_reference_clustered(X_list, y_list, alpha, eta, k)
    term = clustered.cmtl_value(W, M, eta)
    assert term <= clustered.cmtl_value(W, clustered.cmtl_optimal_M(W, eta, k), eta) + 1e-6
    grad = alpha * clustered.cmtl_grad_W(W, M, eta)
    for t, (X, y) in enumerate(zip(X_list, y_list, strict=True)):
        grad[:, t] -= X.T @ (y - X @ W[:, t] - b[t]) / len(y)
    assert np.abs(grad).max() < 1e-6


def test_bad_inputs():
    with pytest.raises(ValueError, match="eta"):
        clustered.cmtl_value(np.ones((2, 3)), np.eye(3), 0.0)
    with pytest.raises(ValueError, match="shape"):
        clustered.cmtl_grad_W(np.ones((2, 3)), np.eye(2), 1.0)
    with pytest.raises(ValueError, match="clusters"):
        clustered.project_cluster_constraint(np.eye(3), 4)
