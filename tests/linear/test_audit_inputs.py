"""Audit: bad parameters and task ids raise early and clearly; odd task ids predict.

Oracle for predictions of an unseen task: the documented fallback,
``x . coef_.mean(0) + intercept_.mean()``.
"""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import multitask.linear as ml

RNG = np.random.default_rng(5)
N, P = 60, 3
X = RNG.standard_normal((N, P))
Y = X @ RNG.standard_normal(P) + 0.2 * RNG.standard_normal(N)
FRAME = pd.DataFrame(X, columns=["a", "b", "c"]).assign(task=np.repeat(["x", "y", "z"], 20))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_iter": 0}, "max_iter=0"),
        ({"max_iter": -1}, "max_iter=-1"),
        ({"max_iter": 10.5}, "max_iter=10.5"),
        ({"tol": -1.0}, "tol=-1.0"),
        ({"tol": np.nan}, "tol=nan"),
        ({"alpha": "big"}, "alpha='big'"),
        ({"alpha": None}, "alpha=None"),
    ],
)
def test_bad_parameters_raise_before_fitting(params, match):
    est = ml.GroupLassoRegressor(task_col="task", **params)
    with pytest.raises(ValueError, match=match):
        est.fit(FRAME, Y)
    assert not hasattr(est, "coef_")


def test_mixed_type_task_ids_raise_a_clear_error():
    ids = np.array([1] * 20 + ["a"] * 40, dtype=object)
    with pytest.raises(ValueError, match="mixes ids of types"):
        ml.GroupLassoRegressor(task_col="task").fit(FRAME.assign(task=ids), Y)


def test_task_ids_of_another_type_at_predict_are_unseen():
    est = ml.GroupLassoRegressor(alpha=0.01, task_col="task").fit(FRAME, Y)
    pred = est.predict(FRAME.assign(task=np.repeat([1, 2, 3], 20)))
    np.testing.assert_allclose(pred, X @ est.coef_.mean(0) + est.intercept_.mean(), atol=1e-12)
    strict = ml.GroupLassoRegressor(alpha=0.01, task_col="task", unseen_task="error")
    strict.fit(FRAME, Y)
    with pytest.raises(ValueError, match="not seen at fit time"):
        strict.predict(FRAME.assign(task=np.repeat([1, 2, 3], 20)))


def test_failed_fit_leaves_the_estimator_unfitted():
    est = ml.GroupLassoRegressor(task_col="task")
    bad = FRAME.assign(task=np.array([1] * 20 + ["a"] * 40, dtype=object))
    with pytest.raises(ValueError):
        est.fit(bad, Y)
    with pytest.raises(NotFittedError):
        est.predict(FRAME)


def test_scalar_sample_weight_weighs_every_row_alike():
    plain = ml.GroupLassoRegressor(alpha=0.01, task_col="task").fit(FRAME, Y)
    scalar = ml.GroupLassoRegressor(alpha=0.01, task_col="task").fit(FRAME, Y, sample_weight=3.0)
    np.testing.assert_allclose(scalar.coef_, plain.coef_, atol=1e-10)
    with pytest.raises(ValueError, match="negative"):
        ml.GroupLassoRegressor(task_col="task").fit(FRAME, Y, sample_weight=-1.0)


def test_unseen_task_fallback_for_every_classifier_method():
    from scipy.special import expit

    labels = np.where(Y > 0, "pos", "neg")
    est = ml.GroupLassoClassifier(alpha=0.01, task_col="task").fit(FRAME, labels)
    new = FRAME.assign(task="w")
    score = X @ est.coef_.mean(0) + est.intercept_.mean()
    np.testing.assert_allclose(est.decision_function(new), score, atol=1e-12)
    np.testing.assert_allclose(est.predict_proba(new)[:, 1], expit(score), atol=1e-12)
    np.testing.assert_array_equal(est.predict(new), np.where(score > 0, "pos", "neg"))
    assert est.score(new, labels) == np.mean(np.where(score > 0, "pos", "neg") == labels)
    strict = ml.GroupLassoClassifier(alpha=0.01, task_col="task", unseen_task="error")
    strict.fit(FRAME, labels)
    for method in ("decision_function", "predict_proba", "predict"):
        with pytest.raises(ValueError, match="not seen at fit time"):
            getattr(strict, method)(new)
    with pytest.raises(ValueError, match="not seen at fit time"):
        strict.score(new, labels)


