"""Variable-metric FISTA (the Jacobi row metric of solvers/_metric.py).

Oracles: scipy.optimize on one row for the prox with a per-row (per-entry) step; cvxpy's
optimum for solves on badly scaled designs, which the scalar step does not reach within
the same iteration budget (the tests fail with the metric off); the metric's constant
against a dense eigendecomposition of the whole scaled Hessian.
"""

import numpy as np
import pytest
from cvx_oracle import solve_reference
from scipy.optimize import minimize

from multitask.linear import penalties as P
from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.solvers import fista
from multitask.linear.solvers._metric import jacobi_metric

TREE = [[0], [1], [2], [3], [0, 1], [2, 3], [0, 1, 2, 3]]
ROW_PENALTIES = {
    "L1": lambda: P.L1(0.6),
    "L21": lambda: P.L21(0.9),
    "L1Inf": lambda: P.L1Inf(1.1),
    "SparseGroupLasso": lambda: P.SparseGroupLasso(0.7, 0.3),
    "TreeGroupLasso": lambda: P.TreeGroupLasso(0.6, TREE, [1.0, 0.6, 0.8, 1.3, 0.7, 0.4, 0.5]),
    "Dirty": lambda: P.Dirty(0.5, 1.2),
}
#: one step per row, two decades apart at the ends: a prox that used one step for all
#: rows (or the wrong row's) would be far from the brute-force rows
ROW_STEPS = np.array([0.05, 0.3, 1.0, 2.5, 5.0])[:, None]


def _row_function(penalty):
    """The function of one row (``2 T`` entries for the dirty model's two components)."""
    if penalty.n_components == 2:
        sparse, shared = P.L1(penalty.alpha), P.L1Inf(penalty.beta)
        return lambda z: sparse.value_row(z[: len(z) // 2]) + shared.value_row(z[len(z) // 2 :])
    return penalty.value_row


def _brute_force_row(f, v, step):
    """``argmin_z 1/2 ||z - v||^2 + step f(z)`` by Powell from three starts, the best kept."""

    def obj(z):
        return 0.5 * float(np.sum((z - v) ** 2)) + step * f(z)

    best = None
    for z0 in (v, np.zeros_like(v), 0.5 * v):
        opts = dict(xtol=1e-12, ftol=1e-15, maxfev=200000)
        res = minimize(obj, z0, method="Powell", options=opts)
        if best is None or res.fun < best.fun:
            best = res
    return best.x, obj


@pytest.mark.parametrize("name", ROW_PENALTIES)
def test_per_row_step_prox_matches_brute_force_rows(name):
    penalty = ROW_PENALTIES[name]()
    rng = np.random.default_rng(list(ROW_PENALTIES).index(name))
    shape = (len(ROW_STEPS), 4)
    V = rng.standard_normal((2, *shape) if penalty.n_components == 2 else shape) * 1.5
    Z = penalty.prox(V, ROW_STEPS)
    assert Z.shape == V.shape
    f = _row_function(penalty)
    for j, step in enumerate(ROW_STEPS[:, 0]):
        v = V[:, j].ravel() if V.ndim == 3 else V[j]
        z = Z[:, j].ravel() if Z.ndim == 3 else Z[j]
        ref, obj = _brute_force_row(f, v, step)
        assert obj(z) <= obj(ref) + 1e-12, (j, step)
        # the prox objective is 1-strongly convex: a near-minimiser is near the prox
        assert np.linalg.norm(z - ref) <= 1e-4 * max(1.0, np.linalg.norm(ref)), (j, step)


def test_per_row_steps_are_not_one_step():
    """The inputs above make per-row steps matter: one common step gives other rows."""
    penalty = P.L21(0.9)
    V = np.random.default_rng(1).standard_normal((len(ROW_STEPS), 4)) * 1.5
    Z = penalty.prox(V, ROW_STEPS)
    assert not np.allclose(Z, penalty.prox(V, float(ROW_STEPS.mean())))


def test_l1_per_entry_step_matches_brute_force_entries():
    penalty = P.L1(0.6)
    rng = np.random.default_rng(7)
    V = rng.standard_normal((4, 3)) * 1.5
    steps = rng.uniform(0.05, 3.0, V.shape)
    Z = penalty.prox(V, steps)
    for (j, t), step in np.ndenumerate(steps):
        ref, obj = _brute_force_row(lambda z: 0.6 * abs(z[0]), V[j, t : t + 1], step)
        assert obj(Z[j, t : t + 1]) <= obj(ref) + 1e-12
        assert abs(Z[j, t] - ref[0]) <= 1e-5


# ---------------------------------------------------------------- the metric itself
def _scaled_design(rng, loss, n_tasks=3, p=6, n_per=40, spread=2.0):
    """Per-task data with columns scaled by 10^-spread .. 10^spread (shuffled)."""
    scales = rng.permutation(np.logspace(-spread, spread, p))
    Xs, ys = [], []
    for t in range(n_tasks):
        X = (rng.standard_normal((n_per + 7 * t, p)) + 0.5) * scales
        w = rng.standard_normal(p) / scales
        z = X @ w + 0.5 * t + 0.5 * rng.standard_normal(len(X))
        ys.append(np.where(z > np.median(z), 1.0, -1.0) if loss == "logistic" else z)
        Xs.append(X)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    design = make_design(np.vstack(Xs), np.concatenate(ys), task, n_tasks)
    return Xs, ys, design


@pytest.mark.parametrize("per_task", [False, True])
@pytest.mark.parametrize("joint_b", [False, True])
def test_metric_constant_is_the_top_eigenvalue_of_the_scaled_hessian(per_task, joint_b):
    """``c`` against a dense eigendecomposition of the block-diagonal scaled Hessian."""
    rng = np.random.default_rng(3)
    Xs, _, design = _scaled_design(rng, "logistic")
    df = Logistic(design)
    metric = jacobi_metric(df, 0.0, 1, joint_b, per_task)
    tops = []
    for t, X in enumerate(Xs):
        A = np.column_stack([X, np.ones(len(X))]) if joint_b else X
        H = 0.25 * A.T @ A / len(X)
        m = metric.m[:, t if per_task else 0]
        d = np.append(m, metric.m_b[t]) if joint_b else m
        np.testing.assert_allclose(np.diag(H)[: len(m)] <= m * (1 + 1e-12), True)
        tops.append(np.linalg.eigvalsh(H / np.sqrt(np.outer(d, d)))[-1])
    assert metric.c == pytest.approx(max(tops), rel=1e-10)
    assert metric.m.shape == (6, 3 if per_task else 1)


def test_metric_pays_on_scaled_columns_not_on_standardised_ones():
    rng = np.random.default_rng(9)
    _, _, scaled = _scaled_design(rng, "squared")
    _, _, plain = _scaled_design(rng, "squared", spread=0.0)
    assert jacobi_metric(Quadratic(scaled).centered()).pays()
    assert not jacobi_metric(Quadratic(plain).centered()).pays()


def test_zero_column_gets_a_floored_metric_and_the_solve_still_converges():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 4))
    X[:, 2] = 0.0
    y = X @ rng.standard_normal(4) + rng.standard_normal(60)
    design = make_design(X, y, np.repeat([0, 1], 30), 2)
    metric = jacobi_metric(Quadratic(design).centered())
    assert np.all(metric.m > 0) and np.isfinite(metric.c)
    res = fista(Quadratic(design), P.L21(0.01), tol=1e-12, max_iter=5000)
    assert res.converged and np.all(res.W[2] == 0)


