"""Learning-rate schedules and gradient clipping in the Trainer: the rates against their closed
forms, clipping against a hand-made step, exact resume, and the settings' errors."""

import copy
import math

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
from torch.optim import lr_scheduler

from multitask.nn import task_losses
from multitask.training import Trainer, load_checkpoint
from multitask.training._schedule import schedule_factor
from multitask.training._selection import ModelSelector

GROUPS = ("shared", "task:a", "task:b")


def _trainer(model=None, **kw) -> Trainer:
    settings = {"lr": 0.1, "max_epochs": 2, "device": "cpu", "progress": False, **kw}
    return Trainer(model or TwoHeads(), regression_tasks(), **settings)


def _rates(trainer) -> list[tuple[float, ...]]:
    return [r.lr for r in trainer.history_.steps]


def _oracle(kind: str, warmup: int, total: int, k: int) -> float:
    """The factor at optimizer step k (0-based), written out from the docstring's formula."""
    if k < warmup:
        return (k + 1) / warmup
    p = min((k - warmup) / max(total - warmup, 1), 1.0)
    return {"constant": 1.0, "linear": 1.0 - p, "cosine": (1.0 + math.cos(math.pi * p)) / 2}[kind]


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
@pytest.mark.parametrize(
    ("warmup", "accumulation", "max_steps"),
    [(0, 1, None), (3, 1, None), (2, 3, None), (4, 1, 11)],
)
def test_named_schedules_follow_their_formula_for_every_group(
    kind, warmup, accumulation, max_steps
):
    # 8 batches an epoch, 2 epochs: 16 steps, 6 with accumulation 3 (windows 3, 3, 2), or 11
    trainer = _trainer(
        scheduler=kind,
        warmup_steps=warmup,
        grad_accumulation=accumulation,
        max_steps=max_steps,
        task_lr={"a": 0.05},
    )
    trainer.fit(loader(regression_data(), batch_size=8))
    total = max_steps or math.ceil(8 / accumulation) * 2
    assert trainer.step_ == total
    base = (0.1, 0.05, 0.1)  # shared, task a (its own rate), task b
    expected = [tuple(b * _oracle(kind, warmup, total, k) for b in base) for k in range(total)]
    torch.testing.assert_close(_rates(trainer), expected, rtol=1e-12, atol=0)
    assert [g["name"] for g in trainer.optimizer_.param_groups] == list(GROUPS)
    if kind != "constant":
        assert _rates(trainer)[-1][0] > 0  # the last step still learns


def test_warmup_without_a_schedule_is_constant_after_it():
    trainer = _trainer(warmup_steps=4, max_epochs=1)
    trainer.fit(loader(regression_data(), batch_size=8))
    assert [r[0] for r in _rates(trainer)] == pytest.approx([0.025, 0.05, 0.075] + [0.1] * 5)


def test_schedule_factor_is_cosine_annealing_without_restarts():
    # oracle: torch's CosineAnnealingLR (eta_min 0) on the same number of post-warmup steps
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    ref = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    factor = schedule_factor("cosine", 0, 10)
    for k in range(10):
        assert factor(k) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        opt.step()
        ref.step()


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_a_callable_scheduler_steps_per_interval(interval):
    trainer = _trainer(
        scheduler=lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        scheduler_interval=interval,
    )
    trainer.fit(loader(regression_data(), batch_size=8))
    shared = [r[0] for r in _rates(trainer)]
    if interval == "step":
        assert shared == pytest.approx([0.1 * 0.5**k for k in range(16)])
    else:  # 8 steps an epoch
        assert shared == pytest.approx([0.1] * 8 + [0.05] * 8)
    assert isinstance(trainer.scheduler_, lr_scheduler.StepLR)


def test_reduce_on_plateau_steps_with_the_selection_score():
    # oracle: a fresh ReduceLROnPlateau stepped with the scores the selector gives the
    # recorded validation metrics
    def plateau(opt):
        return lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)

    torch.manual_seed(0)
    trainer = _trainer(scheduler=plateau, max_epochs=6, lr=0.3, monitor=("a", "mse"))
    trainer.fit(loader(regression_data(), batch_size=8), loader(regression_data(seed=1)))
    evaluations = trainer.history_.evaluations
    assert len(evaluations) == 6
    selector = ModelSelector(("a", "mse"))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    ref = plateau(opt)
    for record in evaluations:
        ref.step(selector.score(record.metrics))
        assert record.lr[0] == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    # steps of each epoch run at the rate of the evaluations before it
    for epoch in range(1, 6):
        rates = {r.lr for r in trainer.history_.steps if r.epoch == epoch}
        assert rates == {evaluations[epoch - 1].lr}
    assert min(r.lr[0] for r in evaluations) < 0.3  # the test sees a plateau at least once