def test_column_transformer_moves_the_task_column_last():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(X)
    direct = ml.GroupLassoRegressor(alpha=0.01, task_col="task")
    direct.fit(pd.DataFrame(scaled, columns=["a", "b", "c"]).assign(task=FRAME["task"]), Y)
    ct = ColumnTransformer([("s", StandardScaler(), ["a", "b", "c"])], remainder="passthrough")
    by_position = make_pipeline(ct, ml.GroupLassoRegressor(alpha=0.01, task_col=-1))
    np.testing.assert_allclose(by_position.fit(FRAME, Y)[-1].coef_, direct.coef_, atol=1e-10)
    ct_pd = ColumnTransformer(
        [("s", StandardScaler(), ["a", "b", "c"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    by_name = make_pipeline(ct_pd, ml.GroupLassoRegressor(alpha=0.01, task_col="task"))
    np.testing.assert_allclose(by_name.fit(FRAME, Y)[-1].coef_, direct.coef_, atol=1e-10)


@pytest.mark.parametrize("column", [Y[:, None], pd.DataFrame({"y": Y})], ids=["array", "frame"])
def test_one_column_y_in_long_format_is_the_target_vector(column):
    # df[["y"]] in long format: a 2-D y with one column was refused by the regressors
    # (classifiers accepted it); it is the 1-D target, and predictions stay 1-D
    ref = ml.GroupLassoRegressor(alpha=0.05, task_col="task").fit(FRAME, Y)
    est = ml.GroupLassoRegressor(alpha=0.05, task_col="task").fit(FRAME, column)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    assert est.predict(FRAME).shape == (N,)
    with pytest.raises(ValueError, match="in long format y is 1-D"):
        ml.GroupLassoRegressor(task_col="task").fit(FRAME, np.column_stack([Y, Y]))


@pytest.mark.parametrize(("name", "value"), [("fit_intercept", "False"), ("warm_start", 1)])
def test_flags_must_be_bool(name, value):
    # fit_intercept="False" is truthy and was silently read as True
    est = ml.GroupLassoRegressor(task_col="task", **{name: value})
    with pytest.raises(TypeError, match=f"{name}={value!r}"):
        est.fit(FRAME, Y)
    assert not hasattr(est, "coef_")
    flag = ml.GroupLassoRegressor(task_col="task", fit_intercept=np.bool_(False)).fit(FRAME, Y)
    np.testing.assert_array_equal(flag.intercept_, 0.0)


def test_refit_without_a_gap_drops_the_earlier_dual_gap():
    # an ADMM fit (badly scaled features) reports dual_gap_; a FISTA refit (none) kept it
    rng = np.random.default_rng(0)
    task = np.repeat([0, 1, 2], 30)
    F = rng.standard_normal((90, 3))
    yc = (F[:, 0] + rng.standard_normal(90) > 0).astype(int)
    X = np.column_stack([task, F])
    scaled = X.copy()
    scaled[:, 1] *= 1e3
    est = ml.TraceNormClassifier(task_col=0, alpha=0.01).fit(scaled, yc)
    assert hasattr(est, "dual_gap_")
    est.fit(X, yc)
    fresh = ml.TraceNormClassifier(task_col=0, alpha=0.01).fit(X, yc)
    assert hasattr(est, "dual_gap_") == hasattr(fresh, "dual_gap_") is False


def test_task_ids_match_exactly_across_dtypes_at_predict():
    # 18-digit ids: numpy compared int64 with uint64 or float64 through float64, where
    # 2**60 + 1 and 2**60 + 2 are one number (the uint64 row of 2**60 + 2 was unseen) and the
    # float 2**60 equals 2**60 + 1 (that row took task 2**60 + 1's model)
    big = 2**60 + np.array([1, 2, 3])
    frame = FRAME.assign(task=np.repeat(big, 20))
    est = ml.GroupLassoRegressor(alpha=0.01, task_col="task").fit(frame, Y)
    own = est.predict(frame)
    as_uint = frame.assign(task=frame["task"].astype(np.uint64))
    np.testing.assert_array_equal(est.predict(as_uint), own)
    rounded = frame.assign(task=frame["task"].astype(np.float64))  # 2**60: no fitted task
    mean_model = X @ est.coef_.mean(0) + est.intercept_.mean()
    np.testing.assert_allclose(est.predict(rounded), mean_model, atol=1e-12)
    # Decimal ids: equal numbers are one task (1.10 is 1.1), at fit and at predict
    ids = [Decimal("1.10"), Decimal("1.1"), Decimal("1.2")]
    est = ml.GroupLassoRegressor(alpha=0.01, task_col="task")
    est.fit(FRAME.assign(task=np.repeat(np.array(ids, dtype=object), 20)), Y)
    assert est.tasks_.tolist() == [Decimal("1.1"), Decimal("1.2")]
    ids = np.repeat(np.array([Decimal("1.100"), Decimal("1.20"), Decimal("1.2")]), 20)
    codes = np.repeat([0, 1, 1], 20)
    expected = np.einsum("ij,ij->i", X, est.coef_[codes]) + est.intercept_[codes]
    np.testing.assert_allclose(est.predict(FRAME.assign(task=ids)), expected, atol=1e-12)
