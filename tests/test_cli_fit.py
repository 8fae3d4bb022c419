"""``multitask fit`` / ``multitask predict`` end to end (Adult wide, School long) and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from multitask.cli import app

runner = CliRunner()
OUTPUTS = ("model.json", "model.pt", "metrics.json", "report.html")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The CLI's deep fits in one thread (the suite's ``one_thread``)."""


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _adult_csv(path: Path, n: int = 2000) -> pd.DataFrame:
    from multitask.datasets import load

    data = load("adult")
    frame = data.X.iloc[:n].copy()
    for t in ("income", "never_married"):
        frame[t] = np.asarray(data.targets[t])[:n]
    frame.to_csv(path, index=False)
    return pd.read_csv(path)


def _school_csv(path: Path, n_tasks: int = 15) -> pd.DataFrame:
    from multitask.datasets import load

    data = load("school")
    frame = data.X.copy()
    frame["exam_score"] = data.y
    frame = frame[frame[data.task_col] <= n_tasks]
    frame.to_csv(path, index=False)
    return pd.read_csv(path)


def _read_back(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)  # pandas >= 3 reads floats back exactly


def test_adult_fit_then_predict_matches_loaded_model(tmp_path, real_data):
    from multitask.tabular import load_model

    frame = _adult_csv(tmp_path / "adult.csv")
    out = tmp_path / "model"
    r = _invoke(
        "fit", tmp_path / "adult.csv", "--target", "income", "--target", "never_married",
        "--method", "hard_sharing", "--balancer", "pcgrad", "--epochs", 2, "--lr", 0.01,
        "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 400 and set(metrics["tasks"]) == {"income", "never_married"}
    assert metrics["n_val"] == 320 and metrics["n_train"] == 1280  # 20 % of the 1,600 training
    assert f"epoch {metrics['selection']['best_epoch']} of 2 run, chosen on 320" in r.output
    assert metrics["targets"]["income"] == {"kind": "binary", "classes": [0, 1]}
    assert metrics["tasks"]["never_married"]["auc"] > 0.8  # sanity: it learnt something
    report = (out / "report.html").read_text()
    assert "training loss per task" in report and "1 seed" in report
    rows = frame.iloc[::7].reset_index(drop=True)  # a different row set, own order
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = load_model(out).predict(pd.read_csv(tmp_path / "rows.csv"))
    for name in ("pred.csv", "pred.parquet"):
        r = _invoke("predict", out, tmp_path / "rows.csv", "--out", tmp_path / name)
        assert r.exit_code == 0, r.output
        got = _read_back(tmp_path / name)
        assert list(got.columns) == [
            "income", "income_proba_0", "income_proba_1",
            "never_married", "never_married_proba_0", "never_married_proba_1",
        ]  # fmt: skip
        pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)


def test_adult_in_process_model_equals_cli_predict(tmp_path, real_data):
    from multitask.tabular import FitOptions, fit_table, load_model

    frame = _adult_csv(tmp_path / "adult.csv", n=1500)
    frame["income"] = np.where(frame["income"] == 1, ">50K", "<=50K")  # any two labels
    frame.loc[frame.index % 3 == 0, "never_married"] = np.nan  # partially labelled
    frame.to_parquet(tmp_path / "adult.parquet")
    opts = FitOptions(("income", "never_married"), "mmoe", epochs=2, seed=4)
    result = fit_table(frame, opts, out=tmp_path / "model")
    r = _invoke(
        "predict", tmp_path / "model", tmp_path / "adult.parquet", "--out", tmp_path / "p.csv"
    )
    assert r.exit_code == 0, r.output
    got = _read_back(tmp_path / "p.csv")
    expected = result.model.predict(frame)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)
    assert set(got["income"]) <= {">50K", "<=50K"}
    pd.testing.assert_frame_equal(load_model(tmp_path / "model").predict(frame), expected)


