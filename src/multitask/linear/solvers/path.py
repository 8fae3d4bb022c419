"""Warm-started regularisation paths from ``alpha_max`` down."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._solve import solve

__all__ = ["PathResult", "alpha_max", "regularization_path"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathResult:
    """Solutions along a regularisation path.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        Decreasing strengths.
    coefs : ndarray of shape (n_alphas, n_features, n_tasks)
        (or ``(n_alphas, 2, n_features, n_tasks)`` for composite penalties).
    intercepts : ndarray of shape (n_alphas, n_tasks)
    n_iter : ndarray of int of shape (n_alphas,)
    converged : ndarray of bool of shape (n_alphas,)
    """

    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


def alpha_max(datafit, penalty_factory, fit_intercept=True):
    """Smallest ``alpha`` for which ``W = 0`` is optimal.

    Parameters
    ----------
    datafit : Quadratic or Logistic
    penalty_factory : callable
        ``alpha -> Penalty``; ``penalty_factory(1.0).alpha_max(grad0)`` must be defined.
        Other strengths (``beta``) must not depend on ``alpha`` (the penalty's
        ``alpha_max`` holds them fixed).
    fit_intercept : bool, default=True
        Take the gradient at ``W = 0`` with the optimal intercept.
    """
    p, T = datafit.n_features, datafit.n_tasks
    zero = np.zeros((p, T))
    b = datafit.intercept_optimal(zero) if fit_intercept else None
    grad0, _ = datafit.gradient(zero, b)
    return float(penalty_factory(1.0).alpha_max(grad0))


def regularization_path(
    datafit,
    penalty_factory,
    alphas=None,
    n_alphas=50,
    eps=1e-3,
    *,
    fit_intercept=True,
    smooth=None,
    tol=1e-8,
    solver="auto",
    W0=None,
):
    """Solve for a decreasing sequence of ``alpha``, each solve warm-started at the last.

    Parameters
    ----------
    datafit : Quadratic or Logistic
    penalty_factory : callable
        ``alpha -> Penalty`` (e.g. ``L21`` or ``lambda a: SparseGroupLasso(a, beta=0.1)``).
    alphas : array-like, optional
        Strengths to use (sorted decreasing); by default ``n_alphas`` values geometrically
        spaced from ``alpha_max`` to ``eps * alpha_max``.
    n_alphas : int, default=50
    eps : float, default=1e-3
    fit_intercept : bool, default=True
    smooth : sequence of SmoothPenalty, optional
    tol : float, default=1e-8
    solver : {"auto", "fista", "bcd", "admm"}, default="auto"
        As in :func:`~multitask.linear.solvers.solve`.
    W0 : ndarray, optional
        Starting point of the first solve.

    Returns
    -------
    PathResult

    References
    ----------
    Friedman, J., Hastie, T. and Tibshirani, R. "Regularization paths for generalized linear
    models via coordinate descent." Journal of Statistical Software 33(1), 2010, Section 2.5
    (warm starts along a geometric grid from ``lambda_max`` to ``eps * lambda_max``).
    """
    if alphas is None:
        if not 0 < eps < 1:
            raise ValueError(f"eps={eps!r} must lie in (0, 1).")
        top = alpha_max(datafit, penalty_factory, fit_intercept)
        alphas = top * np.geomspace(1.0, eps, int(n_alphas))
    alphas = np.sort(np.asarray(alphas, dtype=float))[::-1]
    if alphas.size == 0 or np.any(alphas < 0):
        raise ValueError("alphas must be a non-empty sequence of numbers >= 0.")
    W, b = W0, None
    coefs, intercepts, n_iter, converged = [], [], [], []
    for a in alphas:
        res = solve(
            datafit,
            penalty_factory(a),
            W,
            b,
            fit_intercept=fit_intercept,
            smooth=smooth,
            tol=tol,
            solver=solver,
            n_solves=len(alphas),
        )
        W, b = res.W, res.intercept
        coefs.append(res.W)
        intercepts.append(res.intercept)
        n_iter.append(res.n_iter)
        converged.append(res.converged)
        logger.debug("path alpha=%.4g: %d iterations, crit=%.3g", a, res.n_iter, res.stop_crit)
    return PathResult(
        alphas, np.array(coefs), np.array(intercepts), np.array(n_iter), np.array(converged)
    )
