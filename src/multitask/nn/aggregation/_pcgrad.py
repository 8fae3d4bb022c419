"""PCGrad: project each task gradient off the others it conflicts with (Yu et al. 2020)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_bool, check_int

from . import _gramian, _graphs, _solvers
from ._base import GradientAggregator
from ._rng import SeededGenerator


class PCGrad(GradientAggregator):
    """Gradient surgery: ``d = sum_i g_i^PC``.

    For each task ``i``, ``g_i^PC`` starts at ``g_i``; for every other task ``j`` in random order,
    if ``g_i^PC . g_j < 0`` it is replaced by ``g_i^PC - (g_i^PC . g_j) / ||g_j||^2 g_j``. All of it
    runs on the Gramian: ``g_i^PC = sum_k C_ik g_k`` and only ``C`` is updated, for all ``i`` at
    once (one step per position in the order), with masks instead of ``if``.

    Parameters
    ----------
    seed : int
        Seed of the generator (kept as state) that draws one order per task and step. It draws
        ``torch.randperm(n_tasks)`` once per task, on the CPU, so ``PCGrad(seed=s)`` visits the
        tasks in the same order as code that calls ``torch.manual_seed(s)`` and then ``randperm``.
    deterministic : bool
        Visit the other tasks in index order instead (no randomness).

    References
    ----------
    Yu, T., Kumar, S., Gupta, A., Levine, S., Hausman, K. & Finn, C. "Gradient Surgery for
    Multi-Task Learning". NeurIPS 2020. Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import PCGrad
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])  # g1 . g2 = -2: a conflict
    >>> pcgrad = PCGrad()
    >>> pcgrad.weights(J)  # g1^PC = g1 + 0.4 g2, g2^PC = g2 + 2 g1: (1 + 2, 0.4 + 1)
    tensor([3.0000, 1.4000])
    >>> pcgrad(J)  # g1^PC = (0.2, 0.4), g2^PC = (0, 1), each orthogonal to the other's g
    tensor([0.2000, 1.4000])
    >>> J @ pcgrad(J)  # for two tasks the sum conflicts with neither
    tensor([0.2000, 1.0000])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True

    def __init__(self, seed: int = 0, *, deterministic: bool = False) -> None:
        super().__init__()
        seed = check_int(seed, "seed", "PCGrad", low=0)  # (a seed; None has no stream to replay)
        self.seed = seed
        self.deterministic = check_bool(deterministic, "deterministic", "PCGrad")
        self._rng = SeededGenerator(seed)

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights ``C.sum(0)`` of shape ``(n_tasks,)`` from ``gramian = J J^T`` (draws orders)."""
        w = _gramian.gramian_host_weights(self, gramian)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        order = _solvers.to_device(self._orders(G.shape[0]), G.device)  # (T, T): order[i] visits
        return _graphs.replay(self, (), _device_weights, G, order).to(gramian.dtype)

    def _orders(self, n_tasks: int) -> Tensor:
        """The visiting orders, shape ``(n_tasks, n_tasks)`` (draws them)."""
        return torch.tensor(self._host_orders(n_tasks), dtype=torch.long)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """The same steps in Python floats (draws the orders); None beyond
        :data:`._gramian.PYTHON_LOOP_MAX_TASKS` tasks, where the torch path is faster."""
        if gramian.shape[0] > _gramian.PYTHON_LOOP_MAX_TASKS:
            return None
        return _host_weights(gramian, self._host_orders(gramian.shape[0]))

    def _host_orders(self, n_tasks: int) -> list[list[int]]:
        """Task ``i`` visits the tasks in row ``i``'s order: random permutations drawn from the
        aggregator's generator, or ``0, ..., T - 1`` when deterministic."""
        if self.deterministic:
            return [list(range(n_tasks))] * n_tasks
        g = self._rng.get("cpu")
        return [torch.randperm(n_tasks, generator=g).tolist() for _ in range(n_tasks)]

    def reset(self) -> None:
        """Restart the random orders from ``seed``."""
        self._rng = SeededGenerator(self.seed)

    def get_extra_state(self) -> dict:
        return self._rng.state()

    def set_extra_state(self, state: dict) -> None:
        self._rng.load_state(state)

    def __repr__(self) -> str:
        return f"PCGrad(seed={self.seed}, deterministic={self.deterministic})"


def _device_weights(G: Tensor, order: Tensor) -> Tensor:
    """``C.sum(0)`` for the visiting orders ``order`` (``(T, T)``), in torch: all tasks at once,
    one step per position of the order (a pure function: replayed as a CUDA graph there)."""
    T = G.shape[0]
    rows = torch.arange(T, device=G.device)
    C = torch.eye(T, dtype=G.dtype, device=G.device)
    norms = G.diagonal()[order]  # (T, T): ||g_j||^2 of the task row i looks at in step k
    # 1 / ||g_j||^2 where the step projects (j != i, g_j != 0), else 0
    coef = torch.where((order != rows[:, None]) & (norms > 0), 1 / norms, 0 * norms)
    for k in range(T):
        j = order[:, k]  # (T,) the task each row i looks at now
        dot = (C @ G)[rows, j]  # g_i^PC . g_j
        C = C.index_put((rows, j), -dot.clamp(max=0) * coef[:, k], accumulate=True)
    return C.sum(dim=0)


def _host_weights(G: np.ndarray, order: list[list[int]] | np.ndarray) -> np.ndarray:
    """:meth:`PCGrad.gramian_weights` on the host, for the visiting orders ``order``.

    Python floats, one task at a time: ``g_i^PC = sum_k c_k g_k`` and ``G c`` are kept, so the
    dot ``g_i^PC . g_j`` is ``(G c)_j`` and a projection updates ``c_j`` and ``G c`` in ``O(T)``
    (numpy calls on ``(T,)`` arrays cost microseconds each, more than the arithmetic).
    """
    rows = G.tolist()
    visits = order.tolist() if isinstance(order, np.ndarray) else order
    T = len(rows)
    total = [0.0] * T
    for i in range(T):
        c = [0.0] * T
        c[i] = 1.0
        Gc = list(rows[i])  # G e_i (G symmetric)
        for j in visits[i]:
            dot, norm = Gc[j], rows[j][j]  # g_i^PC . g_j, ||g_j||^2
            if j != i and dot < 0 and norm > 0:
                step = -dot / norm
                c[j] += step
                Gc = [a + step * b for a, b in zip(Gc, rows[j], strict=True)]
        total = [a + b for a, b in zip(total, c, strict=True)]
    return np.array(total)
