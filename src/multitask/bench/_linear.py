"""Benchmark problems and methods of the classical (linear) half.

A linear problem is a long-format :class:`~multitask.datasets.MultiTaskData`
split per task into train / validation / test. Continuous features are
standardised and the target centred and scaled with training statistics only,
so one grid of regularisation strengths fits every dataset; predictions are
mapped back before any metric is computed.

Every method fits each point of its grid on the training split, picks the point
with the best validation score, and reports that model's test metrics.

Test metrics of a regression problem: the MSE of each task; over tasks
(``_all``), the nMSE (each task's MSE over its own test variance, averaged with
weights the tasks' test sizes: the MALSAR-era convention, see
:func:`multitask.metrics.aggregate`) and the explained variance of all test rows
together. A task whose test target is constant has no nMSE: it is left out of
the average (with a warning, and listed in the run's artifacts as
``nmse_left_out``) rather than failing the run; its MSE is still reported. A
problem adds the overall metrics of its published protocol
(``LinearProblem.reported``), e.g. the computer survey's RMSE averaged over
people (Argyriou, Evgeniou & Pontil 2008).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multitask.bench._runner import RunOutput

__all__ = ["LinearMethod", "LinearProblem", "load_linear_problem"]

ALL = "_all"


@dataclass(frozen=True)
class LinearProblem:
    """Train / validation / test splits of one long-format dataset."""

    name: str
    kind: str  # "regression" or "binary"
    task_col: str
    train: Any  # MultiTaskData
    val: Any
    test: Any
    half: str = "linear"
    #: training mean and deviation of a regression target (metrics are in its units)
    y_mean: float = 0.0
    y_std: float = 1.0
    #: overall test metrics of the dataset's published protocol, beyond the default ones:
    #: names of :data:`multitask.metrics.METRICS`, averaged over tasks (plain mean)
    reported: tuple[str, ...] = ()


def _standardise(train, *others):
    """Scale non-binary feature columns and (for regression) the target with train stats."""
    feats = train.feature_names
    Xtr = train.X[feats].to_numpy(float)
    binary = np.all(np.isin(Xtr, (0.0, 1.0)), axis=0)
    mean = np.where(binary, 0.0, Xtr.mean(0))
    std = np.where(binary, 1.0, Xtr.std(0))
    std[std == 0] = 1.0
    y_mean, y_std = 0.0, 1.0
    if train.kind == "regression":
        y_mean, y_std = float(train.y.mean()), float(train.y.std()) or 1.0

    def transform(data):
        X = data.X.copy()
        X[feats] = (X[feats].to_numpy(float) - mean) / std
        y = (data.y - y_mean) / y_std if data.kind == "regression" else data.y
        return type(data)(X=X, y=y, task_col=data.task_col, kind=data.kind, name=data.name)

    return [transform(d) for d in (train, *others)], (y_mean, y_std)


def load_linear_problem(
    name: str,
    seed: int,
    *,
    protocol: str | None = None,
    train_size: float = 0.6,
    val_size: float = 0.2,
    min_task_size: int = 10,
    reported: tuple[str, ...] = (),
    **load_kw,
) -> LinearProblem:
    """Load ``name`` and split it per task into train / val / test (stratified when binary).

    With ``protocol`` (a key of :data:`multitask.datasets.splits.PROTOCOLS`), the
    published train / test split is used and a quarter of each task's training
    rows is held out for validation. Otherwise the split is ``train_size`` /
    ``val_size`` / rest. Tasks with fewer than ``min_task_size`` rows are dropped
    first (they cannot be split three ways). A task that the validation share
    would leave with fewer than 2 training rows gives no validation row (see
    :func:`_validation_split`). ``reported`` names extra overall test metrics
    (see :class:`LinearProblem`).
    """
    from multitask.datasets import load
    from multitask.datasets.splits import protocol_split, train_test_split_per_task

    data = load(name, **load_kw)
    sizes = data.task_sizes()
    keep = sizes.index[sizes >= min_task_size]
    if len(keep) < len(sizes):
        data = data.subset(np.isin(data.task, keep.to_numpy()))
    if protocol is not None:
        rest, test = protocol_split(protocol, data, seed)
        train, val = _validation_split(rest, 0.75, seed=seed + 10_000)
    else:
        rest, test = train_test_split_per_task(data, train_size + val_size, seed=seed)
        train, val = _validation_split(rest, train_size / (train_size + val_size), seed + 10_000)
    (train, val, test), (y_mean, y_std) = _standardise(train, val, test)
    return LinearProblem(
        name, data.kind, data.task_col, train, val, test, "linear", y_mean, y_std, tuple(reported)
    )


#: training rows every task keeps; the linear estimators refuse a task with fewer
MIN_TRAIN_ROWS = 2


def _validation_split(rest, train_share: float, seed: int):
    """Per-task train / validation split that takes no validation row from a small task.

    ``train_test_split_per_task(rest, train_share, seed)``, except that a task
    with ``floor(train_share * n_t) < MIN_TRAIN_ROWS`` keeps all its rows for
    training and gives no validation row. The published School 10% split
    leaves the smallest schools 2 training rows; a quarter of them for
    validation would leave 1, on which no linear estimator fits. Validation is
    pooled over tasks (``_selection_score``), so a task without validation rows
    only drops out of the choice of hyper-parameters. When no task is that
    small, the split is exactly ``train_test_split_per_task``'s.
    """
    from multitask.datasets.splits import train_mask_per_task, train_test_split_per_task

    sizes = rest.task_sizes()
    n_train = np.floor(train_share * sizes.to_numpy() + 1e-9)
    small = np.isin(rest.task, sizes.index[n_train < MIN_TRAIN_ROWS].to_numpy())
    if not small.any():
        return train_test_split_per_task(rest, train_share, seed=seed)
    if small.all():
        raise ValueError(
            f"every task of {rest.name!r} has too few training rows ({sizes.max()} at most) to "
            f"hold any out for validation; use a protocol with more training rows"
        )
    is_val = np.zeros(rest.n_samples, dtype=bool)  # the other tasks split as usual
    is_val[~small] = ~train_mask_per_task(rest.subset(~small), train_share, seed=seed)
    return rest.subset(~is_val), rest.subset(is_val)


def _scores(
    kind: str, y: np.ndarray, pred: np.ndarray, tasks: np.ndarray, reported: tuple[str, ...] = ()
) -> tuple[dict, list[str]]:
    """Per-task and overall test metrics, keyed (task, metric), and the tasks left out of nMSE.

    nMSE is undefined for a task whose test target is constant: such tasks are
    left out of the weighted mean (see the module docstring), and no ``_all``
    nMSE row is given when every task is constant.
    """
    from multitask import metrics as M

    out = {}
    left_out: list[str] = []
    if kind == "regression":
        for t, v in M.per_task("mse", y, pred, tasks).items():
            out[(str(t), "mse")] = v
        # all values equal, tested directly: np.var of equal floats can be 1e-32, not 0
        constant = [t for t, v in M.per_task(_spread, y, y, tasks).items() if v == 0.0]
        left_out = [str(t) for t in constant]
        keep = ~np.isin(tasks, constant)
        if keep.any():
            nmse = M.aggregate("nmse", y[keep], pred[keep], tasks[keep], how="weighted")
            out[(ALL, "nmse")] = nmse
        if np.ptp(y) > 0:
            out[(ALL, "explained_variance")] = M.explained_variance(y, pred)
        for name in reported:
            out[(ALL, name)] = M.aggregate(name, y, pred, tasks, how="mean")
        message = (
            f"{len(left_out)} of {len(np.unique(tasks))} tasks have a constant test target "
            f"(no nMSE): left out of the overall nMSE: {left_out[:10]}"
            + (" ..." if len(left_out) > 10 else "")
        )
        if left_out and message not in _WARNED:  # once per split, not once per method
            _WARNED.add(message)
            warnings.warn(message, stacklevel=2)
    else:
        for t, v in M.per_task("auc", y, pred, tasks).items():
            out[(str(t), "auc")] = v
        out[(ALL, "auc")] = float(np.mean([v for (t, _), v in out.items() if t != ALL]))
    return out, left_out


#: constant-target warnings given in this process: every method of a suite meets the same
#: split (Python's own once-per-location registry is reset by any change to the filters)
_WARNED: set[str] = set()


def _spread(y_true, _y_pred) -> float:
    """Range of a task's targets: 0 exactly when they are all equal."""
    return float(np.ptp(np.asarray(y_true, dtype=float)))


