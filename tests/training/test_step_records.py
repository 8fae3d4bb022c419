"""A step's record under gradient accumulation: each task's weight is that of the
micro-batches that trained it (not the window's last one), and a non-finite weight of any
micro-batch stops the run before the update. A balancer run on the present tasks alone
(FAMO with a loss floor) is not refused for an absent task's 0, which it never sees."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DWA, FAMO, LossWeighting
from multitask.training import Trainer


def _model(tasks):
    torch.manual_seed(0)
    return HardSharing(
        nn.Sequential(nn.Linear(5, 8), nn.ReLU()),
        {t: nn.Sequential(nn.Linear(8, 1), nn.Flatten(0)) for t in tasks},
    )


class _Rows(TensorDataset):
    def __init__(self, task, seed, n=24):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 5, generator=g)
        super().__init__(x, x[:, seed % 5] + 0.1 * torch.randn(n, generator=g))
        self.task = task

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x, {self.task: y}


def _loaders(tasks):
    return {t: DataLoader(_Rows(t, i + 1), batch_size=8) for i, t in enumerate(tasks)}


def _batches(shift=0.0):
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(7))
    return [(x[i : i + 8], {"a": x[i : i + 8, 0] + shift, "b": x[i : i + 8, 1] + shift})
            for i in range(0, 32, 8)]  # fmt: skip


def _trainer(tasks, balancer, **kw):
    return Trainer(
        _model(tasks), [Task(t) for t in tasks], balancer, lr=1e-2, max_epochs=1,
        device="cpu", progress=False, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("accumulation", [1, 3])
def test_each_task_weight_is_that_of_the_micro_batches_that_trained_it(accumulation):
    """Round robin: each micro-batch trains one task at DWA weight 1 (softmax over the one
    present task, times their number); the others get 0 there."""
    tasks = ("a", "b", "c")
    trainer = _trainer(tasks, DWA(3), grad_accumulation=accumulation, sampler="round_robin")
    trainer.fit(_loaders(tasks))
    for record in trainer.history_.steps:
        trained = [t for t, v in record.losses.items() if not np.isnan(v)]
        assert len(trained) == accumulation
        assert record.weights == {t: (1.0 if t in trained else 0.0) for t in tasks}


class _Scripted(LossWeighting):
    """Weights given per call (a list of rows), in the model's task order."""

    handles_absent_tasks = True

    def __init__(self, rows):
        super().__init__()
        self.rows, self.calls, self.w = rows, 0, None

    def forward(self, losses):
        self.w = torch.tensor(self.rows[self.calls % len(self.rows)], dtype=losses.dtype)
        self.calls += 1
        return (self.w * losses).sum()

    def weights(self):
        return self.w


def test_the_record_averages_the_weights_over_the_window():
    batches = _batches()
    trainer = _trainer(("a", "b"), _Scripted([[1.0, 2.0], [3.0, 0.5]]), grad_accumulation=2)
    trainer.fit(batches)
    for record in trainer.history_.steps:
        assert record.weights == pytest.approx({"a": 2.0, "b": 1.25})


@pytest.mark.parametrize("accumulation", [1, 2])
def test_a_non_finite_weight_of_any_micro_batch_stops_before_the_update(accumulation):
    batches = _batches()
    rows = [[float("nan"), 1.0]] + [[1.0, 1.0]] * 7  # only the first micro-batch's
    trainer = _trainer(("a", "b"), _Scripted(rows), grad_accumulation=accumulation)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(FloatingPointError, match=r"_Scripted gave task weights \{'a': nan"):
        trainer.fit(batches)
    for p, q in zip(before, trainer.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_famo_with_a_floor_trains_under_round_robin():
    """Every loss is far above the floor: an absent task's 0 is not FAMO's loss."""
    tasks = ("a", "b")
    trainer = _trainer(tasks, FAMO(2, min_losses=0.01), sampler="round_robin")
    trainer.fit(_loaders(tasks))
    assert trainer.step_ == 6
    assert all(v > 0.01 for r in trainer.history_.steps for v in r.losses.values() if v == v)


def test_famo_with_a_floor_trains_on_a_batch_without_labels_of_a_task():
    batches = _batches(shift=3.0)
    batches[1][1]["b"][:] = float("nan")  # task b: no label in the second batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = _trainer(("a", "b"), FAMO(2, min_losses=0.01)).fit(batches)
    assert trainer.step_ == 4 and np.isnan(trainer.history_.steps[1].losses["b"])


def test_famo_checks_the_floor_of_the_present_tasks_only():
    famo = FAMO(2, min_losses=0.01)
    with famo.present_tasks([0]):
        famo(torch.tensor([0.5, 0.0], requires_grad=True))  # task 1 absent: its 0 unused
    with famo.present_tasks([1]), pytest.raises(ValueError, match="below its floor"):
        famo(torch.tensor([0.5, 0.001], requires_grad=True))  # present and below: refused
