"""A tiny deep run records TAG's task affinity, and the report draws it as a heatmap."""

import numpy as np
import pytest

from multitask.bench import Suite, read_results, run, write_report
from multitask.bench._runner import load_artifacts

pytest.importorskip("torch")


def test_deep_run_reports_an_affinity_heatmap(tmp_path):
    suite = Suite(
        "tiny_affinity",
        datasets=("multi_digits",),
        methods=("pcgrad",),
        seeds=(0,),
        options={"max_epochs": 1, "n_train": 200},
    )
    rows = run(suite, tmp_path)
    assert rows == read_results(tmp_path / "results.jsonl")
    Z = np.array(load_artifacts(tmp_path)[("multi_digits", "pcgrad", 0)]["affinity"])
    assert Z.shape == (2, 2) and np.all(np.isfinite(Z))
    assert np.all(np.diag(Z) > 0)  # a step on a task lowers its own loss
    report = write_report(tmp_path / "results.jsonl", tmp_path / "report.html")
    text = report.read_text()
    assert "multi_digits / pcgrad: task affinity" in text
    assert "multi_digits / single_task: task affinity" not in text  # one task per model


def test_linear_run_records_the_learned_task_relation():
    from multitask.bench._linear import _task_covariance
    from multitask.linear import ClusteredMTLRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    W = rng.normal(size=(5, 1)) @ np.ones((1, 4)) + 0.1 * rng.normal(size=(5, 4))
    est = ClusteredMTLRegressor(alpha=0.1, beta=0.1, n_clusters=2).fit(X, X @ W)
    np.testing.assert_allclose(_task_covariance(est), est.task_relation_)

    class _Proxy:  # no learned relation: cosine of the task weight vectors
        coef_ = np.array([[1.0, 0.0], [1.0, 1.0]])

    np.testing.assert_allclose(_task_covariance(_Proxy()), [[1, 0.5**0.5], [0.5**0.5, 1]])
