"""ADMM for the logistic loss with the trace norm or robust MTL (solvers/_admm_logistic.py).

Oracles: cvxpy's optimum of the same problem (CLARABEL, exponential cones, tight
tolerances); the duality gap must bound the distance to it, and any dual value (from any
``W``, not only ADMM's iterates) must lie below it; with the solver switched off
(``_solve._AUTO_ADMM``) FISTA stops short of it within the same iteration budget, so the
tests fail without the new path.
"""

import importlib
import warnings

import numpy as np
import pytest
from cvx_oracle import solve_reference
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

import multitask.linear.solvers._solve as solve_module
from multitask.linear import RobustMTLClassifier, TraceNormClassifier
from multitask.linear import penalties as P
from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Logistic
from multitask.linear.solvers import solve
from multitask.linear.solvers._admm_logistic import LogisticProblem

admm_module = importlib.import_module("multitask.linear.solvers.admm")
#: iteration budget of every solve: ADMM needs 100-450 here, FISTA far more
MAX_ITER = 1500


def _labels(rng, margins):
    y = np.where(margins + rng.standard_normal(margins.shape) > 0, 1.0, -1.0)
    y[..., 0], y[..., 1] = 1.0, -1.0  # both classes in every task
    return y


def _logistic_data(rng, shared, n_tasks=4, p=6, spread=2.0):
    """Tasks sharing a rank-2 model on columns scaled by 10^-spread .. 10^spread, labels
    in {-1, +1}; returns the per-task lists (for cvxpy) and the design."""
    scales = rng.permutation(np.logspace(-spread, spread, p))
    W = rng.standard_normal((p, 2)) @ rng.standard_normal((2, n_tasks)) / scales[:, None]
    if shared:
        X = (rng.standard_normal((80, p)) + 0.5) * scales
        Y = _labels(rng, (X @ W + np.linspace(-0.5, 0.5, n_tasks)).T).T
        return [X] * n_tasks, list(Y.T), make_shared_design(X, Y)
    Xs, ys = [], []
    for t in range(n_tasks):
        X = (rng.standard_normal((40 + 7 * t, p)) + 0.5) * scales
        Xs.append(X)
        ys.append(_labels(rng, X @ W[:, t] + 0.3 * t))
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    return Xs, ys, make_design(np.vstack(Xs), np.concatenate(ys), task, n_tasks)


