"""Graph-regularised multi-task learning: related tasks have close weights.

The penalty needs only the graph Laplacian ``L = R R^T`` (``||W R||_F^2 = tr(W L W^T)``),
kept sparse, or for the complete graph the operator ``W -> T W - (W 1) 1^T``: no dense
incidence matrix of ``T (T - 1) / 2`` columns is formed, and 2,000 tasks cost what 10 do.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ._base import SmoothPenalty, check_strength


def _edge_list(edges, n_tasks: int, weights) -> tuple[np.ndarray, np.ndarray]:
    """``edges`` as an ``(n_edges, 2)`` integer array of task indices and their weights
    (ones when None), checked: indices in ``[0, n_tasks)``, no self-loop, one weight an edge."""
    edges = np.asarray(edges).reshape(-1, 2) if np.size(edges) else np.zeros((0, 2), int)
    if not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"edges must be pairs of integer task indices, got dtype {edges.dtype}")
    if edges.size and (edges.min() < 0 or edges.max() >= n_tasks):
        raise ValueError(f"edges name tasks outside [0, {n_tasks}); check n_tasks")
    if np.any(edges[:, 0] == edges[:, 1]):
        raise ValueError("an edge joins a task to itself; drop self-loops")
    weights = np.ones(len(edges)) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (len(edges),):
        raise ValueError(f"weights must have shape ({len(edges)},), got {weights.shape}")
    return edges, weights


def graph_matrix_from_edges(edges, n_tasks: int, weights=None) -> np.ndarray:
    """Task-graph matrix ``R`` of shape ``(n_tasks, n_edges)`` from an edge list.

    Column ``e`` of ``R`` for edge ``(i, j)`` with weight ``c_e`` holds ``+c_e`` at
    row ``i`` and ``-c_e`` at row ``j``, so that ``||W R||_F^2 = sum_e c_e^2
    ||w_i - w_j||^2``.

    Parameters
    ----------
    edges : array-like of shape (n_edges, 2)
        Pairs of task indices in ``[0, n_tasks)``.
    n_tasks : int
    weights : array-like of shape (n_edges,), default=None
        Edge weights ``c_e`` (all ones when None).
    """
    edges, weights = _edge_list(edges, n_tasks, weights)
    R = np.zeros((n_tasks, len(edges)))
    cols = np.arange(len(edges))
    R[edges[:, 0], cols] = weights
    R[edges[:, 1], cols] = -weights
    return R


def graph_matrix_from_adjacency(adjacency) -> np.ndarray:
    """Task-graph matrix ``R`` with ``||W R||_F^2 = sum_{i<j} A_ij ||w_i - w_j||^2``.

    ``adjacency`` is a symmetric ``(n_tasks, n_tasks)`` array (dense or sparse) with finite
    entries ``>= 0``, checked by :func:`check_adjacency`;
    ``R R^T`` is then the graph Laplacian ``diag(A 1) - A``.
    """
    A = check_adjacency(adjacency)
    if sparse.issparse(A):  # (R is dense)
        A = A.toarray()
    i, j = np.nonzero(np.triu(A, k=1))
    return graph_matrix_from_edges(np.stack([i, j], axis=1), A.shape[0], np.sqrt(A[i, j]))


def laplacian_from_edges(edges, n_tasks: int, weights=None) -> sparse.csr_array:
    """Sparse graph Laplacian ``L`` with ``tr(W L W^T) = sum_e a_e ||w_i - w_j||^2``.

    Parameters
    ----------
    edges : array-like of shape (n_edges, 2)
        Pairs of task indices in ``[0, n_tasks)``.
    n_tasks : int
    weights : array-like of shape (n_edges,), default=None
        Edge weights ``a_e >= 0`` (all ones when None); the weight multiplies the squared
        distance (the squares of :func:`graph_matrix_from_edges`'s ``c_e``).
    """
    edges, weights = _edge_list(edges, n_tasks, weights)
    i, j = edges[:, 0], edges[:, 1]
    adjacency = sparse.coo_array(
        (np.concatenate([weights, weights]), (np.concatenate([i, j]), np.concatenate([j, i]))),
        shape=(n_tasks, n_tasks),
    ).tocsr()  # duplicates summed
    return _laplacian(adjacency)


def laplacian_from_adjacency(adjacency) -> sparse.csr_array:
    """Sparse graph Laplacian ``diag(A 1) - A`` with ``tr(W L W^T) = sum_{i<j} A_ij
    ||w_i - w_j||^2``, from a dense or scipy sparse adjacency matrix.

    ``adjacency`` is symmetric ``(n_tasks, n_tasks)`` with entries ``>= 0``; its diagonal
    is ignored and its upper triangle used (the Laplacian of
    :func:`graph_matrix_from_adjacency`'s ``R``, ``R R^T``, without forming ``R``).
    """
    A = check_adjacency(adjacency)
    upper = sparse.triu(sparse.csr_array(A), k=1)
    return _laplacian((upper + upper.T).tocsr())


def check_adjacency(adjacency):
    """``adjacency`` as a float array (a sparse one stays sparse), checked square, finite,
    symmetric and ``>= 0``."""
    if sparse.issparse(adjacency):
        A = sparse.csr_array(adjacency, dtype=float)
        values = A.data
    else:
        A = np.asarray(adjacency, dtype=float)
        values = A
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be a square (n_tasks, n_tasks) array, got {A.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("adjacency holds NaN or infinite entries")
    if np.any(values < 0) or not _symmetric(A):
        raise ValueError("adjacency must be symmetric with entries >= 0")
    return A


def _symmetric(A) -> bool:
    """``np.allclose(A, A.T)``, for a dense or sparse ``A``."""
    if not sparse.issparse(A):
        return bool(np.allclose(A, A.T))
    excess = abs(A - A.T) - 1e-5 * abs(A.T)
    return excess.nnz == 0 or float(excess.max()) <= 1e-8


def _laplacian(adjacency) -> sparse.csr_array:
    """``diag(A 1) - A`` for a symmetric sparse ``A`` with a zero diagonal."""
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return (sparse.diags_array(degree) - adjacency).tocsr()


class _SparseLaplacian:
    """A graph Laplacian kept as a sparse matrix: ``W L`` costs ``nnz(L)`` per feature."""

    #: above this many tasks the top eigenvalue comes from Lanczos, not a dense solve
    _DENSE_EIG = 1000

    def __init__(self, L):
        self.L = sparse.csr_array(L, dtype=float)
        self.n_tasks = self.L.shape[0]
        self._top = None

    def right(self, W):
        """``W L`` for ``W`` of shape (n_features, n_tasks)."""
        return np.asarray(self.L @ W.T).T

    def top(self):
        """Largest eigenvalue of ``L`` (``||R||_2^2``)."""
        if self._top is None:
            self._top = _top_eigenvalue(self.L, self._DENSE_EIG)
        return self._top

    def __repr__(self):
        return f"<sparse Laplacian {self.L.shape}, {self.L.nnz} entries>"


def _top_eigenvalue(L, dense_below):
    """Largest eigenvalue of a symmetric PSD sparse ``L``: exact below ``dense_below`` rows,
    else Lanczos with a relative margin, capped by Gershgorin's bound ``max_i sum_j |L_ij|``
    (which it falls back to where Lanczos does not converge in a few hundred products:
    clustered top eigenvalues, e.g. a long chain, took minutes)."""
    n = L.shape[0]
    if n == 0 or L.nnz == 0:
        return 0.0
    if n <= dense_below:
        return max(float(np.linalg.eigvalsh(L.toarray())[-1]), 0.0)
    gershgorin = float(np.max(np.asarray(abs(L).sum(axis=1)).ravel()))
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    try:
        top = eigsh(L, k=1, which="LA", tol=1e-8, maxiter=300, return_eigenvectors=False)
    except ArpackNoConvergence:
        return gershgorin
    return min(float(top[0]) * (1.0 + 1e-6), gershgorin)


class _CompleteLaplacian:
    """Laplacian of the complete graph with unit weights, ``T I - 1 1^T``, never stored:
    ``W L = T W - (W 1) 1^T``; its eigenvalues are ``T`` (multiplicity ``T - 1``) and 0."""

    def __init__(self, n_tasks):
        self.n_tasks = int(n_tasks)

    def right(self, W):
        return self.n_tasks * W - W.sum(axis=1, keepdims=True)

    def top(self):
        return float(self.n_tasks) if self.n_tasks >= 2 else 0.0

    def __repr__(self):
        return f"<complete graph on {self.n_tasks} tasks>"


class GraphRegularized(SmoothPenalty):
    """``alpha * ||W R||_F^2 + beta * ||W||_F^2`` for a task-graph matrix ``R``.

    Equivalently ``alpha * tr(W L W^T) + beta * ||W||_F^2`` with the graph Laplacian
    ``L = R R^T``, which is all that is stored (sparse).

    Parameters
    ----------
    R : array-like or sparse matrix of shape (n_tasks, n_edges), optional
        Task-graph matrix; build it with :func:`graph_matrix_from_edges` or
        :func:`graph_matrix_from_adjacency`. Give ``R`` or ``laplacian``.
    alpha : float, default=1.0
        Strength of the graph term, ``>= 0``.
    beta : float, default=0.0
        Ridge strength, ``>= 0``.
    laplacian : array-like or sparse matrix of shape (n_tasks, n_tasks), optional
        The graph Laplacian ``L`` itself (symmetric positive semi-definite), e.g. from
        :func:`laplacian_from_edges` or :func:`laplacian_from_adjacency`. For the complete
        graph use :meth:`complete`.

    References
    ----------
    Zhou, J., Chen, J. and Ye, J. "MALSAR: Multi-tAsk Learning via StructurAl
    Regularization." Arizona State University, 2011, Sec. "Graph regularized
    (SRMTL)", eq. for ``Least_SRMTL`` (``rho_1 ||W R||_F^2 + rho_2 ||W||_F^2``
    variant with a Frobenius instead of an L1 second term).
    """

    _param_names = ("R", "alpha", "beta")

    def __init__(self, R=None, alpha: float = 1.0, beta: float = 0.0, *, laplacian=None):
        if (R is None) == (laplacian is None):
            raise ValueError(
                "give exactly one of R (n_tasks, n_edges) and laplacian (n_tasks, n_tasks); "
                "GraphRegularized.complete(n_tasks) is the complete graph"
            )
        self.R = None if R is None else _check_graph_matrix(R)
        if isinstance(laplacian, (_CompleteLaplacian, _SparseLaplacian)):
            self._laplacian = laplacian
        elif laplacian is not None:
            self._laplacian = _SparseLaplacian(_check_laplacian(laplacian))
        else:
            Rs = sparse.csr_array(self.R)
            self._laplacian = _SparseLaplacian(Rs @ Rs.T)
        self.alpha = check_strength(alpha, "alpha")
        self.beta = check_strength(beta, "beta")

    @classmethod
    def complete(cls, n_tasks: int, alpha: float = 1.0, beta: float = 0.0):
        """The penalty of the complete graph with unit weights on ``n_tasks`` tasks,
        ``alpha sum_{s<t} ||w_s - w_t||^2 = alpha T sum_t ||w_t - w_mean||^2`` (that is
        :class:`MeanRegularized` with strength ``T alpha``), in ``O(n_features T)``."""
        return cls(laplacian=_CompleteLaplacian(n_tasks), alpha=alpha, beta=beta)

    @property
    def n_tasks(self) -> int:
        return self._laplacian.n_tasks

    def laplacian_matrix(self) -> sparse.csr_array:
        """The graph Laplacian ``L`` (n_tasks, n_tasks) as a sparse array (formed on request
        for the complete graph, which the penalty itself never stores)."""
        lap = self._laplacian
        if isinstance(lap, _SparseLaplacian):
            return lap.L.copy()
        T = lap.n_tasks
        return sparse.csr_array(T * np.eye(T) - np.ones((T, T)))

    def _check(self, W):
        W = np.asarray(W, dtype=float)
        if W.shape[-1] != self.n_tasks:
            raise ValueError(
                f"W has {W.shape[-1]} tasks but the task graph has {self.n_tasks} (one per task)"
            )
        return W

    def value(self, W):
        """``alpha * tr(W L W^T) + beta * ||W||_F^2`` (``tr(W L W^T) = ||W R||_F^2``)."""
        W = self._check(W)
        graph = max(float(np.vdot(W, self._laplacian.right(W))), 0.0)
        return self.alpha * graph + self.beta * float(np.sum(W**2))

    def gradient(self, W):
        """``2 alpha W L + 2 beta W``."""
        W = self._check(W)
        return 2.0 * self.alpha * self._laplacian.right(W) + 2.0 * self.beta * W

    def lipschitz(self):
        """``2 alpha lambda_max(L) + 2 beta`` (``lambda_max(L) = ||R||_2^2``)."""
        return 2.0 * (self.alpha * self._laplacian.top() + self.beta)

    def __repr__(self):
        graph = (
            f"R=<array {self.R.shape}>" if self.R is not None else f"laplacian={self._laplacian!r}"
        )
        return f"GraphRegularized({graph}, alpha={self.alpha!r}, beta={self.beta!r})"


def _check_graph_matrix(R):
    """``R`` as a float array (a sparse one stays sparse), checked 2-D and finite."""
    if sparse.issparse(R):
        R = sparse.csr_array(R, dtype=float)
        values = R.data
    else:
        R = np.asarray(R, dtype=float)
        values = R
    if R.ndim != 2:
        raise ValueError(
            f"R must be a 2-D (n_tasks, n_edges) array, got {R.ndim} dimensions; "
            "build it with graph_matrix_from_edges or graph_matrix_from_adjacency"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("R holds NaN or infinite entries")
    return R


def _check_laplacian(L):
    """A square, symmetric, finite Laplacian as a sparse array."""
    L = sparse.csr_array(L, dtype=float) if sparse.issparse(L) else np.asarray(L, dtype=float)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"laplacian must be a square (n_tasks, n_tasks) array, got {L.shape}")
    values = L.data if sparse.issparse(L) else L
    if not np.all(np.isfinite(values)):
        raise ValueError("laplacian holds NaN or infinite entries")
    if not _symmetric(L):
        raise ValueError("laplacian must be symmetric (L = R R^T)")
    return sparse.csr_array(L)
