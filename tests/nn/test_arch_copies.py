"""Every architecture can be copied after a training forward: ``copy.deepcopy``,
``torch.optim.swa_utils.AveragedModel`` and pickling drop the tensors a forward leaves on the
module (the representation, Sluice's subspaces, JMT's label embeddings: non-leaf tensors of
the last batch's graph) and copy everything else."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from test_arch_smoke import D_IN, NAMES, build
from torch import nn
from torch.optim.swa_utils import AveragedModel

from multitask.nn.architectures import HardSharing, SoftSharing

BUILDERS = {name: (lambda name=name: build(name)) for name in NAMES}
BUILDERS["hard_sharing"] = lambda: HardSharing(
    nn.Sequential(nn.Linear(D_IN, 8), nn.Tanh()), {"a": nn.Linear(8, 1), "b": nn.Linear(8, 3)}
)
BUILDERS["soft_sharing"] = lambda: SoftSharing(
    nn.Sequential(nn.Linear(D_IN, 8), nn.Tanh(), nn.Linear(8, 2)), ["a", "b"]
)


def _trained(name):
    torch.manual_seed(0)
    model = BUILDERS[name]()
    out = model(torch.randn(16, D_IN))
    total = sum(y.square().mean() for y in out.values()) + model.regularization()
    total.backward()  # a training step's forward and backward: the forward's tensors stay
    return model


def _same_outputs(a, b):
    x = torch.randn(5, D_IN, generator=torch.Generator().manual_seed(1))
    a.eval(), b.eval()
    with torch.no_grad():
        ya, yb = a(x), b(x)
    assert ya.keys() == yb.keys()
    for t in ya:
        torch.testing.assert_close(ya[t], yb[t], rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_deepcopy_after_a_training_forward(name):
    model = _trained(name)
    clone = copy.deepcopy(model)
    # the forward's graph tensors are the original's alone
    for name_, empty in type(model)._forward_state.items():
        if name_ in model.__dict__:
            assert clone.__dict__[name_] == empty
    _same_outputs(model, clone)
    for (k, p), (k2, q) in zip(model.named_parameters(), clone.named_parameters(), strict=True):
        assert k == k2 and p is not q and torch.equal(p, q)
    assert getattr(model, "representation", None) is not None or name in (
        "cross_stitch", "sluice", "mmoe", "cgc", "ple", "mtan", "joint_many_task", "soft_sharing",
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_averaged_model_and_pickle_after_a_training_forward(name):
    model = _trained(name)
    swa = AveragedModel(model)
    swa.update_parameters(model)
    _same_outputs(model, swa.module)
    buffer = io.BytesIO()
    torch.save(model, buffer)  # the whole module (pickle), as torch.save(model) users do
    buffer.seek(0)
    _same_outputs(model, torch.load(buffer, weights_only=False))
    _same_outputs(model, pickle.loads(pickle.dumps(model)))


def test_the_copy_computes_its_own_representation():
    model = _trained("hard_sharing")
    clone = copy.deepcopy(model)
    assert clone.representation is None
    clone(torch.randn(3, D_IN))
    assert clone.representation.shape == (3, 8)
    assert model.representation.shape == (16, 8)  # the original's is left as it was
