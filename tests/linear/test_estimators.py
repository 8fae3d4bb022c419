"""Every convex estimator reaches cvxpy's optimum of the documented objective.

Oracle: ``tests/linear/cvx_oracle.py`` (CLARABEL interior point, tolerances
1e-10) for the objective; the optimality check recomputes the datafit gradient
here in numpy, independently of ``multitask.linear.datafits``.
"""

import numpy as np
import pytest

pytest.importorskip("cvxpy")

from cvx_oracle import objective, solve_reference, solve_reference_clustered

import multitask.linear as ml
from multitask.linear import penalties as P

N_FEATURES, N_TASKS = 4, 3

# family -> (regressor params, classifier params), alphas well below alpha_max
FAMILIES = {
    "GroupLasso": {"alpha": 0.05},
    "L1Inf": {"alpha": 0.05},
    "TraceNorm": {"alpha": 0.05},
    "SparseGroupLasso": {"alpha": 0.03, "beta": 0.02},
    "DirtyModel": {"alpha": 0.02, "beta": 0.05},
    "RobustMTL": {"alpha": 0.05, "beta": 0.05},
    "TreeGroupLasso": {"alpha": 0.03, "tree": [[0], [1], [2], [0, 1], [0, 1, 2]]},
    "MeanRegularized": {"alpha": 0.1, "beta": 0.01},
    "GraphRegularized": {"alpha": 0.1, "beta": 0.01, "graph": [(0, 1), (1, 2)]},
}
SUFFIX = {"squared": "Regressor", "logistic": "Classifier"}


def make_problem(loss, seed, sample_weight):
    """Long-format problem with N_TASKS tasks of different sizes; returns X, y, sw, lists."""
    rng = np.random.default_rng(seed)
    sizes = [18, 25, 21]
    task = np.repeat(np.arange(N_TASKS), sizes)
    X = rng.normal(size=(len(task), N_FEATURES))
    W = rng.normal(size=(N_FEATURES, N_TASKS)) + 1.0
    margin = np.einsum("ij,ji->i", X, W[:, task]) + 0.3
    if loss == "squared":
        y = margin + 0.5 * rng.normal(size=len(task))
    else:
        y = (margin + rng.normal(size=len(task)) > 0).astype(float)
    sw = rng.uniform(0.2, 2.0, size=len(task)) if sample_weight else None
    perm = rng.permutation(len(task))  # rows need not be sorted by task
    X, y, task = X[perm], y[perm], task[perm]
    sw = None if sw is None else sw[perm]
    Xl = np.column_stack([X, task])
    X_list = [X[task == t] for t in range(N_TASKS)]
    y_list = [y[task == t] for t in range(N_TASKS)]
    sw_list = None if sw is None else [sw[task == t] for t in range(N_TASKS)]
    return Xl, y, sw, X_list, y_list, sw_list


def numpy_gradient(X_list, y_list, sw_list, W, b, loss):
    """Datafit gradient in (W, b), computed task by task (independent of datafits.py)."""
    G, gb = np.zeros_like(W), np.zeros(len(X_list))
    for t, (X, y) in enumerate(zip(X_list, y_list, strict=True)):
        s = np.ones(len(y)) if sw_list is None else sw_list[t]
        s = s / s.sum()
        m = X @ W[:, t] + b[t]
        if loss == "squared":
            r = -(y - m)
        else:
            ypm = np.where(y > 0, 1.0, -1.0)
            r = -ypm / (1.0 + np.exp(ypm * m))
        G[:, t], gb[t] = X.T @ (s * r), np.sum(s * r)
    return G, gb


def fitted_weights(est):
    W = est._W_internal
    return W


CASES = [
    (fam, loss, fit_intercept, sw)
    for fam in FAMILIES
    for loss in ("squared", "logistic")
    for fit_intercept, sw in ((True, False), (False, True))
]


