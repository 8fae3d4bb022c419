"""CrossStitch and Sluice copy the given layer stack once per task, ties included.

A layer used at two depths of ``layers`` (weight tying, one block applied twice) is one
module inside each task's column, and a separate one across columns. Copying layer by layer
used to untie it: each column got two blocks (twice the parameters) that diverged after a
step.
"""

import copy

import pytest
import torch
from torch import nn

from multitask.nn.architectures import CrossStitch, Sluice

torch.set_num_threads(1)

TASKS = ("a", "b")


def _heads():
    torch.manual_seed(1)
    return {t: nn.Linear(4, 1) for t in TASKS}


def _tied():
    torch.manual_seed(0)
    block = nn.Linear(4, 4)  # 20 parameters, applied twice
    return [block, nn.Tanh(), block]


def _untied():
    torch.manual_seed(0)
    return [nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4)]


def _plain(model):
    """The model with no mixing: each column is the given stack run alone."""
    if isinstance(model, Sluice):
        with torch.no_grad():
            for alpha in model.alphas:
                alpha.copy_(torch.eye(alpha.shape[0]))
    return model


BUILDERS = {
    "cross_stitch": lambda layers, heads: CrossStitch(layers, heads, stitch_after=[]),
    "sluice": lambda layers, heads: _plain(Sluice(layers, heads, skip_layers=[2])),
}


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_tied_block_stays_tied_within_each_column(name):
    layers = _tied()
    model = BUILDERS[name](layers, _heads())
    assert _count(nn.ModuleList(layers)) == 20
    for t in TASKS:
        col = model.columns[t]
        assert col[0] is col[2]  # the tie, kept
        assert col[0] is not layers[0]  # a copy, not the given block
        assert _count(col) == 20
    assert model.columns["a"][0] is not model.columns["b"][0]  # separate across columns
    own = {id(p) for p in model.task_parameters("a")}
    assert own.isdisjoint(id(p) for p in model.task_parameters("b"))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_tied_column_trains_as_the_given_stack(name):
    layers, heads = _tied(), _heads()
    reference = nn.Sequential(*copy.deepcopy(layers))  # the given stack, alone (tie kept)
    head_a = copy.deepcopy(heads["a"])
    model = BUILDERS[name](layers, heads)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    out = model(x)
    torch.testing.assert_close(out["a"], head_a(reference(x)))
    out["a"].square().sum().backward()
    head_a(reference(x)).square().sum().backward()
    # the tied block's gradient sums its two uses, as the given stack's does
    torch.testing.assert_close(model.columns["a"][0].weight.grad, reference[0].weight.grad)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    col = model.columns["a"]
    assert col[0] is col[2] and torch.equal(col[0].weight, col[2].weight)
    assert not torch.equal(col[0].weight, model.columns["b"][0].weight)  # b got no gradient


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_untied_stacks_are_copied_as_before(name):
    layers, heads = _untied(), _heads()
    reference = nn.Sequential(*copy.deepcopy(layers))
    head_copies = copy.deepcopy(heads)
    model = BUILDERS[name](layers, heads)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    out = model(x)
    for t in TASKS:
        col = model.columns[t]
        assert col[0] is not col[2] and _count(col) == 40
        assert all(c is not g for c, g in zip(col, layers, strict=True))
        for c, g in zip(col, layers, strict=True):
            for p, q in zip(c.parameters(), g.parameters(), strict=True):
                assert p is not q and torch.equal(p, q)
        torch.testing.assert_close(out[t], head_copies[t](reference(x)), rtol=0, atol=0)
