"""``fit_table``: check a table and options, split, fit, score, and write a model folder.

Two layouts (see ``docs/cli.md``):

- *wide* (deep half): several target columns, one row per sample; ``method``
  is an architecture of :data:`ARCHITECTURE_NAMES`, ``balancer`` a loss
  weighting or gradient aggregator name. Rows are split at random into
  training and held-out test rows; a seeded validation part of the training
  rows (``val_size``) selects the epoch (early stopping, best weights kept),
  and the test rows are used for the reported metrics only.
- *long* (linear half): one target column and a task column, one row per
  (task, sample); ``method`` a key of :data:`LINEAR_METHODS`. Each task's rows
  are split separately, so every task keeps at least two training rows.

Every check runs before any fitting, and the folder is written only when all
its files are ready (:func:`staged_dir`).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from multitask.tabular._deep import ARCHITECTURE_NAMES, DeepTabularModel, architecture_config
from multitask.tabular._features import FeaturePreprocessor, check_finite_features
from multitask.tabular._io import staged_dir
from multitask.tabular._linear import (
    LINEAR_METHODS,
    LinearTabularModel,
    linear_estimator,
    task_form,
    task_text,
)
from multitask.tabular._model import TabularModel, write_json
from multitask.tabular._scores import score_target
from multitask.tabular._splits import random_split, task_split, validation_split
from multitask.tabular._targets import KINDS, TargetEncoder, check_finite

__all__ = ["FitOptions", "FitResult", "fit_table"]

ALL = "_all"


@dataclass(frozen=True)
class FitOptions:
    """What ``multitask fit`` was asked to do.

    Parameters
    ----------
    targets : tuple of str
        Target columns (one for the long layout).
    method : str
        Architecture (wide) or linear method (long).
    task_col : str or None
        The task column (long layout); None for the wide layout.
    balancer : str
        Loss weighting or gradient aggregator (deep half only).
    kinds : dict of str -> str
        Kind overrides per target ("regression", "binary", "multiclass").
    test_size : float
        Held-out fraction, in (0, 1).
    val_size : float
        Deep half: fraction of the training rows held out (seeded) for model
        selection, in [0, 1); 0 trains on every training row and keeps the
        last epoch.
    patience : int or None
        Deep half: stop after this many epochs without a better validation
        score (None: run every epoch); the best epoch's weights are kept.
    seed : int
    epochs, batch_size, width : int
        Deep training options.
    lr : float
        Adam learning rate (deep half).
    device : str
        Training device of the deep half ("cpu", "cuda", "auto", ...); the
        trained model is moved back to the CPU, where it predicts.
    precision : {"32", "bf16-mixed"}
        Training precision of the deep half (:class:`multitask.training.Trainer`'s
        ``precision``); prediction runs in float32.
    schedule : {"constant", "linear", "cosine"} or None
        Deep half: learning-rate schedule over the run's optimizer steps
        (:class:`multitask.training.Trainer`'s ``scheduler``); None: the rate stays ``lr``.
    warmup_steps : int
        Deep half: linear warmup of the learning rate over this many steps.
    clip_grad_norm : float or None
        Deep half: bound on the joint L2 norm of the gradients (None: no clipping).
    progress : bool
        Show the trainer's progress bar (on a terminal only).
    alpha, beta : float or None
        Regularisation strengths (linear half); None: the estimator's default.
    ignore : tuple of str
        Columns that are neither features nor targets (ids, free text).
    """

    targets: tuple[str, ...]
    method: str
    task_col: str | None = None
    balancer: str = "equal"
    kinds: dict[str, str] = field(default_factory=dict)
    test_size: float = 0.2
    val_size: float = 0.2
    patience: int | None = 5
    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    width: int = 64
    lr: float = 1e-3
    device: str = "cpu"
    precision: str = "32"
    schedule: str | None = None
    warmup_steps: int = 0
    clip_grad_norm: float | None = None
    progress: bool = False
    alpha: float | None = None
    beta: float | None = None
    ignore: tuple[str, ...] = ()

    @property
    def half(self) -> str:
        return "linear" if self.task_col is not None else "deep"


@dataclass(frozen=True)
class FitResult:
    """The fitted model and its held-out metrics (``metrics.json``)."""

    model: TabularModel
    metrics: dict


# ------------------------------------------------------------------ checks
def _check_columns(frame, opts: FitOptions) -> list[str]:
    """Feature columns; raises on a missing or doubly used column."""
    columns = list(frame.columns)
    seen: set = set()
    doubled = list(dict.fromkeys(c for c in columns if c in seen or seen.add(c)))
    if doubled:
        raise ValueError(
            f"the table has several columns named {doubled}; column names must be unique "
            "(rename or drop the copies)"
        )
    named = [*opts.targets, *([opts.task_col] if opts.task_col else []), *opts.ignore]
    absent = [c for c in named if c not in columns]
    if absent:
        raise ValueError(f"column(s) {absent} not in the table; its columns are {columns}")
    if len(set(named)) != len(named):
        raise ValueError(f"a column is named twice among targets / task column / ignored: {named}")
    features = [c for c in columns if c not in named]
    if not features:
        raise ValueError(f"no feature column left (columns {columns}, all used as targets/tasks)")
    return features


def _check_method(opts: FitOptions) -> None:
    deep, linear = list(ARCHITECTURE_NAMES), list(LINEAR_METHODS)
    if opts.method not in deep + linear:
        raise ValueError(
            f"unknown method {opts.method!r}; valid deep methods (wide table, several --target): "
            f"{deep}; valid linear methods (long table, --task-col): {linear}"
        )
    if opts.half == "linear":
        if opts.method not in linear:
            raise ValueError(
                f"method {opts.method!r} is deep; with --task-col use a linear method: {linear} "
                "(or drop --task-col and give one --target per task)"
            )
        if len(opts.targets) != 1:
            raise ValueError(
                f"a long table (--task-col) has one target column; got {list(opts.targets)}"
            )
        if opts.balancer != "equal":
            raise ValueError(
                "--balancer applies to deep methods only; leave it out with --task-col"
            )
        return
    if opts.method not in deep:
        raise ValueError(
            f"method {opts.method!r} is linear and needs a long table: give --task-col "
            f"(or use a deep method: {deep})"
        )
    from multitask.tabular._deep import check_device, make_balancer

    make_balancer(opts.balancer, len(opts.targets))  # raises with the valid names
    check_device(opts.device)
    from multitask.training._trainer import PRECISIONS

    if opts.precision not in PRECISIONS:
        raise ValueError(f"--precision {opts.precision!r}: use one of {list(PRECISIONS)}")
    from multitask.training._schedule import SCHEDULES

    if opts.schedule is not None and opts.schedule not in SCHEDULES:
        raise ValueError(f"--schedule {opts.schedule!r}: use one of {list(SCHEDULES)}")
    if opts.warmup_steps < 0:
        raise ValueError(f"--warmup-steps must be >= 0, got {opts.warmup_steps}")
    if opts.clip_grad_norm is not None and not (0 < opts.clip_grad_norm < float("inf")):
        raise ValueError(f"--clip-grad-norm must be positive and finite, got {opts.clip_grad_norm}")


def _check_options(opts: FitOptions) -> None:
    if not opts.targets:
        raise ValueError("give at least one --target column")
    if len(set(opts.targets)) != len(opts.targets):
        raise ValueError(f"a target is given twice: {list(opts.targets)}")
    for name, kind in opts.kinds.items():
        if name not in opts.targets:
            raise ValueError(f"--kind {name}={kind}: {name!r} is not a target {list(opts.targets)}")
        if kind not in KINDS:
            raise ValueError(f"--kind {name}={kind}: unknown kind; use one of {list(KINDS)}")
    if not 0.0 < opts.test_size < 1.0:
        raise ValueError(f"--test-size must be in (0, 1), got {opts.test_size}")
    if isinstance(opts.seed, bool) or not isinstance(opts.seed, int) or opts.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {opts.seed!r}")
    if not 0.0 <= opts.val_size < 1.0:
        raise ValueError(f"--val-size must be in [0, 1), got {opts.val_size}; 0 turns it off")
    if opts.patience is not None and opts.patience < 1:
        raise ValueError(f"--patience must be >= 1, got {opts.patience}")
    for name in ("epochs", "batch_size", "width"):
        if getattr(opts, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(opts, name)}")
    if not opts.lr > 0:
        raise ValueError(f"--lr must be > 0, got {opts.lr}")
    _check_method(opts)


# ------------------------------------------------------------------ fitting
def _encode_validation(enc: TargetEncoder, s) -> np.ndarray:
    """Codes of the validation labels of ``enc``'s target; a label not among the training
    labels (a class seen only in held-out rows) is a missing label there, with a warning.

    The validation rows are held out as the test rows are, where such a label counts as a wrong
    prediction; validation has no loss for it, so it is left out of the validation score.
    """
    from multitask.tabular._targets import IGNORE_INDEX

    codes = enc.encode(s, strict=False)
    if enc.kind == "regression":
        return codes
    unseen = codes == -1
    if unseen.any():
        labels = sorted({str(v) for v in s[unseen]})
        warnings.warn(
            f"target {enc.name!r}: {int(unseen.sum())} validation row(s) hold a label not among "
            f"the training labels {enc.classes} ({', '.join(labels[:5])}); they are left out of "
            "the validation score (a test row with such a label counts as a wrong prediction)",
            UserWarning,
            stacklevel=3,
        )
        codes[unseen] = IGNORE_INDEX if enc.kind == "multiclass" else np.nan
    return codes


def _fit_deep(frame, features: list[str], opts: FitOptions):
    train_all, test = random_split(len(frame), opts.test_size, opts.seed)
    train, val = validation_split(train_all, opts.val_size, opts.seed)
    tr = frame.iloc[train]
    pre = FeaturePreprocessor.fit(tr[features])
    encs = [TargetEncoder.fit(tr[t], t, opts.kinds.get(t)) for t in opts.targets]
    arch = architecture_config(
        opts.method,
        len(pre.feature_names),
        {e.name: e.n_outputs for e in encs},
        width=opts.width,
    )
    config = {
        "architecture": arch,
        "balancer": opts.balancer,
        "seed": opts.seed,
        "epochs": opts.epochs,
        "batch_size": opts.batch_size,
        "lr": opts.lr,
        "device": opts.device,
        "precision": opts.precision,
        "schedule": opts.schedule,
        "warmup_steps": opts.warmup_steps,
        "clip_grad_norm": opts.clip_grad_norm,
        "progress": opts.progress,
        "val_size": opts.val_size,
        "patience": opts.patience,
    }
    import torch

    # every row at once, before training: a value the preprocessing cannot encode is an error
    # naming its table row, and test rows among them cannot fail only after training
    X = pre.transform(frame[features])
    torch.manual_seed(opts.seed)  # the initial weights
    model = DeepTabularModel(pre, encs, opts.method, config)
    validation = None
    if len(val):
        va = frame.iloc[val]
        validation = (X[val], {e.name: _encode_validation(e, va[e.name]) for e in encs})
    model.train(X[train], {e.name: e.encode(tr[e.name]) for e in encs}, validation)
    te = frame.iloc[test].reset_index(drop=True)
    outs = model.outputs(te)
    scores = {e.name: score_target(e, te[e.name], outs[e.name]) for e in encs}
    return model, scores, (len(train), len(test), len(val))


def _fit_linear(frame, features: list[str], opts: FitOptions):
    import pandas as pd

    target = opts.targets[0]
    labelled = frame[~pd.isna(frame[target])].reset_index(drop=True)
    if labelled.empty:
        raise ValueError(f"target {target!r} has no value in any row")
    form = task_form(labelled[opts.task_col])
    tasks = task_text(labelled[opts.task_col], form)
    train, test = task_split(tasks, opts.test_size, opts.seed)
    tr = labelled.iloc[train]
    pre = FeaturePreprocessor.fit(tr[features])
    # every row of the table, before fitting (as the deep half): errors name table rows
    pre.transform(frame[features])
    enc = TargetEncoder.fit(tr[target], target, opts.kinds.get(target))
    est = linear_estimator(opts.method, enc.kind, opts.task_col, opts.alpha, opts.beta)
    X = pd.DataFrame(pre.transform(tr), columns=pre.feature_names)
    X[opts.task_col] = tasks[train]
    y = (
        tr[target].to_numpy(dtype=np.float64)
        if enc.kind == "regression"
        else enc.encode(tr[target])
    )
    if enc.kind != "regression":  # said here with the label, not its code (the estimator's 1.0)
        for t in np.unique(tasks[train]):
            seen = np.unique(y[tasks[train] == t])
            if seen.size < 2:
                raise ValueError(
                    f"target {target!r}: task {t!r} has only one class "
                    f"({enc.classes[int(seen[0])]!r}) in its training rows; a classifier needs "
                    "both classes in every task. Drop the task or add rows."
                )
    est.fit(X, y)
    model = LinearTabularModel.from_estimator(
        pre, enc, opts.method, est, {"task_col": opts.task_col, "task_form": form}
    )
    model.estimator_ = est  # the in-process estimator, for comparison; never saved
    te = labelled.iloc[test].reset_index(drop=True)
    out = model.outputs(te)[target]
    task_te = tasks[test]
    scores = {}
    for t in np.unique(task_te):
        rows = task_te == t
        part = {k: v[rows] for k, v in out.items()}
        scores[str(t)] = score_target(
            model.targets[0], te[target][rows].reset_index(drop=True), part
        )
    pooled = score_target(model.targets[0], te[target], out)  # all held-out rows together
    n_dropped = len(frame) - len(labelled)
    return model, scores, (len(train), len(test), n_dropped, pooled)


def _overall(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean over tasks of each metric (NaN values left out)."""
    table: dict[str, list[float]] = {}
    for per_task in scores.values():
        for metric, value in per_task.items():
            table.setdefault(metric, []).append(value)
    return {
        m: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for m, v in table.items()
    }


def fit_table(frame, opts: FitOptions, out: str | Path | None = None, dataset: str = "table"):
    """Fit a multi-task model on a user table and (optionally) write its folder.

    Parameters
    ----------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
    opts : FitOptions
    out : path, optional
        Folder receiving ``model.json`` (+ ``model.pt``), ``metrics.json`` and
        ``report.html``, all or nothing.
    dataset : str
        Name of the table in the metrics and the report.

    Returns
    -------
    FitResult
    """
    _check_options(opts)
    features = _check_columns(frame, opts)
    for name in opts.targets:  # errors name rows of the whole table: check before splitting
        check_finite(frame[name], name)
    check_finite_features(frame, features)
    start = time.perf_counter()
    if opts.half == "deep":
        model, scores, sizes = _fit_deep(frame, features, opts)
        extra = {"n_val": sizes[2], "selection": model.config["selection"]}
    else:
        model, scores, sizes = _fit_linear(frame, features, opts)
        extra = {"n_unlabelled_rows_dropped": sizes[2], "pooled": sizes[3]}
    seconds = time.perf_counter() - start
    metrics = {
        "dataset": dataset,
        "half": opts.half,
        "method": opts.method,
        "balancer": opts.balancer if opts.half == "deep" else None,
        "options": {k: v for k, v in asdict(opts).items() if k not in ("targets",)},
        "targets": {e.name: {"kind": e.kind, "classes": e.classes} for e in model.targets},
        "split": "test",
        "n_train": sizes[0],
        "n_test": sizes[1],
        **extra,
        "seconds": seconds,
        "tasks": scores,
        "overall": _overall(scores),
    }
    if out is not None:
        _write(model, metrics, Path(out))
    return FitResult(model, metrics)


def _artifacts(metrics: dict, label: str) -> dict:
    """Training curves and loss weights of a deep fit, for the report."""
    sel = metrics.get("selection")
    if not sel:
        return {}
    art = {"curves": sel["train_loss"], "weights": sel["loss_weights"]}
    return {(metrics["dataset"], label, metrics["options"]["seed"]): art}


def _write(model: TabularModel, metrics: dict, out: Path) -> None:
    from multitask.bench import RunResult, write_report

    label = metrics["method"] + (f"+{metrics['balancer']}" if metrics["balancer"] else "")
    digest = hashlib.sha256(json.dumps(metrics["options"], sort_keys=True).encode()).hexdigest()
    rows = [
        RunResult(
            metrics["dataset"],
            label,
            metrics["options"]["seed"],
            task,
            metric,
            value,
            "test",
            digest[:12],
            metrics["seconds"],
        )
        for task, per_task in [*metrics["tasks"].items(), (ALL, metrics["overall"])]
        for metric, value in per_task.items()
    ]
    with staged_dir(out) as stage:
        model.save(stage)
        write_json(metrics, stage / "metrics.json")
        with warnings.catch_warnings():  # a one-run report has no curves to put in legends
            warnings.filterwarnings("ignore", message="No artists with labels")
            write_report(
                rows,
                stage / "report.html",
                title=f"multitask fit: {metrics['dataset']}",
                artifacts=_artifacts(metrics, label),
            )
