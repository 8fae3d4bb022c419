"""IMTL-G: the update whose projections on every unit task gradient are equal (Liu et al. 2021)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from . import _gramian, _solvers
from ._base import GradientAggregator


class IMTLG(GradientAggregator):
    """Impartial MTL, gradient balance: ``d = J^T a`` with ``d . u_t`` equal for all tasks.

    ``u_t = g_t / ||g_t||`` and ``sum_t a_t = 1``. The paper's closed form
    ``a_{2:T} = g_1 U^T (D U^T)^{-1}`` (``D``, ``U``: rows ``g_1 - g_t``, ``u_1 - u_t``) is the
    solution of ``G a = lambda n`` (``G = J J^T``, ``n`` the gradient norms). With the cosine
    matrix ``C = N^{-1} G N^{-1}`` (``N = diag(n)``, unit diagonal) that is ``C (N a) = lambda 1``:
    ``a = N^{-1} C^+ 1 / 1^T N^{-1} C^+ 1``, solved on ``C``, whose conditioning does not
    depend on the gradients' norms (on ``G`` a task whose gradient is ``r`` times smaller than
    the others contributes an eigenvalue of about ``r^2`` of the trace, lost to the
    pseudo-inverse's cut-off for ``r`` below 1e-8, or 3e-4 with ``"iterative"``). For linearly
    dependent gradients, where the paper's inverse does not exist (and equal projections may
    not: ``C^+`` makes them equal in the least-squares sense), the pseudo-inverse of ``C``
    keeps the direction of ``d`` (``sum_t b_t u_t``, ``b = C^+ 1``) independent of how the
    tasks' losses are scaled, as it is for independent ones. A task with a zero gradient has no
    ``u_t``: its weight is zero and the others are balanced among themselves. A degenerate
    ``1^T N^{-1} C^+ 1 = 0`` (e.g. two opposite gradients: no direction has equal positive
    projections) gives zero weights.

    Parameters
    ----------
    method : {"auto", "eigh", "iterative"}
        ``pinv`` synchronises CUDA with the host; ``"iterative"`` uses matrix products and a
        Cholesky factorisation only (the projector onto the kept eigenvectors by a matrix sign
        iteration, :func:`multitask.nn.aggregation._solvers.spectral_projector`, then a solve on
        that subspace). ``"auto"``: on the CPU numpy's ``eigh`` (no torch op on a ``(T, T)``
        tensor), iterative elsewhere.

    Notes
    -----
    Eigenvalues of ``C`` below ``16 T u lambda_max`` count as zero, ``u`` the unit roundoff of
    the Jacobian's dtype (float32's for a float32 Jacobian, though the solve runs in float64:
    its Gramian carries float32's rounding, and inverting that noise turned the update of
    rescaled copies of one float32 gradient against them); the iterative path also drops those
    below 1e-7 of the trace. A rank-deficient float64 ``C`` then agrees with ``eigh`` to about
    1e-12.

    References
    ----------
    Liu, L., Li, Y., Kuang, Z., Xue, J.-H., Chen, Y., Yang, W., Liao, Q. & Zhang, W. "Towards
    Impartial Multi-task Learning". ICLR 2021. Section 3.2, eq. (7)-(8) (IMTL-G closed form).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import IMTLG
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    >>> imtl = IMTLG()
    >>> imtl.weights(J)  # summing to one
    tensor([0.6910, 0.3090])
    >>> d = imtl(J)
    >>> d
    tensor([0.0729, 0.3090])
    >>> (J / J.norm(dim=1, keepdim=True)) @ d  # equal projections on the unit gradients u_t
    tensor([0.0729, 0.0729])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True
    cuts_spectrum = True
    graph_safe = True

    def __init__(self, method: str = "auto") -> None:
        super().__init__()
        _solvers.sync_free(torch.device("cpu"), method)  # validates
        self.method = method

    def gramian_weights(self, gramian: Tensor, rounding: float | None = None) -> Tensor:
        """Weights of shape ``(n_tasks,)`` summing to one, from ``gramian = J J^T``.

        ``rounding``: the unit roundoff the Gramian was formed with (default: its dtype's).
        """
        rounding = _solvers.rounding(gramian.dtype) if rounding is None else rounding
        w = _gramian.gramian_host_weights(self, gramian, rounding=rounding)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        T = G.shape[0]
        norms = G.diagonal().clamp(min=0).sqrt()
        active = norms > 0
        scale = torch.where(active, norms, torch.ones_like(norms))
        C = G / (scale[:, None] * scale[None, :])  # unit diagonal; zero rows for zero gradients
        ones = active.to(G.dtype)
        cut = _solvers.spectral_cut(T, rounding)
        if _solvers.sync_free(G.device, self.method):  # C / T: unit trace
            b = _projected_solve(C / T, ones, max(cut, _solvers.ITERATIVE_CUT)) / T
        else:
            C, finite = _solvers.finite_or_identity(C)
            b = torch.linalg.pinv(C, rtol=cut, hermitian=True) @ ones
            b = torch.where(finite, b, torch.nan)  # (the iterative path's NaN propagate)
        return _normalised(b * ones / scale).to(gramian.dtype)

    def host_weights(self, gramian: np.ndarray, rounding: float | None = None) -> np.ndarray | None:
        """The weights in numpy (``eigh``); None for ``method="iterative"``. ``rounding``: as
        for :meth:`gramian_weights` (default: float64's)."""
        if self.method == "iterative":
            return None
        return _host_weights(gramian, np.finfo(np.float64).eps if rounding is None else rounding)

    def __repr__(self) -> str:
        return f"IMTLG(method={self.method!r})"


