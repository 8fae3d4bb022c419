"""Helpers shared by the affinity measures: task order, batch losses, shared parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack

import torch
from torch import Tensor, nn

from multitask._params import check_names
from multitask.nn import Task
from multitask.training._setup import split_batch, to_device


def as_task_list(tasks: Sequence[Task] | Mapping[str, Task]) -> list[Task]:
    """The tasks as a list (a mapping gives its values): at least two, each a Task, each
    name once (a repeated task gave a repeated row and column)."""
    out = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
    bad = [t for t in out if not isinstance(t, Task)]
    if bad:
        raise TypeError(
            f"tasks must be multitask.nn.Task objects, got {bad!r}; e.g. Task('income', 'binary')"
        )
    if len(out) < 2:
        raise ValueError(
            f"task affinity needs at least two tasks, got {len(out)}; pass every task of the model"
        )
    check_names([t.name for t in out], "tasks", "task affinity")
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
    x, targets = split_batch(batch, "task affinity")
    missing = [t.name for t in tasks if t.name not in targets]
    if missing:
        raise KeyError(
            f"the batch has no target for tasks {missing} (it has {list(targets)}); give every "
            "task a target and mark unlabelled samples with NaN or ignore_index"
        )
    device = next(model.parameters()).device
    x = to_device(x, device)
    out = model(x) if params is None else torch.func.functional_call(model, params, (x,))
    pairs = [t.loss_and_count(out[t.name], to_device(targets[t.name], device)) for t in tasks]
    return torch.stack([loss.reshape(()) for loss, _ in pairs]), torch.stack([n for _, n in pairs])


def check_finite(losses: Tensor, counts: Tensor, tasks: Sequence[Task], where: str) -> None:
    """A clear error for a labelled task whose loss ``(n_tasks,)`` is NaN or infinite (it made
    every cosine of the batch NaN, and the lookahead dropped the batch without a word)."""
    bad = ((counts > 0) & ~torch.isfinite(losses)).nonzero().flatten().tolist()
    if bad:
        found = {tasks[i].name: float(losses[i].detach()) for i in bad}
        raise ValueError(
            f"{where}: the losses of tasks {found} are not finite; look for NaN or inf in the "
            "batch's inputs and in the model's parameters"
        )


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
    not own: ``model.representation`` (removed again if the model had none), the model's
    buffers (BatchNorm's running statistics, updated by every forward in training mode) and
    torch's random state (dropout draws).

    The block runs with autograd on: called under ``torch.no_grad()`` (or inference mode)
    the task gradients came out zero, and so did every affinity.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.had = hasattr(self.model, "representation")
        self.saved = getattr(self.model, "representation", None)
        self.buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        device = next(self.model.parameters()).device
        self.draws = RandomDraws(device)
        self.grad_modes = ExitStack()
        self.grad_modes.enter_context(torch.inference_mode(False))
        self.grad_modes.enter_context(torch.enable_grad())
        return self

    def __exit__(self, *exc):
        self.grad_modes.close()
        if self.had:
            self.model.representation = self.saved
        elif hasattr(self.model, "representation"):
            del self.model.representation
        with torch.no_grad():
            for b, saved in self.buffers:
                b.copy_(saved)
        self.draws.replay()
        return False
