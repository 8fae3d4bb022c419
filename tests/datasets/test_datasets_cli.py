"""``multitask datasets [NAME]`` through typer's CliRunner."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from multitask.cli import app
from multitask.datasets._info import INFO

runner = CliRunner()


def test_list_needs_no_file(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTITASK_DATA", str(tmp_path / "empty"))
    r = runner.invoke(app, ["datasets"])
    assert r.exit_code == 0, r.output
    for info in INFO.values():
        assert info.name in r.output and f"{info.n_samples:,}" in r.output
    assert not (tmp_path / "empty").exists()


def test_describe_school(real_data):
    r = runner.invoke(app, ["datasets", "school"])
    assert r.exit_code == 0, r.output
    assert "min 22, median 103, max 251" in r.output
    assert "(15362, 28)" in r.output and "Goldstein (1991)" in r.output


def test_describe_multioutput(real_data):
    r = runner.invoke(app, ["datasets", "adult"])
    assert r.exit_code == 0, r.output
    assert "test 16,281, train 32,561" in r.output and "never_married" in r.output


def test_unknown_and_missing(monkeypatch, tmp_path):
    r = runner.invoke(app, ["datasets", "nope"])
    assert r.exit_code == 2 and "valid names" in r.output
    monkeypatch.setenv("MULTITASK_DATA", str(tmp_path))
    monkeypatch.setattr(
        "multitask.datasets._cache._urlopen",
        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")),
    )
    r = runner.invoke(app, ["datasets", "landmine"])
    assert r.exit_code == 1 and "MULTITASK_DATA" in r.output


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, multitask._cli.datasets\n"
        "heavy = {'pandas', 'numpy', 'torch', 'scipy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
