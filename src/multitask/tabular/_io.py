"""Reading and writing user tables (CSV or Parquet) and all-or-nothing output folders.

Format: by extension (``.csv``, ``.tsv``, ``.txt``, optionally compressed
``.gz``/``.bz2``/``.zip``/``.xz``; ``.parquet``, ``.pq``), else sniffed from
the first bytes (Parquet files start with ``PAR1``; anything else must be
UTF-8 text). Every error says what was wrong with the file and what to do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from multitask._atomic import atomic_path, file_mode

__all__ = ["read_table", "staged_dir", "write_table"]

_PARQUET = (".parquet", ".pq")
_TEXT = (".csv", ".tsv", ".txt")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
_COMPRESSED = tuple(_COMPRESSION)
_MAGIC_PARQUET = b"PAR1"


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


def _read_csv(path: Path, text_columns: Collection[str] = ()):
    import pandas as pd

    sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    dtype = dict.fromkeys(text_columns, str) or None  # a name not in the file is ignored
    try:
        # utf-8-sig: strict UTF-8 that also drops a byte-order mark before the header
        return pd.read_csv(
            path, sep=sep, encoding="utf-8-sig", encoding_errors="strict", dtype=dtype
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
        Missing, empty, not UTF-8, neither CSV nor Parquet, or no data rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file")
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
