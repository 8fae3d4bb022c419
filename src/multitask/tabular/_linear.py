"""The linear half of ``multitask fit``: a long table fitted by a ``multitask.linear`` estimator.

The fitted coefficients (``coef_`` of shape (n_tasks, n_features),
``intercept_`` (n_tasks,), the task labels and the class labels) are stored in
``model.json``; prediction recomputes ``x . w_t + b_t`` from them exactly as
the estimator's ``decision_function`` does, so a loaded model predicts the
same numbers, with no pickle. A task not seen at fit time is predicted with the
mean of the task models (the estimators' ``unseen_task="mean"``).

Task ids are compared as text (``str(value)``; integers exactly, never through float64), so
``1`` in a CSV file and ``1`` in a Parquet file name the same task, and so do a Parquet
decimal ``1.10`` and a CSV cell ``1.1``.
"""

from __future__ import annotations

import decimal
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from multitask.tabular._features import decimal_objects
from multitask.tabular._model import MODEL_JSON, TabularModel, write_json

__all__ = ["LINEAR_METHODS", "LinearTabularModel", "linear_estimator"]

#: method name -> (regressor class name, classifier class name or None)
LINEAR_METHODS: dict[str, tuple[str, str | None]] = {
    "independent": ("IndependentRidge", "IndependentLogistic"),
    "pooled": ("PooledRidge", None),
    "group_lasso": ("GroupLassoRegressor", "GroupLassoClassifier"),
    "l1inf": ("L1InfRegressor", "L1InfClassifier"),
    "sparse_group_lasso": ("SparseGroupLassoRegressor", "SparseGroupLassoClassifier"),
    "trace_norm": ("TraceNormRegressor", "TraceNormClassifier"),
    "dirty": ("DirtyModelRegressor", "DirtyModelClassifier"),
    "robust": ("RobustMTLRegressor", "RobustMTLClassifier"),
    "mean_regularized": ("MeanRegularizedRegressor", "MeanRegularizedClassifier"),
    "clustered": ("ClusteredMTLRegressor", "ClusteredMTLClassifier"),
}


def linear_estimator(method: str, kind: str, task_col: str, alpha=None, beta=None):
    """A fresh estimator of :mod:`multitask.linear` for ``method`` and target ``kind``.

    Parameters
    ----------
    method : str
        A key of :data:`LINEAR_METHODS`.
    kind : {"regression", "binary"}
    task_col : str
    alpha, beta : float or None
        Regularisation strengths; None keeps the estimator's default.
    """
    import multitask.linear as lin

    if method not in LINEAR_METHODS:
        raise ValueError(
            f"unknown linear method {method!r}; valid names are {list(LINEAR_METHODS)}"
        )
    if kind == "multiclass":
        raise ValueError(
            "the linear estimators are regressors or binary classifiers; this target is "
            "multiclass. Use --kind regression, or a deep method on a wide table"
        )
    reg, clf = LINEAR_METHODS[method]
    name = reg if kind == "regression" else clf
    if name is None:
        raise ValueError(f"method {method!r} has no classifier; pick another linear method")
    params = {"task_col": task_col}
    for key, value in (("alpha", alpha), ("beta", beta)):
        if value is not None:
            params[key] = value
    cls = getattr(lin, name)
    if beta is not None and "beta" not in cls().get_params():
        raise ValueError(f"method {method!r} ({name}) has no beta; leave --beta out")
    return cls(**params)


#: how a task column names its tasks, saved with a model so that a table to predict, whose
#: own values would infer another type, reads the same names
TASK_FORMS = ("text", "int", "float")


def task_form(values) -> str:
    """``"text"`` (strings: ``"01"`` stays ``"01"``), ``"int"`` (integers, or floats all whole:
    ``1.0`` is ``"1"``, so a Parquet column names the same tasks as a CSV of integers) or
    ``"float"`` (other numbers: ``2.0`` is ``"2.0"``).

    ``decimal.Decimal`` values (a Parquet decimal column) are numbers: ``1.10`` and ``1.1``
    name one task, the one a CSV cell ``1.1`` names."""
    import pandas as pd

    values = pd.Series(values)
    if decimal_objects(values):
        whole = all(v == v.to_integral_value() for v in values.dropna())
        return "int" if whole else "float"
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "text"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    whole = values.dropna().to_numpy(dtype=np.float64)
    return "int" if np.all(np.mod(whole, 1) == 0) else "float"


def task_text(values, form: str | None = None) -> np.ndarray:
    """Task ids as text (object array) in ``form`` (:func:`task_form` of ``values`` when
    None; a model passes the form of its training column); a missing id is an error.

    A value that ``form`` cannot read (text under a numeric form, ``2.5`` under ``"int"``)
    keeps its own text: it names no task of the model.
    """
    import pandas as pd

    values = pd.Series(values)
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(
            f"the task column has a missing value at row {row}; every row needs a task"
        )
    form = task_form(values) if form is None else form
    if form == "text":
        return values.astype(str).to_numpy(dtype=object)
    # each distinct value once; integers stay exact (an 18-digit id is not rounded to
    # float64's 2**53 grid, which would merge neighbouring ids into one task)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    text = np.array([_task_id_text(v, form) for v in uniques], dtype=object)
    return text[codes]


