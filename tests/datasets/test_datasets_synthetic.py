"""Synthetic generators: the ground truth has the promised structure, the data follows it."""

from __future__ import annotations

import numpy as np
import pytest

from multitask.datasets import (
    MultiTaskData,
    make_clustered,
    make_low_rank,
    make_mmoe,
    make_row_sparse,
    make_task_covariance,
)


def _residuals(data: MultiTaskData, W: np.ndarray) -> np.ndarray:
    """y - x . w_task, computed task by task (an independent loop)."""
    X, y, task = data.arrays()
    out = np.empty_like(y)
    for t in data.tasks:
        rows = task == t
        out[rows] = y[rows] - X[rows] @ W[:, t]
    return out


def test_row_sparse_support_and_noise():
    data, truth = make_row_sparse(200, 30, 6, 4, noise=0.1, seed=1)
    W = truth["W"]
    assert W.shape == (30, 6)
    np.testing.assert_array_equal(np.flatnonzero(np.abs(W).sum(axis=1)), truth["support"])
    assert np.all(W[truth["support"]] != 0)
    r = _residuals(data, W)
    assert data.n_tasks == 6 and (data.task_sizes() == 200).all()
    assert abs(r.std() - 0.1) < 0.01 and abs(r.mean()) < 0.01


def test_shared_design_returns_X_Y():
    (X, Y), truth = make_row_sparse(500, 10, 3, 2, noise=0.05, shared_design=True)
    assert X.shape == (500, 10) and Y.shape == (500, 3)
    assert abs((Y - X @ truth["W"]).std() - 0.05) < 0.005


def test_unequal_task_sizes():
    data, _ = make_low_rank([5, 17, 40], 8, 3, 1)
    assert data.task_sizes().tolist() == [5, 17, 40]


def test_low_rank_has_the_rank():
    data, truth = make_low_rank(60, 25, 10, 3, seed=2)
    assert np.linalg.matrix_rank(truth["W"]) == 3
    np.testing.assert_allclose(truth["W"], truth["U"] @ truth["V"].T)
    assert abs(_residuals(data, truth["W"]).std() - 0.1) < 0.02


def test_clustered_tasks_sit_near_their_center():
    _, truth = make_clustered(20, 400, 12, 3, cluster_std=0.1, seed=3)
    W, c = truth["W"], truth["clusters"]
    assert np.bincount(c).tolist() == [4, 4, 4]
    dev = W - truth["centers"][:, c]
    assert abs(dev.std() - 0.1) < 0.01
    # nearest center of every task is its own
    d = ((W[:, :, None] - truth["centers"][:, None, :]) ** 2).sum(axis=0)
    np.testing.assert_array_equal(d.argmin(axis=1), c)


def test_task_covariance_is_reproduced():
    cov = np.array([[1.0, 0.8, -0.3], [0.8, 1.0, 0.0], [-0.3, 0.0, 0.5]])
    _, truth = make_task_covariance(cov, 10, 40_000, seed=4)
    emp = truth["W"].T @ truth["W"] / 40_000
    np.testing.assert_allclose(emp, cov, atol=0.03)


def test_task_covariance_rejects_bad_matrix():
    with pytest.raises(ValueError, match="semi-definite"):
        make_task_covariance(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        make_task_covariance(np.array([[1.0, 0.5], [0.0, 1.0]]))


def test_binary_labels_follow_the_logistic_model():
    data, truth = make_row_sparse(4000, 5, 2, 2, kind="binary", seed=5)
    X, y, task = data.arrays()
    z = np.einsum("ij,ji->i", X, truth["W"][:, task])
    p = 1 / (1 + np.exp(-z))
    assert set(np.unique(y)) == {0, 1} and data.kind == "binary"
    assert abs(y.mean() - p.mean()) < 0.02
    assert y[p > 0.9].mean() > 0.85 and y[p < 0.1].mean() < 0.15


def test_generators_are_seeded():
    a, _ = make_clustered(seed=9)
    b, _ = make_clustered(seed=9)
    c, _ = make_clustered(seed=10)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)


@pytest.mark.parametrize("p", [-0.5, 0.0, 0.5, 0.9])
def test_mmoe_linear_parts_have_the_correlation(p):
    X, Y, truth = make_mmoe(100_000, 50, correlation=p, seed=1, return_truth=True)
    U, W = truth["U"], truth["W"]
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-12)  # orthogonal unit vectors
    np.testing.assert_allclose(W[:, 0], U[:, 0])  # c = 1
    np.testing.assert_allclose(W[:, 1], p * U[:, 0] + np.sqrt(1 - p**2) * U[:, 1])
    linear = X @ W
    assert np.corrcoef(linear.T)[0, 1] == pytest.approx(p, abs=0.01)
    assert Y.shape == (100_000, 2)


def test_mmoe_follows_the_formula():
    X, Y, t = make_mmoe(20_000, 20, 0.3, m=10, c=2.0, seed=2, return_truth=True)
    # y_k = w_k^T x + sum_i sin(alpha_i w_k^T x + beta_i) + eps, written out term by term
    clean = np.zeros_like(Y)
    for k in range(2):
        lin = X @ t["W"][:, k]
        clean[:, k] = lin
        for a, b in zip(t["alpha"], t["beta"], strict=True):
            clean[:, k] += np.sin(a * lin + b)
    eps = Y - clean
    assert abs(eps.std() - 0.1) < 0.003  # N(0, 0.01): variance 0.01
    assert abs(eps.mean()) < 0.003
    assert abs(np.corrcoef(eps.T)[0, 1]) < 0.03  # independent noise per task
    np.testing.assert_allclose(np.linalg.norm(t["W"], axis=0), 2.0)  # scale c


def test_mmoe_given_sine_parameters_and_seed():
    alpha, beta = np.full(3, 0.5), np.zeros(3)
    _, Y, t = make_mmoe(10, 5, m=3, alpha=alpha, beta=beta, seed=0, return_truth=True)
    np.testing.assert_array_equal(t["alpha"], alpha)
    _, Y2 = make_mmoe(10, 5, m=3, alpha=alpha, beta=beta, seed=0)
    np.testing.assert_array_equal(Y, Y2)
    with pytest.raises(ValueError, match="correlation"):
        make_mmoe(10, correlation=1.5)


def test_mmoe_more_tasks():
    X, _, t = make_mmoe(50_000, 30, 0.6, n_tasks=4, seed=3, return_truth=True)
    C = np.corrcoef((X @ t["W"]).T)
    assert C[0, 3] == pytest.approx(0.6, abs=0.02)
    assert C[1, 2] == pytest.approx(0.36, abs=0.02)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_tasks": 0}, "n_tasks=0 must be >= 1"),
        ({"n_samples": 10.7}, "n_samples must be an int or one int per task"),
        ({"n_samples": [10, 20]}, "one int per task \\(5\\)"),
        ({"n_samples": [10] * 5, "shared_design": True}, "n_samples is one int"),
        ({"n_samples": True}, "n_samples must be an int"),
    ],
)
def test_generator_sizes_are_checked(kwargs, message):
    """n_tasks=0 gave empty data, 10.7 samples became 10, a short list failed in numpy's
    broadcast and a list with shared_design=True in a bare TypeError."""
    with pytest.raises(ValueError, match=message):
        make_row_sparse(**kwargs)
    ok, _ = make_row_sparse(n_samples=[4, 5, 6, 7, 8])  # per-task lists, whole floats: valid
    assert ok.n_samples == 30 and make_row_sparse(n_samples=12.0)[0].n_samples == 60
