"""Working-set block coordinate descent over feature rows, with duality-gap stopping."""

from __future__ import annotations

import logging

import numpy as np

from ..datafits import Quadratic, gap_certifies, gap_from_parts
from ._result import SolverResult, check_penalty, final_gap, gradient_scale, initial_point
from .fista import fista

__all__ = ["bcd"]

logger = logging.getLogger(__name__)

#: penalties whose row prox has a numba kernel (others use FISTA inside the working set)
_KERNEL_KINDS = {"L1": 0, "L21": 1}


def bcd(
    datafit,
    penalty,
    W0=None,
    b0=None,
    *,
    fit_intercept=True,
    tol=1e-8,
    max_iter=100,
    max_epochs=20000,
    p0=100,
):
    """Minimise ``datafit(W, b) + penalty(W)`` for a row-separable penalty with working sets.

    Each outer iteration computes the full datafit gradient, the stopping criterion and a
    score for every zero feature row (the norm of its prox-gradient step, positive exactly
    when the row violates the optimality conditions); the working set is the support plus
    the best-scoring rows, ``max(p0, 2 |support|, n_violating / 4)`` rows in all (all rows
    once half are needed). The subproblem on the working set is solved on its (small) Gram
    matrices by cyclic block coordinate descent in a numba kernel (quadratic loss with L1 or
    L21), otherwise by FISTA: at least to 0.3 times the outer criterion, and on towards
    ``tol / 2`` while its epochs cost less than one outer iteration (:func:`_epoch_budget`),
    which saves outer passes over the data when the working set is right. The duality gap
    and objective of the last outer iteration are those of the returned point.

    Parameters
    ----------
    datafit : Quadratic or Logistic
    penalty : row-separable Penalty
    W0 : ndarray of shape (n_features, n_tasks), optional
        Starting point (copied).
    b0 : ndarray of shape (n_tasks,), optional
    fit_intercept : bool, default=True
    tol : float, default=1e-8
        Stop when the relative duality gap (quadratic loss, norm penalty, where it certifies
        ``tol``: :func:`~multitask.linear.datafits.gap_certifies`) or the largest row
        subdifferential distance relative to ``max_j ||grad0[j]||`` is below ``tol``.
    max_iter : int, default=100
        Outer (working-set) iterations.
    max_epochs : int, default=20000
        Epochs of the inner solver per working set.
    p0 : int, default=100
        Smallest working-set size.

    Returns
    -------
    SolverResult
        ``n_iter`` counts outer iterations; ``history`` holds the objective at each.

    References
    ----------
    Tseng, P. and Yun, S. "A coordinate gradient descent method for nonsmooth separable
    minimization." Mathematical Programming 117, 2009 (block proximal coordinate steps).
    Massias, M., Gramfort, A. and Salmon, J. "Celer: a fast solver for the Lasso with dual
    extrapolation." ICML 2018, Algorithm 1 (working sets grown from the prox-gradient score,
    inner precision a fraction of the outer duality gap).
    Ndiaye, E., Fercoq, O., Gramfort, A. and Salmon, J. "Gap safe screening rules for
    sparsity enforcing penalties." JMLR 18(128), 2017, eq. (7) (the rescaled-residual dual
    point behind the gap of every outer iteration).
    """
    check_penalty(penalty, ("value", "prox"))
    if not getattr(penalty, "row_separable", False):
        raise TypeError(
            f"bcd needs a row-separable penalty, got {type(penalty).__name__}; use fista."
        )
    W, b = initial_point(datafit, penalty, W0, b0)
    profile = fit_intercept and hasattr(datafit, "centered")
    df = datafit.centered() if profile else datafit
    joint_b = fit_intercept and not profile
    # the duality gap where it certifies tol; at alpha = 0 (or tiny) the rescaled dual point
    # is useless: the subdifferential distance outside, FISTA's mapping inside
    use_gap = not joint_b and isinstance(df, Quadratic)
    use_gap = use_gap and gap_certifies(penalty, df.gradient_at_zero(), tol)
    kind = _KERNEL_KINDS.get(type(penalty).__name__)
    kernel = kind is not None and use_gap  # the kernel's working-set solve stops on the gap
    scale = None  # gradient scale at zero, only needed without a duality gap
    cache = _GramCache(df) if kernel else None
    crit, history, it, gap = np.inf, [], 0, None
    # On every row, FISTA's own criterion (the Frobenius prox-gradient mapping) can be met
    # while the outer one (the largest row's subdifferential distance) is not: the outer loop
    # then repeated without moving (thousands of iterations). The two are compared at the
    # point FISTA returns, and its tolerance scaled by their ratio from then on.
    shrink, inner_crit = 1.0, None
    for it in range(1, max_iter + 1):
        if joint_b:
            b = df.intercept_optimal(W, b)
        S = _linear_sparse(df, W)
        crit, obj, grad, scale, gap = _outer_crit(df, W, b, S, penalty, scale, joint_b, use_gap)
        history.append(obj)
        logger.debug("bcd outer %d: crit=%.3g, support=%d", it, crit, _support(W).size)
        if crit <= tol:
            break
        if inner_crit is not None:  # the last solve was of the whole problem, to this point
            shrink = min(shrink, max(inner_crit / crit, 1e-8))
        gap, inner_crit = None, None  # W changes below
        ws = _working_set(W, grad, penalty, p0)
        inner_tol = max(0.3 * crit, 0.1 * tol) if kernel else max(0.1 * crit, 0.1 * tol)
        if ws.size == W.shape[0]:  # the subproblem is the whole problem
            inner_tol = 0.5 * tol
        if kernel:
            tols = (inner_tol, 0.5 * tol, _epoch_budget(df, ws.size))
            W[ws] = _solve_ws_kernel(cache, W[ws], ws, penalty.alpha, kind, tols, max_epochs)
        else:
            inner_tol *= shrink
            W[ws], b, reached = _solve_ws_fista(
                df, W[ws], b, ws, penalty, inner_tol, max_epochs, joint_b
            )
            if ws.size == W.shape[0]:
                inner_crit = reached
    if profile:
        b = datafit.intercept_optimal(W)
    if gap is not None and not df.use_gram:  # the primal at this W, from its residual
        objective = obj
    else:
        objective = datafit.value(W, b if fit_intercept else None) + penalty.value(W)
    converged = crit <= tol
    if not converged:
        logger.warning("bcd did not converge: stop_crit=%.3g > tol=%.3g", crit, tol)
    if gap is None and use_gap:  # else the last outer iteration's gap is at this W
        gap = final_gap(df, W, df.linear(W), penalty)
    return SolverResult(
        W, b, it, float(objective), float(crit), bool(converged), tuple(history), dual_gap=gap
    )


