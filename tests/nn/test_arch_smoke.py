"""Every deep architecture of the survey trains on CPU (and CUDA when present).

Each case builds a tiny model on a tiny batch, takes two optimizer steps, and
checks that the parameters moved, no value is NaN and the loss does not blow
up. The balancer grid is the product of the architectures with every name of
``WEIGHTINGS`` and ``AGGREGATORS`` of the deep core (skipped while those tables
do not exist), plus the plain sum, which needs nothing but the architecture.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from multitask.nn.architectures.cross_stitch import CrossStitch
from multitask.nn.architectures.fully_adaptive import FullyAdaptiveSharing
from multitask.nn.architectures.joint_many_task import JointManyTask
from multitask.nn.architectures.low_supervision import LowSupervision
from multitask.nn.architectures.mmoe import MMoE
from multitask.nn.architectures.mtan import MTAN
from multitask.nn.architectures.ple import CGC, PLE
from multitask.nn.architectures.relationship import DeepRelationshipNetwork
from multitask.nn.architectures.sluice import Sluice
from multitask.nn.architectures.tensor_factorized import TensorFactorized

D_IN, H, N = 6, 8, 16
TASKS = ("a", "b")  # a: regression, b: 3-class classification
OUT = {"a": 1, "b": 3}


def _heads(width=H):
    return {t: nn.Linear(width, OUT[t]) for t in TASKS}


def _mlp(d_in, d_out):
    return nn.Sequential(nn.Linear(d_in, d_out), nn.Tanh())


def build(name: str):
    """A tiny instance of architecture ``name`` on inputs of shape (N, D_IN)."""
    if name == "cross_stitch":
        return CrossStitch([_mlp(D_IN, H), _mlp(H, H)], _heads())
    if name == "sluice":
        return Sluice([_mlp(D_IN, H), _mlp(H, H)], _heads())
    if name == "relationship":
        heads = {t: nn.Sequential(nn.Linear(H, 4), nn.Tanh(), nn.Linear(4, 3)) for t in TASKS}
        heads["a"] = nn.Sequential(nn.Linear(H, 4), nn.Tanh(), nn.Linear(4, 3), _First())
        return DeepRelationshipNetwork(_mlp(D_IN, H), heads, prior_weight=1e-2)
    if name == "fully_adaptive":
        model = FullyAdaptiveSharing([_mlp(D_IN, H), _mlp(H, H)], _heads())
        model.widen_next(torch.tensor([[1.0, 0.2], [0.2, 1.0]]))
        return model
    if name == "low_supervision":
        return LowSupervision([_mlp(D_IN, H), _mlp(H, H)], _heads(), {"a": 1, "b": 2})
    if name == "joint_many_task":
        layers = [_mlp(D_IN, H), _mlp(D_IN + H + 4, H)]
        return JointManyTask(layers, {"b": nn.Linear(H, 3), "a": nn.Linear(H, 1)}, {"b": 3}, 4)
    if name == "tensor_factorized":
        heads = {"a": nn.Linear(4, 1), "b": nn.Linear(4, 3)}
        return TensorFactorized(_mlp(D_IN, H), [H, 4], heads, ranks=2)
    if name == "tensor_factorized_tt":
        heads = {"a": nn.Linear(4, 1), "b": nn.Linear(4, 3)}
        return TensorFactorized(_mlp(D_IN, H), [H, 4], heads, ranks=2, method="tt")
    if name == "mmoe":
        return MMoE([_mlp(D_IN, H) for _ in range(3)], _heads(), D_IN)
    if name == "cgc":
        return CGC([_mlp(D_IN, H)], {t: [_mlp(D_IN, H)] for t in TASKS}, _heads(), D_IN)
    if name == "ple":
        shared = [[_mlp(D_IN, H)], [_mlp(H, H)]]
        own = {t: [[_mlp(D_IN, H)], [_mlp(H, H)]] for t in TASKS}
        return PLE(shared, own, _heads(), [D_IN, H])
    if name == "mtan":
        return MTAN([_mlp(D_IN, H), _mlp(H, H)], [H, H], _heads())
    raise KeyError(name)


class _First(nn.Module):
    """Keep the first output column (a regression head built like a classifier head)."""

    def forward(self, x):
        return x[..., :1]


NAMES = [
    "cross_stitch",
    "sluice",
    "relationship",
    "fully_adaptive",
    "low_supervision",
    "joint_many_task",
    "tensor_factorized",
    "tensor_factorized_tt",
    "mmoe",
    "cgc",
    "ple",
    "mtan",
]


def _batch(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D_IN, generator=g)
    y = {"a": torch.randn(N, 1, generator=g), "b": torch.randint(0, 3, (N,), generator=g)}
    return x.to(device), {k: v.to(device) for k, v in y.items()}


def _losses(out, y):
    return {
        "a": nn.functional.mse_loss(out["a"], y["a"]),
        "b": nn.functional.cross_entropy(out["b"], y["b"]),
    }


def _table(module: str, name: str) -> dict:
    try:
        return dict(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError):
        return {}


def _balancers():
    cases = [pytest.param(None, id="sum")]
    for kind, module, table in (
        ("w", "multitask.nn.weighting", "WEIGHTINGS"),
        ("g", "multitask.nn.aggregation", "AGGREGATORS"),
    ):
        cases += [pytest.param((module, table, k), id=f"{kind}-{k}") for k in _table(module, table)]
    return cases


def _make_balancer(spec, n_tasks):
    if spec is None:
        return None
    module, table, key = spec
    cls = _table(module, table)[key]
    for kwargs in ({"n_tasks": n_tasks}, {}, {"weights": [1.0] * n_tasks}):
        try:
            return cls(**kwargs)
        except TypeError:
            continue
    pytest.skip(f"{key} needs constructor arguments the smoke test does not know")


def _step(model, balancer, opt, x, y):
    out = model(x)
    losses = _losses(out, y)
    extra = model.regularization()
    opt.zero_grad()
    if balancer is None:
        total = sum(losses.values()) + extra
        total.backward()
    else:
        from multitask.nn import mtl_backward

        extra_loss = extra if torch.is_tensor(extra) else None
        mtl_backward(losses, model, balancer, extra_loss=extra_loss)
    opt.step()
    return sum(v.detach() for v in losses.values())


def _run(name, spec, device):
    torch.manual_seed(0)
    model = build(name).to(device)
    balancer = _make_balancer(spec, len(model.task_names))
    params = list(model.parameters())
    if balancer is not None:
        balancer = balancer.to(device)
        params += list(balancer.parameters())
    opt = torch.optim.SGD(params, lr=0.05)
    x, y = _batch(device)
    before = [p.detach().clone() for p in model.parameters()]
    first = _step(model, balancer, opt, x, y)
    _step(model, balancer, opt, x, y)
    with torch.no_grad():
        final = sum(_losses(model(x), y).values())
    assert torch.isfinite(final)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    moved = sum(
        not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
    )
    assert moved > 0, "no parameter changed after two steps"
    assert final < 2 * first + 1.0


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The balancer smoke tests in one thread (the suite's ``one_thread``)."""


