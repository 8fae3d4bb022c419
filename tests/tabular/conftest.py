import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The CLI's deep fits in one thread (the suite's ``one_thread``)."""
