"""Audit: cross-validated estimators with group splitters, small tasks and bad grids.

Oracles: the folds themselves (which tasks a GroupKFold fold holds out), and the same
search written with explicit ``groups``.
"""

import warnings

import numpy as np
import pytest
from audit_data import task_problem
from sklearn.model_selection import GroupKFold

import multitask.linear as ml
from multitask.linear._cv import _folds

N, P, T = 80, 3, 4
RNG, X, TASK, Y, XL = task_problem(3, N, P, T)


def test_group_splitter_holds_out_whole_tasks_by_default():
    # "groups parameter should not be None" before: a GroupKFold could not be used
    est = ml.GroupLassoRegressor(task_col=0)
    for train, test in _folds(est, XL, Y, GroupKFold(2), 0):
        assert not set(TASK[train]) & set(TASK[test])
    cv = ml.GroupLassoRegressorCV(task_col=0, n_alphas=4, cv=GroupKFold(2)).fit(XL, Y)
    explicit = ml.GroupLassoRegressorCV(task_col=0, n_alphas=4, cv=GroupKFold(2))
    explicit.fit(XL, Y, groups=TASK)
    np.testing.assert_allclose(cv.cv_scores_, explicit.cv_scores_)
    other = ml.GroupLassoRegressorCV(task_col=0, n_alphas=4, cv=GroupKFold(2))
    other.fit(XL, Y, groups=np.arange(N) % 2)  # given groups are used as given
    assert not np.allclose(other.cv_scores_, cv.cv_scores_)


def test_a_splitter_that_ignores_groups_gets_none_by_default():
    """KFold warned "The groups parameter is ignored by KFold" on every CV fit with a task
    column (the task column was handed to every splitter); a custom splitter without routing
    information still gets it."""
    from sklearn.model_selection import KFold

    est = ml.GroupLassoRegressor(task_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folds = _folds(est, XL, Y, KFold(2, shuffle=True, random_state=0), 0)
        ml.GroupLassoRegressorCV(task_col=0, n_alphas=3, cv=KFold(2)).fit(XL, Y)
    want = list(KFold(2, shuffle=True, random_state=0).split(XL))
    for (a, b), (c, d) in zip(folds, want, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)

    class Custom:
        def split(self, X, y, groups):
            self.groups = groups
            yield from GroupKFold(2).split(X, y, groups)

    custom = Custom()
    _folds(est, XL, Y, custom, 0)
    np.testing.assert_array_equal(custom.groups, TASK)


def test_multitask_cv_with_group_splitter():
    cv = ml.MultiTaskCV(
        ml.MeanRegularizedRegressor(task_col=0), alphas=[0.1, 1.0], cv=GroupKFold(2)
    ).fit(XL, Y)
    assert cv.alpha_ in (0.1, 1.0)
    assert cv.cv_scores_.shape == (2, 2)


def test_small_task_raises_before_any_fold_is_fitted():
    Xs = np.vstack([XL, np.column_stack([[9, 9], X[:2]])])
    ys = np.r_[Y, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"fewer than 2 rows of task 9"):
        ml.GroupLassoRegressorCV(task_col=0, n_alphas=3).fit(Xs, ys)
    X4 = np.vstack([XL, np.column_stack([[9] * 4, X[:4]])])
    ml.GroupLassoRegressorCV(task_col=0, n_alphas=3, cv=2).fit(X4, np.r_[Y, 1.0, 2.0, 3.0, 4.0])


def test_rare_class_in_a_task_raises_before_any_fold_is_fitted():
    yc = (Y > np.median(Y)).astype(int)
    yc[TASK == 2] = 1
    yc[np.flatnonzero(TASK == 2)[0]] = 0
    yc[np.flatnonzero(TASK != 2)[::2]] = 0
    yc[np.flatnonzero(TASK != 2)[1::2]] = 1
    with pytest.raises(ValueError, match=r"a single class of task 2"):
        ml.GroupLassoClassifierCV(task_col=0, n_alphas=3).fit(XL, yc)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_alphas": 0}, "n_alphas=0"),
        ({"eps": 0.0}, "eps=0.0"),
        ({"eps": 2.0}, "eps=2.0"),
        ({"alphas": []}, "alphas is empty"),
        ({"tol": -1.0}, "tol=-1.0"),
    ],
)
def test_bad_cv_parameters_raise_clearly(params, match):
    with pytest.raises(ValueError, match=match):
        ml.GroupLassoRegressorCV(task_col=0, **params).fit(XL, Y)


def test_multitask_cv_wraps_an_estimator_from_elsewhere():
    from sklearn.linear_model import Lasso

    cv = ml.MultiTaskCV(Lasso(), alphas=[0.1, 10.0], cv=3).fit(X, Y)
    assert cv.alpha_ in (0.1, 10.0)


@pytest.mark.parametrize("scoring", [None, "neg_mean_squared_error"])
def test_held_out_rows_are_scored_with_their_weights(scoring):
    # rows of weight 0 count neither in the fit nor in a fold's score: their targets can be
    # anything. CV scoring ignored the weights, so one such row of y = 1e4 moved every score
    w = np.ones(N)
    w[::7] = 0.0
    y_bad = Y.copy()
    y_bad[::7] = 1e4
    cv = [
        (np.flatnonzero(np.arange(N) % 2 == k), np.flatnonzero(np.arange(N) % 2 != k))
        for k in (0, 1)
    ]
    fits = [
        ml.GroupLassoRegressorCV(task_col=0, cv=cv, n_alphas=5, scoring=scoring).fit(
            XL, y, sample_weight=w
        )
        for y in (Y, y_bad)
    ]
    np.testing.assert_allclose(fits[1].cv_scores_, fits[0].cv_scores_, rtol=1e-9, atol=1e-12)
    assert fits[1].alpha_ == fits[0].alpha_


def test_a_scalar_sample_weight_is_no_weighting():
    ref = ml.GroupLassoRegressorCV(task_col=0, cv=3, n_alphas=4).fit(XL, Y)
    est = ml.GroupLassoRegressorCV(task_col=0, cv=3, n_alphas=4).fit(XL, Y, sample_weight=2.0)
    np.testing.assert_allclose(est.cv_scores_, ref.cv_scores_, rtol=1e-7)
    assert est.alpha_ == ref.alpha_


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"alphas": 0.1}, ValueError, r"alphas=0.1 .*1-D"),  # AxisError from np.sort before
        ({"alphas": [0.1, np.nan]}, ValueError, "finite"),
        ({"alphas": ["a"]}, ValueError, "numbers"),
        ({"cv": "5"}, TypeError, "cv='5'"),  # str.split was called as a splitter's
        ({"cv": True}, TypeError, "cv=True"),
        ({"cv": 1}, ValueError, "cv=1"),
    ],
)
def test_bad_alphas_and_cv_name_the_parameter(params, error, match):
    with pytest.raises(error, match=match):
        ml.GroupLassoRegressorCV(task_col=0, **params).fit(XL, Y)


def test_refit_on_an_array_drops_the_feature_names_of_a_dataframe_fit():
    import pandas as pd

    df = pd.DataFrame(XL, columns=["t", "a", "b", "c"])
    cv = ml.GroupLassoRegressorCV(task_col="t", n_alphas=3, cv=3).fit(df, Y)
    assert list(cv.feature_names_in_) == ["t", "a", "b", "c"]
    cv.set_params(task_col=0).fit(XL, Y)
    assert not hasattr(cv, "feature_names_in_")
    assert not hasattr(cv.best_estimator_, "feature_names_in_")
