"""Model selection and early stopping on validation metrics."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import torch

from multitask.metrics import HIGHER_IS_BETTER, delta_m

Metrics = Mapping[str, Mapping[str, float]]


def _flatten(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {(t, k): float(v) for t, m in metrics.items() for k, v in m.items()}


class ModelSelector:
    """Track the best validation score, its model state, and patience.

    Parameters
    ----------
    monitor : "delta" or (task, metric)
        ``"delta"``: ``delta_m`` (Maninis et al. 2019, eq. 5) of the current
        validation metrics against those of the first evaluation, over every
        reported (task, metric) pair -- the mean signed relative change, so
        tasks on different scales count equally (a pair whose first value is 0
        counts by its absolute change). ``(task, metric)``: that one
        metric, maximised or minimised by its direction in
        :data:`multitask.metrics.HIGHER_IS_BETTER`.
    patience : int or None
        Stop after this many evaluations without improvement (None: never).
    higher_is_better : mapping str -> bool, optional
        Direction of metrics not in :data:`multitask.metrics.HIGHER_IS_BETTER`
        (a ``Task``'s own metric callables).

    Notes
    -----
    A (task, metric) pair that is NaN in the current or the first evaluation
    (a task with no labelled validation entry) is left out of ``"delta"``; a
    NaN score never counts as an improvement.

    Examples
    --------
    One metric, with a patience of two evaluations; the best state is a copy:

    >>> import torch
    >>> from multitask.training import ModelSelector
    >>> state = {"w": torch.zeros(2)}
    >>> selector = ModelSelector(monitor=("y", "mse"), patience=2)
    >>> for step, mse in [(10, 0.5), (20, 0.3), (30, 0.4), (40, 0.35)]:
    ...     stop = selector.update({"y": {"mse": mse}}, step, state)
    ...     print(step, selector.best_step, stop)
    10 10 False
    20 20 False
    30 20 False
    40 20 True
    >>> selector.best_score  # higher is better: minus the MSE
    -0.3
    >>> state["w"] += 1.0
    >>> selector.best_state["w"]
    tensor([0., 0.])

    ``"delta"`` scores each evaluation by its mean relative change against the
    first one; here MSE falls by 50% and accuracy rises by 20%:

    >>> selector = ModelSelector()
    >>> selector.update({"y": {"mse": 2.0}, "c": {"accuracy": 0.5}}, 1, state)
    False
    >>> selector.update({"y": {"mse": 1.0}, "c": {"accuracy": 0.6}}, 2, state)
    False
    >>> round(selector.best_score, 6), selector.best_step  # (0.5 + 0.2) / 2
    (0.35, 2)
    """

    def __init__(
        self,
        monitor="delta",
        patience: int | None = None,
        higher_is_better: Mapping[str, bool] | None = None,
    ):
        if monitor != "delta" and not (isinstance(monitor, tuple) and len(monitor) == 2):
            raise ValueError(f"monitor must be 'delta' or a (task, metric) tuple, got {monitor!r}")
        if patience is not None and int(patience) < 1:
            raise ValueError(f"early_stopping patience must be >= 1 or None, got {patience}")
        self.monitor = monitor
        self.patience = patience
        self.directions = {**HIGHER_IS_BETTER, **dict(higher_is_better or {})}
        self.reference: dict | None = None
        self.best_score = -math.inf
        self.best_step = -1
        self.best_state: dict | None = None
        self.bad_evals = 0
        self.stopped = False
        self.last_score = math.nan  # of the latest update (a ReduceLROnPlateau's metric)
        self.last_step = -1  # of the latest update

    def check_tasks(self, tasks: Mapping[str, object], targets: Mapping | None = None) -> None:
        """Raise, before any training, if the monitor cannot score these tasks' metrics.

        ``tasks`` maps names to :class:`multitask.nn.Task` s (``auxiliary``,
        ``metric_names()``); ``targets``: validation targets at hand, by task, which say
        which metrics a dense task reports (``accuracy`` for classes, ``mse, mae`` else).
        """
        targets = targets or {}
        reported = {t: task for t, task in tasks.items() if not getattr(task, "auxiliary", False)}
        if self.monitor != "delta":
            task, metric = self.monitor
            if task not in reported:
                why = "is auxiliary (not reported)" if task in tasks else "is not a task"
                raise ValueError(
                    f"monitor {self.monitor}: {task!r} {why}; reported tasks: {list(reported)}"
                )
            names = reported[task].metric_names(targets.get(task))
            if metric not in names:
                raise ValueError(f"monitor {self.monitor}: task {task!r} reports only {names}")
            pairs = [(task, metric)]
        else:
            pairs = [
                (t, m) for t, task in reported.items() for m in task.metric_names(targets.get(t))
            ]
        unknown = sorted({m for _, m in pairs if m not in self.directions})
        if unknown:
            raise ValueError(
                f"monitor {self.monitor!r} needs the direction of metrics {unknown}; pass "
                "higher_is_better={name: True/False} to the Trainer"
            )

    def score(self, metrics: Metrics) -> float:
        """Higher-is-better scalar of ``metrics`` (NaN when nothing can be scored)."""
        flat = _flatten(metrics)
        if self.monitor == "delta":
            if self.reference is None:
                # A first-epoch value of 0 (accuracy or F1 of an untrained model) has no
                # relative change; it counts by its absolute change instead: dividing by 1
                # shifts every later score by the same constant, so the ranking of epochs is
                # exactly that of the absolute change.
                self.reference = {k: (v if v != 0 else 1.0) for k, v in flat.items()}
            keys = [
                k
                for k, v in flat.items()
                if math.isfinite(v) and math.isfinite(self.reference.get(k, math.nan))
            ]
            if not keys:
                return math.nan
            return delta_m(
                {k: flat[k] for k in keys}, {k: self.reference[k] for k in keys}, self.directions
            )
        task, metric = self.monitor
        if (task, metric) not in flat:
            raise ValueError(f"monitor {self.monitor} not among validation metrics {sorted(flat)}")
        if metric not in self.directions:
            raise ValueError(f"direction of metric {metric!r} unknown; monitor another metric")
        value = flat[(task, metric)]
        return value if self.directions[metric] else -value

    def monitored(self, tasks: Mapping[str, object]) -> list[str]:
        """The reported tasks the score reads: the monitored one, or all (``"delta"``)."""
        if self.monitor != "delta":
            return [self.monitor[0]]
        return [t for t, task in tasks.items() if not getattr(task, "auxiliary", False)]

    def check_labelled(self, tasks: Mapping[str, object], val, targets: Mapping) -> None:
        """Raise, before any training, if the validation data, where its targets are at hand,
        gives the monitor nothing to score: the monitored task (``"delta"``: every reported
        task) has no target, or no labelled entry (every target NaN or ``ignore_index``), so
        every evaluation would score NaN, which never improves (early stopping would end the
        run, with no best state). ``targets``: those :func:`check_val_targets` found; a list
        of batches is read too. Data whose targets are not at hand is checked at the first
        evaluation (:meth:`unlabelled`)."""
        counts = {}
        for t in self.monitored(tasks):
            if isinstance(val, Mapping) and t not in val:
                continue  # (a delta over the tasks the dict scores; a missing monitored one
                # is refused by the trainer)
            own = val[t] if isinstance(val, Mapping) else val
            counts[t] = _labelled_at_hand(tasks[t], t, own, targets.get(t))
        if not counts or any(n is None or n > 0 for n in counts.values()):
            return
        if self.monitor != "delta":
            (t,) = counts
            why = "could not score it" if counts[t] == -1 else "would score NaN"
            raise ValueError(
                f"monitor {self.monitor}: {_no_labels(t, counts[t])} (checked before "
                f"training), so every evaluation {why}; give it labelled validation data, or "
                "monitor another task"
            )
        raise ValueError(
            f"monitor 'delta': no reported task has a labelled entry in the validation data "
            f"({'; '.join(_no_labels(t, n) for t, n in counts.items())}; checked before "
            "training), so every evaluation would score NaN; give it labelled validation data"
        )

    def unlabelled(self, tasks: Mapping[str, object], metrics: Metrics, val) -> list[str]:
        """The monitored tasks whose score is NaN because the validation data has no
        labelled entry for them (:meth:`Task.evaluate` then gives NaN for every metric), when
        that makes the monitored score NaN (``"delta"``: every reported task scored so). The
        validation data is read again (targets only) to tell that from non-finite
        predictions, which only when every metric of those tasks is NaN; [] otherwise."""
        names = [t for t in self.monitored(tasks) if t in metrics]
        if not names:
            return []
        nan = [t for t in names if all(math.isnan(float(v)) for v in metrics[t].values())]
        if self.monitor != "delta" and not math.isnan(float(metrics[names[0]][self.monitor[1]])):
            return []
        if len(nan) != len(names):
            return []
        for t in nan:
            own = val[t] if isinstance(val, Mapping) else val
            if _labelled_in(tasks[t], t, own) > 0:
                return []
        return nan

    def update(self, metrics: Metrics, step: int, model_state: dict) -> bool:
        """Record an evaluation; returns True when training should stop. A score that fails
        (a monitored metric absent) changes nothing: the selection is as before the call."""
        reference = self.reference
        try:
            s = self.score(metrics)
        except Exception:
            self.reference = reference  # (the first evaluation of "delta" sets it)
            raise
        self.last_score = s
        self.last_step = step
        if s > self.best_score:
            self.best_score, self.best_step, self.bad_evals = s, step, 0
            self.best_state = {k: _snapshot(v) for k, v in model_state.items()}
        else:
            self.bad_evals += 1
        self.stopped = self.patience is not None and self.bad_evals >= self.patience
        return self.stopped

    def state_dict(self) -> dict:
        ref = None
        if self.reference is not None:
            ref = [[t, k, v] for (t, k), v in self.reference.items()]
        return {
            "reference": ref,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "best_state": self.best_state,
            "bad_evals": self.bad_evals,
            "stopped": self.stopped,
            "last_step": self.last_step,
        }

    def load_state_dict(self, state: Mapping) -> None:
        ref = state["reference"]
        self.reference = None if ref is None else {(t, k): v for t, k, v in ref}
        self.best_score = state["best_score"]
        self.best_step = state["best_step"]
        self.best_state = copy.copy(state["best_state"])
        self.bad_evals = state["bad_evals"]
        self.stopped = state["stopped"]
        self.last_step = state.get("last_step", -1)  # (absent from older checkpoints)


def _snapshot(value):
    """A copy of one ``state_dict`` entry that later training cannot change: a tensor cloned to
    the CPU; anything else (an architecture's ``get_extra_state``, e.g. the grown tree of
    :class:`~multitask.nn.architectures.FullyAdaptiveSharing`) deep-copied."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().cpu()
    return copy.deepcopy(value)


def _labelled(task, y) -> int:
    """Labelled entries of one target (evaluation's own mask: not NaN, not ignore_index)."""
    y = torch.as_tensor(y).reshape(-1)
    mask = getattr(task, "_mask", None)
    if mask is None:
        return int((~torch.isnan(y)).sum()) if y.is_floating_point() else y.numel()
    return int(mask(y).sum())


def _pairs(loader) -> bool:
    """Whether ``loader`` is a list of batches ``(inputs, {task: target})`` (at hand)."""
    return isinstance(loader, Sequence) and all(
        isinstance(b, (tuple, list)) and len(b) == 2 and isinstance(b[1], Mapping) for b in loader
    )


def _labelled_at_hand(task, name: str, loader, found) -> int | None:
    """Labelled validation entries of task ``name`` when they can be had without loading the
    data (``found``: its targets read by :func:`check_val_targets`; a list of batches), -1
    when no batch carries its target at all, None when not at hand."""
    if found is not None:
        return _labelled(task, found)
    if not _pairs(loader):
        return None
    return _count(task, name, loader)


def _labelled_in(task, name: str, loader) -> int:
    """As :func:`_labelled_at_hand`, reading the loader if need be (its targets; torch's
    global RNG, from which a DataLoader draws its base seed, left as found)."""
    with torch.random.fork_rng(devices=[]):
        return _count(task, name, loader)


def _count(task, name: str, loader) -> int:
    n, seen = 0, False
    for batch in loader:
        target = batch[1] if isinstance(batch, (tuple, list)) and len(batch) == 2 else None
        if isinstance(target, Mapping) and name in target:
            seen = True
            n += _labelled(task, target[name])
    return n if seen else -1


def _no_labels(task: str, n: int | None) -> str:
    if n == -1:
        return f"the validation data has no target for task {task!r}"
    return f"task {task!r} has no labelled validation entry (every target is NaN or ignore_index)"