# ------------------------------------------------ solves on badly scaled designs
SOLVES = [
    # loss, fit_intercept, penalty, smooth
    ("squared", True, lambda: P.L21(0.05), None),
    ("squared", False, lambda: P.L1(0.05), None),
    ("squared", True, lambda: P.Dirty(0.05, 0.1), None),
    ("squared", True, lambda: P.L1(0.0), lambda: [P.Ridge(0.01)]),
    ("logistic", True, lambda: P.L21(0.01), None),
    ("logistic", False, lambda: P.L1Inf(0.02), None),
    ("logistic", True, lambda: P.L1(0.0), lambda: [P.MeanRegularized(0.05, 0.01)]),
]


@pytest.mark.parametrize(("loss", "fit_intercept", "make_pen", "make_smooth"), SOLVES)
def test_metric_reaches_cvxpy_on_badly_scaled_columns_where_the_scalar_step_does_not(
    loss, fit_intercept, make_pen, make_smooth
):
    rng = np.random.default_rng(5)
    Xs, ys, design = _scaled_design(rng, loss)
    penalty, smooth = make_pen(), make_smooth() if make_smooth else None
    pens = [penalty, *(smooth or [])]
    _, _, ref = solve_reference(Xs, ys, pens, loss, fit_intercept)
    df = Logistic(design) if loss == "logistic" else Quadratic(design)
    kw = dict(fit_intercept=fit_intercept, smooth=smooth, tol=1e-11, max_iter=3000)
    on = fista(df, penalty, **kw)
    off = fista(df, penalty, precondition=False, **kw)
    assert on.objective == pytest.approx(ref, rel=1e-6)
    assert on.objective <= ref * (1 + 1e-8) + 1e-12
    assert abs(off.objective - ref) > 1e-6 * abs(ref)  # the scalar step falls short


