"""fit_table on synthetic tables, against closed forms (per-task least squares), the
linear estimators fitted by hand, and save / load round trips."""

import json

import numpy as np
import pandas as pd
import pytest

from multitask.tabular import FitOptions, fit_table, load_model
from multitask.tabular._splits import random_split, task_split, validation_split


def _long_table(seed=0, n_per_task=(30, 40, 25), classify=False):
    rng = np.random.default_rng(seed)
    parts = []
    for t, n in enumerate(n_per_task):
        x1, x2 = rng.normal(size=n), rng.normal(3.0, 2.0, size=n)
        c = rng.choice(["u", "v"], size=n)
        y = (t + 1) * x1 - 0.5 * t * x2 + np.where(c == "u", 1.0, -1.0) + 0.1 * rng.normal(size=n)
        parts.append(pd.DataFrame({"school": f"s{t}", "x1": x1, "x2": x2, "c": c, "y": y}))
    frame = pd.concat(parts, ignore_index=True)
    if classify:
        frame["y"] = np.where(frame["y"] > frame["y"].median(), "pass", "fail")
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_independent_ols_matches_per_task_least_squares():
    frame = _long_table()
    opts = FitOptions(("y",), "independent", task_col="school", alpha=0.0, test_size=0.25, seed=3)
    result = fit_table(frame, opts)
    tasks = frame["school"].astype(str).to_numpy(dtype=object)
    train, test = task_split(tasks, 0.25, 3)
    design = np.column_stack(
        [np.ones(len(frame)), frame.x1, frame.x2, (frame.c == "u").astype(float)]
    )
    expected = np.empty(len(frame))
    for t in np.unique(tasks):
        rows_tr = train[tasks[train] == t]
        coef, *_ = np.linalg.lstsq(design[rows_tr], frame.y.to_numpy()[rows_tr], rcond=None)
        expected[tasks == t] = design[tasks == t] @ coef
    got = result.model.predict(frame)["y"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    for t in np.unique(tasks):
        rows = test[tasks[test] == t]
        mse = np.mean((frame.y.to_numpy()[rows] - expected[rows]) ** 2)
        assert result.metrics["tasks"][t]["mse"] == pytest.approx(mse, rel=1e-5)
    assert result.metrics["n_train"] + result.metrics["n_test"] == len(frame)
    y_te = frame.y.to_numpy()[test]
    pooled_mse = np.mean((y_te - expected[test]) ** 2)
    assert result.metrics["pooled"]["mse"] == pytest.approx(pooled_mse, rel=1e-5)
    assert result.metrics["pooled"]["explained_variance"] == pytest.approx(
        1 - pooled_mse / y_te.var(), rel=1e-5
    )


def test_task_split_keeps_two_training_rows_per_task():
    tasks = np.array(["a"] * 2 + ["b"] * 3 + ["c"] * 10, dtype=object)
    train, test = task_split(tasks, 0.9, 0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(15))
    for t in "abc":
        assert (tasks[train] == t).sum() >= 2
    assert (tasks[test] == "c").sum() == 8
    with pytest.raises(ValueError, match="task 'd' has 1 labelled row"):
        task_split(np.array(["a", "a", "d"], dtype=object), 0.2, 0)


def test_linear_classifier_matches_estimator_on_hand_standardised_features(tmp_path):
    from multitask.linear import GroupLassoClassifier

    frame = _long_table(classify=True)
    opts = FitOptions(("y",), "group_lasso", task_col="school", alpha=0.01, seed=1)
    fit_table(frame, opts, out=tmp_path / "m")
    tasks = frame["school"].astype(str).to_numpy(dtype=object)
    train, _ = task_split(tasks, 0.2, 1)
    tr = frame.iloc[train]
    hand = pd.DataFrame(
        {
            "x1": (frame.x1 - tr.x1.mean()) / tr.x1.std(ddof=0),
            "x2": (frame.x2 - tr.x2.mean()) / tr.x2.std(ddof=0),
            "c=u": (frame.c == "u").astype(float),
            "c=v": (frame.c == "v").astype(float),
            "school": tasks,
        }
    )
    est = GroupLassoClassifier(alpha=0.01, task_col="school").fit(
        hand.iloc[train], (tr.y == "pass").astype(int)
    )
    pred = load_model(tmp_path / "m").predict(frame)
    np.testing.assert_allclose(pred["y_proba_pass"], est.predict_proba(hand)[:, 1], atol=1e-9)
    np.testing.assert_array_equal(pred["y"], np.where(est.predict(hand) == 1, "pass", "fail"))
    assert list(pred.columns) == ["y", "y_proba_fail", "y_proba_pass"]


def test_linear_save_load_is_exact_and_unseen_task_uses_mean_model(tmp_path):
    frame = _long_table()
    result = fit_table(frame, FitOptions(("y",), "trace_norm", task_col="school"), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(frame), result.model.predict(frame))
    new = frame.head(3).assign(school="never_seen")
    cfg = loaded.config
    X = loaded.features.transform(new)
    mean_model = X @ np.mean(cfg["coef"], axis=0) + np.mean(cfg["intercept"])
    np.testing.assert_allclose(loaded.predict(new)["y"], mean_model, rtol=1e-12)
    data = json.loads((tmp_path / "m" / "model.json").read_text())
    assert data["half"] == "linear" and data["config"]["tasks"] == ["s0", "s1", "s2"]


def test_whole_number_task_ids_stored_as_floats_name_the_same_tasks():
    """Task ids are compared as text: fitted on integers (a CSV), predicted on the same ids as
    floats (a Parquet file, or a CSV column pandas reads as floats), every row went to the
    unseen-task mean model, silently. Oracle: the predictions on the integer ids."""
    frame = _long_table().assign(school=lambda f: f["school"].str[1:].astype(int))
    model = fit_table(frame, FitOptions(("y",), "trace_norm", task_col="school")).model
    floats = frame.assign(school=frame["school"].astype(float))
    np.testing.assert_array_equal(model.predict(floats)["y"], model.predict(frame)["y"])


def test_a_task_with_one_class_is_named_with_its_label():
    """The error came from the estimator, which sees the codes: "only one class (1.0)"."""
    frame = _long_table(classify=True)
    frame.loc[frame["school"] == "s1", "y"] = "pass"
    with pytest.raises(ValueError, match=r"task 's1' has only one class \('pass'\)"):
        fit_table(frame, FitOptions(("y",), "group_lasso", task_col="school"))


def test_linear_nan_targets_are_left_out_and_inf_is_an_error():
    frame = _long_table()
    frame.loc[[0, 5, 9], "y"] = np.nan
    result = fit_table(frame, FitOptions(("y",), "independent", task_col="school"))
    assert result.metrics["n_unlabelled_rows_dropped"] == 3
    assert result.metrics["n_train"] + result.metrics["n_test"] == len(frame) - 3
    frame.loc[1, "y"] = np.inf
    with pytest.raises(ValueError, match="target 'y' holds an infinite value at row 1;"):
        fit_table(frame, FitOptions(("y",), "independent", task_col="school"))
    frame.loc[1, "y"] = 0.0
    frame.loc[7, "x1"] = -np.inf  # deep half: row numbers of the whole table too
    with pytest.raises(ValueError, match="'x1' holds an infinite value at row 7;"):
        fit_table(frame, FitOptions(("y",), "hard_sharing"))


def _wide_table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["color"] = rng.choice(["red", "green"], size=n)
    frame["reg"] = 2 * X[:, 0] - X[:, 1] + (frame.color == "red") + 0.1 * rng.normal(size=n)
    frame["cls"] = np.where(X[:, 2] > 0, "yes", "no")
    frame.loc[rng.random(n) < 0.5, "cls"] = None  # half the rows unlabelled for cls
    frame["multi"] = np.digitize(X[:, 3], [-0.5, 0.5]).astype(str)
    frame.loc[rng.random(n) < 0.2, "multi"] = np.nan
    return frame


def test_deep_learns_partially_labelled_targets():
    import torch

    torch.set_num_threads(1)
    frame = _wide_table()
    opts = FitOptions(("reg", "cls", "multi"), "hard_sharing", epochs=25, lr=1e-2, seed=0)
    result = fit_table(frame, opts)
    m = result.metrics
    assert m["targets"]["reg"]["kind"] == "regression"
    assert m["targets"]["cls"] == {"kind": "binary", "classes": ["no", "yes"]}
    assert m["targets"]["multi"] == {"kind": "multiclass", "classes": ["0", "1", "2"]}
    assert m["tasks"]["reg"]["explained_variance"] > 0.9
    assert m["tasks"]["cls"]["accuracy"] > 0.9 and m["tasks"]["cls"]["auc"] > 0.95
    assert m["tasks"]["multi"]["accuracy"] > 0.8
    pred = result.model.predict(frame)
    assert list(pred.columns) == [
        "reg", "cls", "cls_proba_no", "cls_proba_yes", "multi",
        "multi_proba_0", "multi_proba_1", "multi_proba_2",
    ]  # fmt: skip
    np.testing.assert_allclose(
        pred[["multi_proba_0", "multi_proba_1", "multi_proba_2"]].sum(axis=1), 1
    )
    assert set(pred["cls"]) <= {"no", "yes"}


@pytest.mark.parametrize(
    ("method", "balancer"), [("mmoe", "pcgrad"), ("cgc", "uncertainty"), ("ple", "mgda")]
)
def test_deep_save_load_is_exact(tmp_path, method, balancer):
    import torch

    torch.set_num_threads(1)
    frame = _wide_table(n=200)
    opts = FitOptions(("reg", "cls"), method, balancer=balancer, epochs=1)
    result = fit_table(frame, opts, out=tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(frame), result.model.predict(frame))
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    assert set(state) == set(result.model.module.state_dict())
    if method == "mmoe":  # a truncated weights file is a clear error, not a traceback
        data = (tmp_path / "m" / "model.pt").read_bytes()
        (tmp_path / "m" / "model.pt").write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match="could not be read safely"):
            load_model(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "metrics.json", "model.json", "model.pt", "report.html",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            FitOptions(("y",), "nope", task_col="school"),
            "unknown method 'nope'; valid deep methods",
        ),
        (FitOptions(("y",), "hard_sharing", task_col="school"), "is deep; with --task-col"),
        (FitOptions(("y",), "group_lasso"), "is linear and needs a long table"),
        (FitOptions(("y", "x1"), "group_lasso", task_col="school"), "has one target column"),
        (
            FitOptions(("y",), "independent", task_col="school", balancer="mgda"),
            "--balancer applies to deep methods only",
        ),
        (FitOptions(("y",), "hard_sharing", balancer="bogus"), "unknown balancer 'bogus'"),
        (FitOptions(("y",), "hard_sharing", kinds={"x1": "binary"}), "'x1' is not a target"),
        (FitOptions(("y",), "hard_sharing", test_size=1.0), "--test-size must be in"),
        (FitOptions(("zz",), "hard_sharing"), r"column\(s\) \['zz'\] not in the table"),
        (FitOptions(("y",), "hard_sharing", device="tpu9"), "--device 'tpu9' is not a device"),
        (FitOptions(("y",), "pooled", task_col="school", kinds={"y": "binary"}), "only"),
        (FitOptions(("y",), "hard_sharing", schedule="warm"), "--schedule 'warm'"),
        (FitOptions(("y",), "hard_sharing", warmup_steps=-2), "--warmup-steps must be"),
        (FitOptions(("y",), "hard_sharing", clip_grad_norm=-1.0), "--clip-grad-norm must be"),
    ],
)
def test_option_errors_before_any_work(opts, message):
    frame = _long_table()
    if opts.kinds.get("y") == "binary":
        frame["y"] = frame["y"] > 0
        message = "has no classifier"
    with pytest.raises(ValueError, match=message):
        fit_table(frame, opts)


