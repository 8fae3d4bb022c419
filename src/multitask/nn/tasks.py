"""``Task``: what one task predicts, how its loss is masked, and how it is scored.

A batch is ``(inputs, targets)`` with ``targets: dict[str, Tensor]``. Missing
labels are masked per sample, so partially labelled data trains without
dropping rows: a NaN target for ``regression``, ``binary``, ``multilabel`` and
floating ``dense`` targets; ``ignore_index`` for ``multiclass`` and integer
``dense`` targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from multitask._params import check_bool, check_int, check_real

__all__ = ["KINDS", "Task", "task_losses"]

KINDS = ("regression", "binary", "multiclass", "multilabel", "dense")

_DEFAULT_METRICS = {
    "regression": ("mse", "mae"),
    "binary": ("accuracy", "auc", "f1"),
    "multiclass": ("accuracy",),
    "multilabel": ("accuracy",),
    "dense": ("accuracy",),  # pixel accuracy; a floating dense target uses mse / mae
}
#: metrics that take scores (logits, ranking as the probabilities) rather than hard predictions
_SCORE_METRICS = frozenset({"auc"})

LossFn = Callable[[Tensor, Tensor], Tensor]
MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _check_metrics(name: str, metrics):
    """Metric names known to :data:`multitask.metrics.METRICS` (a lone str is one name)."""
    from multitask.metrics import METRICS

    if metrics is None:
        return metrics
    if isinstance(metrics, Mapping):
        bad = {k: v for k, v in metrics.items() if not isinstance(k, str) or not callable(v)}
        if bad:
            raise TypeError(
                f"task {name!r}: metrics given as a dict map names (str) to callables "
                f"(y_true, y_pred) -> float; these entries are not: {bad!r}"
            )
        return metrics
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(
            f"task {name!r}: unknown metric(s) {unknown}; use names of {sorted(METRICS)} "
            "or pass a dict name -> callable(y_true, y_pred)"
        )
    return tuple(metrics)


def not_ignored(target: Tensor, ignore_index: int) -> Tensor:
    """``target != ignore_index`` for integer (or bool) labels, compared as numbers.

    An unsigned target cannot hold a negative ``ignore_index``: torch would wrap it into the
    target's range (-100 reads as 156 in uint8, silently unlabelling class 156), so no entry
    of such a target is ignored.
    """
    if target.dtype != torch.bool and not target.is_floating_point():
        info = torch.iinfo(target.dtype)
        if not info.min <= ignore_index <= info.max:
            return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


class Task:
    """One task of a multi-task model.

    Parameters
    ----------
    name : str
        Key of the task in the model's output dict and in the target dict.
    kind : {"regression", "binary", "multiclass", "multilabel", "dense"}
        Shapes expected, with ``B`` the batch size:

        - ``regression``: prediction ``(B,)``, ``(B, 1)`` or ``(B, k)``, target of
          the same shape (``(B,)`` against ``(B, 1)`` is accepted either way); NaN =
          missing.
        - ``binary``: logits ``(B,)`` or ``(B, 1)``, target ``(B,)`` or ``(B, 1)``
          in {0, 1}; NaN (float target) or ``ignore_index`` (integer target) =
          missing.
        - ``multiclass``: logits ``(B, C)``, integer target ``(B,)`` or ``(B, 1)``;
          ``ignore_index`` = missing.
        - ``multilabel``: logits ``(B, L)``, target ``(B, L)`` in {0, 1};
          NaN = missing (per entry).
        - ``dense``: per-position prediction ``(B, C, *spatial)``; an integer
          target ``(B, *spatial)`` is per-position classification
          (segmentation; ``ignore_index`` = missing), a floating target
          ``(B, C, *spatial)`` per-position regression (depth, normals; NaN =
          missing).
    loss : callable (pred, target) -> scalar Tensor, optional
        Replaces the default loss (MSE for regression and floating dense,
        BCE-with-logits for binary and multilabel, cross-entropy for multiclass
        and integer dense). It receives only the labelled entries (flattened
        rows of ``pred`` and ``target``) and must return their mean loss.
    metrics : dict of name -> callable, or sequence of names, optional
        Metrics reported by :meth:`evaluate`; names refer to
        :mod:`multitask.metrics`. A callable takes ``(y_true, y_pred)`` numpy
        arrays of the labelled entries, with ``y_pred`` the predicted value
        (regression) or label (classification); ``"auc"`` receives float64 scores
        that rank as P(class 1) does: the logit of a binary or multilabel task, the
        logit difference ``logits[:, 1] - logits[:, 0]`` of a two-class ``multiclass``
        or integer ``dense`` task (more classes: an error). Not the probabilities,
        whose rounding to 1 ties confident predictions (a float32 sigmoid is 1 from a
        logit of 17).
        Default per kind: ``mse, mae`` (regression), ``accuracy, auc, f1``
        (binary), ``accuracy`` (others).
    weight : float, default=1.0
        Static weight of the task in a plain weighted sum of losses (the
        trainer without a balancer; a balancer decides the weights itself, and
        the trainer warns that a weight other than 1 is then ignored).
    auxiliary : bool, default=False
        Trained but not reported (an auxiliary task, Ruder 2017, Sec. 5). True or False (a
        numpy bool too); another value, even a truthy one such as ``"no"``, is a TypeError.
    lr : float, optional
        Learning rate of the task's own parameters (None: the optimizer's).
    ignore_index : int, default=-100
        Class target marking a missing label (class targets, and integer binary or
        multilabel targets; a regression target is missing only where it is NaN).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn import Task
    >>> task = Task("age", kind="regression")
    >>> task
    Task('age', kind='regression', weight=1.0)
    >>> pred = torch.tensor([1.0, 2.0, 3.0])
    >>> target = torch.tensor([1.0, float("nan"), 5.0])  # NaN: no label
    >>> task.compute_loss(pred, target)  # squared errors 0 and 4 over 2 labelled entries
    tensor(2.)
    >>> task.evaluate(pred, target)
    {'mse': 2.0, 'mae': 1.0}

    A class target marks a missing label with ``ignore_index``:

    >>> digit = Task("digit", kind="multiclass")
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])  # (B, C)
    >>> digit.evaluate(logits, torch.tensor([0, 0, -100]))  # the third is unlabelled
    {'accuracy': 0.5}
    """

    def __init__(
        self,
        name: str,
        kind: str = "regression",
        loss: LossFn | None = None,
        metrics: Mapping[str, MetricFn] | Sequence[str] | None = None,
        weight: float = 1.0,
        auxiliary: bool = False,
        lr: float | None = None,
        ignore_index: int = -100,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a task name must be a str, got {name!r} ({type(name).__name__})")
        if not name:
            raise ValueError("a task name must be a non-empty str, got ''")
        if kind not in KINDS:
            raise ValueError(f"task {name!r}: unknown kind {kind!r}; use one of {KINDS}")
        self.name = name
        self.kind = kind
        if loss is not None and not callable(loss):
            raise TypeError(
                f"task {name!r}: loss must be a callable (pred, target) -> scalar Tensor or "
                f"None, got {loss!r}"
            )
        owner = f"task {name!r}"
        ignore_index = check_int(ignore_index, "ignore_index", owner)
        auxiliary = check_bool(auxiliary, "auxiliary", owner)  # "no" reads as True
        self.loss = loss
        self.metrics = _check_metrics(name, metrics)
        self.weight = check_real(weight, "weight", owner, low=0.0)
        self.auxiliary = auxiliary
        self.lr = None if lr is None else check_real(lr, "lr", owner, low=0.0, low_open=True)
        self.ignore_index = ignore_index

    def __repr__(self) -> str:
        return f"Task({self.name!r}, kind={self.kind!r}, weight={self.weight})"

    # ------------------------------------------------------------------ shapes
    def _error(self, pred: Tensor, target: Tensor, hint: str) -> ValueError:
        p = "(B, " + ", ".join(str(s) for s in pred.shape[1:]) + ")" if pred.ndim > 1 else "(B,)"
        t = (
            "(B, " + ", ".join(str(s) for s in target.shape[1:]) + ")"
            if target.ndim > 1
            else "(B,)"
        )
        return ValueError(f"task {self.name!r}: prediction {p} vs target {t}; {hint}")

    def _classes(self, target: Tensor) -> bool:
        """True when the target holds class indices (multiclass or integer dense)."""
        return self.kind == "multiclass" or (
            self.kind == "dense" and not torch.is_floating_point(target)
        )

    def _align(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Check shapes and bring ``pred`` and ``target`` to ``(N, ...)`` entry rows.

        Returns pred and target such that the loss of entry ``i`` is a function
        of ``pred[i]`` and ``target[i]`` (classes on the last axis of ``pred``).
        """
        if pred.ndim == 0 or target.ndim == 0:
            raise ValueError(
                f"task {self.name!r}: prediction {tuple(pred.shape)} and target "
                f"{tuple(target.shape)} need a batch axis first; a 0-d tensor has none"
            )
        if pred.shape[0] != target.shape[0]:
            raise self._error(
                pred, target, f"batch sizes differ ({pred.shape[0]} vs {target.shape[0]})"
            )
        column = target.ndim == 2 and target.shape[1] == 1  # a label column (B, 1)
        if column and (self.kind == "binary" or (self.kind == "multiclass" and pred.ndim == 2)):
            target = target[:, 0]
        if self._classes(target):
            want = (pred.shape[0], *pred.shape[2:])
            if pred.ndim < 2 or tuple(target.shape) != want:
                raise self._error(
                    pred,
                    target,
                    "class logits need one more (class) axis, at position 1, than the target",
                )
            if self.kind == "multiclass" and (
                torch.is_floating_point(target) or torch.is_complex(target)
            ):
                raise self._float_classes(target)
            n_classes = pred.shape[1]
            return pred.movedim(1, -1).reshape(-1, n_classes), target.reshape(-1)
        if self.kind == "binary":
            if pred.ndim == 2 and pred.shape[1] == 1:
                pred = pred[:, 0]
            if pred.ndim != 1 or target.ndim != 1:
                raise self._error(
                    pred, target, "a binary task takes logits (B,) or (B, 1) and a target (B,)"
                )
            return pred, target
        indices = (pred.shape[0], *pred.shape[2:])  # a dense task's class-index target
        if self.kind == "dense" and pred.ndim >= 2 and pred.shape[1] > 1:
            if tuple(target.shape) == indices:  # (an integer one was handled above; with one
                raise self._float_classes(target)  # channel, (B, 1, H, W), a depth map)
        if pred.ndim == 2 and pred.shape[1] == 1 and target.ndim == 1:
            pred = pred[:, 0]
        if target.ndim == 2 and target.shape[1] == 1 and pred.ndim == 1:
            target = target[:, 0]
        if pred.shape != target.shape:
            raise self._error(pred, target, f"a {self.kind} task needs the same shape for both")
        return pred.reshape(-1), target.reshape(-1)

    def _float_classes(self, target: Tensor) -> TypeError:
        return TypeError(
            f"task {self.name!r}: a {self.kind} target of class indices must be an integer "
            f"tensor, got {target.dtype}; convert it with target.long() and mark missing "
            f"labels with ignore_index={self.ignore_index}"
        )

    def entry_rows(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``pred`` and ``target`` as rows of entries, the form every loss and metric of the
        task reads: ``(N, C)`` class logits and ``(N,)`` labels for class targets, else both
        ``(N,)`` (a dense task's pixels or tokens, a multilabel task's labels, one entry a
        row). Batches whose spatial size or length differ are joined in this form.

        Raises
        ------
        ValueError
            Shapes that do not match the kind (as :meth:`compute_loss`).
        """
        return self._align(pred, target)

    def _mask(self, target: Tensor) -> Tensor:
        if self._classes(target):
            return not_ignored(target, self.ignore_index)
        if not torch.is_floating_point(target) and self.kind != "regression":
            return not_ignored(target, self.ignore_index)  # integer labels: ignore_index
        return ~torch.isnan(target)

    def _invalid(self, pred: Tensor, target: Tensor, mask: Tensor, soft: bool) -> Tensor | None:
        """Labelled entries outside the kind's label set; None if every value is allowed.

        Class targets must lie in ``[0, C)``, binary and multilabel targets in {0, 1}
        (with ``soft``, anywhere in ``[0, 1]``: the probabilities the default loss accepts).
        """
        if self._classes(target):
            return mask & ((target < 0) | (target >= pred.shape[-1]))
        if self.kind in ("binary", "multilabel"):
            if soft:
                return mask & ((target < 0) | (target > 1))
            return mask & (target != 0) & (target != 1)
        return None

    # ------------------------------------------------------------------ losses
    def _elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """Default loss per entry (masked entries carry a harmless target)."""
        if self._classes(target):
            try:
                return F.cross_entropy(
                    pred, target.long(), reduction="none", ignore_index=self.ignore_index
                )
            except IndexError:  # a class outside [0, C): say which task and values
                self.check_target(pred, target)
                raise
        # at least float32: a float16 / bfloat16 prediction would round the targets to its 8
        # or 11 bits (300.7 trained as 300) and overflow a square past 256
        dtype = torch.promote_types(pred.dtype, torch.float32)
        pred, target = pred.to(dtype), target.to(dtype)
        if self.kind in ("binary", "multilabel"):
            return F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        return F.mse_loss(pred, target, reduction="none")

    def _denominator(self, target: Tensor, count: Tensor) -> Tensor:
        """``max(count, 1)``; NaN when a labelled binary / multilabel target is outside [0, 1].

        ``target`` has its missing entries replaced already (0 for a floating target).
        Forward only (``count`` carries no gradient): no host sync, no extra backward.
        """
        denominator = count.clamp_min(1.0)
        if self.kind not in ("binary", "multilabel") or target.dtype == torch.bool:
            return denominator
        off = target.mul(target - 1)  # > 0 exactly outside [0, 1] (soft labels are fine)
        if not torch.is_floating_point(target):
            off = off * not_ignored(target, self.ignore_index)
        return denominator.masked_fill((off > 0).any(), torch.nan)

    def compute_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean loss over the labelled entries of the batch.

        Parameters
        ----------
        pred : Tensor
            Model output for this task (see the class docstring for shapes).
        target : Tensor
            Targets, with missing labels marked by NaN or ``ignore_index``.

        Returns
        -------
        loss : Tensor of shape ()
            Masked mean; 0 (still in the graph, so backward works) when no
            entry of the batch is labelled; with the default loss, NaN when a
            labelled binary or multilabel target is outside ``[0, 1]`` (soft
            labels, e.g. label smoothing, train as the probabilities of binary
            cross-entropy; ``check_target(..., soft=True)`` names the bad values;
            a custom ``loss`` decides for itself). The default losses involve no
            host synchronisation.

        Raises
        ------
        ValueError
            Shapes that do not match the kind; a class target outside
            ``[0, C)`` (on CPU; on CUDA the kernel's own assertion fires).
        TypeError
            A floating ``multiclass`` target (class indices must be integers).
        """
        return self.loss_and_count(pred, target)[0]

    def loss_and_count(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`compute_loss` and the number of labelled entries (both 0-d tensors).

        The count stays on the device (no host sync); the trainer reads it with
        the losses, to report a task with no labelled entry as not trained.
        """
        pred, target = self._align(pred, target)
        mask = self._mask(target)
        # at least float32: a float16 count or sum overflows past 65504 entries
        maskf = mask.to(torch.promote_types(pred.dtype, torch.float32))
        count = maskf.sum()
        if self.loss is not None:
            return self._custom_loss(pred, target, mask), count
        if torch.is_floating_point(target):  # a missing entry: no loss and no gradient,
            target = torch.where(mask, target, torch.zeros_like(target))  # whatever its
            pred = torch.where(mask, pred, pred.new_zeros(()))  # prediction (inf x 0 = NaN)
        per_entry = self._elementwise(pred, target)
        return (per_entry * maskf).sum() / self._denominator(target, count), count

    def _custom_loss(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        pred_l, target_l = pred[mask], target[mask]
        if target_l.shape[0] == 0:
            return pred.sum() * 0.0
        return self.loss(pred_l, target_l)

    def check_target(self, pred: Tensor, target: Tensor, soft: bool = False) -> None:
        """Raise a ValueError describing labelled targets outside the kind's label set
        (classes outside ``[0, C)``, binary / multilabel values other than 0 and 1,
        infinite regression or floating dense targets).

        Reads the target on the host: the trainer calls it to explain a NaN loss,
        :meth:`evaluate` on every call; not meant for every training step.

        Parameters
        ----------
        pred, target : Tensor
            As for :meth:`compute_loss`.
        soft : bool, default=False
            Accept binary / multilabel targets anywhere in ``[0, 1]`` (what the default
            loss trains on: soft labels); the metrics of :meth:`evaluate` need 0 or 1.

        Raises
        ------
        ValueError
            Naming the task, how many labelled entries are invalid, and the first
            few invalid values.
        """
        pred, target = self._align(pred, target)
        mask = self._mask(target)
        invalid = self._invalid(pred, target, mask, soft)
        if torch.is_floating_point(target) and self.kind not in ("binary", "multilabel"):
            invalid = mask & ~torch.isfinite(target)
            what = "finite values (NaN marks a missing label)"
        elif self._classes(target):
            what = f"class indices in [0, {pred.shape[-1]}) or ignore_index={self.ignore_index}"
        else:
            labels = "in [0, 1]" if soft else "0 or 1"
            what = f"{labels} (NaN or, for integer targets, ignore_index marks a missing label)"
        if invalid is None or not bool(invalid.any()):
            return
        bad = target[invalid]
        raise ValueError(
            f"task {self.name!r} ({self.kind}): {bad.numel()} labelled target(s) are not "
            f"{what}; first: {bad[:5].tolist()}"
        )

    def check_scorable(self, target: Tensor) -> None:
        """Raise the ValueError :meth:`evaluate` would raise on ``target`` whatever the
        predictions: labels outside the kind's set, or a named metric undefined on these
        targets (AUC of a single class, a variance-normalised metric of a constant one).

        The trainer calls it on the validation targets when ``fit`` starts, so that such
        data fails before the first epoch, not after it. Metrics given as callables (a
        dict) are not called: they may depend on the predictions; the labels are still
        checked. A class index is checked against the largest one present (the number of
        classes is the model's).

        Parameters
        ----------
        target : Tensor
            All the targets of the task, any shape (flattened here).
        """
        target = torch.as_tensor(target).reshape(-1)
        if self._classes(target):
            labelled = target[self._mask(target)]
            width = int(labelled.max()) + 1 if labelled.numel() else 1
            pred = torch.zeros(target.shape[0], max(width, 2))
        else:
            pred = torch.zeros(target.shape, dtype=torch.float32)
        if isinstance(self.metrics, Mapping):
            self.check_target(pred, target)
        else:
            self.evaluate(pred, target)

    # ----------------------------------------------------------------- metrics
    def _metric_table(self, target: Tensor, n_classes: int | None = None) -> dict[str, MetricFn]:
        """The metrics by name; ``n_classes``: the width of a class prediction, if one."""
        from multitask import metrics as mt

        spec = self.metrics
        if spec is None:
            floating_dense = self.kind == "dense" and torch.is_floating_point(target)
            spec = ("mse", "mae") if floating_dense else _DEFAULT_METRICS[self.kind]
        if isinstance(spec, Mapping):
            return dict(spec)
        table = {name: mt.METRICS[name] for name in spec}  # names checked in __init__
        if "f1" in table and n_classes is not None:  # classes: macro F1 over all of them
            table["f1"] = partial(mt.f1, average="macro", labels=np.arange(n_classes))
        return table

    def metric_names(self, target: Tensor | None = None) -> tuple[str, ...]:
        """Names of the metrics :meth:`evaluate` reports.

        A ``dense`` task with the default metrics reports ``accuracy`` for an
        integer target and ``mse, mae`` for a floating one: all three are listed,
        unless ``target`` (some of the task's targets) says which.
        """
        if isinstance(self.metrics, Mapping):
            return tuple(self.metrics)
        if self.metrics is not None:
            return tuple(self.metrics)
        if self.kind == "dense":
            if target is None:
                return ("accuracy", "mse", "mae")
            return ("mse", "mae") if torch.is_floating_point(target) else ("accuracy",)
        return tuple(_DEFAULT_METRICS[self.kind])

    @torch.no_grad()
    def evaluate(self, pred: Tensor, target: Tensor) -> dict[str, float]:
        """Metrics of ``pred`` on the labelled entries of ``target``.

        Returns
        -------
        scores : dict of str -> float
            One value per metric; NaN for every metric when nothing is labelled.

        Raises
        ------
        ValueError
            Invalid labels (:meth:`check_target`), or a metric that fails (AUC of
            a single class), naming the task.
        """
        self.check_target(pred, target)  # a label of 2 would score silently wrong
        pred, target = self._align(pred, target)
        mask = self._mask(target)
        table = self._metric_table(target, pred.shape[-1] if self._classes(target) else None)
        pred, target = pred[mask], target[mask]
        if pred.dtype != torch.float64:  # bf16 / fp16 have no numpy type; float64 kept (a
            pred = pred.float()  # float32 copy rounded 1e8 + 0.1 to 1e8: an MSE of 0)
        if torch.is_floating_point(target) and target.dtype != torch.float64:
            target = target.float()  # a bf16 target trains; numpy has no bf16
        if target.shape[0] == 0:
            return {name: float("nan") for name in table}
        y_true = target.cpu().numpy()
        if self._classes(target):
            scores, labels = None, pred.argmax(-1)
            if "auc" in table:  # the AUC of P(class 1), defined for two classes
                if pred.shape[-1] != 2:
                    raise ValueError(
                        f"task {self.name!r}: metric 'auc' scores P(class 1) of a two-class "
                        f"task; this one predicts {pred.shape[-1]} classes: use 'accuracy' or "
                        "'f1', or a binary task"
                    )
                # log P(1) / P(0), increasing in P(class 1): a float32 softmax rounded
                # confident rows to exactly 1 and tied them (AUC 0.75 for a perfect ranking)
                scores = pred[:, 1].double() - pred[:, 0].double()
        elif self.kind in ("binary", "multilabel"):
            # the logit ranks as the probability does, without the sigmoid's ties at 1
            scores, labels = pred.double(), (pred > 0).to(target.dtype)
        else:
            scores, labels = None, pred
        out = {}
        for name, fn in table.items():
            use = scores if (name in _SCORE_METRICS and scores is not None) else labels
            try:
                out[name] = float(fn(y_true, use.cpu().numpy()))
            except ValueError as e:  # e.g. AUC of a single class: say which task
                raise ValueError(
                    f"task {self.name!r}: metric {name!r} on its {y_true.shape[0]} labelled "
                    f"entries failed: {e}"
                ) from e
        return out


def _check_names(tasks: Sequence[Task], names: Sequence[str], what: str) -> None:
    valid = [t.name for t in tasks]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise KeyError(f"{what} has unknown task(s) {unknown}; valid task names are {valid}")


def task_losses(
    tasks: Sequence[Task], predictions: Mapping[str, Tensor], targets: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Loss of every task on one batch, in the order of ``tasks``.

    Parameters
    ----------
    tasks : sequence of Task
    predictions : dict of str -> Tensor
        The model's output, ``model(inputs)``.
    targets : dict of str -> Tensor
        The batch's targets (every task needs an entry; mark unlabelled samples
        with NaN / ``ignore_index`` rather than leaving the task out).

    Returns
    -------
    losses : dict of str -> Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> from multitask.nn import Task, task_losses
    >>> tasks = [Task("y"), Task("c", kind="binary")]
    >>> predictions = {"y": torch.zeros(4), "c": torch.zeros(4)}
    >>> targets = {"y": torch.ones(4), "c": torch.tensor([0.0, 1.0, 1.0, 0.0])}
    >>> losses = task_losses(tasks, predictions, targets)
    >>> {name: round(loss.item(), 4) for name, loss in losses.items()}  # MSE 1, BCE log(2)
    {'y': 1.0, 'c': 0.6931}
    """
    _check_names(tasks, list(predictions), "the prediction dict")
    _check_names(tasks, list(targets), "the target dict")
    out = {}
    for task in tasks:
        if task.name not in predictions:
            raise KeyError(
                f"the model gave no prediction for task {task.name!r}; it gave {list(predictions)}"
            )
        if task.name not in targets:
            raise KeyError(
                f"the batch has no target for task {task.name!r} (it has {list(targets)}); "
                "give every task a target and mark unlabelled samples with NaN or ignore_index"
            )
        out[task.name] = task.compute_loss(predictions[task.name], targets[task.name])
    return out
