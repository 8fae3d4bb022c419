"""Cross-validation on a warm-started path (``multitask.linear._cv``)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

import multitask.linear as ml
from multitask.linear._cv import _folds, alpha_grid


def long_data(n_tasks=4, n_per_task=25, seed=0):
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(n_tasks), n_per_task)
    X = rng.normal(size=(len(task), 5))
    W = rng.normal(size=(5, n_tasks)) * np.array([[1], [1], [0], [0], [0]])
    y = np.einsum("ij,ji->i", X, W[:, task]) + 0.5 * rng.normal(size=len(task))
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    df["task"] = task
    return df, y


def test_alpha_grid_starts_at_alpha_max():
    """At alpha_max the fitted model is zero; slightly below, it is not (KKT oracle)."""
    df, y = long_data()
    est = ml.GroupLassoRegressor(task_col="task")
    alphas = alpha_grid(est, df, y, n_alphas=5, eps=1e-2)
    np.testing.assert_allclose(alphas[-1] / alphas[0], 1e-2)
    at_max = ml.GroupLassoRegressor(alpha=alphas[0] * 1.0001, task_col="task").fit(df, y)
    below = ml.GroupLassoRegressor(alpha=alphas[0] * 0.95, task_col="task").fit(df, y)
    assert np.abs(at_max.coef_).max() < 1e-10
    assert np.abs(below.coef_).max() > 1e-6


def test_folds_are_stratified_per_task():
    df, y = long_data()
    for train, test in _folds(ml.GroupLassoRegressor(task_col="task"), df, y, 5, 0):
        assert set(df["task"].iloc[train]) == set(df["task"])
        counts = np.bincount(df["task"].iloc[test], minlength=4)
        assert counts.min() == counts.max() == 5


def test_path_cv_chooses_the_same_alpha_as_cold_grid_search():
    """Warm-started path and independent cold fits (GridSearchCV) agree on alpha."""
    df, y = long_data()
    alphas = [0.3, 0.1, 0.03, 0.01]
    est = ml.GroupLassoRegressor(task_col="task")
    folds = _folds(est, df, y, 3, 0)
    cv = ml.MultiTaskCV(est, alphas=alphas, cv=folds, scoring="neg_mean_squared_error")
    cv.fit(df, y)
    grid = GridSearchCV(est, {"alpha": alphas}, cv=folds, scoring="neg_mean_squared_error")
    grid.fit(df, y)
    assert cv.alpha_ == grid.best_params_["alpha"]
    order = np.argsort(alphas)[::-1]  # the path runs from the largest alpha down
    np.testing.assert_allclose(
        cv.cv_scores_.mean(0), grid.cv_results_["mean_test_score"][order], rtol=1e-5
    )
    np.testing.assert_allclose(cv.predict(df), grid.predict(df), atol=1e-6)


def test_family_cv_and_parallel_folds():
    df, y = long_data()
    one = ml.GroupLassoRegressorCV(task_col="task", n_alphas=4, cv=3, n_jobs=1).fit(df, y)
    two = ml.GroupLassoRegressorCV(task_col="task", n_alphas=4, cv=3, n_jobs=2).fit(df, y)
    assert one.alpha_ == two.alpha_
    np.testing.assert_allclose(one.cv_scores_, two.cv_scores_)
    assert one.coef_.shape == (4, 5) and one.predict(df).shape == (100,)
    # the noise features (2, 3, 4) are dropped jointly for all tasks
    assert np.abs(one.coef_[:, 2:]).max() < np.abs(one.coef_[:, :2]).max()


def test_classifier_cv_keeps_both_classes_in_every_task():
    df, y = long_data()
    labels = np.where(y > 0, "pos", "neg")
    est = ml.TraceNormClassifierCV(task_col="task", n_alphas=3, cv=3).fit(df, labels)
    assert list(est.classes_) == ["neg", "pos"]
    assert est.predict_proba(df).shape == (100, 2)


def test_negative_alphas_rejected():
    df, y = long_data()
    with pytest.raises(ValueError, match="alphas must be >= 0"):
        ml.MultiTaskCV(ml.GroupLassoRegressor(task_col="task"), alphas=[0.1, -1]).fit(df, y)


def test_shared_design_classifier_cv_stratifies_its_rarest_task_and_scores_per_task():
    """A shared design (2-D labels) had plain KFold folds, unchecked: a task with 2 positives
    in 60 rows lost both in a training fold and that fold's fit failed, where a fit on all
    rows worked; labels other than 0/1 could not be scored at all (sklearn's accuracy refuses
    2-D labels). Oracle: the mean over tasks of sklearn's accuracy."""
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    Y = np.where(X @ rng.normal(size=(4, 3)) > 0, "yes", "no").astype(object)
    Y[:, 2] = "no"
    Y[[3, 40], 2] = "yes"  # task 2: two positives
    for train, _ in _folds(ml.GroupLassoClassifier(), X, Y, 5, 0, None, None):
        assert set(Y[train, 2]) == {"no", "yes"}
    cv = ml.GroupLassoClassifierCV(cv=5, n_alphas=3).fit(X, Y)
    want = np.mean([accuracy_score(Y[:, t], cv.predict(X)[:, t]) for t in range(3)])
    assert cv.score(X, Y) == pytest.approx(want)
    single = np.where(np.arange(60) == 3, "yes", "no")  # one positive: no fold can keep it
    with pytest.raises(ValueError, match="training fold keeps a single class of task 0"):
        ml.GroupLassoClassifierCV(cv=5, n_alphas=3).fit(X, np.column_stack([single, Y[:, 0]]))
