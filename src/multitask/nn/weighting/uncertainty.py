"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks

__all__ = ["UncertaintyWeighting"]

_SCALE = {"regression": 0.5, "classification": 1.0}


class UncertaintyWeighting(LossWeighting):
    """Weight each task by a learned homoscedastic noise ``sigma_t``.

    With the log-variance ``s_t = log sigma_t^2`` (a learnable parameter,
    initialised at 0, for numerical stability as the paper advises)::

        regression:      0.5 * exp(-s_t) * L_t + 0.5 * s_t
        classification:        exp(-s_t) * L_t + 0.5 * s_t

    summed over tasks. Train ``log_vars`` with the model's optimizer.

    Parameters
    ----------
    n_tasks : int
    kinds : sequence of {"regression", "classification"}, optional
        Form of each task's term (default: all regression).

    References
    ----------
    Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
    Losses for Scene Geometry and Semantics", CVPR 2018, eq. 7 (regression)
    and eq. 10 (classification).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import UncertaintyWeighting
    >>> weighting = UncertaintyWeighting(2, kinds=["regression", "classification"])
    >>> losses = torch.tensor([2.0, 3.0])
    >>> weighting(losses).item()  # s = 0: 0.5 * 2 + 1.0 * 3
    4.0
    >>> weighting.weights()
    tensor([0.5000, 1.0000])

    One gradient step on the log-variances lowers both weights, the larger loss's most:

    >>> optimizer = torch.optim.SGD(weighting.parameters(), lr=0.1)
    >>> weighting(losses).backward()
    >>> optimizer.step()
    >>> [round(w, 4) for w in weighting.weights().tolist()]  # 0.5 e^-0.05, e^-0.25
    [0.4756, 0.7788]
    """

    absent_tasks_reason = "its regulariser alone would drive the absent task's log-variance down"
    # told which tasks are present (present_tasks), the objective sums their terms alone: an
    # absent task's log-variance gets no gradient (its regulariser would drive it down)
    drops_absent_rows = True

    _loss_floor = 0.0
    loss_floor_reason = (
        "with a negative loss its objective L e^(-s) / 2 + s / 2 has no "
        "minimum: the learned log-variance s runs to -inf"
    )

    def __init__(self, n_tasks: int, kinds: Sequence[str] | None = None) -> None:
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "UncertaintyWeighting")
        kinds = ["regression"] * n_tasks if kinds is None else list(kinds)
        if len(kinds) != n_tasks or any(k not in _SCALE for k in kinds):
            raise ValueError(
                f"kinds must list {n_tasks} entries among {sorted(_SCALE)}, got {kinds}"
            )
        self.n_tasks = n_tasks
        self.kinds = tuple(kinds)
        self.log_vars = nn.Parameter(torch.zeros(n_tasks))
        self.register_buffer("scale", torch.tensor([_SCALE[k] for k in kinds]))

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> the eq. 7 objective, shape ``()``; inside
        :meth:`present_tasks`, the sum over the present tasks' terms."""
        check_losses(losses, self.log_vars.shape[0], self)
        s = self.log_vars
        return self._sum_present(self.scale * torch.exp(-s) * losses + 0.5 * s)

    def weights(self) -> Tensor:
        """Effective weights ``scale_t * exp(-s_t)`` of shape ``(n_tasks,)``."""
        return (self.scale * torch.exp(-self.log_vars)).detach()

    def reset(self) -> None:
        with torch.no_grad():
            self.log_vars.zero_()
