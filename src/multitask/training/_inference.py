"""Evaluation and prediction over a DataLoader (eval mode, no gradients)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from multitask.training._batches import targets_at_hand
from multitask.training._finite import explain, first_suspect
from multitask.training._interrupt import iter_shielded
from multitask.training._setup import check_dtypes, check_outputs, to_device


def _split(batch) -> tuple[Any, Mapping | None]:
    """``(inputs, {task: target})`` -> both; anything else is inputs alone."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], Mapping):
        return batch[0], batch[1]
    return batch, None


def _cuda_devices(model: nn.Module, device: torch.device) -> list[int]:
    """The CUDA devices of the model's parameters and buffers and of ``device``."""
    found = {t.device.index for t in (*model.parameters(), *model.buffers()) if t.is_cuda}
    if device.type == "cuda":
        found.add(device.index if device.index is not None else torch.cuda.current_device())
    return sorted(i for i in found if i is not None)


def collect(model: nn.Module, tasks: Mapping[str, Any], loader, device: torch.device):
    """Predictions of every task, and (prediction, target) pairs of the batches that
    carry the task's target, as lists of CPU tensors per task; and the target keys that
    name no task. A NaN or infinite input is a ValueError naming it and its batch (as in
    training: :func:`._finite.explain`).

    torch's global RNG (and the model's CUDA devices') is left as found: iterating a
    DataLoader without its own generator draws its base seed from it, so an evaluation
    inside ``fit`` would change the later dropout masks, and ``trainer.evaluate`` the
    caller's random stream."""
    with torch.random.fork_rng(devices=_cuda_devices(model, torch.device(device))):
        return _collect(model, tasks, loader, device)


@torch.no_grad()
def _collect(model: nn.Module, tasks: Mapping[str, Any], loader, device: torch.device):
    """:func:`collect` without the RNG fork."""
    was_training = model.training
    model.eval()
    preds: dict[str, list[Tensor]] = {t: [] for t in tasks}
    pairs: dict[str, list[tuple[Tensor, Tensor]]] = {t: [] for t in tasks}
    others: set = set()  # target keys that name no task
    try:
        for i, batch in enumerate(iter_shielded(loader)):  # (workers shielded from SIGINT)
            inputs, target = _split(batch)
            if target is not None:
                others.update(k for k in target if k not in tasks)
            inputs = to_device(inputs, device)
            suspect = first_suspect(inputs, {}, ())  # as for training: one sum per tensor
            if suspect is not None:
                explain(suspect, f"in batch {i} of the data to evaluate or predict")
            try:
                out = model(inputs)
            except RuntimeError as e:
                check_dtypes(model, inputs, e)
                raise
            check_outputs(out, tasks)
            for t in tasks:
                pred = out[t].detach().cpu()
                if pred.ndim == 0:  # (torch.cat would fail later, naming neither)
                    raise ValueError(
                        f"batch {i} of the data to evaluate or predict: the output of task "
                        f"{t!r} is 0-d and needs a batch axis first (a .squeeze() in the head "
                        "drops it from a batch of one sample: use .squeeze(-1))"
                    )
                preds[t].append(pred)
                if target is not None and t in target:
                    pairs[t].append((pred, _target_tensor(t, target[t], i)))
    finally:
        model.train(was_training)
    if not preds[next(iter(tasks))]:
        raise ValueError("the loader yields no batch; give it at least one sample")
    return preds, pairs, others


def _target_tensor(task: str, target: Any, batch: int) -> Tensor:
    """A batch's target of ``task`` as a CPU tensor, or the TypeError training gives
    (naming the task; a list of tensors is what the default collate makes of a list per
    sample, and torch's own error named neither)."""
    if isinstance(target, Tensor):
        return target.cpu()
    kind = type(target).__name__
    where = f"batch {batch} of the data to evaluate: the target of task {task!r} is a {kind}"
    expected = "expected a Tensor (or a numpy array) with the batch on its first axis"
    if isinstance(target, (list, tuple)) and target and isinstance(target[0], Tensor):
        raise TypeError(
            f"{where}, {expected}; a {kind} of tensors is what the default collate makes of "
            f"a {kind} per sample: return torch.tensor(y) per sample"
        )
    try:
        return torch.as_tensor(target).cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{where}, {expected}; convert it with torch.tensor(y)") from e


