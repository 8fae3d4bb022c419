"""Per-task splits against a per-task brute-force count, protocols, held-out tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold

from multitask.datasets import (
    MultiTaskData,
    load,
    protocol_split,
    task_groups,
    train_test_split_per_task,
)


def _toy(sizes, kind="regression", pos_rate=0.3, seed=0) -> MultiTaskData:
    """Tasks of the given sizes; feature ``rid`` is the row id, to track rows."""
    rng = np.random.default_rng(seed)
    n = int(np.sum(sizes))
    task = np.repeat([f"t{i}" for i in range(len(sizes))], sizes)
    X = pd.DataFrame({"task": task, "rid": np.arange(n, dtype=float), "x": rng.normal(size=n)})
    y = (rng.random(n) < pos_rate).astype(int) if kind == "binary" else rng.normal(size=n)
    return MultiTaskData(X, y, "task", kind)


SIZES = [7, 10, 23, 40, 101]


@pytest.mark.parametrize("train_size", [0.25, 0.5, 0.75, 3])
def test_per_task_counts_and_partition(train_size):
    data = _toy(SIZES)
    tr, te = train_test_split_per_task(data, train_size, seed=1)
    for t, n_t in zip(data.tasks, SIZES, strict=True):
        expected = train_size if isinstance(train_size, int) else int(np.floor(train_size * n_t))
        assert (tr.task == t).sum() == expected
        assert (te.task == t).sum() == n_t - expected
    rows = np.concatenate([tr.X["rid"], te.X["rid"]])
    assert np.array_equal(np.sort(rows), np.arange(sum(SIZES)))
    # each row keeps its own target and task
    np.testing.assert_array_equal(tr.y, data.y[tr.X["rid"].astype(int)])
    assert np.all(np.diff(tr.X["rid"]) > 0)  # original order kept


def test_stratified_per_task_proportions_match_largest_remainder():
    data = _toy([60, 45, 80, 33], kind="binary", pos_rate=0.2)
    tr, _ = train_test_split_per_task(data, 0.5, seed=3)  # binary: stratified by default
    for t in data.tasks:
        y_t = data.y[data.task == t]
        n_train = int(np.floor(0.5 * y_t.size))
        got = np.bincount(tr.y[tr.task == t], minlength=2)
        ideal = n_train * np.bincount(y_t, minlength=2) / y_t.size
        assert got.sum() == n_train
        assert np.all(np.abs(got - ideal) < 1)


def test_stratification_beats_chance_on_rare_class():
    """Stratified: train positives per task never deviate by 1 or more; unstratified do."""
    data = _toy([200] * 20, kind="binary", pos_rate=0.1, seed=5)
    ideal = 0.5 * pd.Series(data.y).groupby(data.task).sum().to_numpy()
    dev = {}
    for strat in (True, False):
        tr, _ = train_test_split_per_task(data, 0.5, seed=0, stratify=strat)
        dev[strat] = np.abs(pd.Series(tr.y).groupby(tr.task).sum().to_numpy() - ideal).max()
    assert dev[True] < 1 <= dev[False]


def test_every_row_equally_likely_in_train():
    data = _toy([12, 30])
    hits = np.zeros(42)
    for seed in range(300):
        tr, _ = train_test_split_per_task(data, 0.5, seed=seed)
        hits[tr.X["rid"].astype(int)] += 1
    assert np.all(np.abs(hits / 300 - 0.5) < 0.12)


def test_seeded_and_reproducible():
    data = _toy(SIZES)
    a, _ = train_test_split_per_task(data, 0.5, seed=7)
    b, _ = train_test_split_per_task(data, 0.5, seed=7)
    c, _ = train_test_split_per_task(data, 0.5, seed=8)
    assert a.X["rid"].tolist() == b.X["rid"].tolist() != c.X["rid"].tolist()


@pytest.mark.parametrize(("train_size", "side"), [(0.1, "training"), (7, "test")])
def test_empty_side_raises_naming_the_task(train_size, side):
    with pytest.raises(ValueError, match=f"task 't0' .*0 {side} samples"):
        train_test_split_per_task(_toy(SIZES), train_size)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, 0, -2])
def test_bad_train_size(bad):
    with pytest.raises(ValueError, match="train_size"):
        train_test_split_per_task(_toy(SIZES), bad)


def test_task_groups_hold_out_whole_tasks():
    data = _toy(SIZES)
    for tr_idx, te_idx in GroupKFold(n_splits=5).split(data.X, data.y, groups=task_groups(data)):
        assert not set(data.task[tr_idx]) & set(data.task[te_idx])
        assert len(set(data.task[te_idx])) == 1


def test_protocols_on_real_data(real_data):
    school = load("school")
    tr, _ = protocol_split("school", school, seed=0)
    sizes = school.task_sizes()
    assert tr.task_sizes().equals(np.floor(0.75 * sizes).astype(sizes.dtype))
    tr10, _ = protocol_split("school_10", school, seed=0)
    assert tr10.n_samples == np.floor(0.1 * sizes).sum()
    adult = load("adult")
    a_tr, a_te = protocol_split("adult", adult)
    assert (a_tr.n_samples, a_te.n_samples) == (32561, 16281)
    assert set(a_tr.split) == {"train"}
    with pytest.raises(ValueError, match="no published split"):
        protocol_split("adult", load("census_kdd_test"))


def test_unknown_protocol():
    with pytest.raises(ValueError, match="school_10"):
        protocol_split("shcool", _toy(SIZES))
