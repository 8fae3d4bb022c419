"""Shared bits of the commands: one console, one way to fail."""

from __future__ import annotations

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


def check_out(path: Path, folder: bool) -> None:
    """A ValueError, before any work, for an ``--out`` that cannot be written: a file where a
    folder is wanted (or the reverse), or a path under an existing file."""
    what = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        other = "file" if folder else "folder"
        raise ValueError(f"--out {path} is a {other}, not a {what}; choose another --out")
    blocked = file_in_the_way(path)
    if blocked is not None:
        raise ValueError(
            f"--out {path} lies under {blocked}, which is a file; choose another --out"
        )
