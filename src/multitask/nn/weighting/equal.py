"""Equal weighting: the plain sum of the task losses."""

from __future__ import annotations

from torch import Tensor

from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks

__all__ = ["EqualWeighting"]


class EqualWeighting(LossWeighting):
    """``sum_t L_t``: every task counts the same (the usual MTL baseline).

    Parameters
    ----------
    n_tasks : int, optional
        Only used by :meth:`weights` (None: weights unknown until the first call).

    References
    ----------
    Caruana, "Multitask Learning", Machine Learning 28, 1997, Sec. 2
    (backpropagation of the summed error of all tasks).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import EqualWeighting
    >>> weighting = EqualWeighting(2)
    >>> weighting(torch.tensor([2.0, 3.0])).item()
    5.0
    >>> weighting.weights()
    tensor([1., 1.])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    def __init__(self, n_tasks: int | None = None) -> None:
        super().__init__()
        self.n_tasks = check_n_tasks(n_tasks, "EqualWeighting", optional=True)
        self._last: Tensor | None = None

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> their sum, shape ``()``."""
        check_losses(losses, self.n_tasks, self)
        self._last = losses.detach()
        return losses.sum()

    def weights(self) -> Tensor | None:
        if self._last is not None:
            return self._last.new_ones(self._last.shape)
        return None