def _normalised(v):
    """``v / sum(v)``, or zeros when the sum vanishes (relative to ``sum |v|``: a degenerate
    ``1^T N^{-1} C^+ 1 = 0``); ``v`` a tensor or an array."""
    total, size = v.sum(), abs(v).sum()
    ok = abs(total) > 1e-12 * size
    if isinstance(v, np.ndarray):
        return v / total if ok else np.zeros_like(v)
    return torch.where(ok, v / torch.where(ok, total, torch.ones_like(total)), 0 * v)


def _projected_solve(C: Tensor, d: Tensor, cut: float) -> Tensor:
    """``C^+ d`` for a unit-trace PSD ``C``, eigenvalues below ``cut`` dropped, without host
    sync: ``P`` projects on the kept eigenvectors, and ``P C P + (I - P) / T`` (positive
    definite, condition number at most about ``1 / cut``) is solved by Cholesky on ``P d``, with
    one step of refinement."""
    P = _solvers.spectral_projector(C, cut)
    A = _solvers.deflated(C, P)
    L, _ = torch.linalg.cholesky_ex(A)
    rhs = (P @ d)[:, None]
    x = torch.cholesky_solve(rhs, L)
    x = x + torch.cholesky_solve(rhs - A @ x, L)
    return P @ x[:, 0]


def _host_weights(G: np.ndarray, rounding: float) -> np.ndarray:
    """:meth:`IMTLG.gramian_weights` on the host: ``N^{-1} C^+ 1``, normalised, with ``C^+``
    from ``eigh`` of the cosine matrix ``C`` (eigenvalues at most
    ``spectral_cut(T, rounding) * max |lambda|`` count as zero)."""
    if not np.isfinite(G).all():  # numpy's eigh raises on it: NaN weights, as documented
        return np.full(G.shape[0], np.nan)
    norms = np.sqrt(np.clip(np.diag(G), 0, None))
    active = norms > 0
    if G.shape[0] == 2 and active.all():
        return _two_tasks(G, norms)
    scale = np.where(active, norms, 1.0)
    C = G / np.outer(scale, scale)
    lam, V = np.linalg.eigh(C)
    cut = _solvers.spectral_cut(G.shape[0], rounding) * np.abs(lam).max()
    inv = np.divide(1.0, lam, out=np.zeros_like(lam), where=np.abs(lam) > cut)
    ones = active.astype(G.dtype)
    b = V @ (inv * (V.T @ ones))
    return _normalised(b * ones / scale)


def _two_tasks(G: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Two tasks with non-zero gradients: ``C = [[1, c], [c, 1]]`` gives ``C^+ 1 = 1 / (1 + c)``
    for both tasks whenever ``c > -1`` (``c = 1``, parallel gradients, included), hence
    ``a = (n_1, n_0) / (n_0 + n_1)``: ``d`` bisects ``u_0`` and ``u_1``. Opposite gradients
    (``c = -1`` to rounding: ``C^+ 1 = 0``) give zero weights."""
    c = float(G[0, 1]) / (float(norms[0]) * float(norms[1]))
    if c <= -1 + 4 * np.finfo(G.dtype).eps:
        return np.zeros(2, dtype=G.dtype)
    return np.array([norms[1], norms[0]], dtype=G.dtype) / (norms[0] + norms[1])
