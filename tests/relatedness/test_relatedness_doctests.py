"""The ``Examples`` of the relatedness functions' docstrings run and print what they say."""

import doctest
import importlib
import re

import pytest

import multitask.relatedness

# the modules whose public functions carry an Examples section
MODULES = [
    "multitask.relatedness._gradient",
    "multitask.relatedness._grouping",
    "multitask.relatedness._lookahead",
]
# the affinity measures need torch; grouping needs only numpy
NEEDS_TORCH = {
    "multitask.relatedness._gradient",
    "multitask.relatedness._lookahead",
    "gradient_affinity",
    "lookahead_affinity",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert attempted > 0, f"{name} has no doctest examples"
    assert failed == 0, f"{failed} of {attempted} doctest examples of {name} failed (see stdout)"


@pytest.mark.parametrize(
    "name", ["gradient_affinity", "group_score", "group_tasks", "lookahead_affinity"]
)
def test_public_function_keeps_its_examples(name):
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    doc = getattr(multitask.relatedness, name).__doc__
    _, sep, examples = doc.partition("\n    Examples\n    --------\n")
    assert sep, f"{name} has no Examples section"
    assert not re.search(r"\n    -{3,}\n", examples), f"Examples is not the last section of {name}"