def _selection_score(kind: str, y, pred, tasks) -> float:
    """Validation criterion, higher is better."""
    from multitask import metrics as M

    if kind == "regression":
        return -M.mse(y, pred)
    # pooled AUC: per-task validation sets can hold a single positive, or none
    return M.auc(y, pred)


@dataclass(frozen=True)
class LinearMethod:
    """A linear estimator with a hyper-parameter grid chosen on validation data.

    Parameters
    ----------
    name : str
    make : callable (kind, task_col, **params) -> estimator
    grid : dict of str to list
        Cartesian grid of hyper-parameters.
    paper : str
    year : int
    """

    name: str
    make: Callable[..., Any]
    grid: dict[str, list] = field(default_factory=dict)
    paper: str = ""
    year: int = 0
    half: str = "linear"

    def run(self, problem: LinearProblem, seed: int, options: dict) -> RunOutput:
        keys = list(self.grid)
        best = None
        path = []
        yv, tv = problem.val.y, problem.val.task
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            params = dict(zip(keys, combo, strict=True))
            est = self.make(problem.kind, problem.task_col, **params)
            est.fit(problem.train.X, problem.train.y)
            pred = _predict(est, problem.kind, problem.val.X)
            score = _selection_score(problem.kind, yv, pred, tv)
            path.append({**params, "val_score": score, "coef_norms": _coef_norms(est)})
            if best is None or score > best[0]:
                best = (score, params, est)
        _, params, est = best
        test = problem.test
        pred, y = _predict(est, problem.kind, test.X), np.asarray(test.y)
        if problem.kind == "regression":  # back to the target's units
            pred = pred * problem.y_std + problem.y_mean
            y = y * problem.y_std + problem.y_mean
        reported = getattr(problem, "reported", ())
        scores, left_out = _scores(problem.kind, y, pred, np.asarray(test.task), reported)
        values = {(task, metric, "test"): v for (task, metric), v in scores.items()}
        values[(ALL, "selection_score", "val")] = best[0]
        artifacts = {"params": params, "path": path}
        if left_out:
            artifacts["nmse_left_out"] = left_out
        cov = _task_covariance(est)
        if cov is not None:
            artifacts["task_covariance"] = cov
        return RunOutput(values, artifacts)


