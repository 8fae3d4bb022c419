"""The by-hand per-task gradients of ``_jacobian_fast`` against one ``autograd.grad`` per task."""

import pytest
import torch
from jacobian_oracle import per_task_rows
from torch import nn

from multitask.nn import _jacobian as jac_mod
from multitask.nn import _jacobian_fast as jf
from multitask.nn import _trunk_chain as tc
from multitask.nn import mtl_backward
from multitask.nn.aggregation import MGDA
from multitask.nn.aggregation._base import GradientAggregator
from multitask.nn.architectures import HardSharing

torch.set_num_threads(1)
N_TASKS = 3


def _trunks() -> dict[str, nn.Module]:
    return {
        "relu": nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU()),
        "no_bias": nn.Sequential(nn.Linear(5, 8, bias=False), nn.Tanh(), nn.Linear(8, 6)),
        "gelu_leaky": nn.Sequential(
            nn.Linear(5, 8), nn.GELU(), nn.Linear(8, 7), nn.LeakyReLU(0.2), nn.Linear(7, 6)
        ),
        "gelu_tanh_sigmoid_silu": nn.Sequential(
            nn.Linear(5, 8),
            nn.GELU(approximate="tanh"),
            nn.Linear(8, 7),
            nn.Sigmoid(),
            nn.Linear(7, 6),
            nn.SiLU(),
        ),
        "dropout": nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 6)),
        "nested": nn.Sequential(
            nn.Sequential(nn.Linear(5, 8), nn.ReLU(inplace=True)),
            nn.Sequential(nn.Identity(), nn.Sequential(nn.Linear(8, 6), nn.Tanh())),
        ),
        "one_linear": nn.Linear(5, 6),
    }


def _heads(kind: str) -> dict[str, nn.Module]:
    if kind == "linear":
        return {f"t{i}": nn.Linear(6, 1) for i in range(N_TASKS)}
    if kind == "wide":  # k = 2 outputs per head
        return {f"t{i}": nn.Linear(6, 2) for i in range(N_TASKS)}
    # deeper heads: only their first layer is done by hand
    return {
        f"t{i}": nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1)) for i in range(N_TASKS)
    }


def _model(trunk: nn.Module, heads: str = "linear", seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    for m in trunk.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return HardSharing(trunk, _heads(heads)).double()


def _losses(model, seed=1, dropout_seed=7, batch=9):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 5, generator=g, dtype=torch.float64)
    y = torch.randn(batch, N_TASKS, generator=g, dtype=torch.float64)
    torch.manual_seed(dropout_seed)  # the same dropout mask in every forward
    out = model(x)
    return {t: ((out[t] - y[:, [i]]) ** 2).mean() * (i + 1) for i, t in enumerate(out)}


def _oracle(model, params):
    """One ordinary autograd.grad call per task: rows of shape (T, n_params)."""
    return per_task_rows(_losses(model), model.task_names, params)


def _rep_rows(model):
    losses = _losses(model)
    rep = model.representation
    rows = [torch.autograd.grad(losses[t], rep, retain_graph=True)[0] for t in model.task_names]
    return losses, rep, torch.stack(rows)


class _Weights(GradientAggregator):
    def __init__(self, w):
        super().__init__()
        self.w = torch.as_tensor(w, dtype=torch.float64)

    def weights(self, jacobian):
        return self.w.to(jacobian.dtype)


@pytest.mark.parametrize("name", list(_trunks()))
def test_trunk_jacobian_equals_separate_grads(name):
    model = _model(_trunks()[name])
    model.train()
    params = list(model.shared_parameters())
    oracle = _oracle(model, params)
    _, rep, rows = _rep_rows(model)
    jac = tc.trunk_jacobian(rep, rows, params)
    assert jac is not None, "the chain should be recognised"
    torch.testing.assert_close(jac, oracle, atol=1e-10, rtol=1e-9)


