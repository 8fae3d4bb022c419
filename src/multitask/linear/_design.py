"""Multi-task designs: the data of all tasks in one object, with vectorised per-task products.

Two layouts, one interface:

- **shared design** (``make_shared_design(X, Y)``): every task sees the same rows ``X`` of
  shape ``(n_samples, n_features)`` and ``Y`` has one column per task (sklearn's
  ``MultiTaskLasso`` setting);
- **per-task designs in long format** (``make_design(X, y, task_idx, n_tasks)``): row ``i``
  belongs to task ``task_idx[i]``.

Per-task products never loop over tasks in Python. Row ``i`` of the per-task design is
embedded in an *expanded* sparse matrix ``Z`` of shape ``(n_samples, n_tasks * n_features)``
whose row ``i`` holds ``x_i`` at columns ``task_idx[i] * n_features + j``. Then the
predictions of every task are one sparse product ``Z @ vec(W^T)`` and the per-task
gradients ``X_t^T r_t`` one product ``Z^T r``; both cost ``O(nnz(X))`` whatever the number of
tasks, and ``Z^T D Z`` is block diagonal with the per-task Gram matrices as blocks.

Row weights ``d_i`` make every task's loss an average: ``d_i = 1 / n_t`` (or
``s_i / sum_{k in t} s_k`` with sample weights), so the weights of each task sum to one.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

__all__ = ["MultiTaskDesign", "make_design", "make_shared_design"]

#: largest Gram storage (floats) computed automatically
_MAX_GRAM_FLOATS = 2**27


class MultiTaskDesign:
    """Data of all tasks with the precomputations the solvers share.

    Build it with :func:`make_design` or :func:`make_shared_design`; do not call the
    constructor directly. All arrays are read-only views for the solvers; Gram matrices are
    computed once, on first use.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_tasks)
        1-D for per-task designs, 2-D for the shared design.
    task_idx : ndarray of shape (n_samples,) or None
        Task code of every row (None for the shared design).
    weights : ndarray of shape (n_samples,)
        Row weights ``d_i``; the weights of the rows of each task sum to one.
    n_tasks : int
    shared : bool
    x_mean : ndarray of shape (n_features, n_tasks)
        Weighted feature means of every task, ``X_t^T d_t``.
    y_mean : ndarray of shape (n_tasks,)
        Weighted target means of every task.
    """

    def __init__(self, X, y, task_idx, weights, n_tasks):
        self.X = X
        self.y = y
        self.task_idx = task_idx
        self.weights = weights
        self.n_tasks = int(n_tasks)
        self.shared = task_idx is None
        self.n_samples, self.n_features = X.shape
        self.Z = None if self.shared else _expand(X, task_idx, self.n_tasks)
        self.x_mean = self.rmatvec(self._broadcast(weights))
        self.y_mean = self.task_sum(self._broadcast(weights) * y)

    # ----------------------------------------------------------------- products
    def _broadcast(self, v):
        """Row vector ``v`` (n_samples,) in the layout of ``y``."""
        return v[:, None] if self.shared else v

    def predict(self, W):
        """Linear predictions ``x_i . w_{t_i}``.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)

        Returns
        -------
        ndarray of shape (n_samples, n_tasks) (shared) or (n_samples,) (per-task)
        """
        if self.shared:
            return np.asarray(self.X @ W)
        return self.Z @ np.ascontiguousarray(W.T).ravel()

    def rmatvec(self, R):
        """Per-task products ``X_t^T r_t`` for all tasks at once.

        Parameters
        ----------
        R : ndarray in the layout of ``y``

        Returns
        -------
        ndarray of shape (n_features, n_tasks)
        """
        if self.shared:
            return np.asarray(self.X.T @ R)
        return (self.Z.T @ R).reshape(self.n_tasks, self.n_features).T

    def task_sum(self, R):
        """Sum of ``R`` over the rows of every task, shape (n_tasks,)."""
        if self.shared:
            return R.sum(axis=0)
        return np.bincount(self.task_idx, weights=R, minlength=self.n_tasks)

    def expand_tasks(self, b):
        """Per-task values ``b`` (n_tasks,) in the layout of ``y``."""
        return b[None, :] if self.shared else b[self.task_idx]

    @cached_property
    def equal_weight(self):
        """The common row weight when all rows weigh the same (e.g. unweighted shared
        designs, or tasks of equal size), else None."""
        w = self.weights
        return float(w[0]) if np.all(w == w[0]) else None

    # --------------------------------------------------------------- Gram form
    @property
    def gram_is_cheap(self):
        """True when Gram products are cheaper than products with the data.

        Shared: ``n_features <= n_samples``; per-task: ``n_tasks * n_features^2 <= nnz(X)``
        (one Gram product costs at most one pass over the data). Both need the Gram
        matrices to fit in :data:`_MAX_GRAM_FLOATS` floats.
        """
        p = self.n_features
        if self.shared:
            return p <= self.n_samples and p * p <= _MAX_GRAM_FLOATS
        size = self.n_tasks * p * p
        return size <= _nnz(self.X) and size <= _MAX_GRAM_FLOATS

    @cached_property
    def gram(self):
        """Weighted Gram matrices ``X_t^T D_t X_t``.

        Returns
        -------
        ndarray of shape (n_features, n_features) (shared) or (n_tasks, n_features, n_features)
        """
        if self.shared:
            w = self.weights
            if self.equal_weight is not None:  # unweighted: no scaled copy of X
                G = self.X.T @ self.X  # numpy calls BLAS syrk for X^T X: half the flops
                G = G.toarray() if sp.issparse(G) else np.asarray(G)
                G *= self.equal_weight
                return G
            Xw = _scale_rows(self.X, np.sqrt(w))
            G = Xw.T @ Xw
            return np.asarray(G.toarray() if sp.issparse(G) else G)
        return _block_diagonal_gram(self.Z, self.weights, self.n_tasks, self.n_features)

    @cached_property
    def xty(self):
        """Weighted products ``X_t^T D_t y_t``, shape (n_features, n_tasks)."""
        if self.equal_weight is not None:  # no weighted copy of the targets
            return self.rmatvec(self.y) * self.equal_weight
        return self.rmatvec(self._broadcast(self.weights) * self.y)

    @cached_property
    def yty(self):
        """Weighted ``sum_i d_i y_i^2`` of every task, shape (n_tasks,)."""
        if self.shared and self.equal_weight is not None:
            return np.einsum("it,it->t", self.y, self.y) * self.equal_weight
        return self.task_sum(self._broadcast(self.weights) * self.y**2)

    def gram_matvec(self, W, centered=False):
        """``G_t w_t`` for all tasks, shape (n_features, n_tasks).

        With ``centered=True`` the Gram matrices of the per-task centred data,
        ``G_t - mu_t mu_t^T``, are used (``mu_t`` = :attr:`x_mean` column ``t``).
        """
        G = self.gram_centered if centered else self.gram
        return G @ W if self.shared else np.einsum("tij,jt->it", G, W, optimize=False)

    @cached_property
    def gram_centered(self):
        """Gram matrices of the per-task centred data, ``G_t - mu_t mu_t^T``."""
        mu = self.x_mean
        if self.shared:
            return self.gram - np.outer(mu[:, 0], mu[:, 0])
        return self.gram - np.einsum("it,jt->tij", mu, mu)

    # -------------------------------------------------------------- sub-designs
    def restrict(self, features):
        """The design on a subset of feature columns (for working sets).

        Parameters
        ----------
        features : ndarray of int of shape (k,)

        Returns
        -------
        MultiTaskDesign with ``n_features = k`` and the same rows, targets and weights.
        """
        X = self.X[:, features]
        return MultiTaskDesign(X, self.y, self.task_idx, self.weights, self.n_tasks)

    def __repr__(self):
        kind = "shared" if self.shared else "per-task"
        return (
            f"MultiTaskDesign({kind}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, n_tasks={self.n_tasks})"
        )


# --------------------------------------------------------------------- builders
def make_design(X, y, task_idx, n_tasks, sample_weight=None):
    """Per-task designs in long format.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    task_idx : ndarray of int of shape (n_samples,)
        Task code ``0 .. n_tasks-1`` of every row.
    n_tasks : int
    sample_weight : ndarray of shape (n_samples,) or None
        Non-negative weights; each task's loss is then weighted by ``s_i / sum_{k in t} s_k``.

    Returns
    -------
    MultiTaskDesign

    Raises
    ------
    ValueError
        If shapes disagree, a task code is out of range, a task has no rows (or zero total
        weight), or a value is not finite.
    """
    X = _check_X(X)
    y = _check_vector(y, X.shape[0], "y")
    task_idx = np.asarray(task_idx)
    if task_idx.shape != (X.shape[0],) or not np.issubdtype(task_idx.dtype, np.integer):
        raise ValueError(
            f"task_idx must be an integer array of shape ({X.shape[0]},), got dtype "
            f"{task_idx.dtype} and shape {task_idx.shape}; encode tasks as codes 0..n_tasks-1."
        )
    n_tasks = int(n_tasks)
    if task_idx.size and (task_idx.min() < 0 or task_idx.max() >= n_tasks):
        raise ValueError(
            f"task codes must lie in 0..{n_tasks - 1}, got {task_idx.min()}..{task_idx.max()}."
        )
    task_idx = task_idx.astype(np.int64)
    s = _check_weights(sample_weight, X.shape[0])
    totals = np.bincount(task_idx, weights=s, minlength=n_tasks)
    if np.any(totals <= 0):
        empty = np.flatnonzero(totals <= 0)[:5].tolist()
        raise ValueError(
            f"tasks {empty} have no rows (or zero total sample weight); drop them or "
            "renumber the task codes."
        )
    return MultiTaskDesign(X, y, task_idx, s / totals[task_idx], n_tasks)


def make_shared_design(X, Y, sample_weight=None):
    """Shared design: every task sees the same rows.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_tasks)
    sample_weight : ndarray of shape (n_samples,) or None
        Row weights; the loss weight of row ``i`` is ``s_i / sum_k s_k`` in every task.

    Returns
    -------
    MultiTaskDesign
    """
    X = _check_X(X)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"Y must have shape ({X.shape[0]}, n_tasks), got {Y.shape}; for one task per "
            "row use make_design with task codes instead."
        )
    if not np.all(np.isfinite(Y)):
        raise ValueError("Y contains NaN or infinite values; remove or impute them first.")
    s = _check_weights(sample_weight, X.shape[0])
    return MultiTaskDesign(X, Y, None, s / s.sum(), Y.shape[1])


# ---------------------------------------------------------------------- helpers
def _check_X(X):
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=float)
        data = X.data
    else:
        X = np.asarray(X, dtype=float)
        data = X
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError("X has no rows; at least one sample is needed.")
    if not np.all(np.isfinite(data)):
        raise ValueError("X contains NaN or infinite values; remove or impute them first.")
    return X


def _check_vector(v, n, name):
    v = np.asarray(v, dtype=float)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or infinite values; remove them first.")
    return v


def _check_weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    s = _check_vector(sample_weight, n, "sample_weight")
    if np.any(s < 0) or s.sum() <= 0:
        raise ValueError("sample_weight must be >= 0 with a positive sum.")
    return s


def _nnz(X):
    return X.nnz if sp.issparse(X) else X.size


def _scale_rows(X, v):
    if sp.issparse(X):
        return sp.csr_matrix(X.multiply(v[:, None]))
    return X * v[:, None]


def _expand(X, task_idx, n_tasks):
    """Expanded operator ``Z`` (n_samples, n_tasks * n_features), CSR, ``O(nnz(X))``."""
    n, p = X.shape
    if sp.issparse(X):
        row_len = np.diff(X.indptr)
        cols = X.indices + np.repeat(task_idx * p, row_len)
        return sp.csr_matrix((X.data, cols, X.indptr), shape=(n, n_tasks * p))
    cols = (task_idx[:, None] * p + np.arange(p)).ravel()
    indptr = np.arange(0, n * p + 1, p)
    return sp.csr_matrix((X.ravel(), cols, indptr), shape=(n, n_tasks * p))


def _block_diagonal_gram(Z, weights, n_tasks, p):
    """Blocks of ``Z^T D Z``: the per-task Gram matrices, shape (n_tasks, p, p)."""
    Zw = sp.csr_matrix(Z.multiply(np.sqrt(weights)[:, None]))
    B = sp.coo_matrix(Zw.T @ Zw)
    B.sum_duplicates()
    G = np.zeros((n_tasks, p, p))
    G[B.row // p, B.row % p, B.col % p] = B.data
    return G
