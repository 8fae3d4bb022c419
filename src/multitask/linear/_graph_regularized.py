"""Graph-regularised multi-task learning (MALSAR ``Least_SRMTL`` with a ridge term).

Penalty (smooth): ``alpha * sum_{(s, t) in E} a_st ||w_s - w_t||^2 + beta * ||W||_F^2``
for a task graph with edge weights ``a_st``.

References
----------
Zhou, Chen & Ye, "MALSAR: Multi-tAsk Learning via StructurAl
Regularization", Arizona State University, 2011, Sec. 3.6 (SRMTL); Evgeniou,
Micchelli & Pontil, "Learning multiple tasks with kernel methods", JMLR 6, 2005, eq. (23).
"""

import numpy as np
import pandas as pd
from scipy import sparse

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)
from multitask.linear._task_structure import label_codes, warn_absent
from multitask.linear._validation import task_label

__all__ = ["GraphRegularizedClassifier", "GraphRegularizedRegressor"]


class _GraphRegularized(MultiTaskLinearModel):
    _strengths = ("alpha", "beta")

    def __init__(
        self,
        alpha=1.0,
        *,
        beta=0.01,
        graph=None,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        warm_start=False,
        unseen_task="mean",
    ):
        self.alpha = alpha
        self.beta = beta
        self.graph = graph
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.unseen_task = unseen_task

    def _make_penalty(self, data):
        from multitask.linear.penalties import GraphRegularized

        L = task_graph_laplacian(self.graph, data.tasks)
        if L is None:  # the complete graph: an operator, never a (T, T) or larger matrix
            return None, [GraphRegularized.complete(data.n_tasks, self.alpha, self.beta)]
        return None, [GraphRegularized(laplacian=L, alpha=self.alpha, beta=self.beta)]


def task_graph_laplacian(graph, tasks):
    """Sparse graph Laplacian ``L`` with ``tr(W L W^T) = sum a_st ||w_s - w_t||^2``, or
    None for the complete graph (``graph=None``).

    A graph given by task labels (an edge list, a labelled DataFrame) is checked whole,
    then restricted to the fitted tasks: edges with an absent end are dropped (the induced
    subgraph), with a warning naming the absent labels.

    Parameters
    ----------
    graph : ndarray of shape (n_tasks, n_tasks), scipy sparse matrix, DataFrame, sequence
        of label pairs, or None
    tasks : ndarray of shape (n_tasks,)
        Sorted task labels.
    """
    from multitask.linear.penalties import laplacian_from_adjacency, laplacian_from_edges

    n_tasks = len(tasks)
    if graph is None:
        return None
    if isinstance(graph, pd.DataFrame):
        return laplacian_from_adjacency(_frame_adjacency(graph, tasks))
    expected = (n_tasks, n_tasks)
    if sparse.issparse(graph):
        if graph.shape != expected:
            raise ValueError(_shape_message(graph.shape, n_tasks))
        return laplacian_from_adjacency(graph)
    # an array of task labels (not numbers) is an edge list, whatever its shape: with two
    # tasks a (2, 2) array of labels was read as an adjacency matrix
    matrix = isinstance(graph, np.ndarray) and graph.dtype.kind in "biuf"
    if matrix and graph.shape == expected:
        return _array_laplacian(graph, tasks)
    if matrix and graph.ndim == 2 and graph.shape[1] != 2:
        raise ValueError(_shape_message(graph.shape, n_tasks))
    try:
        edges = _edge_list(graph, tasks)
    except ValueError as err:
        if matrix and graph.ndim == 2 and graph.shape[0] == graph.shape[1]:
            # a square numeric array of the wrong size: most likely an adjacency matrix
            raise ValueError(
                f"{_shape_message(graph.shape, n_tasks)} Read as an edge list it fails: {err}"
            ) from None
        raise
    return laplacian_from_edges(edges, n_tasks)


