"""Bad sampler arguments fail at construction, naming the parameter; log-space temperature."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from multitask.training import (
    PeriodicSampler,
    ProportionalSampler,
    RoundRobinSampler,
    TemperatureSampler,
    make_sampler,
)

NAN, INF = math.nan, math.inf

BUILD = {
    "RoundRobin": lambda arg=("a", "b"), **kw: RoundRobinSampler(arg, **kw),
    "Proportional": lambda arg=None, **kw: ProportionalSampler(arg or {"a": 3, "b": 1}, **kw),
    "Temperature": lambda arg=None, **kw: TemperatureSampler(arg or {"a": 3, "b": 1}, **kw),
    "Periodic": lambda arg=None, **kw: PeriodicSampler(arg or {"a": 1, "b": 2}, **kw),
}

#: what a count (a size in samples, a period in steps) must not be, and the error it gives
_NOT_COUNTS = [
    (NAN, TypeError),
    (INF, TypeError),
    (1.5, TypeError),
    ("3", TypeError),
    (True, TypeError),
    (0, ValueError),
    (-2, ValueError),
]

REFUSED = [
    # 24: task names
    ("RoundRobin", {"arg": ["a", "a"]}, ValueError, "more than once"),
    ("RoundRobin", {"arg": ["a", ""]}, TypeError, "non-empty strings"),
    ("RoundRobin", {"arg": ["a", 1]}, TypeError, "non-empty strings"),
    ("RoundRobin", {"arg": "ab"}, TypeError, "sequence of task names"),
    ("RoundRobin", {"arg": []}, ValueError, "at least one task"),
    ("Proportional", {"arg": {"": 3, "b": 1}}, TypeError, "non-empty strings"),
    ("Temperature", {"arg": {1: 3, "b": 1}}, TypeError, "non-empty strings"),
    ("Periodic", {"arg": {None: 1}}, TypeError, "non-empty strings"),
    # 25: sizes and periods
    *[
        (cls, {"arg": {"a": v, "b": 1}}, err, r"sizes\['a'\]|no samples")
        for cls in ("Proportional", "Temperature")
        for v, err in _NOT_COUNTS
    ],
    *[("Periodic", {"arg": {"a": v}}, err, r"periods") for v, err in _NOT_COUNTS],
    # 26: temperature
    ("Temperature", {"temperature": 0.0}, ValueError, "temperature"),
    ("Temperature", {"temperature": -1.0}, ValueError, "temperature"),
    ("Temperature", {"temperature": NAN}, ValueError, "temperature"),
    ("Temperature", {"temperature": "5"}, TypeError, "temperature"),
    # 27: seed
    *[
        (cls, {"seed": v}, err, "seed")
        for cls in BUILD
        for v, err in [
            (-1, ValueError),
            (NAN, TypeError),
            (1.5, TypeError),
            ("0", TypeError),
            (True, TypeError),
            (None, TypeError),
        ]
    ],
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"), REFUSED, ids=[f"{c}-{k}" for c, k, _, _ in REFUSED]
)
def test_bad_argument_refused_at_construction(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        BUILD[cls](**kwargs)


#: builders from a mapping task -> count, each named as its errors name it
BY_MAPPING = {
    "ProportionalSampler: sizes": ProportionalSampler,
    "TemperatureSampler: sizes": TemperatureSampler,
    "PeriodicSampler: periods": PeriodicSampler,
    **{
        f"make_sampler: sizes-{name}": lambda sizes, name=name: make_sampler(name, sizes)
        for name in ("round_robin", "proportional", "temperature")
    },
}

#: not a mapping: a list of counts read as task names, a list of names indexed by a name
NOT_MAPPINGS = [[3, 4], ["a", "b"], ("a", "b"), "ab", None, 5, pd.Series({"a": 3, "b": 1})]


@pytest.mark.parametrize("given", NOT_MAPPINGS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("owner", BY_MAPPING)
def test_sizes_not_a_mapping_is_a_clear_type_error(owner, given):
    expected = owner.split("-")[0]  # "make_sampler: sizes-round_robin" -> "make_sampler: sizes"
    with pytest.raises(TypeError, match=rf"^{expected} must be a mapping task -> .*e\.g\. \{{"):
        BY_MAPPING[owner](given)


@pytest.mark.parametrize("owner", BY_MAPPING)
def test_empty_sizes_is_a_clear_value_error(owner):
    expected = owner.split("-")[0]
    with pytest.raises(ValueError, match=rf"^{expected} is empty; it maps each task to its"):
        BY_MAPPING[owner]({})


def test_a_series_of_sizes_is_refused_with_what_to_pass():
    sizes = pd.Series({"a": 300, "b": 100})
    with pytest.raises(TypeError, match=r"a pandas Series .*pass series\.to_dict\(\)"):
        ProportionalSampler(sizes)
    assert ProportionalSampler(sizes.to_dict()).probabilities.tolist() == [0.75, 0.25]


VALID = [
    ("RoundRobin", {"arg": ["only"]}),
    ("RoundRobin", {"arg": ("a", "b"), "seed": np.int64(3)}),
    ("Proportional", {"arg": {"a": np.int64(1), "b": 10**12}}),
    ("Temperature", {"arg": {"a": 1, "b": 2}, "temperature": INF}),
    ("Temperature", {"arg": {"a": 1, "b": 2}, "temperature": 1e-300}),
    ("Periodic", {"arg": {"a": 1, "b": np.int32(7)}, "seed": 0}),
]


@pytest.mark.parametrize(("cls", "kwargs"), VALID, ids=[f"{c}-{k}" for c, k in VALID])
def test_valid_edge_values_construct_and_draw(cls, kwargs):
    sampler = BUILD[cls](**kwargs)
    for _ in range(10):
        drawn = sampler.next()
        assert drawn and set(drawn) <= set(sampler.tasks)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.0, 5.0, 100.0])
def test_log_space_probabilities_equal_the_old_formula(temperature):
    n = np.array([900.0, 100.0, 7.0, 1.0])
    sizes = dict(zip("abcd", n.astype(int).tolist(), strict=True))
    old = (n / n.sum()) ** (1.0 / temperature)
    old = old / old.sum()
    got = TemperatureSampler(sizes, temperature).probabilities
    np.testing.assert_allclose(got, old, rtol=1e-12, atol=1e-15)


def test_tiny_temperature_draws_the_largest_task_with_probability_one():
    sampler = TemperatureSampler({"small": 10, "big": 1000, "mid": 100}, temperature=1e-9)
    assert np.all(np.isfinite(sampler.probabilities))
    np.testing.assert_array_equal(sampler.probabilities, [0.0, 1.0, 0.0])
    assert [sampler.next() for _ in range(20)] == [("big",)] * 20


def test_infinite_temperature_is_uniform():
    sampler = TemperatureSampler({"a": 1, "b": 1000}, temperature=INF)
    np.testing.assert_allclose(sampler.probabilities, [0.5, 0.5])
