"""Numba kernels for the fixed-step FISTA loop on many small tasks (imported lazily).

Profiled on Chem97 (p = 5 features, T = 2,410 tasks, Gram mode), one iteration was about a
dozen numpy calls on ``(5, 2410)`` arrays around a task-last ``einsum`` of the Gram stack:
28 us for the product, 9 us to extrapolate, 10 us for the restart test's step and dots,
each call paying numpy's overhead and a pass over memory. These kernels do each piece in
one pass: the symmetric Gram product reads only the upper triangle (15 of 25 entries per
task at p = 5) and runs vectorised over tasks, 16 against 28 us. Only
:mod:`.._gram_products` and :mod:`.solvers._fista_affine` import this module, and only
for problems above their size thresholds, so small fits never load numba.
``cache=True`` keeps the compiled code on disk: only the first call on a machine compiles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["extrapolate", "pack_upper", "packed_product", "step_dots"]

#: tasks per block of :func:`packed_product` (the block's rows stay in L1 / L2)
_BLOCK = 1024


def pack_upper(M):
    """The upper triangles of a symmetric task-last stack, row by row.

    Parameters
    ----------
    M : ndarray of shape (p, p, n_tasks)
        Symmetric in its first two axes.

    Returns
    -------
    ndarray of shape (p (p + 1) / 2, n_tasks)
        Row ``k`` holds ``M[i, j]`` for the ``k``-th pair ``i <= j`` in row-major order.
    """
    i, j = np.triu_indices(M.shape[0])
    return np.ascontiguousarray(M[i, j])


@njit(cache=True)
def packed_product(P, X, shift, out):
    """``out[:, t] = shift[:, t] + M_t X[:, t]`` for a symmetric stack packed by
    :func:`pack_upper` (``shift`` None: no shift).

    Parameters
    ----------
    P : ndarray of shape (p (p + 1) / 2, n_tasks)
    X : ndarray of shape (p, n_tasks)
    shift : ndarray of shape (p, n_tasks) or None
    out : ndarray of shape (p, n_tasks)
        Written in place (must not overlap ``X``).
    """
    p, T = X.shape
    for t0 in range(0, T, _BLOCK):
        t1 = min(t0 + _BLOCK, T)
        for i in range(p):
            if shift is None:
                out[i, t0:t1] = 0.0
            else:
                out[i, t0:t1] = shift[i, t0:t1]
        _accumulate(P, X, out, t0, t1)


@njit(cache=True)
def _accumulate(P, X, out, t0, t1):
    """``out += M_t x_t`` over tasks ``t0:t1``; each off-diagonal pair is read once and
    updates both rows (the loops over tasks are contiguous and vectorise)."""
    p = X.shape[0]
    n = t1 - t0
    k = 0
    for i in range(p):
        oi, xi, m = out[i, t0:t1], X[i, t0:t1], P[k, t0:t1]
        for t in range(n):
            oi[t] += m[t] * xi[t]
        k += 1
        for j in range(i + 1, p):
            m, oj, xj = P[k, t0:t1], out[j, t0:t1], X[j, t0:t1]
            for t in range(n):
                mt = m[t]
                oi[t] += mt * xj[t]
                oj[t] += mt * xi[t]
            k += 1


@njit(cache=True, fastmath={"reassoc", "contract"})
def step_dots(x_new, x, d, d_new):
    """``d_new = x_new - x`` in place, and ``(<d, d_new>, <d_new, d_new>)`` in the same pass.

    The reassociated sums vectorise (a strict left-to-right sum does not); the dots feed
    only the restart test's sign, as numpy's ``vdot`` (BLAS, its own order) did.

    Parameters
    ----------
    x_new, x, d, d_new : ndarray of shape (n_features, n_tasks)
        ``d_new`` is written.

    Returns
    -------
    (float, float)
    """
    cross = 0.0
    sq = 0.0
    for i in range(x.shape[0]):
        a, b, c, o = x_new[i], x[i], d[i], d_new[i]
        for t in range(a.size):
            v = a[t] - b[t]
            o[t] = v
            cross += c[t] * v
            sq += v * v
    return cross, sq


@njit(cache=True)
def extrapolate(u, u_prev, beta, out):
    """``out = (1 + beta) u - beta u_prev`` in one pass (arrays of shape (p, n_tasks))."""
    c = 1.0 + beta
    for i in range(u.shape[0]):
        a, b, o = u[i], u_prev[i], out[i]
        for t in range(a.size):
            o[t] = c * a[t] - beta * b[t]
