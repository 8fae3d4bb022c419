"""Audit: task trees and task graphs given in every documented form.

Oracles: cvxpy's optimum of the same objective (``cvx_oracle.solve_reference``), and the
same model written another way (explicit tree, dense adjacency).
"""

import warnings

import numpy as np
import pandas as pd
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


def test_default_complete_graph_equals_mean_regularized_and_scales_in_tasks():
    """The complete graph's penalty is ``alpha T sum_t ||w_t - w_mean||^2``: the fit equals
    MeanRegularized(T alpha) (closed form), with the explicit all-ones adjacency as a second
    oracle; on 300 tasks no dense (T, T (T - 1) / 2) incidence (108 MB) is formed."""
    import tracemalloc

    complete = ml.GraphRegularizedRegressor(alpha=0.3, task_col=0).fit(XL, Y)
    ones = np.ones((T, T)) - np.eye(T)
    explicit = ml.GraphRegularizedRegressor(alpha=0.3, graph=ones, task_col=0).fit(XL, Y)
    mean = ml.MeanRegularizedRegressor(alpha=0.3 * T, task_col=0).fit(XL, Y)
    np.testing.assert_allclose(complete.coef_, mean.coef_, atol=1e-9)
    np.testing.assert_allclose(explicit.coef_, mean.coef_, atol=1e-9)
    rng = np.random.default_rng(4)
    many = 300
    task = np.repeat(np.arange(many), 4)
    F = rng.standard_normal((task.size, 3))
    y = F.sum(1) + rng.standard_normal(task.size)
    tracemalloc.start()
    try:
        big = ml.GraphRegularizedRegressor(alpha=1.0, task_col=0).fit(np.column_stack([task, F]), y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    ref = ml.MeanRegularizedRegressor(alpha=float(many), task_col=0)
    ref.fit(np.column_stack([task, F]), y)
    np.testing.assert_allclose(big.coef_, ref.coef_, atol=1e-8)


def test_square_adjacency_of_the_wrong_size_names_the_expected_shape():
    # a (2, 2) numeric array with 3 tasks was read as an edge list ("an edge more than once")
    with pytest.raises(ValueError, match=r"shape \(2, 2\); expected \(3, 3\)"):
        ml.GraphRegularizedRegressor(graph=np.ones((2, 2)), task_col=0).fit(XL, Y)
    with pytest.raises(ValueError, match=r"expected \(3, 3\)"):
        ml.GraphRegularizedRegressor(graph=sp.csr_matrix(np.ones((2, 2))), task_col=0).fit(XL, Y)
    # a (2, 2) numeric array that is a valid edge list of 3 tasks stays one
    chain = ml.GraphRegularizedRegressor(graph=np.array([[0, 1], [1, 2]]), task_col=0).fit(XL, Y)
    listed = ml.GraphRegularizedRegressor(graph=[(0, 1), (1, 2)], task_col=0).fit(XL, Y)
    np.testing.assert_allclose(chain.coef_, listed.coef_, atol=1e-12)


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


TWO = TASK < 2  # the rows of tasks 0 and 1: a fit on two tasks


@pytest.mark.parametrize(
    ("graph", "rows", "n_tasks"),
    [
        # the edges 0-2 and 2-1 of a three-task graph on a fold with tasks 0 and 1: it was
        # read as an adjacency matrix fusing tasks 0 and 1 with weight 2 (the diagonal ignored)
        (np.array([[0, 2], [2, 1]]), r"edge list \[\(0, 2\), \(2, 1\)\]", 2),
        # weighted edges (s, t, weight): it was refused as an asymmetric adjacency, no more said
        (
            np.array([[0, 1, 0.5], [1, 2, 0.3], [0, 2, 1.0]]),
            r"not one: adjacency must be symmetric.*weighted edges \(s, t, weight\) "
            r"\[\(0\.0, 1\.0, 0\.5\)",
            3,
        ),
        # symmetric weighted edges: they were read as another graph (0-2 weight 2, 1-2 weight 0)
        (np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]), r"reads both as the adjacency", 3),
    ],
    ids=["pairs-2-tasks", "weighted-triples", "symmetric-weighted-triples"],
)
def test_square_numeric_array_whose_rows_read_as_edges_raises_naming_both(graph, rows, n_tasks):
    X, y = (XL[TWO], Y[TWO]) if n_tasks == 2 else (XL, Y)
    with pytest.raises(ValueError, match=rf"shape \({n_tasks}, {n_tasks}\).*{rows}"):
        ml.GraphRegularizedRegressor(graph=graph, task_col=0).fit(X, y)


