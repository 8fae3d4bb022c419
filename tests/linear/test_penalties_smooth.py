"""Smooth penalties: gradients, Lipschitz constants, the Evgeniou-Pontil form, task graphs."""

import numpy as np
import pytest
from test_penalties_prox import SMOOTH

from multitask.linear import penalties as P


def numeric_gradient(f, W, eps=1e-6):
    grad = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = eps
        grad[idx] = (f(W + E) - f(W - E)) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", SMOOTH)
def test_gradient_matches_finite_differences(name):
    penalty = SMOOTH[name]()
    W = np.random.default_rng(30).standard_normal((4, 5))
    np.testing.assert_allclose(
        penalty.gradient(W), numeric_gradient(penalty.value, W), rtol=1e-7, atol=1e-8
    )


@pytest.mark.parametrize("name", SMOOTH)
def test_lipschitz_is_the_largest_hessian_eigenvalue(name):
    """The penalties are quadratic: the Hessian is the matrix of W -> gradient(W)."""
    penalty = SMOOTH[name]()
    shape = (3, 5)
    columns = [penalty.gradient(E.reshape(shape)).ravel() for E in np.eye(15)]
    hessian = np.stack(columns, axis=1)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    assert penalty.lipschitz() == pytest.approx(np.linalg.eigvalsh(hessian).max(), rel=1e-12)


def test_ridge_closed_form():
    W = np.array([[1.0, 2.0], [3.0, -1.0]])
    assert P.Ridge(0.5).value(W) == pytest.approx(0.5 * 15)
    np.testing.assert_allclose(P.Ridge(0.5).gradient(W), W)


def test_mean_regularized_equals_evgeniou_pontil_after_minimising_w0():
    """lambda_1/T sum ||w_t - w_0||^2 + lambda_2 ||w_0||^2 minimised over w_0 (a least
    squares problem solved numerically) equals the penalty built by from_evgeniou_pontil."""
    rng = np.random.default_rng(31)
    W = rng.standard_normal((4, 6))
    lambda_1, lambda_2, n_tasks = 0.9, 0.4, W.shape[1]

    def paper(w0):
        return lambda_1 / n_tasks * np.sum((W - w0[:, None]) ** 2) + lambda_2 * np.sum(w0**2)

    # normal equations of the quadratic in w0
    w0 = (lambda_1 / n_tasks * W.sum(axis=1)) / (lambda_1 + lambda_2)
    assert np.allclose(numeric_gradient(paper, w0), 0, atol=1e-7)
    penalty = P.MeanRegularized.from_evgeniou_pontil(lambda_1, lambda_2, n_tasks)
    assert penalty.value(W) == pytest.approx(paper(w0), rel=1e-12)
    # converse mapping stated in the docstring
    assert n_tasks * (penalty.alpha + penalty.beta) == pytest.approx(lambda_1)
    assert n_tasks * (penalty.alpha + penalty.beta) * penalty.beta / penalty.alpha == (
        pytest.approx(lambda_2)
    )


def test_mean_regularized_is_zero_for_identical_tasks():
    W = np.tile(np.array([[1.0], [2.0]]), (1, 4))
    assert P.MeanRegularized(3.0, 0.0).value(W) == pytest.approx(0.0)


def test_graph_matrix_from_edges_gives_weighted_differences():
    rng = np.random.default_rng(32)
    W = rng.standard_normal((3, 4))
    edges, weights = [[0, 1], [2, 3], [1, 3]], [1.0, 0.5, 2.0]
    R = P.graph_matrix_from_edges(edges, 4, weights)
    pairs = zip(edges, weights, strict=True)
    expected = sum(c**2 * np.sum((W[:, i] - W[:, j]) ** 2) for (i, j), c in pairs)
    assert P.GraphRegularized(R, 1.0).value(W) == pytest.approx(expected)


def test_graph_matrix_from_adjacency_gives_the_laplacian():
    A = np.array([[0, 1, 0, 2], [1, 0, 3, 0], [0, 3, 0, 0], [2, 0, 0, 0]], dtype=float)
    R = P.graph_matrix_from_adjacency(A)
    np.testing.assert_allclose(R @ R.T, np.diag(A.sum(axis=1)) - A, atol=1e-12)


