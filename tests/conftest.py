"""Fixtures for the whole suite: the real-data folder (``MULTITASK_DATA``), never a download."""

from __future__ import annotations

import pytest

from data_testutil import real_data_dir


@pytest.fixture
def real_data(monkeypatch):
    """Point ``MULTITASK_DATA`` at the real files; skip when they are absent (the test would
    otherwise try to download them)."""
    root = real_data_dir()
    if root is None:
        pytest.skip("real datasets not found: set MULTITASK_DATA to the shared datasets folder")
    monkeypatch.setenv("MULTITASK_DATA", str(root))
    return root


@pytest.fixture
def one_thread():
    """torch in one thread for the test: the machine's cores are the test workers'."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
