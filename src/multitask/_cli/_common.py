"""Shared bits of the commands: one console, one way to fail."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from multitask._atomic import file_in_the_way

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def check_out(path: Path, folder: bool, staged: bool = False) -> None:
    """A ValueError, before any work, for an ``--out`` that cannot be written: a file where a
    folder is wanted (or the reverse), a path under an existing file, or a place where nothing
    can be created (a read-only or pseudo file system, no permission).

    The place probed (a temporary folder made and removed there) is the nearest existing folder
    above ``path``, where its missing folders and the temporary file or staging folder of an
    all-or-nothing write are made; an existing folder ``path`` itself when ``folder`` and not
    ``staged`` (the files are written inside it).
    """
    what = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        other = "file" if folder else "folder"
        raise ValueError(f"--out {path} is a {other}, not a {what}; choose another --out")
    blocked = file_in_the_way(path)
    if blocked is not None:
        raise ValueError(
            f"--out {path} lies under {blocked}, which is a file; choose another --out"
        )
    where = path if folder and not staged and path.is_dir() else _nearest_folder(path)
    try:
        probe = tempfile.mkdtemp(dir=where, prefix=".multitask-write-check.")
        os.rmdir(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"--out {path} cannot be written: nothing can be created in {where} ({reason}); "
            "choose another --out"
        ) from None


def _nearest_folder(path: Path) -> Path:
    """The nearest existing folder above ``path`` (the current folder for a relative path)."""
    for parent in path.absolute().parents:
        if parent.is_dir():
            return parent
    return Path(path.absolute().anchor)
