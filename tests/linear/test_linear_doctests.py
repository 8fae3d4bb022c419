"""The ``Examples`` sections of the linear estimators' docstrings run and print what they say."""

import doctest
import importlib

import pytest

# the modules whose estimators carry an Examples section
MODULES = [
    "multitask.linear._clustered",
    "multitask.linear._dirty",
    "multitask.linear._group_lasso",
    "multitask.linear._mean_regularized",
    "multitask.linear._trace_norm",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert attempted > 0, f"{name} has no doctest examples"
    assert failed == 0, f"{failed} of {attempted} doctest examples of {name} failed (see stdout)"
