"""Feature preprocessing fitted on the training rows only, saved as JSON.

- Numeric columns (numbers and booleans; a boolean column with empty cells,
  which pandas reads as objects ``True`` / ``False`` / NaN, is one too, and so
  is a column of ``decimal.Decimal`` objects, a Parquet decimal) are
  standardised with the training mean and standard deviation (a constant
  column gets scale 1). Missing values are imputed with the training median
  *before* standardising, and a column that had missing values in the
  training rows gets an extra 0/1 indicator column ``<name>__missing``. A
  missing value at predict time in a column that had none in training is
  imputed the same way (no indicator). Infinite values are an error, and so
  are finite values too large for the arithmetic: a column whose training mean
  or standard deviation overflows float64, or a value whose standardised form
  lies beyond float32's range (about ±3.4e38, the deep half computes in
  float32), which would otherwise turn into infinities and then NaN outputs
  (or, in the training rows, an infinite scale that silently zeroes the
  column).
- Every other column is categorical (read as text): one-hot over the levels
  seen in the training rows (at most ``max_levels``, the most frequent;
  ties by name). A missing value is the level ``"<missing>"``. A level not kept
  at fit time (unknown at predict time, or rare) is encoded as all zeros.
  Levels are compared as text, so read a categorical column as text at predict
  time (``read_table(path, text_columns=...)``): a file holding only the
  levels ``"1"`` and missing would otherwise be read as numbers, ``"1.0"``.
"""

from __future__ import annotations

import decimal
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["FeaturePreprocessor", "check_finite_features", "decimal_objects"]

