"""The forward (gradient) step of the squared loss on per-task designs, with the data.

:class:`~multitask.linear._design.MultiTaskDesign` multiplies by the expanded operator ``Z``
(row ``i`` holds ``x_i`` in the columns of task ``t_i``) and its transpose, and centres with
gathers and per-task sums. For a FISTA iteration at a fixed step this module caches, once
per design, the centred operator ``Zc`` (rows ``x_i - mu_{t_i}``, the pattern of ``Z``) and
``(D Zc)^T`` in CSR: the gradient ``Zc^T D (Zc w - y_c)`` is then two CSR products and one
subtraction, with no gather, no per-task sum and no weighted copy of the residual. On
Chem97 (31,022 rows, 2,410 tasks) that replaces 550-800 us of products, ``bincount`` and
gathers by about 330 us.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["data_forward"]


def data_forward(design, centered, target, L):
    """The forward step ``W -> W - grad(W) / L`` for a dense per-task design.

    Parameters
    ----------
    design : MultiTaskDesign
        Per-task (long format) with a dense ``X``.
    centered : bool
        Rows centred per task (the intercept profiled out).
    target : ndarray of shape (n_samples,)
        Targets the predictions are compared with (centred targets, or ``y - b_{t_i}``).
    L : float

    Returns
    -------
    callable
        ``step(W, out)`` writes the forward point into ``out`` and returns ``(S, grad)``:
        the linear state ``Zc w`` (shape (n_samples,)) and the gradient (n_features, n_tasks).
    """
    A, B = _operators(design, centered)
    p, T = design.n_features, design.n_tasks

    def step(W, out):
        S = A @ W.ravel()
        grad = (B @ (S - target)).reshape(p, T)
        np.subtract(W, grad / L, out=out)
        return S, grad

    return step


def _operators(design, centered):
    """``(Zc, (D Zc)^T)`` in CSR (``Z``'s values when not centred), cached on the design.

    Columns are feature-major (``j * n_tasks + t``, the order of ``W.ravel()``), unlike
    ``Z``'s task-major ones: no transposed copy of ``W`` going in, a contiguous gradient
    coming out (20 us less per step on Chem97, the same numbers).
    """
    cache = design.__dict__.setdefault("_forward_operator_cache", {})
    if centered not in cache:
        X = np.asarray(design.X)
        if centered:
            X = X - design.x_mean.T[design.task_idx]
        n, p = X.shape
        T = design.n_tasks
        cols = (np.arange(p)[None, :] * T + design.task_idx[:, None]).ravel()
        A = sp.csr_matrix((X.ravel(), cols, np.arange(0, n * p + 1, p)), shape=(n, T * p))
        B = sp.csr_matrix(A.multiply(design.weights[:, None]).T)
        cache[centered] = (A, B)
    return cache[centered]
