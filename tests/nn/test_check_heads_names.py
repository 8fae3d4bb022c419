"""``check_heads`` refuses task names ``nn.ModuleDict`` cannot hold, with the task and the reason,
before torch's bare ``KeyError`` from inside an architecture's constructor."""

import pytest
from torch import nn

from multitask.nn.architectures import CGC, MMoE


def _mmoe(name: str) -> MMoE:
    heads = {name: nn.Linear(4, 1), "b": nn.Linear(4, 1)}
    return MMoE([nn.Linear(3, 4)], heads, input_dim=3)


def _cgc(name: str) -> CGC:
    heads = {name: nn.Linear(4, 1), "b": nn.Linear(4, 1)}
    experts = {t: [nn.Linear(3, 4)] for t in heads}
    return CGC([nn.Linear(3, 4)], experts, heads, input_dim=3)


@pytest.mark.parametrize("build", [_mmoe, _cgc])
@pytest.mark.parametrize(
    "name", ["type", "train", "values", "keys", "items", "update", "pop", "training", "_modules"]
)
def test_a_moduledict_attribute_is_refused_by_name(build, name):
    with pytest.raises(ValueError, match=rf"task name '{name}' is an attribute of nn.ModuleDict"):
        build(name)


@pytest.mark.parametrize("build", [_mmoe, _cgc])
def test_a_dot_or_an_empty_name_is_refused(build):
    with pytest.raises(ValueError, match=r"task name 'income.level' contains '\.'"):
        build("income.level")
    with pytest.raises(ValueError, match="non-empty strings, got ''"):
        build("")


@pytest.mark.parametrize("build", [_mmoe, _cgc])
def test_other_unusual_names_are_kept(build):
    for name in ("total score", "x-1", "type_", "Values", "1"):
        assert build(name).task_names == (name, "b")
