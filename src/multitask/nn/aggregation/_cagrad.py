"""CAGrad: the best worst-case improvement near the average gradient (Liu et al. 2021)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_int, check_real

from . import _gramian, _host_qp, _solvers
from ._base import GradientAggregator

_RESCALE = {"none": lambda c: 1.0, "c2": lambda c: 1.0 + c**2, "c": lambda c: 1.0 + c}


class CAGrad(GradientAggregator):
    """Conflict-averse gradient: ``d = argmax_{||d - g0|| <= c ||g0||} min_i g_i^T d``.

    With ``g0 = J^T 1 / T`` the mean gradient, the dual is
    ``min_{w in simplex} g_w^T g0 + sqrt(phi) ||g_w||`` (``g_w = J^T w``,
    ``phi = c^2 ||g0||^2``) and ``d = g0 + sqrt(phi) / ||g_w|| g_w``. It is solved exactly in
    torch by enumerating the supports of ``w`` (see
    :func:`multitask.nn.aggregation._solvers.cagrad_coefficients`), not by SLSQP on the host.

    Parameters
    ----------
    c : float
        Radius of the ball around ``g0``, relative to ``||g0||`` (the paper's default 0.5).
        ``c = 0`` gives the mean gradient.
    rescale : {"none", "c2", "c"}
        Divide ``d`` by 1, ``1 + c^2`` or ``1 + c`` (the authors' code's ``rescale`` 0, 1, 2).
    max_exact, n_iter : int
        Exact enumeration up to ``max_exact`` tasks; ``n_iter`` active-set iterations beyond
        (exact once the support settles, which can fail near Pareto-stationary points).

    References
    ----------
    Liu, B., Liu, X., Jin, X., Stone, P. & Liu, Q. "Conflict-Averse Gradient Descent for
    Multi-task Learning". NeurIPS 2021. Eq. (2)-(4) and Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import CAGrad
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    >>> g0 = J.mean(0)
    >>> J @ g0  # the mean gradient increases the first task's loss
    tensor([-0.5000,  1.5000])
    >>> cagrad = CAGrad(c=0.5)
    >>> d = cagrad(J)
    >>> d  # weights @ J
    tensor([-0.1464,  0.5000])
    >>> J @ d  # the worst task's decrease, maximised over the ball: -0.5 -> -0.1464
    tensor([-0.1464,  0.7929])
    >>> bool((d - g0).norm() <= 0.5 * g0.norm() + 1e-6)  # within c ||g0|| of the mean
    True
    """

    absent_tasks_reason = (
        "a zero row changes the average gradient its conflict-averse step is built around"
    )

    drops_absent_rows = True  # (the Trainer runs it on the present tasks' rows)

    uses_gramian = True
    graph_safe = True

    def __init__(
        self, c: float = 0.5, *, rescale: str = "none", max_exact: int = 10, n_iter: int = 12
    ) -> None:
        super().__init__()
        c = check_real(c, "c", "CAGrad", low=0.0)  # (a radius)
        if rescale not in _RESCALE:
            raise ValueError(f"rescale={rescale!r} must be one of {tuple(_RESCALE)}")
        self.c = c
        self.rescale = rescale
        self.max_exact = check_int(max_exact, "max_exact", "CAGrad", low=0)
        self.n_iter = check_int(n_iter, "n_iter", "CAGrad", low=1)

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights ``(1 / T + u) / rescale`` of shape ``(n_tasks,)``. From ``gramian = J J^T``."""
        w = _gramian.gramian_host_weights(self, gramian)
        if w is not None:
            return w
        G = _solvers.normalise(_solvers.to_solver(gramian))
        u = _solvers.cagrad_coefficients(G, self.c, self.max_exact, self.n_iter, host=False)
        w = (1.0 / G.shape[0] + u) / _RESCALE[self.rescale](self.c)
        return w.to(gramian.dtype)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """The weights on the host (active set on the support); None when it gives up.

        Up to :data:`._host_qp.PYTHON_MAX_TASKS` tasks in Python floats
        (:func:`._host_qp.cagrad_coefficients_small`): there a numpy call costs more than its
        math (the numpy active set took about 400 us of a T = 2 step of the speed benchmark,
        with numpy's code out of the caches after the step's GEMMs); beyond, or when that
        gives up, in numpy.
        """
        T, ridge = gramian.shape[0], _solvers.RIDGE[torch.float64]
        scale = _RESCALE[self.rescale](self.c)
        if T <= _host_qp.PYTHON_MAX_TASKS:
            Gn = _host_qp.normalise_small(gramian.tolist(), ridge)
            u = _host_qp.cagrad_coefficients_small(Gn, self.c)
            if u is not None:
                return np.array([(1.0 / T + ui) / scale for ui in u])
        u = _host_qp.cagrad_coefficients(_host_qp.normalise(gramian, ridge), self.c)
        if u is None:
            return None
        return (1.0 / T + u) / scale

    def __repr__(self) -> str:
        return f"CAGrad(c={self.c}, rescale={self.rescale!r})"
