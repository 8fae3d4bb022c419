"""Nash-MTL: the Nash bargaining solution over the task gradients (Navon et al. 2022)."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_int, check_real

from . import _graphs, _host_qp, _solvers
from ._base import GradientAggregator


class NashMTL(GradientAggregator):
    """Nash-MTL: ``d = J^T alpha`` with ``alpha > 0`` solving ``G alpha = 1 / alpha``.

    ``G = J J^T``. The solution maximises ``sum_t log(g_t^T d)`` over the ball (the Nash
    bargaining solution) and is unique when the gradients are linearly independent. It is found
    in torch by damped Newton steps on ``alpha^T G alpha / 2 - sum log alpha``, warm-started from
    the previous step's weights (see :func:`multitask.nn.aggregation._solvers.nash_weights`),
    instead of the paper's sequence of convex programs solved on the host.

    Parameters
    ----------
    update_every : int
        Recompute the weights every ``update_every`` calls and reuse them in between (the paper's
        Nash-MTL-50 / -100 variants); 1 recomputes every step.
    n_iter : int
        Newton steps of the first update off the CPU (fixed, no host sync).
    n_iter_warm : int
        Newton steps of later updates off the CPU, warm-started from the last weights, or from
        the cold start ``1 / sqrt(G_tt)`` where that begins at a lower value of the objective
        (Newton converges quadratically from there; raise it if the Jacobian changes abruptly
        between updates: a step that has not converged gives no direction, see Notes). On the
        CPU the steps run until converged.
    max_norm : float
        If positive, rescale the weights so that ``||d|| <= max_norm`` (the authors' code clips the
        update norm at 1.0); 0 disables.

    Notes
    -----
    Stateful: the last weights live in the ``alpha`` buffer and the call count in ``step``;
    :meth:`reset` forgets both. When ``G alpha = 1 / alpha`` has no positive solution (the
    gradients cancel, e.g. two opposite rows: a Pareto-stationary point) or ``J`` is not
    finite, the step's weights are zero (no direction; ``0 * inf`` still makes a non-finite
    ``J`` show in the output) and ``alpha`` keeps the last good weights, so that a step skipped
    by a gradient scaler does not poison the warm start of the next ones. On the CPU the Newton
    steps run until converged (``n_iter`` and ``n_iter_warm`` are not counts there; at most
    :attr:`MAX_ITER`), so that a step without a solution is recognised as one; on another device
    the counts are fixed (no host synchronisation), and a step counts as one without a solution
    when its utilities ``alpha_t (G alpha)_t`` are not all within :data:`UTILITY_TOL` of 1 after
    them (a step that needed more Newton steps included), so that the iterate of a step without
    a solution, which runs off along the cancelling combination, never becomes a warm start.

    A task whose gradient is zero (no labelled sample in the batch) has no stake in the
    bargaining: it gets weight zero, the others' weights are those of the problem without it,
    and its entry of ``alpha`` keeps its last weight for the warm starts.

    The weights are the paper's ``alpha`` (for the Gramian as it is); the authors' code solves
    on ``G / ||G||_F``, which scales ``alpha`` by ``||G||_F^{1/2}``.

    References
    ----------
    Navon, A., Shamsian, A., Achituve, I., Maron, H., Kawaguchi, K., Chechik, G. & Fetaya, E.
    "Multi-Task Learning as a Bargaining Game". ICML 2022. Theorem 5.1 (``G alpha = 1/alpha``),
    Section 5.1 and Algorithm 1 (update frequency).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import NashMTL
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    >>> nash = NashMTL()
    >>> alpha = nash.weights(J)
    >>> alpha
    tensor([3.0777, 1.3764])
    >>> torch.allclose((J @ J.T) @ alpha, 1 / alpha)  # Theorem 5.1: G alpha = 1 / alpha
    True
    >>> J @ nash(J)  # g_t . d = 1 / alpha_t > 0: every task's loss decreases
    tensor([0.3249, 0.7265])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True
    #: on the CPU, Newton steps go on until converged, at most this many (none: no solution)
    MAX_ITER = 200

    def __init__(
        self,
        update_every: int = 1,
        n_iter: int = 40,
        n_iter_warm: int = 8,
        max_norm: float = 0.0,
    ) -> None:
        super().__init__()
        update_every = check_int(update_every, "update_every", "NashMTL", low=1)
        n_iter = check_int(n_iter, "n_iter", "NashMTL", low=1)
        n_iter_warm = check_int(n_iter_warm, "n_iter_warm", "NashMTL", low=1)
        max_norm = check_real(max_norm, "max_norm", "NashMTL", low=0.0)  # (0 disables clipping)
        self.update_every = update_every
        self.n_iter = n_iter
        self.n_iter_warm = n_iter_warm
        self.max_norm = max_norm
        self.step = 0
        self.register_buffer("alpha", torch.zeros(0))

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights ``alpha`` of shape ``(n_tasks,)`` from ``gramian = J J^T``; counts the call."""
        G = _solvers.to_solver(gramian)
        T = G.shape[0]
        fresh = self.alpha.shape != (T,)
        if fresh or self.step % self.update_every == 0:
            last = torch.zeros(T, dtype=G.dtype, device=G.device) if fresh else self.alpha.to(G)
            n_iter = self.n_iter if fresh else self.n_iter_warm
            solve = functools.partial(_solve, fresh=fresh, n_iter=n_iter, max_iter=self.MAX_ITER)
            alpha, self.alpha = _graphs.replay(self, (fresh, n_iter), solve, G, last)
            self.step += 1
            return self._clipped(alpha, G, gramian)
        self.step += 1
        return self._clipped(self.alpha.to(G), G, gramian)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """:meth:`gramian_weights` on Python floats, up to
        :data:`._host_qp.PYTHON_MAX_TASKS` tasks (:func:`._host_qp.nash_solve_small`): the
        same call count, state and clipping. A torch call on a ``(T,)`` tensor costs more than
        its math; the torch path took about 1.3 ms of a T = 2 benchmark step. None (the torch
        path, nothing changed) beyond, or where the Python steps give up."""
        T = gramian.shape[0]
        if T > _host_qp.PYTHON_MAX_TASKS:
            return None
        G = gramian.tolist()
        fresh = self.alpha.shape != (T,)
        last = None if fresh else self.alpha.detach().cpu().double().numpy().tolist()
        if fresh or self.step % self.update_every == 0:
            n_iter = self.n_iter if fresh else self.n_iter_warm
            solved = _host_qp.nash_solve_small(
                G, [0.0] * T if fresh else last, fresh, n_iter, self.MAX_ITER
            )
            if solved is None:
                return None
            alpha, state = solved
            self.alpha = torch.tensor(state, dtype=torch.float64)  # (as the torch path's)
        else:
            alpha = last
        self.step += 1
        if self.max_norm > 0:  # ||J^T alpha|| <= max_norm, as _clipped
            norm = math.sqrt(max(_host_qp.quadratic_small(G, alpha), 0.0))
            alpha = [a * (self.max_norm / max(norm, self.max_norm)) for a in alpha]
        return np.array(alpha)

    def _clipped(self, alpha: Tensor, G: Tensor, gramian: Tensor) -> Tensor:
        """``alpha`` scaled so that ``||J^T alpha|| <= max_norm`` (when positive)."""
        if self.max_norm > 0:
            norm = (alpha @ G @ alpha).clamp(min=0).sqrt()
            alpha = alpha * (self.max_norm / norm.clamp(min=self.max_norm))
        return alpha.to(gramian.dtype)

    def reset(self) -> None:
        """Forget the last weights and the call count."""
        self.step = 0
        self.alpha = torch.zeros(0, device=self.alpha.device)

    def get_extra_state(self) -> dict:
        return {"step": self.step}

    def set_extra_state(self, state: dict) -> None:
        self.step = state["step"]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + "alpha"
        if key in state_dict:
            self.alpha = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __repr__(self) -> str:
        return f"NashMTL(update_every={self.update_every}, n_iter={self.n_iter})"


#: a step's weights count as a solution of ``G alpha = 1 / alpha`` when every utility
#: ``alpha_t (G alpha)_t`` (1 at the solution) is within this of 1. The utilities do not depend
#: on the Gramian's scale (``G -> c G`` maps ``alpha -> alpha / sqrt(c)``); converged Newton
#: steps reach about 1e-15 (float64) and 4e-7 (float32, the MPS solver dtype), the host's
#: convergence test asks for 1e-6, and steps that run off without a solution (a row and its
#: opposite among 3 or 5 tasks, 8 or 40 steps, 400 draws) stayed 0.2 or more away.
UTILITY_TOL = _host_qp.UTILITY_TOL


def _solve(G: Tensor, last: Tensor, *, fresh: bool, n_iter: int, max_iter: int) -> Tensor:
    """``(alpha, new state)`` stacked, from the Gramian and the last weights (a pure function:
    replayed as a CUDA graph there)."""
    trace = G.diagonal().sum()
    trace = torch.where(trace > 0, trace, torch.ones_like(trace))
    Gn = _solvers.normalise(G, ridge=0.0)  # G / trace: alpha scales by trace**0.5
    # a task with a zero gradient has no stake (g_t^T d = 0 for every d): it gets no
    # weight, and the others bargain alone (its equation decoupled: alpha_t = 1)
    active = Gn.diagonal() > 0
    m = active.to(Gn.dtype)
    Gn = _solvers.masked_systems(Gn, m[None])[0]
    cold = torch.where(active, Gn.diagonal().clamp(min=1e-30).rsqrt(), 1.0)
    # on the host Newton runs until converged (max_iter): there the start only sets how many
    # steps it takes, and a step without a solution comes back NaN; with fixed counts (the
    # device path) the start decides whether they converge, and the utilities whether they did
    fixed = max_iter == 0 or not _solvers.use_host(Gn, None)
    init = cold
    if not fresh:  # the last weights; zero ones (no solution yet, inactive): the cold start
        init = torch.where(last > 0, last * trace.sqrt(), cold)
        if fixed:  # and the cold start where it starts lower: after task norms moved
            # several-fold the 8 warm steps did not converge from the last weights (most draws
            # at T = 5) and did from the cold start (all of them)
            lower = _start_value(Gn, init, m) <= _start_value(Gn, cold, m)
            init = torch.where(lower, init, cold)
    alpha = _solvers.nash_weights(Gn, init, n_iter, max_iter=max_iter)
    # no solution (the gradients cancel: a Pareto-stationary point), a non-finite J or, with
    # fixed counts, a utility off 1 (no solution, or not converged): no direction this step,
    # and the state keeps the last weights (an iterate that ran off along the cancelling
    # combination made a far-off warm start)
    ok = torch.isfinite(alpha).all()
    if fixed:
        utility = torch.where(active, alpha * (Gn @ alpha), 1.0)
        ok = ok & ((utility - 1).abs() <= UTILITY_TOL).all()
    alpha = torch.where(ok, m * alpha / trace.sqrt(), 0.0)
    return torch.stack([alpha, torch.where(ok & active, alpha, last)])


def _start_value(G: Tensor, a: Tensor, m: Tensor) -> Tensor:
    """``a^T G a / 2 - sum log a`` over the active tasks (mask ``m``) at the best rescaling of
    ``a``, less a constant: ``n / 2 log(a^T G a) - sum log a``, ``n`` of them (a task with a
    zero gradient left out, so that the choice is the one made without it)."""
    a = m * a
    return (
        0.5 * m.sum() * (a @ G @ a).clamp(min=1e-30).log() - torch.where(m > 0, a, 1.0).log().sum()
    )
