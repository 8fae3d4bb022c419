import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The CLI's deep fits in one thread: the machine's cores are the test workers'."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
