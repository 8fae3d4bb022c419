"""Graphs whose backward vmap cannot run: a model compiled by ``torch.compile`` with the
inductor backend, or a convolutional model compiled whole (``aot_eager``: "vmap: aten::copy_").
The per-task Jacobian falls back to one backward per task, with a warning, and the step's
``.grad`` equals the uncompiled model's."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from multitask.nn import Task, mtl_backward, task_losses
from multitask.nn import _jacobian as jacobian_module
from multitask.nn.aggregation import MGDA, Mean, PCGrad, UPGrad
from multitask.nn.architectures import HardSharing


def _conv():
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    heads = {"seg": nn.Conv2d(8, 2, 1), "depth": nn.Conv2d(8, 1, 1)}
    x = torch.randn(4, 3, 6, 6)
    targets = {"seg": (x[:, 0] > 0).long(), "depth": x[:, 2:3].clone()}
    return HardSharing(trunk, heads), [Task("seg", "dense"), Task("depth", "dense")], x, targets


def _mlp():
    torch.manual_seed(0)
    model = HardSharing(
        nn.Sequential(nn.Linear(5, 8), nn.ReLU()), {"a": nn.Linear(8, 1), "b": nn.Linear(8, 1)}
    )
    x = torch.randn(8, 5)
    return model, [Task("a"), Task("b")], x, {"a": torch.randn(8, 1), "b": torch.randn(8, 1)}


def _check(model, forward, tasks, x, targets, balancer):
    reference = copy.deepcopy(model)
    mtl_backward(task_losses(tasks, reference(x), targets), reference, balancer(),
                 use_representation=False)  # fmt: skip
    mtl_backward(task_losses(tasks, forward(x), targets), model, balancer(),
                 use_representation=False)  # fmt: skip
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)


@pytest.fixture(autouse=True)
def _fresh():
    torch._dynamo.reset()
    jacobian_module._WARNED_UNBATCHED.clear()
    yield
    torch._dynamo.reset()


def test_conv_model_compiled_whole_gives_the_uncompiled_gradients():
    # torch 2.13 (the pinned version) cannot vmap this compiled backward ("vmap: aten::copy_")
    # and falls back, warned once; torch 2.11 (a GPU machine's own build) can, and is silent
    model, tasks, x, targets = _conv()
    compiled = torch.compile(model, backend="aot_eager")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _check(model, compiled, tasks, x, targets, UPGrad)
    fell_back = [w for w in caught if "one backward per task" in str(w.message)]
    assert len(fell_back) == bool(jacobian_module._WARNED_UNBATCHED)
    if torch.__version__.startswith("2.13"):
        assert fell_back
    assert type(model.representation.grad_fn).__name__ == "CompiledFunctionBackward"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once a process
        for balancer in (Mean, PCGrad, MGDA):
            model.zero_grad(set_to_none=True)
            _check(model, compiled, tasks, x, targets, balancer)


def test_a_failing_batched_backward_falls_back_to_one_backward_per_task(monkeypatch):
    # the fallback forced, whatever the torch version: the batched call raises as vmap does
    model, tasks, x, targets = _conv()
    grad = torch.autograd.grad

    def no_vmap(*args, is_grads_batched=False, **kwargs):
        if is_grads_batched:
            raise RuntimeError("vmap: aten::copy_(self, src) is not supported")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_vmap)
    with pytest.warns(UserWarning, match=r"graph \(vmap: aten::copy_.*one backward per task"):
        _check(model, model, tasks, x, targets, UPGrad)
    monkeypatch.setattr(torch.autograd, "grad", grad)
    model.zero_grad(set_to_none=True)
    _check(model, model, tasks, x, targets, UPGrad)  # and the batched path agrees


def _inductor_works() -> bool:
    try:
        torch.compile(lambda t: t * 2, backend="inductor")(torch.ones(2))
        return True
    except Exception:  # no C compiler on this machine
        return False


@pytest.mark.skipif(not _inductor_works(), reason="torch.compile's inductor backend unavailable")
def test_inductor_compiled_trunk_gives_the_uncompiled_gradients():
    model, tasks, x, targets = _mlp()
    model.trunk = torch.compile(model.trunk)  # what the library's own errors recommend
    with pytest.warns(UserWarning, match="one backward per task"):
        _check(model, model, tasks, x, targets, UPGrad)


def test_a_genuine_error_of_the_backward_still_raises():
    model, tasks, x, targets = _mlp()
    losses = task_losses(tasks, model(x), targets)
    stacked = torch.stack([losses["a"], losses["b"]])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        jacobian_module._batched_vjp(stacked, list(model.trunk.parameters()), torch.eye(3), None)
