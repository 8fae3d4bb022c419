"""Run the docstring examples of a module (the ``Examples`` sections) for the doctest tests."""

from __future__ import annotations

import doctest
import importlib
import io
import re

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_examples(name: str, objects) -> None:
    """Run every docstring example of module ``name``; fail if one of ``objects`` (names in
    it) has none, or if an example's output differs (doctest's report as the message). Runs
    inside ``torch.random.fork_rng`` when torch is installed, so that an example's
    ``manual_seed`` does not reach the tests after it."""
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name} has no doctest examples"
    found = {t.name.removeprefix(name + ".") for t in tests}
    missing = sorted(set(objects) - found)
    assert not missing, f"{name}: no Examples in the docstrings of {missing}"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    try:
        import torch
    except ImportError:
        failed = sum(runner.run(t, out=report.write).failed for t in tests)
    else:
        with torch.random.fork_rng():
            failed = sum(runner.run(t, out=report.write).failed for t in tests)
    assert failed == 0, report.getvalue()


def assert_examples_last(obj, name: str) -> None:
    """``obj``'s docstring has a numpydoc ``Examples`` section, and it is the last one."""
    _, sep, examples = (obj.__doc__ or "").partition("\n    Examples\n    --------\n")
    assert sep, f"{name} has no Examples section"
    assert not re.search(r"\n    -{3,}\n", examples), f"Examples is not the last section of {name}"
