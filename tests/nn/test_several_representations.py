"""The representation placement when a step's losses come from several forwards (a task
sampler's one batch per drawn task): ``mtl_backward(..., representation=[z_1, z_2])`` is the
step of one forward over the batches concatenated, and the Trainer passes every forward's
representation (it used to see only the last one: the other tasks' rows were zero)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from multitask.nn import Task, mtl_backward
from multitask.nn.aggregation import MGDA, GradDrop, PCGrad, UPGrad
from multitask.nn.architectures import HardSharing
from multitask.training import PeriodicSampler, Trainer

G = torch.Generator().manual_seed(0)
XA, XB = (
    torch.randn(6, 3, generator=G, dtype=torch.float64),
    torch.randn(4, 3, generator=G, dtype=torch.float64),
)
YA, YB = 3 * XA[:, :1], XB[:, 1:2]


def _model():
    torch.manual_seed(1)
    trunk = nn.Sequential(nn.Linear(3, 5), nn.Tanh())
    return HardSharing(trunk, {"a": nn.Linear(5, 1), "b": nn.Linear(5, 1)}).double()


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _concatenated_step(aggregator):
    """The oracle: one forward over both batches, each task's loss on its own rows."""
    model = _model()
    out = model(torch.cat([XA, XB]))
    losses = {
        "a": nn.functional.mse_loss(out["a"][:6], YA),
        "b": nn.functional.mse_loss(out["b"][6:], YB),
    }
    info = mtl_backward(losses, model, aggregator, use_representation=True)
    return _grads(model), info


def _two_forward_step(aggregator, **kw):
    model = _model()
    za_out, za = model(XA), model.representation
    zb_out, zb = model(XB), model.representation
    losses = {
        "a": nn.functional.mse_loss(za_out["a"], YA),
        "b": nn.functional.mse_loss(zb_out["b"], YB),
    }
    info = mtl_backward(losses, model, aggregator, representation=[za, zb], **kw)
    return _grads(model), info


@pytest.mark.parametrize(
    "make",
    [MGDA, UPGrad, PCGrad, lambda: GradDrop(seed=0)],
    ids=["mgda", "upgrad", "pcgrad", "graddrop"],
)
def test_several_forwards_equal_one_forward_over_their_batches(make):
    expected, info0 = _concatenated_step(make())
    got, info = _two_forward_step(make(), use_representation=True)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)
    if info0.weights is not None:
        torch.testing.assert_close(info.weights, info0.weights, rtol=1e-12, atol=0)


def test_mgda_ub_weights_on_two_forwards_follow_the_closed_form():
    # two tasks, rows [g_a, 0] and [0, g_b]: min-norm weights |g_b|^2, |g_a|^2 over the sum
    model = _model()
    za, zb = model.trunk(XA), model.trunk(XB)
    la = nn.functional.mse_loss(model.heads["a"](za), YA)
    lb = nn.functional.mse_loss(model.heads["b"](zb), YB)
    na = torch.autograd.grad(la, za, retain_graph=True)[0].square().sum()
    nb = torch.autograd.grad(lb, zb, retain_graph=True)[0].square().sum()
    _, info = _two_forward_step(MGDA(), use_representation=True)
    torch.testing.assert_close(info.weights, torch.stack([nb, na]) / (na + nb), rtol=1e-12, atol=0)


def test_the_default_placement_of_graddrop_takes_every_representation():
    expected, _ = _concatenated_step(GradDrop(seed=0))
    got, _ = _two_forward_step(GradDrop(seed=0))  # use_representation=None: GradDrop's own
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)


def test_representations_unlike_but_for_the_batch_are_refused_for_graddrop():
    model = _model()
    out = model(XA)
    z = model.representation
    losses = {"a": out["a"].square().mean(), "b": out["b"].square().mean()}
    with pytest.raises(ValueError, match="alike but for their first"):
        mtl_backward(
            losses, model, GradDrop(), use_representation=True, representation=[z, z[:, :2]]
        )
    with pytest.raises(TypeError, match="representation must be a Tensor"):
        mtl_backward(losses, model, MGDA(), use_representation=True, representation=[1.0])


class _Rows(Dataset):
    def __init__(self, x, task, y):
        self.x, self.task, self.y = x, task, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {self.task: self.y[i]}


@pytest.mark.parametrize("make", [MGDA, lambda: GradDrop(seed=0)], ids=["mgda", "graddrop"])
def test_trainer_gives_every_drawn_task_its_representation(make):
    loaders = {
        "a": DataLoader(_Rows(XA, "a", YA), batch_size=6),
        "b": DataLoader(_Rows(XB, "b", YB), batch_size=4),
    }
    trainer = Trainer(
        _model(), [Task("a"), Task("b")], make(), optimizer="sgd", lr=0.1, max_steps=1,
        sampler=PeriodicSampler({"a": 1, "b": 1}), use_representation=True, device="cpu",
        progress=False,
    )  # fmt: skip
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.fit(loaders)
    expected, _ = _concatenated_step(make())  # the oracle's gradients, one SGD step
    for p, b, g in zip(trainer.model.parameters(), before, expected, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.1 * g, rtol=1e-10, atol=1e-12)


def test_the_default_placement_takes_the_parameters_for_unlike_representations():
    # GradDrop's own placement with forwards of other shapes: the parameters' Jacobian, warned
    model = _model()
    out_a, za = model(XA), model.representation
    out_b = model(XB)
    losses = {"a": out_a["a"].square().mean(), "b": out_b["b"].square().mean()}
    expected = _model()
    ea, eb = expected(XA)["a"].square().mean(), expected(XB)["b"].square().mean()
    mtl_backward({"a": ea, "b": eb}, expected, GradDrop(seed=0), use_representation=False)
    with pytest.warns(UserWarning, match="representations of different shapes"):
        mtl_backward(losses, model, GradDrop(seed=0), representation=[za, za[:, :2]])
    for p, q in zip(model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-14)
