"""Graph-regularised multi-task learning: related tasks have close weights."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ._base import SmoothPenalty, check_strength


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
    R = np.zeros((n_tasks, len(edges)))
    cols = np.arange(len(edges))
    R[edges[:, 0], cols] = weights
    R[edges[:, 1], cols] = -weights
    return R


def graph_matrix_from_adjacency(adjacency) -> np.ndarray:
    """Task-graph matrix ``R`` with ``||W R||_F^2 = sum_{i<j} A_ij ||w_i - w_j||^2``.

    ``adjacency`` is a symmetric ``(n_tasks, n_tasks)`` array with entries ``>= 0``;
    ``R R^T`` is then the graph Laplacian ``diag(A 1) - A``.
    """
    A = np.asarray(adjacency, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be a square (n_tasks, n_tasks) array, got {A.shape}")
    if not np.allclose(A, A.T) or np.any(A < 0):
        raise ValueError("adjacency must be symmetric with entries >= 0")
    i, j = np.nonzero(np.triu(A, k=1))
    return graph_matrix_from_edges(np.stack([i, j], axis=1), A.shape[0], np.sqrt(A[i, j]))


class GraphRegularized(SmoothPenalty):
    """``alpha * ||W R||_F^2 + beta * ||W||_F^2`` for a task-graph matrix ``R``.

    Parameters
    ----------
    R : array-like or sparse matrix of shape (n_tasks, n_edges)
        Task-graph matrix (stored dense); build it with :func:`graph_matrix_from_edges` or
        :func:`graph_matrix_from_adjacency`.
    alpha : float, default=1.0
        Strength of the graph term, ``>= 0``.
    beta : float, default=0.0
        Ridge strength, ``>= 0``.

    References
    ----------
    Zhou, J., Chen, J. and Ye, J. "MALSAR: Multi-tAsk Learning via StructurAl
    Regularization." Arizona State University, 2011, Sec. "Graph regularized
    (SRMTL)", eq. for ``Least_SRMTL`` (``rho_1 ||W R||_F^2 + rho_2 ||W||_F^2``
    variant with a Frobenius instead of an L1 second term).
    """

    _param_names = ("R", "alpha", "beta")

    def __init__(self, R, alpha: float = 1.0, beta: float = 0.0):
        R = R.toarray() if sparse.issparse(R) else R
        R = np.asarray(R, dtype=float)
        if R.ndim != 2:
            raise ValueError(
                f"R must be a 2-D (n_tasks, n_edges) array, got {R.ndim} dimensions; "
                "build it with graph_matrix_from_edges or graph_matrix_from_adjacency"
            )
        if not np.all(np.isfinite(R)):
            raise ValueError("R holds NaN or infinite entries")
        self.R = R
        self.alpha = check_strength(alpha, "alpha")
        self.beta = check_strength(beta, "beta")
        self._RRt = R @ R.T

    def _check(self, W):
        W = np.asarray(W, dtype=float)
        if W.shape[-1] != self.R.shape[0]:
            raise ValueError(
                f"W has {W.shape[-1]} tasks but R has {self.R.shape[0]} rows (one per task)"
            )
        return W

    def value(self, W):
        """``alpha * ||W R||_F^2 + beta * ||W||_F^2``."""
        W = self._check(W)
        return self.alpha * float(np.sum((W @ self.R) ** 2)) + self.beta * float(np.sum(W**2))

    def gradient(self, W):
        """``2 alpha W R R^T + 2 beta W``."""
        W = self._check(W)
        return 2.0 * self.alpha * (W @ self._RRt) + 2.0 * self.beta * W

    def lipschitz(self):
        """``2 alpha ||R||_2^2 + 2 beta``."""
        spectral = float(np.linalg.norm(self.R, ord=2)) if self.R.size else 0.0
        return 2.0 * (self.alpha * spectral**2 + self.beta)

    def __repr__(self):
        return (
            f"GraphRegularized(R=<array {self.R.shape}>, alpha={self.alpha!r}, beta={self.beta!r})"
        )
