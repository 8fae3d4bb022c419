"""Convex clustered multi-task learning: FISTA on ``W`` with ``M`` minimised in closed form.

The relaxed problem of Zhou, Chen & Ye (2011) is jointly convex in ``(W, M)``. For a
fixed ``W = U diag(sigma) V^T`` the best ``M`` is ``V diag(gamma) V^T`` with the
water-filling ``gamma_i = clip(sigma_i u - eta, 0, 1)``, ``sum gamma = k`` (their
Theorem 3.1 route, :func:`~multitask.linear.penalties.clustered.cmtl_optimal_M`), so the
problem reduces to the convex, smooth function of ``W`` alone::

    F(W, b) = datafit(W, b) + rho1 eta (1 + eta) sum_i sigma_i^2 / (eta + gamma_i)

whose gradient ``grad datafit + 2 rho1 eta (1 + eta) U diag(sigma / (eta + gamma)) V^T``
is Lipschitz with constant ``L_datafit + 2 rho1 (1 + eta)`` (the partial minimum of a
jointly convex function keeps the quadratic upper bound of its ``W``-block). Sharper:
at each point the objective lies below the quadratic with metric
``L_datafit I + 2 rho1 eta (1 + eta) (eta I + M*)^-1`` (exact in the penalty for the
current optimal ``M*``), so the step is taken in that metric (cheap: it is diagonal
in the right singular vectors of ``W``), with FISTA extrapolation, gradient-based
adaptive restart and a stopping rule on the gradient norm. On badly scaled features
the scalar ``L_datafit`` is replaced by the Jacobi row metric ``diag(c m)`` of
:mod:`._metric` (one curvature per feature row): the metric becomes the Kronecker sum
``diag(c m) (x) I + I (x) 2 rho1 eta (1 + eta) (eta I + M*)^-1``, still diagonal
row by row in the same singular vectors. No backtracking and no
projection in ``M`` are needed; one thin SVD of ``W`` (``n_features x n_tasks``) per
iteration replaces the ``n_tasks x n_tasks`` eigendecomposition of the joint
projected-gradient scheme.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..penalties.clustered import cmtl_optimal_M, cmtl_value
from ._metric import jacobi_metric
from ._result import gradient_scale

__all__ = ["ClusteredResult", "clustered_mtl", "optimal_gamma"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusteredResult:
    """Outcome of :func:`clustered_mtl`: the fields of ``SolverResult`` plus ``M``.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_tasks)
    M : ndarray of shape (n_tasks, n_tasks)
        Relaxed cluster matrix, ``0 <= M <= I``, ``tr M = k``, optimal for ``W``.
    intercept : ndarray of shape (n_tasks,)
    n_iter, objective, stop_crit, converged, history
        As in :class:`SolverResult`.
    """

    W: np.ndarray
    M: np.ndarray
    intercept: np.ndarray
    n_iter: int
    objective: float
    stop_crit: float
    converged: bool
    history: tuple = ()


def optimal_gamma(sigma, eta, k):
    """Eigenvalues of the optimal ``M`` on the singular directions of ``W``.

    Solves ``min sum sigma_i^2 / (eta + gamma_i)`` over ``0 <= gamma <= 1``,
    ``sum gamma <= k`` (the rest of the trace ``k`` sits on the null space of ``W``
    where it costs nothing): ``gamma_i = clip(sigma_i u - eta, 0, 1)`` with ``u``
    found exactly on the piecewise-linear ``sum gamma(u) = k``.

    Parameters
    ----------
    sigma : ndarray of shape (r,)
        Singular values of ``W`` (>= 0).
    eta, k : float
        ``eta > 0``; ``k`` the number of clusters.

    Returns
    -------
    gamma : ndarray of shape (r,)
    """
    sigma = np.asarray(sigma, dtype=float)
    pos = sigma > 0
    if np.count_nonzero(pos) <= k:
        return np.where(pos, 1.0, 0.0)
    s = sigma[pos]
    knots = np.sort(np.concatenate([eta / s, (1.0 + eta) / s]))
    sums = np.clip(np.outer(knots, s) - eta, 0.0, 1.0).sum(1)
    j = int(np.searchsorted(sums, k))  # sums[j - 1] < k <= sums[j], sums[0] = 0
    u0, u1, f0, f1 = knots[j - 1], knots[j], sums[j - 1], sums[j]
    u = u1 if f1 == f0 else u0 + (k - f0) * (u1 - u0) / (f1 - f0)
    return np.clip(sigma * u - eta, 0.0, 1.0)


def _penalty_and_grad(W, c, eta, k, r):
    """``c min_M tr(W (eta I + M)^-1 W^T)``, its gradient in ``W``, and the step map.

    The step map solves ``D vec(S) = vec(G)`` row by row in the metric
    ``D = diag(r) (x) I + I (x) 2 c (eta I + M*)^-1`` of the quadratic majorant of the
    objective at ``W``: ``r`` the datafit's curvature bound (a float ``L_df``, or one
    entry per feature row, shape (n_features, 1), from the Jacobi metric), ``M*`` the
    optimal ``M`` for ``W`` (the rest of the trace ``k`` spread evenly on the null space
    of ``W``). Row ``j`` of ``S`` is ``g_j (r_j I + 2 c (eta I + M*)^-1)^-1``: diagonal
    in the right singular vectors of ``W``.
    """
    U, sigma, Vt = np.linalg.svd(W, full_matrices=False)
    gamma = optimal_gamma(sigma, eta, k)
    inv = 1.0 / (eta + gamma)
    value = c * float(np.sum(sigma**2 * inv))
    grad = (U * (2.0 * c * sigma * inv)) @ Vt
    pos = sigma > 0
    n_tasks, n_pos = W.shape[1], int(np.count_nonzero(pos))
    rest = max(k - float(gamma[pos].sum()), 0.0)
    gamma0 = min(1.0, rest / (n_tasks - n_pos)) if n_tasks > n_pos else 1.0
    d0 = 1.0 / (r + 2.0 * c / (eta + gamma0))
    d = 1.0 / (r + 2.0 * c * inv[pos]) - d0
    V = Vt[pos]

    def step(G):
        return d0 * G + ((G @ V.T) * d) @ V

    return value, grad, step


def clustered_mtl(
    datafit,
    rho1,
    rho2,
    k,
    W0=None,
    M0=None,
    b0=None,
    *,
    fit_intercept=True,
    tol=1e-8,
    max_iter=10000,
    precondition="auto",
):
    """Convex relaxation of clustered MTL (MALSAR ``Least_CMTL`` / ``Logistic_CMTL``).

    Minimises over ``W`` (n_features, n_tasks), ``M`` (n_tasks, n_tasks) and ``b``::

        datafit(W, b) + rho1 * eta (1 + eta) tr(W (eta I + M)^{-1} W^T),  eta = rho2 / rho1
        s.t. 0 <= M <= I,  tr M = k

    by FISTA on ``W`` (and ``b``) with ``M`` eliminated in closed form (module docstring).

    Parameters
    ----------
    datafit : Quadratic or Logistic
    rho1, rho2 : float, > 0
        Strengths as in MALSAR (``rho1`` clustering, ``rho2`` ridge-like).
    k : float
        Number of clusters, in ``[1, n_tasks]``.
    W0, b0 : ndarray, optional
        Starting point (copied), e.g. the solution at a neighbouring ``(rho1, rho2)``.
    M0 : ignored
        Kept for compatibility: ``M`` is a function of ``W`` here.
    fit_intercept : bool, default=True
        Quadratic: profiled out exactly; otherwise a free variable.
    tol : float, default=1e-8
        Stop when the gradient norm of the reduced problem (the prox-gradient mapping of
        a smooth problem), relative to the datafit gradient norm at zero, is below ``tol``.
    max_iter : int, default=10000
    precondition : {"auto", True, False}, default="auto"
        Replace the datafit's scalar curvature ``L_df`` in the step's metric by the Jacobi
        row metric of :func:`._metric.jacobi_metric` (one curvature per feature row and per
        task intercept), for badly scaled features. ``"auto"`` where it pays
        (:meth:`._metric.RowMetric.pays`), True wherever the Gram matrices are cheap,
        False never. The stop (the gradient norm) is the same in all.

    Returns
    -------
    ClusteredResult

    References
    ----------
    Zhou, J., Chen, J. and Ye, J. "Clustered multi-task learning via alternating structure
    optimization." NIPS 2011, problem (9) (cMTL) and Theorem 3.1 / eq. (13) (the optimal
    ``M`` for fixed ``W`` from the SVD of ``W``).
    Beck, A. and Teboulle, M. "A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems." SIAM J. Imaging Sciences 2(1), 2009, Algorithm FISTA.
    O'Donoghue, B. and Candes, E. "Adaptive restart for accelerated gradient schemes."
    Found. Comput. Math. 15, 2015, Sec. 3.2 (gradient restart).
    Combettes, P. L. and Vũ, B. C. "Variable metric forward-backward splitting with
    applications to monotone inclusions in duality." Optimization 63(9), 2014, eq. (1.3)
    (the gradient step in a metric majorising the Hessian: ``precondition``).
    """
    if not (rho1 > 0 and rho2 > 0):
        raise ValueError(f"rho1 and rho2 must be > 0, got rho1={rho1!r}, rho2={rho2!r}.")
    T = datafit.n_tasks
    if not 1 <= k <= T:
        raise ValueError(f"k={k!r} clusters is not in [1, n_tasks={T}].")
    profile = fit_intercept and hasattr(datafit, "centered")
    df = datafit.centered() if profile else datafit
    joint_b = fit_intercept and not profile
    W = np.zeros((df.n_features, T)) if W0 is None else np.array(W0, dtype=float)
    b = np.zeros(T) if b0 is None else np.array(b0, dtype=float)
    eta = float(rho2) / float(rho1)
    c = float(rho1) * eta * (1.0 + eta)
    r, rb = _curvature(df, joint_b, precondition)
    W, b, (it, crit, history) = _fista(df, c, eta, k, W, b, joint_b, (r, rb), tol, max_iter)
    M = cmtl_optimal_M(W, eta, k)
    if profile:
        b = datafit.intercept_optimal(W)
    objective = datafit.value(W, b) + float(rho1) * cmtl_value(W, M, eta)
    converged = crit <= tol
    if not converged:
        logger.warning("clustered_mtl did not converge: stop_crit=%.3g > tol=%.3g", crit, tol)
    return ClusteredResult(W, M, b, it, float(objective), float(crit), converged, history)


def _curvature(df, joint_b, precondition):
    """``(r, rb)``: the datafit's curvature bound on the feature rows and the intercepts,
    scalars ``L_df`` or the Jacobi metric's ``c m`` (n_features, 1) and ``c m_b``."""
    if precondition not in ("auto", True, False):
        raise ValueError(f"precondition={precondition!r} is not one of 'auto', True, False.")
    metric = jacobi_metric(df, joint_b=joint_b) if precondition else None
    if metric is not None and (precondition is True or metric.pays()):
        return metric.scale, (metric.scale_b if joint_b else 1.0)
    L_df = df.lipschitz(fit_intercept=joint_b)
    return L_df, L_df