def _array_laplacian(matrix, tasks):
    """Laplacian of a numeric ``(n_tasks, n_tasks)`` array, the adjacency matrix: refused,
    with both readings named, where its rows also read as edges (then either was meant)."""
    from multitask.linear.penalties import laplacian_from_adjacency

    rows = _rows_as_edges(matrix, tasks)
    try:
        laplacian = laplacian_from_adjacency(matrix)
    except ValueError as err:
        raise ValueError(_array_message(matrix, str(err), rows)) from None
    if rows is not None:
        raise ValueError(_array_message(matrix, None, rows))
    return laplacian


def _rows_as_edges(matrix, tasks):
    """The rows of a numeric ``(n_tasks, n_tasks)`` array as tuples if they also read as
    edges ``(s, t)`` or weighted edges ``(s, t, weight)``: pairs of distinct labels, each
    pair once, naming a fitted task at least once. Else None.

    Only 2 or 3 tasks give rows of that length, and only a diagonal whose first two entries
    differ lets rows 0 and 1 be distinct pairs: a zero or constant diagonal is never read
    as edges.
    """
    if matrix.shape[1] not in (2, 3):
        return None
    codes, _ = label_codes(matrix[:, :2].ravel(), tasks)
    pairs = np.sort(codes.reshape(-1, 2), axis=1)
    distinct = np.all(pairs[:, 0] != pairs[:, 1]) and len(np.unique(pairs, axis=0)) == len(pairs)
    if not distinct or not np.any(pairs < len(tasks)):
        return None
    return [tuple(task_label(value) for value in row) for row in matrix]


def _array_message(matrix, problem, rows):
    """Why a numeric ``(n_tasks, n_tasks)`` array was refused as the task graph, and what
    to pass: ``problem`` is why it is no adjacency matrix (None if it is one), ``rows`` its
    rows if they read as edges too (None if not)."""
    n = matrix.shape[0]
    head = f"graph is a numeric array of shape ({n}, {n}), "
    adjacency = f"the adjacency matrix of the {n} fitted tasks (rows and columns in tasks_ order)"
    if problem is not None:
        head += f"so it is read as {adjacency}, and it is not one: {problem}."
    if rows is None:
        return f"{head} To give an edge list instead, pass a list of (s, t) label pairs."
    listed = ", ".join(repr(row) for row in rows)
    if matrix.shape[1] == 2:
        edges = f"the edge list [{listed}]"
        remedy = (
            "Say which is meant: an edge list as a list of (s, t) label pairs "
            "(graph.tolist()); an adjacency matrix with a zero diagonal (the adjacency "
            "reading ignores the diagonal) or as a DataFrame whose index and columns are "
            "the task labels."
        )
    else:
        edges = f"the weighted edges (s, t, weight) [{listed}]"
        remedy = (
            "Weighted edge lists are not taken: give edge weights as an adjacency matrix "
            "(A[s, t] = A[t, s] = weight, zero diagonal), best a DataFrame whose index and "
            "columns are the task labels, and unweighted edges as a list of (s, t) pairs."
        )
    if problem is None:
        return f"{head}which reads both as {adjacency} and, row by row, as {edges}. {remedy}"
    return f"{head} Its rows read as {edges}. {remedy}"


def _shape_message(shape, n_tasks):
    return (
        f"the task adjacency matrix has shape {tuple(shape)}; expected "
        f"({n_tasks}, {n_tasks}), one row per fitted task (sorted labels). An unlabelled "
        "matrix cannot follow the tasks when a split holds some out: pass a DataFrame whose "
        "index and columns are the task labels, or an edge list of label pairs."
    )


