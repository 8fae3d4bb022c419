"""Input checks shared by the aggregators."""

from __future__ import annotations

import torch
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


def check_task_vector(vec, name: str, owner, upper: float | None = None) -> None:
    """At construction: ``vec`` (None, or one entry per task) must be a 1-D Tensor of finite
    entries ``>= 0`` (and ``<= upper`` when given); a ValueError names ``name`` otherwise."""
    if vec is None:
        return
    ok = isinstance(vec, Tensor) and vec.dim() == 1 and vec.numel() > 0
    ok = ok and bool(torch.isfinite(vec).all()) and bool((vec >= 0).all())
    if ok and upper is not None:
        ok = bool((vec <= upper).all())
    if not ok:
        bound = "" if upper is None else f" and <= {upper}"
        raise ValueError(
            f"{type(owner).__name__}: {name} must be a 1-D Tensor with one finite entry >= 0"
            f"{bound} per task, got {vec!r}"
        )


def check_task_count(vec, n_tasks: int, name: str, owner) -> None:
    """At a call: ``vec`` (None or a Tensor) must have ``n_tasks`` entries."""
    if vec is not None and vec.shape[0] != n_tasks:
        raise ValueError(
            f"{type(owner).__name__}: {name} has {vec.shape[0]} entries but the Jacobian has "
            f"{n_tasks} tasks; give one per task"
        )
