"""``mtl_backward(..., absent_tasks=...)``: MGDA and CAGrad (``drops_absent_rows``) run on the
present tasks' rows alone, against independent per-task autograd calls and MGDA's two-task
closed form (Sener & Koltun 2018, Algorithm 1)."""

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import AGGREGATORS, IMTLG, MGDA, CAGrad
from multitask.nn.architectures import HardSharing

torch.set_num_threads(1)
NAMES = ["a", "b", "c"]


def _model(two_stage: bool, seed=0):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh())
    model = HardSharing(trunk, {t: nn.Linear(6, 1) for t in NAMES}).double()
    model.shared_through_representation = two_stage
    return model


def _losses(model, absent=("b",)):
    """Task losses of one batch; an absent task's is 0, in the graph (as the Trainer makes it)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(13, 5, generator=g, dtype=torch.float64)
    y = torch.randn(13, 3, generator=g, dtype=torch.float64)
    out = model(x)
    losses = {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() * (i + 1) for i, t in enumerate(NAMES)}
    return {t: 0 * out[t].sum() if t in absent else v for t, v in losses.items()}


def _mgda_two(g1, g2):
    """MGDA's min-norm point of two vectors in closed form (Algorithm 1)."""
    gamma = float(((g2 - g1) @ g2) / ((g1 - g2) @ (g1 - g2)))
    gamma = min(max(gamma, 0.0), 1.0)
    return gamma * g1 + (1 - gamma) * g2, gamma


def _grads(loss, params):
    """Oracle: one ordinary autograd.grad call."""
    return torch.autograd.grad(loss, params, retain_graph=True)


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _shared(model):
    return list(model.trunk.parameters())


@pytest.mark.parametrize("two_stage", [True, False])
def test_mgda_runs_on_the_present_rows(two_stage):
    model = _model(two_stage)
    losses = _losses(model)
    shared = _shared(model)
    rows = [_flat(_grads(losses[t], shared)) for t in "ac"]
    expected, gamma = _mgda_two(*rows)
    heads = {t: _grads(losses[t], list(model.heads[t].parameters())) for t in NAMES}
    info = mtl_backward(losses, model, MGDA(), absent_tasks=["b"])
    assert 0 < gamma < 1  # the rows conflict enough for both to count
    torch.testing.assert_close(_flat(p.grad for p in shared), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        info.weights, torch.tensor([gamma, 0.0, 1 - gamma], dtype=torch.float64)
    )
    for t in NAMES:  # every head its own task's gradient (the absent one's: zero)
        for p, g in zip(model.heads[t].parameters(), heads[t], strict=True):
            torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-14)
    # without being told, MGDA takes the zero row: the min-norm point is 0
    model.zero_grad(set_to_none=True)
    mtl_backward(_losses(model), model, MGDA())
    assert _flat(p.grad for p in shared).abs().max() < 1e-12


@pytest.mark.parametrize("two_stage", [True, False])
def test_mgda_ub_runs_on_the_present_rows(two_stage):
    # on the representation: the weights from the present tasks' rows dL_t / d rep, then one
    # backward of the weighted sum of their losses
    model = _model(two_stage)
    losses = _losses(model)
    shared, rep = _shared(model), model.representation
    rows = [torch.autograd.grad(losses[t], rep, retain_graph=True)[0].reshape(-1) for t in "ac"]
    _, gamma = _mgda_two(*rows)
    weighted = gamma * losses["a"] + (1 - gamma) * losses["c"]
    expected = _flat(torch.autograd.grad(weighted, shared, retain_graph=True))
    info = mtl_backward(losses, model, MGDA(), use_representation=True, absent_tasks=["b"])
    torch.testing.assert_close(_flat(p.grad for p in shared), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        info.weights, torch.tensor([gamma, 0.0, 1 - gamma], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "aggregator", [CAGrad(), CAGrad(0.2, rescale="c2"), MGDA("loss"), MGDA("l2")], ids=repr
)
def test_each_dropping_aggregator_equals_itself_on_the_present_rows(aggregator):
    # CAGrad's average gradient is that of the present tasks; MGDA("loss") divides by the
    # present losses only (the absent one is 0)
    model = _model(True)
    losses = _losses(model)
    shared = _shared(model)
    J = torch.stack([_flat(_grads(losses[t], shared)) for t in "ac"])
    present = torch.stack([losses["a"], losses["c"]]).detach()
    if getattr(aggregator, "needs_losses", False):
        expected = aggregator(J, losses=present)
    else:
        expected = aggregator(J)
    mtl_backward(losses, model, aggregator, absent_tasks=["b"])
    got = _flat(p.grad for p in shared)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_every_task_absent_moves_nothing_shared():
    model = _model(True)
    info = mtl_backward(_losses(model, absent=NAMES), model, MGDA(), absent_tasks=NAMES)
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in _shared(model))
    assert info.weights.abs().max() == 0


def test_other_balancers_take_the_zero_rows_as_they_are():
    # IMTL-G handles a zero row itself: being told changes nothing
    told, untold = _model(True), _model(True)
    mtl_backward(_losses(told), told, IMTLG(), absent_tasks=["b"])
    mtl_backward(_losses(untold), untold, IMTLG())
    for p, q in zip(told.parameters(), untold.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)


def test_which_aggregators_drop_absent_rows():
    dropping = {n for n, c in AGGREGATORS.items() if c.drops_absent_rows}
    assert dropping == {"mgda", "cagrad"}
    for name in dropping:  # linear, and not also claiming that a zero row is harmless
        assert AGGREGATORS[name].linear and not AGGREGATORS[name].handles_absent_tasks


def test_bad_absent_tasks():
    model = _model(True)
    with pytest.raises(ValueError, match=r"unknown tasks \['z'\]"):
        mtl_backward(_losses(model), model, MGDA(), absent_tasks=["z"])
    with pytest.raises(TypeError, match="collection of task names"):
        mtl_backward(_losses(model), model, MGDA(), absent_tasks="b")
