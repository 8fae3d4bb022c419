"""``dual_gap_``: a certificate that bounds the distance to the optimum."""

import numpy as np
import pytest
from sklearn.linear_model import MultiTaskLasso

from multitask.linear import GroupLassoRegressor, L1InfRegressor, MeanRegularizedRegressor


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
