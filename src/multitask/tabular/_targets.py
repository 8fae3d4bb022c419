"""Target columns: kind inference, label maps, and encoding with missing-label masks.

Kind of a target, from its non-missing training values (overridable):

- one distinct value: an error (nothing to learn);
- two distinct values (any labels: numbers, strings, booleans): ``binary``;
  the sorted labels map to 0 and 1;
- text values, or integer-valued numbers with at most ``MAX_CLASSES``
  distinct values: ``multiclass`` (labels sorted, mapped to 0..C-1);
- other numbers: ``regression``.

Missing values (empty cells, NaN) are missing labels: masked per task by the
deep half (NaN / ``ignore_index``), rows left out by the linear half. Infinite
values are an error, and so are numbers so large that their standard deviation
overflows (:func:`check_finite`). A column of ``decimal.Decimal`` objects (how pandas
reads a Parquet decimal) holds numbers, read as float64. Dates, times and durations
are not targets: an error, before any training.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

import numpy as np

from multitask.tabular._features import decimal_objects

__all__ = ["IGNORE_INDEX", "KINDS", "MAX_CLASSES", "TargetEncoder", "check_finite"]

KINDS = ("regression", "binary", "multiclass")
MAX_CLASSES = 20
IGNORE_INDEX = -100


def _plain(value):
    """A numpy scalar as a JSON-safe Python value."""
    return value.item() if hasattr(value, "item") else value


def _check_type(s, name: str) -> None:
    """Raise on a date, time or duration target: not a kind this library learns."""
    import pandas as pd

    temporal = (
        datetime.date,
        datetime.time,
        datetime.timedelta,
        np.datetime64,
        np.timedelta64,
        pd.Period,
    )
    dtype = s.dtype
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
        or (
            pd.api.types.is_object_dtype(dtype) and any(isinstance(v, temporal) for v in s.dropna())
        )
    ):
        raise ValueError(
            f"target {name!r} holds dates, times or durations ({dtype}); a target must be "
            "numbers or labels: convert it (e.g. to a number of days, or to text labels) "
            "or pick another target"
        )


def _finite_values(s, name: str):
    """Non-missing values of ``s`` and the missing mask; raises on infinities and on date /
    duration values. Decimal objects (Parquet decimals) are read as float64 numbers."""
    import pandas as pd

    _check_type(s, name)
    if decimal_objects(s):
        s = s.astype("float64")
    missing = pd.isna(s).to_numpy()
    values = s[~missing]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        as_float = values.astype("float64").to_numpy()
        if np.isinf(as_float).any():
            row = int(np.flatnonzero(~missing)[np.flatnonzero(np.isinf(as_float))[0]])
            raise ValueError(
                f"target {name!r} holds an infinite value at row {row}; targets must be "
                "finite (leave a cell empty to mark a missing label)"
            )
    return values, missing


def check_finite(s, name: str) -> None:
    """Raise if target ``s`` holds an infinite value (NaN is a missing label), or numbers too
    large for their standard deviation (the deep half's regression scale) to be finite."""
    import pandas as pd

    values, missing = _finite_values(s, name)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        y = values.astype("float64").to_numpy()
        with np.errstate(over="ignore", invalid="ignore"):  # said just below
            spread = float(y.std()) if y.size else 0.0
        if not np.isfinite(spread):
            at = int(np.argmax(np.abs(y)))
            raise ValueError(
                f"target {name!r} holds values too large to standardise (e.g. {float(y[at])!r} "
                f"at row {int(np.flatnonzero(~missing)[at])}): their standard deviation "
                "overflows float64; fix the value, leave it empty (missing) or rescale the column"
            )


def _infer_kind(values, name: str) -> str:
    import pandas as pd

    n_distinct = values.nunique()
    if n_distinct == 2:
        return "binary"
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        if n_distinct > MAX_CLASSES:
            raise ValueError(
                f"target {name!r} has {n_distinct} distinct text values; a classification "
                f"target may have at most {MAX_CLASSES} classes. Encode it as numbers for "
                "regression, or pick another target"
            )
        return "multiclass"
    floats = values.astype("float64").to_numpy()
    integral = bool(np.all(floats == np.round(floats)))
    return "multiclass" if integral and n_distinct <= MAX_CLASSES else "regression"


@dataclass(frozen=True)
class TargetEncoder:
    """How one target column is learnt: kind, labels, and (regression) scaling.

    Attributes
    ----------
    name : str
        The column.
    kind : {"regression", "binary", "multiclass"}
    classes : list or None
        Labels in code order (classification); JSON-safe Python values.
    mean, scale : float
        Training mean and standard deviation of a regression target (the deep
        half learns ``(y - mean) / scale``); 0 and 1 otherwise.
    """

    name: str
    kind: str
    classes: list | None = None
    mean: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, s, name: str, kind: str | None = None) -> TargetEncoder:
        """Learn the encoding of target ``s`` from the training rows.

        Parameters
        ----------
        s : pandas.Series of shape (n_rows,)
        name : str
        kind : {"regression", "binary", "multiclass"} or None
            None: inferred (see the module docstring).
        """
        import pandas as pd

        if kind is not None and kind not in KINDS:
            raise ValueError(f"--kind {name}={kind}: unknown kind; use one of {list(KINDS)}")
        values, _ = _finite_values(s, name)
        n_distinct = values.nunique()
        if n_distinct < 2:
            seen = [_plain(v) for v in values.unique()[:1]]
            raise ValueError(
                f"target {name!r} has {n_distinct} distinct value(s) {seen} in the training "
                "rows; a target needs at least two classes (or values) to learn anything"
            )
        kind = kind or _infer_kind(values, name)
        if kind == "regression":
            if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                raise ValueError(
                    f"target {name!r} holds text (e.g. {values.iloc[0]!r}) and cannot be a "
                    f"regression target; use --kind {name}=binary or multiclass"
                )
            y = values.astype("float64").to_numpy()
            std = float(y.std())
            return cls(name, kind, None, float(y.mean()), std if std > 0 else 1.0)
        if kind == "binary" and n_distinct != 2:
            raise ValueError(
                f"target {name!r} has {n_distinct} distinct values; binary needs exactly 2 "
                f"(use --kind {name}=multiclass or regression)"
            )
        labels = [_plain(v) for v in values.unique()]
        try:
            classes = sorted(labels)
        except TypeError:  # mixed label types: order by their text
            classes = sorted(labels, key=str)
        return cls(name, kind, classes)

    @property
    def n_outputs(self) -> int:
        """Width of the model output for this target."""
        return len(self.classes) if self.kind == "multiclass" else 1

    def encode(self, s, strict: bool = True) -> np.ndarray:
        """Training codes of ``s`` (n_rows,): float with NaN, or int64 with ``IGNORE_INDEX``.

        Regression: ``(y - mean) / scale`` (float32). Binary: 0/1 (float32).
        Multiclass: 0..C-1 (int64). A label not seen at fit time is an error,
        or (``strict=False``, for scoring) the code -1.
        """
        values, missing = _finite_values(s, self.name)
        if self.kind == "regression":
            y = np.full(len(s), np.nan)
            y[~missing] = (values.astype("float64").to_numpy() - self.mean) / self.scale
            return y.astype(np.float32)
        lookup = {c: i for i, c in enumerate(self.classes)}
        codes = np.full(len(s), -1, dtype=np.int64)
        try:
            codes[~missing] = [
                lookup[_plain(v)] if strict else lookup.get(_plain(v), -1) for v in values
            ]
        except KeyError as exc:
            raise ValueError(
                f"target {self.name!r} holds the label {exc.args[0]!r}, not among the "
                f"training labels {self.classes}"
            ) from None
        if self.kind == "binary":
            return np.where(missing, np.nan, codes).astype(np.float32)
        return np.where(missing, IGNORE_INDEX, codes)

    def labels(self, codes: np.ndarray) -> np.ndarray:
        """Class labels (object array) of integer ``codes``."""
        return np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype=np.intp)]

    def to_dict(self) -> dict:
        """Plain-JSON form (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TargetEncoder:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
