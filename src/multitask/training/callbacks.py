"""Callbacks: they see a read-only :class:`StepRecord`, never the trainer.

Built-ins: :class:`History` (training curves and loss-weight trajectories, for
reports), :class:`CSVLogger` and :class:`TensorBoardLogger` (tensorboard is
imported lazily; the logger is a no-op with a warning when it is missing).
"""

from __future__ import annotations

import csv
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["CSVLogger", "Callback", "History", "ProgressBar", "StepRecord", "TensorBoardLogger"]


def _frozen(d):
    return MappingProxyType(dict(d)) if d is not None else None


@dataclass(frozen=True)
class StepRecord:
    """What happened at one optimizer step (or one evaluation).

    Attributes
    ----------
    epoch : int
        Epoch of the step (0-based).
    step : int
        Number of optimizer steps done so far (1-based after the first step).
    losses : mapping str -> float
        Unweighted loss of each task on this step's batch, the mean over the
        micro-batches of an accumulated step (NaN for a task not trained at
        this step: not drawn by the sampler, or no labelled entry).
    weights : mapping str -> float or None
        Task weights the balancer used, when it reports them.
    lr : tuple of float
        Learning rate of each optimizer parameter group.
    metrics : mapping str -> mapping str -> float or None
        Validation metrics, on evaluation records only.
    grad_norm : float or None
        With ``Trainer(clip_grad_norm=c)``: the joint L2 norm of the model's gradients at
        this step, before clipping (``c = math.inf`` records it without clipping); else None.

    Examples
    --------
    The trainer builds one per step; a callback can read it but not change it:

    >>> from multitask.training import StepRecord
    >>> losses = {"y": 0.5, "c": 0.7}
    >>> record = StepRecord(epoch=0, step=1, losses=losses, lr=(0.01,))
    >>> losses["y"] = 0.0  # the record holds a copy
    >>> record.losses["y"], record.weights, record.metrics
    (0.5, None, None)
    >>> record.losses["y"] = 0.0
    Traceback (most recent call last):
    ...
    TypeError: 'mappingproxy' object does not support item assignment
    >>> record.step = 2
    Traceback (most recent call last):
    ...
    dataclasses.FrozenInstanceError: cannot assign to field 'step'
    """

    epoch: int
    step: int
    losses: Any
    weights: Any = None
    lr: tuple[float, ...] = ()
    metrics: Any = None
    grad_norm: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "losses", _frozen(self.losses))
        object.__setattr__(self, "weights", _frozen(self.weights))
        if self.metrics is not None:
            frozen = {t: _frozen(m) for t, m in self.metrics.items()}
            object.__setattr__(self, "metrics", MappingProxyType(frozen))


class Callback:
    """Base class; override the hooks you need. Each receives a :class:`StepRecord`.

    Examples
    --------
    A callback that prints the validation metrics of each epoch, given to a
    :class:`~multitask.training.Trainer`:

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn import Task
    >>> from multitask.nn.architectures import HardSharing
    >>> from multitask.training import Callback, Trainer
    >>> class PrintEpochs(Callback):
    ...     def on_evaluate(self, record):
    ...         print(f"epoch {record.epoch}, step {record.step}: {sorted(record.metrics['y'])}")
    ...
    ...     def on_fit_end(self, record):
    ...         print(f"done after {record.step} steps")
    >>> _ = torch.manual_seed(0)
    >>> X = torch.randn(32, 3)
    >>> batches = [(X[:16], {"y": X[:16].sum(1)}), (X[16:], {"y": X[16:].sum(1)})]
    >>> model = HardSharing(nn.Linear(3, 8), {"y": nn.Linear(8, 1)})
    >>> trainer = Trainer(
    ...     model, [Task("y")], max_epochs=2, device="cpu", progress=False,
    ...     callbacks=[PrintEpochs()],
    ... )
    >>> _ = trainer.fit(batches, val=batches)  # 2 batches an epoch, evaluated after each epoch
    epoch 0, step 2: ['mae', 'mse']
    epoch 1, step 4: ['mae', 'mse']
    done after 4 steps
    """

    def on_fit_start(self, record: StepRecord) -> None:
        """Once, when ``fit`` starts: ``record.epoch`` / ``record.step`` are 0 on a fresh
        run and the checkpoint's position on a resumed one (``losses`` is empty)."""

    def on_step(self, record: StepRecord) -> None:
        """After every optimizer step."""

    def on_evaluate(self, record: StepRecord) -> None:
        """After every validation pass (``record.metrics`` is set)."""

    def on_fit_end(self, record: StepRecord) -> None:
        """Once, when ``fit`` returns."""


