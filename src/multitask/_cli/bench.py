"""Commands ``bench``, ``fit``, ``predict``, ``report`` and ``methods``.

Owned by the benchmark-harness work (issue 6); registered on the app by
:func:`register`. Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the harness commands to ``app`` (none yet)."""
