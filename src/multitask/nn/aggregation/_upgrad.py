"""UPGrad: average of the task gradients projected onto the dual cone (Quinton & Rey 2024)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_int, check_real

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
        strictly convex. The authors' torchjd adds 1e-4, which biases the projections (and can
        leave small conflicts) when the Gramian has eigenvalues below about 1e-4 of its trace;
        ``reg_eps=1e-4`` reproduces it. Default (None): ``G`` is scaled to a unit diagonal,
        ``G' = D^{-1/2} G D^{-1/2}`` with ``D = diag(G)`` (a zero row keeps scale 1), and a
        negligible ridge (1e-13 in float64) is added to ``G'``: the projections of the rows of
        ``J`` are those of the unit rows rescaled, ``v_ij = d_i v'_ij / d_j`` for ``j != i``
        (``z >= 0`` is invariant under a positive diagonal scaling, so the problem is the same),
        and every task is regularised relative to its own norm. ``J d >= 0`` then holds
        whatever the ratio of the gradient norms (on a trace-normalised ``G`` a task whose
        squared norm fell below the ridge, norms about 1e5 apart and more, could be left in
        conflict: cosine -0.09 at 1e6 apart, -0.5 at 1e7, before 2026-11-22).
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

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import UPGrad
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])  # two conflicting task gradients
    >>> J @ J.mean(0)  # the mean gradient would increase the first task's loss
    tensor([-0.5000,  1.5000])
    >>> upgrad = UPGrad()
    >>> upgrad.weights(J)
    tensor([1.5000, 0.7000])
    >>> upgrad(J)  # weights @ J
    tensor([0.1000, 0.7000])
    >>> J @ upgrad(J)  # conflicts with neither task
    tensor([0.1000, 0.5000])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True
    graph_safe = True

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
        if reg_eps is not None:
            reg_eps = check_real(reg_eps, "reg_eps", "UPGrad", low=0.0)
        self.reg_eps = reg_eps
        self.max_exact = check_int(max_exact, "max_exact", "UPGrad", low=0)
        self.n_iter = check_int(n_iter, "n_iter", "UPGrad", low=1)

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights ``sum_i p_i v_i`` of shape ``(n_tasks,)``. From ``gramian = J J^T``."""
        w = _gramian.gramian_host_weights(self, gramian)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        T = G.shape[0]
        check_task_count(self.pref, T, "pref", self)
        if self.reg_eps is None:  # unit diagonal: v_ij = d_i v'_ij / d_j
            d = G.diagonal().clamp(min=0).sqrt()
            d = torch.where(d > 0, d, torch.ones_like(d))
            eye = torch.eye(T, dtype=G.dtype, device=G.device)
            Gn = G / (d[:, None] * d[None, :]) + _solvers.RIDGE[G.dtype] * eye
            V = _solvers.project_dual_cone(Gn, self.max_exact, self.n_iter, host=False)
            V = eye + (V - eye) * (d[:, None] / d[None, :])  # (T, T)
        else:
            G = _solvers.normalise(G, ridge=self.reg_eps)
            V = _solvers.project_dual_cone(G, self.max_exact, self.n_iter, host=False)  # (T, T)
        p = self.pref
        p = torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device) if p is None else p.to(G)
        return (p @ V).to(gramian.dtype)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """The weights in numpy: active set stopped when the KKT conditions hold (closed form
        for 2 tasks); None when it gives up."""
        T = gramian.shape[0]
        if self.pref is not None:
            check_task_count(self.pref, T, "pref", self)
        elif T == 2 and self.reg_eps is None:
            return _two_tasks(gramian, _solvers.RIDGE[torch.float64])
        if self.reg_eps is None:  # unit diagonal: v_ij = d_i v'_ij / d_j
            d = np.sqrt(np.maximum(gramian.diagonal(), 1e-300))  # a zero row: any scale
            Gn = gramian / np.outer(d, d)
            Gn.flat[:: T + 1] += _solvers.RIDGE[torch.float64]
            V = _host_qp.project_dual_cone(Gn)
            if V is None:
                return None
            # sum_i p_i v_ij = sum_i p_i d_i v'_ij / d_j (v'_jj = 1): one product, one division
            p = 1.0 / T if self.pref is None else self.pref.detach().cpu().double().numpy()
            return ((p * d) @ V) / d
        else:
            V = _host_qp.project_dual_cone(_host_qp.normalise(gramian, self.reg_eps))
            if V is None:
                return None
        p = None if self.pref is None else self.pref.detach().cpu().double().numpy()
        return V.sum(axis=0) / V.shape[0] if p is None else p @ V  # (np.mean: the same, slower)


def _two_tasks(G: np.ndarray, ridge: float) -> np.ndarray:
    """Two tasks, default ``pref`` and ``reg_eps``: the unit-diagonal scaling, the closed form
    of :func:`._host_qp.project_dual_cone` (``v_0 = (1, z0)``, ``z0 = max(0, -n01 / n11)``
    on the scaled Gramian, then ``d_0 / d_1``) and the mean, on Python floats (no numpy call
    on a 2 x 2 array)."""
    g00, g01, g11 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
    d0 = math.sqrt(g00) if g00 > 0 else 1.0
    d1 = math.sqrt(g11) if g11 > 0 else 1.0
    n00, n01, n11 = g00 / (d0 * d0) + ridge, g01 / (d0 * d1), g11 / (d1 * d1) + ridge
    z0 = -n01 / n11 * d0 / d1 if n01 < 0 else 0.0  # v_0 = (1, z0), v_1 = (z1, 1)
    z1 = -n01 / n00 * d1 / d0 if n01 < 0 else 0.0
    return np.array([(1.0 + z1) / 2, (z0 + 1.0) / 2])