def per_task_loaders(loaders: Mapping, tasks: Mapping[str, Any]) -> Mapping:
    """``loaders``, a ``{task: loader}`` dict (one dataset per task, as ``fit`` takes for
    training), checked: every key a task, every value something to iterate."""
    unknown = [t for t in loaders if t not in tasks]
    if unknown:
        raise ValueError(
            f"the dict of loaders names unknown tasks {unknown}; the tasks are {list(tasks)}"
        )
    for t, loader in loaders.items():
        if isinstance(loader, (Mapping, Tensor)) or not hasattr(loader, "__iter__"):
            raise TypeError(
                f"the loader of task {t!r} is a {type(loader).__name__}; give a DataLoader or "
                "an iterable of batches (inputs, {task: target})"
            )
    return loaders


def check_val_targets(tasks: Mapping[str, Any], loader) -> dict[str, Tensor]:
    """The validation targets that can be had without loading the data
    (:func:`targets_at_hand`), checked when ``fit`` starts with
    :meth:`~multitask.nn.Task.check_scorable`: data that the first evaluation would
    refuse (a binary task of one class under AUC, an invalid label) fails before any
    training, naming the task. Other loaders are checked by that first evaluation.
    Returns the targets found (flattened), by task."""
    reported = [t for t, task in tasks.items() if not getattr(task, "auxiliary", False)]
    if isinstance(loader, Mapping):
        found = {}
        for t, own in per_task_loaders(loader, tasks).items():
            if t in reported:
                found.update(targets_at_hand(own, [t]))
    else:
        found = targets_at_hand(loader, reported)
    for t, target in found.items():
        try:
            tasks[t].check_scorable(target)
        except ValueError as e:
            raise ValueError(
                f"the validation data cannot be scored (checked before training): {e}"
            ) from e
    return found


def evaluate(model, tasks, loader, device) -> dict[str, dict[str, float]]:
    """``{task: task.evaluate(pred, target)}`` for the non-auxiliary tasks with targets,
    each on the batches that carry its target; with a ``{task: loader}`` dict, each task on
    its own loader's batches."""
    if isinstance(loader, Mapping):
        pairs = {t: [] for t in tasks}
        for t, own in per_task_loaders(loader, tasks).items():
            pairs[t] = collect(model, tasks, own, device)[1][t]
            if not pairs[t] and not getattr(tasks[t], "auxiliary", False):
                raise ValueError(
                    f"the loader of task {t!r} yields no batch with a target for {t!r}; its "
                    "batches must be (inputs, {task: target}) with the task's own name"
                )
    else:
        _, pairs, others = collect(model, tasks, loader, device)
        unscored = [t for t in tasks if not pairs[t] and not getattr(tasks[t], "auxiliary", False)]
        if unscored and others:
            warnings.warn(
                f"tasks {unscored} have no target in the data to evaluate, which carries "
                f"targets named {sorted(map(str, others))}, no task of the model: is a name "
                f"misspelt? (tasks: {list(tasks)}); {unscored} are not scored",
                UserWarning,
                stacklevel=3,
            )
    out = {}
    for t, task in tasks.items():
        if getattr(task, "auxiliary", False) or not pairs[t]:
            continue
        batches = pairs[t]
        preds, targets = zip(*batches, strict=True)
        if not (_same_trailing(preds) and _same_trailing(targets)):  # lengths vary by batch
            batches = [task.entry_rows(p, y) for p, y in batches]
        pred, target = (torch.cat(parts) for parts in zip(*batches, strict=True))
        scores = task.evaluate(pred, target)
        out[t] = {k: float(v) for k, v in scores.items()}
    if not out:
        raise ValueError(
            f"no batch of the loader has a target for any reported task of {list(tasks)}; "
            "evaluate needs batches (inputs, {task: target})"
        )
    return out


def _same_trailing(parts: list[Tensor]) -> bool:
    """Whether the tensors agree beyond the batch axis (they can be concatenated)."""
    return all(p.shape[1:] == parts[0].shape[1:] for p in parts)


def _joined(parts: list[Tensor]) -> Tensor | list[Tensor]:
    """The batches' outputs concatenated; the list of them when their shapes differ beyond
    the batch axis (a dense task over inputs of varying size or length)."""
    return torch.cat(parts) if _same_trailing(parts) else parts


def predict(model, tasks, loader, device) -> dict[str, Tensor | list[Tensor]]:
    """``{task: outputs}`` concatenated over the loader, on CPU (a list of the batches'
    outputs where their shapes differ beyond the batch axis); with a ``{task: loader}``
    dict, each named task's outputs on its own loader."""
    if isinstance(loader, Mapping):
        own = per_task_loaders(loader, tasks)
        return {t: _joined(collect(model, tasks, own[t], device)[0][t]) for t in own}
    preds = collect(model, tasks, loader, device)[0]
    return {t: _joined(p) for t, p in preds.items()}
