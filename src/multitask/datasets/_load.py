"""Entry points: :func:`list_datasets` and :func:`load`."""

from __future__ import annotations

import importlib
from typing import Any

from multitask.datasets._info import INFO


def list_datasets() -> list[str]:
    """Names accepted by :func:`load`, in registry order."""
    return list(INFO)


def load(name: str, **kwargs: Any):
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    **kwargs
        Passed to the dataset's loader, e.g. ``target="total_UPDRS"`` for
        ``parkinsons``, ``min_task_size=10`` for ``chem97``, ``long=True`` for
        ``sarcos_test``.

    Returns
    -------
    MultiTaskData or MultiOutputData
        Long-format tabular data, or one design with several targets.

    Raises
    ------
    ValueError
        ``name`` is not a known dataset.
    """
    if name not in INFO:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(INFO)}")
    module, func = INFO[name].loader.split(":")
    loader = getattr(importlib.import_module(f"multitask.datasets.{module}"), func)
    return loader(**kwargs)