def _support(W):
    return np.flatnonzero(np.any(W != 0, axis=1))


def _scale(df, b, joint_b):
    """``max_j ||grad0[j]||``: the scale of the subdifferential criterion."""
    p, T = df.n_features, df.n_tasks
    zero = np.zeros((p, T))
    g, gb = df.gradient_at(zero, b, df.linear(zero))
    gb = float(np.max(np.abs(gb), initial=0.0)) if joint_b else 0.0
    return gradient_scale(float(np.max(np.linalg.norm(g, axis=1), initial=0.0)), gb)


def _linear_sparse(df, W):
    """The datafit's linear state, using only the nonzero rows of ``W`` when it helps."""
    design = df.design
    rows = _support(W)
    if df.use_gram or not design.shared or rows.size > design.n_features // 2:
        return df.linear(W)
    S = np.asarray(design.X[:, rows] @ W[rows]) if rows.size else np.zeros_like(design.y)
    if df.profiled:
        S = S - np.sum(design.x_mean * W, axis=0)
    return S


def _outer_crit(df, W, b, S, penalty, scale, joint_b, use_gap):
    """(stopping criterion, objective, datafit gradient, scale, absolute gap or None)."""
    if use_gap:
        gap, grad = df.gap_at(W, S, penalty, return_grad=True)
        if gap is not None:
            crit = max(gap[0], 0.0) / max(gap[1], np.finfo(float).tiny)
            return crit, gap[1], grad, scale, max(float(gap[0]), 0.0)
    scale = _scale(df, b, joint_b) if scale is None else scale
    grad, gb = df.gradient_at(W, b, S)
    crit = penalty.subdiff_distance(W, grad) / scale
    if joint_b:
        crit = max(crit, float(np.max(np.abs(gb))) / scale)
    return crit, df.value_at(W, b, S) + penalty.value(W), grad, scale, None


