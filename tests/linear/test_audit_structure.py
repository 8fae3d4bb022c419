"""Audit: task trees and task graphs given in every documented form.

Oracles: cvxpy's optimum of the same objective (``cvx_oracle.solve_reference``), and the
same model written another way (explicit tree, dense adjacency).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from audit_data import task_problem
from sklearn.exceptions import ConvergenceWarning

import multitask.linear as ml
from multitask.linear.penalties import TreeGroupLasso

N, P, T = 60, 3, 3
RNG, X, TASK, Y, XL = task_problem(11, N, P, T)


def test_tree_leaving_tasks_unpenalised_converges_to_the_optimum():
    # tasks 1 and 2 are in no group: their duality gap was stuck at 1 (20,000 iterations)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = ml.TreeGroupLassoRegressor(alpha=0.2, tree=[[0]], task_col=0).fit(XL, Y)
    assert est.n_iter_ < 5000
    oracle = pytest.importorskip("cvx_oracle")
    X_list = [X[TASK == t] for t in range(T)]
    y_list = [Y[TASK == t] for t in range(T)]
    _, _, best = oracle.solve_reference(X_list, y_list, TreeGroupLasso(0.2, groups=[[0]]))
    assert abs(est.objective_ - best) <= 1e-6 * abs(best)


def test_tree_weights_apply_to_the_default_tree():
    # they were silently ignored with tree=None
    weights = [0.5, 1.0, 2.0, 3.0]
    default = ml.TreeGroupLassoRegressor(alpha=0.1, tree_weights=weights, task_col=0)
    explicit = ml.TreeGroupLassoRegressor(
        alpha=0.1, tree=[[0], [1], [2], [0, 1, 2]], tree_weights=weights, task_col=0
    )
    np.testing.assert_allclose(default.fit(XL, Y).coef_, explicit.fit(XL, Y).coef_, atol=1e-10)
    plain = ml.TreeGroupLassoRegressor(alpha=0.1, task_col=0).fit(XL, Y)
    assert np.abs(plain.coef_ - default.coef_).max() > 1e-3


def test_tree_weights_of_wrong_length_for_the_default_tree_raise():
    with pytest.raises(ValueError, match="per group"):
        ml.TreeGroupLassoRegressor(tree_weights=[1.0, 2.0], task_col=0).fit(XL, Y)


def test_sparse_adjacency_equals_dense():
    A = np.array([[0.0, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    dense = ml.GraphRegularizedRegressor(graph=A, task_col=0).fit(XL, Y)
    sparse = ml.GraphRegularizedRegressor(graph=sp.csr_matrix(A), task_col=0).fit(XL, Y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-12)


@pytest.mark.parametrize(
    "graph",
    [[[0, 1, 1], [1, 0, 1], [1, 1, 0]], [(0, 1, 2.0)], ["ab"]],
    ids=["list-adjacency", "weighted-triple", "string"],
)
def test_malformed_graph_says_what_to_pass(graph):
    with pytest.raises(ValueError, match="not a pair of task labels"):
        ml.GraphRegularizedRegressor(graph=graph, task_col=0).fit(XL, Y)


def test_a_two_task_edge_array_of_labels_and_repeated_edges():
    """With two tasks, a (2, 2) array of task labels is an edge list (it was read as an
    adjacency matrix and failed to convert the labels to floats); an edge listed both ways
    is refused (it counted twice, weight 2, against the documented weight 1). Oracle: the
    same graph given as a list of pairs."""
    rng = np.random.default_rng(3)
    X2 = rng.normal(size=(40, 2))
    task = np.repeat(np.array(["a", "b"], dtype=object), 20)
    y2 = X2 @ np.array([1.0, -1.0]) + 0.1 * rng.normal(size=40)
    XL2 = np.column_stack([task, X2])
    edges = np.array([["a", "b"], ["b", "a"]], dtype=object)
    with pytest.raises(ValueError, match="edge more than once"):
        ml.GraphRegularizedRegressor(graph=edges, task_col=0).fit(XL2, y2)
    as_array = ml.GraphRegularizedRegressor(graph=edges[:1], task_col=0).fit(XL2, y2)
    as_list = ml.GraphRegularizedRegressor(graph=[("a", "b")], task_col=0).fit(XL2, y2)
    np.testing.assert_allclose(as_array.coef_, as_list.coef_, atol=1e-12)
    square = np.array([["a", "b"], ["a", "b"]], dtype=object)  # (2, 2): edges, not a matrix
    with pytest.raises(ValueError, match="edge more than once"):
        ml.GraphRegularizedRegressor(graph=square, task_col=0).fit(XL2, y2)
