"""Atomic file writes: through a temporary file beside the target and a rename, so that a
reader never sees half a file and an error leaves the old one. The file gets the mode a new
file would (``0o666`` less the umask), not the temporary file's private ``0o600``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "file_in_the_way", "file_mode"]


def file_mode() -> int:
    """``0o666`` less the process umask (the mode ``open`` would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The nearest existing folder-or-file above ``path`` when it is a file (nothing can be
    written under it), else None."""
    for parent in Path(path).parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (its folder created) to write to; on success it is
    renamed onto ``path`` with the usual mode, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