@pytest.mark.parametrize("use_gram", [False, True])
def test_metric_affine_loop_matches_the_general_loop(use_gram):
    """The fixed-step loop for the squared loss (forward points, weighted dots) and the
    general loop give the same solve in the metric (the general one through a smooth
    penalty of strength 0, which routes around the affine loop)."""
    rng = np.random.default_rng(6)
    _, _, design = _scaled_design(rng, "squared", n_tasks=30, p=3)
    df = Quadratic(design, use_gram=use_gram)
    assert jacobi_metric(df.centered()).pays()  # both solves run in the metric
    a = fista(df, P.L21(0.02), tol=1e-12, max_iter=5000)
    b = fista(df, P.L21(0.02), smooth=[P.Ridge(0.0)], tol=1e-12, max_iter=5000)
    assert a.converged and b.converged
    np.testing.assert_allclose(a.W, b.W, atol=1e-8 * np.abs(a.W).max())


def test_shared_design_logistic_metric_reaches_cvxpy():
    rng = np.random.default_rng(8)
    scales = np.logspace(-2, 2, 5)
    X = (rng.standard_normal((80, 5)) + 0.5) * scales
    Z = X @ (rng.standard_normal((5, 2)) / scales[:, None]) + 2.0 * rng.standard_normal((80, 2))
    Y = np.sign(Z)
    penalty = P.L21(0.01)
    _, _, ref = solve_reference([X, X], list(Y.T), penalty, "logistic", True)
    res = fista(Logistic(make_shared_design(X, Y)), penalty, tol=1e-11, max_iter=5000)
    assert res.objective == pytest.approx(ref, rel=1e-6)


def test_auto_keeps_the_scalar_iterates_where_the_metric_does_not_pay():
    rng = np.random.default_rng(10)
    _, _, design = _scaled_design(rng, "logistic", spread=0.0)
    df = Logistic(design)
    auto = fista(df, P.L21(0.01), tol=1e-9, max_iter=3000)
    off = fista(df, P.L21(0.01), tol=1e-9, max_iter=3000, precondition=False)
    forced = fista(df, P.L21(0.01), tol=1e-9, max_iter=3000, precondition=True)
    assert auto.n_iter == off.n_iter and np.array_equal(auto.W, off.W)
    assert forced.n_iter != off.n_iter  # the metric was possible, and is another path
    assert forced.objective == pytest.approx(off.objective, rel=1e-7)


def test_precondition_must_be_auto_or_a_bool():
    rng = np.random.default_rng(11)
    _, _, design = _scaled_design(rng, "squared")
    with pytest.raises(ValueError, match="precondition"):
        fista(Quadratic(design), P.L21(0.1), precondition="yes")


@pytest.mark.parametrize("penalty", [P.L21(0.05), P.SparseGroupLasso(0.05, 0.02)])
def test_shared_design_squared_metric_reaches_cvxpy(penalty):
    """The folded forward operator of a shared Gram matrix in the row metric."""
    rng = np.random.default_rng(12)
    scales = rng.permutation(np.logspace(-2, 2, 6))
    X = (rng.standard_normal((60, 6)) + 0.5) * scales
    Y = X @ (rng.standard_normal((6, 3)) / scales[:, None]) + rng.standard_normal((60, 3))
    _, _, ref = solve_reference([X] * 3, list(Y.T), penalty, "squared", True)
    df = Quadratic(make_shared_design(X, Y), use_gram=True)
    on = fista(df, penalty, tol=1e-11, max_iter=3000)
    off = fista(df, penalty, tol=1e-11, max_iter=3000, precondition=False)
    assert on.objective == pytest.approx(ref, rel=1e-6)
    assert abs(off.objective - ref) > 1e-6 * abs(ref)


def test_convergence_warning_says_what_to_do():
    """A fit stopped by max_iter names the remedies: more iterations, a looser tol, or
    standardised features."""
    from sklearn.exceptions import ConvergenceWarning

    from multitask.linear import TraceNormRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)) * np.array([1e-2, 1e-1, 1.0, 1e1, 1e2])
    Y = X @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((60, 3))
    with pytest.warns(ConvergenceWarning, match=r"max_iter or tol, or standardise the feature"):
        TraceNormRegressor(alpha=1e-3, max_iter=5).fit(X, Y)
