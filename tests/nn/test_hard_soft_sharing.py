"""Hard and soft parameter sharing, and the gradient reversal layer."""

import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn import Task, mtl_backward, task_losses
from multitask.nn.architectures import ARCHITECTURES, HardSharing, SoftSharing
from multitask.nn.auxiliary import GradientReversal, ganin_schedule, grad_reverse

torch.set_num_threads(1)


def _hard(trunk=None):
    torch.manual_seed(0)
    trunk = trunk or nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
    return HardSharing(trunk, {"a": nn.Linear(8, 1), "b": nn.Linear(8, 3), "c": nn.Linear(8, 1)})


def test_registry():
    assert ARCHITECTURES["hard_sharing"] is HardSharing
    assert ARCHITECTURES["soft_sharing"] is SoftSharing


def test_hard_sharing_forward_structure_and_partition():
    model = _hard()
    out = model(torch.randn(5, 4))
    assert list(out) == ["a", "b", "c"] and out["b"].shape == (5, 3)
    assert model.representation.shape == (5, 8)
    text = repr(model)
    assert "ModuleDict" in text and "(trunk)" in text
    shared = {id(p) for p in model.shared_parameters()}
    own = [{id(p) for p in model.task_parameters(t)} for t in model.task_names]
    every = {id(p) for p in model.parameters()}
    assert shared | set().union(*own) == every
    assert all(not (shared & o) for o in own)
    with pytest.raises(KeyError, match=r"valid task names are \['a', 'b', 'c'\]"):
        model.task_parameters("z")


def test_hard_sharing_shared_params_get_gradients_from_every_task():
    tasks = [Task("a"), Task("b", "multiclass"), Task("c")]
    torch.manual_seed(1)
    x = torch.randn(16, 4)
    y = {"a": torch.randn(16), "b": torch.randint(0, 3, (16,)), "c": torch.randn(16)}
    per_task = []
    for t in tasks:
        model = _hard()
        losses = task_losses(tasks, model(x), y)
        losses[t.name].backward()
        grads = [p.grad for p in model.shared_parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), t.name
        others = [p.grad for u in model.task_names if u != t.name for p in model.task_parameters(u)]
        assert all(g is None for g in others)
        per_task.append(torch.cat([g.reshape(-1) for g in grads]))
    model = _hard()
    mtl_backward(task_losses(tasks, model(x), y), model)
    total = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    torch.testing.assert_close(total, sum(per_task))


@pytest.mark.parametrize("encoder", ["cnn", "rnn", "transformer"])
def test_hard_sharing_works_on_any_encoder(encoder):
    torch.manual_seed(0)
    if encoder == "cnn":
        trunk = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
        x, width = torch.randn(3, 2, 9), 4
    elif encoder == "rnn":

        class LastState(nn.Module):
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(2, 5, batch_first=True)

            def forward(self, x):
                return self.gru(x)[1][-1]

        trunk, x, width = LastState(), torch.randn(3, 6, 2), 5
    else:
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        trunk = nn.Sequential(nn.TransformerEncoder(layer, 1), nn.Flatten(1))
        x, width = torch.randn(3, 4, 8), 32
    model = HardSharing(trunk, {"a": nn.Linear(width, 1), "b": nn.Linear(width, 2)})
    out = model(x)
    losses = {"a": out["a"].pow(2).mean(), "b": out["b"].pow(2).mean()}
    info = mtl_backward(losses, model, record_cosines=True)
    assert info.cosines.shape == (2, 2)
    assert all(p.grad is not None for p in model.parameters())


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_soft_sharing_l2_penalty_closed_form():
    nets = [_net(s) for s in range(3)]
    model = SoftSharing(nets, ["a", "b", "c"], coupling="l2", strength=0.7)
    want = 0.0
    for name in ["0.weight", "0.bias", "2.weight", "2.bias"]:
        vals = [dict(n.named_parameters())[name].detach().numpy() for n in nets]
        for s in range(3):
            for t in range(s + 1, 3):
                want += np.sum((vals[s] - vals[t]) ** 2)
    assert model.regularization().item() == pytest.approx(0.7 * want, rel=1e-5)


