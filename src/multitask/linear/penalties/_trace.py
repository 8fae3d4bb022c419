"""Trace (nuclear) norm penalty: tasks share a low-dimensional subspace."""

from __future__ import annotations

import numpy as np

from ._base import Penalty, check_strength

#: singular values below RANK_RTOL * s_max count as zero in subdiff_distance
RANK_RTOL = 1e-10


def svt(W: np.ndarray, threshold: float) -> np.ndarray:
    """Singular value thresholding ``U diag(max(s - threshold, 0)) V^T``."""
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    return (U * np.maximum(s - threshold, 0.0)) @ Vt


def nuclear_subdiff_distance(W: np.ndarray, grad: np.ndarray, alpha: float) -> float:
    """Frobenius distance from ``-grad`` to ``alpha * ∂||W||_*``.

    With ``W = U_r S V_r^T`` (rank ``r``), ``∂||W||_* = {U_r V_r^T + M : U_r^T M = 0,
    M V_r = 0, ||M||_2 <= 1}`` (Watson 1992). Splitting ``P = -grad`` into the four
    blocks given by the column spaces of ``U_r`` and ``V_r`` and their complements,
    the first must equal ``alpha I``, the two mixed ones vanish, and the last must
    have spectral norm ``<= alpha``.
    """
    P = -np.asarray(grad, dtype=float)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    rank = int(np.sum(s > RANK_RTOL * s[0])) if s.size and s[0] > 0 else 0
    U, V = U[:, :rank], Vt[:rank].T
    PV = P @ V
    UtP = U.T @ P
    core = U.T @ PV - alpha * np.eye(rank)
    left = PV - U @ (U.T @ PV)  # (I - U U^T) P V
    right = UtP - (UtP @ V) @ V.T  # U^T P (I - V V^T)
    rest = P - U @ UtP - PV @ V.T + U @ (UtP @ V) @ V.T  # (I - U U^T) P (I - V V^T)
    excess = np.maximum(np.linalg.svd(rest, compute_uv=False) - alpha, 0.0)
    sq = np.sum(core**2) + np.sum(left**2) + np.sum(right**2) + np.sum(excess**2)
    return float(np.sqrt(sq))


class TraceNorm(Penalty):
    """Trace-norm penalty ``alpha * ||W||_*`` (sum of singular values of ``W``).

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength, ``>= 0``.

    Notes
    -----
    The prox is singular value thresholding at ``step * alpha`` (Cai, Candès &
    Shen 2010, Theorem 2.1). :meth:`subdiff_distance` is a Frobenius distance;
    singular values below ``RANK_RTOL * s_max`` count as zero.

    References
    ----------
    Pong, T. K., Tseng, P., Ji, S. and Ye, J. "Trace norm regularization:
    reformulations, algorithms, and multi-task learning." SIAM Journal on
    Optimization, 2010, Sec. 1 (trace-norm regularised multi-task learning).
    Cai, J.-F., Candès, E. J. and Shen, Z. "A singular value thresholding algorithm
    for matrix completion." SIAM Journal on Optimization, 2010, Theorem 2.1.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")

    def value(self, W):
        """``alpha * sum(singular values of W)``."""
        return self.alpha * float(np.sum(np.linalg.svd(W, compute_uv=False)))

    def prox(self, W, step):
        """Singular value thresholding at ``step * alpha``."""
        return svt(np.asarray(W, dtype=float), step * self.alpha)

    def subdiff_distance(self, W, grad):
        """Frobenius distance from ``-grad`` to ``alpha * ∂||W||_*``."""
        return nuclear_subdiff_distance(np.asarray(W, dtype=float), grad, self.alpha)

    def alpha_max(self, grad0):
        """Spectral norm ``||grad0||_2``."""
        return float(np.linalg.norm(grad0, ord=2)) if np.size(grad0) else 0.0

    def dual_norm(self, G):
        """Dual norm ``Omega^*(G)`` of the unit-strength norm (the penalty is ``alpha * Omega``).

        Equal to :meth:`alpha_max` (``W = 0`` is optimal iff ``Omega^*(grad0) <= alpha``);
        used by solvers to build a feasible dual point for the duality gap.
        """
        return self.alpha_max(G)
