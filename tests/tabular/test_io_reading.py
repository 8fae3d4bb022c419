"""How CSV cells are read: only empty cells are missing, whole-column types on large files,
.zst without its package, and large integer and decimal task ids kept exact (fit and predict
alike)."""

from __future__ import annotations

import json
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from multitask.cli import app
from multitask.tabular import read_table
from multitask.tabular._linear import task_form, task_text

BIG_IDS = [100000000000000001, 100000000000000002, 100000000000000003]


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


# -- 2: NA-like text is a value, not a missing cell ---------------------------------------------


def test_na_like_text_is_a_value(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "severity,region,label\nlow,NA,null\nhigh,EU,N/A\nNone,NA,nan\nlow,AS,\nNone,EU,n/a\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = read_table(path)
    assert sorted(frame["severity"].unique()) == ["None", "high", "low"]
    assert sorted(frame["region"].unique()) == ["AS", "EU", "NA"]
    assert frame["label"].isna().tolist() == [False, False, False, True, False]
    assert frame["label"].iloc[2] == "nan"  # a text column: its text, only "" is missing
    # predict reads the categorical columns as text: the same values
    again = read_table(path, text_columns=["severity", "region"])
    assert again["region"].tolist() == frame["region"].tolist()


def test_numbers_with_na_text_are_missing_numbers_with_a_warning(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y,z\n1.5,NA,1\nnan,2,2\n3,None,NaN\n,4,3\n")
    with pytest.warns(UserWarning, match=r"column 'y' holds numbers and the text \['NA', 'None'\]"):
        frame = read_table(path)
    for name in "xyz":
        assert pd.api.types.is_float_dtype(frame[name]), name
    assert frame["x"].isna().tolist() == [False, True, False, True]
    assert frame["y"].isna().tolist() == [True, False, True, False]
    assert frame["z"].isna().tolist() == [False, False, True, False]
    quiet = path.with_name("n.csv")
    quiet.write_text("x\n1\nnan\n-NaN\n")
    with warnings.catch_warnings():  # NaN spellings alone: missing numbers without a word
        warnings.simplefilter("error")
        assert read_table(quiet)["x"].isna().tolist() == [False, True, True]


def test_na_like_class_and_level_survive_the_fit(tmp_path):
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=n)
    region = rng.choice(["EU", "NA", "AS"], n)
    severity = np.where(x > 0.5, "high", np.where(x < -0.5, "low", "None"))
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": x, "region": region, "severity": severity}).to_csv(data, index=False)
    out = tmp_path / "m"
    res = _invoke("fit", str(data), "-t", "severity", "--epochs", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    model = json.loads((out / "model.json").read_text())
    (target,) = model["targets"]
    assert target["kind"] == "multiclass"
    assert sorted(target["classes"]) == ["None", "high", "low"]
    assert "NA" in model["features"]["categorical"]["region"]
    assert "<missing>" not in model["features"]["categorical"]["region"]


# -- 3: a large file's columns typed from all their rows ----------------------------------------


def test_large_csv_column_has_one_type(tmp_path):
    # pandas' chunked (low_memory) parsing types a column per chunk of about 2**18 / n_columns
    # rows: with 8 columns a file of 2**17 rows is read in several chunks
    n = 2**17
    code = np.array(["1", "2"] * (n // 2), dtype=object)
    code[-5] = "x"
    path = tmp_path / "big.csv"
    pd.DataFrame({"code": code, **{f"c{j}": 1 for j in range(7)}}).to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DtypeWarning either
        frame = read_table(path)
    assert frame["code"].map(type).nunique() == 1
    as_text = read_table(path, text_columns=["code"])
    assert frame["code"].tolist() == as_text["code"].tolist()


# -- 4: .zst without zstandard ------------------------------------------------------------------


@pytest.fixture
def no_zstandard(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "zstandard" else real(name, *a, **k),
    )


def _wide(path, n=60):
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)}).to_csv(path, index=False)


def test_zst_without_zstandard_is_a_clear_error(tmp_path, no_zstandard):
    from multitask.tabular import write_table

    path = tmp_path / "t.csv.zst"
    path.write_bytes(b"(\xb5/\xfd")
    with pytest.raises(ValueError, match=r"zstandard.*pip install zstandard"):
        read_table(path)
    with pytest.raises(ValueError, match=r"pip install zstandard"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "o.csv.zst")
    assert not (tmp_path / "o.csv.zst").exists()


def test_cli_zst_without_zstandard(tmp_path, no_zstandard):
    data = tmp_path / "d.csv"
    _wide(data)
    zst = tmp_path / "d.csv.zst"
    zst.write_bytes(data.read_bytes())
    res = _invoke("fit", str(zst), "-t", "y", "--epochs", "1", "--out", str(tmp_path / "z"))
    assert res.exit_code != 0 and "pip install zstandard" in res.output, res.output
    assert not (tmp_path / "z").exists()
    model = tmp_path / "m"
    assert _invoke("fit", str(data), "-t", "y", "--epochs", "1", "--out", str(model)).exit_code == 0
    res = _invoke("predict", str(model), str(data), "--out", str(tmp_path / "p.csv.zst"))
    assert res.exit_code != 0 and "pip install zstandard" in res.output, res.output
    assert "Traceback" not in res.output


# -- 1: large integer task ids ------------------------------------------------------------------


def test_task_text_keeps_large_integer_ids_exact():
    ids = pd.Series(BIG_IDS * 2)
    assert task_form(ids) == "int"
    assert task_text(ids).tolist() == [str(i) for i in BIG_IDS * 2]
    # the same ids as text under the model's "int" form (a predict table read otherwise)
    as_text = pd.Series([str(i) for i in BIG_IDS], dtype=object)
    assert task_text(as_text, "int").tolist() == [str(i) for i in BIG_IDS]
    # whole floats still name integer tasks; other text keeps its own text
    assert task_text(pd.Series([1.0, 2.0, 3.0]), "int").tolist() == ["1", "2", "3"]
    assert task_text(pd.Series(["a", "2.5", "7"], dtype=object), "int").tolist() == [
        "a",
        "2.5",
        "7",
    ]
    assert task_text(pd.Series([1, 2]), "float").tolist() == ["1.0", "2.0"]


def _three_slopes(ids) -> pd.DataFrame:
    """40 rows of each of three tasks ``store``, ``y = slope x`` with slopes -5, 0, 5 (one
    merged task could not fit them)."""
    rng = np.random.default_rng(0)
    rows = []
    for k, t in enumerate(ids):
        for _ in range(40):
            x = rng.normal()
            rows.append({"store": t, "x": x, "y": (k - 1) * 5 * x + rng.normal() * 0.01})
    return pd.DataFrame(rows)


def _fit_independent(data, out):
    """``multitask fit`` of ``y`` by ``store`` with the independent method; its --out."""
    res = _invoke(
        "fit", str(data), "--task-col", "store", "-t", "y", "--method", "independent",
        "--alpha", "0.001", "--out", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_large_integer_task_ids_fit_and_predict(tmp_path):
    data = tmp_path / "big.csv"
    frame = _three_slopes(BIG_IDS)
    frame.to_csv(data, index=False)
    out = _fit_independent(data, tmp_path / "m")
    model = json.loads((out / "model.json").read_text())
    assert model["config"]["tasks"] == [str(t) for t in BIG_IDS]
    pred = tmp_path / "p.csv"
    res = _invoke("predict", str(out), str(data), "--out", str(pred))
    assert res.exit_code == 0, res.output
    got = pd.read_csv(pred)["y"].to_numpy()
    # each row by its own task's model: slopes -5, 0, 5 (one merged task could not fit them)
    assert np.abs(got - frame["y"].to_numpy()).max() < 0.2


def _parquet_decimal(path, frame, precision_scale):
    """``frame`` to Parquet, its ``store`` column as decimals of that precision and scale."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    store = pa.array(frame["store"].map(Decimal).tolist(), type=pa.decimal128(*precision_scale))
    pq.write_table(pa.table({"store": store, "x": frame["x"], "y": frame["y"]}), path)


def test_decimal_task_ids_are_numbers(tmp_path):
    # a Parquet decimal task column was text: its 1.10 was another task than a CSV's 1.1
    ids = pd.Series([Decimal("1.10"), Decimal("1.1"), Decimal("1.20")])
    assert task_form(ids) == "float"
    assert task_text(ids).tolist() == ["1.1", "1.1", "1.2"]
    whole = pd.Series([Decimal(i) for i in BIG_IDS])  # a decimal(20, 0): exact, no float64
    assert task_form(whole) == "int"
    assert task_text(whole).tolist() == [str(i) for i in BIG_IDS]
    frame = _three_slopes(["1.1", "1.2", "1.3"])
    data = tmp_path / "dec.parquet"
    _parquet_decimal(data, frame, (5, 2))
    out = _fit_independent(data, tmp_path / "m")
    assert json.loads((out / "model.json").read_text())["config"]["tasks"] == ["1.1", "1.2", "1.3"]
    csv = tmp_path / "dec.csv"
    frame.to_csv(csv, index=False)
    other = tmp_path / "dec3.parquet"  # another scale: 1.100
    _parquet_decimal(other, frame, (6, 3))
    for source in (data, csv, other):
        pred = tmp_path / f"p_{source.name}.csv"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = _invoke("predict", str(out), str(source), "--out", str(pred))
        assert res.exit_code == 0, res.output
        assert not [w for w in caught if "not fitted on" in str(w.message)], source.name
        got = pd.read_csv(pred)["y"].to_numpy()
        # each row by its own task's model: slopes -5, 0, 5
        assert np.abs(got - frame["y"].to_numpy()).max() < 0.2, source.name