def test_dropout_in_eval_mode_and_in_float32():
    model = _model(_trunks()["dropout"]).eval()
    params = list(model.shared_parameters())
    _, rep, rows = _rep_rows(model)
    torch.testing.assert_close(tc.trunk_jacobian(rep, rows, params), _oracle(model, params))
    model = model.float().train()
    params = list(model.shared_parameters())
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 5, generator=g)
    torch.manual_seed(7)
    out = model(x)
    losses = [out[t].pow(2).mean() for t in model.task_names]
    rows = torch.stack(
        [torch.autograd.grad(L, model.representation, retain_graph=True)[0] for L in losses]
    )
    oracle = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(L, params, retain_graph=True)])
            for L in losses
        ]
    )
    torch.testing.assert_close(
        tc.trunk_jacobian(model.representation, rows, params), oracle, atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("heads", ["linear", "wide", "deep"])
@pytest.mark.parametrize("name", ["relu", "dropout", "gelu_tanh_sigmoid_silu"])
def test_mtl_backward_fast_path_matches_oracle_and_skips_autograd(name, heads, monkeypatch):
    model = _model(_trunks()[name], heads)
    shared = list(model.shared_parameters())
    oracle = _oracle(model, shared)
    fresh = _model(_trunks()[name], heads)
    ref_losses = _losses(fresh)
    head_oracle = {
        t: torch.autograd.grad(ref_losses[t], list(fresh.task_parameters(t)), retain_graph=True)
        for t in fresh.task_names
    }

    def boom(*args, **kwargs):
        raise AssertionError("the autograd Jacobian ran although the fast path applies")

    monkeypatch.setattr(jac_mod, "_batched_vjp", boom)
    w = torch.tensor([0.4, -1.2, 2.0], dtype=torch.float64)
    mtl_backward(_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-10, rtol=1e-9)
    for t in model.task_names:  # each head: its own task's gradient
        for p, g in zip(model.task_parameters(t), head_oracle[t], strict=True):
            torch.testing.assert_close(p.grad, g, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("heads", ["linear", "deep"])
@pytest.mark.parametrize("name", ["relu", "no_bias", "one_linear"])
def test_a_batch_of_one_sample(name, heads, monkeypatch):
    """B = 1 (an epoch's last batch, often): ``matmul`` folds ``(T, out, 1) @ (1, in)`` to a 2-D
    product that it could not write into the Jacobian's strided block (a RuntimeError for every
    balancer that needs per-task gradients). Oracle: one autograd.grad per task."""
    model = _model(_trunks()[name], heads)
    shared = list(model.shared_parameters())
    oracle = per_task_rows(_losses(model, batch=1), model.task_names, shared)
    monkeypatch.setattr(jac_mod, "_batched_vjp", None)  # the fast path, not the fallback
    w = torch.tensor([0.4, -1.2, 2.0], dtype=torch.float64)
    mtl_backward(_losses(model, batch=1), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-12, rtol=1e-10)


class _Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.lin = nn.Linear(width, width)

    def forward(self, x):
        return x + torch.tanh(self.lin(x))


@pytest.mark.parametrize(
    "trunk",
    [
        nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6)),
        nn.Sequential(nn.Linear(5, 6), _Residual(6)),
        nn.Sequential(nn.Linear(5, 6), nn.Softplus()),
    ],
    ids=["layernorm", "residual", "softplus"],
)
def test_unknown_layers_fall_back_to_autograd(trunk):
    model = _model(trunk)
    shared = list(model.shared_parameters())
    oracle = _oracle(model, shared)
    _, rep, rows = _rep_rows(model)
    assert tc.trunk_jacobian(rep, rows, shared) is None
    w = torch.tensor([1.0, 0.5, -0.25], dtype=torch.float64)
    mtl_backward(_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-10, rtol=1e-9)


def test_a_layer_used_twice_or_a_foreign_parameter_falls_back():
    lin = nn.Linear(6, 6)
    model = _model(nn.Sequential(nn.Linear(5, 6), nn.Tanh(), lin, nn.Tanh(), lin))
    shared = list(model.shared_parameters())
    _, rep, rows = _rep_rows(model)
    assert tc.trunk_jacobian(rep, rows, shared) is None  # the same weight twice
    model = _model(_trunks()["relu"])
    shared = list(model.shared_parameters())
    _, rep, rows = _rep_rows(model)
    assert tc.trunk_jacobian(rep, rows, shared[2:]) is None  # first layer not among params
    jac = tc.trunk_jacobian(rep, rows, [*shared, nn.Parameter(torch.ones(3, dtype=torch.float64))])
    torch.testing.assert_close(jac[:, -3:], torch.zeros(N_TASKS, 3, dtype=torch.float64))


