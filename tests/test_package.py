"""Package-level promises: import boundaries and a torch-free CLI."""

import subprocess
import sys


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


def test_linear_half_does_not_import_torch():
    _run("import multitask.linear, sys; assert 'torch' not in sys.modules")


def test_nn_half_does_not_import_numba():
    _run("import multitask.nn, sys; assert 'numba' not in sys.modules")


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from multitask.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'multitask --help imported torch'\n"
    )
    _run(code)
