"""Hyper-parameters are chosen on validation data only (both halves' selection rules)."""

from types import SimpleNamespace

import numpy as np
import pytest

from multitask.bench._linear import LinearMethod

Y = np.array([0.0, 1.0, 2.0, 3.0])
TASKS = np.array([0, 0, 1, 1])


class _Est:
    """Perfect on validation rows for alpha=1, perfect on test rows for alpha=2."""

    def __init__(self, task_col, alpha):
        self.alpha = alpha
        self.coef_ = np.array([[alpha], [alpha]])

    def fit(self, X, y):
        return self

    def predict(self, X):
        good = (X == "val") == (self.alpha == 1)
        return Y if good else Y + 2.0


def _problem(y_mean=0.0, y_std=1.0):
    split = {s: SimpleNamespace(X=s, y=Y, task=TASKS) for s in ("train", "val", "test")}
    return SimpleNamespace(kind="regression", task_col="t", y_mean=y_mean, y_std=y_std, **split)


def test_linear_grid_point_is_the_best_on_validation_not_on_test():
    method = LinearMethod("m", lambda kind, task_col, **p: _Est(task_col, **p), {"alpha": [2, 1]})
    out = method.run(_problem(), 0, {})
    assert out.artifacts["params"] == {"alpha": 1}
    assert out.values[("_all", "selection_score", "val")] == 0.0  # -MSE, perfect on val
    # the reported test numbers are those of alpha=1, which is off by 2 on test rows
    assert out.values[("0", "mse", "test")] == pytest.approx(4.0)
    # nMSE divides by each task's own target variance (0.25 for [0, 1] and [2, 3])
    assert out.values[("_all", "nmse", "test")] == pytest.approx(4.0 / 0.25)
    assert [p["val_score"] for p in out.artifacts["path"]] == [-4.0, 0.0]


def test_linear_test_metrics_are_in_the_target_units():
    method = LinearMethod("m", lambda kind, task_col, **p: _Est(task_col, **p), {"alpha": [1]})
    out = method.run(_problem(y_mean=10.0, y_std=3.0), 0, {})
    assert out.values[("1", "mse", "test")] == pytest.approx(4.0 * 9.0)  # error 2 x deviation 3
    assert out.values[("_all", "nmse", "test")] == pytest.approx(16.0)  # unit-free


def test_deep_selection_survives_f1_zero_on_validation():
    """No positive in the validation rows of a task: its F1 there is 0 at every epoch, which
    made the old selection (delta_m over every metric, F1 included) divide by 0. The epoch is
    now chosen on AUC (undefined here, so the last epoch is kept); the test rows still get
    every metric of the kind."""
    torch = pytest.importorskip("torch")
    from multitask.bench._deep import DeepMethod, DeepProblem

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = {s: rng.normal(size=(200, 4)).astype(np.float32) for s in ("train", "val", "test")}
    Y = {s: {"rare": (x[:, 0] > 1.0).astype(np.float32)} for s, x in X.items()}
    Y["val"]["rare"][:] = 0.0
    for s, x in X.items():
        Y[s]["other"] = (x[:, 1] > 0).astype(np.float32)
    kinds = {"rare": "binary", "other": "binary"}
    problem = DeepProblem("toy", kinds, {"rare": 1, "other": 1}, X, Y)
    out = DeepMethod("hard_sharing").run(problem, 0, {"max_epochs": 2, "batch_size": 64})
    for task in kinds:
        got = {m: v for (t, m, _), v in out.values.items() if t == task}
        assert set(got) == {"accuracy", "auc", "f1"}
        assert all(0.0 <= v <= 1.0 for v in got.values())


def test_validation_carve_out_leaves_every_task_two_training_rows():
    """School 10% leaves its smallest schools 2 training rows; a quarter of them for validation
    left 1, and every linear method refused the task. Such a task now gives no validation row,
    and the other tasks are split as before (a quarter of their rows, floored)."""
    import pandas as pd

    from multitask.bench._linear import _validation_split
    from multitask.datasets import MultiTaskData

    sizes = {"a": 2, "b": 3, "c": 8, "d": 1}
    task = np.repeat(list(sizes), list(sizes.values()))
    X = pd.DataFrame({"x": np.arange(task.size, dtype=float), "task": task})
    rest = MultiTaskData(X, X["x"].to_numpy() * 10.0)
    train, val = _validation_split(rest, 0.75, seed=3)
    assert train.task_sizes().to_dict() == {"a": 2, "b": 2, "c": 6, "d": 1}
    assert val.task_sizes().to_dict() == {"b": 1, "c": 2}
    # a partition of the rows, each row with its own target
    both = np.sort(np.concatenate([train.X["x"], val.X["x"]]))
    np.testing.assert_array_equal(both, X["x"])
    np.testing.assert_array_equal(train.y, train.X["x"] * 10.0)
    # with no small task, exactly the plain per-task split
    from multitask.datasets.splits import train_test_split_per_task

    big = rest.subset(np.isin(task, ["b", "c"]))
    got, want = _validation_split(big, 0.75, seed=3), train_test_split_per_task(big, 0.75, seed=3)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.X["x"], w.X["x"])


def test_school_10_fits_a_linear_method(real_data):
    """The shipped suites 'classical' and 'full' list school_10 (real data; skipped without)."""
    from multitask.bench._registry import METHODS, PROBLEMS

    problem = PROBLEMS["school_10"].load(0, {})
    assert problem.train.task_sizes().min() >= 2
    one_point = LinearMethod("independent", METHODS["independent"].make, {"alpha": [1e-2]})
    out = one_point.run(problem, 0, {})
    assert np.isfinite(out.values[("_all", "explained_variance", "test")])