def _working_set(W, grad, penalty, p0):
    """Support of ``W`` plus the zero rows with the largest prox-gradient scores."""
    nonzero = np.any(W != 0, axis=1)
    score = np.full(W.shape[0], np.inf)
    zero_rows = np.flatnonzero(~nonzero)
    if zero_rows.size:
        step = penalty.prox(-grad[zero_rows], 1.0)
        score[zero_rows] = np.linalg.norm(step, axis=1)
    n_violating = int(np.sum(score[zero_rows] > 0)) if zero_rows.size else 0
    size = min(W.shape[0], max(p0, 2 * int(nonzero.sum()), n_violating // 4))
    if size >= 0.5 * W.shape[0]:  # most rows: take them all, no more outer iterations
        size = W.shape[0]
    if size < W.shape[0]:
        ws = np.argpartition(-score, size - 1)[:size]
    else:
        ws = np.arange(W.shape[0])
    if size < W.shape[0]:
        ws = ws[score[ws] > 0] if np.any(score[ws] > 0) else ws
    return np.sort(ws)


class _GramCache:
    """Gram blocks of the features seen so far, grown as the working set grows.

    Over all outer iterations the Gram work is that of the largest working set once,
    instead of once per working set. Uses the design's full Gram matrices when the
    datafit computes with them.
    """

    def __init__(self, df):
        self.df = df
        self.cols = np.zeros(0, dtype=np.int64)
        self.G = None
        self._Xw = None
        self._wscale = 1.0

    def _weighted_X(self):
        """``D^{1/2} X``; with equal weights ``X`` itself, the weight applied to the blocks."""
        if self._Xw is None:
            design = self.df.design
            X = design.X
            if design.equal_weight is not None:
                self._Xw = X.tocsc() if hasattr(X, "tocsc") else X
                self._wscale = design.equal_weight
            else:
                sw = np.sqrt(design.weights)[:, None]
                self._Xw = X.multiply(sw).tocsc() if hasattr(X, "multiply") else X * sw
        return self._Xw

    def pieces(self, ws):
        """Gram matrices (n_gram, k, k), ``X^T D y`` (T, k), ``y^T D y`` (T,) on rows ``ws``."""
        df, design = self.df, self.df.design
        if df.use_gram:
            G = design.gram
            G = G[np.ix_(ws, ws)][None] if design.shared else G[:, ws][:, :, ws]
        elif design.shared:
            G = self._shared_block(ws)[None]
        else:
            G = design.restrict(ws).gram
        C, yty, mu = design.xty[ws], design.yty, design.x_mean[ws]
        if df.profiled:
            G = G - np.einsum("it,jt->tij", mu, mu)
            C = C - mu * design.y_mean
            yty = yty - design.y_mean**2
        return np.ascontiguousarray(G), np.ascontiguousarray(C.T), yty

    def _shared_block(self, ws):
        """Gram block of the (sorted) rows ``ws``, computing only the columns not seen."""
        new = np.setdiff1d(ws, self.cols, assume_unique=True)
        if new.size:
            self._grow(new)
        if np.array_equal(self.cols, ws):  # no gather needed
            return self.G
        pos = np.empty(self.df.n_features, dtype=np.int64)
        pos[self.cols] = np.arange(self.cols.size)
        idx = pos[ws]
        return self.G.take(idx, axis=0).take(idx, axis=1)

    def _grow(self, new):
        """Append the columns ``new`` to the cached block (BLAS syrk for the new block).

        When the block would cover every feature, the design's full Gram matrix is used
        instead (the same flops as the missing blocks, with no copies of columns and no
        reordering; kept on the design for later solves).
        """
        p = self.df.n_features
        if self.cols.size + new.size == p:
            self.cols, self.G = np.arange(p), self.df.design.gram
            return
        Xw, scale = self._weighted_X(), self._wscale
        Xn = Xw[:, new]
        G = _gram(Xn, Xn)
        if scale != 1.0:
            G *= scale
        if self.cols.size:
            cross = _gram(Xw[:, self.cols], Xn)
            if scale != 1.0:
                cross *= scale
            G = np.block([[self.G, cross], [cross.T, G]])
        self.cols, self.G = np.concatenate([self.cols, new]), G


def _gram(A, B):
    out = A.T @ B
    return out.toarray() if hasattr(out, "toarray") else np.asarray(out)


def _epoch_budget(df, k):
    """Inner epochs on ``k`` rows that cost about one outer iteration (one full gradient).

    An epoch of Gram coordinate descent costs about ``k^2 T`` flops; the outer gradient
    ``n p T`` (shared data), ``nnz(X)`` (per-task data) or ``p^2 T`` (Gram matrices). While
    epochs are this cheap, solving the working set tightly saves outer iterations.
    """
    design = df.design
    p, T = design.n_features, design.n_tasks
    if df.use_gram:
        outer = p * p * T
    elif design.shared:
        outer = design.n_samples * p * T
    else:
        outer = design.Z.nnz
    return max(1, int(outer // max(k * k * T, 1)))


def _solve_ws_kernel(cache, W_ws, ws, alpha, kind, tols, max_epochs):
    """Gram block coordinate descent on the working set (numba kernel).

    ``tols = (loose, tight, budget)``: epochs run until the relative gap of the working-set
    problem is below ``loose``, and go on towards ``tight`` while fewer than ``budget``
    epochs have run.
    """
    from ._kernels import cd_epochs_gram

    loose, tight, budget = tols
    G, C, yty = cache.pieces(ws)
    Wt = np.ascontiguousarray(W_ws.T, dtype=float)
    H = np.ascontiguousarray(np.einsum("tij,tj->ti", G, Wt) if G.shape[0] > 1 else Wt @ G[0])
    lips = np.max(np.diagonal(G, axis1=1, axis2=2), axis=0).copy()
    pen = _RowNorm(alpha, kind)
    epochs = 0
    while epochs < max_epochs:
        n = min(1 + epochs, 10, max_epochs - epochs)  # check the gap early, then every 10
        cd_epochs_gram(G, C, Wt, H, lips, alpha, kind, n)
        epochs += n
        wc = np.sum(Wt * C, axis=1)
        F = 0.5 * float(np.sum(np.sum(Wt * H, axis=1) - 2 * wc + yty))
        gap, primal, _ = gap_from_parts(Wt.T, F, float(np.sum(yty - wc)), (H - C).T, pen)
        rel = gap / max(primal, np.finfo(float).tiny)
        if rel <= tight or (rel <= loose and epochs >= budget):
            break
    logger.debug("bcd working set of %d rows: %d epochs, gap %.3g", len(ws), epochs, gap)
    return Wt.T


def _solve_ws_fista(df, W_ws, b, ws, penalty, tol, max_epochs, joint_b):
    """FISTA on the working set (any loss, any row-separable penalty): ``(W, b, its criterion
    at W)``."""
    design = df.design.restrict(ws)
    sub = type(df)(design)
    if df.profiled:
        sub = sub.centered()
    # its epoch budget ending the solve is routine here: bcd's outer loop decides convergence
    res = fista(
        sub, penalty, W_ws, b, fit_intercept=joint_b, tol=tol, max_iter=max_epochs, warn=False
    )
    return res.W, res.intercept, res.stop_crit


class _RowNorm:
    """L1 (kind 0) or L21 (kind 1) with ``alpha``: enough for :func:`gap_from_parts`."""

    def __init__(self, alpha, kind):
        self.alpha, self.kind = alpha, kind

    def value(self, W):
        norms = np.abs(W).sum() if self.kind == 0 else np.linalg.norm(W, axis=1).sum()
        return self.alpha * float(norms)

    def dual_norm(self, G):
        if self.kind == 0:
            return float(np.max(np.abs(G), initial=0.0))
        return float(np.max(np.linalg.norm(G, axis=1), initial=0.0))
