"""MultiTaskDesign: vectorised per-task products against explicit loops over tasks."""

import numpy as np
import pytest
import scipy.sparse as sp

from multitask.linear._design import make_design, make_shared_design


def _long(rng, n=120, p=6, T=4, sparse=False):
    X = rng.standard_normal((n, p))
    if sparse:
        X[rng.random((n, p)) < 0.6] = 0.0
    task = rng.integers(0, T, n)
    task[:T] = np.arange(T)  # every task has rows
    y = rng.standard_normal(n)
    return (sp.csr_matrix(X) if sparse else X), y, task


@pytest.mark.parametrize("sparse", [False, True])
def test_per_task_products_equal_a_loop_over_tasks(sparse):
    rng = np.random.default_rng(0)
    X, y, task = _long(rng, sparse=sparse)
    s = rng.uniform(0.5, 2.0, len(y))
    d = make_design(X, y, task, 4, sample_weight=s)
    Xd = X.toarray() if sparse else X
    W = rng.standard_normal((6, 4))
    R = rng.standard_normal(len(y))
    pred, grad = d.predict(W), d.rmatvec(R)
    for t in range(4):
        rows = task == t
        np.testing.assert_allclose(pred[rows], Xd[rows] @ W[:, t], atol=1e-12)
        np.testing.assert_allclose(grad[:, t], Xd[rows].T @ R[rows], atol=1e-12)
        wt = s[rows] / s[rows].sum()
        np.testing.assert_allclose(d.weights[rows], wt)
        np.testing.assert_allclose(d.gram[t], Xd[rows].T @ (wt[:, None] * Xd[rows]), atol=1e-12)
        np.testing.assert_allclose(d.xty[:, t], Xd[rows].T @ (wt * y[rows]), atol=1e-12)
        np.testing.assert_allclose(d.x_mean[:, t], Xd[rows].T @ wt, atol=1e-12)
        np.testing.assert_allclose(d.y_mean[t], wt @ y[rows])
    np.testing.assert_allclose(d.gram_matvec(W)[:, 1], d.gram[1] @ W[:, 1], atol=1e-12)


def test_2410_tasks_product_equals_loop():
    """Chem97-sized task count: one sparse product, same numbers as a loop."""
    rng = np.random.default_rng(1)
    T, p = 2410, 5
    task = np.concatenate([np.arange(T), rng.integers(0, T, 3 * T)])
    n = task.size
    X, y = rng.standard_normal((n, p)), rng.standard_normal(n)
    d = make_design(X, y, task, T)
    W, R = rng.standard_normal((p, T)), rng.standard_normal(n)
    pred, grad = d.predict(W), d.rmatvec(R)
    expected_grad = np.zeros((p, T))
    for t in range(T):
        rows = np.flatnonzero(task == t)
        np.testing.assert_allclose(pred[rows], X[rows] @ W[:, t], atol=1e-12)
        expected_grad[:, t] = X[rows].T @ R[rows]
    np.testing.assert_allclose(grad, expected_grad, atol=1e-12)


@pytest.mark.parametrize("weighted", [True, False])
def test_shared_design_products_and_gram(weighted):
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((50, 7)), rng.standard_normal((50, 3))
    s = rng.uniform(0.1, 1.0, 50) if weighted else np.ones(50)
    d = make_shared_design(X, Y, sample_weight=s if weighted else None)
    wt = s / s.sum()
    np.testing.assert_allclose(d.yty, wt @ Y**2, atol=1e-12)
    W = rng.standard_normal((7, 3))
    np.testing.assert_allclose(d.predict(W), X @ W)
    np.testing.assert_allclose(d.gram, X.T @ (wt[:, None] * X), atol=1e-12)
    np.testing.assert_allclose(d.xty, X.T @ (wt[:, None] * Y), atol=1e-12)
    np.testing.assert_allclose(d.y_mean, wt @ Y)
    sub = d.restrict(np.array([1, 4]))
    np.testing.assert_allclose(sub.gram, d.gram[np.ix_([1, 4], [1, 4])], atol=1e-12)


@pytest.mark.parametrize(
    ("task", "match"),
    [
        (np.array([0, 0, 2, 2]), "no rows"),
        (np.array([0, 1, 1, 3]), "task codes"),
        (np.array([0.0, 1.0, 1.0, 0.0]), "integer"),
    ],
)
def test_bad_task_codes_raise(task, match):
    X, y = np.ones((4, 2)), np.ones(4)
    with pytest.raises(ValueError, match=match):
        make_design(X, y, task, 3)


def test_bad_values_raise():
    X, y = np.ones((4, 2)), np.ones(4)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make_design(X, y, np.array([0, 0, 1, 1]), 2)
    with pytest.raises(ValueError, match="Y must have shape"):
        make_shared_design(np.ones((4, 2)), np.ones(4))
    with pytest.raises(ValueError, match="sample_weight"):
        make_shared_design(np.ones((4, 2)), np.ones((4, 2)), sample_weight=-np.ones(4))
