"""``mtl_backward(..., absent_tasks=...)``: MGDA, CAGrad and GradVac (``drops_absent_rows``) run
on the present tasks' rows alone, against independent per-task autograd calls, MGDA's two-task
closed form (Sener & Koltun 2018, Algorithm 1) and GradVac's Algorithm 1 (Wang et al. 2021) on
the present rows and their pairs' targets."""

import numpy as np
import pytest
import torch
from jacobian_oracle import per_task_rows
from test_aggregation import gradvac_reference
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import AGGREGATORS, IMTLG, MGDA, CAGrad, GradVac
from multitask.nn.aggregation._present import PresentRows
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


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _shared(model):
    return list(model.trunk.parameters())


@pytest.mark.parametrize("two_stage", [True, False])
def test_mgda_runs_on_the_present_rows(two_stage):
    model = _model(two_stage)
    losses = _losses(model)
    shared = _shared(model)
    expected, gamma = _mgda_two(*per_task_rows(losses, "ac", shared))
    heads = {t: per_task_rows(losses, [t], list(model.heads[t].parameters()))[0] for t in NAMES}
    info = mtl_backward(losses, model, MGDA(), absent_tasks=["b"])
    assert 0 < gamma < 1  # the rows conflict enough for both to count
    torch.testing.assert_close(_flat(p.grad for p in shared), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        info.weights, torch.tensor([gamma, 0.0, 1 - gamma], dtype=torch.float64)
    )
    for t in NAMES:  # every head its own task's gradient (the absent one's: zero)
        got = _flat(p.grad for p in model.heads[t].parameters())
        torch.testing.assert_close(got, heads[t], rtol=1e-10, atol=1e-14)
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
    _, gamma = _mgda_two(*per_task_rows(losses, "ac", [rep]))
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
    J = per_task_rows(losses, "ac", shared)
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
    assert dropping == {"mgda", "cagrad", "gradvac"}
    for name in dropping:  # linear, and not also claiming that a zero row is harmless
        assert AGGREGATORS[name].linear and not AGGREGATORS[name].handles_absent_tasks


def test_bad_absent_tasks():
    model = _model(True)
    with pytest.raises(ValueError, match=r"unknown tasks \['z'\]"):
        mtl_backward(_losses(model), model, MGDA(), absent_tasks=["z"])
    with pytest.raises(TypeError, match="collection of task names"):
        mtl_backward(_losses(model), model, MGDA(), absent_tasks="b")


@pytest.mark.parametrize("host", [True, False], ids=["host", "torch"])
def test_gradvac_runs_on_the_present_rows_and_their_targets(host, monkeypatch):
    # four tasks over five steps, a different set absent at each: every step is Algorithm 1 on
    # the present rows with their pairs' targets (the same generator, drawing for the present
    # tasks only); the absent tasks' targets stay as they were
    if not host:  # the torch step (as beyond PYTHON_LOOP_MAX_TASKS, or off the CPU)
        monkeypatch.setattr(GradVac, "host_weights", lambda self, G: None)
    g = torch.Generator().manual_seed(4)
    beta, gv = 0.3, GradVac(beta=0.3, seed=3)
    torch.manual_seed(3)  # the draws GradVac(seed=3) makes
    phi_hat = np.zeros((4, 4))
    for present in [[0, 1, 2, 3], [0, 2, 3], [1, 3], [0, 1, 2, 3], [2]]:
        J = torch.randn(4, 9, generator=g, dtype=torch.float64)
        J[1] = -0.7 * J[0] + 0.2 * J[1]  # conflicts, so that the targets matter
        orders = []
        for i in range(len(present)):
            others = [j for j in range(len(present)) if j != i]
            if len(present) > 2:
                others = [others[k] for k in torch.randperm(len(present) - 1).tolist()]
            orders.append(others)
        block = phi_hat[np.ix_(present, present)]
        expected = gradvac_reference(J[present], orders, block, beta)  # updates block
        phi_hat[np.ix_(present, present)] = block
        got = PresentRows(gv, present)(J)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gv.targets.numpy(), phi_hat, rtol=0, atol=1e-12)
    assert np.abs(phi_hat).max() > 0.05  # the targets moved


def test_gradvac_targets_survive_a_step_without_some_tasks():
    # through mtl_backward: the absent task's row and column of targets are left as they were
    model, gv = _model(True), GradVac(beta=0.5)
    mtl_backward(_losses(model, absent=()), model, gv)
    before = gv.targets.clone()
    model.zero_grad(set_to_none=True)
    mtl_backward(_losses(model), model, gv, absent_tasks=["b"])
    after = gv.targets
    torch.testing.assert_close(after[1], before[1], rtol=0, atol=0)
    torch.testing.assert_close(after[:, 1], before[:, 1], rtol=0, atol=0)
    assert (after[0, 2] - before[0, 2]).abs() > 0  # the present pair (a, c) moved
