"""The ``Examples`` of the relatedness functions' docstrings run and print what they say."""

import pytest

import multitask.relatedness
from doctest_testutil import assert_examples_last, run_examples

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
    run_examples(name, ())


@pytest.mark.parametrize(
    "name", ["gradient_affinity", "group_score", "group_tasks", "lookahead_affinity"]
)
def test_public_function_keeps_its_examples(name):
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    assert_examples_last(getattr(multitask.relatedness, name), name)
