"""Convex clustered multi-task learning: accelerated projected gradient in ``(W, M)``."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..penalties.clustered import cmtl_value, project_cluster_constraint

__all__ = ["ClusteredResult", "clustered_mtl"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusteredResult:
    """Outcome of :func:`clustered_mtl`: the fields of ``SolverResult`` plus ``M``.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_tasks)
    M : ndarray of shape (n_tasks, n_tasks)
        Relaxed cluster matrix, ``0 <= M <= I``, ``tr M = k``.
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


class _CMTL:
    """``datafit(W, b) + rho1 * eta (1 + eta) tr(W (eta I + M)^-1 W^T)`` and its gradient.

    One Cholesky factorisation of ``eta I + M`` per point gives the value and both
    gradients (the same formulas as :mod:`multitask.linear.penalties.clustered`, which
    the tests compare against).
    """

    def __init__(self, df, rho1, eta, joint_b):
        self.df, self.rho1, self.eta, self.joint_b = df, rho1, eta, joint_b
        self.c = rho1 * eta * (1 + eta)

    def _inv(self, M):
        """``(eta I + M)^-1``; raises ``LinAlgError`` when not positive definite."""
        A = self.eta * np.eye(M.shape[0]) + 0.5 * (M + M.T)
        Linv = np.linalg.inv(np.linalg.cholesky(A))
        return Linv.T @ Linv

    def value(self, W, M, b, S, inv=None):
        inv = self._inv(M) if inv is None else inv
        return self.df.value_at(W, b, S) + self.c * float(np.sum((W @ inv) * W))

    def gradient(self, W, M, b, S, inv=None):
        inv = self._inv(M) if inv is None else inv
        gW, gb = self.df.gradient_at(W, b, S)
        WA = W @ inv
        gW = gW + 2.0 * self.c * WA
        gM = -self.c * (WA.T @ WA)
        return gW, gM, gb if self.joint_b else np.zeros_like(gb)


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
):
    """Convex relaxation of clustered MTL (MALSAR ``Least_CMTL`` / ``Logistic_CMTL``).

    Minimises over ``W`` (n_features, n_tasks), ``M`` (n_tasks, n_tasks) and ``b``::

        datafit(W, b) + rho1 * eta (1 + eta) tr(W (eta I + M)^{-1} W^T),  eta = rho2 / rho1
        s.t. 0 <= M <= I,  tr M = k

    by accelerated projected gradient with backtracking and gradient restart (``W`` and
    ``b`` are free, ``M`` is projected by the eigenvalue projection of
    :func:`~multitask.linear.penalties.clustered.project_cluster_constraint`).

    Parameters
    ----------
    datafit : Quadratic or Logistic
    rho1, rho2 : float, > 0
        Strengths as in MALSAR (``rho1`` clustering, ``rho2`` ridge-like).
    k : float
        Number of clusters, in ``[1, n_tasks]``.
    W0, M0, b0 : ndarray, optional
        Starting point (copied); ``M0`` defaults to ``(k / n_tasks) I``.
    fit_intercept : bool, default=True
        Quadratic: profiled out exactly; otherwise a free variable.
    tol : float, default=1e-8
        Stop when the projected-gradient mapping norm, relative to the datafit gradient norm
        at zero, is below ``tol``.
    max_iter : int, default=10000

    Returns
    -------
    ClusteredResult

    References
    ----------
    Zhou, J., Chen, J. and Ye, J. "Clustered multi-task learning via alternating structure
    optimization." NIPS 2011, problem (9) and Section 4.1 (accelerated projected gradient,
    eigenvalue projection of M).
    Zhou, J., Chen, J. and Ye, J. MALSAR: Multi-tAsk Learning via StructurAl Regularization,
    Arizona State University 2011, ``Least_CMTL`` (objective scaling with ``eta = rho2/rho1``).
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
    M = (k / T) * np.eye(T) if M0 is None else project_cluster_constraint(M0, k)
    b = np.zeros(T) if b0 is None else np.array(b0, dtype=float)
    problem = _CMTL(df, float(rho1), float(rho2) / float(rho1), joint_b)
    L = df.lipschitz(fit_intercept=joint_b) + 2 * rho1 * (
        1 + problem.eta
    )  # ||(eta I+M)^-1|| <= 1/eta
    scale = _scale(df, b)
    W, M, b, (it, crit, history) = _apg(problem, W, M, b, L, k, tol, max_iter, scale)
    if profile:
        b = datafit.intercept_optimal(W)
    objective = datafit.value(W, b) + rho1 * cmtl_value(W, M, problem.eta)
    converged = crit <= tol
    if not converged:
        logger.warning("clustered_mtl did not converge: stop_crit=%.3g > tol=%.3g", crit, tol)
    return ClusteredResult(W, M, b, it, float(objective), float(crit), converged, history)


def _scale(df, b):
    zero = np.zeros((df.n_features, df.n_tasks))
    g, _ = df.gradient_at(zero, b, df.linear(zero))
    return max(float(np.linalg.norm(g)), np.finfo(float).tiny)


def _apg(problem, W, M, b, L, k, tol, max_iter, scale):
    """Accelerated projected gradient loop with backtracking and gradient restart."""
    linear = problem.df.linear
    x = (W, M, b)
    y, Sy = x, linear(W)
    Sx = Sy
    t, crit, history, it = 1.0, np.inf, [], 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is returned)
        try:
            inv = problem._inv(y[1])
        except np.linalg.LinAlgError:  # extrapolated M left the domain: restart there
            y, Sy, t = x, Sx, 1.0
            inv = problem._inv(y[1])
        fy = problem.value(*y, Sy, inv=inv)
        g = problem.gradient(*y, Sy, inv=inv)
        while True:
            M_new = project_cluster_constraint(y[1] - g[1] / L, k)
            new = (y[0] - g[0] / L, M_new, y[2] - g[2] / L)
            S_new = linear(new[0])
            f_new = problem.value(*new, S_new)
            d = [a - c for a, c in zip(new, y, strict=True)]
            sq = sum(float(np.vdot(v, v)) for v in d)
            lin = sum(float(np.vdot(gv, v)) for gv, v in zip(g, d, strict=True))
            if f_new <= fy + lin + 0.5 * L * sq + 1e-12 * abs(fy):
                break
            L *= 2.0
        history.append(f_new)
        crit = L * math.sqrt(sq) / scale
        if crit <= tol:
            x = new
            break
        dots = sum(float(np.vdot(a - c, c - e)) for a, c, e in zip(y, new, x, strict=True))
        if dots > 0:
            t = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        y = tuple(c + beta * (c - e) for c, e in zip(new, x, strict=True))
        Sy = (1.0 + beta) * S_new - beta * Sx
        x, Sx, t = new, S_new, t_new
    return x[0], x[1], x[2], (it, crit, tuple(history))
