"""The FISTA loop at a fixed step for datafits whose gradient is affine (the squared loss).

Same iterates as the general loop of :mod:`.fista` (up to rounding), fewer array passes:
with an affine gradient the forward point at the extrapolated point ``y = x + beta d``
(``d = x - x_prev``) is the same combination of the forward points ``u = x - grad(x) / L``
of the iterates,

    y - grad(y) / L = u + beta (u - u_prev),

so one product with the data (or the Gram matrices) per iteration gives everything: no
state or gradient of ``y`` is formed. The gradient-restart test and the prox-gradient
mapping come from ``y - x+ = beta d - d+``. Every array lives in a buffer allocated once
except the prox's output. An iteration is one extrapolation, the prox, one pass forming the
step and both restart dots, one forward step, and every ``gap_freq``-th iteration a
duality gap. Profile on Chem97 (p = 5, 2,410 tasks, Gram mode, numba kernels; CPU-time
medians at load ~2.5): forward step 20 us, L21 prox 16 us, step and dots 6 us,
extrapolation 4 us, gap check 23 + 58 us every 10th iteration, Python about 8 us: about
60 us in all, 2x one pass of ``X^T r`` (the numpy loop before: 85-92 us, 2.6-2.95x).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ._metric_forward import metric_forward

__all__ = ["iterate_affine", "uses_kernels"]

logger = logging.getLogger(__name__)

_TINY = np.finfo(float).tiny
#: iterates with at least this many entries, and at least :data:`_MANY_TASKS` tasks per
#: feature, use the numba kernels: there an iteration is cheap, so its elementwise passes and
#: numpy's call overhead count (Chem97: 12,050 entries, 482 tasks per feature). Elsewhere the
#: product or the prox dominates and a numba load (about 0.5 s per process) would not pay.
_KERNEL_MIN = 2**13
_MANY_TASKS = 8


def iterate_affine(
    datafit, penalty, x, b, *, L, tol, max_iter, gap_freq, restart, use_gap, scale, metric=None
):
    """FISTA with gradient restart at the step ``1 / L`` for an affine-gradient datafit.

    Parameters
    ----------
    datafit : Quadratic
        ``affine_gradient`` is True; profiled (centred) or without intercept, ``b`` fixed.
    penalty : Penalty
        Single-component penalty with ``prox`` and ``value``.
    x : ndarray of shape (n_features, n_tasks)
        Starting point (not modified).
    b : ndarray of shape (n_tasks,)
        Fixed intercept passed to the datafit (ignored when profiled).
    L : float
        Lipschitz estimate of the step ``1 / L``, kept fixed: :func:`fista` comes here only
        when no backtracking is needed (the proven bound or above) or it is switched off.
    tol, max_iter, gap_freq, restart, use_gap, scale
        As in :func:`~multitask.linear.solvers.fista`; ``scale`` normalises the mapping
        criterion when ``use_gap`` is False.
    metric : ndarray of shape (n_features, 1), optional
        Jacobi diagonal ``m`` of a row metric (:func:`._metric.jacobi_metric`): row ``j``
        then steps by ``1 / (L m_j)``, the restart test is the inner product weighted by
        ``m`` and the mapping criterion is ``||L m (y - x+)||``. The forward point obeys
        the same affine recursion (the step is a fixed linear map).

    Returns
    -------
    (x, b, (n_iter, stop_crit, history))

    References
    ----------
    Beck, A. and Teboulle, M. "A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems." SIAM J. Imaging Sciences 2(1), 2009, FISTA with constant step
    (Section 4, eq. (4.1)-(4.3)).
    O'Donoghue, B. and Candès, E. "Adaptive restart for accelerated gradient schemes."
    Foundations of Computational Mathematics 15, 2015, gradient restart (Section 3.2).
    """
    Lm = L if metric is None else L * metric  # the inverse step, scalar or per row
    step = 1.0 / Lm
    forward = metric_forward(datafit, b, Lm) if metric is not None else None
    forward = forward or datafit.forward_operator(b, L)
    x = np.ascontiguousarray(x)  # a warm start may be F-ordered (W0 = coef_.T)
    u, u_prev, extrapolate, step_dots = _forward_points_and_ops(x.shape, metric)
    d_new, d = np.zeros(x.shape), np.zeros(x.shape)  # steps of the last two iterations
    V = np.empty(x.shape)  # forward point at the extrapolated iterate
    forward(x, u)
    beta, t = 0.0, 1.0
    history = []
    crit = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        extrapolate(u, u_prev, beta, V)
        x_new = penalty.prox(V, step)
        if np.may_share_memory(x_new, V) or not x_new.flags.c_contiguous:
            x_new = np.array(x_new, order="C")  # its own C-ordered copy (one kernel layout)
        d, d_new = d_new, d  # d = x - x_prev; the older step's buffer takes x_new - x
        cross, sq = step_dots(x_new, x, d, d_new)
        u, u_prev = u_prev, u  # forward(x_new) overwrites the point no longer needed
        S_new, g_new = forward(x_new, u)
        at_check = it % gap_freq == 0 or it == 1
        if at_check and S_new is None:
            S_new = datafit.linear(x_new)
        e = None  # y - x_new, formed only for the mapping criterion
        if use_gap:
            if at_check:
                gap, primal = _gap(datafit, x_new, S_new, g_new, penalty)
                crit = gap / max(abs(primal), _TINY)
                history.append(primal)
        else:
            e = np.multiply(d, beta) - d_new if beta else -d_new
            crit = _mapping_norm(Lm, e) / scale
            if at_check:
                history.append(datafit.value_at(x_new, b, S_new) + penalty.value(x_new))
        if crit <= tol:
            x = x_new
            break
        if restart and beta and _inner(e, d_new, beta, cross, sq, metric) > 0:
            t = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        x, t = x_new, t_new
    logger.debug("fista: %d iterations, stop_crit=%.3g, L=%.3g", it, crit, L)
    return x, b, (it, crit, tuple(history))


def uses_kernels(shape):
    """True when the scalar-step loop runs the numba kernels on iterates of ``shape``
    (many small tasks: :data:`_KERNEL_MIN`, :data:`_MANY_TASKS`)."""
    n_features, n_tasks = shape
    return n_features * n_tasks >= _KERNEL_MIN and n_tasks >= _MANY_TASKS * n_features


def _forward_points_and_ops(shape, metric=None):
    """``(u, u_prev, extrapolate, step_dots)``: zeroed buffers for the forward points of the
    last two iterates and the loop's two array operations.

    Many small tasks (:data:`_KERNEL_MIN`, :data:`_MANY_TASKS`): the numba kernels of
    :mod:`..._task_kernels` (one pass each: on Chem97's ``(5, 2410)`` 4 against 7 us and 5
    against 10 us). Otherwise numpy with the same signatures and no numba import: the
    extrapolation is one BLAS product of the stacked buffers written in place (on
    ``(27, 139)`` 3.4 us, against 3.9 us with a new array and 4.3 us for three ufuncs).
    With a ``metric`` (shape ``(n_features, 1)``) the step's dots are weighted by it.
    """
    U = np.zeros((2, *shape))
    u, u_prev = U[0], U[1]
    if uses_kernels(shape):
        from .._task_kernels import extrapolate, step_dots

        if metric is not None:
            step_dots = _weighted_step_dots(metric)
        return u, u_prev, extrapolate, step_dots
    step_dots = _step_dots if metric is None else _weighted_step_dots(metric)
    flat, coef = U.reshape(2, -1), np.empty(2)

    def extrapolate(v, v_prev, beta, out):
        """``out = (1 + beta) v - beta v_prev``; ``v``, ``v_prev`` are ``u``, ``u_prev``
        in either order."""
        first, second = (1.0 + beta, -beta) if v is u else (-beta, 1.0 + beta)
        coef[0], coef[1] = first, second
        np.matmul(coef, flat, out=out.reshape(-1))

    return u, u_prev, extrapolate, step_dots


def _step_dots(x_new, x, d, d_new):
    """``d_new = x_new - x`` in place; ``(<d, d_new>, <d_new, d_new>)``."""
    np.subtract(x_new, x, out=d_new)
    return float(np.vdot(d, d_new)), float(np.vdot(d_new, d_new))


def _weighted_step_dots(m):
    """:func:`_step_dots` in the metric ``diag(m)``: ``(<d, m d_new>, <d_new, m d_new>)``."""

    def step_dots(x_new, x, d, d_new):
        np.subtract(x_new, x, out=d_new)
        md = m * d_new
        return float(np.vdot(d, md)), float(np.vdot(d_new, md))

    return step_dots


def _inner(e, d_new, beta, cross, sq, metric=None):
    """``<y - x+, x+ - x>`` (the restart test's inner product, weighted by ``metric``):
    ``<e, d+>`` when the mapping criterion formed ``e = y - x+``, else
    ``beta <d, d+> - <d+, d+>`` from the step's dots."""
    if e is not None:
        return float(np.vdot(e, d_new if metric is None else metric * d_new))
    return beta * cross - sq


def _mapping_norm(Lm, e):
    """``||Lm e||`` (``Lm`` the scalar ``L`` or the per-row ``L m``)."""
    if isinstance(Lm, float):
        return Lm * math.sqrt(float(np.vdot(e, e)))
    Le = Lm * e
    return math.sqrt(float(np.vdot(Le, Le)))


def _gap(datafit, W, S, grad, penalty):
    """``(max(gap, 0), primal)`` from the datafit's duality gap at ``W``."""
    gap = datafit.gap_at(W, S, penalty, grad=grad)
    return max(gap[0], 0.0), gap[1]
