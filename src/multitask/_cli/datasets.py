"""Command ``multitask datasets [NAME]``."""

from __future__ import annotations

import typer


def datasets(name: str | None = typer.Argument(None, help="Dataset to describe.")) -> None:
    """List the datasets, or describe one."""
    raise typer.Exit(1)
