"""Edge inputs of ``fit_table`` and the CLI: duplicate column names, datetime targets, decimal
columns, labels seen only in the validation rows, unknown dataset names, unwritable --out."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from multitask.cli import app
from multitask.tabular import FitOptions, fit_table


@pytest.mark.parametrize(
    ("columns", "doubled"),
    [(["x", "x", "y", "z"], "x"), (["x", "y", "y", "z"], "y")],
)
def test_duplicate_column_names_are_a_clear_error(columns, doubled):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=columns)
    frame["z"] = rng.integers(0, 2, 60)
    opts = FitOptions(targets=("y", "z"), method="hard_sharing", epochs=1)
    with pytest.raises(ValueError, match=rf"several columns named \['{doubled}'\]"):
        fit_table(frame, opts)


def test_unknown_dataset_is_an_error_line():
    result = CliRunner().invoke(app, ["datasets", "nope"])
    assert result.exit_code == 2
    assert "error:" in result.output
    assert "unknown dataset 'nope'" in result.output


@pytest.mark.parametrize(
    "when",
    [
        pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]),
        pd.to_timedelta(["1D", "2D", "3D"]),
        pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]).tz_localize("UTC"),
    ],
    ids=["datetime", "timedelta", "datetime_tz"],
)
def test_date_or_duration_target_is_refused_before_training(tmp_path, when):
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"x": rng.normal(size=n), "r": rng.normal(size=n)})
    frame["when"] = np.asarray(when)[rng.integers(0, 3, n)]
    opts = FitOptions(targets=("when", "r"), method="hard_sharing", epochs=1)
    with pytest.raises(ValueError, match="'when' holds dates, times or durations"):
        fit_table(frame, opts, out=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_date_target_from_parquet_is_an_error_line_in_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"x": rng.normal(size=n), "r": rng.normal(size=n)})
    frame["when"] = pd.to_datetime(rng.choice(["2020-01-01", "2021-01-01", "2022-01-01"], n))
    frame.to_parquet(tmp_path / "t.parquet")
    args = ["fit", str(tmp_path / "t.parquet"), "-t", "when", "-t", "r", "--epochs", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "dates, times or durations" in result.output
    assert not (tmp_path / "m").exists()


def _decimal_table(tmp_path, n=240):
    import decimal

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(0)
    price = np.round(rng.uniform(1, 100, n), 2)
    cost = np.round(price * 2 + rng.normal(size=n), 2)
    y = price * 0.5 + rng.normal(size=n)
    dec = pa.decimal128(10, 2)
    table = pa.table(
        {
            "price": pa.array([decimal.Decimal(f"{p:.2f}") for p in price], dec),
            "noise": pa.array(rng.normal(size=n)),
            "y": pa.array(y),
            "cost": pa.array([decimal.Decimal(f"{v:.2f}") for v in cost], dec),
        }
    )
    path = tmp_path / "decimal.parquet"
    pq.write_table(table, path)
    return path, price, cost


def test_decimal_feature_is_numeric_at_fit_and_predict(tmp_path):
    from multitask.tabular import load_model, read_table

    path, price, _ = _decimal_table(tmp_path)
    frame = read_table(path)
    assert frame["price"].dtype == object  # pandas reads Parquet decimals as Decimal objects
    result = fit_table(
        frame, FitOptions(targets=("y",), method="hard_sharing", epochs=2), out=tmp_path / "m"
    )
    pre = result.model.features
    assert set(pre.numeric) == {"price", "noise", "cost"} and pre.categorical == {}
    assert pre.numeric["price"]["mean"] == pytest.approx(price.mean(), rel=0.05)
    model = load_model(tmp_path / "m")
    again = read_table(path, text_columns=model.text_columns())
    pred = model.predict(again)
    assert np.isfinite(pred["y"].to_numpy(dtype=np.float64)).all()
    # the same as the rows given as floats
    as_float = again.assign(price=price, cost=again["cost"].astype("float64"))
    np.testing.assert_allclose(pred["y"], model.predict(as_float)["y"])


def test_decimal_target_is_a_regression_target(tmp_path):
    from multitask.tabular import read_table

    path, _, cost = _decimal_table(tmp_path)
    frame = read_table(path)
    result = fit_table(frame, FitOptions(targets=("cost", "y"), method="hard_sharing", epochs=2))
    enc = result.model.targets[0]
    assert enc.kind == "regression" and enc.classes is None
    assert enc.mean == pytest.approx(cost.mean(), rel=0.1)
    assert np.isfinite(result.metrics["tasks"]["cost"]["mse"])


def test_decimal_target_with_few_values_is_multiclass_of_numbers():
    import decimal

    from multitask.tabular._targets import TargetEncoder

    s = pd.Series([decimal.Decimal(v) for v in ("1", "2", "3", "2")] + [None], dtype=object)
    enc = TargetEncoder.fit(s, "c")
    assert enc.kind == "multiclass" and enc.classes == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(enc.encode(s), [0, 1, 2, 1, -100])


@pytest.mark.parametrize("labels", [["a", "b", "c"], ["a", "b"]], ids=["multiclass", "binary"])
def test_label_seen_only_in_validation_rows_is_left_out_of_validation(labels):
    from multitask.tabular._splits import random_split, validation_split

    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["y"] = rng.choice(labels, n)
    frame["y2"] = rng.normal(size=n)
    train_all, _ = random_split(n, 0.2, 0)
    _, val = validation_split(train_all, 0.2, 0)
    frame.loc[val[0], "y"] = "rare"  # one row, in the validation part of the training rows
    opts = FitOptions(targets=("y", "y2"), method="hard_sharing", epochs=2)
    with pytest.warns(UserWarning, match=r"'y': 1 validation row\(s\) hold a label not among"):
        result = fit_table(frame, opts)
    enc = result.model.targets[0]
    assert enc.classes == labels and enc.kind == ("binary" if len(labels) == 2 else "multiclass")
    assert result.metrics["selection"]["validated"]
    assert np.isfinite(result.metrics["tasks"]["y"]["accuracy"])


def _wide_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n), "r": rng.normal(size=n)})
    frame["b"] = rng.choice(["no", "yes"], n)
    path = tmp_path / "w.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["fit", "predict"])
def test_out_where_nothing_can_be_created_is_found_before_any_work(tmp_path, command, monkeypatch):
    import multitask.tabular as tabular

    data = _wide_csv(tmp_path)
    called = []
    for name in ("fit_table", "load_model"):  # must not be reached
        monkeypatch.setattr(tabular, name, lambda *a, _n=name, **k: called.append(_n))
    if command == "fit":
        args = ["fit", str(data), "-t", "r", "-t", "b", "--out", "/proc/multitask_model"]
    else:
        args = ["predict", str(tmp_path / "model"), str(data), "--out", "/proc/m_pred.csv"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "cannot be written" in result.output
    assert called == []


def test_check_out_probes_the_nearest_existing_folder(tmp_path, monkeypatch):
    import tempfile

    from multitask._cli._common import check_out

    check_out(tmp_path / "new" / "deeper", folder=True, staged=True)  # fine: creatable
    check_out(tmp_path / "p.csv", folder=False)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(ValueError, match=r"nothing can be created in .* \(Permission denied\)"):
        check_out(tmp_path / "new" / "deeper", folder=True, staged=True)
    with pytest.raises(ValueError, match="cannot be written"):
        check_out(tmp_path / "p.csv", folder=False)


def test_predict_out_with_a_compression_that_is_not_installed_is_found_before_any_work(
    tmp_path, monkeypatch
):
    import importlib.util

    import multitask.tabular as tabular

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "zstandard" else real(name)
    )
    called = []
    monkeypatch.setattr(tabular, "load_model", lambda *a, **k: called.append("load_model"))
    data = _wide_csv(tmp_path)
    out = tmp_path / "p.csv.zst"
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "model"), str(data), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "zstandard" in result.output
    assert called == [] and not out.exists()
