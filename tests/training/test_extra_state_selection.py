"""Model selection and checkpoints of architectures whose ``state_dict`` holds a non-tensor
entry (``get_extra_state``: the grown tree of FullyAdaptiveSharing, the successive
regularisation snapshot of JointManyTask)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask.nn import Task
from multitask.nn.architectures import FullyAdaptiveSharing, JointManyTask
from multitask.training import Trainer


def _fafs():
    model = FullyAdaptiveSharing(
        [nn.Sequential(nn.Linear(4, 8), nn.Tanh()), nn.Sequential(nn.Linear(8, 8), nn.Tanh())],
        {"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)},
    )
    model.widen_next(torch.tensor([[1.0, 0.1], [0.1, 1.0]]))  # a grown tree: extra state
    return model


def _jmt():
    layers = [nn.Sequential(nn.Linear(4, 8), nn.Tanh()), nn.Sequential(nn.Linear(4 + 8 + 3, 8))]
    return JointManyTask(layers, {"b": nn.Linear(8, 2), "a": nn.Linear(8, 1)}, {"b": 2}, 3)


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    y = {"a": x[:, :1] + 0.1 * torch.randn(48, 1, generator=g), "b": (x[:, 1] > 0).long()}
    return [(x[i : i + 16], {t: v[i : i + 16] for t, v in y.items()}) for i in range(0, 48, 16)]


def _trainer(model, **kw):
    tasks = [Task("a", "regression"), Task("b", "multiclass")]
    return Trainer(model, tasks, lr=0.05, max_epochs=3, device="cpu", progress=False, **kw)


@pytest.mark.parametrize("build", [_fafs, _jmt], ids=["fully_adaptive", "joint_many_task"])
def test_model_selection_keeps_a_copy_of_the_extra_state(build):
    torch.manual_seed(0)
    model = build()
    trainer = _trainer(model).fit(_data(), _data())
    best = trainer._selector.best_state
    assert trainer.best_step_ > 0
    extra = model.state_dict()["_extra_state"]
    assert best["_extra_state"] == extra and best["_extra_state"] is not extra
    for k, v in model.state_dict().items():  # the selected state is the model's
        if isinstance(v, torch.Tensor):
            torch.testing.assert_close(v, best[k], rtol=0, atol=0)


@pytest.mark.parametrize("build", [_fafs, _jmt], ids=["fully_adaptive", "joint_many_task"])
def test_a_run_with_validation_resumes_from_its_checkpoint(build, tmp_path):
    torch.manual_seed(0)
    full = _trainer(build()).fit(_data(), _data())
    torch.manual_seed(0)
    _trainer(build(), max_steps=4, checkpoint_dir=tmp_path).fit(_data(), _data())
    torch.manual_seed(1)  # the resumed run's state comes from the checkpoint, not this seed
    resumed = _trainer(build(), checkpoint_dir=tmp_path).fit(_data(), _data(), resume=True)
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    assert resumed.best_step_ == full.best_step_
