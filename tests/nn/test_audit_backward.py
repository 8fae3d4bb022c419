"""Audit of mtl_backward: task losses with paths around the representation, bad loss dicts.

Oracle: one ``torch.autograd.grad`` call per task (the rows of ``J`` and each head's own
gradient) and the balancer's formula on those rows.
"""

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import MGDA, Mean, UPGrad
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import GradNorm

torch.set_num_threads(1)
NAMES = ("t0", "t1", "t2")


def _model(tanh_first: bool, two_stage: bool = True) -> HardSharing:
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh())

    def head():
        layers = [nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1)]
        return nn.Sequential(nn.Tanh(), *layers) if tanh_first else nn.Sequential(*layers)

    model = HardSharing(trunk, {t: head() for t in NAMES}).double()
    model.shared_through_representation = two_stage
    return model


def _losses(model: HardSharing, case: str) -> dict:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64)
    y = torch.randn(11, 3, generator=g, dtype=torch.float64)
    out = model(x)
    losses = {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(NAMES)}
    first_head_weight = next(model.heads["t2"].parameters())
    if case == "trunk_penalty":  # weight decay on the trunk folded into a task loss
        losses["t2"] = losses["t2"] + 0.1 * model.trunk[0].weight.pow(2).sum()
    elif case == "head_penalty":  # ... on the head's first layer
        losses["t2"] = losses["t2"] + 0.1 * first_head_weight.pow(2).sum()
    elif case == "no_representation":  # a loss that does not reach the shared parameters
        losses["t2"] = first_head_weight.pow(2).sum()
    return losses


def _rows(losses, params) -> torch.Tensor:
    rows = []
    for t in NAMES:
        grads = torch.autograd.grad(
            losses[t], params, retain_graph=True, allow_unused=True, materialize_grads=True
        )
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _flat_grad(params) -> torch.Tensor:
    grads = [torch.zeros(p.numel()) if p.grad is None else p.grad.reshape(-1) for p in params]
    return torch.cat(grads)


def _check_heads(model, losses_oracle):
    for t in NAMES:
        own = list(model.heads[t].parameters())
        for p, g in zip(own, losses_oracle[t], strict=True):
            got = torch.zeros_like(p) if p.grad is None else p.grad
            torch.testing.assert_close(got, g, atol=1e-12, rtol=1e-10)