def test_school_long_fit_then_predict(tmp_path, real_data):
    from multitask.tabular import FitOptions, fit_table, load_model

    frame = _school_csv(tmp_path / "school.csv")
    out = tmp_path / "model"
    r = _invoke(
        "fit", tmp_path / "school.csv", "--task-col", "task", "--target", "exam_score",
        "--method", "group_lasso", "--alpha", 0.01, "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.json", "report.html"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["targets"]["exam_score"]["kind"] == "regression"
    assert len(metrics["tasks"]) == 15
    r = _invoke("predict", out, tmp_path / "school.csv", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    got = _read_back(tmp_path / "p.csv")
    pd.testing.assert_frame_equal(got, load_model(out).predict(frame), check_exact=True)
    # the in-process estimator of multitask.linear is the oracle (same split, same options)
    opts = FitOptions(("exam_score",), "group_lasso", task_col="task", alpha=0.01)
    model = fit_table(frame, opts).model
    X = pd.DataFrame(model.features.transform(frame), columns=model.features.feature_names)
    X["task"] = frame["task"].astype(str).to_numpy(dtype=object)
    np.testing.assert_allclose(got["exam_score"], model.estimator_.predict(X), rtol=1e-12)
    np.testing.assert_array_equal(got["exam_score"], model.predict(frame)["exam_score"])


# ------------------------------------------------------------------ bad input
def _small_wide(path: Path) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "x": rng.normal(size=40),
            "c": rng.choice(["a", "b"], size=40),
            "y1": rng.integers(0, 2, size=40),
            "y2": rng.normal(size=40),
            "const": 1,
        }
    ).to_csv(path, index=False)


def _small_long(path: Path, *, inf=False, lonely=False) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"t": np.repeat(["a", "b"], 10), "x": rng.normal(size=20), "y": rng.normal(size=20)}
    )
    if inf:
        frame.loc[3, "y"] = np.inf
    if lonely:
        frame = pd.concat([frame, pd.DataFrame({"t": ["c"], "x": [0.0], "y": [1.0]})])
    frame.to_csv(path, index=False)


