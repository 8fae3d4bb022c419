"""MGDA: the min-norm point of the convex hull of the task gradients (Sener & Koltun 2018)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_int

from . import _gramian, _host_qp, _solvers
from ._base import GradientAggregator

_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(GradientAggregator):
    """Multiple-gradient descent: ``d = J^T a`` with ``a = argmin_{a in simplex} ||J^T a||^2``.

    ``d`` is the min-norm element of the convex hull of the task gradients; it is a common
    descent direction (``J d >= ||d||^2``) unless the point is Pareto-stationary (``d = 0``).

    Parameters
    ----------
    normalization : {"none", "l2", "loss", "loss+"}
        Scale each gradient before solving: by its norm (``"l2"``), its loss (``"loss"``) or both
        (``"loss+"``), as in the authors' code. The weights found on the scaled gradients are
        applied to the raw ones, as the authors' code does. ``"loss"`` and ``"loss+"`` need the
        ``losses`` argument.
    solver : {"exact", "frank-wolfe"}
        ``"exact"``: closed form for 2 tasks, exact QP by support enumeration up to ``max_exact``
        tasks, primal-dual active-set iterations beyond, on the Gramian scaled to a unit
        diagonal (``x >= 0`` is invariant under it), so that a task whose gradient is orders of
        magnitude smaller than the others is not lost under the solver's ridge.
        ``"frank-wolfe"``: ``n_iter`` steps of Alg. 2 (the authors' solver; slow to converge
        when gradients nearly cancel).
    max_exact : int
        Largest number of tasks solved by enumeration (cost grows as ``2**n_tasks``; at 10
        tasks it is still about half the cost of the active-set iterations).
    n_iter : int, optional
        Iterations of the iterative solvers, fixed (no data-dependent stopping, so no host
        sync): default 12 active-set iterations beyond ``max_exact`` (exact once the active set
        settles, usually within a few), 250 Frank-Wolfe steps (sublinear convergence).

    References
    ----------
    Sener, O. & Koltun, V. "Multi-Task Learning as Multi-Objective Optimization". NeurIPS 2018.
    Section 3.2, eq. (3)-(4) (the min-norm problem), Alg. 1 (2-task closed form), Alg. 2
    (Frank-Wolfe), Section 3.3 (gradient normalisation, MGDA-UB).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import MGDA
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])  # G = J J^T = [[1, -2], [-2, 5]]
    >>> mgda = MGDA()
    >>> mgda.weights(J)  # Alg. 1: gamma = (5 + 2) / (1 + 5 + 4)
    tensor([0.7000, 0.3000])
    >>> mgda(J)  # weights @ J
    tensor([0.1000, 0.3000])
    >>> J @ mgda(J)  # the same decrease for both tasks, ||d||^2 = 0.1
    tensor([0.1000, 0.1000])
    """

    absent_tasks_reason = (
        "the min-norm point of the gradients and a zero row is 0: nothing shared would move"
    )

    drops_absent_rows = True  # (the Trainer runs it on the present tasks' rows)

    uses_gramian = True
    graph_safe = True

    def __init__(
        self,
        normalization: str = "none",
        *,
        solver: str = "exact",
        max_exact: int = 10,
        n_iter: int | None = None,
    ) -> None:
        super().__init__()
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization={normalization!r} is not one of {_NORMALIZATIONS}; pick one of them"
            )
        if solver not in ("exact", "frank-wolfe"):
            raise ValueError(f"solver={solver!r} must be 'exact' or 'frank-wolfe'")
        self.normalization = normalization
        self.solver = solver
        self.max_exact = check_int(max_exact, "max_exact", "MGDA", low=0)
        self.n_iter = None if n_iter is None else check_int(n_iter, "n_iter", "MGDA", low=1)

    @property
    def needs_losses(self) -> bool:
        """Whether the normalisation divides by the losses (``mtl_backward`` then passes them)."""
        return self.normalization in ("loss", "loss+")

    def weights(self, jacobian: Tensor, losses: Tensor | None = None) -> Tensor:
        """Weights ``a`` of shape ``(n_tasks,)`` on the simplex (``losses``: ``(n_tasks,)``)."""
        return _gramian.weights(self, jacobian, losses)

    def gramian_weights(self, gramian: Tensor, losses: Tensor | None = None) -> Tensor:
        """Weights ``a`` of shape ``(n_tasks,)`` from ``gramian = J J^T``.

        On the CPU the exact solver runs in numpy (:mod:`._host_qp`, an active set that stops
        when the KKT conditions hold); elsewhere in torch without host sync.
        """
        a = _gramian.gramian_host_weights(self, gramian, losses)
        if a is not None:
            return a
        G = _solvers.to_solver(gramian)
        scale = self._scales(G, losses)
        G = G / (scale[:, None] * scale[None, :])
        if G.shape[0] == 2 and self.solver == "exact":
            a = _two_tasks(G)
        elif self.solver == "exact":  # on the unit-diagonal scaling (see _host_weights)
            n_iter = 12 if self.n_iter is None else self.n_iter
            d = G.diagonal().clamp(min=0).sqrt()
            d = torch.where(d > 0, d, torch.ones_like(d))
            eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
            Gn = G / (d[:, None] * d[None, :]) + _solvers.RIDGE[G.dtype] * eye
            a = _solvers.min_norm_simplex(Gn, self.max_exact, n_iter, scale=d)
        else:
            a = _solvers.frank_wolfe(G, 250 if self.n_iter is None else self.n_iter)
        return a.to(gramian.dtype)

    def forward(self, jacobian: Tensor, losses: Tensor | None = None) -> Tensor:
        """Aggregate ``jacobian`` of shape ``(n_tasks, n_params)`` into ``(n_params,)``."""
        return self.weights(jacobian, losses) @ jacobian

    def _scales(self, G: Tensor, losses: Tensor | None) -> Tensor:
        ones = torch.ones(G.shape[0], dtype=G.dtype, device=G.device)
        if self.normalization == "none":
            return ones
        norms = G.diagonal().clamp(min=0).sqrt()
        if self.normalization == "l2":
            scale = norms
        else:
            self._check_losses(losses)
            scale = losses.detach().to(G.dtype)
            scale = scale * norms if self.normalization == "loss+" else scale
        return torch.where(scale > 0, scale, ones)

    def host_weights(self, gramian: np.ndarray, losses: Tensor | None = None) -> np.ndarray | None:
        """The exact weights in numpy (closed form for 2 tasks, active set beyond); None for
        Frank-Wolfe or when the active set gives up."""
        if self.solver != "exact":
            return None
        return _host_weights(gramian, self._host_scales(gramian, losses))

    def _host_scales(self, G: np.ndarray, losses: Tensor | None) -> np.ndarray | None:
        """:meth:`_scales` in numpy, for a host Gramian."""
        if self.normalization == "none":
            return None
        norms = np.sqrt(np.clip(np.diag(G), 0, None))
        if self.normalization == "l2":
            scale = norms
        else:
            self._check_losses(losses)
            scale = losses.detach().cpu().to(torch.float64).numpy()
            scale = scale * norms if self.normalization == "loss+" else scale
        return np.where(scale > 0, scale, 1.0)

    def _check_losses(self, losses: Tensor | None) -> None:
        if losses is None:
            raise ValueError(
                f"MGDA(normalization={self.normalization!r}) needs the task losses: call "
                "mgda(jacobian, losses) or pick normalization='l2' or 'none'"
            )

    def __repr__(self) -> str:
        return f"MGDA(normalization={self.normalization!r}, solver={self.solver!r})"


def _host_weights(G: np.ndarray, scale: np.ndarray | None) -> np.ndarray | None:
    """The exact weights on the host (numpy): closed form for 2 tasks, active set beyond.

    The active set runs on the Gramian scaled to a unit diagonal, ``D^{-1/2} G D^{-1/2}``
    (``D = diag G``, a zero row keeps scale 1), the ridge added there: relative to each task's
    own norm (on the trace-normalised Gramian a task whose squared norm fell under the ridge,
    norms about 1e8 apart, was lost and the min-norm point could conflict with it).
    """
    G = G if scale is None else G / np.outer(scale, scale)
    T = G.shape[0]
    if T == 2:  # Python floats: a numpy call per scalar costs more than the math
        g00, g01, g11 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
        denom = g00 + g11 - 2 * g01
        gamma = min(max((g11 - g01) / denom, 0.0), 1.0) if denom > 0 else 0.5
        return np.array([gamma, 1 - gamma])
    if T <= _host_qp.PYTHON_MAX_TASKS:  # the same scaling on Python floats
        a = _host_qp.min_norm_simplex_small(G, _solvers.RIDGE[torch.float64])
        if a is not None:
            return a
    d = np.sqrt(np.maximum(G.diagonal(), 0.0))
    d[d == 0] = 1.0
    Gn = G / np.outer(d, d)
    Gn.flat[:: T + 1] += _solvers.RIDGE[torch.float64]
    return _host_qp.min_norm_simplex(Gn, d)


def _two_tasks(G: Tensor) -> Tensor:
    """Closed form for 2 tasks (Sener & Koltun 2018, Alg. 1): ``gamma = clip(...)``."""
    denom = G[0, 0] + G[1, 1] - 2 * G[0, 1]
    safe = torch.where(denom > 0, denom, torch.ones_like(denom))
    gamma = torch.where(denom > 0, (G[1, 1] - G[0, 1]) / safe, torch.full_like(denom, 0.5))
    gamma = gamma.clamp(0, 1)
    return torch.stack([gamma, 1 - gamma])