def test_square_numeric_array_disambiguated_as_the_message_says():
    """The remedies the message names fit what each reading means. Oracles: the induced
    subgraph of the edges 0-2, 2-1 on tasks 0 and 1 has no edge (a fit with no graph term);
    an adjacency with a zero diagonal equals the same one as a labelled DataFrame."""
    X2, y2 = XL[TWO], Y[TWO]
    graph = np.array([[0, 2], [2, 1]])
    with pytest.warns(UserWarning, match="names task 2"):
        edges = ml.GraphRegularizedRegressor(alpha=10.0, graph=graph.tolist(), task_col=0)
        edges.fit(X2, y2)
    free = ml.GraphRegularizedRegressor(alpha=10.0, graph=[], task_col=0).fit(X2, y2)
    np.testing.assert_allclose(edges.coef_, free.coef_, atol=1e-10)
    zero = np.array([[0.0, 2.0], [2.0, 0.0]])
    dense = ml.GraphRegularizedRegressor(alpha=10.0, graph=zero, task_col=0).fit(X2, y2)
    frame = pd.DataFrame(zero, index=[0, 1], columns=[0, 1])
    framed = ml.GraphRegularizedRegressor(alpha=10.0, graph=frame, task_col=0).fit(X2, y2)
    np.testing.assert_allclose(dense.coef_, framed.coef_, atol=1e-10)
    assert np.abs(dense.coef_ - edges.coef_).max() > 1e-3  # the two readings differ


@pytest.mark.parametrize(
    "graph",
    [
        np.array([[0, 1], [1, 0]]),  # zero diagonal: rows (0, 1), (1, 0) are one edge twice
        np.array([[1.0, 0.5], [0.5, 1.0]]),  # constant diagonal: one edge twice
        np.array([[0.9, 0.5], [0.5, 0.8]]),  # rows name no fitted task
    ],
    ids=["zero-diagonal", "constant-diagonal", "no-task-named"],
)
def test_two_task_adjacency_whose_rows_are_no_edge_list_stays_an_adjacency(graph):
    """Oracle: the same weight on the one pair as a labelled DataFrame (diagonal ignored)."""
    X2, y2 = XL[TWO], Y[TWO]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ml.GraphRegularizedRegressor(alpha=3.0, graph=graph, task_col=0).fit(X2, y2)
    weight = float(graph[0, 1])
    frame = pd.DataFrame([[0.0, weight], [weight, 0.0]], index=[0, 1], columns=[0, 1])
    want = ml.GraphRegularizedRegressor(alpha=3.0, graph=frame, task_col=0).fit(X2, y2)
    np.testing.assert_allclose(got.coef_, want.coef_, atol=1e-10)


def test_invalid_square_array_says_how_it_was_read_and_how_to_pass_edges():
    # rows (0, 1), (0, 1): no adjacency (asymmetric) and no edge list (an edge twice)
    with pytest.raises(ValueError, match=r"read as the adjacency matrix.*not one.*\(s, t\) label"):
        ml.GraphRegularizedRegressor(graph=np.array([[0, 1], [0, 1]]), task_col=0).fit(
            XL[TWO], Y[TWO]
        )
