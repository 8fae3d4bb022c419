"""Base class of the loss weightings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


def check_losses(losses, n_tasks: int | None, owner) -> None:
    """Raise a ValueError unless ``losses`` is a Tensor of shape ``(n_tasks,)``, ``n_tasks >= 1``
    (any length when ``n_tasks`` is None); ``owner``: the weighting, for the message.

    A ``(T, 1)`` or 0-d tensor would broadcast against the ``(T,)`` weights into a silently
    wrong objective. A few attribute reads (well under a microsecond). Losses on the CPU are
    also checked against ``owner.loss_floor()`` (a few microseconds, through numpy; never on
    an accelerator, where it would cost a host synchronisation per step).
    """
    if (
        not isinstance(losses, Tensor)
        or losses.dim() != 1
        or losses.shape[0] == 0
        or (n_tasks is not None and losses.shape[0] != n_tasks)
    ):
        got = f"shape {tuple(losses.shape)}" if isinstance(losses, Tensor) else type(losses)
        raise ValueError(
            f"{type(owner).__name__} (n_tasks={n_tasks}) needs the task losses as a Tensor of "
            f"shape (n_tasks,), got {got}; stack one scalar loss per task "
            "(torch.stack([...])) in the order of the model's tasks"
        )
    floor = owner.loss_floor()
    if floor is not None and losses.is_cpu:
        # numpy, not Tensor.tolist: a CPU-only read (tests forbid the latter as a sync proxy)
        x = losses.detach()
        values = (x.float() if x.dtype == torch.bfloat16 else x).numpy()
        if isinstance(floor, float) and not (values < floor).any():
            return  # the common case in one numpy call (this runs every step)
        below = floor_violations(owner, values)
        if below:
            raise ValueError(floor_message(owner, below))


def floor_violations(owner, values: Sequence[float]) -> list[tuple[int, float, float]]:
    """``(task index, loss, floor)`` for every loss below ``owner.loss_floor()``.

    ``values``: the task losses on the host (floats or a numpy array), in the model's
    task order. Empty when the weighting takes any real loss or every loss is at or above
    its floor.
    """
    floor = owner.loss_floor()
    if floor is None:
        return []
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if isinstance(floor, float):
        floors = [floor] * len(values)
    else:  # a tensor (FAMO's per-task min_losses): read on the host once
        x = floor.detach()
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            x = x.to("cpu", torch.float64)
        floors = x.numpy().reshape(-1).tolist()
        floors = floors * len(values) if len(floors) == 1 else floors
    return [(t, v, f) for t, (v, f) in enumerate(zip(values, floors, strict=True)) if v < f]


def floor_message(owner, below: Sequence[tuple[int, float, float]], names=None) -> str:
    """The error for :func:`floor_violations`'s ``below``; ``names``: task names by index."""
    which = ", ".join(
        f"task {names[t]!r}: {v:.6g} < {f:.6g}" if names else f"task {t}: {v:.6g} < {f:.6g}"
        for t, v, f in below
    )
    return (
        f"{type(owner).__name__} cannot take a task loss below its floor ({which}): "
        f"{owner.loss_floor_reason}. Shift or rescale the task's loss so that it is bounded "
        "below by the floor (e.g. 1 - cos instead of -cos), or use a weighting that takes "
        "any real loss (equal, static, rlw); nothing was updated"
    )


class LossWeighting(nn.Module):
    """Turn the vector of task losses into one scalar to minimise.

    ``forward(losses)`` takes ``losses`` of shape ``(n_tasks,)`` (still attached
    to the graph) and returns a scalar. Learnable weights are
    ``nn.Parameter``s of the weighting (so the optimizer sees them); history is
    kept in registered buffers (so checkpoints carry it); a stateful method
    says so and implements :meth:`reset`.

    A weighting never calls ``backward`` nor writes ``.grad``. A method that
    needs per-task gradient information (GradNorm, FAMO's update) declares it
    with ``needs_jacobian = True`` and receives it from
    :func:`multitask.nn.mtl_backward` through :meth:`observe`, which is called
    after the step with whatever the method asked for.
    """

    #: True when the method needs per-task gradients of the shared parameters.
    needs_jacobian: bool = False
    #: Parameters whose Jacobian ``observe`` receives (None: the model's shared
    #: parameters). A plain list, so the model's parameters are not registered
    #: in the weighting (GradNorm: the last shared layer).
    jacobian_params: list | None = None
    #: The floor of :meth:`loss_floor` when it is a constant (None: no floor).
    _loss_floor: float | None = None
    #: Why the method has a floor (for the error message).
    loss_floor_reason: str = ""
    #: True when a task absent from a step (a task sampler did not draw it: a zero loss with
    #: no gradient) leaves the weighting of the other tasks as it would be without that task,
    #: up to a positive scale (RLW: a fresh random draw either way), and feeds no state of
    #: the method (tested). The :class:`~multitask.training.Trainer` refuses a balancer
    #: without it under a task sampler that trains only some of the tasks at a step.
    handles_absent_tasks: bool = False
    #: What an absent task's zero loss does to the method (for that error message).
    absent_tasks_reason: str = "its per-task state would be fed a zero loss"

    def loss_floor(self) -> Tensor | float | None:
        """Smallest task loss the method is defined for, or None (any real loss).

        A loss below it makes the method's objective NaN or unbounded below (a
        logarithm, a ratio or a power of the loss; a learned weight that grows without
        bound). :func:`check_losses` raises on it, before any state changes, where the
        losses are on the CPU (no host synchronisation elsewhere); the
        :class:`~multitask.training.Trainer` checks on every device, from the losses
        it already reads each step.
        """
        return self._loss_floor

    def forward(self, losses: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, losses: Tensor, jacobian: Tensor) -> Tensor | None:
        """Receive per-task gradients before :meth:`forward` (``needs_jacobian`` only).

        Parameters
        ----------
        losses : Tensor of shape (n_tasks,)
            The step's task losses, detached.
        jacobian : Tensor of shape (n_tasks, n_params)
            Gradients of the raw task losses w.r.t. the shared parameters (or
            :attr:`jacobian_params`), detached.

        Returns
        -------
        balancer_loss : Tensor of shape () or None
            An extra objective on the weighting's own parameters, which
            :func:`multitask.nn.mtl_backward` backpropagates with the step
            (GradNorm's ``L_grad``); None when there is none.
        """
        return None

    def shared_gradient(self, losses: Tensor, jacobian: Tensor) -> Tensor | None:
        """Update direction of the shared parameters, or None (the default).

        A weighting whose shared update is not the gradient of
        ``forward(losses)`` (DB-MTL) returns it here, shape ``(n_params,)``;
        :func:`multitask.nn.mtl_backward` then writes it into the shared
        ``.grad`` and backpropagates ``forward(losses)`` only into the
        task-specific parameters and the weighting's own.
        """
        return None

    def weights(self) -> Tensor | None:
        """Current task weights of shape ``(n_tasks,)`` for logging, or None."""
        return None

    def reset(self) -> None:
        """Forget any state kept across steps (stateless weightings: nothing)."""
