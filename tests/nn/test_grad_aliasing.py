"""Head gradients accumulated over two ``mtl_backward`` calls, when autograd hands one tensor
to two parameters.

A head whose weight is ``W1 + W2`` gets ONE gradient tensor for both from the engine
(``AddBackward`` passes it on unchanged). Written into ``.grad`` without a copy, the two
parameters shared it, and the second call's accumulation into one changed the other (both
read ``g + 2 g'``). Oracle: plain autograd on the task's own (scaled) loss, twice.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import MGDA, Mean
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DBMTL, EqualWeighting, UncertaintyWeighting


class _SumWeightHead(nn.Module):
    """A Linear first (the two-stage path's condition), then a weight made of two parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 4)
        self.w1 = nn.Parameter(torch.randn(1, 4))
        self.w2 = nn.Parameter(torch.randn(1, 4))

    def forward(self, h):
        return nn.functional.linear(torch.relu(self.lin(h)), self.w1 + self.w2)


def _model() -> HardSharing:
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(5, 6), nn.ReLU())
    return HardSharing(trunk, {"a": _SumWeightHead(), "b": _SumWeightHead()})


def _losses(model, x, y):
    out = model(x)
    return {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(out)}


# the factor task a's own parameters get on its gradient: f(L_a, balancer)
BALANCERS = {
    "mean": (Mean, lambda L, bal: 1.0),
    "mgda": (MGDA, lambda L, bal: 1.0),
    "equal": (lambda: EqualWeighting(2), lambda L, bal: 1.0),
    "dbmtl": (lambda: DBMTL(2), lambda L, bal: 1 / (L.detach() + 1e-8)),  # seeded head stage
    "uncertainty": (lambda: UncertaintyWeighting(2), lambda L, bal: bal.weights()[0].detach()),
}


@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_two_accumulated_steps_match_autograd(name):
    make, factor = BALANCERS[name]
    torch.manual_seed(1)
    x, y = torch.randn(8, 5), torch.randn(8, 2)
    model, balancer = _model(), make()
    for _ in range(2):  # the same batch twice: the oracle is twice one step's gradient
        mtl_backward(_losses(model, x, y), model, balancer)
    head = model.heads["a"]
    assert head.w1.grad.data_ptr() != head.w2.grad.data_ptr()
    ref = _model()
    L = _losses(ref, x, y)["a"]
    w = factor(L, balancer)
    g1, g2 = torch.autograd.grad(L * w, [ref.heads["a"].w1, ref.heads["a"].w2])
    torch.testing.assert_close(head.w1.grad, 2 * g1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.w2.grad, 2 * g2, rtol=1e-5, atol=1e-6)
