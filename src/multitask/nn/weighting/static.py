"""Static weighting: fixed, user-given task weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from multitask.nn.weighting._base import LossWeighting

__all__ = ["StaticWeighting"]


class StaticWeighting(LossWeighting):
    """``sum_t c_t L_t`` with fixed weights ``c`` (hand-tuned or grid-searched).

    Parameters
    ----------
    weights : sequence of float, shape (n_tasks,)
        Non-negative task weights, ordered as the model's tasks.

    References
    ----------
    Ruder, "An Overview of Multi-Task Learning in Deep Neural Networks",
    arXiv:1706.05098, 2017, Sec. 3 (the weighted sum of task losses).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import StaticWeighting
    >>> weighting = StaticWeighting([1.0, 0.5])
    >>> weighting(torch.tensor([2.0, 3.0])).item()  # 1.0 * 2 + 0.5 * 3
    3.5
    >>> weighting.weights()
    tensor([1.0000, 0.5000])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    def __init__(self, weights: Sequence[float] | Tensor) -> None:
        super().__init__()
        if isinstance(weights, Tensor):
            given = weights.detach()
        else:
            try:
                given = torch.as_tensor(np.asarray(weights))
            except (TypeError, ValueError, RuntimeError):
                given = None
        if given is None or given.dtype == torch.bool or given.dtype.is_complex:
            raise TypeError(
                f"StaticWeighting: weights must be a sequence of real numbers, got {weights!r}"
            )
        w = given.to(torch.get_default_dtype()).reshape(-1)
        if w.numel() == 0 or bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"StaticWeighting needs finite non-negative weights, got {w.tolist()}")
        self.register_buffer("task_weights", w)

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> ``sum_t c_t L_t``."""
        if losses.shape != self.task_weights.shape:
            raise ValueError(
                f"StaticWeighting has {self.task_weights.numel()} weights but got "
                f"{losses.numel()} losses; pass one weight per task"
            )
        return (self.task_weights.to(losses.dtype) * losses).sum()

    def weights(self) -> Tensor:
        return self.task_weights
