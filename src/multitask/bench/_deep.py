"""Benchmark problems and methods of the deep half.

A deep problem is one design with several named targets, split into train /
validation / test, already turned into float32 features (categoricals one-hot,
numerics standardised with training statistics only). Methods train an
architecture with a balancer through :class:`multitask.training.Trainer`,
select the model on validation data (the trainer restores the best epoch) and
report test metrics. The single-task baseline trains one network per task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multitask.bench._runner import RunOutput

__all__ = ["DEEP_PROBLEM_LOADERS", "DeepMethod", "DeepProblem", "per_epoch", "selection_metrics"]

ALL = "_all"


def _auc_or_nan(y_true, scores) -> float:
    """AUC, or NaN when the rows hold a single class (AUC is undefined there)."""
    from multitask.metrics import auc

    y = np.asarray(y_true).ravel()
    return auc(y, scores) if np.unique(y).size == 2 else float("nan")


def selection_metrics(kind: str) -> dict | None:
    """Validation metrics an epoch is chosen on, for ``Task(metrics=...)``.

    ``delta_m`` against the first epoch's values divides by them, so the metrics
    must not be 0 after one epoch: MSE, AUC and accuracy are continuous in the
    scores or rarely 0, unlike F1 of a rare class. None (the kind's defaults) for
    other kinds. Test rows are scored with every default metric of the kind.
    """
    from multitask import metrics as M

    table = {
        "regression": {"mse": M.mse},
        "binary": {"auc": _auc_or_nan},
        "multiclass": {"accuracy": M.accuracy},
    }
    return table.get(kind)


@dataclass(frozen=True)
class DeepProblem:
    """Float32 features and named targets for train / val / test."""

    name: str
    kinds: dict[str, str]
    n_outputs: dict[str, int]
    X: dict[str, np.ndarray]  # split -> (n, n_features)
    Y: dict[str, dict[str, np.ndarray]]  # split -> task -> (n,)
    half: str = "deep"
    #: optional trunk factory () -> (module, output width); images use it instead of the MLP
    encoder: Callable[[], tuple[Any, int]] | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.kinds)


def _split_indices(n: int, seed: int, fractions=(0.6, 0.2), stratify=None):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    rest, test = train_test_split(
        idx, train_size=sum(fractions), random_state=seed, stratify=stratify
    )
    strat_rest = None if stratify is None else stratify[rest]
    train, val = train_test_split(
        rest, train_size=fractions[0] / sum(fractions), random_state=seed + 1, stratify=strat_rest
    )
    return {"train": train, "val": val, "test": test}


def _text(column) -> np.ndarray:
    """A categorical column as text, a missing value as its own level ``<missing>``.

    (pandas 3 keeps NaN through ``astype(str)``, so it is filled first.)
    """
    return column.astype(object).fillna("<missing>").astype(str).to_numpy(dtype=object)


def _encode_table(frame, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One-hot categoricals and standardise numerics, fitted on the training rows."""
    import pandas as pd

    train = frame.iloc[rows["train"]]
    cat = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    num = [c for c in frame.columns if c not in cat]
    mean = train[num].mean()
    std = train[num].std().replace(0, 1.0)
    levels = {c: sorted(set(_text(train[c]))) for c in cat}

    def encode(part):
        blocks = [((part[num] - mean) / std).to_numpy(np.float32)]
        for c in cat:
            values = _text(part[c])
            blocks.append((values[:, None] == np.array(levels[c])[None, :]).astype(np.float32))
        return np.concatenate(blocks, axis=1)

    return {s: encode(frame.iloc[r]) for s, r in rows.items()}


def _multi_digits(seed: int, options: dict) -> DeepProblem:
    """MultiDigits: two scikit-learn digits side by side (8 x 16); tasks: left and right digit.

    The 1,797 digits are first split 60/20/20 into disjoint pools, and pairs are
    drawn within each pool, so no test digit is seen in training.
    """
    from multitask.datasets import load

    data = load("digits")
    images = data.X.astype(np.float32) / 16.0
    labels = data.targets["label"]
    pools = _split_indices(len(labels), seed, stratify=labels)
    rng = np.random.default_rng(seed)
    sizes = {"train": options.get("n_train", 3000), "val": 1000, "test": 1000}
    X, Y = {}, {}
    for split, pool in pools.items():
        left = rng.choice(pool, sizes[split])
        right = rng.choice(pool, sizes[split])
        X[split] = np.concatenate([images[left], images[right]], axis=2).reshape(sizes[split], -1)
        Y[split] = {"left": labels[left].astype(np.int64), "right": labels[right].astype(np.int64)}
    kinds = {"left": "multiclass", "right": "multiclass"}
    return DeepProblem("multi_digits", kinds, {"left": 10, "right": 10}, X, Y)


def _census_like(name: str, seed: int, options: dict, targets: tuple[str, ...]) -> DeepProblem:
    from multitask.datasets import load

    data = load(name)
    frame = data.X
    n = len(frame)
    if data.split is not None and "train" in set(data.split):
        train_all = np.flatnonzero(data.split == "train")
        test = np.flatnonzero(data.split == "test")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(train_all)
        n_val = len(perm) // 5
        rows = {"train": perm[n_val:], "val": perm[:n_val], "test": test}
    else:
        rows = _split_indices(n, seed, (0.5, 0.25), stratify=data.targets[targets[0]])
    limit = options.get("max_train")
    if limit:
        rows["train"] = rows["train"][: int(limit)]
    X = _encode_table(frame, rows)
    Y = {
        s: {t: np.asarray(data.targets[t], np.float32)[r] for t in targets} for s, r in rows.items()
    }
    kinds = {t: "binary" for t in targets}
    return DeepProblem(name, kinds, {t: 1 for t in targets}, X, Y)


DEEP_PROBLEM_LOADERS: dict[str, Callable[[int, dict], DeepProblem]] = {
    "multi_digits": _multi_digits,
    "adult": lambda seed, o: _census_like("adult", seed, o, ("income", "never_married")),
    "census_kdd_test": lambda seed, o: _census_like(
        "census_kdd_test", seed, o, ("income", "never_married")
    ),
}


class _Arrays:
    """A map-style dataset of ``(x, {task: y})`` over numpy arrays."""

    def __init__(self, X, Y):
        import torch

        self.X = torch.from_numpy(X)
        self.Y = {t: torch.from_numpy(y) for t, y in Y.items()}

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], {t: y[i] for t, y in self.Y.items()}


