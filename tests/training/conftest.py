import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every trainer test in one thread (the suite's ``one_thread``)."""
