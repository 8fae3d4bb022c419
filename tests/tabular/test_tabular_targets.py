"""TargetEncoder: kind inference, labels, masks."""

import json

import numpy as np
import pandas as pd
import pytest

from multitask.tabular import TargetEncoder
from multitask.tabular._targets import IGNORE_INDEX


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.linspace(0, 1, 50), "regression"),
        (np.arange(60), "regression"),  # integers with many values
        ([0, 1, 1, 0], "binary"),
        (["yes", "no", "no"], "binary"),
        ([2.5, 7.5, 2.5], "binary"),
        ([True, False, True], "binary"),
        ([0, 1, 2, 3, 2], "multiclass"),
        (["a", "b", "c"], "multiclass"),
        ([1.0, 2.0, 3.0, np.nan], "multiclass"),  # integral floats with NaN (CSV ints)
    ],
)
def test_kind_inference(values, kind):
    assert TargetEncoder.fit(pd.Series(values), "y").kind == kind


def test_binary_any_two_labels_sorted_and_masked():
    s = pd.Series(["yes", "no", None, "yes"])
    enc = TargetEncoder.fit(s, "y")
    assert enc.classes == ["no", "yes"]
    codes = enc.encode(s)
    np.testing.assert_array_equal(codes, [1.0, 0.0, np.nan, 1.0])
    assert codes.dtype == np.float32
    assert enc.labels(np.array([0, 1])).tolist() == ["no", "yes"]
    assert TargetEncoder.from_dict(json.loads(json.dumps(enc.to_dict()))) == enc


def test_multiclass_codes_and_ignore_index():
    s = pd.Series([3, 1, np.nan, 2])
    enc = TargetEncoder.fit(s, "y")
    assert enc.kind == "multiclass" and enc.classes == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(enc.encode(s), [2, 0, IGNORE_INDEX, 1])
    with pytest.raises(ValueError, match=r"label 7\.0, not among the training labels"):
        enc.encode(pd.Series([7.0]))
    np.testing.assert_array_equal(enc.encode(pd.Series([7.0, 1.0]), strict=False), [-1, 0])


def test_regression_scaling_from_training_values():
    y = pd.Series([1.0, 2.5, np.nan, 7.0, 4.2, 3.3])
    enc = TargetEncoder.fit(y, "y")
    seen = y.dropna().to_numpy()
    assert enc.mean == pytest.approx(seen.mean()) and enc.scale == pytest.approx(seen.std())
    codes = enc.encode(y)
    np.testing.assert_allclose(codes[[0, 1]], (seen[:2] - seen.mean()) / seen.std(), rtol=1e-6)
    assert np.isnan(codes[2])


def test_override_and_errors():
    assert TargetEncoder.fit(pd.Series([0, 1, 2, 0]), "y", "regression").kind == "regression"
    with pytest.raises(ValueError, match="'y' has 1 distinct value"):
        TargetEncoder.fit(pd.Series([1, 1, np.nan]), "y")
    with pytest.raises(ValueError, match="infinite value at row 2"):
        TargetEncoder.fit(pd.Series([1.0, 2.0, np.inf]), "y")
    with pytest.raises(ValueError, match="binary needs exactly 2"):
        TargetEncoder.fit(pd.Series([0, 1, 2]), "y", "binary")
    with pytest.raises(ValueError, match="cannot be a regression target"):
        TargetEncoder.fit(pd.Series(["a", "b"]), "y", "regression")
    with pytest.raises(ValueError, match="unknown kind"):
        TargetEncoder.fit(pd.Series([0, 1]), "y", "ordinal")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")  # the oracle's
def test_held_out_f1_is_binary_of_classes_1_and_macro_over_training_classes():
    from sklearn.metrics import f1_score

    from multitask.tabular._scores import score_target

    # a 3-class target whose held-out rows show classes 0 and 2 only: macro over all 3
    enc = TargetEncoder.fit(pd.Series([0, 1, 2, 0, 1, 2]), "mc")
    y, code = pd.Series([0, 0, 2, 2, 2]), np.array([0, 2, 2, 2, 0])
    got = score_target(enc, y, {"code": code, "proba": np.eye(3)[code]})["f1"]
    assert got == pytest.approx(f1_score(y, code, average="macro", labels=[0, 1, 2]))
    # a binary no/yes target whose held-out rows are all "no", predicted "no": F1 of "yes" is 0
    enc = TargetEncoder.fit(pd.Series(["no", "yes", "no", "yes"]), "b")
    y, code = pd.Series(["no", "no", "no"]), np.zeros(3, dtype=int)
    out = {"code": code, "proba": np.eye(2)[code], "score": 2.0 * code - 1}
    got = score_target(enc, y, out)["f1"]
    want = f1_score(y, enc.labels(code).astype(str), pos_label="yes", zero_division=0.0)
    assert got == want == 0.0


def test_held_out_auc_ranks_by_the_logit_not_its_rounded_probability():
    """float64 expit is exactly 1 from a logit of about 37: confident, perfectly ranked rows
    tied there and the AUC of `multitask fit`'s metrics.json read 0.75, not 1."""
    from sklearn.metrics import roc_auc_score

    from multitask.tabular._model import TabularModel
    from multitask.tabular._scores import score_target

    logits = np.array([60.0, 40.0, 50.0, 38.0, 45.0, -3.0])
    y = pd.Series(["yes", "no", "yes", "no", "yes", "no"])
    assert roc_auc_score(y == "yes", logits) == 1.0  # the oracle
    enc = TargetEncoder.fit(pd.Series(["no", "yes"]), "b")

    class Fixed(TabularModel):
        def _scores(self, frame):
            return {"b": logits}

    out = Fixed(None, [enc], "m", {}).outputs(pd.DataFrame(index=range(6)))["b"]
    assert (out["proba"][:4, 1] == 1.0).all()  # the trap the probabilities set
    np.testing.assert_array_equal(out["score"], logits)
    assert score_target(enc, y, out)["auc"] == 1.0
