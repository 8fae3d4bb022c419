"""A trained task without a labelled entry, or a classification task with a single class:
a ValueError naming the task, when fit starts if the targets are at hand, else once the first
pass over the task's data has read them."""

import pytest
import torch
from _training_helpers import (
    CrashAt,
    Crashed,
    DictDataset,
    TwoHeads,
    flat_params,
    loader,
    regression_data,
)
from torch import nn
from torch.utils.data import DataLoader, Subset

from multitask.nn import Task
from multitask.training import Trainer
from multitask.training._labels import LabelCheck, classes_in, presence


class ClassHeads(TwoHeads):
    """a: binary logits (B,); b: three-class logits (B, 3)."""

    def __init__(self):
        super().__init__()
        self.heads["b"] = nn.Linear(8, 3)

    def forward(self, x):
        h = self.trunk(x)
        return {"a": self.heads["a"](h).squeeze(-1), "b": self.heads["b"](h)}


def _tasks():
    return [Task("a", "binary"), Task("b", "multiclass")]


def _data(n=64, a=None, b=None):
    """Both classes of a, the three of b, unless given."""
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(0))
    a = (torch.arange(n) % 2).float() if a is None else a
    b = torch.arange(n) % 3 if b is None else b
    return DictDataset(x, {"a": a, "b": b})


class WithTargets(DictDataset):
    """A dataset that says what its targets are (``targets``: task -> all its targets)."""

    @property
    def targets(self):
        return self.ys


def _trainer(**kw):
    torch.manual_seed(0)
    kw = {"max_epochs": 2, "device": "cpu", "progress": False, **kw}
    return Trainer(ClassHeads(), _tasks(), **kw)


def _batches(data, size=8):
    return [data[i : i + size] for i in range(0, len(data), size)]


def _fit_fails_before_any_step(trainer, train, match):
    before = flat_params(trainer.model).clone()
    with pytest.raises(ValueError, match=match):
        trainer.fit(train)
    assert trainer.step_ == 0
    torch.testing.assert_close(flat_params(trainer.model), before, rtol=0, atol=0)


def test_a_list_of_batches_with_one_binary_class_fails_when_fit_starts():
    # one class among the labelled targets (NaN: missing), training used to go on silently
    a = torch.ones(64)
    a[::3] = float("nan")
    match = r"task 'a' \(binary\) has a single class among its 42 labelled targets in the "
    match += r"training data: every one is 1 \(0.5 or more\).*two classes"
    _fit_fails_before_any_step(_trainer(), _batches(_data(a=a)), match)


def test_a_dataset_with_targets_fails_when_fit_starts_also_through_a_subset():
    b = torch.full((64,), -100)  # ignore_index: missing
    b[:5] = 2
    data = WithTargets(_data(b=b).x, _data(b=b).ys)
    match = r"task 'b' \(multiclass\) has a single class among its 5 .* every one is 2"
    _fit_fails_before_any_step(_trainer(), DataLoader(data, batch_size=8, shuffle=True), match)
    # a Subset: the targets of its rows only (class 0 is outside them)
    b = torch.arange(64) % 3
    b[10:] = 1
    data = WithTargets(_data(b=b).x, _data(b=b).ys)
    subset = Subset(data, list(range(10, 64)))
    _fit_fails_before_any_step(_trainer(), DataLoader(subset, batch_size=8), "every one is 1")
    _trainer(max_epochs=1).fit(DataLoader(data, batch_size=8))  # every row: fine


def test_a_loader_without_targets_fails_at_the_end_of_its_first_pass():
    # no target at hand: counted while training, an error before the last step of epoch 0
    # (class 0 is in none of the 8 batches)
    a = torch.ones(64)
    trainer = _trainer()
    with pytest.raises(
        ValueError,
        match=r"task 'a' \(binary\).*64 labelled targets in the "
        r"first pass over its training data \(by step 8\)",
    ):
        trainer.fit(loader(_data(a=a)))
    assert trainer.step_ == 7


