"""Cache directory, download and SHA-256 verification of data files.

A file is looked up under the cache directory (``MULTITASK_DATA``, else
``$XDG_CACHE_HOME/multitask``, else ``~/.cache/multitask``). When it is
missing it is downloaded from its original source, streamed to a temporary
file in the same directory, checked, then moved into place with
:func:`os.replace` (atomic: a reader never sees a half-written file).

Verifying a hash reads the whole file; the result is remembered, keyed by the
file's size, modification time and inode change time (``st_ctime_ns``, which no
user call can set back), in memory for the process and, for files this module
downloaded itself, in a small sidecar file ``.<name>.sha256ok`` next to them.
Folders the user filled (e.g. a shared, read-only ``MULTITASK_DATA``) are never
written to. Any write to a file changes its ``st_ctime_ns`` and so triggers a
new check.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from multitask.datasets._files import FileEntry

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_VERIFIED: dict[str, tuple[int, int, int, str]] = {}


class DatasetNotFoundError(FileNotFoundError):
    """A data file is missing and could not be downloaded."""


class ChecksumError(OSError):
    """A data file does not have the expected SHA-256."""


def cache_dir() -> Path:
    """Directory where data files are read from and downloaded to.

    ``MULTITASK_DATA`` if set, else ``$XDG_CACHE_HOME/multitask``, else
    ``~/.cache/multitask``.
    """
    env = os.environ.get("MULTITASK_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "multitask"


def sha256_file(path: str | os.PathLike, *, gunzip: bool = False) -> str:
    """SHA-256 hex digest of a file (of its decompressed content if ``gunzip``)."""
    h = hashlib.sha256()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256ok")


def _known_good(path: Path, entry: FileEntry) -> bool:
    stamp = _stamp(path)
    if _VERIFIED.get(str(path)) == (*stamp, entry.sha256):
        return True
    try:
        text = _sidecar(path).read_text().split()
    except OSError:
        return False
    return text == [*map(str, stamp), entry.sha256]


def _remember(path: Path, entry: FileEntry, *, persist: bool = False) -> None:
    """Record a good hash; on disk only for our own downloads (``persist``) or an
    existing sidecar, never as a new file in a folder the user filled."""
    stamp = _stamp(path)
    _VERIFIED[str(path)] = (*stamp, entry.sha256)
    sidecar = _sidecar(path)
    if not (persist or sidecar.is_file()):
        return
    try:
        sidecar.write_text(" ".join([*map(str, stamp), entry.sha256]) + "\n")
    except OSError:  # the in-memory record is enough
        pass


def verify(path: str | os.PathLike, entry: FileEntry, *, remember: bool = True) -> Path:
    """Check ``path`` against ``entry``; raise :class:`ChecksumError` on mismatch.

    A ``.gz`` file whose bytes differ but whose decompressed content has
    ``entry.content_sha256`` is accepted (the same data, compressed elsewhere).
    """
    path = Path(path)
    if _known_good(path, entry):
        return path
    got = sha256_file(path)
    ok = got == entry.sha256
    if not ok and entry.content_sha256:
        try:
            ok = sha256_file(path, gunzip=True) == entry.content_sha256
        except (OSError, EOFError, gzip.BadGzipFile):
            ok = False
    if not ok:
        raise ChecksumError(
            f"{path} has SHA-256 {got} ({path.stat().st_size} bytes) but {entry.sha256} "
            f"({entry.size} bytes) was expected: the file is truncated or corrupt. "
            f"Delete it and load again to re-download it from {entry.url or 'its source'}."
        )
    if remember:
        _remember(path, entry)
    return path


def _urlopen(url: str, timeout: float = 60.0):
    """Open ``url`` (indirection point for tests, which replace it)."""
    return urllib.request.urlopen(url, timeout=timeout)


def _download_to(entry: FileEntry, tmp: Path) -> None:
    with _urlopen(entry.url) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out, _CHUNK)
    if not entry.gzip_source:
        return
    got = sha256_file(tmp)
    if got != entry.content_sha256:
        raise ChecksumError(
            f"download of {entry.url} has SHA-256 {got} but {entry.content_sha256} was "
            "expected; the source changed or the transfer was cut. Download again."
        )
    raw = tmp.with_name(tmp.name + ".raw")
    os.replace(tmp, raw)
    try:
        with open(raw, "rb") as src, gzip.GzipFile(tmp, "wb", compresslevel=9, mtime=0) as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    finally:
        raw.unlink(missing_ok=True)


def _not_found(entry: FileEntry, root: Path, exc: Exception) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{entry.path} is not in the cache directory {root} and could not be downloaded "
        f"from {entry.url} ({exc}). Copy the file to {root / entry.path}, or set "
        f"MULTITASK_DATA to a folder that holds {entry.path}."
    )


def download(entry: FileEntry, root: Path) -> Path:
    """Download ``entry`` under ``root`` through a temporary file, verify, then rename."""
    target = root / entry.path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise _not_found(entry, root, exc) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        logger.info("downloading %s to %s", entry.url, target)
        try:
            _download_to(entry, tmp)
        except ChecksumError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _not_found(entry, root, exc) from exc
        try:
            verify(tmp, entry, remember=False)
        except ChecksumError as exc:
            raise ChecksumError(
                f"the download of {entry.url} does not match the registry ({exc}); the "
                "source changed or the transfer was cut. Nothing was written; try again."
            ) from exc
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _remember(target, entry, persist=True)
    return target


def fetch(
    entry: FileEntry, *, root: str | os.PathLike | None = None, download_if_missing=True
) -> Path:
    """Path of a verified copy of ``entry``, downloading it when missing.

    Parameters
    ----------
    entry : FileEntry
    root : path, optional
        Cache directory; default :func:`cache_dir`.
    download_if_missing : bool, default=True

    Raises
    ------
    DatasetNotFoundError
        The file is missing and could not be downloaded.
    ChecksumError
        The file (cached or downloaded) does not have the expected SHA-256.
    """
    root = Path(root) if root is not None else cache_dir()
    target = root / entry.path
    if target.is_file():
        return verify(target, entry)
    if not download_if_missing:
        raise DatasetNotFoundError(
            f"{entry.path} is not in the cache directory {root} (set MULTITASK_DATA to a "
            f"folder that holds it, or allow the download from {entry.url})"
        )
    return download(entry, root)
