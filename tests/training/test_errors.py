"""Bad input: each a clear error, raised before any training happens where possible."""

import pytest
import torch
from _training_helpers import DictDataset, TwoHeads, loader, regression_data, regression_tasks

from multitask.nn import Task
from multitask.training import Trainer


def _trainer(model=None, tasks=None, **kw):
    return Trainer(
        model or TwoHeads(), tasks or regression_tasks(), device="cpu", progress=False, **kw
    )


def test_batch_without_target_for_a_task():
    data = regression_data()
    data.ys.pop("b")
    with pytest.raises(ValueError, match=r"no target for tasks \['b'\].*NaN"):
        _trainer().fit(loader(data))


def test_masked_targets_are_fine():
    data = regression_data()
    data.ys["b"][:] = float("nan")  # b entirely unlabelled: zero loss, no error
    t = _trainer(max_epochs=1)
    t.fit(loader(data))
    assert t.history_.steps[0].losses["b"] == 0.0


def test_target_of_wrong_shape():
    data = regression_data()
    data.ys["a"] = torch.zeros(64, 3)
    with pytest.raises(ValueError, match="task 'a'"):
        _trainer().fit(loader(data))


def test_head_naming_an_unknown_task():
    with pytest.raises(ValueError, match=r"heads for tasks \['c'\].*not among the Tasks"):
        _trainer(model=TwoHeads(extra_head="c"))
    with pytest.raises(ValueError, match=r"Tasks \['c'\] have no head"):
        _trainer(tasks=regression_tasks(("a", "b", "c")))


def test_output_dict_naming_an_unknown_task():
    class Sneaky(TwoHeads):
        def forward(self, x):
            out = super().forward(x)
            out["z"] = out["a"]
            return out

    with pytest.raises(ValueError, match=r"heads \['z'\] that name no known task"):
        _trainer(model=Sneaky()).fit(loader(regression_data()))


def test_empty_dataset():
    empty = DictDataset(torch.zeros(0, 5), {"a": torch.zeros(0), "b": torch.zeros(0)})
    with pytest.raises(ValueError, match="yields no batch"):
        _trainer().fit(loader(empty))
    with pytest.raises(ValueError, match=r"tasks \['b'\] yield no batch"):
        _trainer().fit({"a": loader(regression_data()), "b": loader(empty)})


def test_bad_settings():
    with pytest.raises(ValueError, match="grad_accumulation"):
        _trainer(grad_accumulation=0)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        _trainer(checkpoint_every=5)
    with pytest.raises(ValueError, match="unknown optimizer"):
        _trainer(optimizer="adagrad?").fit(loader(regression_data()))
    with pytest.raises(ValueError, match="task_lr names unknown"):
        _trainer(task_lr={"q": 0.1}).fit(loader(regression_data()))
    with pytest.raises(ValueError, match="unique"):
        _trainer(tasks=[Task("a"), Task("a")])


def test_selection_survives_a_zero_first_validation_value():
    """An untrained multiclass head can score accuracy 0 at the first evaluation: delta_m
    against it is undefined, so that pair counts by its absolute change and the epoch with
    the best accuracy still wins (it used to stop training with 'relative change undefined')."""
    from multitask.training._selection import ModelSelector

    sel = ModelSelector("delta")
    history = [
        {"a": {"accuracy": 0.0}, "b": {"mse": 2.0}},
        {"a": {"accuracy": 0.5}, "b": {"mse": 2.0}},
        {"a": {"accuracy": 0.4}, "b": {"mse": 2.0}},
    ]
    for step, metrics in enumerate(history):
        sel.update(metrics, step, {})
    assert sel.best_step == 1
    # absolute change for the zero pair, relative for the other: epoch 1 scores
    # (0.5 - 0) / 2 pairs shifted by the constant -1/2 of the substituted reference
    assert sel.best_score == pytest.approx(((0.5 - 1.0) + 0.0) / 2)
