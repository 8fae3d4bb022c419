"""Data containers: long-format multi-task data and multi-output data.

The linear half works on *long format*: one row per (task, sample), the task
id a column of ``X`` (see ``DESIGN.md``, "Data model"). :class:`MultiTaskData`
holds that. :class:`MultiOutputData` holds one design with several targets
(images with labels, census rows with several binary labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("regression", "binary", "multiclass")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}; pick the kind of the target")


@dataclass(frozen=True, eq=False)
class MultiTaskData:
    """Multi-task data in long format: one row per (task, sample).

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features + 1)
        Features plus the task column ``task_col``.
    y : ndarray of shape (n_samples,)
        Target of each row (of the row's task).
    task_col : str, default="task"
        Name of the column of ``X`` holding the task id.
    kind : {"regression", "binary", "multiclass"}, default="regression"
        Kind of the target, the same for every task.
    name : str, default=""
        Dataset name.
    description : str, default=""
        Origin and citation.
    meta : DataFrame of shape (n_samples, n_meta) or None, default=None
        Row-aligned information that is not a feature (e.g. the profile index
        of the computer survey, used by its published split).

    Notes
    -----
    The dataclass is frozen (attributes cannot be rebound); the arrays inside
    are not copied, so do not mutate them in place.
    """

    X: pd.DataFrame
    y: np.ndarray
    task_col: str = "task"
    kind: str = "regression"
    name: str = ""
    description: str = ""
    meta: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(self.X).__name__}")
        if self.task_col not in self.X.columns:
            raise ValueError(
                f"task column {self.task_col!r} is not a column of X "
                f"(columns: {list(self.X.columns)[:10]}...); pass task_col="
            )
        y = np.asarray(self.y)
        if y.ndim != 1 or y.shape[0] != len(self.X):
            raise ValueError(
                f"y must be 1-D with {len(self.X)} rows (one per row of X), got {y.shape}"
            )
        object.__setattr__(self, "y", y)
        _check_kind(self.kind)
        if self.meta is not None and len(self.meta) != len(self.X):
            raise ValueError(f"meta has {len(self.meta)} rows but X has {len(self.X)}")

    def __repr__(self) -> str:
        return (
            f"MultiTaskData(name={self.name!r}, n_samples={len(self.X)}, "
            f"n_tasks={self.n_tasks}, n_features={len(self.feature_names)}, kind={self.kind!r})"
        )

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns (every column of ``X`` but the task)."""
        return [str(c) for c in self.X.columns if c != self.task_col]

    @property
    def task(self) -> np.ndarray:
        """Task id of each row, ndarray of shape (n_samples,)."""
        return self.X[self.task_col].to_numpy()

    @property
    def tasks(self) -> np.ndarray:
        """Sorted unique task ids, ndarray of shape (n_tasks,)."""
        return np.unique(self.task)

    @property
    def n_tasks(self) -> int:
        """Number of distinct tasks."""
        return int(self.tasks.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return len(self.X)

    def task_sizes(self) -> pd.Series:
        """Number of rows per task, indexed by task id (sorted)."""
        return self.X[self.task_col].value_counts().sort_index()

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(X_features, y, task)`` as ndarrays.

        Returns
        -------
        X_features : ndarray of shape (n_samples, n_features), float64
        y : ndarray of shape (n_samples,)
        task : ndarray of shape (n_samples,)
        """
        feats = self.X.drop(columns=[self.task_col])
        return feats.to_numpy(dtype=np.float64), self.y, self.task

    def subset(self, rows: Any) -> MultiTaskData:
        """Rows selected by a boolean mask of shape (n_samples,) or integer indices."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            if idx.shape != (len(self.X),):
                raise ValueError(f"boolean mask must have shape ({len(self.X)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        X = self.X.iloc[idx].reset_index(drop=True)
        meta = None if self.meta is None else self.meta.iloc[idx].reset_index(drop=True)
        return replace(self, X=X, y=self.y[idx], meta=meta)


@dataclass(frozen=True, eq=False)
class MultiOutputData:
    """One design shared by several targets (multi-output data).

    Parameters
    ----------
    X : ndarray or DataFrame of shape (n_samples, ...)
        Design: a feature table, or images of shape (n_samples, height, width).
    targets : dict of str to ndarray of shape (n_samples,)
        One 1-D target per output.
    kinds : dict of str to str
        Kind of each target: "regression", "binary" or "multiclass".
    split : ndarray of shape (n_samples,) or None, default=None
        "train" / "test" for datasets published with a split.
    name : str, default=""
    description : str, default=""
    """

    X: Any
    targets: dict[str, np.ndarray]
    kinds: dict[str, str]
    split: np.ndarray | None = None
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.X)
        for key, t in self.targets.items():
            if np.asarray(t).shape != (n,):
                raise ValueError(f"target {key!r} must have shape ({n},), got {np.shape(t)}")
        if set(self.kinds) != set(self.targets):
            raise ValueError(
                f"kinds keys {sorted(self.kinds)} != targets keys {sorted(self.targets)}"
            )
        for k in self.kinds.values():
            _check_kind(k)
        if self.split is not None and np.shape(self.split) != (n,):
            raise ValueError(f"split must have shape ({n},), got {np.shape(self.split)}")

    def __repr__(self) -> str:
        return (
            f"MultiOutputData(name={self.name!r}, X.shape={tuple(np.shape(self.X))}, "
            f"targets={list(self.targets)})"
        )

    @property
    def n_samples(self) -> int:
        """Number of rows (images)."""
        return len(self.X)

    @property
    def Y(self) -> np.ndarray:
        """Targets stacked as columns, ndarray of shape (n_samples, n_targets)."""
        return np.column_stack([np.asarray(t) for t in self.targets.values()])

    def subset(self, rows: Any) -> MultiOutputData:
        """Rows selected by a boolean mask or integer indices."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        X = self.X.iloc[idx].reset_index(drop=True) if hasattr(self.X, "iloc") else self.X[idx]
        targets = {k: np.asarray(v)[idx] for k, v in self.targets.items()}
        split = None if self.split is None else self.split[idx]
        return replace(self, X=X, targets=targets, split=split)
