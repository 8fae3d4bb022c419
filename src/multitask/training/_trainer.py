"""The multi-task training loop: settings, setup, epochs and optimizer steps, model selection.

A micro-batch's forward, losses, checks and backward are in :mod:`._step`; the state, the
checkpoints and Ctrl-C in :mod:`._checkpointing`."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from multitask._params import check_int
from multitask.training._batches import SampledSource, SingleSource
from multitask.training._checkpointing import Checkpointing
from multitask.training._grads import average_grads, hold_untrained_entries, release_untrained
from multitask.training._guards import (
    check_absent_tasks,
    check_task_weights,
    handles_absent_tasks,
)
from multitask.training._inference import check_val_targets, evaluate, predict
from multitask.training._labels import LabelCheck
from multitask.training._schedule import (
    build_scheduler,
    check_checkpointable,
    check_clip,
    check_schedule,
    clip_gradients,
)
from multitask.training._selection import ModelSelector
from multitask.training._setup import (
    build_optimizer,
    param_groups,
    resolve_device,
    task_table,
)
from multitask.training._step import MicroSteps
from multitask.training.callbacks import (
    Callback,
    CSVLogger,
    History,
    ProgressBar,
    StepRecord,
    TensorBoardLogger,
)
from multitask.training.checkpoint import get_rng_state
from multitask.training.samplers import TaskSampler, make_sampler

#: the ``precision`` values :class:`Trainer` accepts
PRECISIONS = ("32", "bf16-mixed")

__all__ = ["Trainer"]


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Column means over the non-NaN entries (NaN: task not trained); NaN if none."""
    seen = ~np.isnan(a)
    total = np.where(seen, a, 0.0).sum(axis=0)
    count = seen.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class Trainer(MicroSteps, Checkpointing):
    """Train a :class:`~multitask.nn.architectures.MultiTaskModule` on several tasks.

    Each micro-batch: forward, per-task masked losses and labelled counts
    (``Task.loss_and_count``, read in one host sync: a non-finite loss stops the
    run), :func:`multitask.nn.mtl_backward` with the balancer and the
    architecture's ``regularization()``. Each optimizer step, after
    ``grad_accumulation`` micro-batches: ``.grad`` divided by their number, the
    step's record (non-finite balancer weights stop the run), optimizer step.
    The trainer calls the balancer only through :func:`mtl_backward` and knows
    no method by name.

    Parameters
    ----------
    model : MultiTaskModule
        ``forward(x) -> dict[task, Tensor]``, ``task_parameters(task)``.
    tasks : sequence of Task or dict str -> Task
        One per head; auxiliary tasks are trained but not reported.
    balancer : LossWeighting, GradientAggregator or None
        None: the plain sum of ``task.weight * loss`` (with a balancer,
        ``Task.weight`` is ignored, with a warning).
    optimizer : {"adam", "adamw", "sgd"} or callable
        A callable receives the parameter groups and returns an optimizer.
    lr : float
        Learning rate of the shared parameters (and the default of every group).
    task_lr : dict str -> float, optional
        Learning rate of each task's own parameters (else ``Task.lr``, else ``lr``).
    max_epochs, max_steps : int
        Stop after whichever comes first (``max_steps``: optimizer steps).
    grad_accumulation : int
        Micro-batches per optimizer step. The balancer sees each micro-batch's
        own losses and the summed gradient is divided by their number, so for
        any weighting linear in the losses it equals one step on the larger
        batch (when the micro-batches are equally large and labelled).
    device : str or torch.device
        ``"auto"``: CUDA, else MPS, else CPU.
    seed : int
        Seeds python, numpy and torch at the start of a fresh run, and the
        batch order (epoch ``e`` is shuffled from ``(seed, e)``).
    callbacks : sequence of Callback
        They receive :class:`StepRecord` s, never the trainer.
    checkpoint_dir : path, optional
        Where ``last.pt`` is written (atomically) every ``checkpoint_every``
        steps, at the end of ``fit``, and when Ctrl-C stops it (see ``fit``).
    checkpoint_every : int, optional
        Optimizer steps between checkpoints (needs ``checkpoint_dir``). None:
        only at the end of ``fit``, on Ctrl-C and before a failed evaluation.
    early_stopping : int, optional
        Patience, in evaluations (on ``val``: one per epoch, or per ``val_every``).
    val_every : int, optional
        Evaluate on ``val`` every this many optimizer steps, and after the last
        step when it is not one of them (the final state is a candidate of model
        selection), instead of after each epoch. For epochs too long to wait for.
    monitor : "delta" or (task, metric)
        Validation score of model selection (see :class:`ModelSelector`). With
        ``val``, the best state is restored at the end of ``fit``. A monitor
        naming an unknown or auxiliary task, or a metric the task does not
        report or whose direction is unknown, is an error before training.
    higher_is_better : mapping str -> bool, optional
        Direction of the metrics a ``Task`` computes with its own callables
        (names outside :data:`multitask.metrics.HIGHER_IS_BETTER`).
    progress : bool
        tqdm bar with per-task losses, on rank 0 and only when stderr (where it writes) is a TTY.
    log_csv, tensorboard_dir : path, optional
        Add a :class:`CSVLogger` / :class:`TensorBoardLogger`.
    use_representation : bool or None, default=None
        Passed to ``mtl_backward``: True for MGDA-UB-style balancing on the shared
        representation, False for the shared parameters, None for the aggregator's own
        placement (GradDrop: the representation).
    sampler : TaskSampler or str
        Combines a dict ``task -> DataLoader`` given to ``fit``: a sampler, or
        one of ``"round_robin"``, ``"proportional"``, ``"temperature"``
        (built from the loaders' sizes in batches; ``"periodic"`` needs its
        periods: pass a ``PeriodicSampler``). A task not drawn at a step gets a zero
        loss; MGDA, CAGrad and GradVac run on the drawn tasks' rows alone, and the stateful
        loss weightings their step on the drawn tasks (``drops_absent_rows``); a balancer of
        your own that is not defined then is refused, with the reason, before the first step
        (docs/training.md).
    precision : {"32", "bf16-mixed"}, default="32"
        ``"bf16-mixed"``: the training forward and losses under
        ``torch.autocast(dtype=torch.bfloat16)`` on the model's device (matrix
        products in bfloat16; parameters, gradients, the balancer and the
        optimizer in float32; evaluation and prediction in full precision).
        float16 mixed precision is not offered: it needs a loss scaler, and the
        output of an aggregator such as Nash-MTL (weights ``~ 1 / ||g_t||``) does
        not scale with the losses, so unscaling the gradients afterwards would
        be wrong.
    scheduler : {"constant", "linear", "cosine"}, callable or None, default=None
        Learning-rate schedule. A name multiplies every parameter group's own
        rate (per-task rates keep their ratios) by a factor stepped once per
        optimizer step over the run's ``total`` steps (``max_epochs`` epochs,
        or ``max_steps``): after ``warmup_steps`` it is 1, ``1 - p`` or
        ``(1 + cos(pi p)) / 2`` (Loshchilov & Hutter, ICLR 2017, eq. 5 with
        ``eta_min = 0``), ``p`` the fraction of the post-warmup steps done. A
        callable ``optimizer -> scheduler`` (``torch.optim.lr_scheduler``) is
        stepped per ``scheduler_interval``; a ``ReduceLROnPlateau`` (built with
        ``mode="max"``) is stepped after each evaluation with the model-selection
        score of ``monitor`` (needs ``val``). Its state is in the checkpoint.
    scheduler_interval : {"step", "epoch"}, default="step"
        When a callable's scheduler steps: after each optimizer step, or at the
        end of each epoch.
    warmup_steps : int, default=0
        Linear warmup of a named schedule (``None`` with a warmup: constant after
        it): the rate at step ``k < warmup_steps`` is ``(k + 1) / warmup_steps``
        times the group's rate.
    clip_grad_norm : float, optional
        Scale the model's gradients (after the balancer and the accumulation
        average, before the optimizer step) so that their joint L2 norm is at
        most this (:func:`torch.nn.utils.clip_grad_norm_`). A balancer's own
        parameters are not clipped. The norm before clipping is in each step's
        record (``StepRecord.grad_norm``: the CSV and TensorBoard logs);
        ``math.inf`` records it without clipping.

    Attributes
    ----------
    history_ : History
        Step and evaluation records of the last ``fit``.
    step_, epoch_ : int
        Optimizer steps and epochs done.
    best_step_ : int
        Step of the restored best state (-1 without validation data).
    scheduler_ : LRScheduler or ReduceLROnPlateau or None
        The learning-rate scheduler of the last ``fit``.

    Examples
    --------
    A regression and a binary task on a shared trunk, trained on a list of batches:

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn import Task
    >>> from multitask.nn.aggregation import UPGrad
    >>> from multitask.nn.architectures import HardSharing
    >>> from multitask.training import Trainer
    >>> _ = torch.manual_seed(0)
    >>> X = torch.randn(64, 3)
    >>> y = X @ torch.tensor([1.0, -2.0, 0.5])
    >>> batches = [
    ...     (X[i : i + 16], {"y": y[i : i + 16], "c": (y[i : i + 16] > 0).float()})
    ...     for i in range(0, 64, 16)
    ... ]
    >>> trunk = nn.Sequential(nn.Linear(3, 16), nn.ReLU())
    >>> model = HardSharing(trunk, {"y": nn.Linear(16, 1), "c": nn.Linear(16, 1)})
    >>> tasks = [Task("y"), Task("c", kind="binary")]
    >>> trainer = Trainer(
    ...     model, tasks, UPGrad(), lr=0.01, max_epochs=5, device="cpu", progress=False
    ... )
    >>> trainer.fit(batches).step_  # 4 batches an epoch, 5 epochs
    20
    >>> curve = trainer.history_.losses()  # {task: [loss at step 1, 2, ...]}
    >>> curve["y"][-1] < curve["y"][0] and curve["c"][-1] < curve["c"][0]
    True
    >>> scores = trainer.evaluate(batches)  # {task: {metric: value}}
    >>> {task: sorted(metrics) for task, metrics in scores.items()}
    {'y': ['mae', 'mse'], 'c': ['accuracy', 'auc', 'f1']}
    >>> scores["c"]["auc"] > 0.9
    True
    >>> out = trainer.predict([X[:5]])  # batches of inputs, or (inputs, targets) pairs
    >>> {task: tuple(pred.shape) for task, pred in out.items()}
    {'y': (5, 1), 'c': (5, 1)}
    """

    def __init__(
        self,
        model: nn.Module,
        tasks,
        balancer: nn.Module | None = None,
        *,
        optimizer="adam",
        lr: float = 1e-3,
        task_lr: Mapping[str, float] | None = None,
        max_epochs: int = 10,
        max_steps: int | None = None,
        grad_accumulation: int = 1,
        device="auto",
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        early_stopping: int | None = None,
        val_every: int | None = None,
        monitor="delta",
        progress: bool = True,
        log_csv: str | Path | None = None,
        tensorboard_dir: str | Path | None = None,
        use_representation: bool | None = None,
        sampler: TaskSampler | str = "round_robin",
        higher_is_better: Mapping[str, bool] | None = None,
        precision: str = "32",
        scheduler=None,
        scheduler_interval: str = "step",
        warmup_steps: int = 0,
        clip_grad_norm: float | None = None,
    ):
        check_int(warmup_steps, "warmup_steps", "Trainer", low=0)
        check_schedule(scheduler, scheduler_interval, warmup_steps)
        check_clip(clip_grad_norm)
        if precision not in PRECISIONS:
            hint = " (float16 needs a loss scaler; see the docstring)" if "16" in precision else ""
            raise ValueError(f"precision={precision!r}: use one of {PRECISIONS}{hint}")
        check_int(grad_accumulation, "grad_accumulation", "Trainer", low=1)
        check_int(max_epochs, "max_epochs", "Trainer", low=0)
        if max_steps is not None:
            check_int(max_steps, "max_steps", "Trainer", low=0)
        if early_stopping is not None:  # a patience in evaluations (1.5 acted as 2)
            check_int(early_stopping, "early_stopping", "Trainer", low=1)
        if val_every is not None:
            check_int(val_every, "val_every", "Trainer", low=1)
        if checkpoint_every is not None:
            check_int(checkpoint_every, "checkpoint_every", "Trainer", low=1)
            if checkpoint_dir is None:
                raise ValueError("checkpoint_every needs a checkpoint_dir to write to")
        self.model = model
        self.tasks = task_table(model, tasks)
        weighted = {t: task.weight for t, task in self.tasks.items() if task.weight != 1.0}
        if balancer is not None and weighted:
            warnings.warn(
                f"Task.weight {weighted} is ignored with a balancer (it weights the plain sum "
                "of losses only); give the balancer the weights instead, e.g. "
                "StaticWeighting, or drop the balancer",
                UserWarning,
                stacklevel=2,
            )
        self.balancer = balancer
        self.optimizer = optimizer
        self.lr = lr
        self.task_lr = task_lr
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.grad_accumulation = int(grad_accumulation)
        self.device = device
        self.seed = seed
        self.callbacks = tuple(callbacks)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.early_stopping = early_stopping
        self.val_every = val_every
        self.monitor = monitor
        self.progress = progress
        self.log_csv = log_csv
        self.tensorboard_dir = tensorboard_dir
        self.use_representation = use_representation
        self.sampler = sampler
        self.precision = precision
        self.higher_is_better = higher_is_better
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.warmup_steps = int(warmup_steps)
        self.clip_grad_norm = clip_grad_norm

    # ------------------------------------------------------------------ setup
    def _source(self, train):
        if not isinstance(train, Mapping):
            return SingleSource(train, tuple(self.tasks), self.seed)
        unknown = set(train) - set(self.tasks)
        if unknown:
            raise ValueError(f"training loaders for unknown tasks {sorted(unknown)}")
        untrained = [t for t in self.tasks if t not in train]
        if untrained:
            warnings.warn(
                f"tasks {untrained} have no training DataLoader: their heads are never trained",
                UserWarning,
                stacklevel=4,
            )
        sampler = self.sampler
        if isinstance(sampler, str):
            sampler = make_sampler(sampler, {t: len(dl) for t, dl in train.items()}, self.seed)
        else:  # a fresh run starts the draws at step 0, whatever an earlier fit left
            sampler = copy.deepcopy(sampler)
            sampler.load_state_dict({"step": 0})
        self._check_sampler(sampler, sum(len(dl) for dl in train.values()))
        return SampledSource(train, sampler, self.seed)

    def _check_sampler(self, sampler: TaskSampler, epoch: int) -> None:
        """Before the first step: the draws of a sampler of one's own in the first epoch
        (``epoch`` steps, at most 10,000, on a copy: a draw is a function of the step) are
        valid (``next`` checks each with :meth:`TaskSampler.checked_draw`, later ones as they
        come); a balancer that is not defined on a step training only some of the tasks
        (:func:`._guards.check_absent_tasks`) is refused under a sampler that draws only some
        (or that has tasks without a loader). A sampler that cannot say
        (``draws_every_task`` None) is checked at every step instead."""
        kind, library = type(sampler), TaskSampler.__module__
        if kind.draw.__module__ != library or kind.next.__module__ != library:
            probe = copy.deepcopy(sampler)  # (the library's own draws are valid by design)
            for _ in range(min(epoch, 10_000)):
                probe.next()
        if handles_absent_tasks(self.balancer):
            return  # (no draws to look through)
        drawn = None
        if set(sampler.tasks) != set(self.tasks):
            drawn = sampler.tasks
        elif sampler.draws_every_task is False:  # its first partial draw, for the message
            draws = (sampler.draw(s) for s in range(10_000))
            drawn = next((d for d in draws if d and set(d) != set(sampler.tasks)), None)
        if drawn is not None:
            check_absent_tasks(self.balancer, drawn, list(self.tasks), f"with {sampler!r}")

    def _setup(self, train, val):
        self.device_ = resolve_device(self.device)
        self.model.to(self.device_)
        if self.balancer is not None:
            self.balancer.to(self.device_)
        groups = param_groups(self.model, self.tasks, self.lr, self.task_lr, self.balancer)
        self.optimizer_ = build_optimizer(self.optimizer, groups, self.lr)
        self._src = self._source(train)
        self.scheduler_ = build_scheduler(
            self.scheduler, self.optimizer_, self._total_steps(), self.warmup_steps, val is not None
        )
        if self.checkpoint_dir is not None:
            check_checkpointable(self.scheduler_)
        self._labels = LabelCheck(self.tasks, self._src.trained)
        self._selector = ModelSelector(self.monitor, self.early_stopping, self.higher_is_better)
        if val is not None:
            found = check_val_targets(self.tasks, val)  # (a dict of loaders: its keys too)
            self._selector.check_tasks(self.tasks, found)
            self._selector.check_labelled(self.tasks, val, found)
            if isinstance(val, Mapping) and self.monitor != "delta" and self.monitor[0] not in val:
                raise ValueError(
                    f"monitor {self.monitor}: the validation dict has no loader for task "
                    f"{self.monitor[0]!r} (it has {list(val)}); give it one, or monitor a task "
                    "it scores"
                )
        else:
            ignored = [k for k in ("early_stopping", "val_every") if getattr(self, k) is not None]
            if ignored:
                warnings.warn(
                    f"{' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored "
                    "without validation data: pass val to fit",
                    UserWarning,
                    stacklevel=3,
                )
        self._val = val
        # what an interrupted step left in .grad (a stopped accumulation window, a step a
        # guard refused) would be added to the first step of this fit
        self.model.zero_grad(set_to_none=True)
        if self.balancer is not None:
            self.balancer.zero_grad(set_to_none=True)
        self.history_ = History()
        self._callbacks = [self.history_, *self.callbacks]
        if self.log_csv is not None:
            self._callbacks.append(CSVLogger(self.log_csv))
        if self.tensorboard_dir is not None:
            self._callbacks.append(TensorBoardLogger(self.tensorboard_dir))
        self.step_, self.epoch_, self._batch = 0, 0, 0
        self._warned_unlabelled = False
        # an infinite target makes a default loss non-finite (the loss guard names it); a
        # custom loss may hide it (a clamp), so those tasks' targets are checked themselves
        self._custom_loss = {t for t, task in self.tasks.items() if task.loss is not None}

    def _seed_everything(self) -> None:
        random.seed(self.seed)
        np.random.seed(self.seed)  # noqa: NPY002 - seeds user code's global draws
        torch.manual_seed(self.seed)

    def _record(self, losses: list[list[float]], infos: list) -> StepRecord:
        """The step's record: each task's loss and weight averaged over the micro-batches
        of the window that trained it (a task trained by none: its last weight, 0 for an
        absent task). A non-finite weight of any micro-batch is kept as NaN, for
        :func:`check_task_weights` to refuse before the update."""
        losses = np.asarray(losses, dtype=float)
        mean = _nanmean(losses)
        weights = None
        given = [i.weights for i in infos if i.weights is not None]
        if len(given) == len(infos) and given:  # (one host read for the whole window)
            rows = np.asarray(torch.stack(given).tolist(), dtype=float)
            trained = _nanmean(np.where(np.isnan(losses), np.nan, rows))
            avg = np.where(np.isnan(trained), rows[-1], trained)
            avg = np.where(np.isfinite(rows).all(axis=0), avg, np.nan)
            weights = dict(zip(self.tasks, avg.tolist(), strict=True))
        lrs = tuple(float(g["lr"]) for g in self.optimizer_.param_groups)
        losses_ = dict(zip(self.tasks, mean.tolist(), strict=True))
        return StepRecord(self.epoch_, self.step_ + 1, losses_, weights, lrs)  # step being taken

    # ------------------------------------------------------------------- loop
    def fit(self, train, val=None, *, resume: bool | str | Path = False) -> Trainer:
        """Train on ``train``; select the model on ``val`` when given.

        Parameters
        ----------
        train : DataLoader, list of batches, or dict str -> DataLoader
            Batches ``(inputs, {task: target})``. A dict (one dataset per task)
            is combined by the ``sampler``.
        val : DataLoader or dict of str -> DataLoader, optional
            Evaluated (a dict: each task on its own loader) at the end of every epoch
            (model selection, early stopping), or every ``val_every`` steps, and once more
            after the last step when that was not evaluated (``max_steps`` inside an
            epoch): the final state is a candidate too.
        resume : bool or path
            True: continue from ``checkpoint_dir/last.pt`` if it exists; a path:
            continue from that checkpoint.

        Returns
        -------
        self

        Raises
        ------
        KeyboardInterrupt
            After a Ctrl-C (SIGINT, in the main thread of a single process): at the end of
            the optimizer step (or epoch evaluation) under way, once the checkpoint is
            written, naming it and the step, so that ``resume=True`` continues exactly. A
            second Ctrl-C raises at once (docs/training.md, "Ctrl-C").
        """
        self._setup(train, val)
        self._seed_everything()
        if self.balancer is not None:
            self.balancer.reset()  # a fresh run forgets the state of an earlier fit
        self._resume(resume)
        # a task without labels, or a classification task with one class: now if its
        # targets are at hand, else once the first pass over its data has read them
        self._labels.check_targets(self._src.whole_targets())
        start = StepRecord(self.epoch_, self.step_, {})
        for cb in self._callbacks:
            hook = getattr(cb, "on_fit_start", None)  # absent from pre-existing duck-typed ones
            if hook is not None:
                hook(start)
        bar = self._progress_bar()
        if bar is not None:
            self._callbacks.append(bar)
        with self._interruptible():  # Ctrl-C: stop at the next step, checkpointed
            try:
                stop = self._stop_by_steps() or self._selector.stopped
                while not stop and self.epoch_ < self.max_epochs:
                    stop = self._run_epoch()
                    if self._batch >= len(self._src):
                        if self.val_every is None:  # (a failure is checkpointed before it)
                            stop = self._validate(self.epoch_) or stop
                        self.epoch_, self._batch = self.epoch_ + 1, 0
                        if self._steps_per("epoch"):
                            self._step_at_epoch_end()
                        self._stop_if_interrupted()
            finally:
                if bar is not None:
                    bar.close()
            if self._final_validation_due():  # (in the epoch just ended, or the one under way)
                self._validate(self.epoch_ - 1 if self._batch == 0 else self.epoch_)
            if self.checkpoint_path is None:  # (_save checks them before writing)
                self._check_parameters()  # no silently corrupted model
            self._save()
            self._finish(val)
            if self._interrupt.requested:  # too late to stop early: never swallow a Ctrl-C
                raise KeyboardInterrupt(
                    f"fit interrupted (SIGINT) as it finished, after step {self.step_}; "
                    "the run is complete (and checkpointed, with a checkpoint_dir)"
                )
        return self

    def _total_steps(self) -> int:
        """Optimizer steps of the whole run (``max_epochs`` epochs, or ``max_steps``)."""
        total = math.ceil(len(self._src) / self.grad_accumulation) * self.max_epochs
        return total if self.max_steps is None else min(total, self.max_steps)

    def _steps_per(self, interval: str) -> bool:
        """Whether the scheduler steps now: at each optimizer step (named schedules, and a
        callable's with ``scheduler_interval="step"``) or at each epoch's end. A
        ReduceLROnPlateau steps after each evaluation instead (``_validate``)."""
        sched = self.scheduler_
        if sched is None or isinstance(sched, ReduceLROnPlateau):
            return False
        return interval == (self.scheduler_interval if callable(self.scheduler) else "step")

    def _step_at_epoch_end(self) -> None:
        """An epoch scheduler's step. A run resumed from a checkpoint written at the end of an
        epoch steps it before this process has taken an optimizer step: torch then warns of a
        scheduler stepped before its optimizer, which here is not so (the run that wrote the
        checkpoint took them)."""
        self._step_scheduler(quiet=True)

    def _step_scheduler(self, quiet: bool) -> None:
        """A scheduler's step; ``quiet``: without torch's warning of a scheduler stepped before
        its optimizer (after a first step that updated nothing, no task trained: the schedule
        follows the step count, skipped updates included; or at a resumed epoch's end)."""
        if not quiet:
            self.scheduler_.step()
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"))
            self.scheduler_.step()

    def _stop_by_steps(self) -> bool:
        return self.max_steps is not None and self.step_ >= self.max_steps

    def _run_epoch(self) -> bool:
        n = len(self._src)
        if self._evaluation_pending() and (self._validate(self.epoch_) or self._stop_by_steps()):
            return True
        it = self._src.iterate(self.epoch_, self._batch)
        while self._batch < n:
            window = min(self.grad_accumulation, n - self._batch)
            self.model.train()
            losses, infos = [], []
            self._regularized = False  # (set by a micro-step with a regularization term)
            for k in range(window):
                parts = self._next_batch(it, first=k == 0)
                values, info = self._micro_step(parts)
                self._batch += 1
                losses.append(values)
                infos.append(info)
            if self._labels.pending:
                self._check_labels()
            average_grads(self.optimizer_, window)
            record = self._record(losses, infos)  # reads the weights: before the update
            with self._stopping():
                check_task_weights(self.balancer, record.weights, record.losses, self._where())
            release_untrained(self.model, record.losses)
            if self.clip_grad_norm is not None:
                norm = clip_gradients(self.model.parameters(), self.clip_grad_norm)
                record = dataclasses.replace(record, grad_norm=float(norm))
            names = self.model.task_names
            # no task trained by the whole window (none drawn or labelled) and no regularization
            # term: nothing to learn, but Adam's moments (momentum, weight decay) would still
            # move the shared parameters; the step is counted (position, schedule, records)
            # with no update
            update = self._regularized or any(not math.isnan(v) for v in record.losses.values())
            if update:
                with hold_untrained_entries(self.optimizer_, self.balancer, record.losses, names):
                    self.optimizer_.step()
            self.optimizer_.zero_grad(set_to_none=True)
            self.step_ += 1
            if self._steps_per("step"):
                self._step_scheduler(quiet=not update)
            for cb in self._callbacks:
                cb.on_step(record)
            stop = self._validation_due() and self._validate(self.epoch_)
            self._stop_if_interrupted()  # (writes the checkpoint)
            if self.checkpoint_every and self.step_ % self.checkpoint_every == 0:
                self._save()
            if stop or self._stop_by_steps():
                return True
        return False

    def _validation_due(self) -> bool:
        """With ``val_every``: after every ``val_every``-th optimizer step."""
        every = self.val_every
        return every is not None and self._val is not None and self.step_ % every == 0

    def _final_validation_due(self) -> bool:
        """After the last step when it was not evaluated (``val_every`` does not divide it, or
        ``max_steps`` ended the run inside an epoch): its state is then a candidate of model
        selection too. Never twice: the selector's ``last_step`` is in the checkpoint, so a
        finished run resumed evaluates nothing again."""
        if self._val is None or self.step_ == 0:
            return False
        return self._selector.last_step != self.step_

    def _next_batch(self, it, first: bool):
        """The next micro-batch. A terminal's Ctrl-C reaches the DataLoader's workers too, and
        workers started with ``spawn`` or ``forkserver`` (they do not inherit the trainer's
        handler) die of it: their loader then raises while this process waits for a batch.
        After a Ctrl-C, at the first micro-batch of a step (a step boundary), that is the stop
        the Ctrl-C asked for: checkpoint and KeyboardInterrupt, the loader's error chained."""
        try:
            return next(it)
        except Exception:
            if first and self._interrupt.requested:
                self._stop_if_interrupted()
            raise

    def _validate(self, epoch: int) -> bool:
        """Evaluate on the validation data (none: nothing), update model selection and a
        ReduceLROnPlateau, tell the callbacks; True when early stopping says stop. ``epoch``:
        that of the evaluation record (the epoch just finished, or the one under way)."""
        if self._val is None:
            return False
        rng = None if self.checkpoint_path is None else get_rng_state()
        metrics = self._evaluate_or_keep(self._val)
        try:  # a score that fails keeps the work as a failed evaluation does
            unlabelled = self._selector.unlabelled(self.tasks, metrics, self._val)
            if unlabelled:
                raise ValueError(
                    f"monitor {self.monitor!r} scored NaN at step {self.step_}: the validation "
                    f"data has no labelled entry (every target NaN or ignore_index) for "
                    f"{'task' if len(unlabelled) == 1 else 'tasks'} "
                    f"{', '.join(map(repr, unlabelled))}, so no evaluation can improve; give "
                    "it labelled validation data, or monitor another task"
                )
            stop = self._selector.update(metrics, self.step_, self.model.state_dict())
        except Exception as e:
            self._keep_work(e, rng)
            raise
        if isinstance(self.scheduler_, ReduceLROnPlateau):
            self.scheduler_.step(self._selector.last_score)
        lrs = tuple(float(g["lr"]) for g in self.optimizer_.param_groups)
        record = StepRecord(epoch, self.step_, {}, None, lrs, metrics)
        for cb in self._callbacks:
            cb.on_evaluate(record)
        return stop

    def _finish(self, val) -> None:
        self.best_step_ = -1
        if val is not None and self._selector.best_state is not None:
            self.model.load_state_dict(self._selector.best_state)
            self.best_step_ = self._selector.best_step
        last = (
            self.history_.steps[-1]
            if self.history_.steps
            else StepRecord(self.epoch_, self.step_, {})
        )
        for cb in self._callbacks:
            cb.on_fit_end(last)

    def _progress_bar(self) -> ProgressBar | None:
        if not self.progress:
            return None
        return ProgressBar.if_visible(self._total_steps(), initial=self.step_)

    # ------------------------------------------------------------- inference
    def _device(self) -> torch.device:
        """Where the model is: before ``fit`` it has not been moved to ``device``."""
        first = next(self.model.parameters(), None)
        if first is not None:
            return first.device
        return getattr(self, "device_", None) or resolve_device(self.device)

    def evaluate(self, loader) -> dict[str, dict[str, float]]:
        """Metrics of every non-auxiliary task: ``{task: {metric: value}}``.

        ``loader`` yields ``(inputs, {task: target})``; a task with no target in
        the loader's batches is left out. A ``{task: loader}`` dict (one dataset per task)
        scores each task on its own loader.
        """
        return evaluate(self.model, self.tasks, loader, self._device())

    def predict(self, loader) -> dict[str, Tensor | list[Tensor]]:
        """Model outputs of every task, concatenated on CPU: ``{task: Tensor}``.

        ``loader`` yields inputs or ``(inputs, targets)`` pairs; a ``{task: loader}`` dict
        gives each named task's outputs on its own loader. A task whose outputs differ in
        shape beyond the batch axis from batch to batch (a dense task over images of varying
        size, or sequences padded per batch) gets the list of its batches' outputs.
        """
        return predict(self.model, self.tasks, loader, self._device())
