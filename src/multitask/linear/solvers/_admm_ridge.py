"""The data step of ADMM for the squared loss: one ridge solve per task, any ``rho``.

With the Gram matrices ``H_t = X_t^T D_t X_t`` (centred when the intercept is profiled) and
``c_t = X_t^T D_t y_t``, the datafit is ``sum_t 1/2 w_t^T H_t w_t - c_t^T w_t + const`` and
ADMM's first step is

    w_t = (H_t + rho I)^{-1} (c_t + rho v_t)

for every task. The eigendecomposition ``H_t = Q_t diag(lambda_t) Q_t^T`` is computed once
(and cached on the design) so that the solve costs two batched products whatever ``rho``:
``rho`` changes during the solve (residual balancing) without a new factorisation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RidgeSolver", "condition_number", "spectrum_ends"]

#: eigenvalues below this fraction of the largest count as zero in a condition number
_ZERO_EIG = 1e-9


def _eigen(datafit):
    """``(lam, Q)``: eigenvalues (clipped at 0) and eigenvectors of the Hessian(s), cached
    on the design per profiled flag; shapes ``(p,)``, ``(p, p)`` shared or ``(T, p)``,
    ``(T, p, p)`` per task."""
    design = datafit.design
    cache = design.__dict__.setdefault("_admm_eigen_cache", {})
    key = bool(datafit.profiled)
    if key not in cache:
        G = design.gram_centered if datafit.profiled else design.gram
        lam, Q = np.linalg.eigh(G)
        cache[key] = (np.maximum(lam, 0.0), Q)
    return cache[key]


def spectrum_ends(lam, rtol=_ZERO_EIG):
    """``(largest, smallest non-zero)`` of the eigenvalues ``lam`` (any shape); those at
    most ``rtol`` times the largest count as zero, and the second is None when all do."""
    top = float(lam.max(initial=0.0))
    live = lam[lam > rtol * top]
    return top, (float(live.min()) if live.size else None)


def condition_number(datafit):
    """Largest eigenvalue of the Hessian bound over the smallest non-zero one, over all
    tasks (``inf``-free: 1.0 for an all-zero design)."""
    top, low = spectrum_ends(_eigen(datafit)[0])
    return top / low if low is not None else 1.0


class RidgeSolver:
    """``V -> (H_t + rho I)^{-1} (c_t + rho v_t)`` for every task, any ``rho > 0``.

    Parameters
    ----------
    datafit : Quadratic
        Profiled (centred) or without intercept; its Gram matrices must be cheap
        (:attr:`MultiTaskDesign.gram_is_cheap`).

    Attributes
    ----------
    lam : ndarray of shape (p, 1) (shared) or (p, n_tasks)
        Eigenvalues of every task's Hessian, one column per task.
    """

    def __init__(self, datafit):
        design = datafit.design
        lam, Q = _eigen(datafit)
        self.shared = design.shared
        c = -datafit.gradient_at_zero()  # (p, T)
        if self.shared:
            self.lam = lam[:, None]
            self.Q, self.Qt = Q, np.ascontiguousarray(Q.T)
        else:
            self.lam = np.ascontiguousarray(lam.T)
            self.Q, self.Qt = Q, np.ascontiguousarray(Q.transpose(0, 2, 1))
        self.Qc = self._rotate(self.Qt, c)  # Q^T c

    def _rotate(self, M, V):
        """``M_t v_t`` for every task (``M`` one matrix when shared); ``matmul`` over the
        ``(T, p, p)`` stack: 44 against 83 us for ``einsum`` on School's (139, 27, 27)."""
        if self.shared:
            return M @ V
        return np.matmul(M, V.T[:, :, None])[:, :, 0].T

    def solve(self, V, rho):
        """``(H_t + rho I)^{-1} (c_t + rho v_t)``, shape (n_features, n_tasks).

        Parameters
        ----------
        V : ndarray of shape (n_features, n_tasks)
        rho : float
            Positive.
        """
        v = self._rotate(self.Qt, V)
        v *= rho
        v += self.Qc
        v /= self.lam + rho
        return self._rotate(self.Q, v)
