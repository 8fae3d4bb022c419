"""FeaturePreprocessor against hand computations with numpy (training rows only)."""

import json

import numpy as np
import pandas as pd
import pytest

from multitask.tabular import FeaturePreprocessor


def _train_test():
    train = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 10.0],
            "n": [3, 3, 3, 3, 3],  # constant: scale 1
            "c": ["a", "b", "a", None, "c"],
        }
    )
    test = pd.DataFrame({"x": [np.nan, 0.0], "n": [4, 3], "c": ["b", "zzz"], "extra": [1, 2]})
    return train, test


def test_numeric_uses_training_median_mean_std_and_indicator():
    train, test = _train_test()
    pre = FeaturePreprocessor.fit(train)
    seen = np.array([1.0, 2.0, 4.0, 10.0])
    median = np.median(seen)  # 3.0
    filled = np.array([1.0, 2.0, median, 4.0, 10.0])
    mean, std = filled.mean(), filled.std()
    X = pre.transform(test)
    names = pre.feature_names
    assert names[:3] == ["x", "x__missing", "n"]
    np.testing.assert_allclose(X[:, 0], [(median - mean) / std, (0.0 - mean) / std])
    np.testing.assert_array_equal(X[:, 1], [1.0, 0.0])
    np.testing.assert_array_equal(X[:, 2], [1.0, 0.0])  # (4 - 3) / 1, (3 - 3) / 1
    Xtr = pre.transform(train)
    np.testing.assert_allclose(Xtr[:, 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(Xtr[:, 0].std(), 1.0)


def test_categorical_one_hot_missing_level_and_unknown_zeros():
    train, test = _train_test()
    pre = FeaturePreprocessor.fit(train)
    cat = [n for n in pre.feature_names if n.startswith("c=")]
    assert cat == ["c=<missing>", "c=a", "c=b", "c=c"]
    X = pre.transform(test)[:, -4:]
    np.testing.assert_array_equal(X, [[0, 0, 1, 0], [0, 0, 0, 0]])  # "zzz" unseen: zeros
    Xtr = pre.transform(train)[:, -4:]
    np.testing.assert_array_equal(Xtr.sum(1), 1.0)
    assert Xtr[3, 0] == 1.0  # None -> "<missing>"


def test_max_levels_keeps_most_frequent():
    train = pd.DataFrame({"c": ["a"] * 3 + ["b"] * 2 + ["c"]})
    pre = FeaturePreprocessor.fit(train, max_levels=2)
    assert pre.feature_names == ["c=a", "c=b"]
    np.testing.assert_array_equal(pre.transform(pd.DataFrame({"c": ["c"]})), [[0, 0]])


def test_json_round_trip_gives_identical_encoding():
    train, test = _train_test()
    pre = FeaturePreprocessor.fit(train)
    back = FeaturePreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(back.transform(test), pre.transform(test))
    assert back.feature_names == pre.feature_names


def test_errors_name_the_column():
    train, test = _train_test()
    pre = FeaturePreprocessor.fit(train)
    with pytest.raises(ValueError, match=r"lacks the feature column\(s\) \['c'\]"):
        pre.transform(test.drop(columns="c"))
    with pytest.raises(ValueError, match="'x' holds an infinite value at row 1"):
        pre.transform(test.assign(x=[0.0, np.inf]))
    with pytest.raises(ValueError, match="'x' was numeric in training but holds text"):
        pre.transform(test.assign(x=["a", "b"]))
    with pytest.raises(ValueError, match="'e' has no values in the training rows"):
        FeaturePreprocessor.fit(pd.DataFrame({"e": [np.nan, np.nan]}))


def test_boolean_with_empty_cells_is_numeric_and_imputed():
    """pandas reads a boolean column with an empty cell as objects True / NaN / False."""
    train = pd.DataFrame({"flag": [True, False, False, True]})
    pre = FeaturePreprocessor.fit(train)
    assert pre.feature_names == ["flag"]  # numeric, no indicator: none missing in training
    mean, std, median = 0.5, 0.5, 0.5  # of [1, 0, 0, 1]
    later = pd.DataFrame({"flag": pd.Series([True, np.nan, False], dtype=object)})
    np.testing.assert_allclose(
        pre.transform(later)[:, 0], [(1 - mean) / std, (median - mean) / std, (0 - mean) / std]
    )
    # missing in training too: numeric with an indicator, as for numbers
    pre = FeaturePreprocessor.fit(pd.DataFrame({"flag": [True, None, False, False]}))
    assert pre.feature_names == ["flag", "flag__missing"]
    assert pre.numeric["flag"]["median"] == 0.0  # median of [1, 0, 0]
