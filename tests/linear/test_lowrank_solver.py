"""ADMM for the trace norm and robust MTL (solvers/admm.py) on badly scaled features.

Oracles: cvxpy's optimum of the same problem (CLARABEL, tight tolerances); the duality gap
must bound the distance to it; with the solver switched off (``_solve._AUTO_ADMM``) FISTA
stops short of it within the same iteration budget, so the tests fail without ADMM; the
dual norm of robust MTL's infimal convolution against its definition solved by cvxpy.
"""

import importlib
import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from cvx_oracle import solve_reference
from sklearn.exceptions import ConvergenceWarning

import multitask.linear.solvers._solve as solve_module
from multitask.linear import RobustMTLRegressor, TraceNormRegressor
from multitask.linear import penalties as P
from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.solvers import solve
from multitask.linear.solvers._admm_certificate import relative_dual_norm
from multitask.linear.solvers.admm import admm, admm_pays

#: the module (the package's ``admm`` attribute is the function)
admm_module = importlib.import_module("multitask.linear.solvers.admm")
#: iteration budget of every solve: ADMM needs 100-700 here, FISTA far more
MAX_ITER = 1500


def _low_rank_data(rng, shared, n_tasks=4, p=6, spread=2.0):
    """Tasks sharing a rank-2 model on columns scaled by 10^-spread .. 10^spread."""
    scales = rng.permutation(np.logspace(-spread, spread, p))
    W = rng.standard_normal((p, 2)) @ rng.standard_normal((2, n_tasks)) / scales[:, None]
    if shared:
        X = (rng.standard_normal((70, p)) + 0.5) * scales
        Y = X @ W + np.arange(n_tasks) + 0.5 * rng.standard_normal((70, n_tasks))
        return [X] * n_tasks, list(Y.T), make_shared_design(X, Y)
    Xs, ys = [], []
    for t in range(n_tasks):
        X = (rng.standard_normal((30 + 7 * t, p)) + 0.5) * scales
        ys.append(X @ W[:, t] + t + 0.5 * rng.standard_normal(len(X)))
        Xs.append(X)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    return Xs, ys, make_design(np.vstack(Xs), np.concatenate(ys), task, n_tasks)


