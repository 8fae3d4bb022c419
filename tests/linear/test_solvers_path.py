"""regularization_path and solve: alpha_max, warm starts equal cold solves."""

import numpy as np
import pytest

from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.penalties import L1, L21, SparseGroupLasso
from multitask.linear.solvers import alpha_max, choose_solver, regularization_path, solve


def _design(rng, n=90, p=10, T=3):
    X = rng.standard_normal((n, p)) + 0.2
    task = np.arange(n) % T
    W = np.zeros((p, T))
    W[:3] = rng.standard_normal((3, T))
    y = np.einsum("ij,ji->i", X, W[:, task]) + 0.5 * rng.standard_normal(n) + 1.0
    return make_design(X, y, task, T)


@pytest.mark.parametrize("factory", [L21, L1, lambda a: SparseGroupLasso(a, 0.05)])
def test_alpha_max_is_the_smallest_alpha_with_zero_solution(factory):
    rng = np.random.default_rng(0)
    df = Quadratic(_design(rng))
    top = alpha_max(df, factory)
    at = solve(df, factory(top * (1 + 1e-9)), tol=1e-12)
    below = solve(df, factory(top * 0.95), tol=1e-12)
    assert np.all(at.W == 0)
    assert np.any(below.W != 0)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_path_points_equal_cold_solves(loss):
    rng = np.random.default_rng(1)
    design = _design(rng)
    if loss == "logistic":
        y = np.where(design.y > np.median(design.y), 1.0, -1.0)
        design = make_design(design.X, y, design.task_idx, design.n_tasks)
        df = Logistic(design)
    else:
        df = Quadratic(design)
    path = regularization_path(df, L21, n_alphas=8, eps=1e-2, tol=1e-12)
    assert path.coefs.shape == (8, 10, 3)
    assert np.all(np.diff(path.alphas) < 0)
    assert np.max(np.abs(path.coefs[0])) < 1e-10  # zero at alpha_max (up to rounding)
    assert path.converged.all()
    for i in (3, 7):
        cold = solve(df, L21(path.alphas[i]), tol=1e-12)
        obj_path = df.value(path.coefs[i], path.intercepts[i]) + L21(path.alphas[i]).value(
            path.coefs[i]
        )
        assert obj_path == pytest.approx(cold.objective, rel=1e-8)


def test_path_with_given_alphas_sorts_them_and_validates():
    rng = np.random.default_rng(2)
    df = Quadratic(_design(rng))
    path = regularization_path(df, L1, alphas=[0.01, 0.1, 0.05], tol=1e-10)
    np.testing.assert_allclose(path.alphas, [0.1, 0.05, 0.01])
    with pytest.raises(ValueError, match="eps"):
        regularization_path(df, L1, eps=2.0)


def test_choose_solver_rules():
    rng = np.random.default_rng(3)
    small = Quadratic(_design(rng))
    assert choose_solver(small, L21(0.1))[0] == "fista"  # few features
    X = rng.standard_normal((50, 300))
    wide = Quadratic(make_shared_design(X, rng.standard_normal((50, 2))))
    assert choose_solver(wide, L21(0.1)) == ("bcd", False)  # p > n: working sets
    X = rng.standard_normal((2000, 100))
    tall = Quadratic(make_shared_design(X, rng.standard_normal((2000, 20))))
    assert choose_solver(tall, L21(0.1)) == ("bcd", True)  # n >> p: Gram kernel
    from multitask.linear.penalties import L1Inf, TraceNorm

    assert choose_solver(tall, L1Inf(0.1)) == ("fista", True)  # n >> p, no kernel: Gram FISTA

    assert choose_solver(wide, TraceNorm(0.1))[0] == "fista"  # not row-separable
