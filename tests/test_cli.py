"""The command line: bench / report / methods (datasets has its own tests)."""

import pytest
from typer.testing import CliRunner

from multitask._cli._catalogue import catalogue
from multitask.cli import app

runner = CliRunner()


def test_methods_lists_every_method_in_the_code():
    import multitask.linear as L

    names = {row[0] for row in catalogue()}
    linear_names = " ".join(n for n in names)
    for est in L.__all__:
        family = est.removesuffix("CV").removesuffix("Regressor").removesuffix("Classifier")
        if family == "MultiTask":
            continue
        assert family in linear_names, f"{est} missing from the catalogue"
    pytest.importorskip("torch")
    from multitask.nn.aggregation import AGGREGATORS
    from multitask.nn.architectures import ARCHITECTURES
    from multitask.nn.weighting import WEIGHTINGS

    for table in (WEIGHTINGS, AGGREGATORS, ARCHITECTURES):
        missing = set(table) - names
        assert not missing, f"{sorted(missing)} missing from the catalogue"
    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0, result.output
    assert "mgda" in result.output and "Sener & Koltun" in result.output


def test_bench_rejects_unknown_method_and_suite(tmp_path):
    result = runner.invoke(app, ["bench", "--methods", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown method" in result.output and "valid methods" in result.output
    result = runner.invoke(app, ["bench", "no_such_suite", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "valid suites" in result.output
    assert not (tmp_path / "results.jsonl").exists()


def test_bench_rejects_suite_file_with_unknown_key(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\ndatasets = ["exam"]\nmethods = ["pooled"]\nfoo = 1\n')
    result = runner.invoke(app, ["bench", str(suite), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "unknown key(s) ['foo']" in result.output


def test_report_on_missing_file(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