PENALTIES = {
    "trace": lambda: P.TraceNorm(0.05),
    "robust": lambda: P.RobustMTL(0.05, 0.2),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_admm_reaches_cvxpy_on_badly_scaled_columns_where_fista_does_not(
    name, shared, fit_intercept, monkeypatch
):
    rng = np.random.default_rng(11)
    Xs, ys, design = _low_rank_data(rng, shared)
    penalty = PENALTIES[name]()
    _, _, ref = solve_reference(Xs, ys, penalty, "squared", fit_intercept)
    df = Quadratic(design)
    assert admm_pays(df, fit_intercept)  # "auto" takes ADMM here
    kw = dict(fit_intercept=fit_intercept, tol=1e-10, max_iter=MAX_ITER)
    res = solve(df, penalty, **kw)
    assert res.converged
    assert res.objective == pytest.approx(ref, rel=1e-6)
    # the certificate (the relative duality gap) is a true bound, up to cvxpy's own
    # accuracy (1e-9 relative); the trace norm reports it as dual_gap, as FISTA does
    gap = res.stop_crit * abs(res.objective)
    assert gap >= res.objective - ref - 1e-9 * abs(ref)
    assert res.stop_crit <= 1e-10
    if name == "trace":
        assert res.dual_gap == pytest.approx(gap, rel=1e-6)
    monkeypatch.setattr(solve_module, "_AUTO_ADMM", False)
    off = solve(df, penalty, **kw)  # FISTA, as before
    assert abs(off.objective - ref) > 1e-6 * abs(ref)


def test_auto_takes_admm_for_few_features_or_bad_conditioning(monkeypatch):
    rng = np.random.default_rng(2)
    _, _, plain = _low_rank_data(rng, False, spread=0.0)
    _, _, scaled = _low_rank_data(rng, False)
    assert admm_pays(Quadratic(plain)) and admm_pays(Quadratic(scaled))  # p = 6 <= 200
    monkeypatch.setattr(admm_module, "ALWAYS_P", 0)  # as for many features: conditioning
    assert not admm_pays(Quadratic(plain)) and admm_pays(Quadratic(scaled))
    assert admm_pays(Quadratic(scaled), fit_intercept=False)


def test_admm_on_standardised_columns_matches_fista():
    """Where FISTA converges, both solvers give the same optimum."""
    rng = np.random.default_rng(2)
    _, _, design = _low_rank_data(rng, False, spread=0.0)
    df = Quadratic(design)
    for penalty in (P.TraceNorm(0.05), P.RobustMTL(0.05, 0.2)):
        a = admm(df, penalty, tol=1e-12, max_iter=5000)
        f = solve(df, penalty, tol=1e-12, max_iter=20000, solver="fista")
        assert a.converged
        assert a.objective == pytest.approx(f.objective, rel=1e-9)


def test_admm_warm_start_and_exact_low_rank():
    """A warm start from another alpha reaches the cold solve's optimum; ``Z`` is exactly
    low rank (its singular values below the threshold are 0, not rounding noise)."""
    rng = np.random.default_rng(4)
    _, _, design = _low_rank_data(rng, False)
    df = Quadratic(design)
    cold = admm(df, P.TraceNorm(0.5), tol=1e-10)
    first = admm(df, P.TraceNorm(0.05), tol=1e-10)
    warm = admm(df, P.TraceNorm(0.5), first.W, first.intercept, tol=1e-10)
    assert warm.converged and warm.objective == pytest.approx(cold.objective, rel=1e-9)
    s = np.linalg.svd(cold.W, compute_uv=False)
    assert np.sum(s > 1e-12 * s[0]) < min(cold.W.shape)
    first = admm(df, P.RobustMTL(0.05, 0.2), tol=1e-10)
    cold = admm(df, P.RobustMTL(0.5, 0.2), tol=1e-10)
    warm = admm(df, P.RobustMTL(0.5, 0.2), first.W, first.intercept, tol=1e-10)
    assert warm.converged and warm.objective == pytest.approx(cold.objective, rel=1e-9)


def test_admm_on_sparse_features_matches_the_dense_solve():
    """A scipy sparse design (not centred: the intercept is profiled on its Gram
    matrices) reaches the optimum of the same data in dense form (checked against cvxpy
    above)."""
    rng = np.random.default_rng(6)
    Xs, ys, dense = _low_rank_data(rng, False)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    sparse = make_design(sp.csr_matrix(np.vstack(Xs)), np.concatenate(ys), task, len(ys))
    for penalty in (P.TraceNorm(0.05), P.RobustMTL(0.05, 0.2)):
        a = admm(Quadratic(dense), penalty, tol=1e-10)
        b = admm(Quadratic(sparse), penalty, tol=1e-10)
        assert a.converged and b.converged
        assert b.objective == pytest.approx(a.objective, rel=1e-9)


def test_robust_dual_norm_is_that_of_the_infimal_convolution():
    """``max(||G||_2 / alpha, max_t ||G_t|| / beta)`` against ``max <G, W>`` over
    ``min_{L + S = W} alpha ||L||_* + beta sum_t ||S_t|| <= 1``, solved by cvxpy."""
    rng = np.random.default_rng(7)
    for alpha, beta in [(1.0, 0.5), (0.3, 2.0), (1.0, 1.0)]:
        G = rng.standard_normal((5, 4))
        L, S = cp.Variable((5, 4)), cp.Variable((5, 4))
        h = alpha * cp.normNuc(L) + beta * cp.sum(cp.norm(S, 2, axis=0))
        prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(G, L + S))), [h <= 1])
        prob.solve(solver="CLARABEL")
        ours = relative_dual_norm(P.RobustMTL(alpha, beta), G)
        assert ours == pytest.approx(prob.value, rel=1e-6)


@pytest.mark.parametrize("cls", [TraceNormRegressor, RobustMTLRegressor])
def test_estimator_converges_on_badly_scaled_columns_without_a_warning(cls):
    rng = np.random.default_rng(5)
    Xs, ys, _ = _low_rank_data(rng, False)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    X = np.column_stack([np.vstack(Xs), task])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = cls(alpha=0.05, task_col=-1).fit(X, np.concatenate(ys))
    assert model.stop_crit_ <= model.tol
    if cls is TraceNormRegressor:
        assert model.dual_gap_ <= model.tol * model.objective_ * (1 + 1e-12)


def test_admm_rejects_what_it_cannot_solve():
    rng = np.random.default_rng(1)
    _, _, design = _low_rank_data(rng, False)
    with pytest.raises(ValueError, match="solver='fista'"):
        admm(Quadratic(design), P.L21(0.1))
    with pytest.raises(ValueError, match="solver='fista'"):
        admm(Quadratic(design), P.TraceNorm(0.0))
    wide = rng.standard_normal((40, admm_module.LOGISTIC_P + 1))
    labels = np.where(np.arange(40) % 2, 1.0, -1.0)
    logistic = make_design(wide, labels, np.arange(40) % 2, 2)
    with pytest.raises(ValueError, match="solver='fista'"):
        admm(Logistic(logistic), P.TraceNorm(0.1))