@pytest.mark.parametrize("spec", _balancers())
@pytest.mark.parametrize("name", NAMES)
def test_trains_on_cpu(name, spec):
    _run(name, spec, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("spec", _balancers())
@pytest.mark.parametrize("name", NAMES)
def test_trains_on_cuda(name, spec):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _run(name, spec, "cuda")


@pytest.mark.parametrize("name", NAMES)
def test_contract_partitions_parameters(name):
    """Every parameter is shared or belongs to exactly one task (the deep-core contract)."""
    model = build(name)
    shared = {id(p) for p in model.shared_parameters()}
    owners = {}
    for t in model.task_names:
        for p in model.task_parameters(t):
            assert id(p) not in shared, f"a parameter of task {t} is also shared"
            assert id(p) not in owners, f"a parameter belongs to {owners.get(id(p))} and {t}"
            owners[id(p)] = t
    every = {id(p) for p in model.parameters()}
    assert shared | set(owners) == every


@pytest.mark.parametrize("name", NAMES)
def test_forward_keys_and_print(name):
    model = build(name)
    x, _ = _batch("cpu")
    out = model(x)
    assert tuple(out) == model.task_names
    assert out["a"].shape == (N, 1) and out["b"].shape == (N, 3)
    assert type(model).__name__ in repr(model)


@pytest.mark.parametrize(
    "name", ["relationship", "fully_adaptive", "low_supervision", "tensor_factorized"]
)
def test_representation_level_balancing(name):
    """Architectures that expose ``representation`` train with MGDA-UB (Jacobian on it)."""
    aggregators = _table("multitask.nn.aggregation", "AGGREGATORS")
    if "mgda" not in aggregators:
        pytest.skip("no MGDA aggregator yet")
    from multitask.nn import mtl_backward

    torch.manual_seed(0)
    model = build(name)
    x, y = _batch("cpu")
    out = model(x)
    assert model.representation is not None
    before = [p.detach().clone() for p in model.parameters()]
    info = mtl_backward(_losses(out, y), model, aggregators["mgda"](), use_representation=True)
    assert torch.isfinite(info.loss) and info.weights.shape == (2,)
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    after = list(model.parameters())
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, after, strict=True))
