"""A task sampler that trains only some tasks at a step, with each balancer: MGDA, CAGrad and
GradVac run on the drawn tasks' rows (``drops_absent_rows``), and the ones not defined then
(``handles_absent_tasks`` False) are refused before anything is updated."""

import math
import warnings

import pytest
import torch
from _training_helpers import TwoHeads, flat_params, loader, regression_data, regression_tasks

from multitask.nn.aggregation import AGGREGATORS, IMTLG, MGDA
from multitask.nn.weighting import DWA, FAMO, WEIGHTINGS, UncertaintyWeighting
from multitask.training import Callback, PeriodicSampler, RoundRobinSampler, Trainer
from multitask.training._guards import handles_absent_tasks
from multitask.training.samplers import TaskSampler


def _balancer(name):
    if name in AGGREGATORS:
        return AGGREGATORS[name]()
    return WEIGHTINGS[name](torch.ones(2)) if name == "static" else WEIGHTINGS[name](2)


def _trainer(model, balancer, sampler, **kw):
    return Trainer(
        model,
        regression_tasks(),
        balancer,
        optimizer="sgd",
        lr=0.05,
        sampler=sampler,
        device="cpu",
        progress=False,
        **{"max_steps": 6, **kw},
    )


def _loaders(tasks=("a", "b")):
    data = regression_data(n=32)
    return {t: loader(data, 8) for t in tasks}


@pytest.mark.parametrize("name", [*WEIGHTINGS, *AGGREGATORS])
def test_round_robin_with_every_balancer(name):
    torch.manual_seed(0)
    model, balancer = TwoHeads(), _balancer(name)
    before = flat_params(model).clone()
    trainer = _trainer(model, balancer, RoundRobinSampler(["a", "b"]))
    if handles_absent_tasks(balancer):
        trainer.fit(_loaders())
        assert trainer.step_ == 6
        after = flat_params(model)
        assert torch.isfinite(after).all() and (after - before).abs().max() > 1e-4
        trunk = torch.cat([p.flatten() for p in model.trunk.parameters()])
        assert trunk.abs().sum() > 0
        if name in ("equal", "sum", "mgda"):  # oracle: the plain sum of the drawn task's loss
            # (MGDA on the one drawn task's row: that row)
            torch.manual_seed(0)
            plain = TwoHeads()
            _trainer(plain, None, RoundRobinSampler(["a", "b"])).fit(_loaders())
            torch.testing.assert_close(after, flat_params(plain), rtol=0, atol=1e-6)
        return
    with pytest.raises(ValueError, match=rf"{type(balancer).__name__} is not defined") as err:
        trainer.fit(_loaders())
    message = str(err.value)
    assert "not drawn" in message and balancer.absent_tasks_reason in message
    assert "nothing was updated" in message
    torch.testing.assert_close(flat_params(model), before, rtol=0, atol=0)


def test_a_sampler_that_draws_every_task_takes_any_balancer():
    # oracle: with period 1 and the same batches in each task's loader, the steps of MGDA
    # on one loader of both tasks
    torch.manual_seed(0)
    model = TwoHeads()
    trainer = _trainer(model, MGDA(), PeriodicSampler({"a": 1, "b": 1}))
    trainer.fit(_loaders())
    assert trainer.step_ == 6
    assert all(math.isfinite(v) for rec in trainer.history_.steps for v in rec.losses.values())
    torch.manual_seed(0)
    joint = TwoHeads()
    _trainer(joint, MGDA(), "round_robin").fit(loader(regression_data(n=32), 8))
    torch.testing.assert_close(flat_params(model), flat_params(joint), rtol=0, atol=1e-6)


def test_periodic_draws_are_refused_before_the_first_step():
    # step 0 draws both tasks: the refusal comes from the sampler's schedule, not a step
    model, balancer = TwoHeads(), FAMO(2)
    before = flat_params(model).clone(), {k: v.clone() for k, v in balancer.state_dict().items()}
    trainer = _trainer(model, balancer, PeriodicSampler({"a": 1, "b": 2}))
    with pytest.raises(ValueError, match=r"FAMO .*the tasks \['b'\] are not drawn"):
        trainer.fit(_loaders())
    torch.testing.assert_close(flat_params(model), before[0], rtol=0, atol=0)
    torch.testing.assert_close(balancer.state_dict(), before[1], rtol=0, atol=0, equal_nan=True)


def test_tasks_without_a_loader_are_absent_at_every_step():
    trainer = _trainer(TwoHeads(), DWA(2), "round_robin")
    with pytest.warns(UserWarning, match="no training DataLoader"):
        with pytest.raises(ValueError, match=r"DWA .*\['b'\] are not drawn"):
            trainer.fit(_loaders(("a",)))


class _FullThenOne(TaskSampler):
    """Every task at step 0, then only the first: a sampler that cannot say in advance."""

    def draw(self, step):
        return self.tasks if step == 0 else self.tasks[:1]


def test_a_sampler_that_cannot_say_is_checked_at_each_step():
    torch.manual_seed(0)
    model = TwoHeads()
    after_one = []

    class Keep(Callback):
        def on_step(self, record):
            after_one.append(flat_params(model).clone())

    trainer = _trainer(model, DWA(2), _FullThenOne(["a", "b"]), callbacks=[Keep()])
    with pytest.raises(ValueError, match=r"DWA .*at step 2 .*\['b'\] are not drawn"):
        trainer.fit(_loaders())
    assert trainer.step_ == 1 and len(after_one) == 1  # step 1 (both tasks) ran, step 2 not
    torch.testing.assert_close(flat_params(model), after_one[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("balancer", "warns"),
    [(UncertaintyWeighting(2), True), (MGDA(), False), (IMTLG(), False), (None, False)],
)
def test_a_batch_without_labels_for_a_task_warns_once(balancer, warns):
    # one loader for both tasks, b labelled in the first batch only: its loss is 0 in the
    # three others, as for a task a sampler did not draw
    data = regression_data(n=32)
    data.ys["b"][8:] = float("nan")
    trainer = _trainer(TwoHeads(), balancer, "round_robin", max_steps=None, max_epochs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(loader(data, 8))
    ours = [w for w in caught if "no labelled entry" in str(w.message)]
    assert trainer.step_ == 8
    if not warns:
        assert not ours
        return
    assert len(ours) == 1  # once per fit, not once per step
    message = str(ours[0].message)
    assert "['b']" in message and "at step 2 " in message
    assert UncertaintyWeighting.absent_tasks_reason in message


def test_mgda_trains_the_labelled_tasks_of_a_batch():
    # b labelled in the last batch only: in the first three steps MGDA runs on a's row alone,
    # so they equal the plain sum's (b's loss is 0); told nothing, MGDA on [g_a, 0] gives 0
    data = regression_data(n=32)
    data.ys["b"][:24] = float("nan")
    runs = {}
    for name, balancer in [("mgda", MGDA()), ("sum", None)]:
        torch.manual_seed(0)
        model = TwoHeads()
        before = flat_params(model).clone()
        _trainer(model, balancer, "round_robin", max_steps=3).fit(loader(data, 8))
        runs[name] = flat_params(model)
    trunk = sum(p.numel() for p in model.trunk.parameters())  # TwoHeads: trunk first
    assert (runs["mgda"][:trunk] - before[:trunk]).abs().max() > 1e-4
    torch.testing.assert_close(runs["mgda"], runs["sum"], rtol=0, atol=1e-6)
