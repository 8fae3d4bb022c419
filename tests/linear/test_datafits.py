"""Datafits: values against per-task loops, gradients against finite differences,
Lipschitz bounds against eigenvalues, duality gap sign and convergence."""

import numpy as np
import pytest
import scipy.sparse as sp

from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.penalties import L1, L21, L1Inf, TraceNorm
from multitask.linear.solvers import fista

P, T = 5, 3


def _problem(kind, loss, rng, sparse=False, weighted=True):
    n = 90
    X = rng.standard_normal((n, P)) + 0.5
    if sparse:
        X[rng.random((n, P)) < 0.5] = 0.0
        X = sp.csr_matrix(X)
    s = rng.uniform(0.5, 2.0, n) if weighted else None
    if kind == "shared":
        Y = rng.standard_normal((n, T))
        Y = np.sign(Y) if loss == "logistic" else Y
        return make_shared_design(X, Y, s)
    task = np.arange(n) % T
    y = rng.standard_normal(n)
    y = np.sign(y) if loss == "logistic" else y
    return make_design(X, y, task, T, s)


def _loop_value(design, loss, W, b):
    """Independent per-task computation of the contract's objective."""
    X = design.X.toarray() if sp.issparse(design.X) else design.X
    total = 0.0
    for t in range(design.n_tasks):
        if design.shared:
            rows, y = np.arange(design.n_samples), design.y[:, t]
        else:
            rows = np.flatnonzero(design.task_idx == t)
            y = design.y[rows]
        w = design.weights[rows] / design.weights[rows].sum()
        m = X[rows] @ W[:, t] + b[t]
        total += np.sum(w * (0.5 * (y - m) ** 2 if loss == "squared" else np.log1p(np.exp(-y * m))))
    return total


CASES = [
    (kind, loss, sparse)
    for kind in ("shared", "per_task")
    for loss in ("squared", "logistic")
    for sparse in (False, True)
]


def _datafits(design, loss):
    if loss == "logistic":
        return [Logistic(design)]
    return [Quadratic(design, use_gram=False), Quadratic(design, use_gram=True)]


@pytest.mark.parametrize(("kind", "loss", "sparse"), CASES)
def test_value_and_gradient(kind, loss, sparse):
    rng = np.random.default_rng(0)
    design = _problem(kind, loss, rng, sparse)
    W, b = rng.standard_normal((P, T)), rng.standard_normal(T)
    for df in _datafits(design, loss):
        assert df.value(W, b) == pytest.approx(_loop_value(design, loss, W, b), rel=1e-12)
        gW, gb = df.gradient(W, b)
        eps = 1e-6
        for j, t in [(0, 0), (3, 2), (4, 1)]:
            E = np.zeros_like(W)
            E[j, t] = eps
            fd = (df.value(W + E, b) - df.value(W - E, b)) / (2 * eps)
            assert gW[j, t] == pytest.approx(fd, rel=1e-6, abs=1e-8)
        e = np.zeros(T)
        e[1] = eps
        fd = (df.value(W, b + e) - df.value(W, b - e)) / (2 * eps)
        assert gb[1] == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize(("kind", "loss", "sparse"), CASES)
def test_lipschitz_bounds_the_largest_eigenvalue(kind, loss, sparse):
    rng = np.random.default_rng(1)
    design = _problem(kind, loss, rng, sparse)
    X = design.X.toarray() if sp.issparse(design.X) else design.X
    eig = []
    for t in range(T):
        rows = np.arange(design.n_samples) if design.shared else design.task_idx == t
        w = design.weights[rows]
        eig.append(np.linalg.eigvalsh(X[rows].T @ (w[:, None] * X[rows]))[-1])
    curv = 0.25 if loss == "logistic" else 1.0
    for df in _datafits(design, loss):
        L = df.lipschitz()
        assert L >= curv * max(eig) * (1 - 1e-12)
        assert L <= curv * max(eig) * (1 + 1e-6)  # and tight
        np.testing.assert_allclose(df.lipschitz_per_task(), curv * np.array(eig), rtol=1e-6)
        assert df.lipschitz(fit_intercept=True) >= L


