import torch
from torch import nn

from multitask.nn.architectures.mtan import MTAN


def _model():
    torch.manual_seed(0)
    layers = [nn.Sequential(nn.Linear(4, 6), nn.ReLU()), nn.Sequential(nn.Linear(6, 5), nn.ReLU())]
    return MTAN(layers, [6, 5], {"a": nn.Linear(5, 1), "b": nn.Linear(5, 2)})


def _open_attention(model):
    with torch.no_grad():
        for mods in model.attention.values():
            for g in mods:
                g[2].weight.zero_()
                g[2].bias.fill_(50.0)  # sigmoid(50) == 1 in float32


def test_open_attention_is_hard_sharing():
    model = _model()
    _open_attention(model)
    x = torch.randn(7, 4)
    shared = model.layers[1](model.layers[0](x))
    for t, out in model(x).items():
        torch.testing.assert_close(out, model.heads[t](shared))


def test_masks_follow_the_recursion_on_sequences():
    model = _model()
    x = torch.randn(2, 3, 4)  # (batch, sequence, features)
    out = model(x)
    p1 = model.layers[0](x)
    p2 = model.layers[1](p1)
    g = model.attention["b"]
    a1 = g[0](p1) * p1
    a2 = g[1](torch.cat([p2, a1], -1)) * p2
    torch.testing.assert_close(out["b"], model.heads["b"](a2))
    assert ((g[1](torch.cat([p2, a1], -1)) > 0) & (g[1](torch.cat([p2, a1], -1)) < 1)).all()
