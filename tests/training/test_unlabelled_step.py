"""An optimizer step at which no task has a labelled entry (every micro-batch of the window
unlabelled) updates nothing: Adam's moments used to move the shared trunk by a full step from
the earlier gradients. The step is still counted (position, schedule, records), and a resume
across it is exact."""

from __future__ import annotations

import warnings

import pytest
import torch
from _training_helpers import CrashAt, Crashed, TwoHeads, flat_params, regression_tasks

from multitask.training import Callback, Trainer

NAN = float("nan")


def _batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    y, nan = x.sum(1), torch.full((16,), NAN)
    return [
        (x[:16], {"a": y[:16], "b": -y[:16]}),
        (x[16:32], {"a": nan, "b": nan}),  # no label of any task
        (x[32:48], {"a": y[32:48], "b": -y[32:48]}),
        (x[48:], {"a": y[48:], "b": nan}),
    ]


class Snap(Callback):
    def __init__(self, model):
        self.model, self.params, self.records = model, [], []

    def on_step(self, record):
        self.params.append(flat_params(self.model).clone())
        self.records.append(record)


def _trainer(tmp_path=None, callbacks=(), **kw):
    torch.manual_seed(0)
    model = TwoHeads(dropout=0.3)
    kw.setdefault("max_epochs", 2)
    trainer = Trainer(
        model, regression_tasks(), lr=0.05, device="cpu", progress=False,
        checkpoint_dir=tmp_path, callbacks=callbacks, **kw,
    )  # fmt: skip
    return trainer, model


def test_step_without_labels_moves_nothing():
    trainer, model = _trainer(max_epochs=1)
    snap = Snap(model)
    trainer.callbacks = (snap,)
    trainer.fit(_batches())
    assert trainer.step_ == 4 and [r.step for r in snap.records] == [1, 2, 3, 4]
    assert all(v != v for v in snap.records[1].losses.values())  # NaN: nothing trained
    torch.testing.assert_close(snap.params[1], snap.params[0], rtol=0, atol=0)
    assert not torch.equal(snap.params[2], snap.params[1])
    states = [s for s in trainer.optimizer_.state.values() if "step" in s]
    assert max(float(s["step"]) for s in states) == 3  # three updates in four steps


def test_window_with_one_labelled_micro_batch_updates():
    trainer, model = _trainer(max_epochs=1, grad_accumulation=2)
    snap = Snap(model)
    trainer.callbacks = (snap,)
    before = flat_params(model).clone()
    trainer.fit(_batches())
    assert trainer.step_ == 2
    assert not torch.equal(snap.params[0], before)


def test_skipped_first_step_keeps_the_schedule_without_warning():
    batches = _batches()
    batches = [batches[1], *batches[:1], *batches[2:]]  # the unlabelled batch first
    trainer, _ = _trainer(scheduler="linear", max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "tasks .* no labelled entry")
        trainer.fit(batches)
    assert trainer.scheduler_.last_epoch == 4  # stepped at every step, the skipped one too


@pytest.mark.parametrize("crash_at", [2, 3])
def test_resume_across_a_skipped_step_is_exact(tmp_path, crash_at):
    straight, _ = _trainer(scheduler="cosine")
    straight.fit(_batches())
    crashing, _ = _trainer(tmp_path, [CrashAt(crash_at)], scheduler="cosine", checkpoint_every=1)
    with pytest.raises(Crashed):
        crashing.fit(_batches())
    resumed, model = _trainer(tmp_path, scheduler="cosine", checkpoint_every=1)
    resumed.fit(_batches(), resume=True)
    assert resumed.step_ == straight.step_ == 8
    torch.testing.assert_close(flat_params(model), flat_params(straight.model), rtol=0, atol=1e-6)
    a = resumed.optimizer_.state_dict()["state"]
    b = straight.optimizer_.state_dict()["state"]
    assert [float(s["step"]) for s in a.values()] == [float(s["step"]) for s in b.values()]


class Penalised(TwoHeads):
    def regularization(self):
        return 0.1 * self.trunk[0].weight.square().sum()


def test_regularization_term_still_updates_without_labels():
    """A step with no task trained but a regularization term has a gradient to apply."""
    torch.manual_seed(0)
    model = Penalised()
    snap = Snap(model)
    Trainer(
        model, regression_tasks(), lr=0.05, max_epochs=1, device="cpu", progress=False,
        callbacks=[snap],
    ).fit(_batches())  # fmt: skip
    assert not torch.equal(snap.params[1], snap.params[0])
