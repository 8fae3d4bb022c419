"""Command ``multitask datasets [NAME]``: list the datasets, or describe one.

The list reads only static metadata (no file is opened), so it works on a
fresh machine; describing a dataset loads it (downloading it if needed).
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import typer


def _table() -> None:
    from rich.console import Console
    from rich.table import Table

    from multitask.datasets._info import INFO

    table = Table(title="multitask datasets")
    for col in ("name", "tasks", "samples", "features", "target", "source"):
        table.add_column(
            col, justify="right" if col in ("tasks", "samples", "features") else "left"
        )
    for i in INFO.values():
        table.add_row(
            i.name, f"{i.n_tasks:,}", f"{i.n_samples:,}", f"{i.n_features:,}", i.kind, i.source
        )
    Console(width=160).print(table)


def _describe_multitask(data, echo) -> None:
    import numpy as np

    sizes = data.task_sizes().to_numpy()
    echo(f"X: {data.X.shape} (task column {data.task_col!r} + {len(data.feature_names)} features)")
    echo(f"y: {data.y.shape}, kind {data.kind}")
    echo(
        f"tasks: {data.n_tasks:,}; samples per task: min {sizes.min()}, "
        f"median {np.median(sizes):g}, max {sizes.max()}"
    )
    echo(f"features: {', '.join(data.feature_names)}")


def _describe_multioutput(data, echo) -> None:
    import numpy as np

    echo(f"X: {tuple(np.shape(data.X))}")
    for key, target in data.targets.items():
        t = np.asarray(target)
        labelled = int(np.sum(~np.isnan(t.astype(np.float64))))
        echo(
            f"target {key!r}: {data.kinds[key]}, {labelled:,} labelled, {np.unique(t).size} values"
        )
    if data.split is not None:
        names, counts = np.unique(data.split, return_counts=True)
        echo("split: " + ", ".join(f"{n} {c:,}" for n, c in zip(names, counts, strict=True)))


def _describe(name: str) -> None:
    from multitask._cli._common import fail
    from multitask.datasets import DatasetNotFoundError, MultiTaskData, load
    from multitask.datasets._info import INFO

    if name not in INFO:
        fail(f"unknown dataset {name!r}; valid names: {', '.join(INFO)}")
    try:
        data = load(name)
    except (DatasetNotFoundError, ImportError, OSError) as exc:
        fail(f"cannot load {name!r}: {exc}", code=1)
    typer.echo(f"{name}: {INFO[name].source}")
    if isinstance(data, MultiTaskData):
        _describe_multitask(data, typer.echo)
    else:
        _describe_multioutput(data, typer.echo)
    typer.echo(f"cite: {INFO[name].citation}")


def datasets(name: str | None = typer.Argument(None, help="Dataset to describe.")) -> None:
    """List the datasets, or describe one (shapes, samples per task, citation)."""
    if name is None:
        _table()
    else:
        _describe(name)
