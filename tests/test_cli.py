"""The command line: bench / report / methods (datasets has its own tests)."""

import pytest
from typer.testing import CliRunner

from multitask._cli._catalogue import catalogue
from multitask.cli import app

runner = CliRunner()


def _methods_wide():
    """`multitask methods` on a console wide enough that no cell folds (the module's console
    took its width when it was made: COLUMNS set later does not reach it)."""
    from multitask._cli._common import console

    width = console.width
    console.width = 240
    try:
        return runner.invoke(app, ["methods"])
    finally:
        console.width = width


def test_methods_lists_every_method_in_the_code():
    import multitask.linear as L

    names = {row[0] for row in catalogue()}
    linear_names = " ".join(row[4] for row in catalogue())  # the classes behind the names
    for est in L.__all__:
        family = est.removesuffix("CV").removesuffix("Regressor").removesuffix("Classifier")
        if family == "MultiTask" or issubclass(getattr(L, est), Warning):
            continue  # the CV wrapper and TaskSubsetWarning are no methods
        assert family in linear_names, f"{est} missing from the catalogue"
    pytest.importorskip("torch")
    from multitask.nn.aggregation import AGGREGATORS
    from multitask.nn.architectures import ARCHITECTURES
    from multitask.nn.weighting import WEIGHTINGS
    from multitask.training.samplers import SAMPLERS

    for table in (WEIGHTINGS, AGGREGATORS, ARCHITECTURES, SAMPLERS):
        missing = set(table) - names
        assert not missing, f"{sorted(missing)} missing from the catalogue"
    import multitask.relatedness as R

    methods = {"gradient_affinity", "lookahead_affinity", "group_tasks"}
    assert methods <= set(R.__all__) and methods <= names
    assert "gradient_reversal" in names
    assert all(row[2] for row in catalogue())  # every row names its source
    result = _methods_wide()
    assert result.exit_code == 0, result.output
    assert "mgda" in result.output and "Sener & Koltun" in result.output


def test_methods_names_are_what_the_command_line_takes_and_point_at_the_code():
    import importlib

    from multitask.bench._registry import METHODS, check_names
    from multitask.tabular import LINEAR_METHODS
    from multitask.tabular._deep import ARCHITECTURE_NAMES, make_balancer

    rows = catalogue()
    linear = {name for name, family, *_ in rows if family == "linear"}
    assert set(LINEAR_METHODS) <= linear  # every --method name of fit --task-col is listed
    for name, family, _, _, python, commands in rows:
        if family == "linear" and name not in LINEAR_METHODS:
            assert name[0].isupper() and commands == "python"  # listed by class
        # every command a row claims takes the name, and every one that takes it is claimed
        assert ("bench" in commands) == (name in METHODS)
        if "bench" in commands:
            check_names([], [name])
        fit_method = name in LINEAR_METHODS or name in ARCHITECTURE_NAMES
        assert ("fit --method" in commands) == fit_method
        if "fit --balancer" in commands:
            make_balancer(name, 2)
        elif family in ("weighting", "aggregation"):
            with pytest.raises(ValueError):
                make_balancer(name, 2)
        for path in filter(None, python.split(", ")):
            module, attr = path.rsplit(".", 1)
            assert hasattr(importlib.import_module(module), attr), path
    result = _methods_wide()
    assert "group_lasso" in result.output and "GroupLassoRegressor" in result.output
    assert "fit --balancer" in result.output


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