def test_graph_regularized_checks_n_tasks():
    R = P.graph_matrix_from_edges([[0, 1]], 2)
    with pytest.raises(ValueError, match="tasks"):
        P.GraphRegularized(R).value(np.zeros((3, 4)))


def test_graph_regularized_accepts_sparse_R():
    from scipy import sparse

    R = P.graph_matrix_from_edges([[0, 1], [1, 2]], 3)
    W = np.random.default_rng(33).standard_normal((2, 3))
    dense = P.GraphRegularized(R, 0.5, 0.1)
    assert P.GraphRegularized(sparse.csr_matrix(R), 0.5, 0.1).value(W) == dense.value(W)


def _dense_incidence_penalty(R, alpha, beta, W):
    """The penalty computed from a dense incidence matrix ``R`` (the old path): value,
    gradient and Lipschitz constant."""
    value = alpha * np.sum((W @ R) ** 2) + beta * np.sum(W**2)
    grad = 2 * alpha * W @ R @ R.T + 2 * beta * W
    return value, grad, 2 * (alpha * np.linalg.norm(R, ord=2) ** 2 + beta)


@pytest.mark.parametrize("kind", ["adjacency", "sparse", "edges", "complete"])
def test_graph_penalty_from_the_laplacian_matches_the_dense_incidence(kind):
    from scipy import sparse

    rng = np.random.default_rng(34)
    T = 7
    A = np.triu(rng.uniform(0.0, 2.0, (T, T)) * (rng.uniform(size=(T, T)) < 0.5), 1)
    A = A + A.T
    edges = np.argwhere(np.triu(A, 1) > 0)
    if kind == "complete":
        A = np.ones((T, T)) - np.eye(T)
        pen = P.GraphRegularized.complete(T, 0.7, 0.2)
    elif kind == "adjacency":
        pen = P.GraphRegularized(laplacian=P.laplacian_from_adjacency(A), alpha=0.7, beta=0.2)
    elif kind == "sparse":
        L = P.laplacian_from_adjacency(sparse.csr_matrix(A))
        pen = P.GraphRegularized(laplacian=L, alpha=0.7, beta=0.2)
    else:
        A = (A > 0).astype(float)
        pen = P.GraphRegularized(laplacian=P.laplacian_from_edges(edges, T), alpha=0.7, beta=0.2)
    R = P.graph_matrix_from_adjacency(A)
    W = rng.standard_normal((4, T))
    value, grad, lipschitz = _dense_incidence_penalty(R, 0.7, 0.2, W)
    assert pen.value(W) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(pen.gradient(W), grad, rtol=1e-12, atol=1e-12)
    assert pen.lipschitz() == pytest.approx(lipschitz, rel=1e-12)
    np.testing.assert_allclose(pen.laplacian_matrix().toarray(), R @ R.T, atol=1e-12)


def test_complete_graph_is_mean_regularized_times_n_tasks():
    # sum_{s<t} ||w_s - w_t||^2 = T sum_t ||w_t - w_mean||^2 (closed form)
    W = np.random.default_rng(35).standard_normal((3, 9))
    graph, mean = P.GraphRegularized.complete(9, 0.4, 0.1), P.MeanRegularized(9 * 0.4, 0.1)
    assert graph.value(W) == pytest.approx(mean.value(W), rel=1e-12)
    np.testing.assert_allclose(graph.gradient(W), mean.gradient(W), rtol=1e-12, atol=1e-12)
    assert graph.lipschitz() >= mean.lipschitz() * (1 - 1e-12)  # 2 (alpha T + beta): exact


def test_graph_penalty_keeps_the_laplacian_sparse_for_a_sparse_graph():
    # a chain on 20,000 tasks: the dense incidence (T, T - 1) would take 3.2 GB
    T = 20_000
    edges = np.column_stack([np.arange(T - 1), np.arange(1, T)])
    pen = P.GraphRegularized(laplacian=P.laplacian_from_edges(edges, T), alpha=1.0)
    W = np.random.default_rng(36).standard_normal((2, T))
    assert pen.value(W) == pytest.approx(np.sum(np.diff(W, axis=1) ** 2), rel=1e-12)
    assert 4.0 - 1e-3 <= pen.lipschitz() / 2 <= 4.0 * (1 + 1e-5)  # lambda_max -> 4 (path)
    assert pen.laplacian_matrix().nnz == 3 * T - 2
