"""Evaluation and prediction over a DataLoader (eval mode, no gradients)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from multitask.training._interrupt import iter_shielded
from multitask.training._setup import check_dtypes, check_outputs, to_device


def _split(batch) -> tuple[Any, Mapping | None]:
    """``(inputs, {task: target})`` -> both; anything else is inputs alone."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], Mapping):
        return batch[0], batch[1]
    return batch, None


@torch.no_grad()
def collect(model: nn.Module, tasks: Mapping[str, Any], loader, device: torch.device):
    """Predictions of every task, and (prediction, target) pairs of the batches that
    carry the task's target, as lists of CPU tensors per task."""
    was_training = model.training
    model.eval()
    preds: dict[str, list[Tensor]] = {t: [] for t in tasks}
    pairs: dict[str, list[tuple[Tensor, Tensor]]] = {t: [] for t in tasks}
    try:
        for batch in iter_shielded(loader):  # (workers started shielded from SIGINT)
            inputs, target = _split(batch)
            inputs = to_device(inputs, device)
            try:
                out = model(inputs)
            except RuntimeError as e:
                check_dtypes(model, inputs, e)
                raise
            check_outputs(out, tasks)
            for t in tasks:
                pred = out[t].detach().cpu()
                preds[t].append(pred)
                if target is not None and t in target:
                    pairs[t].append((pred, torch.as_tensor(target[t]).cpu()))
    finally:
        model.train(was_training)
    if not preds[next(iter(tasks))]:
        raise ValueError("the loader yields no batch; give it at least one sample")
    return preds, pairs


def evaluate(model, tasks, loader, device) -> dict[str, dict[str, float]]:
    """``{task: task.evaluate(pred, target)}`` for the non-auxiliary tasks with targets,
    each on the batches that carry its target."""
    _, pairs = collect(model, tasks, loader, device)
    out = {}
    for t, task in tasks.items():
        if getattr(task, "auxiliary", False) or not pairs[t]:
            continue
        pred, target = (torch.cat(parts) for parts in zip(*pairs[t], strict=True))
        scores = task.evaluate(pred, target)
        out[t] = {k: float(v) for k, v in scores.items()}
    if not out:
        raise ValueError(
            f"no batch of the loader has a target for any reported task of {list(tasks)}; "
            "evaluate needs batches (inputs, {task: target})"
        )
    return out


def predict(model, tasks, loader, device) -> dict[str, Tensor]:
    """``{task: outputs}`` concatenated over the loader, on CPU."""
    preds, _ = collect(model, tasks, loader, device)
    return {t: torch.cat(p) for t, p in preds.items()}
