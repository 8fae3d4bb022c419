"""The training loop: accumulation, per-task rates, samplers, selection, callbacks."""

import dataclasses
import math

import pytest
import torch
from _training_helpers import (
    TwoHeads,
    flat_params,
    loader,
    regression_data,
    regression_tasks,
)
from torch import nn

from multitask.nn.weighting import LossWeighting
from multitask.training import Callback, PeriodicSampler, RoundRobinSampler, Trainer


def _sgd(groups):
    return torch.optim.SGD(groups, lr=0.05)


def _fit(batch_size, accumulation, steps, seed=0, epochs=100):
    torch.manual_seed(seed)
    model = TwoHeads()
    trainer = Trainer(
        model,
        regression_tasks(),
        optimizer=_sgd,
        grad_accumulation=accumulation,
        max_steps=steps,
        max_epochs=epochs,
        device="cpu",
        progress=False,
    )
    trainer.fit(loader(regression_data(n=64), batch_size=batch_size))
    return model, trainer


def test_grad_accumulation_equals_larger_batch():
    # oracle: the same SGD steps on batches 4x larger (equal weighting: mean losses)
    small, t_small = _fit(batch_size=8, accumulation=4, steps=5)
    big, t_big = _fit(batch_size=32, accumulation=1, steps=5)
    assert t_small.step_ == t_big.step_ == 5
    torch.testing.assert_close(flat_params(small), flat_params(big), rtol=0, atol=1e-6)
    # and it is not trivially equal to no accumulation
    plain, _ = _fit(batch_size=8, accumulation=1, steps=5)
    assert (flat_params(plain) - flat_params(big)).abs().max() > 1e-3


def test_partial_accumulation_window_at_epoch_end():
    # 64 samples / batch 8 = 8 micro-batches; k=3 -> windows of 3, 3, 2 batches.
    # oracle: plain steps on batches of 24, 24 and 16 samples (a list of batches)
    small, t = _fit(batch_size=8, accumulation=3, steps=None, epochs=2)
    assert t.step_ == 3 * 2
    data = regression_data(n=64)
    bounds = [(0, 24), (24, 48), (48, 64)]
    batches = [(data.x[i:j], {k: y[i:j] for k, y in data.ys.items()}) for i, j in bounds]
    torch.manual_seed(0)
    big = TwoHeads()
    Trainer(big, regression_tasks(), optimizer=_sgd, max_epochs=2, device="cpu").fit(batches)
    torch.testing.assert_close(flat_params(small), flat_params(big), rtol=0, atol=1e-6)


def test_tensorboard_logger_is_optional(tmp_path):
    # tensorboard is not a dependency: without it, a warning and a no-op
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.warns(UserWarning, match="tensorboard is not installed"):
            Trainer(
                TwoHeads(), regression_tasks(), max_steps=2, device="cpu", tensorboard_dir=tmp_path
            ).fit(loader(regression_data()))
    else:
        Trainer(
            TwoHeads(), regression_tasks(), max_steps=2, device="cpu", tensorboard_dir=tmp_path
        ).fit(loader(regression_data()))
        assert any(tmp_path.iterdir())


def test_task_lr_and_task_lr_attribute():
    torch.manual_seed(0)
    model = TwoHeads()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tasks = regression_tasks()
    tasks[1].lr = 0.0  # Task.lr: head b frozen
    trainer = Trainer(
        model, tasks, optimizer="sgd", lr=0.1, task_lr={"a": 0.0}, max_epochs=1, device="cpu"
    )
    trainer.fit(loader(regression_data()))
    after = model.state_dict()
    for k in before:
        moved = not torch.equal(before[k], after[k])
        assert moved == k.startswith("trunk"), k
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer_.param_groups}
    assert lrs == {"shared": 0.1, "task:a": 0.0, "task:b": 0.0}


class _LearnedScale(LossWeighting):
    """exp(-s_t) L_t + s_t with learnable s (a test stand-in for a learnable weighting)."""

    def __init__(self, n):
        super().__init__()
        self.s = nn.Parameter(torch.zeros(n))

    def forward(self, losses):
        return (torch.exp(-self.s) * losses + self.s).sum()

    def weights(self):
        return torch.exp(-self.s)


def test_balancer_parameters_get_their_own_group_and_weights_are_logged():
    torch.manual_seed(0)
    balancer = _LearnedScale(2)
    trainer = Trainer(TwoHeads(), regression_tasks(), balancer, lr=0.05, max_epochs=2, device="cpu")
    trainer.fit(loader(regression_data()))
    groups = {g["name"]: g for g in trainer.optimizer_.param_groups}
    assert groups["balancer"]["params"] == [balancer.s]
    assert not torch.equal(balancer.s.detach(), torch.zeros(2))
    w = trainer.history_.weights()
    assert set(w) == {"a", "b"} and len(w["a"]) == trainer.step_
    # the record holds the weights used at the step: exp(-0) at the first step
    assert w["a"][0] == pytest.approx(1.0) and w["a"][-1] != pytest.approx(1.0)


