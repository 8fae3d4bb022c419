"""Validation every ``val_every`` optimizer steps: when it runs, what it scores, early stopping
and the restored state, exact resume, and the settings' errors."""

import copy

import pytest
import torch
from _training_helpers import (
    CrashAt,
    Crashed,
    TwoHeads,
    flat_params,
    loader,
    regression_data,
    regression_tasks,
)

from multitask.training import Callback, Trainer
from multitask.training._inference import evaluate


class Snapshots(Callback):
    """The parameters and the validation metrics after every optimizer step, taken by the test
    itself (the oracle of what each evaluation must have seen)."""

    def __init__(self, model, val):
        self.model, self.val = model, val
        self.params, self.metrics = {}, {}

    def on_step(self, record):
        self.params[record.step] = flat_params(self.model).clone()
        mode = self.model.training
        table = {t.name: t for t in tasks()}
        self.metrics[record.step] = evaluate(self.model, table, self.val, torch.device("cpu"))
        self.model.train(mode)


def tasks():
    return regression_tasks()


def _fit(val_every=3, callbacks=(), model=None, val=None, **kw):
    torch.manual_seed(0)
    model = model or TwoHeads()
    val = val or loader(regression_data(n=16, seed=1))
    settings = {"lr": 0.05, "max_epochs": 2, "device": "cpu", "progress": False, **kw}
    trainer = Trainer(model, tasks(), val_every=val_every, callbacks=list(callbacks), **settings)
    trainer.fit(loader(regression_data(), batch_size=8), val)  # 8 steps an epoch
    return trainer


def test_evaluations_every_k_steps_and_after_the_last_one():
    torch.manual_seed(0)
    model = TwoHeads()
    val = loader(regression_data(n=16, seed=1))
    snaps = Snapshots(model, val)
    trainer = _fit(3, [snaps], model=model, val=val)
    evaluations = trainer.history_.evaluations
    # 16 steps: every third, and the last (16) which is not one of them
    assert [r.step for r in evaluations] == [3, 6, 9, 12, 15, 16]
    assert [r.epoch for r in evaluations] == [0, 0, 1, 1, 1, 1]
    for record in evaluations:  # each scored the model as it was after its step
        for task, metrics in snaps.metrics[record.step].items():
            assert record.metrics[task] == pytest.approx(metrics, rel=1e-12)
    # model selection over those states: the best one (by delta_m against the first
    # evaluation, computed here by hand) is restored
    first = evaluations[0].metrics

    def delta(metrics):  # lower-is-better errors: minus the mean relative change
        pairs = [(t, k) for t in metrics for k in metrics[t]]
        return -sum(metrics[t][k] / first[t][k] - 1 for t, k in pairs) / len(pairs)

    best = max(evaluations, key=lambda r: delta(r.metrics))
    assert trainer.best_step_ == best.step
    torch.testing.assert_close(flat_params(model), snaps.params[best.step])


def test_a_last_step_on_the_grid_is_evaluated_once():
    trainer = _fit(4)
    assert [r.step for r in trainer.history_.evaluations] == [4, 8, 12, 16]


def test_early_stopping_counts_evaluations_and_restores_the_best_state():
    # a learning rate high enough to diverge: the score stops improving early
    torch.manual_seed(0)
    model = TwoHeads()
    val = loader(regression_data(n=16, seed=1))
    snaps = Snapshots(model, val)
    trainer = _fit(
        2, [snaps], model=model, val=val, lr=0.5, early_stopping=2, max_epochs=20,
        monitor=("a", "mse"),
    )  # fmt: skip
    steps = [r.step for r in trainer.history_.evaluations]
    assert steps == list(range(2, trainer.step_ + 1, 2)) and trainer.step_ < 160
    scores = [r.metrics["a"]["mse"] for r in trainer.history_.evaluations]
    best = scores.index(min(scores))
    assert len(scores) - 1 - best == 2  # stopped after two evaluations without improvement
    assert trainer.best_step_ == steps[best]
    torch.testing.assert_close(flat_params(model), snaps.params[trainer.best_step_])


@pytest.mark.parametrize("crash", [5, 6, 7, 13, 16])  # between, at, after an evaluation; last
def test_validation_every_k_steps_resumes_exactly(tmp_path, crash):
    def fit(checkpoint_dir=None, callbacks=(), resume=False):
        torch.manual_seed(0)
        model = TwoHeads(dropout=0.3)
        trainer = Trainer(
            model,
            tasks(),
            lr=0.05,
            max_epochs=2,
            seed=3,
            val_every=3,
            early_stopping=10,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=1 if checkpoint_dir else None,
            callbacks=list(callbacks),
            device="cpu",
            progress=False,
        )
        data = loader(regression_data(), batch_size=8, shuffle=True)
        trainer.fit(data, loader(regression_data(n=16, seed=1)), resume=resume)
        return flat_params(model), trainer

    reference, ref_trainer = fit()
    with pytest.raises(Crashed):
        fit(tmp_path, [CrashAt(crash)])
    resumed, trainer = fit(tmp_path, resume=True)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=1e-6)
    assert trainer.best_step_ == ref_trainer.best_step_
    # the resumed run evaluates at the same steps from the crash on (CrashAt raises in the
    # callbacks of its step: that step, and its evaluation, are done again)
    ref_steps = [r.step for r in ref_trainer.history_.evaluations]
    assert [r.step for r in trainer.history_.evaluations] == [s for s in ref_steps if s >= crash]
    again, _ = fit(tmp_path, resume=True)  # a finished run resumed: nothing evaluated again
    torch.testing.assert_close(again, reference, rtol=0, atol=1e-6)


def test_a_finished_run_resumed_does_not_evaluate_again(tmp_path):
    first = _fit(3, checkpoint_dir=tmp_path)
    assert first.history_.evaluations[-1].step == 16
    again = copy.copy(first)
    again.fit(loader(regression_data(), batch_size=8), loader(regression_data(n=16, seed=1)),
              resume=True)  # fmt: skip
    assert again.step_ == 16 and again.history_.evaluations == []
    assert again.best_step_ == first.best_step_


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_val_every_is_refused(value):
    with pytest.raises((ValueError, TypeError), match="val_every"):
        Trainer(TwoHeads(), tasks(), val_every=value)


def test_val_every_without_val_warns_and_trains():
    trainer = Trainer(TwoHeads(), tasks(), val_every=2, max_epochs=1, progress=False)
    with pytest.warns(UserWarning, match="val_every is ignored without validation data"):
        trainer.fit(loader(regression_data(), batch_size=8))
    assert trainer.step_ == 8 and trainer.history_.evaluations == []
