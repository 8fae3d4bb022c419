"""Dynamic weight average (Liu, Johns & Davison 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.nn.weighting._base import LossWeighting, check_losses

__all__ = ["DWA"]


class DWA(LossWeighting):
    """Weight tasks by their recent rate of loss decrease (eq. 1)::

        r_t(k) = L_t(k-1) / L_t(k-2)
        w_t(k) = T exp(r_t(k) / temperature) / sum_s exp(r_s(k) / temperature)

    with ``r = 1`` for the first two periods and wherever the ratio is not finite (a period
    loss of zero before: a task with no labelled sample in it, whose masked loss is 0; the
    ratio of two zeros is NaN, of a positive loss to a zero one inf, and either made every
    weight NaN before 2026-11-22). A *period* is ``period`` calls of
    :meth:`forward` and ``L_t(k)`` is the mean of the task's losses over period
    ``k``: the paper averages over an epoch (``period = steps per epoch``);
    the default ``period=1`` uses the step losses. History lives in buffers
    (a stateful method: :meth:`reset` forgets it).

    Parameters
    ----------
    n_tasks : int
    temperature : float, default=2.0
        The paper's ``T`` (softness of the weights).
    period : int, default=1
        Calls per period.

    References
    ----------
    Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
    CVPR 2019, Sec. 3.3, eq. 1.
    """

    absent_tasks_reason = "a zero loss would enter the loss history its weights are ratios of"

    _loss_floor = 0.0
    loss_floor_reason = (
        "its weights follow the ratio of successive mean losses, a rate of "
        "descent only for a positive loss"
    )

    def __init__(self, n_tasks: int, temperature: float = 2.0, period: int = 1) -> None:
        super().__init__()
        if not temperature > 0 or period < 1:  # (a NaN temperature too)
            raise ValueError(f"need temperature > 0 and period >= 1, got {temperature}, {period}")
        self.n_tasks = n_tasks
        self.temperature = temperature
        self.period = period
        nan = torch.full((n_tasks,), float("nan"))
        self.register_buffer("previous", nan.clone())  # L(k-1)
        self.register_buffer("before_previous", nan.clone())  # L(k-2)
        self.register_buffer("running_sum", torch.zeros(n_tasks))
        self.register_buffer("last_weights", torch.ones(n_tasks))
        self._calls = 0

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> ``sum_t w_t L_t`` (weights detached)."""
        check_losses(losses, self.n_tasks, self)
        ratio = self.previous / self.before_previous
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.ones_like(ratio))
        w = self.n_tasks * torch.softmax(ratio / self.temperature, dim=0)
        self.last_weights = w.detach()
        self._advance(losses.detach())
        return (w.to(losses.dtype) * losses).sum()

    def _advance(self, losses: Tensor) -> None:
        self.running_sum.add_(losses.to(self.running_sum.dtype))
        self._calls += 1
        if self._calls == self.period:
            self.before_previous.copy_(self.previous)
            self.previous.copy_(self.running_sum / self.period)
            self.running_sum.zero_()
            self._calls = 0

    def weights(self) -> Tensor:
        return self.last_weights

    def reset(self) -> None:
        for buf in (self.previous, self.before_previous):
            buf.fill_(float("nan"))
        self.running_sum.zero_()
        self.last_weights.fill_(1.0)
        self._calls = 0

    def get_extra_state(self) -> dict:
        return {"calls": self._calls}

    def set_extra_state(self, state: dict) -> None:
        self._calls = int(state["calls"])
