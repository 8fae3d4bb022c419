"""The Landmine reproduction's code path, small: synthetic binary tasks, 1 seed, 3-point grids."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
from bench_scripts import load_script
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

L = load_script("reproduce_landmine")


def _tasks(n_tasks=6, n_per_task=80, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n_features) * 2
    frames, ys = [], []
    for t in range(n_tasks):
        X = rng.standard_normal((n_per_task, n_features))
        z = X @ (w + 0.2 * rng.standard_normal(n_features)) - 1.5 + rng.logistic(size=n_per_task)
        ys.append((z > 0).astype(int))
        frames.append(pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)]).assign(task=t))
    return SimpleNamespace(
        X=pd.concat(frames, ignore_index=True), y=np.concatenate(ys), task_col="task"
    )


def test_mean_task_auc_is_the_average_of_sklearn_aucs():
    rng = np.random.default_rng(1)
    task = np.repeat([0, 1, 2], 20)
    y = rng.integers(0, 2, 60)
    y[40:] = 1  # task 2 has one class: skipped
    score = rng.standard_normal(60)
    expected = np.mean([roc_auc_score(y[task == t], score[task == t]) for t in (0, 1)])
    assert L.mean_task_auc(task, y, score) == expected


def test_split_is_stratified_per_task_and_label():
    data = _tasks()
    task = data.X["task"].to_numpy()
    train = L.split(task, data.y, 0.25, np.random.default_rng(0))
    for t in np.unique(task):
        for label in (0, 1):
            rows = (task == t) & (data.y == label)
            assert 2 <= train[rows].sum() < rows.sum()
            assert abs(train[rows].sum() - 0.25 * rows.sum()) <= 1


def test_run_scores_related_tasks_well_and_caches(tmp_path):
    data = _tasks()
    names = ["independent logistic", "mean-regularised logistic", "clustered logistic (k=2)"]
    rows = L.run(0.5, [0], names, tmp_path, 1e-4, "tiny", data=data)
    assert len(rows) == len(names)
    for r in rows:
        # the labels follow a linear logit with AUC near 0.9: every model must rank well
        assert r["mean_auc"] > 0.75, r
        for param, value in r["best_params"].items():
            assert np.isclose(r["grids"][param], value).any()
    assert len(list((tmp_path / "auc").glob("*.json"))) == len(names)


def test_pooled_logistic_is_one_logistic_regression_over_all_rows():
    """Oracle: scikit-learn's logistic regression on every row, task id dropped;
    ``1/n sum loss + alpha ||w||^2`` is its objective with ``C = 1 / (2 alpha n)``."""
    from sklearn.linear_model import LogisticRegression

    data = _tasks()
    alpha, n = 0.01, len(data.y)
    ours = L.PooledLogistic(alpha, task_col="task", tol=1e-10).fit(data.X, data.y)
    ref = LogisticRegression(C=1 / (2 * alpha * n), tol=1e-12, max_iter=10000)
    ref.fit(data.X.drop(columns="task"), data.y)
    np.testing.assert_allclose(
        ours.decision_function(data.X),
        ref.decision_function(data.X.drop(columns="task")),
        atol=1e-5,
    )


def test_recorded_cv_score_is_the_mean_fold_auc_at_the_choice(tmp_path):
    data = _tasks()
    (row,) = L.run(0.5, [0], ["pooled logistic"], tmp_path, 1e-8, "tiny", data=data)
    X_tr, _, y_tr, _, tc = L.load_split(0.5, 0, data=data)
    strata = 2 * X_tr[tc].to_numpy() + y_tr
    aucs = []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=0).split(X_tr, strata):
        est = L.PooledLogistic(row["best_params"]["alpha"], task_col=tc, tol=1e-8)
        est.fit(X_tr.iloc[tr], y_tr[tr])
        task = X_tr[tc].to_numpy()[te]
        aucs.append(L.mean_task_auc(task, y_tr[te], est.decision_function(X_tr.iloc[te])))
    assert np.isclose(row["cv_score"], np.mean(aucs), atol=1e-6)
