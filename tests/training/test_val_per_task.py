"""Validation data as one loader per task (``{task: loader}``, the pairing of training on one
dataset per task): each task is scored on its own loader, and a bad dict is refused before
any training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.training import History, Trainer


def _batches(task, seed, n=16, other=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    targets = {task: x[:, :1] * (1 if task == "a" else -2)}
    if other:  # a target of the other task too, which a per-task loader must not score
        targets["b" if task == "a" else "a"] = torch.full((n, 1), 100.0)
    return [(x[i : i + 8], {t: y[i : i + 8] for t, y in targets.items()}) for i in range(0, n, 8)]


def _trainer(**kw):
    torch.manual_seed(0)
    model = HardSharing(
        nn.Sequential(nn.Linear(3, 8), nn.Tanh()), {"a": nn.Linear(8, 1), "b": nn.Linear(8, 1)}
    )
    return Trainer(model, [Task("a"), Task("b")], lr=0.05, max_epochs=2, device="cpu",
                   progress=False, **kw)  # fmt: skip


def test_each_task_is_scored_on_its_own_loader():
    train = {"a": _batches("a", 0), "b": _batches("b", 1)}
    val = {"a": _batches("a", 2, other=True), "b": _batches("b", 3, other=True)}
    history = History()
    trainer = _trainer(callbacks=[history]).fit(train, val)
    assert len(history.evaluations) == 2
    expected = {
        "a": trainer.evaluate(_batches("a", 2))["a"],  # the loader of a alone, b's target gone
        "b": trainer.evaluate(_batches("b", 3))["b"],
    }
    assert trainer.evaluate(val) == expected
    preds = trainer.predict(val)
    x_a = torch.cat([x for x, _ in val["a"]])
    with torch.no_grad():
        trainer.model.eval()
        torch.testing.assert_close(preds["a"], trainer.model(x_a)["a"])
    assert preds["b"].shape == (16, 1)


def test_a_bad_dict_of_validation_loaders_is_refused_before_training():
    train = {"a": _batches("a", 0), "b": _batches("b", 1)}
    trainer = _trainer()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(ValueError, match=r"unknown tasks \['c'\]"):
        trainer.fit(train, {"a": _batches("a", 2), "c": _batches("b", 3)})
    with pytest.raises(TypeError, match="the loader of task 'b' is a Tensor"):
        trainer.fit(train, {"a": _batches("a", 2), "b": torch.zeros(3)})
    for p, b in zip(trainer.model.parameters(), before, strict=True):  # no step was taken
        assert torch.equal(p, b)
