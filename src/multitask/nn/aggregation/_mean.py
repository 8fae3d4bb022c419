"""Plain average of the task gradients (the reference point of every aggregator)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientAggregator


class Mean(GradientAggregator):
    """Average of the rows: weights ``1 / n_tasks`` each (equal weighting of the mean loss)."""

    def weights(self, jacobian: Tensor) -> Tensor:
        """Weights of shape ``(n_tasks,)``, all ``1 / n_tasks``."""
        n_tasks = jacobian.shape[0]
        return torch.full((n_tasks,), 1.0 / n_tasks, dtype=jacobian.dtype, device=jacobian.device)
