"""Target columns with names ``nn.ModuleDict`` refuses (``type``, ``income.level``, ...): ``fit``
and ``predict`` train on them and show them unchanged; the module uses safe, saved keys.

The metrics are checked against sklearn on the saved predictions of the held-out rows.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, roc_auc_score
from torch import nn
from typer.testing import CliRunner

from multitask.cli import app
from multitask.tabular import FitOptions, fit_table, load_model
from multitask.tabular._module_keys import module_keys
from multitask.tabular._splits import random_split

runner = CliRunner()
# refused by nn.ModuleDict: an attribute, a ".", an attribute again; then a space, and two names
# a naive "." -> "_" would make equal
NAMES = ("type", "income.level", "values", "total score", "a.b", "a_b")


def _table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "cat": rng.choice(["p", "q"], size=n),
            "type": np.where(x1 > 0, "red", "white"),  # binary, text labels
            "income.level": np.digitize(x2, [-0.5, 0.5]),  # multiclass 0/1/2
            "values": 2.0 * x1 + 0.1 * rng.normal(size=n),  # regression
            "total score": x1 - x2 + 0.1 * rng.normal(size=n),
            "a.b": (x2 > 0).astype(int),  # binary 0/1
            "a_b": x2 + 0.1 * rng.normal(size=n),
        }
    )


def _check_metrics(metrics: dict, frame: pd.DataFrame, predictions: pd.DataFrame) -> None:
    """metrics.json against sklearn on the predictions of the held-out rows."""
    _, test = random_split(len(frame), 0.2, 0)
    true, pred = frame.iloc[test], predictions.iloc[test]
    for name in ("values", "total score", "a_b"):
        got = metrics["tasks"][name]
        assert got["mse"] == pytest.approx(mean_squared_error(true[name], pred[name]), rel=1e-9)
        assert got["mae"] == pytest.approx(mean_absolute_error(true[name], pred[name]), rel=1e-9)
    for name, positive in (("type", "white"), ("a.b", 1)):
        got = metrics["tasks"][name]
        assert got["accuracy"] == pytest.approx(accuracy_score(true[name], pred[name]))
        auc = roc_auc_score(true[name] == positive, pred[f"{name}_proba_{positive}"])
        assert got["auc"] == pytest.approx(auc, rel=1e-9)
    got = metrics["tasks"]["income.level"]
    assert got["accuracy"] == pytest.approx(
        accuracy_score(true["income.level"], pred["income.level"])
    )


@pytest.mark.parametrize("method", ["hard_sharing", "mmoe", "cgc", "ple"])
def test_fit_and_predict_keep_the_column_names(tmp_path, method):
    frame = _table()
    data, out, pred_path = tmp_path / "t.csv", tmp_path / "model", tmp_path / "pred.csv"
    frame.to_csv(data, index=False)
    targets = [a for name in NAMES for a in ("--target", name)]
    r = runner.invoke(
        app, ["fit", str(data), *targets, "--method", method, "--epochs", "2", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["tasks"]) == list(NAMES)
    assert list(metrics["targets"]) == list(NAMES)
    assert list(metrics["selection"]["train_loss"]) == list(NAMES)
    assert list(metrics["selection"]["val_metrics"]) == list(NAMES)
    assert (out / "report.html").is_file()  # drawn from metrics["tasks"]: names only in its plots

    saved = json.loads((out / "model.json").read_text())
    assert [t["name"] for t in saved["targets"]] == list(NAMES)
    keys = saved["config"]["architecture"]["module_keys"]
    assert keys == module_keys(NAMES)
    assert keys["values"] != "values" and keys["a.b"] != keys["a_b"] == "a_b"

    r = runner.invoke(app, ["predict", str(out), str(data), "--out", str(pred_path)])
    assert r.exit_code == 0, r.output
    predictions = pd.read_csv(pred_path)
    expected = ["type", "type_proba_red", "type_proba_white"]
    expected += ["income.level", *(f"income.level_proba_{c}" for c in range(3))]
    expected += ["values", "total score", "a.b", "a.b_proba_0", "a.b_proba_1", "a_b"]
    assert list(predictions.columns) == expected
    assert predictions.notna().all().all()
    _check_metrics(metrics, frame, predictions)


def test_empty_name_and_a_name_taken_by_the_fallback():
    # "" falls back to "target", which is another target's own name: it gets "target_1"
    frame = _table().rename(columns={"type": "", "a_b": "target"})
    result = fit_table(frame, FitOptions(("", "target", "values"), "mmoe", epochs=1))
    assert result.model.module_keys == {"": "target_1", "target": "target", "values": "values_1"}
    assert list(result.metrics["tasks"]) == ["", "target", "values"]
    assert list(result.model.predict(frame).columns)[:3] == ["", "_proba_red", "_proba_white"]


def test_module_keys_are_distinct_accepted_and_keep_accepted_names():
    names = ["a.b", "a_b", "a_b_1", "", "type", "type_1", "keys", "_modules", "ok name", "x.1"]
    keys = module_keys(names)
    assert list(keys) == names and len(set(keys.values())) == len(names)
    nn.ModuleDict({k: nn.Identity() for k in keys.values()})  # torch accepts every key
    assert keys["a_b"] == "a_b" and keys["a_b_1"] == "a_b_1" and keys["type_1"] == "type_1"
    assert keys["a.b"] == "a_b_2" and keys["type"] == "type_2" and keys["x.1"] == "x_1"
    assert keys["ok name"] == "ok name" and keys[""] == "target"
    assert module_keys(names) == keys  # deterministic


def test_a_model_saved_without_module_keys_loads_with_its_own_names(tmp_path):
    # models saved before module keys existed had only names ModuleDict accepts, as keys
    frame = _table().rename(columns={"type": "kind", "values": "v"})
    result = fit_table(frame, FitOptions(("kind", "v"), "hard_sharing", epochs=1), out=tmp_path)
    data = json.loads((tmp_path / "model.json").read_text())
    del data["config"]["architecture"]["module_keys"]
    (tmp_path / "model.json").write_text(json.dumps(data))
    loaded = load_model(tmp_path)
    assert loaded.module_keys == {"kind": "kind", "v": "v"}
    pd.testing.assert_frame_equal(loaded.predict(frame), result.model.predict(frame))
