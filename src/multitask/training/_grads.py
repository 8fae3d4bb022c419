"""Gradient bookkeeping between ``mtl_backward`` and the optimizer step."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping

import torch

__all__ = ["average_grads", "hold_untrained_entries", "release_untrained"]


def average_grads(optimizer: torch.optim.Optimizer, window: int) -> None:
    """Divide the ``.grad`` summed over ``window`` micro-batches by ``window``.

    Scaling the gradients rather than the losses keeps every balancer call on
    one batch's own losses (a loss weighting's state and learned weights, an
    aggregator's Jacobian), including in an epoch's shorter last window.
    """
    if window == 1:
        return
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if grads:
        torch._foreach_div_(grads, float(window))


def release_untrained(model, losses: Mapping[str, float]) -> None:
    """``.grad = None`` on the own parameters of tasks not trained at this step
    whose gradient is exactly zero, so the optimizer leaves them alone.

    ``losses``: the step's mean loss per task, NaN for a task not trained (no
    micro-batch of the step had a labelled entry of it or drew it). Its
    parameters then got a zero gradient, and a zero gradient still moves them
    under momentum, Adam's moments or weight decay. A parameter with a non-zero
    gradient (a coupling penalty, another task's loss through it) or shared with
    a trained task is kept. One host sync, on steps with an untrained task only.
    """
    untrained = [t for t, v in losses.items() if math.isnan(v)]
    if not untrained:
        return
    trained = {
        id(p) for t, v in losses.items() if not math.isnan(v) for p in model.task_parameters(t)
    }
    params = [
        p
        for t in untrained
        for p in model.task_parameters(t)
        if p.grad is not None and id(p) not in trained
    ]
    if not params:
        return
    peaks = torch.stack(torch._foreach_norm([p.grad for p in params], math.inf)).tolist()
    for p, peak in zip(params, peaks, strict=True):
        if peak == 0.0:
            p.grad = None


@contextlib.contextmanager
def hold_untrained_entries(
    optimizer: torch.optim.Optimizer, balancer, losses: Mapping[str, float], task_names
) -> Iterator[None]:
    """Around the optimizer step: a loss weighting's per-task parameters (shape
    ``(n_tasks,)``: uncertainty's log-variances, IMTL-L's log-scales, GradNorm's weights) and
    their optimizer state (momentum, Adam's moments) keep, for the tasks not trained at this
    step (NaN in ``losses``), the values they had before it. Entry ``i`` is the task
    ``task_names[i]`` (the model's order, as :func:`~multitask.nn.mtl_backward` gives them).

    Their gradient is zero there, but momentum, Adam's moments and weight decay would still
    move them: a task absent at every other step (round robin) would have its log-variance
    driven by the other steps' momentum. :func:`release_untrained` does the same for whole
    parameters by dropping their gradient; these are entries of one parameter shared by all
    tasks, so they are put back after the step instead. One host copy of ``(n_absent,)``
    entries per parameter, on steps with an untrained task only.
    """
    absent = [i for i, t in enumerate(task_names) if math.isnan(losses.get(t, math.nan))]
    n_tasks = len(task_names)
    params = []
    if absent and balancer is not None:
        params = [
            p
            for p in balancer.parameters()
            if p.requires_grad and p.dim() == 1 and p.shape[0] == n_tasks
        ]
    if not params:
        yield
        return
    index = torch.tensor(absent, device=params[0].device)
    kept = []
    for p in params:
        state = optimizer.state.get(p, {})
        # (the step's counters and scalars are shared by all entries: left to the optimizer)
        names = [k for k, v in state.items() if torch.is_tensor(v) and v.shape == p.shape]
        kept.append((p, p.detach()[index].clone(), {k: state[k][index].clone() for k in names}))
    yield
    with torch.no_grad():
        for p, values, states in kept:
            p.index_copy_(0, index, values)
            state = optimizer.state.get(p, {})
            for k, v in states.items():
                state[k].index_copy_(0, index, v)
