"""Exact active-set solvers for the tiny task-space QPs, for Gramians that live on the CPU.

On a CPU tensor nothing synchronises with a device, so a data-dependent active-set loop (which
stops as soon as the KKT conditions hold) is allowed and costs tens of microseconds at ten
tasks, where enumerating all ``2**T`` supports in one batched solve costs milliseconds. Off the
CPU, :mod:`._solvers` keeps the sync-free enumeration. Both are exact.

The problems are non-negative QPs, ``min_z z^T G z / 2 + c^T z`` subject to ``z >= 0``, solved
by the Lawson-Hanson active-set method in its quadratic form (Bro & De Jong 1997): move the
variable with the most negative gradient into the free set, solve the free subsystem, and step
back to the boundary while the solution leaves the feasible set. Each step strictly lowers the
objective, so no free set repeats and the loop ends after finitely many steps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def nnqp(G: np.ndarray, c: np.ndarray, tol: float = 1e-13) -> np.ndarray | None:
    """``argmin_{z >= 0} z^T G z / 2 + c^T z`` for a positive definite ``G`` of shape (T, T).

    Returns None if a free subsystem is numerically singular or the loop does not settle
    within ``3 T + 10`` steps (the caller then uses the enumeration).

    References
    ----------
    Lawson & Hanson, "Solving Least Squares Problems", Prentice-Hall 1974, Ch. 23 (NNLS);
    Bro & De Jong, "A fast non-negativity-constrained least squares algorithm", J.
    Chemometrics 11, 1997 (the same iterations on ``G`` and ``c`` instead of the data).
    """
    T = G.shape[0]
    z = np.zeros(T)
    free = np.zeros(T, dtype=bool)
    scale = tol * max(1.0, float(np.abs(c).max()))
    for _ in range(3 * T + 10):
        w = -(G @ z + c)  # minus the gradient
        w[free] = -np.inf
        j = int(w.argmax())
        if free.all() or w[j] <= scale:
            return z
        free[j] = True
        while True:
            s = np.zeros(T)
            idx = np.flatnonzero(free)
            try:
                s[idx] = np.linalg.solve(G[np.ix_(idx, idx)], -c[idx])
            except np.linalg.LinAlgError:
                return None
            if (s[idx] > 0).all():
                z = s
                break
            bad = idx[s[idx] <= 0]
            alpha = np.min(z[bad] / (z[bad] - s[bad]))
            z = z + alpha * (s - z)
            free &= z > scale
            z[~free] = 0.0
            if not free.any():
                break
    return None


def min_norm_simplex(G: Tensor) -> Tensor | None:
    """``argmin_{a in simplex} a^T G a`` for a CPU Gramian (trace-normalised, with a ridge).

    With ``x = argmin_{x >= 0} x^T G x / 2 - 1^T x``, ``a = x / 1^T x`` (the KKT conditions of
    the two problems coincide up to that scaling). None when :func:`nnqp` gives up.
    """
    x = nnqp(G.numpy(), -np.ones(G.shape[0]))
    if x is None or not x.sum() > 0:
        return None
    return torch.from_numpy(x / x.sum())


def project_dual_cone(G: Tensor) -> Tensor | None:
    """Row ``i``: ``argmin_{v >= e_i} v^T G v`` (Quinton & Rey 2024, Prop. 1), CPU Gramian.

    ``v = e_i + z`` with ``z = argmin_{z >= 0} z^T G z / 2 + G_i^T z``. None when :func:`nnqp`
    gives up on a row.
    """
    G_np = G.numpy()
    T = G_np.shape[0]
    rows = np.eye(T)
    for i in range(T):
        z = nnqp(G_np, G_np[i].copy())
        if z is None:
            return None
        rows[i] += z
    return torch.from_numpy(rows)
