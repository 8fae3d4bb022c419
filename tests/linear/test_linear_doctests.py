"""The ``Examples`` sections of the linear estimators' docstrings run and print what they say."""

import pytest

import multitask.linear
from doctest_testutil import assert_examples_last, run_examples

# the modules whose estimators carry an Examples section
MODULES = [
    "multitask.linear._clustered",
    "multitask.linear._cv",
    "multitask.linear._dirty",
    "multitask.linear._graph_regularized",
    "multitask.linear._group_lasso",
    "multitask.linear._independent",
    "multitask.linear._l1inf",
    "multitask.linear._mean_regularized",
    "multitask.linear._robust",
    "multitask.linear._sparse_group",
    "multitask.linear._task_structure",
    "multitask.linear._trace_norm",
    "multitask.linear._tree_group",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    run_examples(name, ())


@pytest.mark.parametrize("name", multitask.linear.__all__)
def test_public_estimator_keeps_its_examples(name):
    assert_examples_last(getattr(multitask.linear, name), name)
