"""Reading and writing user tables (CSV or Parquet) and all-or-nothing output folders.

Format: by extension (``.csv``, ``.tsv``, ``.txt``, optionally compressed
``.gz``/``.bz2``/``.zip``/``.xz``; ``.parquet``, ``.pq``), else sniffed from
the first bytes (Parquet files start with ``PAR1``; anything else must be
UTF-8 text). Every error says what was wrong with the file and what to do.

CSV cells: only an empty cell is missing. Text such as ``NA``, ``None``,
``null`` or ``N/A`` is a value (a class ``"None"``, a level ``"NA"``), not
pandas' default missing-value list; but in a column whose other values are
all numbers, those spellings (and ``nan``/``NaN``) are missing numbers
(a warning names the column, except for the NaN spellings). Each column is
typed from all its rows (no chunked type inference on large files), so fit
and predict read a file alike.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from multitask._atomic import atomic_path, file_mode

__all__ = ["check_compression", "read_table", "staged_dir", "write_table"]

_PARQUET = (".parquet", ".pq")
_TEXT = (".csv", ".tsv", ".txt")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
_COMPRESSED = tuple(_COMPRESSION)
_MAGIC_PARQUET = b"PAR1"
#: compression -> the module pandas needs for it (not always installed)
_COMPRESSION_MODULE = {
    "zstd": ("zstandard", "zstandard"),
    "bz2": ("bz2", None),
    "xz": ("lzma", None),
}

#: pandas' default missing-value spellings (``pandas.read_csv``'s ``na_values``); read as
#: missing only in a column whose other values are numbers
_NA_TEXT = frozenset(
    {"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
#: the spellings of a NaN number: missing in a numeric column without a warning
_NAN_TEXT = frozenset(["NaN", "nan", "-NaN", "-nan"])


#: formats that are tables but not ones we read: named in the error
_OTHER = (".xlsx", ".xls", ".ods", ".json", ".jsonl", ".feather", ".arrow", ".h5", ".hdf5")
_OTHER += (".pkl", ".pickle", ".npy", ".npz", ".sav", ".dta", ".sas7bdat", ".orc", ".avro")


def _kind_of(path: Path) -> str:
    """``"parquet"``, ``"csv"``, ``"other"`` or ``"sniff"`` from the file name."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _PARQUET:
        return "parquet"
    if last in _TEXT:
        return "csv"
    if last in _OTHER:
        return "other"
    return "sniff"


def _read_parquet(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ValueError(
            f"{path} is not a valid Parquet file ({type(exc).__name__}: {exc}); "
            "write it again or give a CSV file"
        ) from None


def _check_text(path: Path, head: bytes) -> None:
    if b"\x00" in head:
        raise ValueError(
            f"{path} is neither CSV nor Parquet (it holds binary data); "
            "give a UTF-8 CSV file (.csv) or a Parquet file (.parquet)"
        )


def check_compression(path: str | os.PathLike) -> None:
    """A ValueError, before any work, when ``path``'s compression (by its last extension)
    needs a package that is not installed (``.zst`` needs ``zstandard``)."""
    path = Path(path)
    compression = _COMPRESSION.get(path.suffix.lower())
    if compression not in _COMPRESSION_MODULE:
        return
    module, package = _COMPRESSION_MODULE[compression]
    if importlib.util.find_spec(module) is None:
        how = (
            f"install it (`pip install {package}`)"
            if package
            else "this Python was built without it"
        )
        raise ValueError(
            f"{path}: {path.suffix} ({compression}) files need the Python package "
            f"{module!r}, which is not installed; {how}, or use an uncompressed, .gz or "
            "Parquet file"
        )


def _numbers_with_na_text(column):
    """``column`` (text) as numbers when every non-empty value is a number or one of
    :data:`_NA_TEXT` (read as missing), and at least one is a number; else None. Also the
    NA spellings found other than the NaN ones (for a warning)."""
    import pandas as pd

    values = column.dropna()
    na = values.isin(_NA_TEXT)
    if not na.any() or na.all():
        return None, ()
    numbers = pd.to_numeric(values[~na], errors="coerce")
    if numbers.isna().any():
        return None, ()
    out = pd.to_numeric(column.where(~column.isin(_NA_TEXT)).astype(object), errors="coerce")
    return out, sorted(set(values[na]) - _NAN_TEXT)


def _read_csv(path: Path, text_columns: Collection[str] = ()):
    import pandas as pd

    sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    dtype = dict.fromkeys(text_columns, str) or None  # a name not in the file is ignored
    try:
        # utf-8-sig: strict UTF-8 that also drops a byte-order mark before the header;
        # only an empty cell is missing ("NA", "None" are values); low_memory=False: each
        # column typed from all its rows, not chunk by chunk (mixed types in one column)
        frame = pd.read_csv(
            path,
            sep=sep,
            encoding="utf-8-sig",
            encoding_errors="strict",
            dtype=dtype,
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
        )
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not valid UTF-8 text (byte {exc.start}: {exc.reason}); "
            "re-encode it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or give a Parquet file"
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; give a table with a header line and rows") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path} is not a well-formed CSV file: {exc}") from None
    except (OSError, EOFError) as exc:  # a corrupt or mislabelled compressed file
        raise ValueError(
            f"{path} could not be decompressed ({exc}); check the file and its extension"
        ) from None
    text = set(text_columns)
    for name in frame.columns:
        col = frame[name]
        if name in text or pd.api.types.is_numeric_dtype(col) or col.dtype == bool:
            continue
        numbers, said = _numbers_with_na_text(col)
        if numbers is None:
            continue
        frame[name] = numbers
        if said:
            warnings.warn(
                f"{path}: column {name!r} holds numbers and the text {said}: read as "
                "missing numbers (only empty cells are missing elsewhere)",
                UserWarning,
                stacklevel=4,
            )
    return frame


