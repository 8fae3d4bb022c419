"""IMTL-G: the update whose projections on every unit task gradient are equal (Liu et al. 2021)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from . import _gramian, _solvers
from ._base import GradientAggregator


class IMTLG(GradientAggregator):
    """Impartial MTL, gradient balance: ``d = J^T a`` with ``d . u_t`` equal for all tasks.

    ``u_t = g_t / ||g_t||`` and ``sum_t a_t = 1``. The paper's closed form
    ``a_{2:T} = g_1 U^T (D U^T)^{-1}`` (``D``, ``U``: rows ``g_1 - g_t``, ``u_1 - u_t``) is the
    solution of ``G a = lambda n`` (``G = J J^T``, ``n`` the gradient norms), i.e.
    ``a = G^+ n / 1^T G^+ n``; the pseudo-inverse keeps it defined when gradients are linearly
    dependent. A degenerate ``1^T G^+ n = 0`` gives zero weights.

    Parameters
    ----------
    method : {"auto", "eigh", "iterative"}
        ``pinv`` synchronises CUDA with the host; ``"iterative"`` uses iterated Tikhonov
        (:func:`multitask.nn.aggregation._solvers.pinv_solve`: matrix products and a Cholesky
        factorisation only; eigenvalues below about 1e-7 of the trace count as zero, and a
        rank-deficient Gramian costs about 1e-3 relative accuracy). ``"auto"``: on the CPU the
        pseudo-inverse from numpy's ``eigh`` with ``pinv``'s cut-off (no torch op on a
        ``(T, T)`` tensor), iterative elsewhere.

    References
    ----------
    Liu, L., Li, Y., Kuang, Z., Xue, J.-H., Chen, Y., Yang, W., Liao, Q. & Zhang, W. "Towards
    Impartial Multi-task Learning". ICLR 2021. Section 3.2, eq. (7)-(8) (IMTL-G closed form).
    """

    uses_gramian = True

    def __init__(self, method: str = "auto") -> None:
        super().__init__()
        _solvers.sync_free(torch.device("cpu"), method)  # validates
        self.method = method

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights of shape ``(n_tasks,)`` summing to one, from ``gramian = J J^T``."""
        w = _gramian.gramian_host_weights(self, gramian)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        scale = G.diagonal().sum()
        G = G / torch.where(scale > 0, scale, torch.ones_like(scale))
        norms = G.diagonal().clamp(min=0).sqrt()
        if _solvers.sync_free(G.device, self.method):
            v = _solvers.pinv_solve(G, norms)
        else:
            v = torch.linalg.pinv(G, hermitian=True) @ norms
        total = v.sum()
        ok = total.abs() > 1e-12
        a = torch.where(ok, v / torch.where(ok, total, torch.ones_like(total)), 0 * v)
        return a.to(gramian.dtype)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """The weights in numpy (``eigh``); None for ``method="iterative"``."""
        return None if self.method == "iterative" else _host_weights(gramian)

    def __repr__(self) -> str:
        return f"IMTLG(method={self.method!r})"


def _host_weights(G: np.ndarray) -> np.ndarray:
    """:meth:`IMTLG.gramian_weights` on the host: ``G^+ n / 1^T G^+ n`` with ``G`` scaled to
    unit trace and ``G^+`` from ``eigh`` with the cut-off of ``torch.linalg.pinv`` (eigenvalues
    at most ``T * eps * max |lambda|`` count as zero)."""
    if G.shape[0] == 2:
        a = _two_tasks(G)
        if a is not None:
            return a
    trace = np.trace(G)
    G = G / (trace if trace > 0 else 1.0)
    norms = np.sqrt(np.clip(np.diag(G), 0, None))
    lam, V = np.linalg.eigh(G)
    cut = G.shape[0] * np.finfo(G.dtype).eps * np.abs(lam).max()
    keep = np.abs(lam) > cut
    inv = np.divide(1.0, lam, out=np.zeros_like(lam), where=keep)
    v = V @ (inv * (V.T @ norms))
    total = v.sum()
    return v / total if abs(total) > 1e-12 else np.zeros_like(v)


def _two_tasks(G: np.ndarray) -> np.ndarray | None:
    """Two tasks in Python floats: ``G^{-1} n`` up to its determinant (which the normalisation
    ``a / 1^T a`` cancels) is ``(g11 n0 - g01 n1, g00 n1 - g01 n0)``. None unless ``G`` is well
    conditioned (``det > 1e-8 trace^2``), where :func:`_host_weights` takes ``eigh``."""
    g00, g01, g11 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
    if not g00 * g11 - g01 * g01 > 1e-8 * (g00 + g11) ** 2:
        return None
    n0, n1 = math.sqrt(g00), math.sqrt(g11)
    v0, v1 = g11 * n0 - g01 * n1, g00 * n1 - g01 * n0
    total = v0 + v1
    return np.array([v0 / total, v1 / total]) if abs(total) > 1e-12 * (abs(v0) + abs(v1)) else None