def test_a_class_seen_only_late_in_the_first_pass_is_fine():
    b = torch.zeros(64, dtype=torch.long)
    b[-1] = 2  # the last sample of the last batch
    _trainer().fit(loader(_data(b=b)))  # and soft binary labels count by 0.5:
    a = torch.tensor([0.1, 0.9]).repeat(32)
    _trainer(max_epochs=1).fit(loader(_data(a=a)))


def test_a_task_without_any_labelled_entry_is_an_error():
    # a regression task too; was: trained nothing, silently
    data = regression_data()
    data.ys["b"][:] = float("nan")
    torch.manual_seed(0)
    tasks = [Task("a"), Task("b")]
    trainer = Trainer(TwoHeads(), tasks, max_epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"task 'b' has no labelled entry in the first pass"):
        trainer.fit(loader(data))
    with pytest.raises(ValueError, match=r"task 'b' has no labelled entry in the training data"):
        trainer.fit(_batches(data))


def test_per_task_loaders_are_checked_when_each_has_been_read_once():
    # round robin over a (8 batches) and b (2 batches, one class): b's loader is read through
    # at step 4, a's is not yet
    a = regression_data(n=64)
    b = _data(n=16, a=torch.zeros(16))
    torch.manual_seed(0)
    tasks = [Task("a"), Task("b", "binary")]
    trainer = Trainer(TwoHeads(), tasks, max_epochs=1, device="cpu", progress=False)
    b_only = DictDataset(b.x, {"b": b.ys["a"]})
    with pytest.raises(ValueError, match=r"task 'b' \(binary\).*16 labelled .*by step 4"):
        trainer.fit({"a": loader(a), "b": loader(b_only)})
    # a class in b's second batch only: fine
    b_only.ys["b"][12] = 1.0
    trainer.fit({"a": loader(a), "b": loader(b_only)})


def test_the_counts_of_a_first_pass_cut_by_a_crash_carry_over_the_resume(tmp_path):
    # class 1 only in batches 0-1; crashed after step 4, resumed: the resumed run sees class 0
    # alone, and must not call the task single-class
    a = torch.zeros(64)
    a[:16:2] = 1.0
    kw = {"checkpoint_dir": tmp_path, "checkpoint_every": 1}
    with pytest.raises(Crashed):
        _trainer(callbacks=[CrashAt(4)], **kw).fit(loader(_data(a=a)))
    trainer = _trainer(**kw)
    trainer.fit(loader(_data(a=a)), resume=True)
    assert trainer.step_ == 16
    # one class throughout: the resumed run counts the 32 labels before the crash too
    (tmp_path / "last.pt").unlink()
    with pytest.raises(Crashed):
        _trainer(callbacks=[CrashAt(4)], **kw).fit(loader(_data(a=torch.zeros(64))))
    with pytest.raises(ValueError, match=r"single class among its 64 labelled targets"):
        _trainer(**kw).fit(loader(_data(a=torch.zeros(64))), resume=True)


def test_presence_counts_classes_without_a_host_sync_and_classes_in_agrees():
    binary, multi = Task("a", "binary"), Task("b", "multiclass")
    y = torch.tensor([0.0, float("nan"), 1.0, 0.7, 0.2])
    assert presence(binary, None, y).tolist() == [2.0, 2.0]
    assert classes_in(binary, y) == (4, {0, 1})
    y = torch.tensor([[2], [-100], [2], [0]])
    assert presence(multi, torch.zeros(4, 3), y).tolist() == [1.0, 0.0, 2.0]
    assert classes_in(multi, y) == (3, {0, 2})
    check = LabelCheck({"b": multi}, ["b"])
    check.observe_counts("b", 3, [0.0, 0.0, 3.0])
    assert check.pending == {"b"}
    check.observe_counts("b", 1, [1.0, 0.0, 0.0])
    assert check.pending == set()