def _predict(est, kind, X):
    if kind == "regression":
        return est.predict(X)
    return est.decision_function(X)


def _coef_norms(est) -> list[float]:
    """Norm of each feature's row of W across tasks (for regularisation paths)."""
    coef = np.asarray(est.coef_)
    return np.linalg.norm(coef, axis=0).tolist()


#: fitted attributes holding a learned task relation matrix, preferred to the proxy
_LEARNED_RELATION = ("task_relation_",)


def _task_covariance(est) -> list[list[float]] | None:
    """The learned task relation of ``est`` if it has one, else the weight-vector correlation.

    ``ClusteredMTL*.task_relation_`` is the relaxed cluster matrix ``M`` (Zhou,
    Chen & Ye, NIPS 2011, eq. 9); estimators without one get the cosine of their
    task weight vectors (a proxy of task relatedness).
    """
    for name in _LEARNED_RELATION:
        learned = getattr(est, name, None)
        if learned is not None and 2 <= np.shape(learned)[0] <= 60:
            return np.asarray(learned, dtype=float).tolist()
    coef = np.asarray(est.coef_)
    if coef.shape[0] < 2 or coef.shape[0] > 60:
        return None
    norms = np.linalg.norm(coef, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit = coef / norms
    return (unit @ unit.T).tolist()
