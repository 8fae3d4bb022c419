"""UPGrad: average of the task gradients projected onto the dual cone (Quinton & Rey 2024)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from . import _gramian, _host_qp, _solvers
from ._base import GradientAggregator
from ._checks import check_task_count, check_task_vector


class UPGrad(GradientAggregator):
    """Unconflicting projection of gradients: ``d = sum_i p_i pi_J(g_i)``.

    ``pi_J(g_i)`` is the projection of ``g_i`` onto the dual cone ``{x : J x >= 0}``, so ``d``
    conflicts with no task (``J d >= 0``). By Prop. 1 of the paper, ``pi_J(g_i) = J^T v_i`` with
    ``v_i = argmin_{v >= e_i} v^T G v``: a QP over ``n_tasks`` variables, solved in torch (exact
    support enumeration up to ``max_exact`` tasks, primal-dual active set beyond).

    Parameters
    ----------
    pref : Tensor of shape (n_tasks,), optional
        Weights ``p_i`` of the projected gradients; default ``1 / n_tasks`` (the mean).
    reg_eps : float, optional
        ``G`` is trace-normalised and ``reg_eps * I`` is added before solving so that the QP is
        strictly convex. Default: a negligible ridge (1e-13 in float64), so that ``J d >= 0``
        holds even when gradient norms differ by orders of magnitude. The authors' torchjd adds
        1e-4, which biases the projections (and can leave small conflicts) when the Gramian has
        eigenvalues below about 1e-4 of its trace; ``reg_eps=1e-4`` reproduces it.
    max_exact, n_iter : int
        Exact enumeration up to ``max_exact`` tasks (``2**T`` small LU solves: about 1.5 ms
        at 10 tasks on one CPU core, doubling with every task); ``n_iter`` primal-dual
        active-set iterations beyond, which on hard, strongly conflicting Jacobians can stall
        (about 1% of random ones with 4-12 tasks) on a point that leaves a small conflict (up
        to 2e-4 ``||J||_F^2``).

    References
    ----------
    Quinton, P. & Rey, V. "Jacobian Descent for Multi-Objective Optimization". arXiv:2406.16232,
    2024. Section 3 (UPGrad, eq. 5), Proposition 1 (dual form of the projection).
    """

    uses_gramian = True

    def __init__(
        self,
        pref: Tensor | None = None,
        *,
        reg_eps: float | None = None,
        max_exact: int = 10,
        n_iter: int = 12,
    ) -> None:
        super().__init__()
        check_task_vector(pref, "pref", self)
        self.pref = pref
        self.reg_eps = reg_eps
        self.max_exact = max_exact
        self.n_iter = n_iter

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights ``sum_i p_i v_i`` of shape ``(n_tasks,)``. From ``gramian = J J^T``."""
        w = _gramian.gramian_host_weights(self, gramian)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        T = G.shape[0]
        check_task_count(self.pref, T, "pref", self)
        G = _solvers.normalise(G, ridge=self.reg_eps)
        V = _solvers.project_dual_cone(G, self.max_exact, self.n_iter, host=False)  # (T, T)
        p = self.pref
        p = torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device) if p is None else p.to(G)
        return (p @ V).to(gramian.dtype)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """The weights in numpy: active set stopped when the KKT conditions hold (closed form
        for 2 tasks); None when it gives up."""
        ridge = _solvers.RIDGE[torch.float64] if self.reg_eps is None else self.reg_eps
        if self.pref is not None:
            check_task_count(self.pref, gramian.shape[0], "pref", self)
        elif gramian.shape[0] == 2:
            return _two_tasks(gramian, ridge)
        V = _host_qp.project_dual_cone(_host_qp.normalise(gramian, ridge))
        if V is None:
            return None
        p = None if self.pref is None else self.pref.detach().cpu().double().numpy()
        return V.sum(axis=0) / V.shape[0] if p is None else p @ V  # (np.mean: the same, slower)


def _two_tasks(G: np.ndarray, ridge: float) -> np.ndarray:
    """Two tasks, default ``pref``: :func:`._host_qp.normalise`, the closed form of
    :func:`._host_qp.project_dual_cone` and the mean, on Python floats (the same numbers,
    without a numpy call on a 2 x 2 array)."""
    g00, g01, g11 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
    trace = g00 + g11
    trace = trace if trace > 0 else 1.0
    n00, n01, n11 = g00 / trace + ridge, g01 / trace, g11 / trace + ridge
    z0 = -n01 / n11 if n01 < 0 and n11 > 0 else 0.0  # v_0 = (1, z0), v_1 = (z1, 1)
    z1 = -n01 / n00 if n01 < 0 and n00 > 0 else 0.0
    return np.array([(1.0 + z1) / 2, (z0 + 1.0) / 2])