def _scale(df, b, joint_b):
    zero = np.zeros((df.n_features, df.n_tasks))
    g, gb = df.gradient_at(zero, b, df.linear(zero))
    return gradient_scale(float(np.linalg.norm(g)), float(np.linalg.norm(gb)) if joint_b else 0.0)


def _fista(df, c, eta, k, W, b, joint_b, curvature, tol, max_iter):
    """Accelerated majorise-minimise steps in the metric of :func:`_penalty_and_grad`.

    Each step minimises the quadratic majorant at the extrapolated point (exact for the
    penalty in ``W`` at fixed ``M``, ``L_df`` for the datafit), so the within-cluster
    stiffness ``2 rho1`` no longer sets the step; gradient restart; stop when the
    relative gradient norm is below ``tol``.
    """
    scale = _scale(df, b, joint_b)
    r, rb = curvature
    xW, xb, SxW = W, b, df.linear(W)
    yW, yb, Sy = xW, xb, SxW
    t, crit, history, it = 1.0, np.inf, [], 0
    for it in range(1, max_iter + 1):
        pen, gpen, step = _penalty_and_grad(yW, c, eta, k, r)
        gW, gb = df.gradient_at(yW, yb, Sy)
        gW = gW + gpen
        if not joint_b:
            gb = np.zeros_like(gb)
        crit = math.sqrt(float(np.vdot(gW, gW)) + float(gb @ gb)) / scale
        if it % 10 == 1:
            history.append(df.value_at(yW, yb, Sy) + pen)
        if crit <= tol:  # certified at y: return it
            xW, xb = yW, yb
            break
        nW, nb = yW - step(gW), yb - gb / rb
        S_new = df.linear(nW)
        # gradient restart: <grad F(y), x+ - x> > 0, i.e. <y - x+, x+ - x>_D > 0 in the
        # step's metric D (y - x+ = D^-1 grad F(y))
        if float(np.vdot(gW, nW - xW)) + float(gb @ (nb - xb)) > 0:
            t = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        mom = (t - 1.0) / t_new
        yW, yb = nW + mom * (nW - xW), nb + mom * (nb - xb)
        Sy = (1.0 + mom) * S_new - mom * SxW
        xW, xb, SxW, t = nW, nb, S_new, t_new
    return xW, xb, (it, crit, tuple(history))
