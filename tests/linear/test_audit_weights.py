"""Audit: integer sample weights are row duplication; sparse input is the dense fit.

Oracles: the fit on the data with row ``i`` repeated ``s_i`` times (weights are
relative within a task, so this is the same objective), and the fit on ``X.toarray()``.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from audit_data import task_problem

import multitask.linear as ml

N, P, T = 90, 4, 3
RNG, X, TASK, Y, XL = task_problem(21, N, P, T, shift=1.0)
YC = (Y > np.median(Y)).astype(int)
YC[[0, 1, 30, 31, 60, 61]] = [0, 1, 0, 1, 0, 1]
SW = RNG.integers(0, 4, N)
SW[[0, 1, 30, 31, 60, 61]] = 1

CASES = [
    (ml.GroupLassoRegressor(alpha=0.05, task_col=0), Y),
    (ml.DirtyModelRegressor(alpha=0.05, beta=0.05, task_col=0), Y),
    (ml.TraceNormClassifier(alpha=0.02, task_col=0), YC),
    (ml.ClusteredMTLClassifier(alpha=0.1, beta=0.1, n_clusters=2, task_col=0), YC),
]


@pytest.mark.parametrize(("est", "y"), CASES, ids=lambda v: type(v).__name__)
def test_integer_weights_equal_duplicated_rows(est, y):
    rows = np.repeat(np.arange(N), SW)
    weighted = est.fit(XL, y, sample_weight=SW)
    coef, intercept = weighted.coef_.copy(), weighted.intercept_.copy()
    duplicated = est.fit(XL[rows], y[rows])
    np.testing.assert_allclose(coef, duplicated.coef_, atol=1e-7)
    np.testing.assert_allclose(intercept, duplicated.intercept_, atol=1e-7)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize(("est", "y"), CASES[:3], ids=lambda v: type(v).__name__)
def test_sparse_input_equals_dense(est, y, fmt, fit_intercept):
    est.set_params(fit_intercept=fit_intercept)
    dense = est.fit(XL, y)
    coef, intercept, objective = dense.coef_.copy(), dense.intercept_.copy(), dense.objective_
    sparse = est.fit(sp.coo_matrix(XL).asformat(fmt), y)
    # dense features are centred, sparse ones not: two runs to the same optimum, each
    # stopped at tol=1e-8 (coefficients of ~5 of a near-separable classifier agree to 2e-6)
    assert sparse.objective_ == pytest.approx(objective, rel=1e-8)
    np.testing.assert_allclose(sparse.coef_, coef, atol=1e-5)
    np.testing.assert_allclose(sparse.intercept_, intercept, atol=1e-5)
