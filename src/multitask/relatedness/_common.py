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


def batch_losses(model, tasks: Sequence[Task], batch, params=None) -> tuple[Tensor, Tensor]:
    """Loss vector ``(n_tasks,)`` of one ``(inputs, {task: target})`` batch, and the number
    of labelled entries of each task ``(n_tasks,)`` (a task without one has loss 0).

    With ``params`` (name -> Tensor), the forward runs through
    :func:`torch.func.functional_call`, so the model's parameters are not touched.
    """
    x, targets = batch
    missing = [t.name for t in tasks if t.name not in targets]
    if missing:
        raise KeyError(
            f"the batch has no target for tasks {missing} (it has {list(targets)}); give every "
            "task a target and mark unlabelled samples with NaN or ignore_index"
        )
    device = next(model.parameters()).device
    x = x.to(device)
    out = model(x) if params is None else torch.func.functional_call(model, params, (x,))
    pairs = [t.loss_and_count(out[t.name], targets[t.name].to(device)) for t in tasks]
    return torch.stack([loss.reshape(()) for loss, _ in pairs]), torch.stack([n for _, n in pairs])


def pair_mean(total: Tensor, count: Tensor, tasks: Sequence[Task]) -> Tensor:
    """``total / count`` per pair of tasks; a clear error for a pair never measured."""
    never = (count == 0).nonzero().tolist()
    if never:
        names = [(tasks[i].name, tasks[j].name) for i, j in never[:5]]
        raise ValueError(
            f"task pairs {names} were never measured: no batch labels both tasks (with a "
            "positive loss for the second); pass batches where every task has labels"
        )
    return total / count


class RandomDraws:
    """torch's random state on the CPU and the model's device, to replay the same draws
    (dropout masks) in every forward of one batch."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def replay(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def check_batches(batches: Iterable) -> list:
    """The batches as a list, at least one."""
    out = list(batches)
    if not out:
        raise ValueError("batches is empty; pass at least one (inputs, {task: target}) batch")
    return out


class keep_model_state:
    """Context manager restoring what a measure's forward passes change and the measure does
    not own: ``model.representation``, the model's buffers (BatchNorm's running statistics,
    updated by every forward in training mode) and torch's random state (dropout draws)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.had = hasattr(self.model, "representation")
        self.saved = getattr(self.model, "representation", None)
        self.buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        device = next(self.model.parameters()).device
        self.draws = RandomDraws(device)
        return self

    def __exit__(self, *exc):
        if self.had:
            self.model.representation = self.saved
        with torch.no_grad():
            for b, saved in self.buffers:
                b.copy_(saved)
        self.draws.replay()
        return False
