"""The School reproduction's code path, small: synthetic clustered tasks, 2 seeds, 3-point grids."""

import json
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


def _ridge_cv_by_hand(X_tr, y_tr, alpha, seed):
    """3-fold CV of pooled ridge from scratch: sklearn folds stratified by task, normal
    equations of ``1/(2n) ||y - X w||^2 + alpha ||w||^2``, mean of minus the fold MSEs."""
    from sklearn.model_selection import StratifiedKFold

    task = X_tr["task"].to_numpy()
    F = X_tr.drop(columns="task").to_numpy(float)
    y = y_tr - y_tr.mean()
    scores = []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=seed).split(F, task):
        n = len(tr)
        A = F[tr].T @ F[tr] / n + 2 * alpha * np.eye(F.shape[1])
        w = np.linalg.solve(A, F[tr].T @ y[tr] / n)
        scores.append(-np.mean((y[te] - F[te] @ w) ** 2))
    return float(np.mean(scores))


def test_recorded_cv_score_is_the_hand_computed_3_fold_score(tmp_path):
    data = _clustered(n_tasks=6)
    (row,) = S.run("ev", [0.5], [1], [S.POOLED], tmp_path, 1e-4, "tiny", data=data)
    X_tr, _, y_tr, _, _ = S.load_split(0.5, 1, data=data)
    expected = _ridge_cv_by_hand(X_tr, y_tr, row["best_params"]["alpha"], seed=1)
    assert row["cv_score_source"] == "search"
    assert np.isclose(row["cv_score"], expected, rtol=1e-8, atol=0)
    # the backfill recomputes the same score (and the same test nMSE) at the chosen point
    cv, nmse = S.point_score(row, S.load_split(0.5, 1, data=data))
    assert np.isclose(cv, expected, rtol=1e-8, atol=0) and nmse == row["nmse"]
    # at a strength where the ridge matters (the chosen 1e4 is ~ the zero model); the
    # solver is iterative: at the search's tol 1e-4 the score is off by ~1e-5 relative
    cv, _ = S.point_score(
        {**row, "best_params": {"alpha": 0.05}, "tol": 1e-12}, S.load_split(0.5, 1, data=data)
    )
    assert np.isclose(cv, _ridge_cv_by_hand(X_tr, y_tr, 0.05, seed=1), rtol=1e-8, atol=0)
    # and writes it into a cached row that lacked it
    path = S.rc.result_path(tmp_path, "ev", 0.5, 1, S.POOLED)
    path.write_text(json.dumps({k: v for k, v in row.items() if k != "cv_score"}))
    S.backfill(tmp_path, "ev", data=data)
    again = json.loads(path.read_text())
    assert np.isclose(again["cv_score"], expected, rtol=1e-8, atol=0)
    assert again["cv_score_source"].startswith("backfill")


def _row(method, seed, cv_score, nmse, ratio=0.1):
    return {
        "protocol": "nmse",
        "method": method,
        "train_ratio": ratio,
        "seed": seed,
        "cv_score": cv_score,
        "nmse": nmse,
    }


def test_choose_variant_follows_the_cv_score_not_the_test_score():
    family = "trace norm"
    rows = [
        # seed 0: plain has the better CV score but the worse test nMSE -> plain
        _row(family, 0, -1.0, 0.80),
        _row(family + " around pooled", 0, -2.0, 0.60),
        # seed 1: around pooled has the better CV score and the worse test nMSE -> around
        _row(family, 1, -3.0, 0.50),
        _row(family + " around pooled", 1, -1.5, 0.70),
        # seed 2: no around-pooled row; seed 3: no cv_score (not backfilled) -> no joint row
        _row(family, 2, -1.0, 0.5),
        _row(family, 3, -1.0, 0.5),
        {k: v for k, v in _row(family + " around pooled", 3, 0.0, 0.5).items() if k != "cv_score"},
    ]
    picked = S.rc.choose_variant(rows, [family])
    assert [(r["seed"], r["variant"], r["nmse"]) for r in picked] == [
        (0, "plain", 0.80),
        (1, "around pooled", 0.70),
    ]
    assert {r["method"] for r in picked} == {"trace norm (centring chosen by CV)"}
    np.testing.assert_allclose([r["cv_margin"] for r in picked], [-1.0, 1.5])
    table = S.rc.variant_counts(picked, rows, "nmse", lower_is_better=True)
    assert table.splitlines()[-1] == (
        "| trace norm (centring chosen by CV) | 0.1 | 1/2 | 1/2 | +0.25 | 0/2 |"
    )


def test_the_centring_choice_uses_training_rows_only():
    """Changing the test targets changes the test nMSE but neither the CV scores nor the
    chosen parametrisation: the choice sees training rows only."""
    data = _clustered(n_tasks=8)
    X_tr, X_te, y_tr, y_te, tc = S.load_split(0.5, 0, data=data)
    pooled = S.evaluate(
        {"protocol": "ev", "ratio": 0.5, "seed": 0, "method": S.POOLED},
        (X_tr, X_te, y_tr, y_te, tc),
        1e-4,
        "tiny",
    )
    alpha = pooled["best_params"]["alpha"]
    names = ["L21 (group lasso)", "L21 (group lasso) around pooled"]
    y_other = y_te[::-1] + 50.0  # the test targets of another world
    runs = []
    for targets in (y_te, y_other):
        rows = [
            S.evaluate(
                {"protocol": "ev", "ratio": 0.5, "seed": 0, "method": m},
                (X_tr, X_te, y_tr, targets, tc),
                1e-4,
                "tiny",
                alpha,
            )
            for m in names
        ]
        runs.append((rows, S.rc.choose_variant(rows, ["L21 (group lasso)"])))
    (rows_a, (pick_a,)), (rows_b, (pick_b,)) = runs
    assert [r["cv_score"] for r in rows_a] == [r["cv_score"] for r in rows_b]
    assert pick_a["variant"] == pick_b["variant"]
    assert pick_a["best_params"] == pick_b["best_params"]
    assert pick_a["nmse"] != pick_b["nmse"]


def test_verdict_lists_the_models_below_the_reference():
    rows = [
        _row(S.POOLED, 0, 0, 0.60),
        _row(S.POOLED, 1, 0, 0.70),
        _row("good", 0, 0, 0.55),
        _row("good", 1, 0, 0.70001),  # equal within 1e-4 relative
        _row("bad", 0, 0, 0.50),
        _row("bad", 1, 0, 0.90),  # mean +0.05 nMSE above pooled, worse on 1 of 2 seeds
    ]
    table = S.rc.verdict(rows, "nmse", ["good", "bad"], S.POOLED, lower_is_better=True)
    assert table.splitlines()[-1] == "| 0.1 | no: bad (+0.0500) | no: bad (1/2 seeds) |"
    table = S.rc.verdict(rows, "nmse", ["good"], S.POOLED, lower_is_better=True)
    assert table.splitlines()[-1] == "| 0.1 | yes | yes |"
