"""Gradient bookkeeping between ``mtl_backward`` and the optimizer step."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

__all__ = ["average_grads", "release_untrained"]


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
