"""Plain average of the task gradients (the reference point of every aggregator)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientAggregator, check_jacobian


class Mean(GradientAggregator):
    """Average of the rows: weights ``1 / n_tasks`` each (equal weighting of the mean loss).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.aggregation import Mean
    >>> J = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    >>> Mean().weights(J)
    tensor([0.5000, 0.5000])
    >>> Mean()(J)
    tensor([-0.5000,  0.5000])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    uses_gramian = True

    def weights(self, jacobian: Tensor) -> Tensor:
        """Weights of shape ``(n_tasks,)``, all ``1 / n_tasks``."""
        check_jacobian(jacobian, self)
        n_tasks = jacobian.shape[0]
        return jacobian.new_full((n_tasks,), 1.0 / n_tasks)

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """The same weights, from ``gramian = J J^T`` of shape ``(n_tasks, n_tasks)``."""
        n_tasks = gramian.shape[0]
        return torch.full((n_tasks,), 1.0 / n_tasks, dtype=gramian.dtype, device=gramian.device)
