"""What the per-step overhead cuts of ``mtl_backward`` must keep (22 Nov, second session).

- GradDrop's output becomes the shared ``.grad`` without a copy (views of it, as ``w @ J``):
  the gradients still equal the paper's mask applied to the rows of ``T`` separate
  ``autograd.grad`` calls, they accumulate over calls and survive ``zero_grad`` and an optimiser
  step; a non-linear aggregator that does not declare a new output keeps getting a copy.
- The seeded generator remembers its device instead of reading it per draw: the memo follows
  ``reset`` and ``load_state``, and the draws stay those of ``torch.manual_seed`` + ``randperm``.
- GradVac's targets built through numpy round exactly as ``torch.tensor`` does.
- The step's reported objective is the sum of the losses (and of ``extra_loss``).
"""

import numpy as np
import pytest
import torch
from aggregator_checks import graddrop_uniforms
from jacobian_oracle import per_task_rows
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import GradDrop, Mean, PCGrad
from multitask.nn.aggregation._base import GradientAggregator
from multitask.nn.aggregation._gradvac import _tensor
from multitask.nn.aggregation._rng import SeededGenerator
from multitask.nn.architectures import HardSharing

torch.set_num_threads(1)


def _model(n_tasks: int = 2, seed: int = 0) -> HardSharing:
    """The speed benchmark's model, narrower: Linear, ReLU, Linear, ReLU; linear heads."""
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())
    return HardSharing(trunk, {f"t{i}": nn.Linear(8, 1) for i in range(n_tasks)})


def _losses(model, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 6, generator=g)
    y = torch.randn(32, len(model.task_names), generator=g)
    out = model(x)
    return {t: nn.functional.mse_loss(out[t][:, 0], y[:, i]) for i, t in enumerate(out)}


def _graddrop_oracle(J: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Chen et al. (NeurIPS 2020), eq. (1) and the mask below it, on the rows of ``J``."""
    mass = np.abs(J).sum(axis=0)
    P = 0.5 * (1 + J.sum(axis=0) / np.where(mass > 0, mass, 1))
    keep = ((P > U) & (J > 0)) | ((P < U) & (J < 0))
    return (keep * J).sum(axis=0)


def _shared_grad(model) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])


@pytest.mark.parametrize("n_tasks", [2, 5])
def test_graddrop_grad_views_equal_the_mask_on_separate_rows(n_tasks):
    model = _model(n_tasks)
    shared = list(model.shared_parameters())
    J = per_task_rows(_losses(model), model.task_names, shared).double().numpy()
    U = graddrop_uniforms(3, 2 * J.shape[1], np.float32)  # two steps of float32 draws
    mtl_backward(_losses(model), model, GradDrop(seed=3), use_representation=False)
    first = _graddrop_oracle(J, U[: J.shape[1]])
    np.testing.assert_allclose(_shared_grad(model).double().numpy(), first, atol=1e-6)
    # the views share one vector: each still behaves as its own tensor
    assert shared[0].grad.shape == shared[0].shape
    heads = {t: [p.grad.clone() for p in model.task_parameters(t)] for t in model.task_names}
    agg = GradDrop(seed=3)
    model.zero_grad(set_to_none=True)
    mtl_backward(_losses(model), model, agg, use_representation=False)
    mtl_backward(_losses(model), model, agg, use_representation=False)  # accumulates
    second = _graddrop_oracle(J, U[J.shape[1] :])
    np.testing.assert_allclose(_shared_grad(model).double().numpy(), first + second, atol=1e-6)
    for t in model.task_names:  # heads: their own task's gradient, twice
        for p, g in zip(model.task_parameters(t), heads[t], strict=True):
            torch.testing.assert_close(p.grad, 2 * g, atol=1e-6, rtol=1e-5)
    shared[0].grad.zero_()  # one view zeroed leaves the others
    assert float(shared[1].grad.abs().sum()) > 0
    before = [p.detach().clone() for p in shared]
    grads = [p.grad.clone() for p in shared]
    torch.optim.SGD(shared, lr=0.5).step()
    for p, b, g in zip(shared, before, grads, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.5 * g, atol=1e-7, rtol=0)
    model.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0 for p in model.parameters())


class _KeptOutput(GradientAggregator):
    """A non-linear aggregator that returns a tensor it keeps (and changes later)."""

    linear = False

    def __init__(self):
        super().__init__()
        self.out = None

    def forward(self, jacobian):
        self.out = jacobian.sum(dim=0)
        return self.out


def test_an_aggregator_that_keeps_its_output_gets_a_copy():
    model = _model()
    shared = list(model.shared_parameters())
    want = per_task_rows(_losses(model), model.task_names, shared).sum(dim=0)
    agg = _KeptOutput()
    assert not agg._output_is_new and GradDrop._output_is_new
    mtl_backward(_losses(model), model, agg, use_representation=False)
    agg.out.fill_(1e6)  # the aggregator reuses its tensor: .grad must not move
    torch.testing.assert_close(_shared_grad(model), want, atol=1e-6, rtol=1e-5)


def test_batched_step_equals_separate_grads_float32():
    """Mean on the benchmark's layer kinds, float32: .grad equals the mean of T separate
    autograd.grad rows to 1e-6 (shared) and each head its own task's gradient."""
    model = _model(3)
    shared = list(model.shared_parameters())
    losses = _losses(model)
    oracle = per_task_rows(losses, model.task_names, shared).mean(dim=0)
    heads = {
        t: torch.autograd.grad(losses[t], list(model.task_parameters(t)), retain_graph=True)
        for t in model.task_names
    }
    info = mtl_backward(_losses(model), model, Mean())
    torch.testing.assert_close(_shared_grad(model), oracle, atol=1e-6, rtol=1e-5)
    for t in model.task_names:
        for p, g in zip(model.task_parameters(t), heads[t], strict=True):
            torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5)
    total = sum(float(v.detach()) for v in losses.values())
    assert info.loss.grad_fn is None and abs(float(info.loss) - total) < 1e-5


