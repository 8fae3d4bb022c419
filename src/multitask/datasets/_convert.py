"""Converters to long format: a list of per-task arrays, or a shared design with 2-D Y."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from multitask.datasets._data import MultiTaskData


def _feature_names(n_features: int, feature_names: Sequence[str] | None) -> list[str]:
    if feature_names is None:
        return [f"x{j}" for j in range(n_features)]
    names = [str(f) for f in feature_names]
    if len(names) != n_features:
        raise ValueError(f"got {len(names)} feature_names for {n_features} features")
    return names


def _task_names(n_tasks: int, task_names: Sequence | None) -> list:
    if task_names is None:
        return list(range(n_tasks))
    names = list(task_names)
    if len(names) != n_tasks or len(set(names)) != n_tasks:
        raise ValueError(f"task_names must be {n_tasks} distinct names, got {names[:10]}")
    return names


def from_arrays(
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    task_names: Sequence | None = None,
    feature_names: Sequence[str] | None = None,
    kind: str = "regression",
    task_col: str = "task",
    name: str = "",
    description: str = "",
) -> MultiTaskData:
    """Stack per-task ``(X_t, y_t)`` pairs into long format.

    Parameters
    ----------
    tasks : sequence of (ndarray of shape (n_t, n_features), ndarray of shape (n_t,))
        One design and target per task; every task has the same features.
    task_names : sequence of length n_tasks, optional
        Task ids; default ``0, 1, ..., n_tasks - 1``.
    feature_names : sequence of str, optional
        Default ``x0, x1, ...``.
    kind : {"regression", "binary", "multiclass"}, default="regression"
    task_col : str, default="task"

    Returns
    -------
    MultiTaskData
        Rows of task 0 first, then task 1, ...
    """
    if len(tasks) == 0:
        raise ValueError("from_arrays needs at least one (X_t, y_t) pair")
    Xs = [np.atleast_2d(np.asarray(X_t, dtype=np.float64)) for X_t, _ in tasks]
    ys = [np.asarray(y_t).ravel() for _, y_t in tasks]
    n_features = Xs[0].shape[1]
    for t, (X_t, y_t) in enumerate(zip(Xs, ys, strict=True)):
        if X_t.shape[1] != n_features:
            raise ValueError(f"task {t} has {X_t.shape[1]} features, task 0 has {n_features}")
        if X_t.shape[0] != y_t.shape[0]:
            raise ValueError(f"task {t}: X_t has {X_t.shape[0]} rows but y_t has {y_t.shape[0]}")
    names = _task_names(len(tasks), task_names)
    cols = _feature_names(n_features, feature_names)
    if task_col in cols:
        raise ValueError(f"task_col={task_col!r} clashes with a feature name; rename one")
    X = pd.DataFrame(np.vstack(Xs), columns=cols)
    X.insert(0, task_col, np.repeat(np.asarray(names, dtype=object), [len(y) for y in ys]))
    X[task_col] = X[task_col].infer_objects()
    y = np.concatenate(ys)
    return MultiTaskData(X, y, task_col, kind, name, description)


def from_wide(
    X: np.ndarray | pd.DataFrame,
    Y: np.ndarray | pd.DataFrame,
    task_names: Sequence | None = None,
    kind: str = "regression",
    task_col: str = "task",
    name: str = "",
    description: str = "",
) -> MultiTaskData:
    """Turn a shared design with a 2-D target into long format.

    Row ``i`` of ``X`` appears once per task ``t``, with target ``Y[i, t]``.
    Rows whose target is NaN are dropped (a missing label for that task).

    Parameters
    ----------
    X : ndarray or DataFrame of shape (n_samples, n_features)
    Y : ndarray or DataFrame of shape (n_samples, n_tasks)
    task_names : sequence of length n_tasks, optional
        Default: the columns of ``Y`` if a DataFrame, else ``0, ..., n_tasks - 1``.

    Returns
    -------
    MultiTaskData
        ``n_tasks`` blocks of (at most) ``n_samples`` rows, task by task.
    """
    if task_names is None and isinstance(Y, pd.DataFrame):
        task_names = list(Y.columns)
    feature_names = list(map(str, X.columns)) if isinstance(X, pd.DataFrame) else None
    Xa = np.asarray(X, dtype=np.float64)
    Ya = np.asarray(Y, dtype=np.float64)
    if Ya.ndim != 2 or Ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"Y must be 2-D with {Xa.shape[0]} rows, got shape {Ya.shape}")
    pairs = []
    for t in range(Ya.shape[1]):
        keep = ~np.isnan(Ya[:, t])
        pairs.append((Xa[keep], Ya[keep, t]))
    return from_arrays(pairs, task_names, feature_names, kind, task_col, name, description)
