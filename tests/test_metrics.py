"""Metrics against hand-computed numbers."""

import numpy as np
import pytest

from multitask import metrics as M


def test_regression_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 3.0, 2.0, 4.0])
    # errors 0, -1, 1, 0 -> MSE 0.5, MAE 0.5; Var(y) = 1.25; mean(y^2) = 7.5
    assert M.mse(y, p) == pytest.approx(0.5)
    assert M.rmse(y, p) == pytest.approx(np.sqrt(0.5))
    assert M.mae(y, p) == pytest.approx(0.5)
    assert M.nmse(y, p) == pytest.approx(0.5 / 1.25)
    assert M.amse(y, p) == pytest.approx(0.5 / 7.5)
    assert M.explained_variance(y, p) == pytest.approx(1 - 0.4)


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    assert M.accuracy(y, [0, 1, 1, 1]) == pytest.approx(0.75)
    # scores rank: one positive (0.35) below one negative (0.4): 3 of 4 pairs right
    assert M.auc(y, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # tp=2, fp=1, fn=0 -> precision 2/3, recall 1 -> F1 0.8
    assert M.f1(y, [0, 1, 1, 1]) == pytest.approx(0.8)
    # multiclass macro F1: classes 0,1,2 each F1 = 1, 0, 2/3
    assert M.f1([0, 1, 2, 2], [0, 2, 2, 2], average="macro") == pytest.approx((1 + 0 + 0.8) / 3)


F1_CASES = [  # (y_true, y_pred): cases where the labels present mislead a guess
    ([0, 0, 0, 0], [0, 0, 0, 0]),  # no positive anywhere: 0, not 1
    ([0, 0, 0, 1], [0, 0, 0, 0]),
    ([1, 1, 1], [1, 1, 1]),
    ([0, 1, 1, 0], [1, 1, 0, 0]),
]


@pytest.mark.parametrize(("y_true", "y_pred"), F1_CASES)
def test_binary_f1_matches_sklearn_with_positive_label_1(y_true, y_pred):
    from sklearn.metrics import f1_score

    want = f1_score(y_true, y_pred, pos_label=1, zero_division=0.0)
    assert M.f1(y_true, y_pred) == pytest.approx(want)
    assert M.f1(np.asarray(y_true, float), np.asarray(y_pred, float)) == pytest.approx(want)


def test_f1_positive_label_and_macro_over_known_classes_match_sklearn():
    from sklearn.metrics import f1_score

    y, p = ["no", "no", "no"], ["no", "no", "no"]
    assert M.f1(y, p, pos_label="yes") == 0.0
    # a 3-class task whose rows show only classes 0 and 2: still a macro F1, over all 3
    y, p = [0, 0, 2, 2, 2], [0, 2, 2, 2, 0]
    want = f1_score(y, p, average="macro", labels=[0, 1, 2], zero_division=0.0)
    assert M.f1(y, p, average="macro", labels=range(3)) == pytest.approx(want)
    assert M.f1(y, p, average="macro") == pytest.approx(f1_score(y, p, average="macro"))
    with pytest.raises(ValueError, match="multiclass"):
        M.f1([0, 1, 2], [0, 1, 2])  # binary by default: a 3-class task must say macro


def test_per_task_and_aggregation():
    y = np.array([1.0, 3.0, 0.0, 0.0, 2.0])
    p = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    tasks = np.array(["b", "b", "a", "a", "a"])
    per = M.per_task("mse", y, p, tasks)
    assert list(per) == ["a", "b"]
    assert per["a"] == pytest.approx((1 + 0 + 4) / 3)
    assert per["b"] == pytest.approx(2.0)
    assert M.aggregate("mse", y, p, tasks) == pytest.approx((5 / 3 + 2) / 2)
    assert M.aggregate("mse", y, p, tasks, how="weighted") == pytest.approx((5 + 4) / 5)


def test_delta_m_by_hand():
    stl = {("t1", "accuracy"): 0.80, ("t2", "mse"): 2.0, ("t2", "mae"): 1.0}
    mtl = {("t1", "accuracy"): 0.88, ("t2", "mse"): 1.5, ("t2", "mae"): 1.2}
    # +10%, +25% (lower is better), -20% (lower is better)
    assert M.delta_m(mtl, stl) == pytest.approx((0.10 + 0.25 - 0.20) / 3)
    # per task first: t1 = 0.10, t2 = (0.25 - 0.20) / 2 = 0.025
    assert M.delta_m_per_task(mtl, stl) == pytest.approx((0.10 + 0.025) / 2)


def test_delta_m_custom_direction_and_errors():
    assert M.delta_m({("t", "loss"): 1.0}, {("t", "loss"): 2.0}, {"loss": False}) == 0.5
    with pytest.raises(ValueError, match="direction"):
        M.delta_m({("t", "loss"): 1.0}, {("t", "loss"): 2.0})
    with pytest.raises(ValueError, match="differ in keys"):
        M.delta_m({("t", "mse"): 1.0}, {("u", "mse"): 1.0})


def test_bad_input():
    with pytest.raises(ValueError, match="must match"):
        M.mse([1, 2], [1])
    with pytest.raises(ValueError, match="0 samples"):
        M.mse([], [])
    with pytest.raises(ValueError, match="constant"):
        M.nmse([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="only one"):
        M.auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="unknown metric"):
        M.per_task("r2", [1.0], [1.0], [0])
