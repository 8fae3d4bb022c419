"""The ``Examples`` sections of the linear estimators' docstrings run and print what they say."""

import doctest
import importlib
import re

import pytest

import multitask.linear

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
    "multitask.linear._trace_norm",
    "multitask.linear._tree_group",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert attempted > 0, f"{name} has no doctest examples"
    assert failed == 0, f"{failed} of {attempted} doctest examples of {name} failed (see stdout)"


@pytest.mark.parametrize("name", multitask.linear.__all__)
def test_public_estimator_keeps_its_examples(name):
    doc = getattr(multitask.linear, name).__doc__
    _, sep, examples = doc.partition("\n    Examples\n    --------\n")
    assert sep, f"{name} has no Examples section"
    assert not re.search(r"\n    -{3,}\n", examples), f"Examples is not the last section of {name}"