@pytest.mark.parametrize("heads", ["linear", "wide", "deep"])
def test_head_cotangents_and_their_gramian_and_combination(heads):
    model = _model(_trunks()["relu"], heads)
    losses, rep, oracle = _rep_rows(model)
    rows, _ = jf.head_cotangents(list(losses.values()), rep, None)
    torch.testing.assert_close(rows.dense(), oracle, atol=1e-12, rtol=1e-10)
    flat = oracle.reshape(N_TASKS, -1)
    torch.testing.assert_close(rows.gramian(), flat @ flat.T, atol=1e-12, rtol=1e-10)
    w = torch.tensor([0.3, -2.0, 1.1], dtype=torch.float64)
    torch.testing.assert_close(rows.combine(w), torch.tensordot(w, oracle, dims=1))


def test_head_cotangents_zero_rows_and_refusals():
    model = _model(_trunks()["relu"])
    losses, rep, oracle = _rep_rows(model)
    values = list(losses.values())
    rows, _ = jf.head_cotangents([values[0], None, values[2]], rep, None)
    want = oracle.clone()
    want[1] = 0
    torch.testing.assert_close(rows.dense(), want)
    flat = want.reshape(N_TASKS, -1)
    torch.testing.assert_close(rows.gramian(), flat @ flat.T)
    # two tasks reading one head output: one backward cannot separate them
    assert jf.head_cotangents([values[0], values[0] + values[1], values[2]], rep, None) is None
    # a head that does not start with a Linear layer
    z = torch.tanh(rep)
    assert jf.head_cotangents([z.sum(), z.mean(), z.pow(2).sum()], rep, None) is None


def test_a_head_starting_with_an_activation_uses_the_per_task_loop():
    torch.manual_seed(0)
    heads = {f"t{i}": nn.Sequential(nn.Tanh(), nn.Linear(6, 1)) for i in range(N_TASKS)}
    model = HardSharing(_trunks()["relu"], heads).double()
    shared = list(model.shared_parameters())
    oracle = _oracle(model, shared)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    mtl_backward(_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("heads", ["linear", "deep"])
def test_mgda_ub_from_the_factored_gramian(heads):
    """MGDA-UB: weights = min-norm point of the representation gradients (cvxpy), grads."""
    cp = pytest.importorskip("cvxpy")
    model = _model(_trunks()["gelu_leaky"], heads, seed=4)
    _, _, rows = _rep_rows(model)
    R = rows.reshape(N_TASKS, -1).numpy()
    a = cp.Variable(N_TASKS)
    cp.Problem(cp.Minimize(cp.sum_squares(R.T @ a)), [a >= 0, cp.sum(a) == 1]).solve(cp.CLARABEL)
    shared = list(model.shared_parameters())
    want = torch.from_numpy(a.value) @ _oracle(model, shared)
    info = mtl_backward(_losses(model), model, MGDA(), use_representation=True, record_cosines=True)
    torch.testing.assert_close(info.weights, torch.from_numpy(a.value), atol=1e-6, rtol=0)
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, want, atol=1e-6 * float(want.abs().max()), rtol=0)
    unit = rows.reshape(N_TASKS, -1) / rows.reshape(N_TASKS, -1).norm(dim=1, keepdim=True)
    torch.testing.assert_close(info.cosines, unit @ unit.T, atol=1e-10, rtol=0)


@pytest.mark.parametrize("heads", ["linear", "wide"])
@pytest.mark.parametrize("name", ["relu", "no_bias", "dropout", "one_linear"])
def test_trunk_jacobian_from_factored_rows(name, heads):
    """The factored head rows go straight into the trunk's buffers: same rows as autograd."""
    model = _model(_trunks()[name], heads)
    model.train()
    params = list(model.shared_parameters())
    losses = _losses(model)
    oracle = per_task_rows(losses, model.task_names, params)
    values = list(losses.values())
    rows, _ = jf.head_cotangents(values, model.representation, None)
    assert isinstance(rows, jf.HeadRows)
    torch.testing.assert_close(
        tc.trunk_jacobian(model.representation, rows, params), oracle, atol=1e-10, rtol=1e-9
    )
    # a task without a gradient: its row is zero (the factored rows hold only the live tasks)
    rows, _ = jf.head_cotangents([values[0], None, values[2]], model.representation, None)
    want = oracle.clone()
    want[1] = 0
    torch.testing.assert_close(
        tc.trunk_jacobian(model.representation, rows, params), want, atol=1e-10, rtol=1e-9
    )


