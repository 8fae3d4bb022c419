"""A task sampler that trains only some tasks at a step, with each balancer: MGDA, CAGrad and
GradVac run on the drawn tasks' rows, and the stateful loss weightings their step on the drawn
tasks (``drops_absent_rows``); a balancer not defined then (``handles_absent_tasks`` and
``drops_absent_rows`` False: none of ours, a user's own) is refused before anything is
updated."""

import math
import warnings

import pytest
import torch
from _training_helpers import TwoHeads, flat_params, loader, regression_data, regression_tasks

from multitask.nn.aggregation import AGGREGATORS, IMTLG, MGDA
from multitask.nn.weighting import WEIGHTINGS, LossWeighting, UncertaintyWeighting
from multitask.training import Callback, PeriodicSampler, RoundRobinSampler, Trainer
from multitask.training._guards import handles_absent_tasks
from multitask.training.samplers import TaskSampler


class _RunningMean(LossWeighting):
    """A user's stateful weighting that says nothing about absent tasks: refused under them."""

    absent_tasks_reason = "its running mean of each loss would be fed a zero"

    def __init__(self, n_tasks):
        super().__init__()
        self.n_tasks = n_tasks
        self.register_buffer("mean", torch.ones(n_tasks))

    def forward(self, losses):
        self.mean.mul_(0.9).add_(0.1 * losses.detach())
        return (losses / self.mean).sum()


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
    assert handles_absent_tasks(balancer)  # every balancer of ours trains under a sampler
    trainer.fit(_loaders())
    assert trainer.step_ == 6
    after = flat_params(model)
    assert torch.isfinite(after).all() and (after - before).abs().max() > 1e-4
    trunk = torch.cat([p.flatten() for p in model.trunk.parameters()])
    assert trunk.abs().sum() > 0
    # oracle: the plain sum of the drawn task's loss (MGDA on the one drawn task's row: that
    # row; DWA's weight of a task alone: 1; FAMO's scalarised loss of one task, c z log l with
    # c = l / z: its gradient is that of l; GradNorm's L_grad of one task: 0, weight 1)
    if name in ("equal", "sum", "mgda", "dwa", "famo", "gradnorm"):
        torch.manual_seed(0)
        plain = TwoHeads()
        _trainer(plain, None, RoundRobinSampler(["a", "b"])).fit(_loaders())
        torch.testing.assert_close(after, flat_params(plain), rtol=0, atol=1e-6)


def test_a_balancer_not_defined_on_absent_tasks_is_refused():
    torch.manual_seed(0)
    model, balancer = TwoHeads(), _RunningMean(2)
    before = flat_params(model).clone()
    trainer = _trainer(model, balancer, RoundRobinSampler(["a", "b"]))
    with pytest.raises(ValueError, match=r"_RunningMean is not defined") as err:
        trainer.fit(_loaders())
    message = str(err.value)
    assert "not drawn" in message and balancer.absent_tasks_reason in message
    assert "nothing was updated" in message and "uncertainty" in message  # (the ones that do)
    torch.testing.assert_close(flat_params(model), before, rtol=0, atol=0)


def test_uncertainty_under_round_robin_learns_the_drawn_tasks_variance_alone():
    # plain SGD: a step moves the log-variance of the drawn task by -lr * (its eq. 7 gradient,
    # 1/2 - 1/2 exp(-s) L) and leaves the other's as it is (before: refused)
    torch.manual_seed(0)
    model, weighting = TwoHeads(), UncertaintyWeighting(2)
    seen = []

    class Keep(Callback):
        def on_step(self, record):
            seen.append((dict(record.losses), weighting.log_vars.detach().clone()))

    _trainer(model, weighting, RoundRobinSampler(["a", "b"]), callbacks=[Keep()]).fit(_loaders())
    previous = torch.zeros(2)
    for step, (losses, log_vars) in enumerate(seen):
        drawn = step % 2  # round robin: a, b, a, ...
        expected = previous.clone()
        loss = losses[["a", "b"][drawn]]
        expected[drawn] -= 0.05 * (0.5 - 0.5 * math.exp(-float(previous[drawn])) * loss)
        torch.testing.assert_close(log_vars, expected, rtol=1e-6, atol=1e-7)
        previous = log_vars
    assert (seen[-1][1] != 0).all()


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
    model, balancer = TwoHeads(), _RunningMean(2)
    before = flat_params(model).clone(), {k: v.clone() for k, v in balancer.state_dict().items()}
    trainer = _trainer(model, balancer, PeriodicSampler({"a": 1, "b": 2}))
    with pytest.raises(ValueError, match=r"_RunningMean .*the tasks \['b'\] are not drawn"):
        trainer.fit(_loaders())
    torch.testing.assert_close(flat_params(model), before[0], rtol=0, atol=0)
    torch.testing.assert_close(balancer.state_dict(), before[1], rtol=0, atol=0, equal_nan=True)


def test_tasks_without_a_loader_are_absent_at_every_step():
    trainer = _trainer(TwoHeads(), _RunningMean(2), "round_robin")
    with pytest.warns(UserWarning, match="no training DataLoader"):
        with pytest.raises(ValueError, match=r"_RunningMean .*\['b'\] are not drawn"):
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

    trainer = _trainer(model, _RunningMean(2), _FullThenOne(["a", "b"]), callbacks=[Keep()])
    with pytest.raises(ValueError, match=r"_RunningMean .*at step 2 .*\['b'\] are not drawn"):
        trainer.fit(_loaders())
    assert trainer.step_ == 1 and len(after_one) == 1  # step 1 (both tasks) ran, step 2 not
    torch.testing.assert_close(flat_params(model), after_one[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("balancer", "warns"),
    [
        (_RunningMean(2), True),
        (UncertaintyWeighting(2), False),
        (MGDA(), False),
        (IMTLG(), False),
        (None, False),
    ],
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
    assert _RunningMean.absent_tasks_reason in message


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