def _loader(problem: DeepProblem, split: str, tasks, batch_size: int, shuffle: bool):
    from torch.utils.data import DataLoader

    Y = {t: problem.Y[split][t] for t in tasks}
    return DataLoader(_Arrays(problem.X[split], Y), batch_size=batch_size, shuffle=shuffle)


def _mlp(in_dim: int, width: int):
    from torch import nn

    return nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())


def hard_sharing(problem: DeepProblem, tasks, width: int = 64):
    """A trunk (the problem's encoder, else an MLP) and one linear head per task."""
    from torch import nn

    from multitask.nn.architectures import HardSharing

    if problem.encoder is not None:
        trunk, width = problem.encoder()
    else:
        trunk = _mlp(problem.X["train"].shape[1], width)
    heads = {t: nn.Linear(width, problem.n_outputs[t]) for t in tasks}
    return HardSharing(trunk, heads)


def _train(problem, tasks, model, balancer, seed: int, options: dict):
    import torch

    from multitask.nn import Task
    from multitask.training import History, Trainer

    torch.manual_seed(seed)
    kinds = problem.kinds
    task_objs = [Task(t, kind=kinds[t], metrics=selection_metrics(kinds[t])) for t in tasks]
    history = History()
    trainer = Trainer(
        model,
        task_objs,
        balancer,
        lr=options.get("lr", 1e-3),
        max_epochs=options.get("max_epochs", 10),
        seed=seed,
        progress=False,
        callbacks=[history],
        device=options.get("device", "cpu"),
    )
    bs = options.get("batch_size", 128)
    trainer.fit(
        _loader(problem, "train", tasks, bs, True), _loader(problem, "val", tasks, 1024, False)
    )
    return trainer, history


