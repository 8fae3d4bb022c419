"""Products with the Gram matrices of a design in the layout that is fastest for its shape.

Per-task designs with many small tasks (Chem97: p = 5, T = 2,410) contract over a cached
task-last copy ``(p, p, T)`` of the Gram stack, so that numpy's inner loop runs over tasks
(contiguous, vectorised): 30-50 us against 120-180 us for the task-first einsum, whose
inner loops have length p. With few tasks and more features, batched ``matmul`` on the
task-first stack wins (p = 50, T = 100: 106 us against 169 us task-last and 359 us
task-first einsum). Measured single-threaded with ``time.perf_counter`` medians.

From :data:`_KERNEL_MIN` floats of Gram stack on, the task-last products run a numba
kernel over the packed upper triangles (:mod:`._task_kernels`): Chem97 16 against 28 us
(``time.process_time`` medians, interleaved), and 1.2-4x faster than the ``einsum`` at every
task-last shape measured (p = 5 to 40, T = 40 to 20,000). Below it numba is never imported.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gram_forward", "gram_product"]

#: per-task products use the task-last ``(p, p, T)`` stack when ``T >= _TASK_LAST * p``
_TASK_LAST = 8
#: largest Gram stack (floats) copied into a folded forward operator
_FOLD_MAX = 2**22
#: smallest task-last Gram stack (floats) whose products use the numba kernel
_KERNEL_MIN = 2**15


def gram_product(design, W, centered):
    """``G_t w_t`` for all tasks.

    Parameters
    ----------
    design : MultiTaskDesign
    W : ndarray of shape (n_features, n_tasks)
    centered : bool
        Use the Gram matrices of the per-task centred data.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)
    """
    if design.shared:
        return design.gram_matvec(W, centered=centered)
    if _task_last(W.shape):
        if _use_kernel(W.shape):
            from ._task_kernels import packed_product

            out = np.empty(W.shape)
            packed_product(_packed_gram(design, centered), _c_order(W), None, out)
            return out
        return np.einsum("ijt,jt->it", _task_last_gram(design, centered), W, optimize=False)
    return _batched(_gram(design, centered), W)


def gram_forward(design, centered, c, L):
    """The forward step ``W -> W - (G_t w_t - c_t) / L`` as one product, or None if too big.

    ``(I - G_t / L) w_t + c_t / L`` costs one Gram product and one addition, against a
    product, a subtraction, a division and a subtraction for the step taken literally.

    Parameters
    ----------
    design : MultiTaskDesign
    centered : bool
    c : ndarray of shape (n_features, n_tasks)
        Minus the gradient at ``W = 0``.
    L : float

    Returns
    -------
    callable or None
        ``step(W, out)`` writes the forward point into ``out`` (shape of ``W``) and returns
        ``(None, None)`` (no linear state, no gradient); None when the Gram stack exceeds
        :data:`_FOLD_MAX` floats (the operator is a copy of it).
    """
    G = _gram(design, centered)
    if G.size > _FOLD_MAX:
        return None
    p = design.n_features
    shift = c / L
    if design.shared:
        M = np.eye(p) - G / L
        product = lambda W, out: np.matmul(M, W, out=out)  # noqa: E731
    elif _task_last(c.shape) and _use_kernel(c.shape):
        return _kernel_forward(design, centered, shift, L)
    elif _task_last(c.shape):
        M = _task_last_gram(design, centered) / -L
        M[np.arange(p), np.arange(p)] += 1.0
        product = lambda W, out: np.einsum("ijt,jt->it", M, W, out=out, optimize=False)  # noqa: E731
    else:
        M = G / -L
        M[:, np.arange(p), np.arange(p)] += 1.0
        product = lambda W, out: np.copyto(out, _batched(M, W))  # noqa: E731

    def step(W, out):
        product(W, out)
        out += shift
        return None, None

    return step


def _kernel_forward(design, centered, shift, L):
    """:func:`gram_forward`'s step by the packed kernel: ``P`` packs ``I - G_t / L``."""
    from ._task_kernels import packed_product

    P = _packed_gram(design, centered) / -L
    p = design.n_features
    diagonal = np.cumsum(np.r_[0, np.arange(p, 1, -1)])  # rows of the pairs (i, i)
    P[diagonal] += 1.0
    shift = np.ascontiguousarray(shift)

    def step(W, out):
        packed_product(P, _c_order(W), shift, out)
        return None, None

    return step


def _task_last(shape):
    p, T = shape
    return T >= _TASK_LAST * p


def _use_kernel(shape):
    p, T = shape
    return p * p * T >= _KERNEL_MIN


def _c_order(W):
    return np.ascontiguousarray(W, dtype=float)


def _packed_gram(design, centered):
    """Upper triangles of the Gram stack, ``(p (p + 1) / 2, n_tasks)``, cached on the design
    (packed from a transposed view: no task-last copy is kept)."""
    from ._task_kernels import pack_upper

    cache = design.__dict__.setdefault("_packed_gram_cache", {})
    if centered not in cache:
        cache[centered] = pack_upper(_gram(design, centered).transpose(1, 2, 0))
    return cache[centered]


def _gram(design, centered):
    return design.gram_centered if centered else design.gram


def _batched(G, W):
    """``G_t w_t`` by batched matmul over the task-first stack ``(T, p, p)``."""
    return np.matmul(G, W.T[:, :, None])[:, :, 0].T


def _task_last_gram(design, centered):
    """The design's Gram stack as ``(n_features, n_features, n_tasks)``, cached on it."""
    cache = design.__dict__.setdefault("_task_last_gram_cache", {})
    if centered not in cache:
        cache[centered] = np.ascontiguousarray(_gram(design, centered).transpose(1, 2, 0))
    return cache[centered]