def test_dense_rows_are_left_as_they_were():
    model = _model(_trunks()["gelu_leaky"])
    params = list(model.shared_parameters())
    _, rep, rows = _rep_rows(model)
    before = rows.clone()
    tc.trunk_jacobian(rep, rows, params)
    torch.testing.assert_close(rows, before, atol=0, rtol=0)


def test_reused_buffers_across_shapes_and_threads():
    """Buffers reused between calls: a returned Jacobian is never overwritten by a later call
    (of another shape), and a call from another thread gets its own buffers."""
    import threading

    small = _model(_trunks()["relu"])
    big = _model(nn.Sequential(nn.Linear(5, 40), nn.ReLU(), nn.Linear(40, 6), nn.ReLU()))
    jacs, oracles = [], []
    for model in (small, big, small):
        params = list(model.shared_parameters())
        oracles.append(_oracle(model, params))
        _, rep, rows = _rep_rows(model)
        jacs.append(tc.trunk_jacobian(rep, rows, params))
    for jac, oracle in zip(jacs, oracles, strict=True):
        torch.testing.assert_close(jac, oracle, atol=1e-10, rtol=1e-9)
    out = {}

    def work():
        params = list(big.shared_parameters())
        _, rep, rows = _rep_rows(big)
        out["jac"] = tc.trunk_jacobian(rep, rows, params)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    torch.testing.assert_close(out["jac"], oracles[1], atol=1e-10, rtol=1e-9)


class _Scale(nn.Module):
    """Multiplies by a constant of another dtype (a MulBackward0 node the chain cannot fuse)."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("s", torch.rand(*shape, generator=torch.Generator().manual_seed(2)))

    def forward(self, x):
        return x * self.s.float()


def test_a_factor_of_another_dtype_falls_back_to_autograd():
    model = _model(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), _Scale((9, 6))))
    shared = list(model.shared_parameters())
    oracle = _oracle(model, shared)
    _, rep, rows = _rep_rows(model)
    assert tc.trunk_jacobian(rep, rows, shared) is None
    w = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    mtl_backward(_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-10, rtol=1e-9)


def test_grads_written_without_copies_behave_like_separate_tensors():
    """``.grad`` of the shared parameters may be views of one vector: they accumulate, can be
    changed one at a time, and an optimiser step gives the plain update."""
    model = _model(_trunks()["relu"])
    shared = list(model.shared_parameters())
    w = torch.tensor([0.5, 1.0, -2.0], dtype=torch.float64)
    want = w @ _oracle(model, shared)
    mtl_backward(_losses(model), model, _Weights(w))
    mtl_backward(_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, 2 * want, atol=1e-10, rtol=1e-9)
    shared[0].grad.zero_()
    assert float(shared[1].grad.abs().sum()) > 0
    before = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for p, b, g in zip(model.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.1 * g, atol=1e-12, rtol=0)
    model.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0 for p in model.parameters())
    mtl_backward(_losses(model), model, _Weights(w))  # into the zeroed views
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ _oracle(model, shared), atol=1e-10, rtol=1e-9)


def test_cotangents_above_the_buffer_cap_are_allocated_per_call(monkeypatch):
    monkeypatch.setattr(tc, "_SCRATCH_MAX", 0)
    model = _model(_trunks()["gelu_leaky"])
    params = list(model.shared_parameters())
    losses = _losses(model)
    rows, _ = jf.head_cotangents(list(losses.values()), model.representation, None)
    jac = tc.trunk_jacobian(model.representation, rows, params)
    oracle = per_task_rows(losses, model.task_names, params)
    torch.testing.assert_close(jac, oracle, atol=1e-10, rtol=1e-9)


def test_a_call_in_inference_mode_leaves_the_buffers_usable(monkeypatch):
    monkeypatch.setattr(tc._SCRATCH, "bufs", {}, raising=False)  # none made before
    model = _model(_trunks()["relu"])
    params = list(model.shared_parameters())
    oracle = _oracle(model, params)
    _, rep, rows = _rep_rows(model)
    with torch.inference_mode():
        inside = tc.trunk_jacobian(rep, rows, params)
    torch.testing.assert_close(inside, oracle, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(tc.trunk_jacobian(rep, rows, params), oracle, atol=1e-10, rtol=1e-9)


def _float32_losses(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(9, 5, generator=g)
    y = torch.randn(9, N_TASKS, generator=g)
    torch.manual_seed(7)  # the same dropout mask in every forward
    out = model(x)
    return {t: ((out[t] - y[:, [i]]) ** 2).mean() * (i + 1) for i, t in enumerate(out)}


@pytest.mark.parametrize("name", list(_trunks()))
def test_float32_step_equals_separate_grads(name):
    """float32, every trunk: the shared .grad of one step is w @ (T separate autograd.grad
    rows) and each head gets its own task's gradient, to 1e-6."""
    model = _model(_trunks()[name]).float().train()
    shared = list(model.shared_parameters())
    losses = _float32_losses(model)
    oracle = per_task_rows(losses, model.task_names, shared)
    heads = {
        t: torch.autograd.grad(losses[t], list(model.task_parameters(t)), retain_graph=True)
        for t in model.task_names
    }
    w = torch.tensor([0.4, -1.2, 2.0])
    mtl_backward(_float32_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-6, rtol=1e-5)
    for t in model.task_names:
        for p, g in zip(model.task_parameters(t), heads[t], strict=True):
            torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("heads", ["linear", "wide", "deep"])