def per_epoch(history, field: str) -> dict[str, list[float]]:
    """Per-task ``field`` ("losses" or "weights") of the step records, averaged per epoch."""
    by_epoch: dict[str, dict[int, list[float]]] = {}
    for rec in history.steps:
        values = getattr(rec, field)
        for task, value in (values or {}).items():
            by_epoch.setdefault(task, {}).setdefault(rec.epoch, []).append(value)
    return {t: [float(np.nanmean(v)) for _, v in sorted(e.items())] for t, e in by_epoch.items()}


def _cosines(trainer, problem, tasks) -> list[list[float]]:
    """Cosine between the tasks' gradients on the shared parameters, on one training batch."""
    from multitask.relatedness import gradient_affinity

    batch = next(iter(_loader(problem, "train", tasks, 512, False)))
    task_objs = [trainer.tasks[t] for t in tasks]
    return gradient_affinity(trainer.model, task_objs, [batch]).tolist()


def _affinity(trainer, problem, tasks, options) -> list[list[float]]:
    """TAG lookahead affinity ``Z[i][j]`` after training, on a few training batches.

    The lookahead step is ``options["affinity_lr"]`` (default 0.1: the trainer's
    Adam step is not a plain gradient step, and a tiny one gives affinities near 0).
    """
    from itertools import islice

    from multitask.relatedness import lookahead_affinity

    batches = list(islice(iter(_loader(problem, "train", tasks, 256, False)), 4))
    task_objs = [trainer.tasks[t] for t in tasks]
    lr = float(options.get("affinity_lr", 0.1))
    return lookahead_affinity(trainer.model, task_objs, batches, lr).tolist()


def _test_values(trainer, problem, tasks) -> dict[tuple[str, str, str], float]:
    """Every default metric of each task's kind on the test rows."""
    import torch

    from multitask.nn import Task

    preds = trainer.predict(_loader(problem, "test", tasks, 1024, False))
    values = {}
    for task in tasks:
        target = torch.from_numpy(np.asarray(problem.Y["test"][task]))
        scores = Task(task, kind=problem.kinds[task]).evaluate(preds[task], target)
        for metric, value in scores.items():
            values[(task, metric, "test")] = float(value)
    return values


def _add_overall(values: dict) -> dict:
    """Mean over tasks of each metric, as task ``_all``."""
    per_metric: dict[str, list[float]] = {}
    for (task, metric, split), v in values.items():
        if split == "test" and task != ALL:
            per_metric.setdefault(metric, []).append(v)
    for metric, vs in per_metric.items():
        values[(ALL, metric, "test")] = float(np.mean(vs))
    return values


@dataclass(frozen=True)
class DeepMethod:
    """An architecture trained with a balancer.

    Parameters
    ----------
    name : str
    build : callable (problem, tasks) -> MultiTaskModule
    balancer : callable (n_tasks) -> balancer, or None for equal weighting
    single_task : bool
        Train one model per task (the baseline).
    """

    name: str
    build: Callable[..., Any] = hard_sharing
    balancer: Callable[[int], Any] | None = None
    single_task: bool = False
    paper: str = ""
    year: int = 0
    half: str = "deep"
    extra: dict = field(default_factory=dict)

    def run(self, problem: DeepProblem, seed: int, options: dict) -> RunOutput:
        import torch

        torch.set_num_threads(int(options.get("torch_threads", 1)))
        groups = [[t] for t in problem.tasks] if self.single_task else [problem.tasks]
        values: dict = {}
        artifacts: dict[str, Any] = {"tasks": problem.tasks, "curves": {}, "weights": {}}
        for tasks in groups:
            # the initial weights come from the run's seed, not from whatever ran before in
            # this process (cached cells on resume, --jobs workers, the suite's order)
            torch.manual_seed(seed)
            model = self.build(problem, tasks)
            balancer = self.balancer(len(tasks)) if self.balancer else None
            trainer, history = _train(problem, tasks, model, balancer, seed, options)
            values.update(_test_values(trainer, problem, tasks))
            artifacts["curves"].update(per_epoch(history, "losses"))
            artifacts["weights"].update(per_epoch(history, "weights"))
            if len(tasks) > 1:
                artifacts["cosines"] = _cosines(trainer, problem, tasks)
                artifacts["affinity"] = _affinity(trainer, problem, tasks, options)
        return RunOutput(_add_overall(values), artifacts)
