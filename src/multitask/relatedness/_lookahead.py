"""Lookahead inter-task affinity of TAG (Fifty et al., NeurIPS 2021)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from multitask._params import check_real
from multitask.nn import Task, task_jacobian
from multitask.relatedness._common import (
    RandomDraws,
    as_task_list,
    batch_losses,
    check_batches,
    check_finite,
    keep_model_state,
    pair_mean,
    shared_named,
)

__all__ = ["lookahead_affinity"]


def _batch_affinity(
    model, tasks, batch, named, lr: float, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``Z[i, j]`` on one batch and where it is defined, both of shape ``(T, T)``.

    Every forward replays the base forward's random draws: eq. 3 compares one loss at two
    parameter values, not under two dropout masks. ``Z[i, j]`` is defined when task ``i`` has
    a labelled entry (its step is a gradient of its data) and task ``j`` has one with a
    positive loss (the ratio's denominator).
    """
    shared = [p for _, p in named]
    draws = RandomDraws(shared[0].device)
    losses, counts = batch_losses(model, tasks, batch)  # (T,)
    check_finite(losses, counts, tasks, where)
    jac = task_jacobian(losses, shared, retain_graph=False).detach()  # (T, n_shared)
    base = losses.detach()
    measured = (counts > 0) & (base > 0)
    defined = (counts > 0)[:, None] & measured[None, :]
    denominator = torch.where(measured, base, torch.ones_like(base))
    rows = []
    with torch.no_grad():
        for i in range(len(tasks)):
            params, offset = {}, 0
            for name, p in named:
                step = jac[i, offset : offset + p.numel()].view_as(p)
                params[name] = p.detach() - lr * step  # theta_s - lr * grad_i L_i
                offset += p.numel()
            draws.replay()
            after, _ = batch_losses(model, tasks, batch, params)  # (T,)
            check_finite(
                after,
                measured,
                tasks,
                f"{where}, after a step of lr={lr:g} on task {tasks[i].name!r} (lower lr)",
            )
            rows.append(1.0 - after / denominator)
    Z = torch.stack(rows)
    return torch.where(defined, Z, torch.zeros_like(Z)), defined


def lookahead_affinity(
    model, tasks: Sequence[Task] | Mapping[str, Task], batches: Iterable, lr: float
) -> np.ndarray:
    """Inter-task affinity: how a step on task ``i`` changes the loss of task ``j``.

    On each batch, the shared parameters take one gradient step on task ``i``
    alone (task-specific parameters stay), and the relative change of task
    ``j``'s loss on the same batch is measured (TAG, eq. 3):

    .. math:: Z_{i \\to j} = 1 - \\frac{L_j(\\theta_s - \\eta \\nabla_{\\theta_s} L_i,
              \\theta_j)}{L_j(\\theta_s, \\theta_j)},

    averaged over the batches (the paper averages over training steps) where it is defined:
    task ``i`` has a labelled entry and task ``j`` one with a positive loss (a task without
    labels in a batch has loss 0 there). Positive: the step on ``i`` lowers ``j``'s loss. The
    lookahead runs through :func:`torch.func.functional_call`, every forward on a batch with
    the same random draws (dropout masks); the model (parameters, buffers such as BatchNorm's
    running statistics, ``representation``) and torch's random state are left as they were.

    Parameters
    ----------
    model : MultiTaskModule
        ``forward(x) -> dict[task, Tensor]`` and ``shared_parameters()``.
    tasks : sequence of Task, or dict of str -> Task
        The tasks, in the order of the rows of the result (at least two).
    batches : iterable of (inputs, dict of str -> Tensor)
        Batches to average over.
    lr : float
        Step size ``eta`` of the lookahead (the training learning rate; for an
        adaptive optimizer the paper uses its update instead, not done here).

    Returns
    -------
    affinity : ndarray of shape (n_tasks, n_tasks)
        ``affinity[i, j] = Z_{i -> j}`` (row: the task stepped on; column: the
        task whose loss is measured). Not symmetric in general.

    Raises
    ------
    ValueError
        If a pair of tasks is defined on no batch, ``lr`` is not positive and finite,
        or a labelled task's loss is NaN or infinite on a batch, before or after a
        lookahead step.
    TypeError
        If ``lr`` is not a real number, a task is not a :class:`~multitask.nn.Task`
        (a repeated task name is a ValueError), or a batch is not a pair
        ``(inputs, targets)``.

    References
    ----------
    Fifty, Amid, Zhao, Yu, Anil & Finn, "Efficiently Identifying Task
    Groupings for Multi-Task Learning", NeurIPS 2021, Sec. 3.1, eq. 3.

    Examples
    --------
    Three regression tasks on one shared linear layer, started at zero: the targets of
    ``"a"`` and ``"b"`` point the same way, that of ``"c"`` the opposite way.

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn import Task
    >>> from multitask.nn.architectures import HardSharing
    >>> from multitask.relatedness import lookahead_affinity
    >>> trunk = nn.Linear(3, 1, bias=False)  # the shared parameters
    >>> _ = nn.init.zeros_(trunk.weight)
    >>> model = HardSharing(trunk, {t: nn.Flatten(0) for t in "abc"})  # heads without parameters
    >>> tasks = [Task("a"), Task("b"), Task("c")]  # regression tasks, the rows of the result
    >>> x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    >>> s = x @ torch.tensor([1.0, -2.0, 0.5])
    >>> batches = [(x, {"a": s, "b": 2 * s, "c": -s})]  # b agrees with a, c opposes it
    >>> Z = lookahead_affinity(model, tasks, batches, lr=0.1)
    >>> Z.round(1)  # row: the task stepped on; column: the task whose loss is measured
    array([[ 0.3,  0.1, -0.3],
           [ 0.5,  0.3, -0.7],
           [-0.3, -0.2,  0.3]])

    A step on ``"a"`` or ``"b"`` lowers the loss of the other and raises that of ``"c"``,
    so :func:`group_tasks` puts ``"c"`` apart:

    >>> from multitask.relatedness import group_tasks
    >>> group_tasks(Z, n_groups=2)
    [[0, 1], [2]]
    """
    lr = check_real(lr, "lr", "lookahead_affinity", low=0.0, low_open=True)  # (inf gave NaN)
    tasks = as_task_list(tasks)
    batches = check_batches(batches)
    named = shared_named(model)
    total = count = 0
    with keep_model_state(model):
        for b, batch in enumerate(batches):
            Z, defined = _batch_affinity(model, tasks, batch, named, lr, f"batch {b}")
            total, count = total + Z, count + defined.to(Z.dtype)
    return pair_mean(total, count, tasks).cpu().double().numpy()
