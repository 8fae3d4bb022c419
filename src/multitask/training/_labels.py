"""Every trained task has a labelled training entry, and every binary or multiclass task at
least two classes among them: a clear error, raised as early as the data allows.

When the training targets can be had without loading the data (a list of batches, or a
dataset whose ``targets`` maps each task to all its targets), they are checked when ``fit``
starts. Otherwise the trainer counts, from the batches it trains on, each task's labelled
entries (read anyway with the losses) and the classes present (a few numbers added to the
same read), until the task is known to be fine, usually at its first batch; a task still in
doubt when its data has been read once is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from multitask.nn.tasks import not_ignored

__all__ = ["CLASSIFICATION", "LabelCheck", "classes_in", "presence"]

#: the task kinds that need two classes
CLASSIFICATION = ("binary", "multiclass")


def _labelled(task, y: Tensor) -> Tensor:
    return ~torch.isnan(y) if y.is_floating_point() else not_ignored(y, task.ignore_index)


def classes_in(task, y: Tensor) -> tuple[int, set[int]]:
    """Labelled entries of ``y`` (a task's targets, any shape) and the classes among them
    (binary: 1 for a target >= 0.5, as for soft labels, else 0)."""
    y = y.reshape(-1)
    labelled = y[_labelled(task, y)]
    if task.kind == "binary" and y.is_floating_point():
        found = (labelled >= 0.5).unique()
    elif task.kind == "binary":
        found = labelled[(labelled == 0) | (labelled == 1)].unique()
    elif task.kind == "multiclass":
        found = labelled[labelled >= 0].unique()
    else:
        found = labelled[:0]
    return labelled.numel(), {int(c) for c in found.tolist()}


def presence(task, pred: Tensor, y: Tensor) -> Tensor:
    """Entries of each class in one batch, on the batch's device with no host sync: shape
    ``(2,)`` for a binary task, ``(C,)`` for a multiclass one (``pred`` of shape ``(B, C,
    ...)``); float32, to join the losses in the step's host read."""
    y = y.reshape(-1)
    if task.kind == "binary":
        if y.is_floating_point():  # NaN is neither
            return torch.stack([(y < 0.5).sum(), (y >= 0.5).sum()]).float()
        labelled = not_ignored(y, task.ignore_index)
        return torch.stack([((y == 0) & labelled).sum(), ((y == 1) & labelled).sum()]).float()
    n_classes = pred.shape[1]
    valid = not_ignored(y, task.ignore_index)  # (before the cast: -100 is 156 in uint8)
    y = y.long()
    valid &= (y >= 0) & (y < n_classes)
    index = torch.where(valid, y, n_classes)  # the others counted in an extra bin
    counts = torch.zeros(n_classes + 1, dtype=torch.float32, device=y.device)
    return counts.index_add_(0, index, torch.ones_like(index, dtype=torch.float32))[:n_classes]


class LabelCheck:
    """What the trainer knows so far of each trained task's labels.

    Parameters
    ----------
    tasks : mapping str -> Task
    trained : sequence of str
        The tasks that have training data (a task without a loader is not checked).
    """

    def __init__(self, tasks: Mapping, trained: Sequence[str]):
        self.tasks = tasks
        self.labelled = {t: 0 for t in trained}
        self.classes = {t: set() for t in trained if tasks[t].kind in CLASSIFICATION}
        self.pending = set(trained)  # not yet known to be fine

    def wants_classes(self, task: str) -> bool:
        """Whether a batch's :func:`presence` of ``task`` is still of use."""
        return task in self.pending and task in self.classes

    def observe(self, task: str, labelled: float, classes: Iterable[int] = ()) -> None:
        """Some of ``task``'s targets: their labelled entries and the classes among them."""
        self.labelled[task] += int(labelled)
        if task in self.classes:
            self.classes[task].update(classes)
        if self.labelled[task] > 0 and len(self.classes.get(task, "ok")) >= 2:
            self.pending.discard(task)

    def observe_counts(self, task: str, labelled: float, counts: Sequence[float]) -> None:
        """One batch: its labelled entries of ``task`` and its :func:`presence`, read."""
        self.observe(task, labelled, [c for c, n in enumerate(counts) if n > 0])

    def observe_step(
        self, labelled: Mapping[str, float], presences: Mapping[str, Tensor], read: list[float]
    ) -> None:
        """One micro-step: each drawn task's labelled entries, and ``read``, the values of
        ``presences`` (the tasks' :func:`presence` tensors) read in their order."""
        at = 0
        for task, n in labelled.items():
            counts = ()
            if task in presences:
                counts, at = read[at : at + len(presences[task])], at + len(presences[task])
            if task in self.pending:
                self.observe_counts(task, n, counts)

    def check_targets(self, targets: Mapping[str, Tensor]) -> None:
        """All the training targets of some tasks (when ``fit`` starts): an error now."""
        for task, y in targets.items():
            if task in self.pending:
                self.labelled[task] = 0  # the whole data, not what a resumed run had seen
                self.classes.get(task, set()).clear()
                self.observe(task, *classes_in(self.tasks[task], y))
                self.check([task], "in the training data")

    def check(self, done: Iterable[str], where: str) -> None:
        """A ValueError for a task of ``done`` (its data read once) still in doubt."""
        for task in done:
            if task not in self.pending:
                continue
            t = self.tasks[task]
            n = self.labelled[task]
            if n == 0:
                raise ValueError(
                    f"task {task!r} has no labelled entry {where}: every target is NaN or "
                    f"ignore_index={t.ignore_index}, so nothing trains it; give it labels or "
                    "drop the task"
                )
            if len(self.classes[task]) != 1:  # no valid label: the loss guard names them
                self.pending.discard(task)
                continue
            (only,) = self.classes[task]
            what = str(only)
            if t.kind == "binary":
                what = {0: "0 (below 0.5)", 1: "1 (0.5 or more)"}[only]
            raise ValueError(
                f"task {task!r} ({t.kind}) has a single class among its {n} labelled targets "
                f"{where}: every one is {what}; a classification task needs at least two "
                "classes: check its labels (or the split), or drop the task"
            )

    def state_dict(self) -> dict:
        return {
            "labelled": dict(self.labelled),
            "classes": {t: sorted(c) for t, c in self.classes.items()},
            "pending": sorted(self.pending),
        }

    def load_state_dict(self, state: Mapping | None) -> None:
        """``None`` (a checkpoint from before this check): nothing known, nothing checked."""
        if state is None:
            self.pending = set()
            return
        self.labelled.update({t: int(n) for t, n in state["labelled"].items()})
        self.classes.update({t: set(c) for t, c in state["classes"].items()})
        self.pending = set(state["pending"]) & set(self.labelled)