def _frame_adjacency(frame, tasks):
    """Sparse adjacency ``(n_tasks, n_tasks)`` of the fitted tasks from a DataFrame whose
    index and columns are task labels: checked whole, then restricted by label."""
    from multitask.linear.penalties._graph import check_adjacency

    index, columns = frame.index, frame.columns
    if index.has_duplicates or columns.has_duplicates or set(index) != set(columns):
        raise ValueError(
            "a task adjacency DataFrame needs the same task labels, each once, as its "
            f"index and its columns; got index {index[:10].tolist()} and columns "
            f"{columns[:10].tolist()}. For an edge list, pass a list of (s, t) label pairs."
        )
    # columns in the order of the index; symmetric, finite, >= 0 over every task named
    A = check_adjacency(frame.loc[:, index].to_numpy(dtype=float))
    codes, absent = label_codes(index, tasks)
    if absent:
        warn_absent("task graph", absent, tasks, "their edges are dropped")
    keep = np.flatnonzero(codes < len(tasks))
    select = sparse.csr_array(
        (np.ones(keep.size), (codes[keep], keep)), shape=(len(tasks), len(index))
    )  # (n_tasks, n_labels): fitted task <- its row of the frame
    return select @ sparse.csr_array(A) @ select.T


def _edge_list(graph, tasks):
    """Task codes of an edge list, shape (n_edges, 2): each edge checked, then those with an
    end among no fitted task dropped (with a warning)."""
    pairs = [_edge_pair(edge, len(tasks)) for edge in graph]
    codes, absent = label_codes([label for pair in pairs for label in pair], tasks)
    edges = codes.reshape(-1, 2)
    if np.any(edges[:, 0] == edges[:, 1]):
        raise ValueError("an edge joins a task to itself; drop self-loops")
    # the graph is undirected: (s, t) and (t, s) are one edge
    if len(np.unique(np.sort(edges, axis=1), axis=0)) < len(edges):
        raise ValueError(
            "the task graph lists an edge more than once (s, t and t, s are the same edge); "
            "give each edge once, or an adjacency matrix for other weights"
        )
    if absent:
        warn_absent("task graph", absent, tasks, "edges with an absent end are dropped")
    return edges[(edges < len(tasks)).all(axis=1)]


def _edge_pair(edge, n_tasks):
    """An edge given as a pair of task labels, checked to be one."""
    if isinstance(edge, (str, bytes)) or np.ndim(edge) != 1 or len(edge) != 2:
        raise ValueError(
            f"graph edge {edge!r} is not a pair of task labels. Give graph as a list of "
            "(s, t) pairs, or the adjacency matrix as an ndarray (or scipy sparse matrix) "
            f"of shape ({n_tasks}, {n_tasks}), or a DataFrame labelled by task."
        )
    return edge[0], edge[1]


_GRAPH_DOC = """graph : list of pairs, DataFrame, ndarray, sparse matrix or None, default=None
        Task graph: a list of edges given as pairs of task labels (weight 1; each edge
        once); a symmetric non-negative adjacency matrix as a DataFrame whose index and
        columns are task labels, or as an ndarray or scipy sparse matrix with rows in the
        order of the sorted task labels (``tasks_``). None: the complete graph (every pair,
        weight 1). A numeric ndarray of shape (n_tasks, n_tasks) is the adjacency matrix,
        one of shape (n_edges, 2) otherwise an edge list; a list is always an edge list.
        With 2 or 3 tasks an array whose rows also read as edges ``(s, t)`` or
        ``(s, t, weight)`` raises rather than guess: pass edges as a list of pairs
        (``graph.tolist()``), an adjacency with a zero diagonal or as a DataFrame. Edge
        weights go in an adjacency matrix. An edge list or a DataFrame may name tasks
        absent from the data fitted (a split holding out whole tasks, e.g.
        ``GroupKFold``): the graph is restricted to the fitted tasks (the induced
        subgraph: edges with an absent end are dropped) and a ``UserWarning`` names the
        absent labels; a label of another type than the task column's (``'1'`` for
        ``1``) reads the same, so heed the warning. An unlabelled matrix must match the
        fitted tasks exactly."""