def read_table(path: str | os.PathLike, text_columns: Collection[str] = ()):
    """Read a CSV or Parquet table.

    Parameters
    ----------
    path : path-like
        The file; its format comes from the extension, or is sniffed.
    text_columns : collection of str, default=()
        CSV columns read as text, as written (empty cells stay missing),
        rather than as whatever pandas infers from the values in this file:
        the categorical features of a fitted model, whose level ``"1"`` would
        read as the number ``1.0`` in a file that holds no other text in that
        column. Parquet stores its column types and is read as stored.

    Returns
    -------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
        At least one row and one column.

    Raises
    ------
    ValueError
        Missing, empty, not UTF-8, neither CSV nor Parquet, no data rows, or compressed
        with a method whose package is not installed (``.zst``: ``zstandard``).

    Warns
    -----
    UserWarning
        A CSV column of numbers that also holds text such as ``NA`` or ``None``: read as
        missing numbers (``nan``/``NaN`` are read so without a warning).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file")
    check_compression(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); give a table with a header line and rows")
    kind = _kind_of(path)
    if kind == "other":
        raise ValueError(
            f"{path} is neither CSV nor Parquet ({path.suffix} file); convert it, e.g. "
            "pandas.read_excel(...).to_parquet('table.parquet') or .to_csv('table.csv')"
        )
    compressed = path.suffix.lower() in _COMPRESSED
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(_MAGIC_PARQUET):  # the content wins over a wrong extension
        kind = "parquet"
    elif kind == "sniff":
        kind = "csv"
    if kind == "parquet":
        frame = _read_parquet(path)
    else:
        if not compressed:
            _check_text(path, head)
        frame = _read_csv(path, text_columns)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError(
            f"{path} has no data rows (columns: {list(frame.columns)}); "
            "give a table with a header line and at least one row"
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame


def write_table(frame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV or Parquet (by extension), atomically.

    ``.parquet``/``.pq`` write Parquet; anything else writes CSV (floats are
    written with full precision, so reading them back gives the same numbers).
    """
    path = Path(path)
    check_compression(path)
    with atomic_path(path) as tmp:
        if _kind_of(path) == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            compression = _COMPRESSION.get(path.suffix.lower())  # the name says, not tmp's
            frame.to_csv(tmp, index=False, compression=compression)
    return path


@contextmanager
def staged_dir(out: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder next to ``out`` whose files are moved into ``out`` on success.

    Everything is written into the staging folder first; only when the block
    finishes without error is each file renamed into ``out`` (created if
    needed). On error the staging folder is removed and ``out`` is untouched.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; give a folder path")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield stage
        out.mkdir(exist_ok=True)
        mode = file_mode()
        for item in sorted(stage.iterdir()):
            item.chmod(mode)  # temporary files are private (0600); give the usual mode
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
