"""Aligned-MTL: make the task gradients orthogonal with equal norms (Senushkin et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from . import _gramian, _solvers
from ._base import GradientAggregator
from ._checks import check_task_count, check_task_vector


class AlignedMTL(GradientAggregator):
    """Aligned-MTL: ``d = J^T B w`` with ``B = sqrt(lambda_min) V Lambda^{-1/2} V^T``.

    ``G = J J^T = V Lambda V^T``; the aligned gradients ``J^T B`` have condition number one
    (orthogonal, of equal norm ``sqrt(lambda_min)``), and ``w`` are the task preferences (``1/T``
    each by default). Eigenvalues below ``16 T u lambda_max`` are dropped (rank-deficient
    Jacobians), ``u`` the unit roundoff of the Jacobian's dtype (float32's for a float32
    Jacobian, though the solve runs in float64: its Gramian carries float32's rounding, and with
    float64's cut-off that noise became ``lambda_min``), and ``lambda_min`` is the smallest one
    kept; an all-zero Jacobian gives ``B = I``.

    Parameters
    ----------
    scale : {"min", "median", "mean"}
        Which eigenvalue sets the norm of the aligned gradients: the paper's smallest one, or the
        median or mean (the authors' code's ``rmse`` mode).
    weights_pref : Tensor of shape (n_tasks,), optional
        Task preferences ``w``; default ``1 / n_tasks`` each (the mean of the aligned
        gradients, as torchjd; the authors' code sums them: ``torch.ones(n_tasks)``).
    method : {"auto", "eigh", "iterative"}
        ``eigh`` synchronises CUDA with the host; ``"iterative"`` uses matrix products only
        (the projector onto the kept eigenvectors by a matrix sign iteration, a Newton-Schulz
        inverse square root on that subspace; eigenvalues below 1e-7 of the trace also count as
        zero). ``"auto"``: ``eigh`` on the CPU (numpy's: no torch op on a ``(T, T)`` tensor),
        iterative elsewhere (``"median"`` always uses ``eigh``).

    References
    ----------
    Senushkin, D., Patakin, N., Kuznetsov, A. & Konushin, A. "Independent Component Alignment for
    Multi-Task Learning". CVPR 2023. Section 4, eq. (8)-(10) and Algorithm 1.

    Examples
    --------
    Orthogonal gradients of different norms are rescaled to the smaller one's norm
    (``lambda_min = 1``) before they are averaged:

    >>> import torch
    >>> from multitask.nn.aggregation import AlignedMTL
    >>> AlignedMTL()(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
    tensor([0.5000, 0.5000])

    Conflicting gradients: ``G = [[1, -2], [-2, 5]]`` has ``lambda_min = 3 - 2 sqrt(2)``;
    the aligned gradients ``J^T B e_t`` (a preference for task ``t`` alone) are orthogonal,
    each of squared norm ``lambda_min``:

    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    >>> AlignedMTL().weights(J)  # B w with w = (1/2, 1/2)
    tensor([0.5858, 0.2929])
    >>> rows = torch.stack([AlignedMTL(weights_pref=e)(J) for e in torch.eye(2)])
    >>> torch.allclose(rows @ rows.T, (3 - 2 * 2**0.5) * torch.eye(2), atol=1e-6)
    True
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True
    cuts_spectrum = True
    graph_safe = True

    def __init__(
        self, scale: str = "min", weights_pref: Tensor | None = None, method: str = "auto"
    ) -> None:
        super().__init__()
        if scale not in ("min", "median", "mean"):
            raise ValueError(f"scale={scale!r} must be 'min', 'median' or 'mean'")
        _solvers.sync_free(torch.device("cpu"), method)  # validates
        if method == "iterative" and scale == "median":
            raise ValueError("scale='median' needs the eigenvalues: use method='eigh' or 'auto'")
        check_task_vector(weights_pref, "weights_pref", self)
        self.scale = scale
        self.weights_pref = weights_pref
        self.method = method

    def gramian_weights(self, gramian: Tensor, rounding: float | None = None) -> Tensor:
        """Weights ``B w`` of shape ``(n_tasks,)``. From ``gramian = J J^T``.

        ``rounding``: the unit roundoff the Gramian was formed with (default: its dtype's).
        """
        rounding = _solvers.rounding(gramian.dtype) if rounding is None else rounding
        w = _gramian.gramian_host_weights(self, gramian, rounding=rounding)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        T = G.shape[0]
        check_task_count(self.weights_pref, T, "weights_pref", self)
        cut = _solvers.spectral_cut(T, rounding)
        if _solvers.sync_free(G.device, self.method) and self.scale != "median":
            return self._iterative(G, gramian.dtype, max(cut, _solvers.ITERATIVE_CUT))
        G, finite = _solvers.finite_or_identity(G)
        lam, V = torch.linalg.eigh(G)  # ascending
        tol = lam.max() * cut
        keep = lam > tol
        inv_sqrt = torch.where(keep, lam.clamp(min=tol).clamp(min=1e-300).rsqrt(), 0 * lam)
        s = self._scale(lam, keep)
        B = s.sqrt() * (V * inv_sqrt) @ V.T
        B = torch.where(keep.any(), B, torch.eye(T, dtype=G.dtype, device=G.device))
        w = self.weights_pref
        w = torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device) if w is None else w
        return torch.where(finite, B @ w.to(G), torch.nan).to(gramian.dtype)

    def host_weights(self, gramian: np.ndarray, rounding: float | None = None) -> np.ndarray | None:
        """The weights in numpy (``eigh``); None for ``method="iterative"``."""
        if self.method == "iterative":
            return None
        check_task_count(self.weights_pref, gramian.shape[0], "weights_pref", self)
        w = None if self.weights_pref is None else self.weights_pref.detach().cpu().numpy()
        eps = np.finfo(np.float64).eps if rounding is None else rounding
        return _host_weights(gramian, self.scale, w, eps)

    def _iterative(self, G: Tensor, dtype: torch.dtype, cut: float) -> Tensor:
        """``B w`` by matrix products only: ``P`` projects on the eigenvectors of ``G / trace``
        above ``cut`` (:func:`._solvers.spectral_projector`), ``V Lambda^{-1/2} V^T`` is
        ``P A^{-1/2} P`` with ``A = P G P + (I - P) / T`` (Newton-Schulz), ``lambda_min^{-1/2}`` its
        largest eigenvalue (repeated squaring)."""
        T = G.shape[0]
        eye = torch.eye(T, dtype=G.dtype, device=G.device)
        trace = G.diagonal().sum()
        G = G / torch.where(trace > 0, trace, torch.ones_like(trace))
        P = _solvers.spectral_projector(G, cut)
        S = P @ _solvers.inv_sqrt_pd(_solvers.deflated(G, P)) @ P
        S = 0.5 * (S + S.T)
        if self.scale == "min":  # lambda_min^{-1/2} is the largest eigenvalue of S
            B = S / _solvers.largest_eigenvalue_psd(S).clamp(min=1e-300)
        else:  # "mean": of the kept eigenvalues, trace(G P) / rank, rank = trace(P)
            rank = P.diagonal().sum().clamp(min=1)
            B = ((G * P).sum() / rank).clamp(min=0).sqrt() * S
        B = torch.where((trace > 0) & torch.isfinite(B).all(), B, eye)
        w = self.weights_pref
        w = torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device) if w is None else w.to(G)
        return (B @ w).to(dtype)

    def _scale(self, lam: Tensor, keep: Tensor) -> Tensor:
        if self.scale == "min":
            return torch.where(keep, lam, torch.full_like(lam, torch.inf)).min()
        if self.scale == "mean":
            return (lam * keep).sum() / keep.sum().clamp(min=1)
        # median of the kept eigenvalues (lower median, as torch.median)
        n_keep = keep.sum()
        ordered = torch.where(keep, lam, torch.full_like(lam, torch.inf)).sort().values
        return ordered[((n_keep - 1).clamp(min=0)) // 2]


def _host_weights(
    G: np.ndarray, scale: str, pref: np.ndarray | None, rounding: float
) -> np.ndarray:
    """:meth:`AlignedMTL.gramian_weights` on the host (numpy ``eigh``, the same cut-off)."""
    T = G.shape[0]
    w = np.full(T, 1.0 / T) if pref is None else pref.astype(np.float64)
    if T == 2:
        out = _two_tasks(G, scale, w)  # (None for a non-finite G)
        if out is not None:
            return out
    if not np.isfinite(G).all():  # numpy's eigh raises on it: NaN weights, as documented
        return np.full(T, np.nan)
    lam, V = np.linalg.eigh(G)  # ascending
    tol = lam.max() * _solvers.spectral_cut(T, rounding)
    keep = lam > tol
    if not keep.any():  # J = 0
        return w
    kept = lam[keep]
    if scale == "min":
        s = kept.min()
    elif scale == "mean":
        s = kept.mean()
    else:  # lower median, as torch.median
        s = np.sort(kept)[(kept.size - 1) // 2]
    inv_sqrt = np.where(keep, 1 / np.sqrt(np.maximum(lam, max(tol, 1e-300))), 0.0)
    return np.sqrt(s) * (V @ (inv_sqrt * (V.T @ w)))


def _two_tasks(G: np.ndarray, scale: str, w: np.ndarray) -> np.ndarray | None:
    """Two tasks in Python floats: with ``s = sqrt(det G)`` and ``t = sqrt(trace + 2 s)``,
    ``G^{1/2} = (G + s I) / t``, so ``G^{-1/2} = adj(G + s I) / (s t)``; ``lambda_max`` from the
    quadratic's stable root and ``lambda_min = det / lambda_max``. None unless ``G`` is well
    conditioned (``det > 1e-8 trace^2``), where :func:`_host_weights` takes ``eigh``."""
    g00, g01, g11 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
    trace, det = g00 + g11, g00 * g11 - g01 * g01
    if not det > 1e-8 * trace * trace:
        return None
    s = math.sqrt(det)
    t = math.sqrt(trace + 2 * s)
    lam_max = 0.5 * (trace + math.sqrt(max(trace * trace - 4 * det, 0.0)))
    chosen = trace / 2 if scale == "mean" else det / lam_max  # "min" and the lower "median"
    c = math.sqrt(chosen) / (s * t)
    w0, w1 = float(w[0]), float(w[1])
    return np.array([c * ((g11 + s) * w0 - g01 * w1), c * ((g00 + s) * w1 - g01 * w0)])
