"""Base class of the loss weightings."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from multitask._params import check_int
from multitask.nn._device import index_on, move_async

#: dtypes the weightings' host paths take (numpy has no bfloat16)
HOST_DTYPES = (torch.float32, torch.float64)


def host_softmax(x: Sequence[float]) -> list[float]:
    """``softmax(x)`` in Python floats (the host paths' ``(T,)``-sized math)."""
    top = max(x)
    e = [math.exp(v - top) for v in x]
    total = sum(e)
    return [v / total for v in e]


def check_n_tasks(n_tasks, owner: str, *, optional: bool = False) -> int | None:
    """``n_tasks`` as an int >= 1 (None too where ``optional``); ``owner``: the class name.

    A 0, a negative count, 1.5, True or ``"3"`` would otherwise fail at the first step with
    a shape error, a ZeroDivisionError or a bare torch error.
    """
    if optional and n_tasks is None:
        return None
    return check_int(n_tasks, "n_tasks", owner, low=1)


def check_losses(losses, n_tasks: int | None, owner) -> None:
    """Raise a ValueError unless ``losses`` is a Tensor of shape ``(n_tasks,)``, ``n_tasks >= 1``
    (any length when ``n_tasks`` is None); ``owner``: the weighting, for the message.

    A ``(T, 1)`` or 0-d tensor would broadcast against the ``(T,)`` weights into a silently
    wrong objective. A few attribute reads (well under a microsecond). Losses on the CPU are
    also checked against ``owner.loss_floor()`` (never on an accelerator, where it would cost a
    host synchronisation per step): read as Python floats by one numpy ``tolist`` and compared
    in the interpreter. (A numpy comparison and ``any`` took 60-80 us of the speed benchmark's
    step, numpy's code out of the caches after the step's GEMMs; this takes about 20.)
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
        # numpy's tolist, not Tensor.tolist: a CPU-only read (tests forbid the latter as a
        # sync proxy)
        x = losses.detach()
        values = (x.float() if x.dtype == torch.bfloat16 else x).numpy().tolist()
        present = owner.__dict__.get("_present")  # inside present_tasks: an absent task's 0
        if present is not None:  # is never used, so never checked
            values = [v if i in present else math.inf for i, v in enumerate(values)]
        if isinstance(floor, float):  # the common case (every weighting but FAMO)
            if not any(v < floor for v in values):
                return
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
    if not isinstance(floor, Tensor):
        floors = [float(floor)] * len(values)
    else:  # a tensor (FAMO's per-task min_losses; one or n_tasks entries): read on the host
        x = floor.detach()
        if x.device.type != "cpu" or x.dtype not in HOST_DTYPES:
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

    Examples
    --------
    A weighting of one's own overrides :meth:`forward` (and :meth:`weights` for logging);
    here the losses scaled by the inverse of their first value:

    >>> import torch
    >>> from multitask.nn.weighting import LossWeighting
    >>> class FirstLossScaled(LossWeighting):
    ...     def __init__(self, n_tasks):
    ...         super().__init__()
    ...         self.register_buffer("first", torch.full((n_tasks,), float("nan")))
    ...     def forward(self, losses):
    ...         unset = torch.isnan(self.first)  # (no `if` on a tensor: no host sync)
    ...         self.first.copy_(torch.where(unset, losses.detach(), self.first))
    ...         return (losses / self.first).sum()
    ...     def weights(self):
    ...         return 1 / self.first
    ...     def reset(self):
    ...         self.first.fill_(float("nan"))
    >>> weighting = FirstLossScaled(2)
    >>> weighting(torch.tensor([2.0, 0.5])).item()
    2.0
    >>> weighting(torch.tensor([1.0, 0.5])).item()  # 1 / 2 + 0.5 / 0.5
    1.5
    >>> weighting.weights()
    tensor([0.5000, 2.0000])
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
    #: True when the method, told which tasks are present (:meth:`present_tasks`), runs its
    #: step on those tasks alone: the same step as the method built for the present tasks
    #: with their part of the state, the absent tasks' state left as it is (tested). The
    #: :class:`~multitask.training.Trainer` then runs it under any task sampler.
    drops_absent_rows: bool = False
    #: Indices of the tasks present at the current step (:meth:`present_tasks`); None: all.
    _present: tuple[int, ...] | None = None
    #: True in a method whose ``(T,)``-sized steps also run in Python floats on the CPU (its
    #: host path, :meth:`_on_host`); set False, it takes its torch path there, as on a device
    #: (the tests compare the two).
    _host: bool = False

    @contextlib.contextmanager
    def present_tasks(self, present: Sequence[int] | None) -> Iterator[LossWeighting]:
        """Run the calls inside the block on the tasks ``present`` alone.

        For a method with ``drops_absent_rows``: inside the block :meth:`forward`,
        :meth:`observe` and :meth:`shared_gradient` take the present tasks' losses and
        Jacobian rows, update only their state, and give the other tasks no weight (their
        losses are 0 at such a step: a task sampler did not draw them, or none of their
        entries in the batch is labelled). :func:`multitask.nn.mtl_backward` opens it for
        its ``absent_tasks``; a hand-written loop can too::

            with weighting.present_tasks([0, 2]):
                weighting(losses).backward()

        Parameters
        ----------
        present : sequence of int or None
            Indices of the present tasks in the model's task order; None: every task.
        """
        if present is not None:
            present = tuple(sorted({int(t) for t in present}))
            n = getattr(self, "n_tasks", None)  # (None: a weighting of any number of tasks)
            n = n if isinstance(n, int) else None
            if n is not None and any(not 0 <= t < n for t in present):
                raise ValueError(f"present task indices {present} are not all in [0, {n})")
            if n is not None and len(present) == n:
                present = None  # every task: the plain step
        previous = self.__dict__.get("_present")
        self.__dict__["_present"] = present  # (no nn.Module attribute hook: every step)
        try:
            yield self
        finally:
            self.__dict__["_present"] = previous

    def _present_mask(self, like: Tensor) -> Tensor | None:
        """The present tasks of the step as a bool mask of shape ``(len(like),)`` on
        ``like``'s device; None when every task is present."""
        present = self._present
        if present is None:
            return None
        mask = torch.zeros(like.shape[0], dtype=torch.bool)
        mask[list(present)] = True
        return move_async(mask, like)  # (no host synchronisation)

    def _on_host(self, *tensors: Tensor) -> bool:
        """Whether this step takes the host path: ``_host`` and every tensor (losses, state,
        Jacobian) on the CPU in a dtype numpy reads."""
        if not self._host:
            return False
        for t in tensors:
            if t.device.type != "cpu" or t.dtype not in HOST_DTYPES:
                return False
        return True

    def _sum_present(self, terms: Tensor) -> Tensor:
        """``sum_t terms_t``; inside :meth:`present_tasks`, over the present tasks alone."""
        mask = self._present_mask(terms)
        return (terms if mask is None else torch.where(mask, terms, 0.0)).sum()

    def _present_index(self, like: Tensor) -> Tensor:
        """The present tasks' indices (inside :meth:`present_tasks`) as a long tensor on
        ``like``'s device, without a host synchronisation."""
        return index_on(self._present, like)

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
