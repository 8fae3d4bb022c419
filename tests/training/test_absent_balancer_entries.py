"""A loss weighting's per-task parameters stay put, with their optimizer state, at a step that
does not train their task (docs/training.md: an absent task's state "is left as it is"): a zero
gradient still moves them under Adam's moments, momentum or weight decay."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import IMTLL, GradNorm, UncertaintyWeighting
from multitask.training import Callback, Trainer

BALANCERS = {
    "uncertainty": lambda: UncertaintyWeighting(2),
    "imtl_l": lambda: IMTLL(2),
    "gradnorm": lambda: GradNorm(2),
}


def _batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y, c = x[:, :1] + 0.1 * torch.randn(32, 1, generator=g), x[:, 1:2].clone()
    c[8:16] = math.nan  # the second batch has no label of task c
    return [(x[i : i + 8], {"y": y[i : i + 8], "c": c[i : i + 8]}) for i in range(0, 32, 8)]


class _Snapshots(Callback):
    """The balancer's parameter and its optimizer state after every step."""

    def __init__(self):
        self.params, self.states = [], []

    def on_step(self, record):
        (p,) = list(self.trainer.balancer.parameters())
        self.params.append(p.detach().clone())
        state = self.trainer.optimizer_.state[p]
        self.states.append({k: v.clone() for k, v in state.items() if v.shape == p.shape})


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd_momentum"])
@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_an_absent_task_keeps_its_balancer_entries(name, optimizer):
    torch.manual_seed(0)
    model = HardSharing(
        nn.Sequential(nn.Linear(4, 8), nn.Tanh()), {"y": nn.Linear(8, 1), "c": nn.Linear(8, 1)}
    )
    opt = optimizer
    if optimizer == "sgd_momentum":
        opt = lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9)  # noqa: E731
    snaps = _Snapshots()
    trainer = Trainer(
        model, [Task("y"), Task("c")], BALANCERS[name](), optimizer=opt, lr=0.05,
        max_epochs=1, device="cpu", progress=False, callbacks=[snaps],
    )  # fmt: skip
    snaps.trainer = trainer
    trainer.fit(_batches())
    c = model.task_names.index("c")
    y = model.task_names.index("y")
    # step 2 (index 1) has no label of c: its entry and its moments are those of step 1
    expected = snaps.params[0][c]
    if name == "gradnorm":  # its step renormalises w to sum to T first (Alg. 1's last line)
        expected = expected * 2 / snaps.params[0].sum()
    torch.testing.assert_close(snaps.params[1][c], expected, rtol=1e-6, atol=0)
    assert snaps.states[1] and all(
        torch.equal(snaps.states[1][k][c], snaps.states[0][k][c]) for k in snaps.states[1]
    )
    # the present task's entry moved at that step, and c's moves again once labelled
    if name != "gradnorm":  # (GradNorm with one present task: its L_grad is constant)
        assert snaps.params[1][y] != snaps.params[0][y]
    assert snaps.params[2][c] != snaps.params[1][c]
