"""The deep core on CUDA: every balancer's step against the CPU's, without host syncs.

Skipped without a CUDA device (CI has none). Oracle: the same balancer on the CPU, from the
same initial model and data (the CPU and CUDA paths of the small solvers, the random draws and
the weightings' state are separate code: ``device.type`` picks them). Float32 on both sides
with TF32 off, so the two agree to rounding unless a path differs in what it computes.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from multitask.nn import Task, mtl_backward
from multitask.nn.aggregation import AGGREGATORS
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import WEIGHTINGS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

# draws from a generator on the tensor's device: CPU and CUDA streams differ by design
RANDOM_ON_DEVICE = {"rlw", "graddrop"}
STEPS = 3


def _balancer(kind: str, name: str, n_tasks: int):
    if kind == "w":
        cls = WEIGHTINGS[name]
        return cls(torch.linspace(0.5, 1.5, n_tasks)) if name == "static" else cls(n_tasks)
    return AGGREGATORS[name]()


def _cases():
    cases = [pytest.param("w", n, False, id=f"w-{n}") for n in WEIGHTINGS]
    for n in AGGREGATORS:
        cases += [pytest.param("g", n, False, id=f"g-{n}")]
        cases += [pytest.param("g", n, True, id=f"g-{n}+ub")]
    return cases


def _model(n_tasks: int) -> HardSharing:
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
    return HardSharing(trunk, {f"t{i}": nn.Linear(32, 1) for i in range(n_tasks)})


def _data(n_tasks: int, batch: int = 64):
    g = torch.Generator().manual_seed(n_tasks)
    x = torch.randn(batch, 20, generator=g)
    # tasks of different scales, so the balancers do not reduce to the mean
    y = torch.randn(batch, n_tasks, generator=g) * torch.logspace(-1, 1, n_tasks)
    return x, y


def _train(model, balancer, x, y, use_rep, steps=STEPS, *, no_sync_after_first=False, absent=None):
    """``steps`` SGD steps through ``mtl_backward``; the later ones with CUDA's sync check;
    ``absent``: per step, the tasks absent from it (loss 0, passed as ``absent_tasks``)."""
    params = list(model.parameters()) + list(balancer.parameters())
    opt = torch.optim.SGD(params, lr=0.05)
    for step in range(steps):
        strict = no_sync_after_first and step > 0
        if strict:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
        try:
            out = model(x)
            losses = {t: nn.functional.mse_loss(out[t][:, 0], y[:, i]) for i, t in enumerate(out)}
            gone = [] if absent is None else absent[step]
            losses.update({t: 0 * out[t].sum() for t in gone})  # as the Trainer makes them
            opt.zero_grad(set_to_none=True)
            mtl_backward(losses, model, balancer, use_representation=use_rep, absent_tasks=gone)
            opt.step()
        finally:
            if strict:
                torch.cuda.set_sync_debug_mode("default")
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu()


@pytest.fixture(autouse=True)
def _no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("n_tasks", [2, 5, 10])
@pytest.mark.parametrize(("kind", "name", "use_rep"), _cases())
def test_step_on_cuda_matches_cpu_and_never_syncs(kind, name, use_rep, n_tasks):
    x, y = _data(n_tasks)
    model = _model(n_tasks)
    start = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    cuda_model = copy.deepcopy(model).cuda()
    cpu = _train(model, _balancer(kind, name, n_tasks), x, y, use_rep)
    cuda_balancer = _balancer(kind, name, n_tasks).cuda()
    cuda = _train(cuda_model, cuda_balancer, x.cuda(), y.cuda(), use_rep, no_sync_after_first=True)
    assert torch.isfinite(cuda).all()
    if name in RANDOM_ON_DEVICE:  # another stream: only a moved, finite model to compare
        assert (cuda - start).abs().max() > 1e-4
    else:
        torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("kind", "name", "use_rep"), _cases())
def test_bfloat16_autocast_step_on_cuda(kind, name, use_rep):
    """Mixed precision as GPU users train: bf16 products and activations (autocast keeps the
    MSE losses in float32), float32 parameters and gradients."""
    n_tasks = 3
    x, y = _data(n_tasks)
    model = _model(n_tasks).cuda()
    balancer = _balancer(kind, name, n_tasks).cuda()
    x, y = x.cuda(), y.cuda()
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
            losses = {t: nn.functional.mse_loss(out[t][:, 0], y[:, i]) for i, t in enumerate(out)}
        model.zero_grad(set_to_none=True)
        mtl_backward(losses, model, balancer, use_representation=use_rep)
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and g.dtype == torch.float32 for g in grads)
        assert all(torch.isfinite(g).all() for g in grads)


def _task_batch(kind: str, g: torch.Generator):
    """(Task, prediction, target) of ``kind`` with some labels missing."""
    B, C = 32, 4
    if kind == "regression":
        target = torch.randn(B, generator=g)
        target[::5] = torch.nan
        return Task("r"), torch.randn(B, generator=g), target
    if kind == "binary":
        target = torch.randint(0, 2, (B,), generator=g).float()
        target[::4] = torch.nan
        return Task("b", "binary"), torch.randn(B, generator=g), target
    if kind == "multiclass":
        target = torch.randint(0, C, (B,), generator=g)
        target[::3] = -100
        return Task("m", "multiclass"), torch.randn(B, C, generator=g), target
    if kind == "multilabel":
        target = torch.randint(0, 2, (B, C), generator=g).float()
        target[::3, 1] = torch.nan
        return Task("l", "multilabel"), torch.randn(B, C, generator=g), target
    target = torch.randint(0, C, (B, 5, 6), generator=g)  # dense: segmentation
    target[:, 0] = -100
    return Task("d", "dense"), torch.randn(B, C, 5, 6, generator=g), target


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass", "multilabel", "dense"])
def test_task_losses_on_cuda_match_cpu_without_sync(kind):
    """The default masked losses are documented as free of host syncs; CPU as the oracle."""
    task, pred, target = _task_batch(kind, torch.Generator().manual_seed(3))
    loss, count = task.loss_and_count(pred, target)
    pred_c, target_c = pred.cuda().requires_grad_(), target.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss_c, count_c = task.loss_and_count(pred_c, target_c)
        loss_c.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(loss_c.cpu(), loss, rtol=1e-5, atol=1e-6)
    assert count_c.item() == count.item() < target.numel()
    assert torch.isfinite(pred_c.grad).all()


# ------------------------------------------------------------- solvers replayed as CUDA graphs
GRAPHED = ["imtl_g", "aligned_mtl", "mgda", "cagrad", "upgrad"]


@pytest.mark.parametrize("T", [2, 5, 10])
@pytest.mark.parametrize("name", GRAPHED)
def test_graph_replay_equals_eager_and_never_syncs(name, T, monkeypatch):
    from multitask.nn.aggregation import _graphs

    g = torch.Generator().manual_seed(T)
    agg = AGGREGATORS[name]().cuda()
    assert agg.graph_safe
    outs = []
    for _ in range(3):  # fresh Jacobians each call: the graph must read its inputs anew
        J = torch.randn(T, 300, generator=g, dtype=torch.float64).cuda()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error" if outs else "default")  # the first captures
        try:
            got = agg(J)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        monkeypatch.setattr(_graphs, "ENABLED", False)
        eager = agg(J)
        monkeypatch.setattr(_graphs, "ENABLED", True)
        torch.testing.assert_close(got, eager, rtol=1e-12, atol=1e-12)
        outs.append(got)
    entries = list(_graphs._GRAPHS[agg].values())
    assert len(entries) == 1 and entries[0] != _graphs._FAILED, "not captured"


def test_graph_follows_a_changed_setting():
    from multitask.nn.aggregation import AlignedMTL, _graphs

    J = torch.randn(4, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64).cuda()
    agg = AlignedMTL().cuda()
    first = agg(J)
    agg.scale = "mean"
    second = agg(J)
    torch.testing.assert_close(second, AlignedMTL("mean").cuda()(J))
    assert not torch.allclose(first, second)
    assert len(_graphs._GRAPHS[agg]) == 2


STATEFUL = {"nash_mtl": ("alpha", 2), "gradvac": ("targets", 1), "pcgrad": (None, 1)}


@pytest.mark.parametrize("T", [2, 5, 10])
@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_stateful_graph_replay_equals_eager_with_its_state(name, T, monkeypatch):
    """Nash-MTL (the last weights), GradVac (the cosine targets) and PCGrad (random orders
    drawn on the CPU) pass their state or draws in and out of the replayed solve; weights,
    state and draws follow the eager run step by step."""
    from multitask.nn.aggregation import _graphs

    state, n_graphs = STATEFUL[name]
    g = torch.Generator().manual_seed(T)
    Js = [torch.randn(T, 300, generator=g, dtype=torch.float64).cuda() for _ in range(4)]
    graphed, eager = AGGREGATORS[name]().cuda(), AGGREGATORS[name]().cuda()
    for J in Js:
        got = graphed(J)
        monkeypatch.setattr(_graphs, "ENABLED", False)
        want = eager(J)
        monkeypatch.setattr(_graphs, "ENABLED", True)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        if state:
            torch.testing.assert_close(
                getattr(graphed, state), getattr(eager, state), rtol=1e-12, atol=1e-12
            )
    entries = list(_graphs._GRAPHS[graphed].values())
    assert len(entries) == n_graphs and _graphs._FAILED not in entries, "not captured"


# ------------------------------------------------- absent tasks: the present tasks' step on CUDA
ABSENT = [["t1"], [], ["t0", "t3"], ["t2"], ["t1", "t2"]]  # per step, of 4 tasks


def _dropping():
    cases = [
        pytest.param("w", n, False, id=f"w-{n}")
        for n, c in WEIGHTINGS.items()
        if c.drops_absent_rows
    ]
    for n, c in AGGREGATORS.items():
        if c.drops_absent_rows:
            cases += [pytest.param("g", n, False, id=f"g-{n}")]
            cases += [pytest.param("g", n, True, id=f"g-{n}+ub")]
    return cases


@pytest.mark.parametrize(("kind", "name", "use_rep"), _dropping())
def test_absent_tasks_on_cuda_match_cpu_without_sync(kind, name, use_rep):
    """``mtl_backward(absent_tasks=...)``: the balancers with ``drops_absent_rows`` step the
    present tasks alone (PresentRows, ``LossWeighting.present_tasks``) on CUDA as on the CPU,
    state included, with no host synchronisation after the first step."""
    x, y = _data(4)
    model = _model(4)
    cuda_model = copy.deepcopy(model).cuda()
    cpu_balancer = _balancer(kind, name, 4)
    cpu = _train(model, cpu_balancer, x, y, use_rep, steps=len(ABSENT), absent=ABSENT)
    cuda_balancer = _balancer(kind, name, 4).cuda()
    cuda = _train(
        cuda_model,
        cuda_balancer,
        x.cuda(),
        y.cuda(),
        use_rep,
        steps=len(ABSENT),
        no_sync_after_first=True,
        absent=ABSENT,
    )
    torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-5)
    cpu_state, cuda_state = cpu_balancer.state_dict(), cuda_balancer.state_dict()
    for key, value in cpu_state.items():
        if isinstance(value, torch.Tensor):
            got = cuda_state[key].cpu()
            torch.testing.assert_close(got, value, rtol=1e-4, atol=1e-5, equal_nan=True)
