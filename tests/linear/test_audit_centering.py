"""Audit: the fit does not depend on a per-task shift of the features.

Oracle: with one unpenalised intercept per task, shifting task ``t``'s features by a
constant ``c_t`` leaves the optimal ``W`` unchanged and moves the intercepts by
``-c_t . w_t`` (the objective is the same function of ``W``), so the predictions are
the same. Before per-task centring, classifiers on features with mean 100 stopped at
``max_iter`` with coefficients off by 0.3-1.8, and regressors lost 3e-3 at mean 1e6.
Features constant in every task must give ``W = 0`` and the null intercepts (they
crashed with ZeroDivisionError or returned coefficients of 1e29).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from audit_data import task_problem

import multitask.linear as ml

N, P, T = 90, 4, 3
RNG, X, TASK, Y, _ = task_problem(7, N, P, T)
YC = (Y > np.median(Y)).astype(int)
YC[[0, 1, 30, 31, 60, 61]] = [0, 1, 0, 1, 0, 1]

FAMILIES = [
    (ml.GroupLassoClassifier, {"alpha": 0.02}, True),
    (ml.DirtyModelClassifier, {"alpha": 0.02, "beta": 0.02}, True),
    (ml.MeanRegularizedClassifier, {"alpha": 0.1, "beta": 0.01}, True),
    (ml.IndependentLogistic, {"alpha": 0.01}, True),
    (ml.TraceNormRegressor, {"alpha": 0.05}, False),
    (ml.GroupLassoRegressor, {"alpha": 0.05}, False),
]


def _long(features):
    return np.column_stack([TASK, features])


@pytest.mark.parametrize(
    ("cls", "params", "clf"), FAMILIES, ids=lambda v: getattr(v, "__name__", "")
)
def test_per_task_shift_leaves_the_model_unchanged(cls, params, clf):
    y = YC if clf else Y
    shift = np.array([100.0, -3e5, 1e6])[TASK][:, None] * np.linspace(1, 2, P)
    ref = cls(task_col=0, **params).fit(_long(X), y)
    est = cls(task_col=0, **params).fit(_long(X + shift), y)
    assert est.n_iter_ < 2000  # converged like the centred problem, not at max_iter
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-7)
    f_ref = ref.decision_function(_long(X)) if clf else ref.predict(_long(X))
    f_est = est.decision_function(_long(X + shift)) if clf else est.predict(_long(X + shift))
    np.testing.assert_allclose(f_est, f_ref, atol=1e-6)


def test_shared_design_shift_and_sample_weight():
    Ys = np.column_stack([Y, -Y, 2 * Y]) > 0.5
    sw = RNG.uniform(0.5, 2.0, N)
    ref = ml.GroupLassoClassifier(alpha=0.02).fit(X, Ys, sample_weight=sw)
    est = ml.GroupLassoClassifier(alpha=0.02).fit(X + 500.0, Ys, sample_weight=sw)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(
        est.decision_function(X + 500.0), ref.decision_function(X), atol=1e-6
    )


def test_warm_start_from_shifted_fit_matches_cold_fit():
    Xs = _long(X + 100.0)
    est = ml.GroupLassoClassifier(alpha=0.05, task_col=0, warm_start=True).fit(Xs, YC)
    est.set_params(alpha=0.02).fit(Xs, YC)
    cold = ml.GroupLassoClassifier(alpha=0.02, task_col=0).fit(Xs, YC)
    np.testing.assert_allclose(est.coef_, cold.coef_, atol=1e-6)
    np.testing.assert_allclose(est.intercept_, cold.intercept_, atol=1e-5)


def test_sparse_features_are_not_densified_and_agree():
    Xs = sp.random(N, P, density=0.5, random_state=3, format="csr") + 0.0
    dense = ml.GroupLassoClassifier(alpha=0.02, task_col=0).fit(_long(Xs.toarray()), YC)
    sparse = ml.GroupLassoClassifier(alpha=0.02, task_col=0).fit(
        sp.hstack([sp.csr_matrix(TASK[:, None]), Xs]).tocsr(), YC
    )
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-6)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, atol=1e-6)


@pytest.mark.parametrize("value", [0.0, 0.1, 3.0])
@pytest.mark.parametrize(
    "est",
    [ml.GroupLassoRegressor(), ml.TraceNormRegressor(), ml.GroupLassoClassifier()],
    ids=lambda e: type(e).__name__,
)
def test_constant_features_give_the_null_model(est, value):
    features = np.full((40, 3), value) * np.array([1.0, 2.0, 3.0])
    y = np.random.default_rng(0).standard_normal(40)
    y = y if est._loss == "squared" else (y > 0).astype(int)
    fitted = est.fit(features, y)
    assert fitted.n_iter_ < 100
    np.testing.assert_array_equal(fitted.coef_, 0.0)
    if est._loss == "squared":
        expected = y.mean()
    else:
        expected = np.log(y.mean() / (1 - y.mean()))
    np.testing.assert_allclose(fitted.intercept_, [expected], rtol=1e-6)


def test_zero_design_without_intercept():
    for est in (
        ml.GroupLassoRegressor(fit_intercept=False),
        ml.GroupLassoClassifier(fit_intercept=False),
    ):
        y = Y[:40] if est._loss == "squared" else YC[:40]
        fitted = est.fit(np.zeros((40, 3)), y)
        np.testing.assert_array_equal(fitted.coef_, 0.0)


def test_shared_design_regressor_with_dominant_mean():
    Ys = np.column_stack([Y, -Y, 2 * Y])
    ref = ml.GroupLassoRegressor(alpha=0.05).fit(X, Ys)
    est = ml.GroupLassoRegressor(alpha=0.05).fit(X + 1e6, Ys)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(est.predict(X + 1e6), ref.predict(X), atol=1e-6)