def _bad(tmp_path: Path, case: str) -> tuple[list, str]:
    wide, long_ = tmp_path / "wide.csv", tmp_path / "long.csv"
    _small_wide(wide)
    _small_long(long_)
    deep = ["--target", "y1", "--target", "y2"]
    if case == "unknown_method":
        return ["fit", wide, *deep, "--method", "transformer"], "valid"
    if case == "unknown_balancer":
        return ["fit", wide, *deep, "--balancer", "magic"], "valid names are"
    if case == "missing_column":
        return ["fit", wide, "--target", "y9"], "['y9'] not in the table; its columns are"
    if case == "one_class":
        return ["fit", wide, "--target", "const", "--target", "y1"], "'const' has 1 distinct"
    if case == "empty":
        (tmp_path / "e.csv").write_bytes(b"")
        return ["fit", tmp_path / "e.csv", *deep], "is empty"
    if case == "not_utf8":
        (tmp_path / "l.csv").write_bytes("x,y1,y2\ncaf\u00e9,1,2\n".encode("latin-1"))
        return ["fit", tmp_path / "l.csv", *deep], "not valid UTF-8"
    if case == "not_a_table":
        (tmp_path / "t.xlsx").write_bytes(b"PK\x03\x04\x00\x00binary\x00stuff")
        return ["fit", tmp_path / "t.xlsx", *deep], "neither CSV nor Parquet"
    if case == "inf_target":
        _small_long(long_, inf=True)
        return ["fit", long_, "--task-col", "t", "--target", "y"], "infinite value"
    if case == "lonely_task":
        _small_long(long_, lonely=True)
        return ["fit", long_, "--task-col", "t", "--target", "y"], "task 'c' has 1 labelled row"
    if case == "no_held_out_row":  # 10 rows a task hold out floor(0.05 x 10) = 0
        args = ["fit", long_, "--task-col", "t", "--target", "y", "--test-size", "0.05"]
        return args, "no task has a held-out row: each holds out floor(0.05 x its rows)"
    if case == "bad_kind":
        return ["fit", wide, *deep, "--kind", "y1"], "write COLUMN=KIND"
    if case == "bad_precision":
        return ["fit", wide, *deep, "--precision", "16-mixed"], "--precision '16-mixed'"
    if case == "bad_schedule":
        return ["fit", wide, *deep, "--schedule", "step"], "--schedule 'step': use one of"
    if case == "bad_clip":
        return ["fit", wide, *deep, "--clip-grad-norm", "0"], "--clip-grad-norm must be positive"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "unknown_method", "unknown_balancer", "missing_column", "one_class", "empty",
        "not_utf8", "not_a_table", "inf_target", "lonely_task", "bad_kind", "bad_precision",
        "bad_schedule", "bad_clip", "no_held_out_row",
    ],
)  # fmt: skip
def test_bad_input_fails_clearly_and_writes_nothing(tmp_path, case):
    args, message = _bad(tmp_path, case)
    out = tmp_path / "out"
    r = _invoke(*args, "--out", out)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and message in r.output, r.output
    assert not any((out / name).exists() for name in OUTPUTS)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_bf16_mixed_fit_records_its_precision_and_predicts(tmp_path):
    from multitask.tabular import load_model

    wide = tmp_path / "wide.csv"
    _small_wide(wide)
    pred = {}
    for precision in ("bf16-mixed", "32"):  # oracle: the float32 fit of the same seed
        out = tmp_path / precision
        r = _invoke(
            "fit", wide, "--target", "y1", "--target", "y2", "--epochs", 2,
            "--precision", precision, "--out", out,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        assert f'"{precision}"' in json.dumps(json.loads((out / "model.json").read_text()))
        pred[precision] = load_model(out).predict(pd.read_csv(wide))
    got, ref = pred["bf16-mixed"], pred["32"]
    # bfloat16 products over two epochs: measured 6e-5 apart on outputs of size 0.2
    np.testing.assert_allclose(got["y2"], ref["y2"], atol=2e-3)
    assert not np.array_equal(got["y2"], ref["y2"])  # it did train in another precision
    assert (got["y1"] == ref["y1"]).mean() >= 0.9


def test_schedule_and_clipping_are_recorded_and_used(tmp_path):
    from multitask.tabular import load_model

    wide = tmp_path / "wide.csv"
    _small_wide(wide)
    pred = {}
    settings = {
        "plain": [],
        "scheduled": ["--schedule", "cosine", "--warmup-steps", 2, "--clip-grad-norm", 0.01],
    }
    for name, extra in settings.items():
        out = tmp_path / name
        args = ["fit", wide, "--target", "y1", "--target", "y2", "--epochs", 3, "--out", out]
        r = _invoke(*args, *extra)
        assert r.exit_code == 0, r.output
        config = json.loads((out / "model.json").read_text())["config"]
        assert config["schedule"] == ("cosine" if extra else None)
        assert config["clip_grad_norm"] == (0.01 if extra else None)
        pred[name] = load_model(out).predict(pd.read_csv(wide))
    assert np.isfinite(pred["scheduled"]["y2"]).all()
    # the same seed and data: only the schedule and the clipping differ
    assert not np.allclose(pred["scheduled"]["y2"], pred["plain"]["y2"])


def test_unknown_names_are_listed(tmp_path):
    args, _ = _bad(tmp_path, "unknown_method")
    r = _invoke(*args)
    assert "hard_sharing" in r.output and "group_lasso" in r.output
    args, _ = _bad(tmp_path, "unknown_balancer")
    r = _invoke(*args)
    assert "pcgrad" in r.output and "uncertainty" in r.output


def test_error_during_writing_leaves_nothing(tmp_path, monkeypatch):
    import multitask.tabular._fit as fit_module

    wide = tmp_path / "wide.csv"
    _small_wide(wide)

    def broken(*args, **kwargs):
        raise ValueError("disk full (simulated)")

    monkeypatch.setattr(fit_module, "write_json", broken)
    out = tmp_path / "out"
    r = _invoke("fit", wide, "--target", "y1", "--epochs", 1, "--out", out)
    assert r.exit_code == 2 and "disk full" in r.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["wide.csv"]


def test_predict_errors(tmp_path):
    _small_long(tmp_path / "long.csv")
    r = _invoke("predict", tmp_path / "nothing", tmp_path / "long.csv", "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and "holds no model.json" in r.output
    r = _invoke(
        "fit", tmp_path / "long.csv", "--task-col", "t", "--target", "y",
        "--method", "independent", "--out", tmp_path / "m",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    pd.DataFrame({"x": [1.0]}).to_csv(tmp_path / "no_task.csv", index=False)
    r = _invoke("predict", tmp_path / "m", tmp_path / "no_task.csv", "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and "lacks the task column 't'" in r.output
    assert not (tmp_path / "p.csv").exists()
    model = json.loads((tmp_path / "m" / "model.json").read_text())
    del model["config"]["coef"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(model))
    r = _invoke("predict", tmp_path / "m", tmp_path / "long.csv", "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and "incomplete or corrupt" in r.output


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from typer.testing import CliRunner; from multitask.cli import app; "
        "r = CliRunner().invoke(app, ['fit', '--help']); assert r.exit_code == 0; "
        "r = CliRunner().invoke(app, ['predict', '--help']); assert r.exit_code == 0; "
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kind_override_and_ignore(tmp_path):
    wide = tmp_path / "wide.csv"
    _small_wide(wide)
    out = tmp_path / "m"
    r = _invoke(
        "fit", wide, "--target", "y1", "--kind", "y1=multiclass", "--ignore", "const",
        "--epochs", 1, "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    model = json.loads((out / "model.json").read_text())
    assert model["targets"][0]["kind"] == "multiclass" and model["targets"][0]["classes"] == [0, 1]
    assert model["features"]["columns"] == ["x", "c", "y2"]
    r = _invoke("predict", out, wide, "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "p.csv")
    assert list(got.columns) == ["y1", "y1_proba_0", "y1_proba_1"] and len(got) == 40


def test_predict_reads_levels_and_booleans_as_at_fit(tmp_path):
    """A categorical level "1" stays "1" in a predict file where pandas would read the column
    as numbers; a boolean feature with an empty cell is imputed, not refused."""
    rng = np.random.default_rng(0)
    grp = np.array(["1", "2", "x"] * 20)
    x, flag = rng.normal(size=60), rng.random(60) > 0.5
    shift = pd.Series(grp).map({"1": 5.0, "2": -5.0, "x": 0.0}).to_numpy()
    pd.DataFrame(
        {"t": np.repeat(["a", "b"], 30), "x": x, "flag": flag, "grp": grp, "y": x + shift + flag}
    ).to_csv(tmp_path / "train.csv", index=False)
    r = _invoke(
        "fit", tmp_path / "train.csv", "--task-col", "t", "--target", "y",
        "--method", "independent", "--alpha", "1e-4", "--out", tmp_path / "m",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = {"t": ["a", "a", "a"], "x": [0.0, 0.0, 0.0], "flag": [True, True, None]}
    predicted = []
    for grp in (["1", "x", "1"], ["1", None, "1"]):  # the 2nd file reads as float64 by default
        pd.DataFrame({**rows, "grp": grp}).to_csv(tmp_path / "rows.csv", index=False)
        r = _invoke("predict", tmp_path / "m", tmp_path / "rows.csv", "--out", tmp_path / "p.csv")
        assert r.exit_code == 0, r.output
        predicted.append(pd.read_csv(tmp_path / "p.csv")["y"].to_numpy())
    # row 0 (grp "1", flag True) is the same row in both files: the same prediction, near 5 + 1
    assert predicted[0][0] == predicted[1][0]
    assert predicted[0][0] == pytest.approx(6.0, abs=0.5)
    assert np.isfinite(predicted[1][2])  # flag missing: imputed with the training median


# ------------------------------------------------------------------ CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("method", ["hard_sharing", "mmoe", "cgc", "ple"])
def test_fit_on_cuda_then_predict_on_cpu(tmp_path, method):
    """--device cuda trains there; the saved model loads and predicts on the CPU, as documented,
    and gives the predictions the in-process model gives."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from multitask.tabular import load_model

    wide, out = tmp_path / "wide.csv", tmp_path / "model"
    _small_wide(wide)
    r = _invoke(
        "fit", wide, "--target", "y1", "--target", "y2", "--method", method,
        "--balancer", "mgda", "--epochs", 3, "--device", "cuda", "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics, "no held-out metrics written"
    model = load_model(out)
    r = _invoke("predict", out, wide, "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "p.csv")
    expected = model.predict(pd.read_csv(wide))
    np.testing.assert_allclose(got["y2"], expected["y2"], rtol=1e-6)
    assert np.isfinite(got["y2"]).all()


@pytest.mark.parametrize(
    ("ids", "asked", "slope"),
    [
        (["01", "02", "2A"], "02", -3.0),  # text ids: "02" alone would read as the number 2
        (["1.5", "2.0", "3.0"], "2.0", -3.0),  # float ids: 2.0 alone reads as whole
        (["1.5", "2.0", "3.0"], "2", -3.0),  # the same number written as an integer
        (["1", "2", "3"], "2.0", -3.0),  # integer ids, asked as a float
    ],
)
def test_predict_names_the_tasks_as_at_fit(tmp_path, ids, asked, slope):
    """Task ids keep the form of the training column (text, integer or float), whatever
    type the values of the table to predict would infer on their own."""
    rng = np.random.default_rng(0)
    slopes = dict(zip(ids, (1.0, slope, 5.0), strict=True))
    x = rng.normal(size=120)
    t = np.repeat(ids, 40)
    y = np.array([slopes[i] for i in t]) * x + 0.01 * rng.normal(size=120)
    pd.DataFrame({"t": t, "x": x, "y": y}).to_csv(tmp_path / "train.csv", index=False)
    r = _invoke(
        "fit", tmp_path / "train.csv", "--task-col", "t", "--target", "y",
        "--method", "independent", "--alpha", "1e-6", "--out", tmp_path / "m",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    (tmp_path / "rows.csv").write_text(f"t,x\n{asked},1.0\n{asked},-2.0\n")
    r = _invoke("predict", tmp_path / "m", tmp_path / "rows.csv", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "p.csv")["y"].to_numpy()
    np.testing.assert_allclose(got, [slope, -2 * slope], atol=0.05)


def test_an_unseen_task_is_predicted_by_the_mean_model_with_a_warning(tmp_path):
    from multitask.tabular import load_model

    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    t = np.repeat(["a", "b"], 30)
    pd.DataFrame({"t": t, "x": x, "y": np.where(t == "a", 1.0, 3.0) * x}).to_csv(
        tmp_path / "train.csv", index=False
    )
    r = _invoke(
        "fit", tmp_path / "train.csv", "--task-col", "t", "--target", "y",
        "--method", "independent", "--alpha", "1e-6", "--out", tmp_path / "m",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    model = load_model(tmp_path / "m")
    with pytest.warns(
        UserWarning, match=r"1 rows name tasks the model was not fitted on \(\['c'\]"
    ):
        got = model.predict(pd.DataFrame({"t": ["c", "a"], "x": [1.0, 1.0]}))["y"].to_numpy()
    np.testing.assert_allclose(got, [2.0, 1.0], atol=0.05)


def test_out_paths_that_cannot_be_written_fail_before_any_work(tmp_path):
    _small_long(tmp_path / "long.csv")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    fit = ["fit", tmp_path / "long.csv", "--task-col", "t", "--target", "y"]
    r = _invoke(*fit, "--out", tmp_path / "afile" / "model")
    assert r.exit_code == 2 and "lies under" in r.output and "which is a file" in r.output
    r = _invoke(*fit, "--method", "independent", "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output
    for out, message in ((tmp_path / "adir", "is a folder, not a file"),
                         (tmp_path / "afile" / "p.csv", "which is a file")):  # fmt: skip
        r = _invoke("predict", tmp_path / "m", tmp_path / "long.csv", "--out", out)
        assert r.exit_code == 2 and message in r.output, r.output
        assert "Traceback" not in r.output


def test_bad_seed_is_named(tmp_path):
    _small_long(tmp_path / "long.csv")
    r = _invoke("fit", tmp_path / "long.csv", "--task-col", "t", "--target", "y", "--seed", "-1",
                "--out", tmp_path / "m")  # fmt: skip
    assert r.exit_code == 2 and "--seed must be a non-negative integer, got -1" in r.output


def test_written_files_have_the_usual_mode(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        _small_long(tmp_path / "long.csv")
        r = _invoke("fit", tmp_path / "long.csv", "--task-col", "t", "--target", "y",
                    "--method", "independent", "--out", tmp_path / "m")  # fmt: skip
        assert r.exit_code == 0, r.output
        for suffix in ("csv", "parquet"):
            out = tmp_path / f"p.{suffix}"
            r = _invoke("predict", tmp_path / "m", tmp_path / "long.csv", "--out", out)
            assert r.exit_code == 0, r.output
            assert stat.S_IMODE(out.stat().st_mode) == 0o644
        for name in ("model.json", "metrics.json", "report.html"):
            assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_ctrl_c_during_fit_says_nothing_was_written(tmp_path, monkeypatch):
    import multitask.tabular

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("fit interrupted (SIGINT) after step 3")

    monkeypatch.setattr(multitask.tabular, "fit_table", interrupted)
    _small_long(tmp_path / "long.csv")
    r = _invoke("fit", tmp_path / "long.csv", "--task-col", "t", "--target", "y",
                "--out", tmp_path / "m")  # fmt: skip
    assert r.exit_code == 130
    assert "interrupted (Ctrl-C): nothing was written" in r.output
