"""Validation data that gives the monitor nothing to score: the monitored task has no target,
or no labelled entry. An error naming the task before any step when the validation targets are
at hand; else at the first evaluation, with the checkpoint written first (resume=True with
mended data continues exactly), never a silent early stop."""

from __future__ import annotations

import warnings

import pytest
import torch
from _training_helpers import DictDataset, TwoHeads, flat_params, regression_tasks
from torch.utils.data import DataLoader

from multitask.training import Callback, Trainer

NAN = float("nan")


class Count(Callback):
    def __init__(self):
        self.steps = 0

    def on_step(self, record):
        self.steps += 1


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    train = [
        (x[i : i + 16], {"a": x[i : i + 16, 0], "b": x[i : i + 16, 1]}) for i in range(0, 64, 16)
    ]
    return x, train


def _trainer(tmp_path=None, **kw):
    torch.manual_seed(0)
    kw.setdefault("max_epochs", 3)
    return Trainer(
        TwoHeads(), regression_tasks(), device="cpu", progress=False, checkpoint_dir=tmp_path, **kw
    )


def test_monitored_task_without_target_is_refused_before_training():
    x, train = _data()
    val = [(x[:16], {"a": x[:16, 0]})]  # no target of the monitored task b
    count = Count()
    trainer = _trainer(monitor=("b", "mse"), callbacks=[count])
    with pytest.raises(ValueError, match=r"no target for task 'b'.*checked before training"):
        trainer.fit(train, val)
    assert count.steps == 0


def test_monitored_task_without_labels_is_refused_before_training():
    x, train = _data()
    val = [(x[:16], {"a": x[:16, 0], "b": torch.full((16,), NAN)})]
    count = Count()
    trainer = _trainer(monitor=("b", "mse"), early_stopping=2, callbacks=[count])
    with pytest.raises(ValueError, match=r"task 'b' has no labelled validation entry"):
        trainer.fit(train, val)
    assert count.steps == 0


def test_delta_without_any_labelled_task_is_refused_before_training():
    x, train = _data()
    nan = torch.full((16,), NAN)
    val = [(x[:16], {"a": nan, "b": nan})]
    with pytest.raises(ValueError, match=r"'delta': no reported task has a labelled entry"):
        _trainer(early_stopping=2).fit(train, val)


def test_delta_with_one_labelled_task_trains():
    x, train = _data()
    val = [(x[:16], {"a": x[:16, 0], "b": torch.full((16,), NAN)})]
    trainer = _trainer(max_epochs=2).fit(train, val)
    assert trainer.step_ == 8 and trainer.best_step_ > 0


def test_partly_labelled_monitored_task_trains():
    x, train = _data()
    b = x[:16, 1].clone()
    b[1:] = NAN
    val = [(x[:16], {"a": x[:16, 0], "b": b}), (x[16:32], {"a": x[16:32, 0]})]
    trainer = _trainer(monitor=("b", "mse"), max_epochs=2).fit(train, val)
    assert trainer.step_ == 8 and trainer.best_step_ > 0


def _loader(x, ys):
    return DataLoader(DictDataset(x, ys), batch_size=8)  # no targets mapping: not at hand


@pytest.mark.parametrize("broken", ["missing", "unlabelled"])
def test_failed_monitor_at_first_evaluation_keeps_the_work(tmp_path, broken):
    """Targets not at hand: the first evaluation fails, naming b, after writing the checkpoint;
    resume=True with mended validation data ends as the uninterrupted run."""
    x, train = _data()
    ys = {"a": x[:16, 0]}
    if broken == "unlabelled":
        ys["b"] = torch.full((16,), NAN)
    good = _loader(x[:16], {"a": x[:16, 0], "b": x[:16, 1]})
    count = Count()
    trainer = _trainer(tmp_path, monitor=("b", "mse"), early_stopping=2, callbacks=[count])
    match = "not among validation metrics" if broken == "missing" else "no labelled entry.*'b'"
    with pytest.raises(ValueError, match=match) as info:
        trainer.fit(train, _loader(x[:16], ys))
    assert count.steps == 4  # one epoch, then its evaluation
    assert (tmp_path / "last.pt").exists()
    assert any("resume=True" in n for n in getattr(info.value, "__notes__", []))

    resumed = _trainer(tmp_path, monitor=("b", "mse"), early_stopping=2)
    resumed.fit(train, good, resume=True)
    straight = _trainer(monitor=("b", "mse"), early_stopping=2).fit(train, good)
    assert resumed.step_ == straight.step_ and resumed.best_step_ == straight.best_step_
    torch.testing.assert_close(flat_params(resumed.model), flat_params(straight.model))
    scores = [dict(r.metrics["b"]) for r in resumed.history_.evaluations]
    assert len(scores) == 3  # the failed evaluation of step 4 done on resume, then two more


def test_unlabelled_monitor_not_at_hand_never_stops_silently():
    x, train = _data()
    val = _loader(x[:16], {"a": x[:16, 0], "b": torch.full((16,), NAN)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"scored NaN at step 4.*task 'b'"):
            _trainer(monitor=("b", "mse"), early_stopping=1, max_epochs=50).fit(train, val)


def test_nan_predictions_with_labels_are_not_called_unlabelled():
    """A NaN score from labelled data is not the unlabelled error (the data is re-read)."""
    from multitask.training._selection import ModelSelector

    x, _ = _data()
    val = _loader(x[:16], {"a": x[:16, 0], "b": x[:16, 1]})
    selector = ModelSelector(("b", "mse"))
    metrics = {"a": {"mse": 1.0, "mae": 1.0}, "b": {"mse": NAN, "mae": NAN}}
    assert selector.unlabelled(dict(zip("ab", regression_tasks(), strict=True)), metrics, val) == []
