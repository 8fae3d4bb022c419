import pytest
import torch
from torch import nn

from multitask.nn.architectures.low_supervision import LowSupervision


def _model():
    torch.manual_seed(0)
    layers = [nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4)]
    heads = {"pos": nn.Linear(4, 5), "chunk": nn.Linear(4, 2)}
    return LowSupervision(layers, heads, {"pos": 1, "chunk": 3})


def test_each_task_reads_its_depth():
    model = _model()
    x = torch.randn(6, 3)
    out = model(x)
    low = model.layers[0](x)
    torch.testing.assert_close(out["pos"], model.heads["pos"](low))
    high = model.layers[2](model.layers[1](low))
    torch.testing.assert_close(out["chunk"], model.heads["chunk"](high))


def test_low_task_gradient_does_not_reach_upper_layers():
    model = _model()
    model(torch.randn(6, 3))["pos"].sum().backward()
    assert model.layers[2].weight.grad is None
    assert model.layers[0].weight.grad.abs().sum() > 0
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.layers[0].parameters()}
    owned = {id(p) for p in model.task_parameters("chunk")}
    assert {id(p) for p in model.layers[2].parameters()} <= owned


def test_bad_depth_raises():
    with pytest.raises(ValueError, match="depths"):
        LowSupervision([nn.Linear(2, 2)], {"a": nn.Identity()}, {"a": 2})
