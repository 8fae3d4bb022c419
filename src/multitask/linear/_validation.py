"""Input validation and task encoding for the estimators of :mod:`multitask.linear`.

Everything here runs before any fitting work and raises a ``ValueError`` that
says what was wrong and what to do (STYLE.md rule 17).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets

__all__ = [
    "FitData",
    "check_bool",
    "check_solver_params",
    "check_strength",
    "encode_binary",
    "encode_tasks",
    "split_task_column",
    "task_lookup",
    "validate_features",
]


@dataclass(frozen=True)
class FitData:
    """Validated training data in the internal layout.

    Attributes
    ----------
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Features without the task column.
    y : ndarray of shape (n_samples,) or (n_samples, n_tasks)
        Targets; 2-D only for the shared design (``shared=True``).
    task_idx : ndarray of shape (n_samples,) or None
        Integer task codes ``0 .. n_tasks-1``; None for the shared design.
    tasks : ndarray of shape (n_tasks,)
        Task labels (sorted unique values of the task column).
    sample_weight : ndarray of shape (n_samples,) or None
    shared : bool
        True when ``task_col=None`` and ``y`` is 2-D.
    """

    X: object
    y: np.ndarray
    task_idx: object
    tasks: np.ndarray
    sample_weight: object
    shared: bool

    @property
    def n_tasks(self):
        return len(self.tasks)


def check_strength(value, name):
    """Check that a regularisation strength is a finite number >= 0.

    Raises
    ------
    ValueError
        If ``value`` is negative, NaN or infinite.
    """
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not numeric or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be a finite number >= 0.")
    return float(value)


def check_bool(value, name):
    """Check that a flag is a bool (``np.bool_`` too), as scikit-learn's ``"boolean"``.

    Raises
    ------
    TypeError
        For anything else: the string ``"False"`` is truthy and was read as True.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} is not allowed; {name} must be True or False.")
    return bool(value)


def check_solver_params(tol, max_iter):
    """Check ``tol`` (a finite number >= 0) and ``max_iter`` (an integer >= 1).

    Raises
    ------
    ValueError
        Before any work, saying which value is wrong.
    """
    check_strength(tol, "tol")
    if not isinstance(max_iter, (int, np.integer)) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} is not allowed; max_iter must be an integer >= 1.")


def _column_position(X, task_col):
    """Position of ``task_col`` among the columns of ``X``."""
    if isinstance(X, pd.DataFrame):
        if task_col in X.columns:
            return X.columns.get_loc(task_col)
        raise ValueError(
            f"task_col={task_col!r} is not a column of X; columns are "
            f"{list(X.columns)[:10]}... Pass the name of the task column."
        )
    n_cols = X.shape[1] if getattr(X, "ndim", 0) == 2 else 0
    if not isinstance(task_col, (int, np.integer)) or not -n_cols <= task_col < n_cols:
        raise ValueError(
            f"task_col={task_col!r} must be an integer column index in "
            f"[0, {n_cols}) for an array X of shape {getattr(X, 'shape', None)}."
        )
    return int(task_col) % n_cols


def split_task_column(X, task_col):
    """Split the task column off ``X``.

    Parameters
    ----------
    X : DataFrame, ndarray or scipy sparse matrix of shape (n_samples, n_columns)
    task_col : str, int or None
        Column name (DataFrame) or integer position (array) of the task id.

    Returns
    -------
    features : DataFrame, ndarray or sparse matrix of shape (n_samples, n_columns - 1)
        ``X`` without the task column (``X`` itself when ``task_col`` is None).
    task_values : ndarray of shape (n_samples,) or None
        The task id of each row.
    """
    if task_col is None:
        return X, None
    if not isinstance(X, pd.DataFrame) and not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D (n_samples, n_columns) with the task in column "
                f"{task_col!r}; got an array of shape {X.shape}."
            )
    pos = _column_position(X, task_col)
    keep = [j for j in range(X.shape[1]) if j != pos]
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, keep], X.iloc[:, pos].to_numpy()
    if sp.issparse(X):
        X = sp.csc_array(X)
        return X[:, keep], X[:, [pos]].toarray().ravel()
    return X[:, keep], X[:, pos]


def validate_features(X):
    """Validate the feature matrix: 2-D, numeric, finite, dense float or CSR/CSC."""
    return check_array(
        X,
        accept_sparse=["csr", "csc"],
        dtype=np.float64,
        ensure_all_finite=True,
        input_name="X",
    )


