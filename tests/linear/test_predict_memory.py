"""Scoring rows under their task's model in memory proportional to the input: a sparse X is
scored entry by entry (it built a dense ``(n_samples, n_features)`` array: 800 MB for a 1.5 MB
matrix), a dense one in blocks of rows. Oracle: one matrix-vector product per task."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from multitask.linear import GroupLassoClassifier, GroupLassoRegressor, _base


def _long(n=3000, p=2000, n_tasks=6, density=2e-3, seed=0):
    rng = np.random.default_rng(seed)
    features = sp.random(n, p, density=density, format="csr", random_state=seed)
    task = rng.integers(0, n_tasks, n)
    y = np.asarray(features[:, :10].sum(1)).ravel() + 0.1 * rng.standard_normal(n)
    return sp.hstack([sp.csr_array(task[:, None].astype(float)), features], format="csr"), task, y


def _per_task(model, features, task):
    codes = np.searchsorted(model.tasks_, task)
    out = np.empty(features.shape[0])
    for t in range(len(model.tasks_)):
        rows = codes == t
        out[rows] = features[rows] @ model.coef_[t] + model.intercept_[t]
    return out


def test_sparse_prediction_is_exact_and_never_densifies():
    X, task, y = _long()
    model = GroupLassoRegressor(alpha=1e-3, task_col=0, tol=1e-6).fit(X, y)
    features = X[:, 1:].tocsr()
    tracemalloc.start()
    pred = model.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(pred, _per_task(model, features, task), rtol=1e-12, atol=1e-12)
    dense_bytes = features.shape[0] * features.shape[1] * 8
    assert peak < dense_bytes / 10, (peak, dense_bytes)  # it was over dense_bytes
    np.testing.assert_allclose(  # csc: the same scores as dense
        model.predict(X.tocsc()), model.predict(X.toarray()), rtol=1e-12, atol=1e-12
    )


def test_duplicate_entries_add_up_as_in_the_matrix():
    # the same (row, column) stored twice means their sum, as in the matrix's own product
    data, indices, indptr = np.array([1.0, 2.0, 0.5]), np.array([1, 1, 0]), np.array([0, 2, 3])
    features = sp.csr_array((data, indices, indptr), shape=(2, 2))
    coef, codes = np.array([[10.0, 100.0], [1.0, 3.0]]), np.array([0, 1])
    np.testing.assert_array_equal(_base.row_scores(features, coef, codes), [300.0, 0.5])
    np.testing.assert_array_equal(_base.row_scores(features.toarray(), coef, codes), [300.0, 0.5])


def test_dense_rows_are_scored_in_blocks(monkeypatch):
    X, task, y = _long(n=500, p=40, density=0.3)
    dense = X.toarray()
    model = GroupLassoRegressor(alpha=1e-3, task_col=0).fit(dense, y)
    whole = model.predict(dense)
    np.testing.assert_allclose(whole, _per_task(model, dense[:, 1:], task), rtol=1e-12)
    monkeypatch.setattr(_base, "_SCORE_BLOCK", 7 * 40 + 3)  # blocks of 7 rows, a ragged last
    np.testing.assert_array_equal(model.predict(dense), whole)


@pytest.mark.parametrize("form", ["csr", "dense"])
def test_classifier_scores_follow_the_same_path(form):
    X, task, y = _long(n=800, p=300, density=0.02)
    X = X if form == "csr" else X.toarray()
    labels = (y > np.median(y)).astype(int)
    model = GroupLassoClassifier(alpha=1e-3, task_col=0).fit(X, labels)
    features = X[:, 1:]
    scores = _per_task(model, features.tocsr() if form == "csr" else features, task)
    np.testing.assert_allclose(model.decision_function(X), scores, rtol=1e-12, atol=1e-12)
