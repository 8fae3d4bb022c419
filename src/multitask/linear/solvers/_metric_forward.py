"""The forward step ``W -> W - M^{-1} grad(W)`` of the squared loss in a row metric.

With ``M = diag(Lm)`` (one entry per feature row, :mod:`._metric`) the step on the Gram
matrices is still one product, ``(I - diag(1 / Lm) G_t) w_t + c_t / Lm``, whose matrix is
no longer symmetric: it is formed here (task-first or task-last stack, as in
:mod:`.._gram_products`) instead of packed for the symmetric numba kernel. Products with
the data need nothing new: their step ``W - grad / L`` broadcasts a per-row ``L``.
"""

from __future__ import annotations

import numpy as np

from ..datafits import literal_forward

__all__ = ["metric_forward"]

#: per-task products use the task-last ``(p, p, T)`` stack when ``T >= _TASK_LAST * p``
#: (the layout rule of :mod:`.._gram_products`)
_TASK_LAST = 8
#: largest Gram stack (floats) copied into a folded operator; above, the literal step
_FOLD_MAX = 2**22


def metric_forward(datafit, b, Lm):
    """``step(W, out)`` writing ``W - grad_W(W, b) / Lm`` into ``out``.

    Parameters
    ----------
    datafit : Quadratic
    b : ndarray of shape (n_tasks,)
        Fixed intercept (ignored when profiled).
    Lm : ndarray of shape (n_features, 1), or (n_features, n_tasks) for a per-task design
        Inverse step of every feature row (or entry).

    Returns
    -------
    callable
        As :meth:`Quadratic.forward_operator`: returns ``(S, grad)``, or ``(None, None)``
        when the step is one product with a folded Gram operator.
    """
    if not datafit.use_gram:
        return datafit.forward_operator(b, Lm)  # data products broadcast a per-row step
    design = datafit.design
    G = design.gram_centered if datafit.profiled else design.gram
    p, T = datafit.n_features, datafit.n_tasks
    zero = np.zeros((p, T))
    shift = -datafit.gradient_at(zero, b, zero)[0] / Lm
    if G.size > _FOLD_MAX:
        return literal_forward(datafit, b, Lm)
    eye = np.arange(p)
    if design.shared and Lm.shape[1] != 1:
        return literal_forward(datafit, b, Lm)
    if design.shared:
        M = G / -Lm
        M[eye, eye] += 1.0
        product = lambda W, out: np.matmul(M, W, out=out)  # noqa: E731
    elif T >= _TASK_LAST * p:
        M = np.ascontiguousarray(G.transpose(1, 2, 0)) / -Lm[:, None, :]
        M[eye, eye] += 1.0
        product = lambda W, out: np.einsum("ijt,jt->it", M, W, out=out, optimize=False)  # noqa: E731
    else:
        M = G / -Lm.T[:, :, None]
        M[:, eye, eye] += 1.0
        product = lambda W, out: np.copyto(out, np.matmul(M, W.T[:, :, None])[:, :, 0].T)  # noqa: E731

    def step(W, out):
        product(W, out)
        out += shift
        return None, None

    return step
