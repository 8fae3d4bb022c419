import pytest

from multitask.nn.aggregation import _solvers


@pytest.fixture(params=["host", "device"])
def path(request, monkeypatch):
    """The aggregators' CPU numpy / Python-float host paths, and their torch (device) code
    forced on the CPU."""
    if request.param == "device":
        monkeypatch.setattr(_solvers, "use_host", lambda G, host: bool(host))
    return request.param
