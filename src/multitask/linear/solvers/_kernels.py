"""Numba kernels of the classical half (imported lazily: only :func:`bcd` needs them).

A profile of working-set block coordinate descent showed the per-row Python overhead
(about 10 us per row update, against well under 1 us of arithmetic on a small Gram
matrix) dominating; these kernels run whole epochs. ``cache=True`` keeps the compiled code
on disk, so only the very first call on a machine pays for compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: penalty kinds understood by :func:`cd_epochs_gram`
KIND_L1 = 0
KIND_L21 = 1


@njit(cache=True)
def _prox_row(v, threshold, kind, out):
    """Prox of ``threshold * ||.||_1`` (kind 0) or ``threshold * ||.||_2`` (kind 1)."""
    n = v.shape[0]
    if kind == KIND_L1:
        for t in range(n):
            a = abs(v[t]) - threshold
            out[t] = np.sign(v[t]) * a if a > 0.0 else 0.0
    else:
        nrm = 0.0
        for t in range(n):
            nrm += v[t] * v[t]
        nrm = np.sqrt(nrm)
        scale = 1.0 - threshold / nrm if nrm > threshold else 0.0
        for t in range(n):
            out[t] = v[t] * scale


@njit(cache=True)
def cd_epochs_gram(G, C, W, H, lips, alpha, kind, n_epochs):
    """Cyclic block coordinate descent over the feature rows with Gram matrices.

    Arrays are task-major (the transposes of the solver's ``(k, n_tasks)`` layout) so that
    the update of ``H`` runs over contiguous memory.

    Parameters
    ----------
    G : ndarray of shape (n_gram, k, k)
        Symmetric Gram matrices; ``n_gram`` is 1 (shared design) or ``n_tasks``.
    C : ndarray of shape (n_tasks, k)
        ``X_t^T D_t y_t`` per task.
    W : ndarray of shape (n_tasks, k)
        Weights (transposed), updated in place.
    H : ndarray of shape (n_tasks, k)
        ``G_t w_t`` for every task, kept in sync with ``W`` in place.
    lips : ndarray of shape (k,)
        Row curvatures ``max_t G_t[j, j]`` (rows with 0 are skipped).
    alpha : float
    kind : int
        :data:`KIND_L1` or :data:`KIND_L21`.
    n_epochs : int

    Returns
    -------
    float
        Largest absolute change of an entry of ``W`` in the last epoch.
    """
    T, k = W.shape
    shared = G.shape[0] == 1
    v = np.empty(T)
    new = np.empty(T)
    max_change = 0.0
    for _ in range(n_epochs):
        max_change = 0.0
        for j in range(k):
            L = lips[j]
            if L <= 0.0:
                continue
            for t in range(T):
                v[t] = W[t, j] - (H[t, j] - C[t, j]) / L
            _prox_row(v, alpha / L, kind, new)
            for t in range(T):
                delta = new[t] - W[t, j]
                if delta != 0.0:
                    Gj = G[0, j] if shared else G[t, j]
                    Ht = H[t]
                    for i in range(k):
                        Ht[i] += Gj[i] * delta
                    W[t, j] = new[t]
                    if abs(delta) > max_change:
                        max_change = abs(delta)
    return max_change