PENALTIES = {
    "trace": lambda: P.TraceNorm(0.05),
    "robust": lambda: P.RobustMTL(0.05, 0.1),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_admm_reaches_cvxpy_on_badly_scaled_columns_where_fista_does_not(
    name, shared, fit_intercept, monkeypatch
):
    rng = np.random.default_rng(5)
    Xs, ys, design = _logistic_data(rng, shared)
    penalty = PENALTIES[name]()
    _, _, ref = solve_reference(Xs, ys, penalty, "logistic", fit_intercept)
    df = Logistic(design)
    assert admm_module.admm_pays(df, fit_intercept)  # "auto" takes ADMM here
    kw = dict(fit_intercept=fit_intercept, tol=1e-9, max_iter=MAX_ITER)
    res = solve(df, penalty, **kw)
    assert res.converged
    assert res.objective == pytest.approx(ref, rel=1e-6)
    assert np.any(res.W)  # not the trivial solution
    # the certificate is a true bound, up to cvxpy's own accuracy (1e-9 relative)
    gap = res.stop_crit * abs(res.objective)
    assert gap >= res.objective - ref - 1e-9 * abs(ref)
    if name == "trace":
        assert res.dual_gap == pytest.approx(gap, rel=1e-6)
    monkeypatch.setattr(solve_module, "_AUTO_ADMM", False)
    off = solve(df, penalty, **kw)  # FISTA, as before
    assert abs(off.objective - ref) > 1e-6 * abs(ref)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_any_dual_value_is_below_the_optimum(fit_intercept):
    """The dual point made from an arbitrary ``W`` (class-balanced, rescaled into the dual
    ball) is feasible: its value never exceeds cvxpy's optimum."""
    rng = np.random.default_rng(22)
    Xs, ys, design = _logistic_data(rng, False, spread=1.0)
    problem = LogisticProblem(Logistic(design), fit_intercept)
    for penalty in (P.TraceNorm(0.05), P.RobustMTL(0.05, 0.1)):
        W_ref, _, ref = solve_reference(Xs, ys, penalty, "logistic", fit_intercept)
        W_ref = W_ref if W_ref.ndim == 2 else W_ref.sum(axis=0)
        for scale in (1e-4, 1e-2, 1.0):  # near the optimum, and far from it
            W = W_ref * (1 + scale * rng.standard_normal(W_ref.shape))
            assert problem.dual(W, penalty) <= ref + 1e-9 * abs(ref)


def test_auto_takes_admm_only_on_badly_conditioned_features():
    rng = np.random.default_rng(23)
    _, _, plain = _logistic_data(rng, False, spread=0.0)
    _, _, scaled = _logistic_data(rng, False)
    assert not admm_module.admm_pays(Logistic(plain))
    assert admm_module.admm_pays(Logistic(scaled))
    assert admm_module.admm_pays(Logistic(scaled), fit_intercept=False)


def test_admm_on_well_conditioned_columns_matches_fista():
    """Where FISTA converges, both solvers give the same optimum; a warm start from
    another alpha reaches the cold solve's optimum."""
    rng = np.random.default_rng(24)
    _, _, design = _logistic_data(rng, False, spread=0.0)
    df = Logistic(design)
    for penalty in (P.TraceNorm(0.05), P.RobustMTL(0.05, 0.1)):
        a = solve(df, penalty, tol=1e-12, max_iter=5000, solver="admm")
        f = solve(df, penalty, tol=1e-12, max_iter=20000, solver="fista")
        assert a.converged
        assert a.objective == pytest.approx(f.objective, rel=1e-9)
    first = solve(df, P.TraceNorm(0.01), tol=1e-10, solver="admm")
    cold = solve(df, P.TraceNorm(0.05), tol=1e-10, solver="admm")
    warm = solve(df, P.TraceNorm(0.05), first.W, first.intercept, tol=1e-10, solver="admm")
    assert warm.converged and warm.objective == pytest.approx(cold.objective, rel=1e-9)


@pytest.mark.parametrize("cls", [TraceNormClassifier, RobustMTLClassifier])
def test_classifier_converges_on_badly_scaled_columns_without_a_warning(cls, monkeypatch):
    rng = np.random.default_rng(25)
    Xs, ys, _ = _logistic_data(rng, False)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    X = np.column_stack([np.vstack(Xs), task])
    y = np.concatenate(ys)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = cls(alpha=0.05, task_col=-1, max_iter=MAX_ITER).fit(X, y)
    assert model.stop_crit_ <= model.tol
    monkeypatch.setattr(solve_module, "_AUTO_ADMM", False)
    with pytest.warns(ConvergenceWarning):
        cls(alpha=0.05, task_col=-1, max_iter=MAX_ITER).fit(X, y)


def test_sample_weights_reach_cvxpy():
    """Row weights enter the padded layout's ``d_i`` (and the dual's entropy weights)."""
    rng = np.random.default_rng(26)
    Xs, ys, design = _logistic_data(rng, False)
    weights = [rng.uniform(0.5, 2.0, len(y)) for y in ys]
    weighted = make_design(
        design.X, design.y, design.task_idx, design.n_tasks, np.concatenate(weights)
    )
    for penalty in (P.TraceNorm(0.05), P.RobustMTL(0.05, 0.1)):
        _, _, ref = solve_reference(Xs, ys, penalty, "logistic", True, sample_weight=weights)
        res = solve(Logistic(weighted), penalty, tol=1e-9, max_iter=MAX_ITER, solver="admm")
        assert res.converged
        assert res.objective == pytest.approx(ref, rel=1e-6)
        assert res.stop_crit * abs(res.objective) >= res.objective - ref - 1e-9 * abs(ref)


def test_certificate_intercepts_are_optimal_from_far_starts():
    """The intercepts of the primal value and dual point: the derivative in ``b`` vanishes
    (first-order optimality of a convex 1-D problem) from starts far from the optimum
    and at huge margins, where an undamped Newton step overflows."""
    rng = np.random.default_rng(27)
    _, _, design = _logistic_data(rng, False)
    problem = LogisticProblem(Logistic(design), True)
    for scale in (1.0, 1e4):
        W = rng.standard_normal((6, 4)) * scale
        for start in (0.0, 1e6, -1e6):
            problem.wq[:, -1] = start
            b = problem.intercept(W)
            z = problem.yp * (problem._margins(np.vstack([W, b]).T))
            grad_b = -np.sum(problem.dp * problem.yp * expit(-z), axis=1)
            assert np.all(np.isfinite(b)) and np.max(np.abs(grad_b)) <= 1e-12
