"""Pieces of convex clustered multi-task learning (cMTL), a joint problem in (W, M).

The relaxed problem of Zhou, Chen & Ye (2011) is

    min_{W, M}  datafit(W) + alpha * eta (1 + eta) tr(W (eta I + M)^{-1} W^T)
    s.t.        0 <= M <= I (in the PSD order),  tr(M) = k,

with ``W`` of shape ``(n_features, n_tasks)``, ``M`` of shape ``(n_tasks,
n_tasks)`` and ``k`` the number of task clusters (MALSAR's ``Least_CMTL`` with
``rho_1 = alpha`` and ``eta = rho_2 / rho_1``). The term is jointly convex
(a matrix-fractional function). Solvers use :func:`cmtl_value`,
:func:`cmtl_grad_W`, :func:`cmtl_grad_M` and :func:`project_cluster_constraint`
(projected gradient in ``(W, M)``), or :func:`cmtl_optimal_M` (alternating
minimisation).

References
----------
Zhou, J., Chen, J. and Ye, J. "Clustered multi-task learning via alternating
structure optimization." NIPS, 2011, Sec. 3 (cMTL as ASO, and its convex
relaxation over the set {0 <= M <= I, tr M = k}).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cmtl_grad_M",
    "cmtl_grad_W",
    "cmtl_optimal_M",
    "cmtl_value",
    "project_cluster_constraint",
]


def _check_pair(W, M, eta):
    W = np.asarray(W, dtype=float)
    M = np.asarray(M, dtype=float)
    if M.shape != (W.shape[-1], W.shape[-1]):
        raise ValueError(
            f"M must have shape (n_tasks, n_tasks) = {(W.shape[-1],) * 2}, got {M.shape}"
        )
    if not eta > 0:
        raise ValueError(f"eta must be > 0 (it is rho_2 / rho_1), got {eta!r}")
    return W, M


def _inverse(M, eta):
    return np.linalg.inv(eta * np.eye(M.shape[0]) + (M + M.T) / 2)


def cmtl_value(W, M, eta: float) -> float:
    """``eta (1 + eta) tr(W (eta I + M)^{-1} W^T)`` (multiply by ``alpha``)."""
    W, M = _check_pair(W, M, eta)
    return float(eta * (1 + eta) * np.sum((W @ _inverse(M, eta)) * W))


def cmtl_grad_W(W, M, eta: float) -> np.ndarray:
    """Gradient in ``W``: ``2 eta (1 + eta) W (eta I + M)^{-1}``, ``(n_features, n_tasks)``."""
    W, M = _check_pair(W, M, eta)
    return 2.0 * eta * (1 + eta) * (W @ _inverse(M, eta))


def cmtl_grad_M(W, M, eta: float) -> np.ndarray:
    """Gradient in ``M``: ``-eta (1 + eta) (eta I + M)^{-1} W^T W (eta I + M)^{-1}``."""
    W, M = _check_pair(W, M, eta)
    inv = _inverse(M, eta)
    WA = W @ inv
    return -eta * (1 + eta) * (WA.T @ WA)


def _capped_shift(d, k):
    """Shift ``s`` with ``sum clip(d - s, 0, 1) = k`` by bisection."""
    lo, hi = np.min(d) - 1.0, np.max(d)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.sum(np.clip(d - mid, 0.0, 1.0)) > k:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(1.0, abs(hi)):
            break
    return 0.5 * (lo + hi)


def _check_k(k, n_tasks):
    if not 0 <= k <= n_tasks:
        raise ValueError(
            f"k (the number of clusters) must lie in [0, n_tasks={n_tasks}], got {k!r}"
        )


def project_cluster_constraint(M, k: float) -> np.ndarray:
    """Frobenius projection of symmetric ``M`` onto ``{0 <= M <= I, tr M = k}``.

    With ``M = Q diag(d) Q^T``, the projection is ``Q diag(clip(d - s, 0, 1)) Q^T``
    with the shift ``s`` found by bisection so that the trace is ``k``.

    Parameters
    ----------
    M : ndarray of shape (n_tasks, n_tasks)
        Symmetrised before projecting.
    k : float
        Trace, in ``[0, n_tasks]`` (the number of clusters).

    References
    ----------
    Zhou, J., Chen, J. and Ye, J. "Clustered multi-task learning via alternating
    structure optimization." NIPS, 2011, Sec. 4 (the projection step of
    the accelerated projected gradient method).
    """
    M = np.asarray(M, dtype=float)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be square (n_tasks, n_tasks), got shape {M.shape}")
    _check_k(k, M.shape[0])
    d, Q = np.linalg.eigh((M + M.T) / 2)
    gamma = np.clip(d - _capped_shift(d, k), 0.0, 1.0)
    return (Q * gamma) @ Q.T


def cmtl_optimal_M(W, eta: float, k: float) -> np.ndarray:
    """``argmin_M tr(W (eta I + M)^{-1} W^T)`` over ``{0 <= M <= I, tr M = k}``.

    With ``W^T W = Q diag(sigma^2) Q^T`` the minimiser is ``Q diag(gamma) Q^T`` with
    ``gamma_i = clip(sigma_i / s - eta, 0, 1)`` and ``s > 0`` set by bisection so
    that ``sum gamma = k`` (the KKT conditions of ``min sum sigma_i^2 / (eta +
    gamma_i)``).

    Parameters
    ----------
    W : ndarray of shape (n_features, n_tasks)
    eta : float, > 0
    k : float in [0, n_tasks]

    Returns
    -------
    M : ndarray of shape (n_tasks, n_tasks)
    """
    W = np.asarray(W, dtype=float)
    n_tasks = W.shape[-1]
    _check_k(k, n_tasks)
    if not eta > 0:
        raise ValueError(f"eta must be > 0 (it is rho_2 / rho_1), got {eta!r}")
    lam, Q = np.linalg.eigh(W.T @ W)
    sigma = np.sqrt(np.maximum(lam, 0.0))
    if not np.any(sigma > 0):
        return np.eye(n_tasks) * (k / n_tasks)  # every feasible M is optimal
    # gamma_i = clip(sigma_i * u - eta, 0, 1) increases with u = 1 / s: bisect on u
    lo, hi = 0.0, (1.0 + eta) / np.min(sigma[sigma > 0])
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.sum(np.clip(sigma * mid - eta, 0.0, 1.0)) < k:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    gamma = np.clip(sigma * hi - eta, 0.0, 1.0)
    if np.sum(gamma) < k - 1e-9:  # zero singular values: spread the rest of the trace
        free = gamma < 1.0
        gamma[free & (sigma == 0)] += (k - np.sum(gamma)) / max(1, np.sum(free & (sigma == 0)))
        gamma = np.clip(gamma, 0.0, 1.0)
    return (Q * gamma) @ Q.T