class History(Callback):
    """Keep every step and evaluation record in memory.

    It holds the records of one ``fit`` call: a resumed run's history starts at
    the checkpoint (the CSV log keeps the whole run).

    Attributes
    ----------
    steps : list of StepRecord
    evaluations : list of StepRecord

    Examples
    --------
    A :class:`~multitask.training.Trainer` fills ``trainer.history_``; here the
    records are given by hand (task ``c`` is not trained at step 2):

    >>> from multitask.training import History, StepRecord
    >>> history = History()
    >>> nan = float("nan")
    >>> history.on_step(StepRecord(0, 1, {"y": 1.0, "c": 0.7}, weights={"y": 0.5, "c": 1.5}))
    >>> history.on_step(StepRecord(0, 2, {"y": 0.5, "c": nan}, weights={"y": 1.0, "c": 1.0}))
    >>> history.on_evaluate(StepRecord(0, 2, {}, metrics={"y": {"mse": 0.4}, "c": {"auc": 0.8}}))
    >>> history.losses()  # {task: [loss at step 1, 2, ...]}
    {'y': [1.0, 0.5], 'c': [0.7, nan]}
    >>> history.weights()
    {'y': [0.5, 1.0], 'c': [1.5, 1.0]}
    >>> fig = history.plot()  # one panel per curve kind and per validation metric
    >>> [ax.get_title() for ax in fig.axes if ax.get_visible()]
    ['training loss', 'task weights', 'validation auc', 'validation mse']
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """

    def __init__(self):
        self.steps: list[StepRecord] = []
        self.evaluations: list[StepRecord] = []

    def on_step(self, record: StepRecord) -> None:
        self.steps.append(record)

    def on_evaluate(self, record: StepRecord) -> None:
        self.evaluations.append(record)

    def losses(self) -> dict[str, list[float]]:
        """Training curve of each task: ``{task: [loss at step 1, 2, ...]}``."""
        tasks = self.steps[0].losses if self.steps else {}
        return {t: [r.losses[t] for r in self.steps] for t in tasks}

    def weights(self) -> dict[str, list[float]]:
        """Loss-weight trajectory of each task (empty when the balancer reports none)."""
        recs = [r for r in self.steps if r.weights is not None]
        tasks = recs[0].weights if recs else {}
        return {t: [r.weights[t] for r in recs] for t in tasks}

    def plot(self, *, window: int = 1, logy: bool = True):
        """A matplotlib figure of the fit: each task's training loss, the balancer's task
        weights (when it reports them), and each validation metric per task, against the
        optimizer step (:func:`multitask.training._plots.plot_history`: ``window`` averages
        each task's training curve over its own last ``window`` values, the steps that
        trained it, a line joining them and breaking only at a long absence; ``logy``: a log
        loss axis).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from multitask.training._plots import plot_history

        return plot_history(self, window=window, logy=logy)


def _flat(record: StepRecord) -> dict[str, float]:
    row: dict[str, float] = {"epoch": record.epoch, "step": record.step}
    row.update({f"loss/{t}": v for t, v in record.losses.items()})
    if record.weights is not None:
        row.update({f"weight/{t}": v for t, v in record.weights.items()})
    row.update({f"lr/{i}": v for i, v in enumerate(record.lr)})
    if record.grad_norm is not None:
        row["grad_norm"] = record.grad_norm
    for t, m in (record.metrics or {}).items():
        row.update({f"val/{t}/{k}": v for k, v in m.items()})
    return row


class _CSVFile:
    """A CSV file whose columns are fixed by its first row."""

    def __init__(self, path: Path):
        self.path = path
        self.fields: list[str] | None = None

    def truncate(self, keep) -> None:
        """Keep the header and the rows for which ``keep(row)`` is true; append after them.

        A missing or empty file is left to be created by the next row.
        """
        if not self.path.is_file():
            return
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, [r for r in reader if keep(r)]
        if not fields:
            return
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(rows)
        self.fields = list(fields)

    def discard(self) -> None:
        """Remove the file (if any) and forget its header: the next row starts it afresh."""
        self.path.unlink(missing_ok=True)
        self.fields = None

    def write(self, row: dict[str, float]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w" if new else "a", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


class CSVLogger(Callback):
    """One row per step in ``path``; one row per evaluation in ``<stem>_val.csv``.

    The columns are fixed by the first row: ``epoch``, ``step``, ``loss/<task>``
    (NaN for a task not trained at that step), ``weight/<task>`` when the
    balancer reports weights, ``lr/<group>``, ``grad_norm`` with gradient clipping
    (:class:`StepRecord`); evaluation rows have
    ``val/<task>/<metric>``. A fresh run removes both files when it starts, so
    no row of an earlier run remains (not even in the ``_val.csv`` of a run that
    evaluates nothing).
    A resumed run keeps the header and the rows up to its checkpoint (steps and
    evaluations at steps ``<= record.step``) and appends after them, so rows
    logged after the checkpoint by the interrupted run are not duplicated and no
    second header is written. An evaluation at the checkpoint's own step may or
    may not be in the checkpoint (an epoch's evaluation runs after the checkpoint
    of its last step; a ``val_every`` one before it): when the resumed run
    evaluates at that step again, its row replaces the old one.

    Parameters
    ----------
    path : str or Path
        CSV file of the training steps.
    every : int
        Write every ``every``-th step.

    Examples
    --------
    ``Trainer(log_csv=path)`` adds one; here it is called as the trainer calls it,
    in a temporary folder:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from multitask.training import CSVLogger, StepRecord
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     logger = CSVLogger(Path(tmp) / "train.csv", every=2)
    ...     logger.on_fit_start(StepRecord(epoch=0, step=0, losses={}))
    ...     for step in (1, 2, 3, 4):
    ...         logger.on_step(StepRecord(0, step, {"y": 1 / step, "c": 0.5}, lr=(0.01,)))
    ...     logger.on_evaluate(StepRecord(0, 4, {}, metrics={"y": {"mse": 0.2}}))
    ...     print((Path(tmp) / "train.csv").read_text())
    ...     print((Path(tmp) / "train_val.csv").read_text())
    epoch,step,loss/y,loss/c,lr/0
    0,2,0.5,0.5,0.01
    0,4,0.25,0.5,0.01
    <BLANKLINE>
    epoch,step,val/y/mse
    0,4,0.2
    <BLANKLINE>
    """

    def __init__(self, path: str | Path, every: int = 1):
        self.path = Path(path)
        self.every = int(every)
        self._steps = _CSVFile(self.path)
        self._evals = _CSVFile(self.path.with_name(self.path.stem + "_val.csv"))
        self._resumed_at = None  # the step a resumed run started from

    def on_fit_start(self, record: StepRecord) -> None:
        if record.step == 0 and record.epoch == 0:
            # a fresh run: remove both files of an earlier run (also the one this run may
            # never write, such as the _val.csv of a run that evaluates nothing or
            # crashes before its first evaluation) and forget their headers
            self._steps.discard()
            self._evals.discard()
            self._resumed_at = None
            return
        self._resumed_at = record.step
        self._steps.truncate(lambda row: int(row["step"]) <= record.step)
        self._evals.truncate(lambda row: int(row["step"]) <= record.step)

    def on_step(self, record: StepRecord) -> None:
        if record.step % self.every == 0:
            self._steps.write(_flat(record))

    def on_evaluate(self, record: StepRecord) -> None:
        if record.step == self._resumed_at:  # done again: replaces the interrupted run's row
            self._evals.truncate(lambda row: int(row["step"]) < record.step)
        self._resumed_at = None
        self._evals.write(_flat(record))


class TensorBoardLogger(Callback):
    """Write scalars to TensorBoard (no-op with a warning if tensorboard is absent).

    Each value of a :class:`StepRecord` (``loss/<task>``, ``weight/<task>``,
    ``lr/<group>``, ``grad_norm``, ``val/<task>/<metric>``) is a scalar at ``record.step``; NaN
    losses (a task not trained at that step) are left out.

    Parameters
    ----------
    log_dir : str or Path
        Folder of the event files (``Trainer(tensorboard_dir=log_dir)`` adds one).

    Examples
    --------
    Called as the trainer calls it, in a temporary folder. Without tensorboard it
    runs too and writes nothing; with it, the folder holds one event file (the
    line that lists it is skipped by the doctests, which run without tensorboard):

    >>> import tempfile
    >>> import warnings
    >>> from pathlib import Path
    >>> from multitask.training import StepRecord, TensorBoardLogger
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the warning when tensorboard is not installed
    ...     logger = TensorBoardLogger(tmp.name)
    >>> logger.on_step(StepRecord(epoch=0, step=1, losses={"y": 0.5}, lr=(0.01,)))
    >>> logger.on_fit_end(StepRecord(epoch=0, step=1, losses={}))
    >>> [p.name.split(".")[0] for p in Path(tmp.name).iterdir()]  # doctest: +SKIP
    ['events']
    >>> tmp.cleanup()
    """

    def __init__(self, log_dir: str | Path):
        self.log_dir = str(log_dir)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            warnings.warn(
                "tensorboard is not installed; TensorBoardLogger does nothing "
                "(pip install tensorboard to enable it)",
                stacklevel=2,
            )
            self._writer = None
        else:
            self._writer = SummaryWriter(self.log_dir)

    def _log(self, record: StepRecord) -> None:
        if self._writer is None:
            return
        for k, v in _flat(record).items():
            if k not in ("epoch", "step") and not math.isnan(v):
                self._writer.add_scalar(k, v, record.step)

    def on_step(self, record: StepRecord) -> None:
        self._log(record)

    def on_evaluate(self, record: StepRecord) -> None:
        self._log(record)

    def on_fit_end(self, record: StepRecord) -> None:
        if self._writer is not None:
            self._writer.close()


class ProgressBar(Callback):
    """tqdm bar of the optimizer steps with the per-task losses as postfix.

    The bar is written to stderr (tqdm's stream). :meth:`if_visible` builds it
    only on rank 0 of a distributed run and when stderr is a terminal (no bar
    in logs and CI output, e.g. ``python train.py 2> train.log``).

    Parameters
    ----------
    total : int
        Optimizer steps of the run.
    initial : int
        Steps already done (a resumed run).

    Examples
    --------
    ``Trainer(progress=True)`` adds one when it is visible. Here stderr is a
    buffer, which is no terminal, so :meth:`if_visible` gives no bar, and a bar
    built directly writes there:

    >>> import contextlib
    >>> import io
    >>> from multitask.training import ProgressBar, StepRecord
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     print(ProgressBar.if_visible(total=3))
    ...     bar = ProgressBar(total=3)
    ...     for step in (1, 2, 3):
    ...         bar.on_step(StepRecord(epoch=0, step=step, losses={"y": 1 / step}))
    ...     bar.close()
    None
    >>> print(err.getvalue().splitlines()[-1])  # its last state (tqdm redraws one line)
    train: 100%|...| 3/3 [...y=0.3333]
    """

    def __init__(self, total: int, initial: int = 0):
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total, initial=initial, desc="train", dynamic_ncols=True, file=sys.stderr
        )

    @classmethod
    def if_visible(cls, total: int, initial: int = 0) -> ProgressBar | None:
        """A bar on rank 0 when stderr, where it is written, is a TTY; else None."""
        import torch.distributed as dist

        rank0 = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        return cls(total, initial) if rank0 and sys.stderr.isatty() else None

    def on_step(self, record: StepRecord) -> None:
        self._bar.update(1)
        self._bar.set_postfix({t: f"{v:.4g}" for t, v in record.losses.items()})

    def close(self) -> None:
        self._bar.close()
