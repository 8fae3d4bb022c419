"""scikit-learn conformance of every estimator of :mod:`multitask.linear` (task_col=None)."""

import os

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import multitask.linear as ml

# cheap solver settings keep ~45 checks x 25 estimators affordable (correctness at the
# default tolerance is tested against cvxpy in test_estimators.py); regressors use
# alpha=1 like sklearn's MultiTaskLasso: the checks' targets are O(100)
FAST = {"tol": 1e-6, "max_iter": 2000}

ESTIMATORS = [
    ml.GroupLassoRegressor(alpha=1.0, **FAST),
    ml.GroupLassoClassifier(alpha=0.01, **FAST),
    ml.L1InfRegressor(alpha=1.0, **FAST),
    ml.L1InfClassifier(alpha=0.01, **FAST),
    ml.TraceNormRegressor(alpha=1.0, **FAST),
    ml.TraceNormClassifier(alpha=0.01, **FAST),
    ml.DirtyModelRegressor(alpha=1.0, beta=1.0, **FAST),
    ml.DirtyModelClassifier(alpha=0.01, beta=0.01, **FAST),
    ml.RobustMTLRegressor(alpha=1.0, beta=1.0, **FAST),
    ml.RobustMTLClassifier(alpha=0.01, beta=0.01, **FAST),
    ml.SparseGroupLassoRegressor(alpha=1.0, **FAST),
    ml.SparseGroupLassoClassifier(alpha=0.01, beta=0.001, **FAST),
    ml.TreeGroupLassoRegressor(alpha=1.0, **FAST),
    ml.TreeGroupLassoClassifier(alpha=0.01, **FAST),
    ml.MeanRegularizedRegressor(alpha=1.0, beta=0.01, **FAST),
    ml.MeanRegularizedClassifier(alpha=0.01, beta=0.001, **FAST),
    ml.GraphRegularizedRegressor(alpha=1.0, beta=0.01, **FAST),
    ml.GraphRegularizedClassifier(alpha=0.01, beta=0.001, **FAST),
    # one task (task_col=None, 1-D y) has one cluster at most
    ml.ClusteredMTLRegressor(alpha=0.01, beta=0.01, n_clusters=1, **FAST),
    ml.ClusteredMTLClassifier(alpha=0.001, beta=0.001, n_clusters=1, **FAST),
    ml.IndependentRidge(alpha=1.0, **FAST),
    ml.IndependentLogistic(**FAST),
    ml.PooledRidge(alpha=1.0, **FAST),
    ml.GroupLassoRegressorCV(n_alphas=2, eps=1e-2, cv=2, **FAST),
    ml.TraceNormClassifierCV(n_alphas=2, cv=2, **FAST),
]

_N_CLUSTERS = (
    "the check sets n_clusters=2 (meant for clusterers); with task_col=None and 1-D y "
    "there is one task, and clustered MTL needs n_clusters <= n_tasks"
)
EXPECTED_FAILURES = {
    "ClusteredMTLRegressor": {"check_methods_sample_order_invariance": _N_CLUSTERS},
    "ClusteredMTLClassifier": {"check_methods_sample_order_invariance": _N_CLUSTERS},
    "TraceNormClassifierCV": {
        "check_classifier_multioutput": (
            "CV picks a tiny alpha on this separable multilabel set: decisions reach ~40, "
            "sigma(40) == 1.0 in float64, so predict_proba has rank ties that "
            "decision_function has not (checked by hand; predictions agree)"
        )
    },
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


# Every estimator runs the checks (about 45 each, ~3 min for all 25 on 2 cores).
# MULTITASK_QUICK_CHECKS=1 keeps one regressor, one classifier and four others
# (composite, smooth-only, pooled, CV) for a fast local loop.
FAST_SUBSET = ESTIMATORS[:2]
SLOW_SUBSET = [ESTIMATORS[i] for i in (6, 15, 22, 23)]
FULL = os.environ.get("MULTITASK_QUICK_CHECKS") != "1"


@parametrize_with_checks(FAST_SUBSET, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    ESTIMATORS[2:] if FULL else SLOW_SUBSET, expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible_more(estimator, check):
    check(estimator)
