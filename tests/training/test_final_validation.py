"""A run that ``max_steps`` ends inside an epoch evaluates its final state (with validation
data, with or without ``val_every``): the state is a model-selection candidate too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.training import History, Trainer


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(64, 1, generator=g)
    return [(x[i : i + 8], {"y": y[i : i + 8]}) for i in range(0, 64, 8)]  # 8 batches


def _fit(max_steps, val=None):
    torch.manual_seed(0)
    model = HardSharing(nn.Sequential(nn.Linear(3, 8), nn.Tanh()), {"y": nn.Linear(8, 1)})
    history = History()
    trainer = Trainer(
        model, [Task("y")], lr=0.01, max_epochs=10, max_steps=max_steps, device="cpu",
        progress=False, callbacks=[history],
    )  # fmt: skip
    return trainer.fit(_data(0), val), history


@pytest.mark.parametrize(("max_steps", "evaluated"), [(5, [5]), (12, [8, 12]), (16, [8, 16])])
def test_the_last_step_is_evaluated_once(max_steps, evaluated):
    trainer, history = _fit(max_steps, _data(1))
    assert [r.step for r in history.evaluations] == evaluated
    assert trainer.best_step_ in evaluated and trainer.best_step_ >= 0


def test_the_final_state_can_be_the_selected_one():
    plain, _ = _fit(12)  # no validation: the model after step 12
    trainer, history = _fit(12, _data(1))
    scores = {r.step: r.metrics["y"]["mse"] for r in history.evaluations}
    assert scores[12] < scores[8] and trainer.best_step_ == 12  # (this run improves)
    for p, q in zip(plain.model.parameters(), trainer.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    expected = plain.evaluate(_data(1))["y"]["mse"]
    assert scores[12] == pytest.approx(expected, rel=1e-6)