def encode_tasks(task_values, tasks=None):
    """Encode task labels as integer codes.

    Parameters
    ----------
    task_values : array-like of shape (n_samples,)
        Task id of each row.
    tasks : ndarray of shape (n_tasks,) or None
        Known task labels (fit time: None, learnt here as the sorted unique
        values).

    Returns
    -------
    codes : ndarray of int of shape (n_samples,)
        Code of each row's task; -1 for a task not in ``tasks``.
    tasks : ndarray of shape (n_tasks,)
    """
    task_values = np.asarray(task_values)
    if pd.isna(task_values).any():
        bad = int(np.flatnonzero(pd.isna(task_values))[0])
        raise ValueError(
            f"the task column holds a missing value (NaN/None) at row {bad}; every "
            "row needs a task id. Drop or fill those rows."
        )
    if tasks is None:
        try:
            tasks, codes = np.unique(task_values, return_inverse=True)
        except TypeError:
            kinds = sorted({type(v).__name__ for v in task_values.ravel()})
            raise ValueError(
                f"the task column mixes ids of types {kinds} that cannot be sorted "
                "together; give every task id the same type (e.g. all str)."
            ) from None
        return codes.astype(np.intp), tasks
    # each distinct id once, matched by Python equality: exact across int64, uint64, float and
    # Decimal ids (numpy promotes int64 against uint64 or float64 to float64, where 2**60 + 1
    # and 2**60 + 2 are one number and 2**60 + 1 equals the float 2**60); an id of another
    # type than at fit (e.g. '1' for 1) is unseen
    rows, distinct = pd.factorize(task_values, use_na_sentinel=False)
    lookup = task_lookup(tasks)
    codes = np.array([lookup.get(v, -1) for v in distinct.tolist()], dtype=np.intp)
    return codes[rows], tasks


def task_lookup(tasks):
    """Task label -> its code (position in ``tasks``), for matching labels by Python equality
    (``1 == 1.0``, ``Decimal('1.10') == Decimal('1.1')``; ``'1' != 1``, ``2**60 + 1 !=
    float(2**60)``)."""
    return {label: code for code, label in enumerate(tasks.tolist())}


def task_label(label):
    """A task label as a plain Python value, for error messages."""
    return label.item() if hasattr(label, "item") else label


def check_task_sizes(task_idx, tasks, sample_weight=None):
    """Raise if a task has fewer than 2 rows (or fewer than 2 with weight > 0)."""
    counts = np.bincount(task_idx, minlength=len(tasks))
    if sample_weight is not None:
        counts = np.bincount(task_idx, weights=sample_weight > 0, minlength=len(tasks))
    bad = np.flatnonzero(counts < 2)
    if bad.size:
        t = bad[0]
        raise ValueError(
            f"task {task_label(tasks[t])!r} has {int(counts[t])} sample(s) (with positive weight); "
            f"each task needs at least 2 samples (got {int(counts[t])} sample"
            f"{'' if counts[t] == 1 else 's'}). Drop the task or give it more rows."
        )


def encode_binary(y, task_idx, tasks, sample_weight=None):
    """Encode binary labels as {-1, +1} and check every task has both classes.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_tasks)
    task_idx : ndarray of shape (n_samples,) or None
        Task codes; None for a shared design (2-D ``y``, one task per column).
    tasks : ndarray of shape (n_tasks,)
    sample_weight : ndarray of shape (n_samples,), optional
        Both classes must occur among each task's rows of positive weight (the rows
        the objective sees, as :func:`check_task_sizes` counts them): a class seen
        only in rows of weight 0 would send the task's intercept off to infinity.

    Returns
    -------
    y_pm : ndarray of float of shape like ``y``, values in {-1, +1}
    classes : ndarray of shape (2,)
    """
    y = np.asarray(y)
    check_classification_targets(y.ravel() if y.ndim == 2 else y)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; every label must be finite.")
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(
            f"Only binary classification is supported: y needs exactly 2 classes; got "
            f"{classes.size} class(es) {classes[:5].tolist()}. Use one classifier per "
            "pair of labels (e.g. sklearn's OneVsRestClassifier)."
        )
    y_pm = np.where(y == classes[1], 1.0, -1.0)
    seen = np.ones(len(y_pm), bool) if sample_weight is None else np.asarray(sample_weight) > 0
    if y_pm.ndim == 2:
        cols = y_pm[seen].T
    else:
        cols = [y_pm[(task_idx == t) & seen] for t in range(len(tasks))]
    for t, y_t in enumerate(cols):
        if np.unique(y_t).size < 2:
            weighted = "" if sample_weight is None else " among its rows of positive weight"
            raise ValueError(
                f"task {task_label(tasks[t])!r} has only one class{weighted} "
                f"({task_label(classes[int(y_t[0] > 0)])!r}); "
                "a classifier needs both classes in every task. Drop the task or add rows."
            )
    return y_pm, classes
