"""The ``Examples`` sections of the deep half's public docstrings run as written (doctest)."""

import doctest
import importlib
import io

import pytest

pytest.importorskip("torch")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: module -> the objects in it whose docstring has an ``Examples`` section
EXAMPLES = {
    "multitask.nn.tasks": ["Task", "task_losses"],
    "multitask.nn.backward": ["mtl_backward"],
    "multitask.nn._jacobian": ["task_jacobian"],
    "multitask.nn.architectures.hard_sharing": ["HardSharing"],
    "multitask.nn.architectures.soft_sharing": ["SoftSharing"],
    "multitask.nn.architectures.mmoe": ["MMoE"],
    "multitask.nn.architectures.cross_stitch": ["CrossStitch"],
    "multitask.nn.weighting.uncertainty": ["UncertaintyWeighting"],
    "multitask.nn.weighting.dwa": ["DWA"],
    "multitask.nn.aggregation._base": ["GradientAggregator"],
    "multitask.nn.aggregation._upgrad": ["UPGrad"],
    "multitask.nn.aggregation._mgda": ["MGDA"],
    "multitask.training._trainer": ["Trainer"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_run(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    found = {t.name.removeprefix(name + ".") for t in tests}
    missing = sorted(set(EXAMPLES[name]) - found)
    assert not missing, f"{name}: no Examples in the docstrings of {missing}"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    failed = sum(runner.run(t, out=report.write).failed for t in tests)
    assert failed == 0, report.getvalue()
