"""Input checks shared by the aggregators."""

from __future__ import annotations

from torch import Tensor


def check_jacobian(jacobian, owner) -> None:
    """Raise a ValueError unless ``jacobian`` is a floating-point ``(n_tasks, n_params)``
    tensor with at least one task (``owner``: the aggregator, for the message).

    A few attribute reads (well under a microsecond): every public entry point calls it.
    """
    if (
        not isinstance(jacobian, Tensor)
        or jacobian.dim() != 2
        or jacobian.shape[0] == 0
        or not jacobian.is_floating_point()
    ):
        got = (
            f"shape {tuple(jacobian.shape)} and dtype {jacobian.dtype}"
            if isinstance(jacobian, Tensor)
            else type(jacobian).__name__
        )
        raise ValueError(
            f"{type(owner).__name__} needs a floating-point Tensor of shape (n_tasks, n_params) "
            f"with n_tasks >= 1 (one row per task gradient), got {got}; stack the task "
            "gradients as rows (multitask.nn.task_jacobian) and cast integers to float"
        )
