"""Fixtures of the dataset tests: the real-data folder, never a download."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("MULTITASK_DATA", ""),
    str(Path(__file__).resolve().parents[3] / "shared" / "datasets"),
    "/work/shared/datasets",
]


@cache
def real_data_dir() -> Path | None:
    """The folder with the real benchmark files (``MULTITASK_DATA``), or None."""
    for c in _CANDIDATES:
        if c and (Path(c) / "school" / "school.mat").is_file():
            return Path(c)
    return None


@pytest.fixture
def real_data(monkeypatch):
    """Point ``MULTITASK_DATA`` at the real files; skip when they are absent."""
    root = real_data_dir()
    if root is None:
        pytest.skip("real datasets not found: set MULTITASK_DATA to the shared datasets folder")
    monkeypatch.setenv("MULTITASK_DATA", str(root))
    return root
