"""GradVac: steer pairwise gradient cosines towards their running averages (Wang et al. 2021)."""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_int, check_real
from multitask.nn._device import index_on

from . import _gramian, _graphs, _solvers
from ._base import GradientAggregator
from ._rng import SeededGenerator


class GradVac(GradientAggregator):
    """Gradient Vaccine: ``d = sum_i g_i'`` with each ``g_i'`` aligned to cosine targets.

    For each task ``i`` and each other task ``j`` (random order), with
    ``phi = cos(g_i', g_j)`` and the target ``phi_hat_ij`` (an EMA of past ``phi``): if
    ``phi < phi_hat_ij``,
    ``g_i' += ||g_i'|| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2))
    / (||g_j|| sqrt(1 - phi_hat^2)) g_j``; then ``phi_hat_ij <- (1 - beta) phi_hat_ij + beta phi``.
    Everything runs on the Gramian, all ``i`` at once. Targets start at 0 (so the first step is
    PCGrad-like) and live in the ``targets`` buffer, shape ``(n_tasks, n_tasks)``, created on the
    first call (zero again when the number of tasks changes). One target per task pair over the
    whole shared parameter vector (the paper's "whole model" granularity). A non-finite
    Jacobian gives a non-finite output and leaves the targets as they were.

    Parameters
    ----------
    beta : float
        EMA rate of the targets (the paper's default 0.01).
    eps : float
        Added to denominators.
    seed : int
        Seed of the generator drawing, for each task ``i``, ``torch.randperm(n_tasks - 1)`` over
        the other tasks (CPU; the same draws as after ``torch.manual_seed(seed)``).

    References
    ----------
    Wang, Z., Tsvetkov, Y., Firat, O. & Cao, Y. "Gradient Vaccine: Investigating and Improving
    Multi-task Optimization in Massively Multilingual Models". ICLR 2021. Algorithm 1, eq. (3).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import GradVac
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])  # cos(g1, g2) = -2 / sqrt(5)
    >>> gradvac = GradVac(beta=0.5)
    >>> gradvac.weights(J)  # targets 0 at first: PCGrad's step
    tensor([3.0000, 1.4000])
    >>> round(gradvac.targets[0, 1].item(), 4)  # EMA: 0.5 * 0 + 0.5 * cos(g1, g2)
    -0.4472

    The next step lifts each cosine only up to that target (eq. 3):
    ``g1' = g1 + 0.3 g2`` and ``g2' = g2 + 1.5 g1``, each at cosine -0.4472 to the other.

    >>> gradvac.weights(J)
    tensor([2.5000, 1.3000])
    """

    absent_tasks_reason = "a zero row would pull its running gradient-similarity targets toward 0"
    # told of absent tasks, a step runs on the present rows and their pairs' targets alone
    # (:meth:`_on_rows`): the absent tasks' targets are left as they are
    drops_absent_rows = True

    uses_gramian = True

    def __init__(self, beta: float = 0.01, eps: float = 1e-8, seed: int = 0) -> None:
        super().__init__()
        beta = check_real(beta, "beta", "GradVac", low=0.0, high=1.0)  # (an EMA rate)
        eps = check_real(eps, "eps", "GradVac", low=0.0)
        seed = check_int(seed, "seed", "GradVac", low=0)  # (a seed; None has no stream to replay)
        self.beta = beta
        self.eps = eps
        self.seed = seed
        self._rng = SeededGenerator(seed)
        self.register_buffer("targets", torch.zeros(0, 0))

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Weights ``C.sum(0)`` of shape ``(n_tasks,)`` from ``gramian = J J^T``.

        Updates ``targets`` and advances the generator.
        """
        T = gramian.shape[0]
        self._size_targets(T, gramian.device)
        w = _gramian.gramian_host_weights(self, gramian)
        if w is not None:
            return w
        G = _solvers.to_solver(gramian)
        order = _solvers.to_device(self._orders(T), G.device)  # (T, T - 1)
        # targets on another device than G (a checkpoint loaded on the CPU): moved along
        step = functools.partial(_device_step, beta=self.beta, eps=self.eps)
        out = _graphs.replay(self, (self.beta, self.eps), step, G, order, self.targets.to(G))
        if T > 1:
            self.targets = out[1:].to(self.targets.dtype)
        return out[0].to(gramian.dtype)

    def _orders(self, n_tasks: int) -> Tensor:
        """The visiting orders, shape ``(n_tasks, n_tasks - 1)`` (draws them)."""
        orders = self._host_orders(n_tasks)
        return torch.tensor(orders, dtype=torch.long).reshape(n_tasks, n_tasks - 1)

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """The same steps in Python floats (draws the orders, updates ``targets``); None when
        the targets live off the CPU or beyond :data:`._gramian.PYTHON_LOOP_MAX_TASKS` tasks,
        where the torch path is faster."""
        T = gramian.shape[0]
        self._size_targets(T, torch.device("cpu"))
        if self.targets.device.type != "cpu" or T > _gramian.PYTHON_LOOP_MAX_TASKS:
            return None
        current = self._buffers["targets"]  # (what self.targets reads, without __getattr__)
        w, targets = _host_weights(
            gramian, self._host_orders(T), current.tolist(), self.beta, self.eps
        )
        # a new tensor, not an in-place update: a state_dict taken earlier keeps its values;
        # straight into _buffers, which is what Module.__setattr__ does for a buffer, slower
        self._buffers["targets"] = _tensor(targets, current.dtype)
        return w

    def _size_targets(self, n_tasks: int, device: torch.device) -> None:
        """Zero targets of shape ``(n_tasks, n_tasks)`` when the number of tasks is new."""
        if self.targets.shape != (n_tasks, n_tasks):
            dtype = _solvers.solver_dtype(device)
            self.targets = torch.zeros(n_tasks, n_tasks, dtype=dtype, device=device)

    def _host_orders(self, n_tasks: int) -> list[list[int]]:
        """Task ``i`` visits the other tasks in a random order drawn from the generator."""
        g = self._rng.get("cpu")
        orders = []
        for i in range(n_tasks):
            others = [j for j in range(n_tasks) if j != i]
            if n_tasks > 2:  # a permutation of one element draws nothing from the generator
                others = [others[k] for k in torch.randperm(n_tasks - 1, generator=g).tolist()]
            orders.append(others)
        return orders

    @contextlib.contextmanager
    def _on_rows(self, present: list[int], n_tasks: int, device: torch.device):
        """For one step on the rows ``present`` of ``n_tasks`` (:class:`._present.PresentRows`):
        ``targets`` is their pairs' block meanwhile, written back into the whole matrix after
        (the other pairs' targets unchanged)."""
        self._size_targets(n_tasks, device)
        full = self._buffers["targets"]
        idx = index_on(present, full)
        self._buffers["targets"] = full.index_select(0, idx).index_select(1, idx)
        try:
            yield
        finally:
            block = self._buffers["targets"].to(full)
            whole = full.clone()  # a new tensor, as every step makes (a state dict keeps its own)
            whole[idx[:, None], idx[None, :]] = block
            self._buffers["targets"] = whole

    def reset(self) -> None:
        """Forget the cosine targets and restart the random orders from ``seed``."""
        self.targets = torch.zeros(0, 0, device=self.targets.device)
        self._rng = SeededGenerator(self.seed)

    def get_extra_state(self) -> dict:
        return self._rng.state()

    def set_extra_state(self, state: dict) -> None:
        self._rng.load_state(state)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # The targets' shape is known only once the number of tasks is: adopt the saved one.
        key = prefix + "targets"
        if key in state_dict:
            self.targets = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __repr__(self) -> str:
        return f"GradVac(beta={self.beta}, seed={self.seed})"


def _tensor(rows: list[list[float]], dtype: torch.dtype) -> Tensor:
    """``torch.tensor(rows, dtype=dtype)`` on the CPU, through numpy for float32 / float64 (the
    same rounding of each Python float, a third of the time)."""
    if dtype in _gramian._NUMPY:
        return torch.from_numpy(np.array(rows, dtype=_gramian._NUMPY[dtype]))
    return torch.tensor(rows, dtype=dtype)


def _host_weights(G, order, targets, beta: float, eps: float):
    """:meth:`GradVac.gramian_weights` on the host: the weights (an array) and the updated
    targets (nested lists; ``targets`` is an array or nested lists, not modified).

    Python floats, one task at a time: ``g_i' = sum_k c_k g_k`` and ``G c`` are kept, so
    ``g_i' . g_j = (G c)_j``, ``||g_i'||^2 = c . G c`` and an update of ``c_j`` costs ``O(T)``.
    """
    rows = G.tolist()
    hats = [list(r) for r in (targets.tolist() if isinstance(targets, np.ndarray) else targets)]
    visits = order.tolist() if isinstance(order, np.ndarray) else order
    T = len(rows)
    norms = [math.sqrt(max(rows[j][j], 0.0)) for j in range(T)]
    total = [0.0] * T
    for i in range(T):
        c = [0.0] * T
        c[i] = 1.0
        Gc = list(rows[i])
        for j in visits[i]:
            norm_i = math.sqrt(max(sum(a * b for a, b in zip(c, Gc, strict=True)), 0.0))
            phi = Gc[j] / (norm_i * norms[j] + eps)
            hat = hats[i][j]
            if phi < hat:
                s_hat = math.sqrt(max(1 - hat * hat, 0.0))
                s_phi = math.sqrt(max(1 - phi * phi, 0.0))
                w = norm_i * (hat * s_phi - phi * s_hat) / (norms[j] * s_hat + eps)
                c[j] += w
                Gc = [a + w * b for a, b in zip(Gc, rows[j], strict=True)]
            if math.isfinite(phi):  # a non-finite J leaves the targets as they were
                hats[i][j] = (1 - beta) * hat + beta * phi
        total = [a + b for a, b in zip(total, c, strict=True)]
    return np.array(total), hats


def _device_step(G: Tensor, order: Tensor, targets: Tensor, *, beta: float, eps: float) -> Tensor:
    """GradVac's step in torch for the visiting orders ``order`` (``(T, T - 1)``): the weights
    ``C.sum(0)`` stacked on the updated targets, ``(T + 1, T)`` (a pure function: replayed as a
    CUDA graph there)."""
    T = G.shape[0]
    rows = torch.arange(T, device=G.device)
    # each pair (i, j) is visited once per call: its target and g_j's norm can be read upfront
    phi_hat = targets.gather(1, order)  # (T, T - 1)
    s_hat = (1 - phi_hat * phi_hat).clamp(min=0).sqrt()
    norm_j = G.diagonal().clamp(min=0).sqrt()[order]
    denom = norm_j * s_hat + eps
    C = torch.eye(T, dtype=G.dtype, device=G.device)
    phis = []
    for k in range(T - 1):
        j = order[:, k]
        CG = C @ G  # (T, T): g_i' . g_l
        norm_i = (CG * C).sum(dim=1).clamp(min=0).sqrt()
        phi = CG[rows, j] / (norm_i * norm_j[:, k] + eps)
        s_phi = (1 - phi * phi).clamp(min=0).sqrt()
        w = norm_i * (phi_hat[:, k] * s_phi - phi * s_hat[:, k]) / denom[:, k]
        C = C.index_put((rows, j), w * (phi < phi_hat[:, k]), accumulate=True)
        phis.append(phi)
    if phis:
        phis = torch.stack(phis, dim=1)  # a non-finite cosine (J not finite) keeps its target
        ema = torch.where(phis.isfinite(), (1 - beta) * phi_hat + beta * phis, phi_hat)
        targets = targets.scatter(1, order, ema)
    return torch.cat([C.sum(dim=0)[None], targets])
