"""The head stage's direct engine call and the step's other overhead cuts (22 Nov, fourth session).

- ``_jacobian_fast._grad`` (``torch.autograd.grad`` without its Python layer) returns bit for bit
  what the public call returns, an unused input's None included, keeps the graph, and sends a
  tensor that overrides torch functions to the public call.
- A whole ``mtl_backward`` step through it equals the same step through the public call bit for
  bit, and ``T`` separate ``autograd.grad`` calls to 1e-6 (the oracle).
- ``StepInfo`` stays detached where ``detach`` is now skipped (tensors outside the graph).
"""

import pytest
import torch
from jacobian_oracle import per_task_rows
from torch import nn
from torch.autograd.graph import GradientEdge

from multitask.nn import _jacobian_fast as jf
from multitask.nn import mtl_backward
from multitask.nn.aggregation import Mean, PCGrad
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import UncertaintyWeighting

torch.set_num_threads(1)


def _model(n_tasks: int = 3, deep: bool = False, seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 7), nn.Tanh())

    def head():
        return (
            nn.Sequential(nn.Linear(7, 4), nn.ReLU(), nn.Linear(4, 1)) if deep else nn.Linear(7, 1)
        )

    return HardSharing(trunk, {f"t{i}": head() for i in range(n_tasks)})


def _losses(model, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 5, generator=g, dtype=next(model.parameters()).dtype)
    y = torch.randn(20, len(model.task_names), generator=g, dtype=x.dtype)
    out = model(x)
    return {t: nn.functional.mse_loss(out[t][:, 0], y[:, i]) for i, t in enumerate(out)}


class _Tagged(torch.Tensor):
    """A tensor subclass that overrides torch functions (it only passes them through)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})


def test_grad_equals_the_public_call_bitwise():
    model = _model(deep=True)
    losses = _losses(model)
    vec = torch.stack(list(losses.values()))
    rep = model.representation
    unused = nn.Parameter(torch.ones(3))  # reaches no loss: None
    inputs = (GradientEdge(rep.grad_fn, 0), *model.heads["t1"].parameters(), unused)
    fast = jf._grad(vec, inputs)
    public = torch.autograd.grad(
        [vec], list(inputs), [torch.ones_like(vec)], retain_graph=True, allow_unused=True
    )
    assert len(fast) == len(public) == len(inputs)
    assert fast[-1] is None and public[-1] is None
    for a, b in zip(fast[:-1], public[:-1], strict=True):
        assert torch.equal(a, b)
    again = jf._grad(vec, inputs)  # the graph was kept
    assert torch.equal(again[0], fast[0])


def test_a_tensor_overriding_torch_functions_takes_the_public_call(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the engine call must not see a __torch_function__ tensor")

    monkeypatch.setattr(jf, "_ENGINE", refuse)
    w = torch.randn(4, requires_grad=True)
    root = (w * 2).as_subclass(_Tagged)
    (g,) = jf._grad(root, (w,))
    assert torch.equal(torch.as_tensor(g), torch.full((4,), 2.0))


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("agg", [Mean, PCGrad])
def test_a_step_through_the_engine_call_equals_the_public_call(deep, agg, monkeypatch):
    grads = {}
    for route in ("engine", "public"):
        if route == "public":
            monkeypatch.setattr(jf, "_ENGINE", None)
        model = _model(deep=deep)
        losses = _losses(model)
        shared = list(model.shared_parameters())
        oracle = per_task_rows(losses, model.task_names, shared)
        info = mtl_backward(losses, model, agg())
        grads[route] = [p.grad.clone() for p in model.parameters()]
        if agg is Mean:  # mean's shared .grad is the mean of the oracle's rows
            flat = torch.cat([p.grad.reshape(-1) for p in shared])
            torch.testing.assert_close(flat, oracle.mean(0), atol=1e-6, rtol=1e-6)
        assert not info.loss.requires_grad and not info.losses.requires_grad
    for a, b in zip(grads["engine"], grads["public"], strict=True):
        assert torch.equal(a, b)


def test_step_info_is_detached_on_every_path():
    model = _model()
    info = mtl_backward(_losses(model), model, UncertaintyWeighting(3))  # learnable weights
    assert info.weights is not None and not info.weights.requires_grad
    assert not info.loss.requires_grad and info.loss.grad_fn is None
    info = mtl_backward(_losses(model), model, Mean())
    assert info.loss.grad_fn is None and not info.weights.requires_grad
    torch.testing.assert_close(info.loss, info.losses.sum())
