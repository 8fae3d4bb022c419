"""Finite numbers too large for the arithmetic (1e300 in a feature or target) are an error that
names the column and the row, before training or predicting, not NaN outputs and null metrics.

Rows with seed 0 and 300 rows: 5 is a test row, 1 a training row, 2 a validation row.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from multitask.cli import app
from multitask.tabular import FeaturePreprocessor, FitOptions, fit_table
from multitask.tabular._splits import random_split, validation_split

runner = CliRunner()
TEST_ROW, TRAIN_ROW, VAL_ROW = 5, 1, 2


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "y": x1, "z": (x1 > 0).astype(int)})


def test_the_rows_named_in_this_file_are_where_it_says():
    train_all, test = random_split(300, 0.2, 0)
    train, val = validation_split(train_all, 0.2, 0)
    assert TEST_ROW in test and TRAIN_ROW in train and VAL_ROW in val


def _fit(tmp_path, frame):
    data, out = tmp_path / "t.csv", tmp_path / "model"
    frame.to_csv(data, index=False)
    r = runner.invoke(
        app, ["fit", str(data), "-t", "y", "-t", "z", "--epochs", "1", "--out", str(out)]
    )
    return r, out


@pytest.mark.parametrize(
    "row, value, message",
    [
        # std over the table overflows: an infinite scale would zero the column (training row)
        # or, with the row held out, the float32 cast gives inf and NaN outputs (test row)
        (TEST_ROW, 1e300, "holds values too large to standardise (e.g. 1e+300 at row 5)"),
        (TRAIN_ROW, 1e300, "holds values too large to standardise (e.g. 1e+300 at row 1)"),
        (VAL_ROW, -1e300, "holds values too large to standardise (e.g. -1e+300 at row 2)"),
        # a finite scale, but the standardised test value is beyond float32
        (TEST_ROW, 1e100, "holds 1e+100 at row 5, which standardises"),
    ],
)
def test_fit_refuses_a_huge_feature_value_and_writes_nothing(tmp_path, row, value, message):
    frame = _table()
    frame.loc[row, "x2"] = value
    r, out = _fit(tmp_path, frame)
    assert r.exit_code == 2, r.output
    assert "feature column 'x2'" in r.output and message in r.output, r.output
    assert not out.exists()


def test_fit_refuses_a_huge_target_value(tmp_path):
    frame = _table()
    frame.loc[TEST_ROW, "y"] = 1e300  # the test MSE would be inf: null in metrics.json
    r, out = _fit(tmp_path, frame)
    assert r.exit_code == 2, r.output
    assert "target 'y' holds values too large to standardise (e.g. 1e+300 at row 5)" in r.output
    assert not out.exists()


def test_predict_refuses_a_huge_feature_value_before_predicting(tmp_path):
    r, out = _fit(tmp_path, _table())
    assert r.exit_code == 0, r.output
    rows = _table().iloc[:10].copy()
    rows.loc[7, "x1"] = 1e300
    rows.to_csv(tmp_path / "new.csv", index=False)
    pred = tmp_path / "pred.csv"
    r = runner.invoke(app, ["predict", str(out), str(tmp_path / "new.csv"), "--out", str(pred)])
    assert r.exit_code == 2, r.output
    assert "feature column 'x1' holds 1e+300 at row 7" in r.output
    assert "beyond float32's range" in r.output
    assert not pred.exists()


def test_the_preprocessor_alone_refuses_an_infinite_scale():
    frame = pd.DataFrame({"x": [0.0, 1.0, 1e300]})
    with pytest.raises(ValueError, match=r"'x' holds values too large .*1e\+300 at row 2"):
        FeaturePreprocessor.fit(frame)


def test_a_non_finite_model_output_is_an_error_naming_the_row():
    # values inside float32's range can still overflow the network; said, not written as NaN
    frame = _table()
    model = fit_table(frame, FitOptions(("y", "z"), "hard_sharing", epochs=1)).model
    scores = model._scores(frame.iloc[:4])
    scores["z"][2] = np.nan
    model._scores = lambda rows: scores
    with pytest.raises(ValueError, match=r"output for target 'z' at row 2 is not finite"):
        model.predict(frame.iloc[:4])


def test_large_but_representable_values_still_fit_and_score(tmp_path):
    # 1e30 everywhere in a column: standardised to ordinary numbers, nothing is refused
    frame = _table()
    frame["x2"] = frame["x2"] * 1e30
    r, out = _fit(tmp_path, frame)
    assert r.exit_code == 0, r.output
    tasks = json.loads((out / "metrics.json").read_text())["tasks"]
    assert all(v is not None for m in tasks.values() for v in m.values())