def test_preprocessing_is_fitted_on_training_rows_only():
    import torch

    torch.set_num_threads(1)
    frame = _wide_table(n=100)
    frame.loc[:, "a"] = np.arange(100.0)  # the held-out rows shift the mean if used
    train_all, test = random_split(100, 0.3, 5)
    train, val = validation_split(train_all, 0.2, 5)
    frame.loc[test, "color"] = "blue"  # a level seen only in held-out rows
    frame.loc[val, "color"] = "blue"  # ... and in validation rows
    opts = FitOptions(("reg",), "hard_sharing", epochs=1, test_size=0.3, seed=5)
    model = fit_table(frame, opts).model
    stats = model.features.numeric["a"]
    assert stats["mean"] == pytest.approx(frame.a.iloc[train].mean())
    assert stats["scale"] == pytest.approx(frame.a.iloc[train].std(ddof=0))
    assert model.features.categorical["color"] == ["green", "red"]
    assert model.targets[0].mean == pytest.approx(frame.reg.iloc[train].mean())


def test_validation_is_carved_from_training_rows_and_seeded():
    train, test = random_split(500, 0.2, 3)
    fit, val = validation_split(train, 0.25, 3)
    assert len(val) == 100 and len(fit) == 300
    assert not set(val) & set(test) and set(fit) | set(val) == set(train)
    again = validation_split(train, 0.25, 3)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(validation_split(train, 0.25, 4)[1], val)
    assert len(validation_split(train, 0.0, 3)[1]) == 0