@fill_doc(graph=_GRAPH_DOC)
class GraphRegularizedRegressor(MultiTaskRegressorMixin, _GraphRegularized):
    """Squared loss + ``alpha sum_{(s,t) in E} a_st ||w_s - w_t||^2 + beta ||W||_F^2``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the graph term (>= 0).
    beta : float, default=0.01
        Ridge strength on all task models (>= 0).
    %(graph)s
    %(common)s

    %(fitted)s

    References
    ----------
    Zhou, Chen & Ye, MALSAR, 2011, Sec. 3.6; Evgeniou, Micchelli & Pontil, JMLR 6, 2005,
    eq. (23).

    Examples
    --------
    Three tasks of 20 rows each in a DataFrame whose column ``"task"`` holds the task id;
    tasks ``"a"`` and ``"b"`` have close models, ``"c"`` another. The graph joins ``"a"``
    and ``"b"`` only.

    >>> import numpy as np
    >>> import pandas as pd
    >>> from multitask.linear import GraphRegularizedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.standard_normal((60, 3)), columns=["x0", "x1", "x2"])
    >>> X["task"] = np.repeat(["a", "b", "c"], 20)
    >>> w_ab, w_c = rng.standard_normal((2, 3))
    >>> w = np.array([w_ab, w_ab + 0.1 * rng.standard_normal(3), w_c])  # (n_tasks, n_features)
    >>> w_row = w[np.repeat([0, 1, 2], 20)]  # each row's task model
    >>> y = (X[["x0", "x1", "x2"]] * w_row).sum(axis=1) + 0.5 * rng.standard_normal(60)
    >>> graph = [("a", "b")]  # edges as pairs of task labels, weight 1
    >>> est = GraphRegularizedRegressor(alpha=1.0, graph=graph, task_col="task").fit(X, y)
    >>> est.tasks_
    array(['a', 'b', 'c'], dtype=object)

    The edge pulls the models of ``"a"`` and ``"b"`` together, not that of ``"c"``:

    >>> free = GraphRegularizedRegressor(alpha=0.0, graph=graph, task_col="task").fit(X, y)
    >>> def gaps(m):  # distances from task a's model to b's (2 decimals) and c's (1)
    ...     d = [float(np.linalg.norm(m.coef_[0] - m.coef_[k])) for k in (1, 2)]
    ...     return round(d[0], 2), round(d[1], 1)
    >>> gaps(free), gaps(est)
    ((0.24, 0.6), (0.05, 0.6))
    """


@fill_doc(graph=_GRAPH_DOC)
class GraphRegularizedClassifier(MultiTaskClassifierMixin, _GraphRegularized):
    """Logistic loss + graph penalty ``alpha ||W R||_F^2 + beta ||W||_F^2`` (binary labels).

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the graph term (>= 0).
    beta : float, default=0.01
        Ridge strength on all task models (>= 0).
    %(graph)s
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Zhou, Chen & Ye, MALSAR, 2011, Sec. 3.6; Evgeniou, Micchelli & Pontil, JMLR 6, 2005,
    eq. (23).

    Examples
    --------
    Three tasks of 40 rows each, the task id in column 0 of ``X``, on a chain graph
    0 - 1 - 2 given as an adjacency matrix (rows in the order of ``tasks_``).

    >>> import numpy as np
    >>> from multitask.linear import GraphRegularizedClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 40)
    >>> features = rng.standard_normal((120, 3))
    >>> w = 2 * rng.standard_normal(3)  # one model for all tasks
    >>> y = (features @ w + 0.5 * rng.standard_normal(120) > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> A = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])  # (n_tasks, n_tasks)
    >>> clf = GraphRegularizedClassifier(alpha=1.0, graph=A, task_col=0).fit(X, y)
    >>> clf.coef_.round(1)  # neighbours are pulled together: the rows nearly agree
    array([[-1.5,  2.3,  0.9],
           [-1.5,  2.3,  0.9],
           [-1.5,  2.3,  0.9]])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.98
    """
