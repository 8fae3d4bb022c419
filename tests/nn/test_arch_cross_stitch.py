import copy

import pytest
import torch
from torch import nn

from multitask.nn.architectures.cross_stitch import CrossStitch


def _layers():
    return [nn.Sequential(nn.Linear(5, 7), nn.ReLU()), nn.Sequential(nn.Linear(7, 7), nn.Tanh())]


def test_initialisation_follows_the_paper():
    torch.manual_seed(0)
    heads = {t: nn.Linear(7, 1) for t in "abc"}
    model = CrossStitch(_layers(), heads)
    for alpha in model.alphas.values():
        expected = torch.full((3, 3), 0.05)
        expected.fill_diagonal_(0.9)
        torch.testing.assert_close(alpha.detach(), expected)
        assert not torch.equal(alpha.detach(), torch.ones(3, 3))


def test_identity_alphas_equal_independent_networks():
    torch.manual_seed(0)
    heads = {t: nn.Linear(7, 2) for t in "ab"}
    model = CrossStitch(_layers(), heads)
    with torch.no_grad():
        for alpha in model.alphas.values():
            alpha.copy_(torch.eye(2))
    # the oracle: each task's column and head run alone, as independent networks
    independent = {t: nn.Sequential(*copy.deepcopy(model.columns[t]), heads[t]) for t in "ab"}
    x = torch.randn(11, 5)
    out = model(x)
    for t in "ab":
        torch.testing.assert_close(out[t], independent[t](x))


def test_mixing_matches_the_linear_combination():
    torch.manual_seed(1)
    layer = nn.Linear(3, 4)
    model = CrossStitch([layer], {"a": nn.Identity(), "b": nn.Identity()})
    x = torch.randn(6, 3)
    xa, xb = model.columns["a"][0](x), model.columns["b"][0](x)
    out = model(x)
    torch.testing.assert_close(out["a"], 0.9 * xa + 0.1 * xb)
    torch.testing.assert_close(out["b"], 0.1 * xa + 0.9 * xb)


def test_works_on_sequences_with_a_transformer_layer():
    torch.manual_seed(0)
    block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    model = CrossStitch([block], {"a": nn.Linear(8, 1), "b": nn.Linear(8, 3)})
    out = model(torch.randn(2, 5, 8))
    assert out["a"].shape == (2, 5, 1) and out["b"].shape == (2, 5, 3)


def test_bad_stitch_index_raises():
    with pytest.raises(ValueError, match="stitch_after"):
        CrossStitch(_layers(), {"a": nn.Identity()}, stitch_after=[5])