MISSING_LEVEL = "<missing>"
#: the largest standardised value :meth:`FeaturePreprocessor.transform` returns
#: (float32's: the deep half casts the features to float32)
MAX_STANDARDISED = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class FeaturePreprocessor:
    """Column-wise encoding learnt from training rows.

    Build it with :meth:`fit`; apply it with :meth:`transform`; store it with
    :meth:`to_dict` / :meth:`from_dict` (plain JSON types only).

    Attributes
    ----------
    numeric : dict of str -> dict
        Per numeric column: ``mean``, ``scale``, ``median`` and
        ``indicator`` (bool), all from the training rows.
    categorical : dict of str -> list of str
        Per categorical column: the levels that get a one-hot column.
    columns : list of str
        Input columns, in order.
    """

    columns: list[str]
    numeric: dict[str, dict] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame, max_levels: int = 100) -> FeaturePreprocessor:
        """Learn the encoding from the training rows ``frame`` (n_rows, n_columns)."""
        numeric, categorical = {}, {}
        for col in frame.columns:
            s = frame[col]
            if _is_numeric(s):
                values = _numeric_values(s, col)
                seen = values[~np.isnan(values)]
                if seen.size == 0:
                    raise ValueError(
                        f"feature column {col!r} has no values in the training rows; "
                        "drop it (--ignore) or fill it"
                    )
                numeric[col] = _column_stats(values, col)
            else:
                counts = _as_text(s).value_counts(sort=False)
                order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                categorical[col] = sorted(level for level, _ in order[:max_levels])
        return cls(list(frame.columns), numeric, categorical)

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded columns, in order."""
        names = []
        for col in self.columns:
            if col in self.numeric:
                names.append(col)
                if self.numeric[col]["indicator"]:
                    names.append(f"{col}__missing")
            else:
                names.extend(f"{col}={level}" for level in self.categorical[col])
        return names

    def transform(self, frame) -> np.ndarray:
        """Encode ``frame`` (must hold every fitted column).

        Categorical columns are compared as text: read them as text
        (``read_table(path, text_columns=self.categorical)``), so that ``"1"``
        stays ``"1"`` whatever else the file holds.

        Returns
        -------
        X : ndarray of float64 of shape (n_rows, len(feature_names))
        """
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"the table lacks the feature column(s) {missing} the model was trained on; "
                f"its columns are {list(frame.columns)}"
            )
        blocks = []
        for col in self.columns:
            if col in self.numeric:
                blocks.extend(self._numeric_block(frame[col], col))
            else:
                blocks.append(self._one_hot(frame[col], col))
        if not blocks:
            return np.zeros((len(frame), 0))
        return np.concatenate([b.reshape(len(frame), -1) for b in blocks], axis=1)

    def _one_hot(self, s, col: str) -> np.ndarray:
        """(n_rows, n_levels) indicators; an unknown level is a row of zeros."""
        import pandas as pd

        levels = self.categorical[col]
        codes = pd.Index(levels, dtype=object).get_indexer(_as_text(s))  # -1: not a kept level
        out = np.zeros((len(s), len(levels)))
        rows = np.flatnonzero(codes >= 0)
        out[rows, codes[rows]] = 1.0
        return out

    def _numeric_block(self, s, col: str) -> list[np.ndarray]:
        stats = self.numeric[col]
        values = _numeric_values(s, col)
        nan = np.isnan(values)
        filled = np.where(nan, stats["median"], values)
        with np.errstate(over="ignore"):  # an overflow is found and said just below
            z = (filled - stats["mean"]) / stats["scale"]
        # said here, with the row, rather than left to become inf in float32 and NaN outputs
        beyond = np.flatnonzero(~(np.abs(z) <= MAX_STANDARDISED))
        if beyond.size:
            row = int(beyond[0])
            raise ValueError(
                f"feature column {col!r} holds {float(filled[row])!r} at row {row}, which "
                f"standardises (training mean {stats['mean']:.6g}, scale {stats['scale']:.6g}) to "
                f"{z[row]:.3g}, beyond float32's range (±{MAX_STANDARDISED:.3g}) that the "
                "model computes in; fix the value, leave it empty (missing) or rescale the column"
            )
        out = [z]
        if stats["indicator"]:
            out.append(nan.astype(np.float64))
        return out

    def to_dict(self) -> dict:
        """Plain-JSON form (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeaturePreprocessor:
        """Inverse of :meth:`to_dict`."""
        return cls(list(data["columns"]), dict(data["numeric"]), dict(data["categorical"]))


def check_finite_features(frame, columns) -> None:
    """Raise on the first infinite value of a numeric column (row of ``frame``), or on a
    column whose values are too large to standardise over all the rows of ``frame``.

    Over all the rows, because (in exact arithmetic) a part's mean and squared deviations are
    bounded by the whole table's, so that no split of ``frame`` overflows once this passes, and
    the error names a row of ``frame``, not of the split.
    """
    for col in columns:
        if _is_numeric(frame[col]):
            values = _numeric_values(frame[col], col)
            if not np.isnan(values).all():
                _column_stats(values, col)


def _column_stats(values: np.ndarray, col: str) -> dict:
    """Mean, scale, median and indicator of a numeric column's values (NaN: missing).

    Raises when the mean or the standard deviation overflows float64 (a value beyond about
    1e154 squares to infinity): the scale would be infinite and standardise the column to zeros.
    """
    seen = values[~np.isnan(values)]
    median = float(np.median(seen))
    filled = np.where(np.isnan(values), median, values)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is said just below
        mean, std = float(filled.mean()), float(filled.std())
    if not (np.isfinite(mean) and np.isfinite(std)):
        row = int(np.argmax(np.abs(filled)))
        raise ValueError(
            f"feature column {col!r} holds values too large to standardise (e.g. "
            f"{float(filled[row])!r} at row {row}): their mean or standard deviation overflows; "
            "fix the value, leave it empty (missing), rescale the column (e.g. its log) "
            "or drop it (--ignore)"
        )
    return {
        "mean": mean,
        "scale": std if std > 0 else 1.0,
        "median": median,
        "indicator": bool(np.isnan(values).any()),
    }


def _bool_objects(s) -> bool:
    """An object column of booleans and missing values (vacuously, of missing values only).

    pandas reads a boolean CSV column with an empty cell this way, not as bool.
    """
    if s.dtype != object:
        return False
    return all(isinstance(v, bool | np.bool_) for v in s.dropna())


def decimal_objects(s) -> bool:
    """An object column whose non-missing values (at least one) are all ``decimal.Decimal``:
    how pandas reads a Parquet decimal column. It holds numbers (read as float64)."""
    if s.dtype != object:
        return False
    values = s.dropna()
    return len(values) > 0 and all(isinstance(v, decimal.Decimal) for v in values)


def _is_numeric(s) -> bool:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return True
    if decimal_objects(s):
        return True
    return _bool_objects(s) and bool(s.notna().any())  # all missing: text, as before


def _numeric_values(s, col: str) -> np.ndarray:
    import pandas as pd

    # a numeric column of the model may come as booleans with empty cells, or all empty
    if not (_is_numeric(s) or _bool_objects(s)):
        raise ValueError(
            f"feature column {col!r} was numeric in training but holds text now "
            f"(e.g. {s.dropna().iloc[0]!r}); give the same kind of values as in training"
        )
    values = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise ValueError(
            f"feature column {col!r} holds an infinite value at row {row}; "
            "replace it by a finite number or leave it empty (missing)"
        )
    return values


def _as_text(s):
    """Values as strings, missing as ``"<missing>"``."""
    import pandas as pd

    obj = s.astype(object)
    return obj.where(~pd.isna(obj), MISSING_LEVEL).astype(str)