def test_centered_quadratic_is_the_profiled_objective():
    rng = np.random.default_rng(2)
    for kind in ("shared", "per_task"):
        design = _problem(kind, "squared", rng)
        W = rng.standard_normal((P, T))
        df = Quadratic(design)
        b = df.intercept_optimal(W)
        assert np.allclose(df.gradient(W, b)[1], 0.0, atol=1e-12)
        assert df.centered().value(W) == pytest.approx(df.value(W, b), rel=1e-12)
        np.testing.assert_allclose(df.centered().gradient(W)[0], df.gradient(W, b)[0], atol=1e-12)


def test_logistic_intercept_optimal_zeroes_the_intercept_gradient():
    rng = np.random.default_rng(3)
    df = Logistic(_problem("per_task", "logistic", rng))
    W = rng.standard_normal((P, T))
    b = df.intercept_optimal(W)
    assert np.max(np.abs(df.gradient(W, b)[1])) < 1e-10


def test_logistic_rejects_01_labels():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="-1, \\+1"):
        Logistic(make_design(X, np.array([0.0, 1, 0, 1]), np.array([0, 0, 1, 1]), 2))


@pytest.mark.parametrize("penalty", [L1(0.02), L21(0.05), L1Inf(0.05), TraceNorm(0.05)])
@pytest.mark.parametrize("kind", ["shared", "per_task"])
def test_duality_gap_is_nonnegative_and_vanishes_at_the_optimum(penalty, kind):
    rng = np.random.default_rng(4)
    design = _problem(kind, "squared", rng)
    df = Quadratic(design)
    for _ in range(5):
        W = rng.standard_normal((P, T)) * rng.choice([0.0, 0.1, 1.0])
        gap, primal, dual = df.duality_gap(W, penalty)
        assert gap >= -1e-12
        assert primal == pytest.approx(df.value(W) + penalty.value(W))
    res = fista(df, penalty, fit_intercept=False, tol=1e-13, max_iter=50000)
    gap, primal, dual = df.duality_gap(res.W, penalty)
    assert -1e-14 <= gap <= 1e-10 * primal
    # the dual value lower-bounds every primal value (weak duality)
    for _ in range(5):
        W = rng.standard_normal((P, T))
        assert df.value(W) + penalty.value(W) >= dual - 1e-12
    # with an intercept: gap of the centred (profiled) problem
    res = fista(df, penalty, fit_intercept=True, tol=1e-13, max_iter=50000)
    gap_c, primal_c, _ = df.duality_gap(res.W, penalty, b=res.intercept)
    assert -1e-14 <= gap_c <= 1e-10 * primal_c


def test_duality_gap_is_none_where_undefined():
    rng = np.random.default_rng(5)
    design = _problem("per_task", "logistic", rng)
    assert Logistic(design).duality_gap(np.zeros((P, T)), L21(0.1)) is None


@pytest.mark.parametrize(("n", "p"), [(500, 450), (60, 120)])
def test_lanczos_lipschitz_bounds_the_largest_eigenvalue(n, p):
    """Large shared designs use Lanczos (Gram or data operator) instead of eigvalsh."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((n, p)) + 0.3
    design = make_shared_design(X, rng.standard_normal((n, 2)))
    Xc = X - X.mean(axis=0)
    for df, A in [(Quadratic(design), X), (Quadratic(design).centered(), Xc)]:
        top = np.linalg.eigvalsh(A.T @ A / n)[-1]
        assert top * (1 - 1e-12) <= df.lipschitz() <= top * (1 + 1e-6)


@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_logistic_intercept_is_optimal_from_far_starts(scale):
    """Logistic.intercept_optimal for a fixed ``W`` far from the data's own (margins of
    1e2..1e4): the derivative in each ``b_t`` vanishes, from ``b = 0`` and from ``b = +-1e6``.
    An undamped Newton step jumps where the curvature is ~0 (all margins saturated) and ran
    off to ``|b| ~ 1e11`` here."""
    rng = np.random.default_rng(3)
    design = _problem("per_task", "logistic", rng)
    df = Logistic(design)
    W = scale * rng.standard_normal((design.n_features, design.n_tasks))
    for b0 in (None, np.full(design.n_tasks, 1e6), np.full(design.n_tasks, -1e6)):
        b = df.intercept_optimal(W, b0)
        assert np.all(np.isfinite(b))
        assert np.max(np.abs(df.gradient(W, b)[1])) <= 1e-10