def test_head_stage_from_the_stacked_losses_equals_one_root_per_task(heads):
    """The head stage started from ``stack(L)`` (one root) gives bit for bit what starting
    from the ``T`` losses gives, a task without a gradient included."""
    model = _model(_trunks()["relu"], heads)
    losses = _losses(model)
    values = list(losses.values())
    values[1] = values[1].detach()  # a task whose loss does not reach the graph
    rep = model.representation
    own = [list(model.task_parameters(t)) for t in model.task_names]
    live = [v if v.requires_grad else None for v in values]
    one_root = jf.head_cotangents(live, rep, own, torch.stack(values))
    per_task = jf.head_cotangents(live, rep, own)
    assert one_root[0].live == per_task[0].live == [0, 2]
    assert torch.equal(one_root[0].delta, per_task[0].delta)
    assert [p for p, _ in one_root[1]] == [p for p, _ in per_task[1]]
    for (_, a), (_, b) in zip(one_root[1], per_task[1], strict=True):
        assert torch.equal(a, b)
    oracle = per_task_rows(losses, model.task_names, [rep])
    oracle[1] = 0
    torch.testing.assert_close(one_root[0].dense().reshape(N_TASKS, -1), oracle)


def test_scratch_views_follow_their_buffer(monkeypatch):
    """A kept view is handed out again for its shape; when the buffer grows, the views of the
    old one are dropped (a later call never writes into a dead buffer), and ragged shapes do
    not pile up views."""
    monkeypatch.setattr(tc._SCRATCH, "bufs", {}, raising=False)
    like = torch.zeros(1)
    a = tc._scratch(0, (2, 3), like)
    assert tc._scratch(0, (2, 3), like) is a
    b = tc._scratch(0, (3, 3), like)  # grows the buffer: a new flat tensor (a holds the old)
    assert b.data_ptr() != a.data_ptr()
    c = tc._scratch(0, (2, 3), like)
    assert c is not a and c.data_ptr() == b.data_ptr()
    for n in range(3 * tc._SCRATCH_VIEWS):  # shapes that keep changing
        tc._scratch(0, (1, n + 1), like)
    assert len(tc._SCRATCH.bufs[0, torch.float32][1]) <= tc._SCRATCH_VIEWS
    assert tc._scratch(1, (2, 3), like).data_ptr() != c.data_ptr()  # another slot
