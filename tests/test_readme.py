"""The README's examples run as written, and its two quick-start commands are what CI runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_run(index, request):
    pytest.importorskip("torch")
    block = _blocks("python")[index]
    if "load(" in block:  # reads the real files (MULTITASK_DATA); never downloads in a test
        request.getfixturevalue("real_data")
    exec(compile(block, f"README.md python block {index}", "exec"), {})


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
    commands = _blocks("bash")
    assert len(commands) == 2
    install_and_run, tests = (c.strip() for c in commands)
    for command in (install_and_run, tests):
        assert "-c constraints.txt" in command
        assert "\n" not in command
    assert "multitask bench" in install_and_run
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "ci:test-command" in ci  # .ci/run extracts the README's test command
