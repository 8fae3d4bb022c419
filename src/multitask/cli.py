"""The ``multitask`` command line.

This module only parses and dispatches. Every command lives in a module of
:mod:`multitask._cli` that imports nothing heavy at module level (no torch, no
pandas at import time), so ``multitask --help`` stays fast and torch-free.
"""

from __future__ import annotations

import typer

from multitask._cli import bench as _bench
from multitask._cli import datasets as _datasets
from multitask._cli import fit as _fit

app = typer.Typer(
    name="multitask",
    help="Multi-task learning: classical and deep methods, benchmarks and reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Multi-task learning: classical and deep methods, benchmarks and reports."""


app.command("datasets")(_datasets.datasets)
_bench.register(app)
_fit.register(app)


def main() -> None:  # pragma: no cover - console-script entry point
    """Entry point of the ``multitask`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
