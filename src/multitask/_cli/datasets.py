"""Command ``multitask datasets [NAME]``."""

from __future__ import annotations

from typing import Optional

import typer


def datasets(name: Optional[str] = typer.Argument(None, help="Dataset to describe.")) -> None:
    """List the datasets, or describe one."""
    raise typer.Exit(1)