def _one_sgd_step(clip, log_csv=None):
    """Parameters after one SGD step (lr 1) on the first batch, through the Trainer; and the
    trainer."""
    torch.manual_seed(0)
    model = TwoHeads()
    start = copy.deepcopy(model)
    trainer = _trainer(
        model, optimizer="sgd", lr=1.0, max_steps=1, clip_grad_norm=clip, log_csv=log_csv
    )
    trainer.fit(loader(regression_data(), batch_size=8))
    return start, model, trainer


@pytest.mark.parametrize("clip", [0.05, 1e6, math.inf])
def test_clipping_scales_the_joint_gradient_norm(clip, tmp_path):
    start, trained, trainer = _one_sgd_step(clip, log_csv=tmp_path / "train.csv")
    # oracle: the gradient of the plain sum of losses on the first batch, clipped by hand
    x, targets = next(iter(loader(regression_data(), batch_size=8)))
    losses = task_losses(regression_tasks(), start(x), targets)
    grads = torch.autograd.grad(sum(losses.values()), list(start.parameters()))
    norm = torch.cat([g.reshape(-1) for g in grads]).norm()
    assert (norm > clip) == (clip < 1)  # the small bound clips, the large one does not
    scale = min(1.0, clip / (float(norm) + 1e-6))
    pairs = zip(start.parameters(), grads, strict=True)
    expected = torch.cat([(p - scale * g).reshape(-1) for p, g in pairs])
    torch.testing.assert_close(flat_params(trained), expected.detach(), rtol=1e-6, atol=1e-7)
    moved = flat_params(trained) - flat_params(start)
    assert moved.norm() == pytest.approx(min(float(norm), clip), rel=1e-5)
    # the norm before clipping is recorded, and logged
    (record,) = trainer.history_.steps
    assert record.grad_norm == pytest.approx(float(norm), rel=1e-6)
    row = (tmp_path / "train.csv").read_text().splitlines()
    assert float(dict(zip(row[0].split(","), row[1].split(","), strict=True))["grad_norm"]) == (
        pytest.approx(float(norm), rel=1e-6)
    )


def test_without_clipping_no_norm_is_recorded(tmp_path):
    *_, trainer = _one_sgd_step(None, log_csv=tmp_path / "train.csv")
    assert trainer.history_.steps[0].grad_norm is None
    assert "grad_norm" not in (tmp_path / "train.csv").read_text()


def _settings(kind):
    if kind == "cosine":
        return {"scheduler": "cosine", "warmup_steps": 3}
    if kind == "epoch":
        return {
            "scheduler": lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
            "scheduler_interval": "epoch",
        }
    return {
        "scheduler": lambda opt: lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0),
        "monitor": ("a", "mse"),
    }


@pytest.mark.filterwarnings("error")  # resumed at an epoch's end: no spurious torch warning
@pytest.mark.parametrize("kind", ["cosine", "epoch", "plateau"])
@pytest.mark.parametrize("crash", [5, 8, 9, 11])  # mid-epoch 0, either side of its end, mid-epoch 1
def test_schedules_and_clipping_resume_exactly(tmp_path, kind, crash):
    def fit(checkpoint_dir=None, callbacks=(), resume=False):
        torch.manual_seed(0)
        model = TwoHeads(dropout=0.3)
        trainer = _trainer(
            model,
            max_epochs=3,
            lr=0.05,
            seed=3,
            clip_grad_norm=0.5,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=1 if checkpoint_dir else None,
            callbacks=list(callbacks),
            **_settings(kind),
        )
        data = loader(regression_data(), batch_size=8, shuffle=True)
        trainer.fit(data, loader(regression_data(n=16, seed=1)), resume=resume)
        return flat_params(model), trainer

    reference, ref_trainer = fit()
    with pytest.raises(Crashed):
        fit(tmp_path, [CrashAt(crash)])
    assert load_checkpoint(tmp_path / "last.pt")["scheduler"] is not None
    resumed, trainer = fit(tmp_path, resume=True)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=1e-6)
    # CrashAt raises in the callbacks of step `crash`, before its checkpoint: resumed from the
    # one of step crash - 1
    assert trainer.history_.steps[0].step == crash
    assert _rates(trainer) == _rates(ref_trainer)[crash - 1 :]
    assert trainer.scheduler_.state_dict() == ref_trainer.scheduler_.state_dict()
    if kind != "cosine":  # the rates changed during the run (cosine's always do)
        assert len({r[0] for r in _rates(ref_trainer)}) > 1


