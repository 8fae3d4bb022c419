"""``dual_gap_``: a certificate that bounds the distance to the optimum."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso

from multitask.linear import (
    GroupLassoRegressor,
    L1InfRegressor,
    MeanRegularizedRegressor,
    TraceNormRegressor,
    TreeGroupLassoRegressor,
)


def _problem(seed=0, n=60, p=8, T=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((p, T))
    W[:3] = rng.standard_normal((3, T))
    return X, X @ W + 0.1 * rng.standard_normal((n, T))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gap_certifies_group_lasso_against_sklearn(fit_intercept):
    X, Y = _problem()
    ours = GroupLassoRegressor(alpha=0.05, fit_intercept=fit_intercept).fit(X, Y)
    ref = MultiTaskLasso(alpha=0.05, fit_intercept=fit_intercept, tol=1e-14, max_iter=100_000)
    ref.fit(X, Y)
    resid = Y - ref.predict(X)
    ref_obj = np.sum(resid**2) / (2 * len(X)) + 0.05 * np.sum(np.linalg.norm(ref.coef_, axis=0))
    assert ours.dual_gap_ >= 0.0
    # weak duality: the gap bounds the suboptimality, so primal - gap <= optimum <= primal
    assert ours.objective_ - ours.dual_gap_ <= ref_obj + 1e-12
    assert ours.dual_gap_ <= 1e-6 * ours.objective_


def test_gap_reported_for_l1inf_and_absent_without_one():
    X, Y = _problem(1)
    est = L1InfRegressor(alpha=0.05).fit(X, Y)
    assert 0.0 <= est.dual_gap_ <= 1e-6 * est.objective_
    smooth = MeanRegularizedRegressor(alpha=0.1, beta=0.01).fit(X, Y)
    assert not hasattr(smooth, "dual_gap_")  # no dual is defined: stopping is on the prox-gradient


def _per_task_data(p, seed=0, sizes=(160, 200, 140)):
    """Long-format data on which per-task least squares is the alpha = 0 solution."""
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(len(sizes)), sizes)
    F = rng.standard_normal((task.size, p)) * 3.0 + 1.0
    y = (F * rng.standard_normal((len(sizes), p))[task]).sum(1) + rng.standard_normal(task.size)
    return np.column_stack([task, F]), y, task, F


def _least_squares(task, F, y):
    """Per-task least squares with intercept (closed form): (coef, intercept, objective)."""
    coef, intercept, objective = [], [], 0.0
    for t in np.unique(task):
        A = np.column_stack([F[task == t], np.ones(np.sum(task == t))])
        sol = np.linalg.lstsq(A, y[task == t], rcond=None)[0]
        coef.append(sol[:-1])
        intercept.append(sol[-1])
        objective += np.sum((y[task == t] - A @ sol) ** 2) / (2 * np.sum(task == t))
    return np.array(coef), np.array(intercept), objective


_NORM_FAMILIES = [GroupLassoRegressor, L1InfRegressor, TraceNormRegressor, TreeGroupLassoRegressor]


@pytest.mark.parametrize("cls", _NORM_FAMILIES)
@pytest.mark.parametrize("alpha", [0.0, 1e-14])
@pytest.mark.parametrize("p", [4, 70])  # FISTA, and BCD's working sets (>= 64 features)
def test_alpha_zero_or_tiny_converges_to_least_squares(cls, alpha, p):
    # alpha = 0 is allowed: the rescaled dual point is then 0 and the relative gap stays 1
    # at the optimum; the solver must stop on another criterion, not run max_iter
    X, y, task, F = _per_task_data(p)
    coef, intercept, objective = _least_squares(task, F, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = cls(alpha=alpha, task_col=0, max_iter=3000).fit(X, y)
    assert est.stop_crit_ <= est.tol
    assert est.n_iter_ < est.max_iter
    assert est.objective_ == pytest.approx(objective, rel=1e-10)
    np.testing.assert_allclose(est.coef_, coef, atol=1e-5 * np.abs(coef).max())
    np.testing.assert_allclose(est.intercept_, intercept, atol=1e-5 * np.abs(intercept).max())


def test_gap_certifies_only_where_the_dual_point_can():
    from multitask.linear.datafits import gap_certifies
    from multitask.linear.penalties import L21

    grad0 = np.array([[3.0, -4.0], [1.0, 0.0]])  # alpha_max = 5
    assert gap_certifies(L21(0.05), grad0, 1e-8)
    assert not gap_certifies(L21(0.0), grad0, 1e-8)
    assert not gap_certifies(L21(1e-12), grad0, 1e-8)
    assert gap_certifies(L21(1e-12), grad0 * 1e-6, 1e-8)  # a relative floor
