"""Validation data the evaluation would refuse: an error when ``fit`` starts if its targets
are at hand, else at the first evaluation with the checkpoint written first (the RNG state
from before it), so that ``resume=True`` with mended data ends as an uninterrupted run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.training import History, Trainer

N = 48


class Rows(Dataset):
    """``(x, {task: y})`` rows; ``targets`` (the mapping the trainer may read) optional."""

    def __init__(self, x, ys, expose=True):
        self.x, self.ys = x, ys
        if expose:
            self.targets = ys

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {t: y[i] for t, y in self.ys.items()}


def _rows(seed, n=N, b=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    b = (x[:, 0] > 0).float() if b is None else b
    return x, {"b": b, "r": x[:, 1] + 0.1 * torch.randn(n, generator=g)}


def _trainer(tmp_path=None, **kw):
    torch.manual_seed(0)
    model = HardSharing(
        nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.2)),
        {"b": nn.Linear(8, 1), "r": nn.Linear(8, 1)},
    )
    return Trainer(
        model, [Task("b", kind="binary"), Task("r")], lr=0.02, max_epochs=3, device="cpu",
        progress=False, seed=3, checkpoint_dir=tmp_path, **kw,
    )  # fmt: skip


def _one_class():
    x, ys = _rows(1, 16)
    ys["b"] = torch.ones(16)
    return x, ys


VAL_AT_HAND = {
    "dataset targets": lambda x, ys: DataLoader(Rows(x, ys), batch_size=8),
    "shuffled dataset targets": lambda x, ys: DataLoader(Rows(x, ys), batch_size=8, shuffle=True),
    "list of batches": lambda x, ys: [(x[:8], {k: v[:8] for k, v in ys.items()}), (x[8:], ys)],
    "dict of loaders": lambda x, ys: {"b": DataLoader(Rows(x, ys), batch_size=8)},
}


@pytest.mark.parametrize("kind", list(VAL_AT_HAND))
def test_single_class_validation_at_hand_fails_before_any_step(kind):
    x, ys = _one_class()
    if kind == "list of batches":  # the first batch's 8 rows, then all 16 rows again
        val = VAL_AT_HAND[kind](x[:8], {k: v[:8] for k, v in ys.items()})
    else:
        val = VAL_AT_HAND[kind](x, ys)
    trainer = _trainer()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(ValueError, match=r"validation data .*task 'b'.*'auc'.*only one"):
        trainer.fit(DataLoader(Rows(*_rows(0)), batch_size=8, shuffle=True), val)
    for p, q in zip(before, trainer.model.parameters(), strict=True):
        assert torch.equal(p, q)  # not one step


def test_invalid_validation_label_at_hand_fails_before_any_step():
    x, ys = _rows(1, 16)
    ys["b"][3] = 2.0
    with pytest.raises(ValueError, match=r"validation data .*task 'b'.*not 0 or 1.*2\.0"):
        _trainer().fit(DataLoader(Rows(*_rows(0)), batch_size=8), [(x, ys)])


def test_validation_not_at_hand_is_left_to_the_first_evaluation():
    x, ys = _one_class()
    for val in (
        DataLoader(Rows(x, ys, expose=False), batch_size=8),  # no targets mapping
        DataLoader(Rows(x, ys), batch_size=8, sampler=torch.utils.data.RandomSampler(
            Rows(x, ys), replacement=True)),  # reads a draw, not the whole split
    ):  # fmt: skip
        trainer = _trainer()
        with pytest.raises(ValueError, match="only one"):
            trainer.fit(DataLoader(Rows(*_rows(0)), batch_size=8), val)
        assert trainer.step_ == 6  # one epoch, then the evaluation


def test_a_task_missing_from_some_batches_is_not_judged_on_the_rest():
    x, ys = _rows(1, 16)
    val = [(x[:8], {"r": ys["r"][:8]}), (x[8:], {"b": ys["b"][8:], "r": ys["r"][8:]})]
    assert len(set(ys["b"][8:].tolist())) == 2
    trainer = _trainer().fit(DataLoader(Rows(*_rows(0)), batch_size=8), val)
    assert trainer.step_ == 18
    _assert_scores(trainer, val, {"b": (x[8:], ys["b"][8:]), "r": (x, ys["r"])})


def _assert_scores(trainer, val, rows):
    """The trainer's evaluation of ``val`` equals each task's own metrics on ``rows``."""
    trainer.model.eval()
    with torch.no_grad():
        for t, (x, y) in rows.items():
            want = trainer.tasks[t].evaluate(trainer.model(x)[t], y)
            np.testing.assert_allclose(list(trainer.evaluate(val)[t].values()), list(want.values()))


def test_labels_valid_for_the_metrics_pass():
    """Two classes, NaN for missing labels, a constant regression target under its default
    metrics (MSE, MAE: defined): no error, training runs, and they are scored."""
    x, ys = _rows(1, 16)
    ys["b"][:5] = float("nan")
    ys["r"] = torch.full((16,), 2.0)
    trainer = _trainer().fit(DataLoader(Rows(*_rows(0)), batch_size=8), [(x, ys)])
    assert trainer.step_ == 18
    kept = ~torch.isnan(ys["b"])
    _assert_scores(trainer, [(x, ys)], {"b": (x[kept], ys["b"][kept]), "r": (x, ys["r"])})


@pytest.mark.parametrize(
    ("task", "target", "match"),
    [
        (Task("c", kind="multiclass"), torch.tensor([0, 2, 1, -100]), None),
        (Task("c", kind="multiclass"), torch.tensor([0, -3, 1]), "class indices"),
        (Task("m", kind="multilabel"), torch.tensor([[0.0, 1.0], [0.0, 0.0]]), None),
        (Task("m", kind="multilabel", metrics=("auc",)), torch.ones(3, 2), "only one"),
        (Task("r", metrics=("nmse",)), torch.full((5,), 3.0), "constant"),
        (Task("r", metrics={"auc": lambda y, p: 1 / 0}), torch.ones(4), None),  # not called
        (Task("b", kind="binary", metrics={"mine": lambda y, p: 0.0}), torch.ones(4) * 3, "0 or 1"),
        (Task("d", kind="dense"), torch.tensor([[0, 3], [255, 1]]), None),
    ],
)
def test_check_scorable(task, target, match):
    if match is None:
        task.check_scorable(target)
    else:
        with pytest.raises(ValueError, match=match):
            task.check_scorable(target)


def _val_loader(x, ys):
    """Not at hand (no ``targets``), and shuffled: creating its iterator draws from torch's
    global RNG, so a resume must restore the state from before the failed evaluation."""
    return DataLoader(Rows(x, ys, expose=False), batch_size=8, shuffle=True)


@pytest.mark.parametrize("val_every", [None, 4])
def test_a_failed_evaluation_is_checkpointed_and_resumes_exactly(tmp_path, val_every):
    train = DataLoader(Rows(*_rows(0)), batch_size=8, shuffle=True)  # 6 batches an epoch
    good = _val_loader(*_rows(1, 16))
    kw = {"val_every": val_every, "early_stopping": 5}
    whole, history = _trainer(tmp_path / "whole", **kw), History()
    whole.callbacks = [history]
    whole.fit(train, good)

    broken = _trainer(tmp_path / "broken", **kw)
    with pytest.raises(ValueError, match="only one") as info:
        broken.fit(train, _val_loader(*_one_class()))
    first = 4 if val_every else 6
    assert broken.step_ == first
    note = "".join(getattr(info.value, "__notes__", []))
    assert f"written at step {first}, before this evaluation" in note and "resume=True" in note

    resumed, history2 = _trainer(tmp_path / "broken", **kw), History()
    resumed.callbacks = [history2]
    resumed.fit(train, good, resume=True)
    assert resumed.step_ == whole.step_ == 18
    assert resumed.best_step_ == whole.best_step_
    for p, q in zip(whole.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    steps = [r.step for r in history.evaluations]
    assert [r.step for r in history2.evaluations] == [s for s in steps if s >= first]
    scores = {r.step: r.metrics for r in history.evaluations}
    for r in history2.evaluations:  # the same evaluations, the failed one redone
        for t, m in r.metrics.items():
            np.testing.assert_allclose(list(m.values()), list(scores[r.step][t].values()))


def test_without_checkpoint_dir_the_error_is_plain():
    with pytest.raises(ValueError, match="only one") as info:
        _trainer().fit(DataLoader(Rows(*_rows(0)), batch_size=8), _val_loader(*_one_class()))
    assert not getattr(info.value, "__notes__", [])


def _train():
    return DataLoader(Rows(*_rows(0)), batch_size=8)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_validation_input_is_an_error_naming_it(bad):
    x, ys = _rows(1, 16)
    x[11, 2] = bad
    val = DataLoader(Rows(x, ys), batch_size=8)
    with pytest.raises(ValueError, match=r"inputs holds 1 non-finite .* batch 1 .* sample 3"):
        _trainer().fit(_train(), val)
    trainer = _trainer().fit(_train())
    with pytest.raises(ValueError, match="non-finite"):
        trainer.predict(val)


def test_validation_targets_under_no_task_name_warn_of_the_unscored_task():
    x, ys = _rows(1, 16)
    val = [(x, {"b": ys["b"], "R": ys["r"]})]  # a misspelt "r"
    with pytest.warns(UserWarning, match=r"tasks \['r'\] have no target .* named \['R'\]"):
        trainer = _trainer().fit(_train(), val)
    assert set(trainer.history_.evaluations[0].metrics) == {"b"}


def test_targets_of_other_tasks_alone_do_not_warn():
    """A test set with more tasks than the model (every task of the model scored)."""
    x, ys = _rows(1, 16)
    trainer = _trainer().fit(_train())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = trainer.evaluate([(x, {**ys, "other": ys["r"]})])
    assert set(out) == {"b", "r"}


def test_a_per_task_loader_without_its_task_target_is_an_error():
    x, ys = _rows(1, 16)
    val = {"b": [(x, {"b": ys["b"]})], "r": [(x, {"r_": ys["r"]})]}
    trainer = _trainer().fit(_train())
    with pytest.raises(ValueError, match=r"loader of task 'r' yields no batch with a target"):
        trainer.evaluate(val)


def test_a_monitor_without_a_validation_loader_fails_before_any_step():
    x, ys = _rows(1, 16)
    trainer = _trainer(monitor=("r", "mse"))
    with pytest.raises(ValueError, match=r"no loader for task 'r' \(it has \['b'\]\)"):
        trainer.fit(_train(), {"b": [(x, {"b": ys["b"]})]})
    assert not hasattr(trainer, "step_") or trainer.step_ == 0


@pytest.mark.parametrize(
    ("monitor", "reports"), [(("depth", "accuracy"), r"\('mse', 'mae'\)"),
                             (("seg", "mse"), r"\('accuracy',\)")],
)  # fmt: skip
def test_a_dense_monitor_is_checked_against_the_kind_of_its_targets(monitor, reports):
    """A dense task reports accuracy for class targets, MSE and MAE for floating ones: with
    the validation targets at hand, a monitor of the other kind fails before any step."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    ys = {"seg": (x[:, 0] > 0).long(), "depth": x[:, 1].clone()}
    batches = [
        (x[:4], {k: v[:4] for k, v in ys.items()}),
        (x[4:], {k: v[4:] for k, v in ys.items()}),
    ]

    class _Squeeze(nn.Module):
        def forward(self, z):
            return z[:, 0]

    model = HardSharing(
        nn.Conv2d(3, 4, 1),
        {"seg": nn.Conv2d(4, 2, 1), "depth": nn.Sequential(nn.Conv2d(4, 1, 1), _Squeeze())},
    )
    tasks = [Task("seg", "dense"), Task("depth", "dense")]
    trainer = Trainer(model, tasks, monitor=monitor, max_epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match=rf"monitor .*reports only {reports}"):
        trainer.fit(batches, batches)
    assert not hasattr(trainer, "step_") or trainer.step_ == 0
    good = ("depth", "mae") if monitor[0] == "depth" else ("seg", "accuracy")
    Trainer(model, tasks, monitor=good, max_epochs=1, device="cpu", progress=False).fit(
        batches, batches
    )