@pytest.mark.parametrize(("family", "loss", "fit_intercept", "sample_weight"), CASES)
def test_objective_matches_cvxpy(family, loss, fit_intercept, sample_weight):
    Xl, y, sw, X_list, y_list, sw_list = make_problem(loss, 0, sample_weight)
    cls = getattr(ml, family + SUFFIX[loss])
    est = cls(task_col=N_FEATURES, fit_intercept=fit_intercept, **FAMILIES[family])
    est.fit(Xl, y, sample_weight=sw)
    data = est._validate_fit(Xl, y, sw)
    penalty, smooth = est._make_penalty(data)
    penalty = penalty if penalty is not None else smooth[0]
    W, b = fitted_weights(est), est.intercept_
    ours = objective(X_list, y_list, W, b, penalty, loss, sw_list)
    _, _, ref = solve_reference(X_list, y_list, penalty, loss, fit_intercept, sw_list)
    assert ours <= ref + 1e-6 * abs(ref), (ours, ref)
    # optimality: distance of -grad to the subdifferential, relative to the gradient at 0
    G, gb = numpy_gradient(X_list, y_list, sw_list, W.sum(0) if W.ndim == 3 else W, b, loss)
    G0, _ = numpy_gradient(X_list, y_list, sw_list, np.zeros((N_FEATURES, N_TASKS)), b, loss)
    if smooth:
        G = G + smooth[0].gradient(W)
        dist = np.linalg.norm(G)
    else:
        dist = penalty.subdiff_distance(W, G)
    assert dist <= 1e-6 * np.linalg.norm(G0), dist
    if fit_intercept:
        assert np.abs(gb).max() <= 1e-5 * max(1.0, np.abs(G0).max())
    # the public coef_ is the model weight, transposed
    np.testing.assert_allclose(est.coef_, (W.sum(0) if W.ndim == 3 else W).T)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_independent_and_pooled_match_cvxpy(loss):
    Xl, y, sw, X_list, y_list, sw_list = make_problem(loss, 1, True)
    cls = ml.IndependentRidge if loss == "squared" else ml.IndependentLogistic
    est = cls(alpha=0.05, task_col=N_FEATURES).fit(Xl, y, sample_weight=sw)
    ours = objective(X_list, y_list, est.coef_.T, est.intercept_, P.Ridge(0.05), loss, sw_list)
    _, _, ref = solve_reference(X_list, y_list, P.Ridge(0.05), loss, True, sw_list)
    assert ours <= ref + 1e-6 * abs(ref)
    if loss == "squared":
        pooled = ml.PooledRidge(alpha=0.05, task_col=N_FEATURES).fit(Xl, y, sample_weight=sw)
        X_all, y_all = np.vstack(X_list), np.concatenate(y_list)
        sw_all = [np.concatenate(sw_list)]
        ours = objective(
            [X_all], [y_all], pooled.coef_[:1].T, pooled.intercept_[:1], P.Ridge(0.05), loss, sw_all
        )
        _, _, ref = solve_reference([X_all], [y_all], P.Ridge(0.05), loss, True, sw_all)
        assert ours <= ref + 1e-6 * abs(ref)
        np.testing.assert_allclose(pooled.coef_, np.tile(pooled.coef_[0], (N_TASKS, 1)))


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_clustered_matches_cvxpy(loss):
    Xl, y, _, X_list, y_list, _ = make_problem(loss, 2, False)
    cls = ml.ClusteredMTLRegressor if loss == "squared" else ml.ClusteredMTLClassifier
    est = cls(alpha=0.05, beta=0.1, n_clusters=2, task_col=N_FEATURES).fit(Xl, y)
    eta = 0.1 / 0.05
    _, _, M, ref = solve_reference_clustered(X_list, y_list, 0.05, eta, 2, loss)
    from multitask.linear.penalties import clustered

    M_est = getattr(est, "task_relation_", M)
    ours = objective(X_list, y_list, est.coef_.T, est.intercept_, P.Ridge(0.0), loss)
    ours += 0.05 * clustered.cmtl_value(est.coef_.T, M_est, eta)
    assert ours <= ref + 1e-6 * abs(ref), (ours, ref)


def test_shared_design_matches_sklearn_multitask_lasso():
    from sklearn.linear_model import MultiTaskLasso

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 8))
    B = rng.normal(size=(8, 4)) * (rng.uniform(size=(8, 1)) > 0.5)
    Y = X @ B + rng.normal(size=(60, 4))
    for fit_intercept in (True, False):
        sk = MultiTaskLasso(alpha=0.1, fit_intercept=fit_intercept, tol=1e-14, max_iter=100000)
        sk.fit(X, Y)
        ours = ml.GroupLassoRegressor(alpha=0.1, fit_intercept=fit_intercept).fit(X, Y)
        np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-6)
        np.testing.assert_allclose(ours.intercept_, sk.intercept_, atol=1e-6)
        np.testing.assert_allclose(ours.predict(X), sk.predict(X), atol=1e-6)


def test_shared_design_classifier_matches_per_task_long_format():
    """Shared design (2-D y) and the same data in long format give the same models."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 3))
    Y = (X @ rng.normal(size=(3, 2)) + rng.normal(size=(50, 2)) > 0).astype(int)
    shared = ml.TraceNormClassifier(alpha=0.02).fit(X, Y)
    Xl = np.vstack([np.column_stack([X, np.full(50, t)]) for t in range(2)])
    long = ml.TraceNormClassifier(alpha=0.02, task_col=3).fit(Xl, Y.T.ravel())
    np.testing.assert_allclose(shared.coef_, long.coef_, atol=1e-5)
    assert shared.predict(X).shape == (50, 2)