def _head_oracle(model, losses) -> dict:
    return {
        t: torch.autograd.grad(
            losses[t],
            list(model.heads[t].parameters()),
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        for t in NAMES
    }


CASES = ["trunk_penalty", "head_penalty", "no_representation"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("tanh_first", [False, True], ids=["linear-head", "tanh-head"])
@pytest.mark.parametrize("make", [Mean, UPGrad], ids=["mean", "upgrad"])
def test_aggregator_sees_every_path_of_a_task_loss(case, tanh_first, make):
    """Shared ``.grad`` = ``agg(J)`` with ``J`` from T autograd.grad calls; heads: own gradient.

    Before the fix, HardSharing's two-stage path (the default) dropped a trunk penalty inside a
    task loss, a penalty on the head's first Linear, and the head gradient of a task whose loss
    does not reach the representation.
    """
    model = _model(tanh_first)
    losses = _losses(model, case)
    shared = list(model.shared_parameters())
    expected = make()(_rows(losses, shared))
    heads = _head_oracle(model, losses)
    mtl_backward(losses, model, make())
    torch.testing.assert_close(_flat_grad(shared).double(), expected, atol=1e-12, rtol=1e-10)
    _check_heads(model, heads)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("tanh_first", [False, True], ids=["linear-head", "tanh-head"])
def test_representation_path_sees_every_path_of_a_task_loss(case, tanh_first):
    """MGDA-UB: weights from the representation rows, then ``sum_t w_t grad L_t`` everywhere."""
    model = _model(tanh_first)
    losses = _losses(model, case)
    shared = list(model.shared_parameters())
    w = MGDA().weights(_rows(losses, [model.representation]))
    expected = w @ _rows(losses, shared)
    heads = _head_oracle(model, losses)
    mtl_backward(losses, model, MGDA(), use_representation=True)
    torch.testing.assert_close(_flat_grad(shared).double(), expected, atol=1e-12, rtol=1e-10)
    _check_heads(model, heads)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shared_params", [None, "auto"], ids=["all", "last"])
def test_gradnorm_step_sees_every_path_of_a_task_loss(case, shared_params):
    """GradNorm's first step: the model gets ``sum_t grad L_t`` (weights 1), heads their own."""
    model = _model(False)
    losses = _losses(model, case)
    shared = list(model.shared_parameters())
    expected = _rows(losses, shared).sum(0)
    heads = _head_oracle(model, losses)
    mtl_backward(losses, model, GradNorm(3, shared_params=shared_params))
    torch.testing.assert_close(_flat_grad(shared).double(), expected, atol=1e-12, rtol=1e-10)
    _check_heads(model, heads)


@pytest.mark.parametrize("balancer", [None, UPGrad()], ids=["none", "upgrad"])
def test_a_loss_that_is_not_a_scalar_tensor_is_named(balancer):
    model = _model(False)
    losses = _losses(model, "plain")
    bad = dict(losses, t1=losses["t1"].reshape(1).repeat(2))
    with pytest.raises(ValueError, match=r"task 't1' has shape \(2,\).*loss.mean\(\)"):
        mtl_backward(bad, model, balancer)
    with pytest.raises(TypeError, match="task 't2' is a float"):
        mtl_backward(dict(losses, t2=0.5), model, balancer)
    with pytest.raises(ValueError, match=r"extra_loss has shape \(3,\)"):
        mtl_backward(losses, model, balancer, extra_loss=torch.ones(3, dtype=torch.float64))
    assert all(p.grad is None for p in model.parameters())  # refused before any backward
    one = dict(losses, t0=losses["t0"].reshape(1, 1))  # one element: accepted as a scalar
    mtl_backward(one, model, balancer)


@pytest.mark.parametrize("two_stage", [True, False], ids=["two-stage", "one-pass"])
def test_constant_loss_and_frozen_trunk(two_stage):
    """A loss without grad_fn is a zero row of J; a frozen trunk gets no ``.grad`` at all."""
    model = _model(False, two_stage)
    losses = dict(_losses(model, "plain"), t1=torch.tensor(0.3, dtype=torch.float64))
    shared = list(model.shared_parameters())
    rows = _rows({t: losses[t] if t != "t1" else losses["t0"] * 0 for t in NAMES}, shared)
    expected = UPGrad()(rows)
    mtl_backward(losses, model, UPGrad())
    torch.testing.assert_close(_flat_grad(shared).double(), expected, atol=1e-12, rtol=1e-10)
    frozen = _model(False, two_stage)
    for p in frozen.shared_parameters():
        p.requires_grad_(False)
    losses = _losses(frozen, "plain")
    heads = _head_oracle(frozen, losses)
    mtl_backward(losses, frozen, UPGrad())
    assert all(p.grad is None for p in frozen.shared_parameters())
    _check_heads(frozen, heads)


def test_static_task_weights_of_the_wrong_shape_or_names_are_refused():
    """A (3, 1) column broadcast against the losses into ``sum_i w_i * sum_t L_t`` (silently)."""
    model = _model(False)
    losses = _losses(model, "plain")
    column = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"task_weights has shape \(3, 1\)"):
        mtl_backward(losses, model, None, task_weights=column)
    with pytest.raises(KeyError, match=r"no weight for the tasks \['t2'\]"):
        mtl_backward(losses, model, None, task_weights={"t0": 1.0, "t1": 2.0})
    assert all(p.grad is None for p in model.parameters())
    w = [1.0, 2.0, 3.0]
    expected = torch.tensor(w, dtype=torch.float64) @ _rows(losses, list(model.parameters()))
    mtl_backward(losses, model, None, task_weights=dict(zip(NAMES, w, strict=True)))
    torch.testing.assert_close(_flat_grad(model.parameters()).double(), expected)
