"""Sum of the task gradients (the gradient of the summed loss)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientAggregator, check_jacobian


class Sum(GradientAggregator):
    """Sum of the rows: weights ``1`` each (what ``sum_t L_t`` backpropagates).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import Sum
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    >>> Sum().weights(J)
    tensor([1., 1.])
    >>> Sum()(J)
    tensor([-1.,  1.])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True

    def weights(self, jacobian: Tensor) -> Tensor:
        """Weights of shape ``(n_tasks,)``, all ones."""
        check_jacobian(jacobian, self)
        return torch.ones(jacobian.shape[0], dtype=jacobian.dtype, device=jacobian.device)

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """The same weights, from ``gramian = J J^T`` of shape ``(n_tasks, n_tasks)``."""
        return torch.ones(gramian.shape[0], dtype=gramian.dtype, device=gramian.device)