def test_training_reduces_loss_and_evaluate_skips_auxiliary():
    torch.manual_seed(0)
    tasks = regression_tasks()
    tasks[1].auxiliary = True
    trainer = Trainer(TwoHeads(), tasks, lr=0.02, max_epochs=30, device="cpu")
    data = loader(regression_data())
    before = Trainer(TwoHeads(), tasks, device="cpu").evaluate(data)
    trainer.fit(data)
    after = trainer.evaluate(data)
    assert set(after) == {"a"}
    assert after["a"]["mse"] < 0.3 * before["a"]["mse"]
    curve = trainer.history_.losses()["a"]
    assert curve[-1] < 0.3 * curve[0]
    pred = trainer.predict(data)
    assert set(pred) == {"a", "b"} and pred["a"].shape == (64,)


def test_sampled_training_updates_only_drawn_task_heads():
    torch.manual_seed(0)
    model = TwoHeads()
    data = regression_data(n=32)
    loaders = {"a": loader(data, 8), "b": loader(data, 8)}
    heads_b = [p.clone() for p in model.heads["b"].parameters()]
    trainer = Trainer(
        model,
        regression_tasks(),
        optimizer="sgd",
        lr=0.1,
        max_steps=1,
        sampler=RoundRobinSampler(["a", "b"]),
        device="cpu",
    )
    trainer.fit(loaders)
    rec = trainer.history_.steps[0]
    assert math.isfinite(rec.losses["a"]) and math.isnan(rec.losses["b"])
    for p, q in zip(model.heads["b"].parameters(), heads_b, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # an epoch is sum of the loaders' batches (4 + 4), one task per step
    trainer = Trainer(TwoHeads(), regression_tasks(), max_epochs=2, sampler="proportional")
    trainer.fit(loaders)
    assert trainer.step_ == 16


def test_model_selection_restores_best_state():
    torch.manual_seed(0)
    model = TwoHeads()
    # a large learning rate makes validation mse go up and down
    trainer = Trainer(
        model,
        regression_tasks(),
        optimizer="sgd",
        lr=0.3,
        max_epochs=12,
        monitor=("a", "mse"),
        device="cpu",
    )
    train, val = loader(regression_data(seed=0)), loader(regression_data(n=32, seed=1))
    trainer.fit(train, val)
    scores = [r.metrics["a"]["mse"] for r in trainer.history_.evaluations]
    assert len(scores) == 12
    best = min(range(12), key=scores.__getitem__)
    assert trainer.evaluate(val)["a"]["mse"] == pytest.approx(scores[best], rel=1e-6)
    assert trainer.best_step_ == trainer.history_.evaluations[best].step


def test_early_stopping_stops_after_patience():
    torch.manual_seed(0)
    train, val = loader(regression_data(seed=0)), loader(regression_data(n=32, seed=1))
    # lr = 0: nothing improves after the first evaluation, so patience 2 stops at epoch 3
    trainer = Trainer(
        TwoHeads(),
        regression_tasks(),
        optimizer="sgd",
        lr=0.0,
        max_epochs=50,
        early_stopping=2,
        device="cpu",
    )
    trainer.fit(train, val)
    assert len(trainer.history_.evaluations) == 3 and trainer.epoch_ == 3


def test_step_record_is_read_only_and_csv_logged(tmp_path):
    seen = []

    class Grab(Callback):
        def on_step(self, record):
            seen.append(record)

    trainer = Trainer(
        TwoHeads(),
        regression_tasks(),
        max_epochs=1,
        callbacks=[Grab()],
        log_csv=tmp_path / "log.csv",
        device="cpu",
    )
    trainer.fit(loader(regression_data()), loader(regression_data(n=16, seed=3)))
    rec = seen[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.step = 5
    with pytest.raises(TypeError):
        rec.losses["a"] = 0.0
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,loss/a,loss/b") and len(rows) == 1 + 8
    val_rows = (tmp_path / "log_val.csv").read_text().splitlines()
    assert "val/a/mse" in val_rows[0] and len(val_rows) == 2


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from multitask.training import ProgressBar

    # the bar goes to stderr: a terminal stdout with stderr sent to a log file used to
    # write the bar into the log
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert ProgressBar.if_visible(10) is None
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    bar = ProgressBar.if_visible(10)
    assert bar is not None and bar._bar.fp is not None
    bar.close()


def test_resuming_an_early_stopped_run_trains_no_further(tmp_path):
    train, val = loader(regression_data(seed=0)), loader(regression_data(n=32, seed=1))

    def fit():
        t = Trainer(
            TwoHeads(),
            regression_tasks(),
            optimizer="sgd",
            lr=0.0,
            max_epochs=50,
            early_stopping=2,
            checkpoint_dir=tmp_path,
            device="cpu",
        )
        return t.fit(train, val, resume=True)

    assert fit().step_ == 24  # 3 epochs of 8 batches, then stopped
    again = fit()
    assert again.step_ == 24 and again.history_.steps == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_cpu_loosely_and_resumes(tmp_path):
    def fit(device, steps, ckpt=None, resume=False):
        torch.manual_seed(0)
        model = TwoHeads()
        t = Trainer(
            model,
            regression_tasks(),
            lr=0.01,
            max_steps=steps,
            max_epochs=10,
            device=device,
            checkpoint_dir=ckpt,
            checkpoint_every=1 if ckpt else None,
        )
        t.fit(loader(regression_data(), shuffle=True), resume=resume)
        return flat_params(model).cpu()

    cpu, cuda = fit("cpu", 6), fit("cuda", 6)
    torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-5)
    fit("cuda", 3, tmp_path)
    torch.testing.assert_close(fit("cuda", 6, tmp_path, resume=True), cuda, rtol=0, atol=1e-6)


def test_periodic_sampler_with_every_task_each_step_equals_one_loader():
    # oracle: with period 1 for both tasks and the same batches in each task's
    # loader, per-task forwards give the gradients of one joint forward
    data = regression_data()

    def fit(train, **kw):
        torch.manual_seed(0)
        model = TwoHeads()
        Trainer(model, regression_tasks(), optimizer=_sgd, max_steps=8, device="cpu", **kw).fit(
            train
        )
        return flat_params(model)

    joint = fit(loader(data))
    sampled = fit({"a": loader(data), "b": loader(data)}, sampler=PeriodicSampler({"a": 1, "b": 1}))
    torch.testing.assert_close(sampled, joint, rtol=0, atol=1e-6)


class _Recorder(LossWeighting):
    """Equal weighting that keeps the losses it is given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, losses):
        self.seen.append(losses.detach().clone())
        return losses.sum()


def test_accumulation_gives_the_balancer_the_batch_losses_not_a_kth():
    # oracle: the task losses of each micro-batch, computed by hand with the initial model
    # (no update inside the first window). The balancer used to get losses / k, so a
    # state or a learned weight depending on the loss scale (uncertainty's s, DWA's and
    # GradNorm's ratios, FAMO's log losses) jumped where an epoch's last window is shorter
    torch.manual_seed(0)
    model = TwoHeads()
    data = regression_data(n=40)
    with torch.no_grad():
        out = [model(data.x[i : i + 8]) for i in range(0, 40, 8)]
        want = [
            torch.stack([((o[t] - data.ys[t][i * 8 : i * 8 + 8]) ** 2).mean() for t in "ab"])
            for i, o in enumerate(out)
        ]
    balancer = _Recorder()
    trainer = Trainer(
        model, regression_tasks(), balancer, optimizer=_sgd, grad_accumulation=3, max_epochs=1
    )
    trainer.fit(loader(data, batch_size=8))  # windows of 3 and 2 micro-batches
    assert trainer.step_ == 2 and len(balancer.seen) == 5
    for got, expected in zip(balancer.seen[:3], want[:3], strict=True):  # on CUDA if present
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-6, atol=1e-7)


def _fit_uncertainty(batch_size, accumulation, steps):
    from multitask.nn.weighting import UncertaintyWeighting

    torch.manual_seed(0)
    model, balancer = TwoHeads(), UncertaintyWeighting(2)
    Trainer(
        model,
        regression_tasks(),
        balancer,
        optimizer=_sgd,
        grad_accumulation=accumulation,
        max_steps=steps,
        max_epochs=100,
        device="cpu",
    ).fit(loader(regression_data(n=64), batch_size=batch_size))
    return torch.cat([flat_params(model), flat_params(balancer)])


def test_accumulation_with_a_learnable_weighting_equals_larger_batch():
    # oracle: Kendall et al.'s sum_t exp(-s_t) L_t + s_t is linear in the losses, so k
    # accumulated micro-batches must equal one batch k times larger, s included (the
    # losses / k used to leave the + s_t term counted k times: s drifted to log(L / k))
    small = _fit_uncertainty(batch_size=8, accumulation=4, steps=5)
    big = _fit_uncertainty(batch_size=32, accumulation=1, steps=5)
    torch.testing.assert_close(small, big, rtol=0, atol=1e-6)


def test_a_sampler_object_restarts_at_every_fresh_fit():
    # the sampler's step counter used to carry over from an earlier fit, so a second
    # fit (same seed, same data) drew other tasks; oracle: the first fit's draws
    from multitask.training import ProportionalSampler

    class Drawn(Callback):
        def __init__(self):
            self.tasks = []

        def on_step(self, record):
            self.tasks.append(tuple(t for t, v in record.losses.items() if v == v))

    sampler = ProportionalSampler({"a": 3, "b": 1}, seed=4)
    loaders = {"a": loader(regression_data(n=24), 8), "b": loader(regression_data(n=8), 8)}
    draws = []
    for _ in range(2):
        drawn = Drawn()
        trainer = Trainer(
            TwoHeads(), regression_tasks(), max_epochs=1, sampler=sampler, callbacks=[drawn]
        )
        trainer.fit(loaders)
        draws.append(drawn.tasks)
    assert draws[0] == draws[1] and len(draws[0]) == 4
    assert draws[0] == [sampler.draw(s) for s in range(4)]
    assert sampler.step == 0  # the caller's object is not advanced


def test_evaluate_scores_each_task_on_the_batches_that_carry_its_target():
    # b's target is in the first batch only; it used to fail ('batch sizes differ (16 vs 8)')
    data = regression_data(n=16)
    batches = [
        (data.x[:8], {"a": data.ys["a"][:8], "b": data.ys["b"][:8]}),
        (data.x[8:], {"a": data.ys["a"][8:]}),
    ]
    model = TwoHeads()
    got = Trainer(model, regression_tasks(), device="cpu").evaluate(batches)
    with torch.no_grad():
        out = model(data.x)
    # oracle: the MSE of each task on exactly its labelled rows
    assert got["a"]["mse"] == pytest.approx(((out["a"] - data.ys["a"]) ** 2).mean().item())
    assert got["b"]["mse"] == pytest.approx(((out["b"][:8] - data.ys["b"][:8]) ** 2).mean().item())


class _Snapshots(Callback):
    def __init__(self, module):
        self.module, self.states = module, []

    def on_step(self, record):
        self.states.append([p.detach().clone() for p in self.module.parameters()])


def _adam_two_batches(model, b_in_second):
    data = regression_data(n=16)
    if not b_in_second:
        data.ys["b"][8:] = float("nan")
    snaps = _Snapshots(model.heads["b"])
    trainer = Trainer(model, regression_tasks(), lr=0.1, max_epochs=1, callbacks=[snaps])
    trainer.fit(loader(data, batch_size=8))
    return snaps.states, trainer


def test_an_untrained_task_does_not_move_under_adam():
    # b has no label in batch 2: its head's gradient is zero, and Adam used to move it
    # anyway (a full-size step from its first moment); oracle: b's head after step 2 is
    # exactly its head after step 1, and Adam did not count a step for it
    torch.manual_seed(0)
    states, trainer = _adam_two_batches(TwoHeads(), b_in_second=False)
    for p, q in zip(states[0], states[1], strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    head_b = next(trainer.model.heads["b"].parameters())
    assert int(trainer.optimizer_.state[head_b]["step"]) == 1
    # and with b labelled in both batches it does move (the test can fail)
    torch.manual_seed(0)
    states, _ = _adam_two_batches(TwoHeads(), b_in_second=True)
    assert (states[0][0] - states[1][0]).abs().max() > 1e-3


def test_an_untrained_task_with_a_coupling_gradient_still_moves():
    # a penalty on b's head gives it a non-zero gradient: that gradient is kept
    class Coupled(TwoHeads):
        def regularization(self):
            return (self.heads["b"].weight ** 2).sum()

    torch.manual_seed(0)
    states, _ = _adam_two_batches(Coupled(), b_in_second=False)
    assert (states[0][0] - states[1][0]).abs().max() > 1e-3


def test_evaluate_before_fit_runs_where_the_model_is():
    # before fit the model is not on `device` yet: inputs used to be sent to `device`
    # (CUDA under "auto" on a GPU machine) while the model stayed on the CPU
    data = [(regression_data(n=8).x, regression_data(n=8).ys)]
    torch.manual_seed(0)
    model = TwoHeads()
    on_cpu = Trainer(model, regression_tasks(), device="cpu").evaluate(data)
    elsewhere = Trainer(model, regression_tasks(), device="meta").evaluate(data)
    assert elsewhere == on_cpu
    assert Trainer(model, regression_tasks(), device="meta").predict(data)["a"].shape == (8,)