def test_deep_epoch_is_chosen_on_validation_and_early_stopping(tmp_path):
    """Oracle: delta_m of each epoch's validation metrics against the first epoch's,
    recomputed here; the saved model scores the validation rows as its best epoch did."""
    import json

    import torch

    from multitask.metrics import auc, delta_m, mse

    torch.set_num_threads(1)
    frame = _wide_table(n=400)
    frame["cls"] = frame["cls"].fillna("no")
    opts = FitOptions(("reg", "cls"), "hard_sharing", epochs=12, lr=0.3, patience=2, seed=1)
    result = fit_table(frame, opts, out=tmp_path / "m")
    sel = result.metrics["selection"]
    history = sel["val_history"]
    assert sel["validated"] and len(history) == sel["epochs_run"]
    flat = [{(t, k): v for t, m in h.items() for k, v in m.items()} for h in history]
    scores = [delta_m(f, flat[0]) for f in flat]
    assert sel["best_epoch"] == 1 + int(np.argmax(scores))
    if sel["epochs_run"] < 12:  # stopped early: exactly `patience` epochs without progress
        assert sel["epochs_run"] == sel["best_epoch"] + 2
    # the kept weights are the best epoch's: recompute its validation metrics
    train_all, _ = random_split(400, 0.2, 1)
    _, val = validation_split(train_all, 0.2, 1)
    model = result.model
    va = frame.iloc[val].reset_index(drop=True)
    out = model.outputs(va)
    reg_scaled = (out["reg"]["value"] - model.targets[0].mean) / model.targets[0].scale
    y_scaled = (va["reg"] - model.targets[0].mean) / model.targets[0].scale
    best = sel["val_metrics"]
    assert mse(y_scaled, reg_scaled) == pytest.approx(best["reg"]["mse"], rel=1e-4)
    assert auc(va["cls"] == "yes", out["cls"]["proba"][:, 1]) == pytest.approx(
        best["cls"]["auc"], rel=1e-4
    )
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved["n_val"] == len(val) and saved["selection"]["best_epoch"] == sel["best_epoch"]
    assert json.loads((tmp_path / "m" / "model.json").read_text())["config"]["patience"] == 2


