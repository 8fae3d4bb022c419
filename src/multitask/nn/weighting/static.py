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
        Non-negative task weights, ordered as the model's tasks: real numbers, 0-d or
        1-element tensors (their values are taken: the weights are constants, no gradient
        flows back into a tensor given), or a Tensor of shape ``(n_tasks,)``.

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
                given = torch.as_tensor(np.asarray(_constants(weights)))
            except (TypeError, ValueError, RuntimeError):
                given = None  # (a ragged list, a string, a meta tensor: no values)
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


def _constants(weights):
    """``weights`` with each tensor in it (a sequence of 0-d or 1-element tensors, e.g. weights
    learnt elsewhere) replaced by its value, detached and on the host: numpy cannot read a
    tensor that requires grad or lives on a device. A bool among the values is a TypeError
    (numpy would make ``[True, 2.0]`` the weights 1 and 2)."""
    if not isinstance(weights, Sequence) or isinstance(weights, str | bytes):
        return weights
    values = []
    for value in weights:
        if isinstance(value, Tensor):  # (.item(): a Python number, any dtype and device)
            value = value.item() if value.numel() == 1 else value.detach().cpu().numpy()
        if isinstance(value, bool | np.bool_) or getattr(value, "dtype", None) == np.bool_:
            raise TypeError("a bool is not a weight")  # (the caller's message says what is)
        values.append(value)
    return values
