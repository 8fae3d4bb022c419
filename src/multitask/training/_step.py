"""One micro-batch of the :class:`~multitask.training.Trainer`: the forward, each task's masked
loss and labelled count, the checks on what was read (one host sync), and
:func:`multitask.nn.mtl_backward`."""

from __future__ import annotations

import contextlib
import math
import warnings

import torch
from torch import Tensor

from multitask.nn import mtl_backward
from multitask.training._batches import SampledSource
from multitask.training._finite import Probe, check_probes, explain, first_suspect, probes
from multitask.training._guards import (
    check_absent_tasks,
    check_finite_losses,
    check_loss_floor,
    handles_absent_tasks,
)
from multitask.training._labels import presence
from multitask.training._setup import check_dtypes, check_outputs, check_targets, to_device

__all__ = ["MicroSteps"]


class MicroSteps:
    """Mixin of :class:`~multitask.training.Trainer`: ``_micro_step(parts)`` returns each
    task's loss (NaN where not trained) and ``mtl_backward``'s info, ``.grad`` accumulated.
    It reads the trainer's settings and fit state (``_src``, ``_labels``, ``device_``,
    ``_custom_loss``, ``_warned_unlabelled``) and its ``_where`` and ``_stopping``."""

    def _autocast(self):
        """The training forward's precision context (a no-op for ``"32"``)."""
        if self.precision == "32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_.type, dtype=torch.bfloat16)

    def _zero_loss(self, outputs: dict[str, Tensor]) -> Tensor:
        return sum(o.sum() for o in outputs.values()) * 0.0

    def _check_values(self, tasks, inputs, targets) -> list[Probe]:
        """NaN / inf inputs, and infinite targets of tasks with a custom loss (:mod:`._finite`):
        on the CPU now, before the forward; on an accelerator, their sums are returned for the
        step's host read."""
        custom = [t for t in tasks if t in self._custom_loss] if self._custom_loss else ()
        # a per-task loader's batch: say whose
        of = f" (the batch of task {tasks[0]!r})" if isinstance(self._src, SampledSource) else ""
        if self.device_.type != "cpu":
            return probes(inputs, targets, custom, of)
        suspect = first_suspect(inputs, targets, custom, of)  # (to_device put all on the CPU)
        if suspect is not None:
            with self._stopping():
                explain(suspect, self._where())
        return []

    def _losses(self, parts):
        """Per-task losses of one micro-step (zero, in the graph, for tasks not drawn),
        their labelled-entry counts, each drawn task's (prediction, target), the
        :class:`Probe` s of values to check once read, and each forward's
        ``model.representation`` (several: one batch per drawn task)."""
        losses: dict[str, Tensor] = {}
        counts: dict[str, Tensor] = {}
        seen: dict[str, tuple[Tensor, Tensor]] = {}
        later: list[Probe] = []
        reps: list[Tensor] = []
        for tasks, inputs, targets in parts:
            inputs, targets = to_device(inputs, self.device_), to_device(targets, self.device_)
            check_targets(targets, tasks, self.step_ + 1)
            later += self._check_values(tasks, inputs, targets)
            with self._autocast():  # the forward and the losses
                try:
                    outputs = self.model(inputs)
                except RuntimeError as e:  # a dtype mismatch: say so, not a matmul's message
                    check_dtypes(self.model, inputs, e)
                    raise
                check_outputs(outputs, self.tasks)
                rep = getattr(self.model, "representation", None)
                if isinstance(rep, Tensor):
                    reps.append(rep)
                for t in tasks:
                    loss, count = self.tasks[t].loss_and_count(outputs[t], targets[t])
                    losses[t] = loss if t not in losses else losses[t] + loss
                    counts[t] = count if t not in counts else counts[t] + count
                    seen[t] = (outputs[t], targets[t])
        zero = self._zero_loss(outputs)
        return {t: losses.get(t, zero) for t in self.tasks}, counts, seen, later, reps

    def _micro_step(self, parts):
        losses, counts, seen, later, reps = self._losses(parts)
        drawn = list(counts)
        stacked = torch.stack(
            [losses[t].detach() for t in drawn]
            + [counts[t] for t in drawn]
            + [p.total for p in later]
        )
        classes = {}  # of the tasks whose labels are in doubt: usually at the first step only
        if self._labels.pending:
            wanted = [t for t in drawn if self._labels.wants_classes(t)]
            classes = {t: presence(self.tasks[t], *seen[t]) for t in wanted}
            stacked = torch.cat([stacked, *classes.values()]) if classes else stacked
        read = stacked.tolist()  # one sync: losses, labelled counts, sums of device batches
        values = dict(zip(drawn, read[: len(drawn)], strict=True))
        n = 2 * len(drawn) + len(later)
        n_labelled = dict(zip(drawn, read[len(drawn) : 2 * len(drawn)], strict=True))
        labelled = {t for t, k in n_labelled.items() if k > 0}
        with self._stopping():
            if later:  # a NaN input explains a NaN loss: first
                check_probes(later, read[2 * len(drawn) : n], self._where())
            check_absent_tasks(self.balancer, drawn, list(self.tasks), self._where())
            check_finite_losses(values, seen, self.tasks, self._where())
            check_loss_floor(
                self.balancer, values, self.model.task_names, self._where(), present=labelled
            )
        if self._labels.pending:
            self._labels.observe_step(n_labelled, classes, read[n:])
        if len(labelled) < len(drawn):
            self._warn_unlabelled([t for t in drawn if t not in labelled])
        reg = self.model.regularization()
        extra = reg if isinstance(reg, Tensor) or reg != 0 else None
        if extra is not None:  # a gradient to apply even with no task trained (_run_epoch)
            self._regularized = True
        info = mtl_backward(
            losses,  # unscaled: the balancer sees this batch's losses (see average_grads)
            self.model,
            self.balancer,
            extra_loss=extra,
            use_representation=self.use_representation,
            # tasks not drawn or without a labelled entry: MGDA, CAGrad, GradVac run on the rest
            absent_tasks=[t for t in self.tasks if t not in labelled],
            # a balancer decides the weights itself (Task.weight: warned once, at construction)
            task_weights=None
            if self.balancer is not None
            else {t: float(task.weight) for t, task in self.tasks.items()},
            # several forwards: every one's representation, not only the last one's
            representation=reps if len(reps) > 1 else None,
        )
        # NaN: a task not drawn at this step, or drawn without a labelled entry (not trained)
        return [values[t] if t in labelled else math.nan for t in self.tasks], info

    def _check_labels(self) -> None:
        """A task whose data has been read once still without labels, or with one class."""
        done = self._src.read_once(self.epoch_, self._batch)
        if done:
            where = f"in the first pass over its training data (by step {self.step_ + 1})"
            with self._stopping():
                self._labels.check(done, where)

    def _warn_unlabelled(self, tasks: list[str]) -> None:
        """A drawn task without a labelled entry has loss 0 at this step, like a task a
        sampler did not draw (a balancer with ``drops_absent_rows`` runs on the other tasks); a
        balancer that is not defined then (:func:`._guards.handles_absent_tasks` False) is warned
        about once per ``fit`` (refusing it would stop a run whose labels are sparse only
        now and then)."""
        balancer = self.balancer
        if self._warned_unlabelled or handles_absent_tasks(balancer):
            return
        self._warned_unlabelled = True
        warnings.warn(
            f"the tasks {tasks} have no labelled entry {self._where()}: their loss is 0 at this "
            f"step, as for a task not drawn, and for {type(balancer).__name__} "
            f"{balancer.absent_tasks_reason}. Use larger batches, or a balancer that handles "
            "absent tasks (docs/training.md); warned once per fit",
            UserWarning,
            stacklevel=2,
        )