def test_resuming_with_other_schedule_settings_is_refused(tmp_path):
    data = loader(regression_data(), batch_size=8)
    _trainer(max_epochs=1, checkpoint_dir=tmp_path).fit(data)
    with pytest.raises(ValueError, match="no scheduler and this trainer has one"):
        _trainer(scheduler="cosine", checkpoint_dir=tmp_path).fit(data, resume=True)
    _trainer(max_epochs=1, scheduler="linear", checkpoint_dir=tmp_path).fit(data)
    with pytest.raises(ValueError, match="a scheduler and this trainer has none"):
        _trainer(checkpoint_dir=tmp_path).fit(data, resume=True)


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        ({"scheduler": "step"}, ValueError, "use one of"),
        ({"scheduler": 3}, TypeError, "scheduler must be None"),
        ({"scheduler_interval": "batch"}, ValueError, "scheduler_interval="),
        ({"scheduler_interval": "epoch"}, ValueError, "applies to a callable"),
        ({"warmup_steps": -1}, ValueError, "warmup_steps must be"),
        ({"warmup_steps": 2.5}, TypeError, "warmup_steps must be an integer"),
        (
            {"warmup_steps": 2, "scheduler": lambda o: lr_scheduler.StepLR(o, 1)},
            ValueError,
            "SequentialLR",
        ),
        ({"clip_grad_norm": 0.0}, ValueError, "must be positive"),
        ({"clip_grad_norm": -math.inf}, ValueError, "must be positive"),
        ({"clip_grad_norm": math.nan}, ValueError, "must be positive"),
        ({"clip_grad_norm": "1"}, TypeError, "must be a number"),
    ],
)
def test_bad_settings_are_refused_at_construction(settings, error, match):
    with pytest.raises(error, match=match):
        _trainer(**settings)


class _Factor:
    """A LambdaLR multiplier whose attributes (saved in the scheduler's state) are not plain."""

    def __init__(self):
        self.table = {0: torch.nn.Identity()}

    def __call__(self, k):
        return 1.0


def test_a_scheduler_state_a_checkpoint_cannot_load_is_refused_before_training(tmp_path):
    model = TwoHeads()
    before = flat_params(model)
    trainer = _trainer(
        model, scheduler=lambda opt: lr_scheduler.LambdaLR(opt, _Factor()), checkpoint_dir=tmp_path
    )
    with pytest.raises(ValueError, match="weights_only=True"):
        trainer.fit(loader(regression_data()))
    assert torch.equal(flat_params(model), before) and not list(tmp_path.iterdir())
    # without checkpoints nothing is loaded: the same scheduler trains
    _trainer(scheduler=lambda opt: lr_scheduler.LambdaLR(opt, _Factor())).fit(
        loader(regression_data())
    )


def _other_optimizer(opt):
    other = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    return lr_scheduler.StepLR(other, 1)


@pytest.mark.parametrize(
    ("scheduler", "val", "error", "match"),
    [
        (lambda opt: "cosine", False, TypeError, "must return a torch.optim.lr_scheduler"),
        (_other_optimizer, False, ValueError, "another optimizer"),
        (lambda opt: lr_scheduler.ReduceLROnPlateau(opt, mode="max"), False, ValueError, "val"),
        (lambda opt: lr_scheduler.ReduceLROnPlateau(opt), True, ValueError, "mode='max'"),
    ],
)
def test_a_scheduler_that_cannot_run_is_refused_before_the_first_step(scheduler, val, error, match):
    model = TwoHeads()
    before = flat_params(model)
    trainer = _trainer(model, scheduler=scheduler)
    with pytest.raises(error, match=match):
        trainer.fit(loader(regression_data()), loader(regression_data(seed=1)) if val else None)
    assert torch.equal(flat_params(model), before)
