"""Task samplers against their defining probabilities and schedules."""

import re

import numpy as np
import pytest

from multitask.training import (
    PeriodicSampler,
    ProportionalSampler,
    RoundRobinSampler,
    TemperatureSampler,
)


def _freq(sampler, n):
    draws = [sampler.next()[0] for _ in range(n)]
    return {t: draws.count(t) / n for t in sampler.tasks}


def test_round_robin_cycles_in_order():
    s = RoundRobinSampler(["a", "b", "c"])
    assert [s.next() for _ in range(5)] == [("a",), ("b",), ("c",), ("a",), ("b",)]


def test_proportional_matches_sizes():
    sizes = {"a": 100, "b": 300, "c": 600}
    s = ProportionalSampler(sizes, seed=1)
    np.testing.assert_allclose(s.probabilities, [0.1, 0.3, 0.6])
    f = _freq(s, 6000)
    # binomial standard error at p=0.6, n=6000 is 0.0063: 4 sigma
    for t, n in sizes.items():
        assert f[t] == pytest.approx(n / 1000, abs=0.026)


def test_temperature_formula():
    sizes = {"a": 10, "b": 1000}
    # p ~ n^(1/T): with T=2, sqrt(10) : sqrt(1000) = 1 : 10
    s = TemperatureSampler(sizes, temperature=2.0)
    np.testing.assert_allclose(s.probabilities, [1 / 11, 10 / 11])
    proportional = [10 / 1010, 1000 / 1010]
    np.testing.assert_allclose(TemperatureSampler(sizes, 1.0).probabilities, proportional)
    np.testing.assert_allclose(TemperatureSampler(sizes, 1e9).probabilities, [0.5, 0.5], atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        TemperatureSampler(sizes, 0.0)


def test_periodic_schedule():
    s = PeriodicSampler({"a": 1, "b": 2, "c": 3})
    got = [s.next() for _ in range(6)]
    assert got == [("a", "b", "c"), ("a",), ("a", "b"), ("a", "c"), ("a", "b"), ("a",)]
    # no task due at odd steps: those steps are skipped
    s = PeriodicSampler({"x": 2, "y": 4})
    assert [s.next() for _ in range(3)] == [("x", "y"), ("x",), ("x", "y")]
    with pytest.raises(ValueError, match="periods"):
        PeriodicSampler({"x": 0})


@pytest.mark.parametrize(
    "make",
    [
        lambda: RoundRobinSampler(["a", "b", "c"]),
        lambda: ProportionalSampler({"a": 3, "b": 5}, seed=7),
        lambda: TemperatureSampler({"a": 3, "b": 50}, 3.0, seed=7),
        lambda: PeriodicSampler({"a": 2, "b": 3}),
    ],
)
def test_state_dict_resumes_exactly(make):
    s = make()
    [s.next() for _ in range(17)]
    state = s.state_dict()
    expected = [s.next() for _ in range(40)]
    fresh = make()
    fresh.load_state_dict(state)
    assert [fresh.next() for _ in range(40)] == expected


def test_seed_changes_draws_and_empty_task_rejected():
    a = [ProportionalSampler({"a": 1, "b": 1}, seed=0).draw(i) for i in range(50)]
    b = [ProportionalSampler({"a": 1, "b": 1}, seed=1).draw(i) for i in range(50)]
    assert a != b
    with pytest.raises(ValueError, match="no samples"):
        ProportionalSampler({"a": 0, "b": 1})


def test_every_name_of_SAMPLERS_builds_its_sampler_or_says_what_it_needs():
    # "periodic" is in the name table but was refused as an "unknown sampler"
    from multitask.training import SAMPLERS, make_sampler

    sizes = {"a": 3, "b": 5}
    for name, cls in SAMPLERS.items():
        if name == "periodic":  # its periods are no function of the sizes: named, not guessed
            with pytest.raises(ValueError, match=r"'periodic'.*period.*PeriodicSampler\(\{"):
                make_sampler(name, sizes)
        else:
            assert type(make_sampler(name, sizes)) is cls
    with pytest.raises(ValueError, match="one of 'round_robin', 'proportional', 'temperature', "):
        make_sampler("nope", sizes)


def test_the_trainer_explains_sampler_periodic():
    import torch
    from _training_helpers import TwoHeads, loader, regression_data, regression_tasks

    from multitask.training import Trainer

    torch.manual_seed(0)
    data = loader(regression_data(n=16))
    trainer = Trainer(TwoHeads(), regression_tasks(), sampler="periodic", device="cpu")
    with pytest.raises(ValueError, match=r"PeriodicSampler\(\{'a': 1, 'b': 2\}\)"):
        trainer.fit({"a": data, "b": data})


class _Draws:
    """Samplers of one's own whose draws go wrong at some step."""

    @staticmethod
    def empty_at_2(tasks):
        from multitask.training import TaskSampler

        class Skip(TaskSampler):
            def draw(self, step):
                return () if step == 2 else (self.tasks[step % 2],)

        return Skip(tasks)

    @staticmethod
    def unknown_at_3(tasks):
        from multitask.training import TaskSampler

        class Typo(TaskSampler):
            def draw(self, step):
                return ("a",) if step < 3 else ("B",)

        return Typo(tasks)

    @staticmethod
    def twice_at_1(tasks):
        from multitask.training import TaskSampler

        class Twice(TaskSampler):
            def draw(self, step):
                return ("a", "a") if step == 1 else ("a", "b")

        return Twice(tasks)


@pytest.mark.parametrize(
    ("make", "step", "shown"),
    [(_Draws.empty_at_2, 2, "()"), (_Draws.unknown_at_3, 3, "('B',)"),
     (_Draws.twice_at_1, 1, "('a', 'a')")],
)  # fmt: skip
def test_a_bad_draw_is_an_error_naming_the_step(make, step, shown):
    sampler = make(["a", "b"])
    for _ in range(step):
        sampler.next()
    with pytest.raises(ValueError, match=rf"draw\({step}\) gave {re.escape(shown)}; a draw must"):
        sampler.next()


@pytest.mark.parametrize("make", [_Draws.empty_at_2, _Draws.unknown_at_3, _Draws.twice_at_1])
def test_the_trainer_refuses_a_bad_draw_of_the_first_epoch_before_any_step(make):
    import torch
    from torch import nn

    from multitask.nn import Task
    from multitask.nn.architectures import HardSharing
    from multitask.training import Trainer

    torch.manual_seed(0)
    model = HardSharing(nn.Linear(3, 4), {t: nn.Linear(4, 1) for t in "ab"})
    x = torch.randn(16, 3)
    loaders = {t: [(x[i : i + 4], {t: x[i : i + 4, :1]}) for i in range(0, 16, 4)] for t in "ab"}
    trainer = Trainer(model, [Task("a"), Task("b")], max_epochs=1, device="cpu", progress=False,
                      sampler=make(["a", "b"]))  # fmt: skip
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="a draw must be a non-empty tuple"):
        trainer.fit(loaders)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


def test_periodic_sampler_skips_its_empty_steps_without_error():
    s = PeriodicSampler({"a": 2, "b": 3})
    assert [s.next() for _ in range(5)] == [("a", "b"), ("a",), ("b",), ("a",), ("a", "b")]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProportionalSampler({"a": 5, "b": 3, "c": 2}, seed=7),
        lambda: TemperatureSampler({"a": 900, "b": 100, "c": 1}, temperature=2.0, seed=3),
        lambda: TemperatureSampler({"a": 900, "b": 100}, temperature=1e-3, seed=1),  # p = (1, 0)
    ],
)
def test_probability_draws_are_generator_choice_of_seed_and_step(make):
    """Oracle: the documented draw, ``default_rng([seed, step]).choice(n, p=p)`` (the
    sampler skips choice's checks of p; the draws must not change)."""
    sampler = make()
    n = len(sampler.tasks)
    for step in range(3000):
        rng = np.random.default_rng([sampler.seed, step])
        expected = sampler.tasks[int(rng.choice(n, p=sampler.probabilities))]
        assert sampler.draw(step) == (expected,), step