def test_deep_without_validation_keeps_the_last_epoch():
    import torch

    torch.set_num_threads(1)
    frame = _wide_table(n=120)
    opts = FitOptions(("reg",), "hard_sharing", epochs=3, val_size=0.0)
    sel = fit_table(frame, opts).metrics["selection"]
    curves, weights = sel.pop("train_loss"), sel.pop("loss_weights")
    assert sel == {
        "epochs_run": 3, "best_epoch": 3, "validated": False,
        "note": "no validation rows (--val-size 0)", "val_metrics": {}, "val_history": [],
    }  # fmt: skip
    assert list(curves) == ["reg"] and len(curves["reg"]) == 3
    assert weights == {"reg": [1.0, 1.0, 1.0]}  # equal weighting


def test_validation_that_cannot_choose_an_epoch_is_named():
    from multitask.tabular import TargetEncoder
    from multitask.tabular._deep import _validation_problem

    reg = TargetEncoder.fit(pd.Series([0.5, 1.5, 2.0]), "reg")
    cls = TargetEncoder.fit(pd.Series(["a", "b"]), "cls")
    X = np.zeros((25, 2))
    good = {"reg": np.linspace(-1, 1, 25), "cls": np.arange(25) % 2 * 1.0}
    assert _validation_problem((X, good), [reg, cls]) is None
    one_class = {**good, "cls": np.zeros(25)}
    assert "'cls' has a single class" in _validation_problem((X, one_class), [reg, cls])
    unlabelled = {**good, "reg": np.full(25, np.nan)}
    assert "'reg' has no label" in _validation_problem((X, unlabelled), [reg, cls])
    assert "fewer than 20" in _validation_problem((X[:5], good), [reg, cls])
