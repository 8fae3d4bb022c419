"""IMTL-L: loss balance of Impartial Multi-Task Learning (Liu et al. 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks

__all__ = ["IMTLL"]


class IMTLL(LossWeighting):
    """Learn scales ``exp(s_t)`` so that every scaled loss tends to 1.

    The objective is ``sum_t exp(s_t) L_t - s_t``; minimising in ``s_t`` gives
    ``exp(s_t) L_t = 1``, so all tasks are balanced in scale. ``s`` is a
    parameter (initialised at 0) trained by the model's optimizer.

    Parameters
    ----------
    n_tasks : int

    References
    ----------
    Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial
    Multi-task Learning", ICLR 2021, Sec. 3 (loss balance, IMTL-L).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import IMTLL
    >>> imtl = IMTLL(2)
    >>> losses = torch.tensor([2.0, 0.5])
    >>> imtl(losses).item()  # s = 0: 2 + 0.5
    2.5

    One gradient step on ``s`` (``d/ds_t = exp(s_t) L_t - 1 = (1, -0.5)``) moves each scale
    towards ``1 / L_t``:

    >>> optimizer = torch.optim.SGD(imtl.parameters(), lr=0.5)
    >>> imtl(losses).backward()
    >>> optimizer.step()
    >>> imtl.weights()  # exp(-0.5), exp(0.25)
    tensor([0.6065, 1.2840])
    """

    absent_tasks_reason = "its -s_t term alone would drive the absent task's scale up"
    # told which tasks are present (present_tasks), the objective sums their terms alone
    drops_absent_rows = True

    _loss_floor = 0.0
    loss_floor_reason = (
        "with a negative loss its objective e^s L - s has no minimum: the "
        "learned scale s runs to +inf"
    )

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "IMTLL")
        self.n_tasks = n_tasks
        self.log_scales = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> ``sum_t exp(s_t) L_t - s_t``."""
        check_losses(losses, self.log_scales.shape[0], self)
        s = self.log_scales
        return self._sum_present(torch.exp(s) * losses - s)  # (present_tasks: theirs alone)

    def weights(self) -> Tensor:
        """``exp(s_t)``, shape ``(n_tasks,)``."""
        return torch.exp(self.log_scales).detach()

    def reset(self) -> None:
        with torch.no_grad():
            self.log_scales.zero_()
