"""Helpers of the trainer: device, optimizer groups, batch checks and moves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from multitask._params import check_real

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA if available, else MPS, else CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor inside ``obj`` (tensor, dict, list, tuple) to ``device``.

    numpy arrays become tensors first (as a DataLoader's default collate does).
    """
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, np.ndarray):
        return torch.as_tensor(obj).to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def task_table(model: nn.Module, tasks) -> dict[str, Any]:
    """Tasks by name, in the model's task order; raises on any mismatch."""
    items = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
    if not items:
        raise ValueError("Trainer needs at least one Task; got none")
    bad = [t for t in items if not all(hasattr(t, a) for a in ("name", "loss_and_count"))]
    if bad:
        raise TypeError(
            f"tasks must be multitask.nn.Task objects, got {bad!r}; e.g. Task('income', 'binary')"
        )
    table = {t.name: t for t in items}
    if len(table) != len(items):
        raise ValueError(f"task names must be unique; got {[t.name for t in items]}")
    names = tuple(getattr(model, "task_names", ()) or ())
    if names:
        unknown = [n for n in names if n not in table]
        if unknown:
            raise ValueError(
                f"the model has heads for tasks {unknown} that are not among the Tasks "
                f"{list(table)}; pass a Task for each head or rename the heads"
            )
        missing = [n for n in table if n not in names]
        if missing:
            raise ValueError(f"Tasks {missing} have no head in the model (heads: {list(names)})")
        table = {n: table[n] for n in names}
    return table


def param_groups(
    model: nn.Module,
    tasks: Mapping[str, Any],
    lr: float,
    task_lr: Mapping[str, float] | None,
    balancer: nn.Module | None,
) -> list[dict]:
    """Optimizer groups: shared, one per task (its own lr), and the balancer's."""
    task_lr = dict(task_lr or {})
    unknown = set(task_lr) - set(tasks)
    if unknown:
        raise ValueError(f"task_lr names unknown tasks {sorted(unknown)}; tasks: {list(tasks)}")
    # finite and >= 0 (0 freezes a head): a negative rate trained a head by gradient
    # ascent, an infinite one failed at step 2, a string was read by float()
    task_lr = {t: check_real(v, f"task_lr[{t!r}]", "Trainer", low=0.0) for t, v in task_lr.items()}
    groups, seen = [], set()
    per_task = {}
    for name, task in tasks.items():
        params = [p for p in model.task_parameters(name) if id(p) not in seen]
        seen.update(id(p) for p in params)
        own = task_lr.get(name, task.lr if getattr(task, "lr", None) is not None else lr)
        per_task[name] = {"params": params, "lr": float(own), "name": f"task:{name}"}
    shared = [p for p in model.parameters() if id(p) not in seen]
    groups.append({"params": shared, "lr": float(lr), "name": "shared"})
    groups.extend(per_task.values())
    if balancer is not None:
        own = [p for p in balancer.parameters() if p.requires_grad]
        groups.append({"params": own, "lr": float(lr), "name": "balancer"})
    return [g for g in groups if g["params"]]


def build_optimizer(optimizer, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """``optimizer``: a name in :data:`OPTIMIZERS` or ``callable(groups) -> Optimizer``."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; use one of {sorted(OPTIMIZERS)}")
        return OPTIMIZERS[optimizer](groups, lr=lr)
    if callable(optimizer):
        return optimizer(groups)
    raise TypeError(f"optimizer must be a name or a callable, got {type(optimizer).__name__}")


def check_targets(targets: Any, tasks: Sequence[str], step: int) -> None:
    """Every task trained on this batch has a target, a tensor (after :func:`to_device`,
    which makes numpy arrays tensors): missing labels are masked, not absent."""
    if not isinstance(targets, Mapping):
        raise TypeError(
            f"step {step}: a batch must be (inputs, {{task: target}}), got targets of type "
            f"{type(targets).__name__}"
        )
    missing = [t for t in tasks if t not in targets]
    if missing:
        raise ValueError(
            f"step {step}: the batch has no target for tasks {missing} (it has {list(targets)}); "
            "give every task a target and mark unlabelled samples with NaN (regression, "
            "binary) or ignore_index (classes)"
        )
    for t in tasks:
        if not isinstance(targets[t], Tensor):
            _not_a_tensor(t, targets[t], step)


def _not_a_tensor(task: str, target: Any, step: int) -> None:
    kind = type(target).__name__
    hint = "convert it with torch.tensor(y)"
    if isinstance(target, (list, tuple)) and target and isinstance(target[0], Tensor):
        hint = (  # what DataLoader's default collate makes of a list per sample
            f"a {kind} of tensors is what the default collate makes of a {kind} per sample: "
            "return torch.tensor(y) per sample"
        )
    raise TypeError(
        f"step {step}: the target of task {task!r} is a {kind}, expected a Tensor (or a numpy "
        f"array) with the batch on its first axis; {hint}"
    )


def split_batch(batch: Any, where: str) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a training batch, or a clear error."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        what = f"a {type(batch).__name__}" + (
            f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
        )
        raise TypeError(
            f"{where}: a training batch must be a pair (inputs, {{task: target}}), got "
            f"{what}; make the dataset return (x, {{task: y}}) items"
        )
    return batch[0], batch[1]


def check_dtypes(model: nn.Module, inputs: Any, error: Exception) -> None:
    """After ``model(inputs)`` raised ``error``: a clear TypeError if the floating
    inputs and the model's floating parameters differ in dtype (else nothing)."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    found = {t.dtype for t in _tensors(inputs) if t.is_floating_point()}
    if dtype is not None and found and found != {dtype}:
        raise TypeError(
            f"the batch's inputs are {sorted(map(str, found))} but the model's parameters are "
            f"{dtype}; cast one to the other (model.to({dtype!s}) or x.to(...)) before fit"
        ) from error


def _tensors(obj: Any):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def check_outputs(outputs: Any, tasks: Mapping[str, Any]) -> None:
    """The model's output dict names exactly the known tasks."""
    if not isinstance(outputs, Mapping):
        raise TypeError(
            f"model.forward must return dict[task, Tensor], got {type(outputs).__name__}"
        )
    unknown = [t for t in outputs if t not in tasks]
    if unknown:
        raise ValueError(
            f"the model returned heads {unknown} that name no known task (tasks: {list(tasks)}); "
            "add a Task for each head or rename the heads"
        )
    missing = [t for t in tasks if t not in outputs]
    if missing:
        raise ValueError(f"the model returned no prediction for tasks {missing}")
