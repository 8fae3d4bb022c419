"""Task samplers against their defining probabilities and schedules."""

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