@pytest.mark.parametrize(
    "line", ["seeds = 3", "seeds = [1.5]", "options = 5", "published = 5", 'methods = "pooled"']
)
def test_bench_rejects_suite_file_with_a_value_of_the_wrong_type(tmp_path, line):
    suite = tmp_path / "s.toml"
    methods = "" if line.startswith("methods") else 'methods = ["pooled"]\n'
    suite.write_text(f'name = "s"\ndatasets = ["exam"]\n{methods}{line}\n')
    result = runner.invoke(app, ["bench", str(suite), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "must be a" in result.output
    assert not (tmp_path / "o").exists()


def test_bench_out_that_is_a_file_is_an_error_not_a_traceback(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    result = runner.invoke(app, ["bench", "--out", str(afile)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "is a file, not a folder" in result.output
    assert afile.read_text() == "mine"


def test_report_on_missing_file(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_report_on_a_folder_or_to_a_folder(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder; give the results.jsonl" in result.output
    (tmp_path / "results.jsonl").write_text("")
    (tmp_path / "adir").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "results.jsonl"), "--out",
                                 str(tmp_path / "adir")])  # fmt: skip
    assert result.exit_code == 2 and "is a folder, not a file" in result.output


# ------------------------------------------------------- bench / report on a toy grid
class _Toy:
    half = "linear"

    def load(self, seed, options):
        return None


class _ToyMethod:
    half = "linear"

    def __init__(self, value, error_on=None):
        self.value, self.error_on = value, error_on

    def run(self, problem, seed, options):
        from multitask.bench._runner import RunOutput

        if seed == self.error_on:
            raise RuntimeError("diverged (simulated)")
        v = self.value + 0.01 * seed
        return RunOutput({("a", "mse", "test"): v, ("_all", "nmse", "test"): v / 2})


@pytest.fixture
def toy(monkeypatch, tmp_path):
    from multitask.bench import _registry

    methods = {"independent": _ToyMethod(1.0), "better": _ToyMethod(0.8)}
    monkeypatch.setattr(_registry, "PROBLEMS", {"toy": _Toy()})
    monkeypatch.setattr(_registry, "METHODS", methods)
    suite = tmp_path / "toy.toml"
    suite.write_text(
        'name = "toy"\ndatasets = ["toy"]\nmethods = ["better"]\nseeds = [0, 1]\n'
        '[[published]]\ndataset = "toy"\nmethod = "better"\nmetric = "nmse"\n'
        'value = 0.123\ncitation = "Somebody, Some Venue 1999, Table 2"\n'
    )
    return methods, suite


def test_bench_writes_results_report_table_and_progress(toy, tmp_path):
    _, suite = toy
    out = tmp_path / "out"
    result = runner.invoke(app, ["bench", str(suite), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "toy / better / seed 1" in result.output and "4/4" in result.output  # progress
    assert "test metrics (mean over seeds)" in result.output  # the rich table
    assert "0.4025" in result.output  # mean nmse of better, seeds 0 and 1: (0.4 + 0.405) / 2
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 8  # 2 methods x 2 seeds x 2 rows
    report = (out / "report.html").read_text()
    assert "0.123" in report and "Somebody, Some Venue 1999" in report and "2 seeds" in report
    # `multitask report` later, on the results file alone: same published numbers
    again = tmp_path / "again.html"
    result = runner.invoke(app, ["report", str(out / "results.jsonl"), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert "0.123" in again.read_text() and "Somebody, Some Venue 1999" in again.read_text()


def test_bench_one_seed(toy, tmp_path):
    _, suite = toy
    result = runner.invoke(app, ["bench", str(suite), "--seeds", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "o" / "report.html").read_text()
    assert "1 seed" in report and "no error bars" in report


def test_bench_with_a_failed_run_reports_the_rest_and_exits_1(toy, tmp_path):
    methods, suite = toy
    methods["better"].error_on = 1
    out = tmp_path / "out"
    result = runner.invoke(app, ["bench", str(suite), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "better / seed 1: RuntimeError: diverged (simulated)" in result.output
    assert "1 run(s) failed" in result.output
    report = (out / "report.html").read_text()
    assert "Failed runs (1)" in report and "diverged (simulated)" in report
    assert len((out / "results.jsonl").read_text().splitlines()) == 6
    methods["better"].error_on = None  # rerun: only the failed cell is computed
    result = runner.invoke(app, ["bench", str(suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "failures.jsonl").exists()
    assert "Failed runs" not in (out / "report.html").read_text()


def test_report_rejects_a_file_that_is_not_results(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"dataset": "x"}\n')
    result = runner.invoke(app, ["report", str(bad), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "r.jsonl:1 is not a result row" in result.output
    assert not (tmp_path / "r.html").exists()
