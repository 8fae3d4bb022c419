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
