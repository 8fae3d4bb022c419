"""Every balancer's ``mtl_backward`` step, and every architecture, off the CPU without a GPU:
on ``meta`` tensors.

``meta`` tensors carry shapes, dtypes and autograd but no data: reading one on the host
(``.item()``, ``.tolist()``, ``.numpy()``, ``.cpu()``, ``bool()``) raises, and so does an
operation that mixes one with a CPU tensor of more than one element. That is what a host
synchronisation or a CPU-only path would do on CUDA, so the step on ``meta`` runs the device
paths (the balancers' and ``mtl_backward``'s own: the CPU-only host paths are chosen by
``is_cpu``) and fails where one of them reads the host. It checks what the CUDA test
(``test_cuda.py``, skipped without a GPU) cannot check here: every device path runs, both steps
of a stateful balancer, with absent tasks, on the parameters' and the representation's
placements and on the three shapes of model ``mtl_backward`` reads differently (a chain of
Linear layers; heads that do not start with a Linear; a trunk that is not a chain). The CUDA
test also checks the numbers against the CPU's; these tensors have none.

GradDrop is not here: its random draws need a generator on the tensor's device, and ``meta``
has none (``test_cuda.py`` runs it on CUDA).
"""

from __future__ import annotations

import pytest
import torch
from test_arch_smoke import D_IN, NAMES, OUT, TASKS, N, build
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import AGGREGATORS, MGDA
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DBMTL, WEIGHTINGS, GradNorm

T = 3
ABSENT = ((), ("t1",))


def _model(shape: str) -> HardSharing:
    torch.manual_seed(0)
    if shape == "chain":  # both stages by hand (the trunk's chain rule)
        trunk = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        heads = {f"t{i}": nn.Linear(32, 1) for i in range(T)}
    elif shape == "deep heads":  # the head stage's per-task path (a head starts with a ReLU)
        trunk = nn.Sequential(nn.Linear(20, 32), nn.Tanh())
        heads = {f"t{i}": nn.Sequential(nn.ReLU(), nn.Linear(32, 1)) for i in range(T)}
    else:  # not a chain: the trunk stage by one batched backward
        trunk = nn.Sequential(nn.Linear(20, 32), nn.LayerNorm(32), nn.GELU())
        heads = {f"t{i}": nn.Linear(32, 1) for i in range(T)}
    return HardSharing(trunk, heads).to("meta")


def _weighting(name: str):
    if name == "static":
        return WEIGHTINGS[name](torch.linspace(0.5, 1.5, T))
    if name == "dbmtl_sigma":  # beta_k = beta / k^sigma: the step count read on the device
        return DBMTL(T, sigma=0.5)
    if name == "gradnorm_last":  # its W: the trunk's last layer
        return GradNorm(T, shared_params="last")
    return WEIGHTINGS[name](T)


def _aggregator(name: str):
    return AGGREGATORS[name]()


def _none(name: str):
    return None


def _cases():
    cases = [pytest.param(_none, n, None, id=n) for n in ("plain sum", "task weights")]
    cases += [pytest.param(_weighting, n, False, id=n) for n in WEIGHTINGS]
    cases += [pytest.param(_weighting, n, False, id=n) for n in ("dbmtl_sigma", "gradnorm_last")]
    for n in AGGREGATORS:
        if n != "graddrop":  # (no generator on meta: see the module docstring)
            cases += [pytest.param(_aggregator, n, None, id=n)]
            cases += [pytest.param(_aggregator, n, True, id=f"{n}+ub")]
    return cases


@pytest.mark.parametrize(("make", "name", "use_rep"), _cases())
@pytest.mark.parametrize("shape", ["chain", "deep heads", "not a chain"])
def test_step_runs_on_the_device_path_without_reading_the_host(make, name, use_rep, shape):
    x, y = torch.empty(16, 20, device="meta"), torch.empty(16, T, device="meta")
    for absent in ABSENT:
        model = _model(shape)
        balancer = make(name)
        balancer = None if balancer is None else balancer.to("meta")
        weights = {f"t{i}": 0.5 + i for i in range(T)} if name == "task weights" else None
        for _ in range(2):  # a stateful balancer's second step reads its state
            out = model(x)
            losses = {t: nn.functional.mse_loss(out[t][:, 0], y[:, i]) for i, t in enumerate(out)}
            info = mtl_backward(
                losses,
                model,
                balancer,
                use_representation=use_rep,
                absent_tasks=absent,
                record_cosines=True,
                task_weights=weights,
            )
            for p in model.parameters():
                assert p.grad is not None and p.grad.device.type == "meta"
                assert p.grad.shape == p.shape
            assert info.loss.device.type == "meta" and info.loss.shape == ()
            assert info.losses.device.type == "meta" and info.losses.shape == (T,)
            assert info.cosines.device.type == "meta" and info.cosines.shape == (T, T)
            if info.weights is not None:
                assert info.weights.device.type == "meta" and info.weights.shape == (T,)
            model.zero_grad(set_to_none=True)


def test_a_host_read_fails_on_meta():
    """What the test above relies on: each host read raises on a ``meta`` tensor, and so does
    mixing one with a ``(T,)`` CPU tensor (a 0-d one is allowed, as on CUDA)."""
    x = torch.ones(T, device="meta")
    reads = [
        lambda: x[0].item(),
        x.tolist,
        x.numpy,
        x.cpu,
        lambda: bool(x[0]),
        lambda: x + torch.ones(T),
    ]
    for read in reads:
        with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
            read()
    assert (x + torch.tensor(1.0)).device.type == "meta"


@pytest.mark.parametrize("name", NAMES)
def test_every_architecture_steps_on_the_device_path(name):
    """The survey's architectures (``test_arch_smoke``'s tiny instances): forward, the
    architecture's regularisation and a step of the plain sum, MGDA and DB-MTL on ``meta``
    tensors (a gate, a mixing matrix or a penalty that read the host would raise)."""
    for balancer in (None, MGDA(), DBMTL(len(TASKS))):
        torch.manual_seed(0)
        model = build(name).to("meta")
        out = model(torch.empty(N, D_IN, device="meta"))
        assert {t: out[t].shape[-1] for t in TASKS} == OUT
        losses = {t: out[t].mean() for t in out}
        balancer = None if balancer is None else balancer.to("meta")
        mtl_backward(losses, model, balancer, extra_loss=model.regularization())
        for p in model.parameters():
            assert p.grad is None or (p.grad.device.type == "meta" and p.grad.shape == p.shape)
        assert any(p.grad is not None for p in model.shared_parameters())
