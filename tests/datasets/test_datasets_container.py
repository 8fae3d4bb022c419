"""MultiTaskData / MultiOutputData and the long-format converters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from multitask.datasets import MultiOutputData, MultiTaskData, from_arrays, from_wide


def _pairs():
    rng = np.random.default_rng(0)
    return [(rng.normal(size=(n, 3)), rng.normal(size=n)) for n in (4, 2, 5)]


def test_from_arrays_stacks_tasks_in_order():
    pairs = _pairs()
    d = from_arrays(pairs, task_names=["a", "b", "c"], feature_names=["u", "v", "w"])
    assert list(d.X.columns) == ["task", "u", "v", "w"] and d.feature_names == ["u", "v", "w"]
    assert d.task.tolist() == ["a"] * 4 + ["b"] * 2 + ["c"] * 5
    X, y, _ = d.arrays()
    np.testing.assert_array_equal(X, np.vstack([p[0] for p in pairs]))
    np.testing.assert_array_equal(y, np.concatenate([p[1] for p in pairs]))
    assert X.dtype == np.float64 and d.task_sizes().to_dict() == {"a": 4, "b": 2, "c": 5}
    assert d.n_tasks == 3 and d.tasks.tolist() == ["a", "b", "c"]


def test_from_arrays_default_names_and_errors():
    d = from_arrays(_pairs())
    assert d.tasks.tolist() == [0, 1, 2] and d.feature_names == ["x0", "x1", "x2"]
    with pytest.raises(ValueError, match="task 1 has 2 features"):
        from_arrays([(np.ones((2, 3)), np.ones(2)), (np.ones((2, 2)), np.ones(2))])
    with pytest.raises(ValueError, match="rows"):
        from_arrays([(np.ones((2, 3)), np.ones(3))])
    with pytest.raises(ValueError, match="distinct"):
        from_arrays(_pairs(), task_names=["a", "a", "b"])


def test_from_wide_is_long_format_and_drops_missing_labels():
    X = np.arange(12.0).reshape(4, 3)
    Y = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]])
    d = from_wide(X, pd.DataFrame(Y, columns=["p", "q"]))
    assert d.task_sizes().to_dict() == {"p": 4, "q": 3}
    # brute force: every (row, task) with a label, in task-major order
    expected = [(i, t) for t in range(2) for i in range(4) if not np.isnan(Y[i, t])]
    Xf, y, _ = d.arrays()
    np.testing.assert_array_equal(Xf, X[[i for i, _ in expected]])
    np.testing.assert_array_equal(y, [Y[i, t] for i, t in expected])


def test_subset_mask_and_indices_keep_meta_aligned():
    d = from_arrays(_pairs())
    d = dataclasses.replace(d, meta=pd.DataFrame({"k": np.arange(11)}))
    s = d.subset(d.task == 2)
    assert s.n_samples == 5 and s.meta["k"].tolist() == [6, 7, 8, 9, 10]
    s2 = d.subset([10, 0])
    assert s2.y.tolist() == [d.y[10], d.y[0]] and s2.meta["k"].tolist() == [10, 0]
    with pytest.raises(ValueError, match="boolean mask"):
        d.subset(np.ones(3, dtype=bool))


def test_validation_and_frozen():
    X = pd.DataFrame({"task": [0, 1], "x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="not a column"):
        MultiTaskData(X, np.zeros(2), task_col="group")
    with pytest.raises(ValueError, match="1-D"):
        MultiTaskData(X, np.zeros(3))
    with pytest.raises(ValueError, match="kind"):
        MultiTaskData(X, np.zeros(2), kind="ranking")
    d = MultiTaskData(X, np.zeros(2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.y = np.ones(2)


def test_multioutput():
    X = np.zeros((4, 2, 2), dtype=np.uint8)
    targets = {"a": np.arange(4), "b": np.ones(4)}
    kinds = {"a": "multiclass", "b": "regression"}
    d = MultiOutputData(X, targets, kinds, np.array(["train", "train", "test", "test"]))
    assert d.Y.shape == (4, 2)
    s = d.subset(d.split == "test")
    assert s.X.shape == (2, 2, 2) and s.targets["a"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="shape"):
        MultiOutputData(X, {"a": np.arange(3)}, {"a": "regression"})
    with pytest.raises(ValueError, match="kinds"):
        MultiOutputData(X, {"a": np.arange(4)}, {"b": "regression"})
