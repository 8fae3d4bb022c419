"""Where the real benchmark files are, for every test that reads them (a uniquely named module,
not ``conftest``: the folders below have their own ``conftest.py``). Tests never download."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_CANDIDATES = [
    os.environ.get("MULTITASK_DATA", ""),
    str(Path(__file__).resolve().parents[2] / "shared" / "datasets"),
    "/work/shared/datasets",
]


@cache
def real_data_dir() -> Path | None:
    """The folder with the real benchmark files (``MULTITASK_DATA``), or None."""
    for c in _CANDIDATES:
        if c and (Path(c) / "school" / "school.mat").is_file():
            return Path(c).resolve()  # (a relative path survives a test's chdir)
    return None
