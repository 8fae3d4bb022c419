"""Checks that stop a training run before a bad step reaches the model.

Each takes values the trainer has already read on the host (no extra device
synchronisation) and ``where``, the step's position for the message; the
trainer adds which checkpoint a resume would start from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import Tensor

from multitask.nn.weighting import LossWeighting
from multitask.nn.weighting._base import floor_message, floor_violations

__all__ = [
    "check_absent_tasks",
    "check_finite_losses",
    "check_loss_floor",
    "check_task_weights",
    "handles_absent_tasks",
]


def check_finite_losses(
    values: Mapping[str, float], seen: Mapping[str, tuple[Tensor, Tensor]], tasks, where: str
) -> None:
    """A non-finite task loss: a ValueError when a target is outside what the task's loss
    accepts (``Task.check_target``), else a FloatingPointError naming the task."""
    for t, v in values.items():
        if math.isfinite(v):
            continue
        try:
            tasks[t].check_target(*seen[t], soft=True)  # what the loss accepts
        except ValueError as e:
            raise ValueError(f"{e} ({where})") from None
        raise FloatingPointError(
            f"loss of task {t!r} is {v} {where}; lower the learning rate or check the inputs "
            "and targets"
        )


def check_loss_floor(
    balancer, values: Mapping[str, float], names: Sequence[str], where: str, present=None
) -> None:
    """A loss below the balancer's floor (``LossWeighting.loss_floor``: a log or ratio
    of it) is a ValueError, raised before the balancer's state or the model changes;
    a task absent from ``values`` (not drawn) has loss 0. ``present``: the tasks with a
    labelled entry; a balancer run on those alone (``drops_absent_rows``) never sees the
    others' 0, which is then not checked."""
    if not isinstance(balancer, LossWeighting) or balancer.loss_floor() is None:
        return
    skip = present is not None and getattr(balancer, "drops_absent_rows", False)
    losses = [math.inf if skip and t not in present else values.get(t, 0.0) for t in names]
    below = floor_violations(balancer, losses)
    if below:
        raise ValueError(f"{floor_message(balancer, below, names)} ({where})")


def check_task_weights(
    balancer, weights: Mapping[str, float] | None, losses: Mapping[str, float], where: str
) -> None:
    """A balancer's non-finite task weights are a FloatingPointError, raised before
    they reach the model."""
    if weights is None or all(math.isfinite(w) for w in weights.values()):
        return
    raise FloatingPointError(
        f"the balancer {type(balancer).__name__} gave task weights {dict(weights)} {where} "
        f"from the losses {dict(losses)}; the model was not updated. A task with no labelled "
        "entry in a batch has loss 0, which some balancers cannot take (a log or ratio of it)"
    )


def handles_absent_tasks(balancer) -> bool:
    """Whether a step may leave tasks out with ``balancer`` (None: the plain sum, yes): it is
    unchanged by their zero rows (``handles_absent_tasks``), or the trainer runs it on the
    present tasks' rows alone (``drops_absent_rows``: ``mtl_backward``'s ``absent_tasks``)."""
    return (
        balancer is None
        or getattr(balancer, "handles_absent_tasks", False)
        or getattr(balancer, "drops_absent_rows", False)
    )


def check_absent_tasks(balancer, drawn: Sequence[str], tasks: Sequence[str], where: str) -> None:
    """A step that trains only some of the tasks (a task sampler's draw ``drawn``) with a
    balancer that is not defined then (``handles_absent_tasks`` False) is a ValueError.

    The trainer gives an absent task a zero loss (and so a zero gradient row): equal, static,
    random and geometric loss weighting, and the aggregators that ignore a zero row, are
    unchanged by it; MGDA, CAGrad, GradVac and the stateful loss weightings run on the present
    tasks alone (``drops_absent_rows``). A balancer of the user's own that claims neither
    would feed the zero to its state.
    """
    if handles_absent_tasks(balancer):
        return
    present = set(drawn)
    missing = [t for t in tasks if t not in present]
    if not missing:
        return
    from multitask.nn.aggregation import AGGREGATORS
    from multitask.nn.weighting import WEIGHTINGS

    ok = [n for n, c in {**WEIGHTINGS, **AGGREGATORS}.items() if handles_absent_tasks(c)]
    raise ValueError(
        f"{type(balancer).__name__} is not defined on a step that trains only some of the "
        f"tasks ({where}, the tasks {missing} are not drawn): an absent task enters it as a "
        f"zero loss and a zero gradient, and {balancer.absent_tasks_reason}. Train every task "
        "at every step (one DataLoader for all tasks, or PeriodicSampler with every period "
        f"1), or use a balancer that handles absent tasks: {', '.join(ok)}; nothing was updated"
    )
