"""Geometric loss strategy (Chennupati et al. 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks

__all__ = ["GLS"]


class GLS(LossWeighting):
    """Minimise the geometric mean of the task losses, ``(prod_t L_t)^(1/T)``.

    Its gradient is ``sum_t GLS / (T L_t) * grad L_t``: a task with a small loss
    gets a large weight, so the tasks' scales are balanced. Losses must be
    positive; a negative one gives NaN. A loss of exactly zero (a task with no
    labelled sample in the batch: its masked loss is 0) leaves the mean for the
    step: the geometric mean of the ``T'`` other losses, with gradient
    ``GLS / (T' L_t)`` for them and 0 for it (the product with a zero factor
    would be 0, with a NaN gradient for that task and none for the others).
    All losses zero: 0.

    Parameters
    ----------
    n_tasks : int, optional
        Unused (kept for the common ``WEIGHTINGS[name](n_tasks)`` call).

    References
    ----------
    Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream
    Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning",
    CVPR Workshops 2019, Sec. 3 (geometric loss strategy).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import GLS
    >>> gls = GLS(2)
    >>> losses = torch.tensor([1.0, 4.0], requires_grad=True)
    >>> total = gls(losses)
    >>> total.item()  # sqrt(1 * 4)
    2.0
    >>> gls.weights()  # GLS / (T L_t) = 2 / 2, 2 / 8: the smaller loss weighs more
    tensor([1.0000, 0.2500])
    >>> total.backward()
    >>> losses.grad  # the same weights, as the gradient of the geometric mean
    tensor([1.0000, 0.2500])
    """

    # a zero loss leaves the mean (above): the step is GLS on the other tasks (tested:
    # tests/nn/test_absent_task_rows.py)
    handles_absent_tasks = True

    _loss_floor = 0.0
    loss_floor_reason = "it minimises the geometric mean of the losses, through their logarithms"

    #: On the CPU, a step with every loss non-zero takes its weights in Python floats and
    #: three torch ops for autograd; False: the torch path, as on a device (tests compare them).
    _host: bool = True

    def __init__(self, n_tasks: int | None = None) -> None:
        super().__init__()
        self.n_tasks = check_n_tasks(n_tasks, "GLS", optional=True)
        self._last: Tensor | None = None

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> their geometric mean, shape ``()``."""
        check_losses(losses, self.n_tasks, self)
        if self._on_host(losses):
            values = losses.detach().numpy().tolist()
            if all(v != 0 for v in values):  # every task present: three ops for autograd
                # (the torch path's 14 on (T,) tensors cost more than their math: GLS's step
                # took 1.07-1.10x an equal-weighting step at T = 2)
                n = len(values)
                total = math.exp(sum(math.log(v) for v in values) / n)  # for the weights
                self._last = torch.tensor([total / (n * v) for v in values], dtype=losses.dtype)
                return torch.exp(torch.log(losses).mean())
        present = losses != 0  # (T,) a task without labels this step has a loss of 0
        count = present.sum()
        logs = torch.log(torch.where(present, losses, 1.0))  # 0 (and no gradient) where absent
        total = torch.exp(logs.sum() / count.clamp(min=1)) * present.any()
        self._last = torch.where(present, total / (count * losses), 0.0).detach()
        return total

    def weights(self) -> Tensor | None:
        """Effective gradient weights ``GLS / (T L_t)`` of the last call."""
        return self._last
