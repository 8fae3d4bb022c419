"""The School reproduction's code path, small: synthetic clustered tasks, 2 seeds, 3-point grids."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from bench_scripts import load_script

import multitask.linear as ml

S = load_script("reproduce_school")


def _clustered(n_tasks=20, n_per_task=30, n_features=4, seed=0):
    """Two clusters of tasks with opposite weight vectors: the pooled model is ~0."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n_features) * 3
    frames, ys = [], []
    for t in range(n_tasks):
        X = rng.standard_normal((n_per_task, n_features))
        sign = 1.0 if t % 2 else -1.0
        ys.append(
            X @ (sign * w + 0.1 * rng.standard_normal(n_features)) + rng.normal(0, 1, n_per_task)
        )
        frames.append(pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)]).assign(task=t))
    return SimpleNamespace(
        X=pd.concat(frames, ignore_index=True), y=np.concatenate(ys), task_col="task"
    )


MTL = ["mean-regularised", "clustered (cMTL, k=3)", "L21 (group lasso) around pooled"]


def test_mtl_beats_pooled_on_clustered_tasks_and_results_are_cached(tmp_path, monkeypatch):
    # grid extensions are tested below; here they would triple the time (cMTL at alpha 1e4)
    monkeypatch.setattr(S.rc, "MAX_EXTENSIONS", 0)
    data = _clustered()
    names = [S.POOLED, *MTL]
    rows = S.run("ev", [0.5], [0, 1], names, tmp_path, 1e-4, "tiny", data=data)
    assert len(rows) == 2 * len(names)
    for seed in (0, 1):
        nmse = {r["method"]: r["nmse"] for r in rows if r["seed"] == seed}
        # pooled ridge cannot fit opposite clusters (nMSE ~ 1); each MTL model separates them
        assert nmse[S.POOLED] > 0.8
        for name in MTL:
            assert nmse[name] < 0.5, (name, nmse[name])
    for r in rows:  # chosen points come from the grids searched
        for param, value in r["best_params"].items():
            assert np.isclose(r["grids"][param], value).any()
    # a rerun reads every result back from the cache and computes nothing
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pytest.fail("recomputed a cached result"))
    again = S.run("ev", [0.5], [0, 1], names, tmp_path, 1e-4, "tiny", data=data)
    assert sorted(r["nmse"] for r in again) == sorted(r["nmse"] for r in rows)


def test_edge_choice_extends_the_grid_and_is_recorded(tmp_path):
    """Opposite clusters: pooled ridge's best fit is ~0, so CV picks its strongest alpha
    (10, the top of the grid); the rule extends the grid upwards until the choice is
    interior or the score is flat; the row records the final grid and the extensions."""
    data = _clustered()
    (row,) = S.run("ev", [0.5], [0], [S.POOLED], tmp_path, 1e-4, "tiny", data=data)
    initial = S.methods("tiny")[S.POOLED][1]
    assert row["extensions"]["alpha"] >= 1
    grid = row["grids"]["alpha"]
    assert max(grid) >= 10 * max(initial) and len(grid) == len(initial) + row["extensions"]["alpha"]
    assert row["best_params"]["alpha"] >= max(initial)
    assert S.rc.edge(row["best_params"]["alpha"], grid) == ""  # interior once extended
    assert row["edges"]["alpha"] == ""
    assert row["limits"] == {"alpha": "low"}  # pooled's low edge is the OLS limit


@pytest.mark.parametrize(
    ("kind", "estimator"),
    [("l21", ml.GroupLassoRegressor), ("trace", ml.TraceNormRegressor)],
)
def test_relative_grid_top_is_alpha_max(kind, estimator):
    """KKT oracle: at ``alpha_max`` of the grid the solution is exactly 0, just below it is not."""
    data = _clustered(n_tasks=6)
    X, y = data.X, data.y - data.y.mean()
    a_max = S.resolve((kind, [1.0]), S.gradient_at_zero(X, y, "task"))[0]
    fit = dict(task_col="task", fit_intercept=False, tol=1e-10)
    assert np.abs(estimator(a_max * 1.0001, **fit).fit(X, y).coef_).max() == 0.0
    assert np.abs(estimator(a_max * 0.9, **fit).fit(X, y).coef_).max() > 1e-6


def test_pooled_offset_at_strong_penalty_is_pooled_ridge():
    data = _clustered(n_tasks=6)
    X, y = data.X, data.y
    pooled = ml.PooledRidge(0.1, task_col="task", fit_intercept=False).fit(X, y)
    inner = ml.GroupLassoRegressor(task_col="task", fit_intercept=False)
    offset = S.PooledOffset(inner, pooled_alpha=0.1, alpha=1e6).fit(X, y)
    np.testing.assert_allclose(offset.predict(X), pooled.predict(X), atol=1e-10)


def test_inner_folds_keep_small_tasks_in_training():
    task = np.repeat([0, 1, 2], [3, 10, 12])
    folds = S.inner_folds(task, 3, 0)
    for train, test in folds:
        assert set(np.flatnonzero(task == 0)) <= set(train)
        assert not set(train) & set(test)
    held_out = np.sort(np.concatenate([te for _, te in folds]))
    np.testing.assert_array_equal(held_out, np.flatnonzero(task > 0))