def test_soft_sharing_trace_penalty_closed_form():
    nets = {"a": _net(0), "b": _net(1)}
    model = SoftSharing(nets, coupling="trace", strength=0.3)
    want = 0.0
    for name in ["0.weight", "0.bias", "2.weight", "2.bias"]:
        cols = [dict(n.named_parameters())[name].detach().numpy().ravel() for n in nets.values()]
        want += np.linalg.svd(np.stack(cols, 1), compute_uv=False).sum()
    assert model.regularization().item() == pytest.approx(0.3 * want, rel=1e-5)


def test_soft_sharing_identical_networks_have_zero_l2_penalty():
    model = SoftSharing(_net(0), ["a", "b", "c"])  # deep copies of one template
    assert model.regularization().item() == 0.0
    pa, pb = next(model.task_parameters("a")), next(model.task_parameters("b"))
    assert pa is not pb and torch.equal(pa, pb)
    assert list(model.shared_parameters()) == []
    assert "ModuleDict" in repr(model)


def test_soft_sharing_coupling_gradient_through_mtl_backward():
    model = SoftSharing({"a": _net(0), "b": _net(1)}, strength=0.5)
    x = torch.randn(6, 3)
    out = model(x)
    losses = {t: out[t].pow(2).mean() for t in model.task_names}
    mtl_backward(losses, model, extra_loss=model.regularization())
    for name, pa in model.networks["a"].named_parameters():
        pb = dict(model.networks["b"].named_parameters())[name]
        own = torch.autograd.grad(model(x)["a"].pow(2).mean(), pa)[0]
        # d/dtheta_a of 0.5 * ||theta_a - theta_b||^2 = 0.5 * 2 (theta_a - theta_b)
        torch.testing.assert_close(pa.grad, own + (pa - pb).detach(), rtol=1e-5, atol=1e-6)


def test_soft_sharing_errors():
    with pytest.raises(ValueError, match="task_names"):
        SoftSharing(_net(0))
    with pytest.raises(ValueError, match="2 networks for 3 task names"):
        SoftSharing([_net(0), _net(1)], ["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown coupling"):
        SoftSharing(_net(0), ["a", "b"], coupling="l1")
    with pytest.raises(ValueError, match="no parameter of the same name"):
        SoftSharing({"a": nn.Linear(2, 2), "b": nn.Linear(3, 3)})


def test_gradient_reversal():
    x = torch.randn(4, requires_grad=True)
    y = grad_reverse(x, 0.3)
    torch.testing.assert_close(y, x)
    (y * torch.arange(4.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * torch.arange(4.0))
    layer = GradientReversal(2.0)
    x.grad = None
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4,), -2.0))
    assert ganin_schedule(0.0) == 0.0
    assert ganin_schedule(1.0) == pytest.approx(2 / (1 + np.exp(-10)) - 1)
    with pytest.raises(ValueError, match="progress"):
        ganin_schedule(1.5)


def test_an_in_place_op_after_the_reversal_layer():
    """The layer returned a view made in a custom Function: ReLU(inplace=True) after it raised
    "Output 0 of _Reverse is a view and is being modified inplace". Oracle: -scale times the
    gradient through the same head without the layer."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, requires_grad=True)
    lin = nn.Linear(3, 1)
    head = nn.Sequential(GradientReversal(0.5), nn.ReLU(inplace=True), lin)
    (g,) = torch.autograd.grad(head(x).sum(), x)
    (want,) = torch.autograd.grad(nn.Sequential(nn.ReLU(), lin)(x).sum(), x)
    torch.testing.assert_close(g, -0.5 * want)


@pytest.mark.parametrize(
    ("heads", "error", "match"),
    [
        ({"a.b": nn.Linear(4, 1)}, ValueError, r"contains '\.'"),
        ({"": nn.Linear(4, 1)}, ValueError, "non-empty strings"),
        ({"a": 3}, TypeError, "head of task 'a' is a int"),
    ],
)
def test_hard_sharing_checks_its_heads_before_torch_does(heads, error, match):
    with pytest.raises(error, match=match):
        HardSharing(nn.Linear(4, 4), heads)


def test_hard_sharing_checks_its_trunk():
    with pytest.raises(TypeError, match="trunk is a NoneType"):
        HardSharing(None, {"a": nn.Linear(4, 1)})


def test_soft_sharing_checks_its_task_names():
    with pytest.raises(ValueError, match=r"contains '\.'"):
        SoftSharing({"x.y": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
