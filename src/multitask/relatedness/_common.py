"""Helpers shared by the affinity measures: task order, batch losses, shared parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from multitask.nn import Task


def as_task_list(tasks: Sequence[Task] | Mapping[str, Task]) -> list[Task]:
    """The tasks as a list (a mapping gives its values), at least two of them."""
    out = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
    if len(out) < 2:
        raise ValueError(
            f"task affinity needs at least two tasks, got {len(out)}; pass every task of the model"
        )
    return out


def shared_named(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of the model's shared parameters that require a gradient."""
    ids = {id(p) for p in model.shared_parameters() if p.requires_grad}
    named = [(n, p) for n, p in model.named_parameters() if id(p) in ids]
    if not named:
        raise ValueError(
            f"{type(model).__name__}.shared_parameters() is empty: task affinity is measured "
            "on shared parameters; use a model that shares some"
        )
    return named


def batch_losses(model, tasks: Sequence[Task], batch, params=None) -> Tensor:
    """Loss vector ``(n_tasks,)`` of one ``(inputs, {task: target})`` batch.

    With ``params`` (name -> Tensor), the forward runs through
    :func:`torch.func.functional_call`, so the model's own tensors are not touched.
    """
    x, targets = batch
    device = next(model.parameters()).device
    x = x.to(device)
    out = model(x) if params is None else torch.func.functional_call(model, params, (x,))
    return torch.stack(
        [t.compute_loss(out[t.name], targets[t.name].to(device)).reshape(()) for t in tasks]
    )


def check_batches(batches: Iterable) -> list:
    """The batches as a list, at least one."""
    out = list(batches)
    if not out:
        raise ValueError("batches is empty; pass at least one (inputs, {task: target}) batch")
    return out


class keep_representation:
    """Context manager restoring ``model.representation`` (set by forward passes)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.had = hasattr(self.model, "representation")
        self.saved = getattr(self.model, "representation", None)
        return self

    def __exit__(self, *exc):
        if self.had:
            self.model.representation = self.saved
        return False