def test_reported_objective_includes_extra_loss_and_extra_reaches_heads():
    model = _model()
    extra = sum(p.pow(2).sum() for p in model.parameters()) * 0.1
    losses = _losses(model)
    want = {
        id(p): g
        for p, g in zip(
            model.parameters(),
            torch.autograd.grad(
                sum(losses.values()) + extra, list(model.parameters()), retain_graph=True
            ),
            strict=True,
        )
    }
    info = mtl_backward(losses, model, Mean(), extra_loss=extra)
    assert abs(float(info.loss) - float((sum(losses.values()) + extra).detach())) < 1e-5
    for t in model.task_names:  # heads: their task's gradient plus the extra loss's
        for p in model.task_parameters(t):
            torch.testing.assert_close(p.grad, want[id(p)], atol=1e-6, rtol=1e-5)


def test_seeded_generator_memo_follows_reset_and_state():
    sg = SeededGenerator(11)
    g = sg.get("cpu")
    assert sg.get(torch.device("cpu")) is g and sg.get("cpu:0") is g
    first = torch.randperm(5, generator=g).tolist()
    torch.manual_seed(11)
    assert first == torch.randperm(5).tolist()
    state = sg.state()
    after = torch.randperm(5, generator=sg.get()).tolist()
    sg.reset()
    assert sg.get() is not g
    assert torch.randperm(5, generator=sg.get()).tolist() == first
    sg.load_state(state)  # resumes after the first draw
    assert torch.randperm(5, generator=sg.get("cpu")).tolist() == after
    sg._type = "elsewhere"  # a generator on another device is not handed out for the CPU
    fresh = sg.get("cpu")
    assert fresh.device.type == "cpu" and torch.randperm(5, generator=fresh).tolist() == first


def test_pcgrad_orders_are_the_documented_draws():
    pc = PCGrad(seed=4)
    orders = [pc._host_orders(3) for _ in range(2)]
    torch.manual_seed(4)
    want = [[torch.randperm(3).tolist() for _ in range(3)] for _ in range(2)]
    assert orders == want


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_gradvac_targets_round_as_torch_tensor(dtype):
    rows = np.random.default_rng(0).uniform(-1, 1, size=(4, 4)).tolist()
    rows[0][1] = 1.0 + 2.0**-30  # rounds in float32 and float16
    got = _tensor(rows, dtype)
    want = torch.tensor(rows, dtype=dtype)
    assert got.dtype == dtype and torch.equal(got, want)


def test_grad_views_of_an_offset_vector_and_a_transposed_parameter():
    """``.grad`` views made with one ``as_strided`` each: right pieces of a vector that is itself
    a view (a storage offset), a transposed (non-contiguous) parameter as a contiguous piece."""
    from multitask.nn._jacobian import _set_or_add_grad

    params = [
        nn.Parameter(torch.randn(3, 4)),
        nn.Parameter(torch.randn(4, 3).T),  # not contiguous
        nn.Parameter(torch.randn(5)),
    ]
    sizes = [p.numel() for p in params]
    big = torch.arange(7 + sum(sizes), dtype=torch.float32)
    flat = big[7:]  # storage offset 7
    _set_or_add_grad(params, flat)
    start = 0
    for p, n in zip(params, sizes, strict=True):
        assert p.grad.shape == p.shape
        torch.testing.assert_close(p.grad.reshape(-1), flat[start : start + n], rtol=0, atol=0)
        start += n
    want = 2 * flat[-5:]
    _set_or_add_grad(params, big.clone()[7:])  # accumulates into the views
    torch.testing.assert_close(params[2].grad, want, rtol=0, atol=0)
    strided = torch.arange(2 * sum(sizes), dtype=torch.float32)[::2]  # stride 2: copied first
    for p in params:
        p.grad = None
    _set_or_add_grad(params, strided)
    torch.testing.assert_close(params[0].grad.reshape(-1), strided[:12], rtol=0, atol=0)


def test_benchmark_imports_a_revision_next_to_the_working_tree(monkeypatch, tmp_path):
    """``balancer_speed.py --against REV``: the revision's package, imported under another name,
    runs the same step as the working tree's and gives the same gradients (HEAD: same code)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "linear"))
    from bench_scripts import load_script

    bench = load_script("balancer_speed")
    root = Path(__file__).resolve().parents[2]
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True).returncode:
        pytest.skip("not a git checkout: no revision to import")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = bench.import_revision("HEAD")
    assert base.__name__ == "multitask_base.nn" and str(tmp_path) in base.__file__
    assert base.mtl_backward.__module__ == "multitask_base.nn.backward"  # its imports renamed
    rows = bench.base_methods(2, ["mean", "equal", "mean+ub", "hand:graph"], base)
    assert sorted(rows) == ["base:equal", "base:mean"] and rows["base:mean"][1] == "base"
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 100, generator=g), torch.randn(256, 2, generator=g)
    ours = bench.build_model(2)
    theirs = bench.build_model(2, architecture=base.architectures.HardSharing)
    mtl_backward(bench._losses(ours, x, y), ours, Mean())
    base.mtl_backward(bench._losses(theirs, x, y), theirs, base.aggregation.Mean())
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)