def _task_id_text(value, form: str) -> str:
    """One task id in ``form`` (``"int"`` or ``"float"``); its own text if not a number."""
    own = str(value)
    if isinstance(value, bool | np.bool_):
        return own
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == int(value):
        value = int(value)  # a whole decimal exactly, however many digits
    if isinstance(value, int | np.integer):
        return str(int(value)) if form == "int" else str(float(value))
    if isinstance(value, str):
        text = value.strip()
        if form == "int":
            try:
                return str(int(text, 10))  # exact, however many digits
            except ValueError:
                pass
        try:
            value = float(text)
        except ValueError:
            return own
    else:
        try:
            value = float(value)
        except (TypeError, ValueError):
            return own
    if not np.isfinite(value):
        return own
    if form == "int":
        return str(int(value)) if value == int(value) else own
    return str(float(value))


class LinearTabularModel(TabularModel):
    """A long-table model of the linear half (see the module docstring).

    ``config`` holds ``task_col``, ``estimator`` (class name and parameters),
    ``tasks`` (labels as text), ``coef`` (n_tasks, n_features) and
    ``intercept`` (n_tasks,).
    """

    half = "linear"
    #: the fitted :mod:`multitask.linear` estimator (in the fitting process only; never saved)
    estimator_ = None

    @classmethod
    def from_estimator(cls, features, target, method, estimator, extra: dict):
        """Wrap a fitted estimator; a regression target is not rescaled here."""
        if target.kind == "regression":
            target = replace(target, mean=0.0, scale=1.0)
        params = {k: v for k, v in estimator.get_params().items() if _plain_json(v)}
        config = {
            **extra,
            "estimator": {"class": type(estimator).__name__, "params": params},
            "tasks": [str(t) for t in estimator.tasks_],
            "coef": np.asarray(estimator.coef_, dtype=np.float64).tolist(),
            "intercept": np.asarray(estimator.intercept_, dtype=np.float64).tolist(),
        }
        return cls(features, [target], method, config)

    @property
    def task_col(self) -> str:
        return self.config["task_col"]

    def text_columns(self) -> list[str]:
        """The columns to read as text from a CSV to predict: the categorical features, and
        the task column when its ids are text (``"02"`` must not read as the number 2)."""
        text = self.config.get("task_form") == "text"
        return [*super().text_columns(), *([self.task_col] if text else [])]

    def _scores(self, frame) -> dict[str, np.ndarray]:
        if self.task_col not in frame.columns:
            raise ValueError(
                f"the table lacks the task column {self.task_col!r}; "
                f"its columns are {list(frame.columns)}"
            )
        X = self.features.transform(frame)
        tasks = np.asarray(self.config["tasks"], dtype=object)
        coef = np.asarray(self.config["coef"], dtype=np.float64).reshape(len(tasks), -1)
        intercept = np.asarray(self.config["intercept"], dtype=np.float64)
        lookup = {t: i for i, t in enumerate(tasks)}
        ids = task_text(frame[self.task_col], self.config.get("task_form"))  # (older: None)
        codes = np.array([lookup.get(t, -1) for t in ids], np.intp)
        if (codes < 0).any():
            unseen = sorted(set(ids[codes < 0]))
            warnings.warn(
                f"{int((codes < 0).sum())} rows name tasks the model was not fitted on "
                f"({unseen[:5]}{' ...' if len(unseen) > 5 else ''}; its tasks are "
                f"{list(tasks[:5])}{' ...' if len(tasks) > 5 else ''}): predicted by the mean "
                "of the tasks' models",
                UserWarning,
                stacklevel=3,
            )
        coef = np.vstack([coef, coef.mean(0)])  # -1 indexes the mean model
        intercept = np.append(intercept, intercept.mean())
        rows = np.einsum("ij,ij->i", X, coef[codes]) + intercept[codes]
        return {self.targets[0].name: rows}

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``model.json`` (coefficients included) to ``folder``."""
        write_json(self._header(), Path(folder) / MODEL_JSON)

    @classmethod
    def load(cls, folder: Path, features, targets, data: dict) -> LinearTabularModel:
        """Rebuild from ``model.json``, checking the coefficient shapes."""
        cfg = data["config"]
        n_tasks, n_features = len(cfg["tasks"]), len(features.feature_names)
        coef = np.asarray(cfg["coef"], dtype=np.float64)
        if coef.shape != (n_tasks, n_features) or len(cfg["intercept"]) != n_tasks:
            raise ValueError(
                f"{folder / MODEL_JSON}: coef has shape {coef.shape} and intercept "
                f"{len(cfg['intercept'])} entries, expected ({n_tasks}, {n_features}) and "
                f"{n_tasks}; the file is corrupt, fit the model again"
            )
        if not isinstance(cfg["task_col"], str):
            raise ValueError(f"{folder / MODEL_JSON}: task_col is not a column name; fit again")
        return cls(features, targets, data["method"], cfg)


def _plain_json(value) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
