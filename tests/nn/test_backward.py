"""mtl_backward against independent per-task autograd calls and closed forms."""

import pytest
import torch
from jacobian_oracle import per_task_rows
from torch import nn

from multitask.nn import mtl_backward, task_jacobian
from multitask.nn.aggregation._base import GradientAggregator
from multitask.nn.architectures import HardSharing, MultiTaskModule
from multitask.nn.weighting import DBMTL, WEIGHTINGS, EqualWeighting, GradNorm, StaticWeighting

torch.set_num_threads(1)
T = 3


_PATH = {"two_stage": True}


@pytest.fixture(autouse=True, params=[True, False], ids=["two-stage", "one-pass"])
def _jacobian_path(request):
    """Run every test with the two-stage (via the representation) and one-pass Jacobians."""
    _PATH["two_stage"] = request.param
    yield


def _model(seed=0, n_tasks=T, dtype=torch.float64):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh())
    heads = {
        f"t{i}": nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1)) for i in range(n_tasks)
    }
    model = HardSharing(trunk, heads).to(dtype)
    model.shared_through_representation = _PATH["two_stage"]
    return model


def _losses(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64)
    y = torch.randn(11, len(model.task_names), generator=g, dtype=torch.float64)
    out = model(x)
    return {
        t: ((out[t][:, 0] - y[:, i]) ** 2).mean() * (i + 1) for i, t in enumerate(model.task_names)
    }


def _per_task_grads(model, params):
    """Oracle: one ordinary autograd.grad call per task."""
    return per_task_rows(_losses(model), model.task_names, params)


def _grads(model):
    return {
        n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()
    }


class _Weights(GradientAggregator):
    """Fixed-weight linear aggregator (its output is known in closed form)."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.as_tensor(w, dtype=torch.float64)

    def weights(self, jacobian):
        return self.w.to(jacobian.dtype)


class _MGDA2(GradientAggregator):
    """Two-task min-norm weights in closed form (Sener & Koltun 2018, Alg. 1)."""

    def weights(self, jacobian):
        g1, g2 = jacobian[0], jacobian[1]
        a = ((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1)
        return torch.stack([a, 1 - a])


class _Normalize(GradientAggregator):
    linear = False

    def forward(self, jacobian):
        return (jacobian / jacobian.norm(dim=1, keepdim=True)).sum(0)


@pytest.mark.parametrize("chunk_size", [None, 1, 2])
def test_batched_jacobian_equals_separate_grads(chunk_size):
    model = _model()
    shared = list(model.shared_parameters())
    oracle = _per_task_grads(model, shared)
    losses = _losses(model)
    vec = torch.stack([losses[t] for t in model.task_names])
    jac = task_jacobian(vec, shared, chunk_size=chunk_size)
    assert jac.shape == (T, sum(p.numel() for p in shared))
    torch.testing.assert_close(jac, oracle, atol=1e-6, rtol=0)


def test_aggregator_path_shared_and_task_gradients():
    model = _model()
    shared = list(model.shared_parameters())
    oracle = _per_task_grads(model, shared)
    w = torch.tensor([0.2, 1.5, -0.3], dtype=torch.float64)
    info = mtl_backward(_losses(model), model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(info.weights, w)
    # every head gets exactly its own task's (unweighted) gradient
    fresh = _model()
    losses = _losses(fresh)
    for t in model.task_names:
        own = list(fresh.task_parameters(t))
        want = torch.autograd.grad(losses[t], own, retain_graph=True)
        for p, g in zip(model.task_parameters(t), want, strict=True):
            torch.testing.assert_close(p.grad, g, atol=1e-12, rtol=1e-10)


def _assert_same_grads(a, b, atol=1e-10):
    assert a.keys() == b.keys()
    for n in a:
        torch.testing.assert_close(a[n], b[n], atol=atol, rtol=1e-8, msg=n)


def test_equal_weighting_equals_sum_backward():
    ref = _model()
    sum(_losses(ref).values()).backward()
    want = _grads(ref)
    for balancer in (None, EqualWeighting(), _Weights([1.0, 1.0, 1.0])):
        model = _model()
        info = mtl_backward(_losses(model), model, balancer)
        _assert_same_grads(_grads(model), want)
        torch.testing.assert_close(info.loss, sum(_losses(_model()).values()).detach())


def test_static_and_task_weights_paths_agree():
    a, b = _model(), _model()
    w = [0.5, 2.0, 1.0]
    mtl_backward(_losses(a), a, StaticWeighting(w))
    mtl_backward(_losses(b), b, task_weights=dict(zip(b.task_names, w, strict=True)))
    _assert_same_grads(_grads(a), _grads(b))


def test_task_weights_with_a_balancer_warn_that_they_are_ignored():
    """The balancer decides the weights: the static ones were dropped without a word."""
    a, b = _model(), _model()
    mtl_backward(_losses(a), a, EqualWeighting())
    with pytest.warns(UserWarning, match="task_weights is ignored with a balancer"):
        mtl_backward(_losses(b), b, EqualWeighting(), task_weights=[5.0, 1.0, 1.0])
    _assert_same_grads(_grads(a), _grads(b))


@pytest.mark.parametrize("balancer", [None, "agg", "nonlinear", "gradnorm"])
def test_accumulation_adds(balancer):
    make = {
        None: lambda: None,
        "agg": lambda: _Weights([0.3, 0.3, 0.4]),
        "nonlinear": _Normalize,
        "gradnorm": lambda: GradNorm(T),
    }[balancer]
    once = _model()
    mtl_backward(_losses(once, seed=1), once, make())
    first = _grads(once)
    mtl_backward(_losses(once, seed=2), once, make())
    second = _model()
    mtl_backward(_losses(second, seed=2), second, make())
    for n, p in once.named_parameters():
        torch.testing.assert_close(p.grad, first[n] + dict(second.named_parameters())[n].grad)


@pytest.mark.parametrize("chunk_size", [1, 2])
def test_chunk_size_gives_same_result(chunk_size):
    a, b = _model(), _model()
    ia = mtl_backward(_losses(a), a, _Normalize(), record_cosines=True)
    ib = mtl_backward(_losses(b), b, _Normalize(), record_cosines=True, chunk_size=chunk_size)
    _assert_same_grads(_grads(a), _grads(b), atol=1e-12)
    torch.testing.assert_close(ia.cosines, ib.cosines)


def test_record_cosines_matches_separate_gradients():
    model = _model()
    oracle = _per_task_grads(model, list(model.shared_parameters()))
    unit = oracle / oracle.norm(dim=1, keepdim=True)
    for balancer in (None, EqualWeighting(), _Weights([1, 1, 1])):
        m = _model()
        info = mtl_backward(_losses(m), m, balancer, record_cosines=True)
        torch.testing.assert_close(info.cosines, unit @ unit.T, atol=1e-10, rtol=0)


def test_representation_path_uses_closed_form_mgda_weights():
    model = _model(seed=2, n_tasks=2)
    losses = _losses(model)
    rep = model.representation
    g = [
        torch.autograd.grad(losses[t], rep, retain_graph=True)[0].reshape(-1)
        for t in model.task_names
    ]
    a = float(((g[1] - g[0]) @ g[1]) / (g[0] - g[1]).pow(2).sum())
    a = min(max(a, 0.0), 1.0)
    assert 0.0 < a < 1.0  # the interesting (interior) case
    shared = list(model.shared_parameters())
    per_task = [torch.autograd.grad(losses[t], shared, retain_graph=True) for t in model.task_names]
    heads = {
        t: torch.autograd.grad(losses[t], list(model.task_parameters(t)), retain_graph=True)
        for t in model.task_names
    }

    fresh = _model(seed=2, n_tasks=2)
    info = mtl_backward(_losses(fresh), fresh, _MGDA2(), use_representation=True)
    torch.testing.assert_close(info.weights, torch.tensor([a, 1 - a], dtype=torch.float64))
    for p, g1, g2 in zip(fresh.shared_parameters(), *per_task, strict=True):
        torch.testing.assert_close(p.grad, a * g1 + (1 - a) * g2, atol=1e-10, rtol=1e-8)
    for t in fresh.task_names:
        for p, want in zip(fresh.task_parameters(t), heads[t], strict=True):
            torch.testing.assert_close(p.grad, want, atol=1e-12, rtol=1e-10)


class _TwoBranches(MultiTaskModule):
    """Task 'a' uses shared layers u and v; task 'b' uses only v; 'c' uses nothing shared."""

    task_names = ("a", "b", "c")

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.u, self.v = nn.Linear(3, 2), nn.Linear(3, 2)
        self.heads = nn.ModuleDict({t: nn.Linear(2, 1) for t in self.task_names})

    def forward(self, x):
        return {
            "a": self.heads["a"](self.u(x) + self.v(x)),
            "b": self.heads["b"](self.v(x)),
            "c": self.heads["c"](torch.ones(x.shape[0], 2)),
        }

    def shared_parameters(self):
        return iter([*self.u.parameters(), *self.v.parameters()])

    def task_parameters(self, task):
        return self.heads[task].parameters()


@pytest.mark.parametrize("balancer", [None, _Weights([1.0, 1.0, 1.0]), _Normalize(), GradNorm(3)])
def test_unused_shared_params_give_zeros_not_errors(balancer):
    model = _TwoBranches()
    out = model(torch.randn(4, 3))
    losses = {t: out[t].pow(2).mean() for t in model.task_names}
    info = mtl_backward(losses, model, balancer, record_cosines=True)
    assert torch.isfinite(info.cosines[:2, :2]).all()
    assert all(p.grad is not None for p in model.shared_parameters())
    out = model(torch.randn(4, 3))
    vec = torch.stack([out[t].pow(2).mean() for t in model.task_names])
    jac = task_jacobian(vec, list(model.shared_parameters()))
    assert torch.all(jac[1, :8] == 0) and torch.all(jac[2] == 0)  # u: 2*3 + 2 = 8 values


def test_extra_loss_reaches_every_parameter():
    for balancer in (None, _Weights([1.0, 1.0, 1.0]), _Normalize(), DBMTL(T)):
        a = _model()
        penalty = sum(p.pow(2).sum() for p in a.parameters())
        mtl_backward(_losses(a), a, balancer, extra_loss=penalty)
        b = _model()
        mtl_backward(
            _losses(b), b, balancer.__class__(T) if isinstance(balancer, DBMTL) else balancer
        )
        for (n, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(
                pa.grad - pb.grad, 2 * pa.detach(), atol=1e-10, rtol=1e-8, msg=n
            )


def test_gradnorm_gets_its_gradient_through_mtl_backward():
    model = _model()
    gn = GradNorm(T, alpha=1.5, shared_params=None).double()  # W = every shared parameter
    with torch.no_grad():
        gn.task_weights.copy_(torch.tensor([1.0, 2.0, 0.5]))  # renormalised to sum T first
    shared = list(model.shared_parameters())
    norms = _per_task_grads(model, shared).norm(dim=1)
    losses = _losses(model)
    vec = torch.stack([losses[t] for t in model.task_names]).detach()
    info = mtl_backward(_losses(model), model, gn)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64) * 3 / 3.5
    torch.testing.assert_close(gn.task_weights.detach(), w)
    g = w * norms
    # first step: L(0) = L, so every ratio is 1 and the target is mean(G)
    want = torch.sign(g - g.mean()) * norms
    torch.testing.assert_close(gn.task_weights.grad, want, atol=1e-10, rtol=1e-8)
    # the model's gradients are those of sum_t w_t L_t (w held constant)
    ref = _model()
    (w * torch.stack(list(_losses(ref).values()))).sum().backward()
    _assert_same_grads(_grads(model), _grads(ref))
    torch.testing.assert_close(info.losses, vec)


def test_dbmtl_shared_update_and_log_gradients_on_heads():
    model = _model()
    shared = list(model.shared_parameters())
    jac = _per_task_grads(model, shared)
    losses = _losses(model)
    vec = torch.stack([losses[t] for t in model.task_names]).detach()
    db = DBMTL(T, beta=0.9, sigma=0.5)
    mtl_backward(_losses(model), model, db)
    ema = 0.1 * jac / vec[:, None]  # step 1: beta_1 = 0.9, average starts at 0
    norms = ema.norm(dim=1)
    want = (norms.max() / norms) @ ema
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, want, atol=1e-8, rtol=1e-6)
    for i, t in enumerate(model.task_names):
        fresh = _model()
        own = list(fresh.task_parameters(t))
        lt = _losses(fresh)[t]
        for p, g in zip(
            model.task_parameters(t), torch.autograd.grad(torch.log(lt + 1e-8), own), strict=True
        ):
            torch.testing.assert_close(p.grad, g, atol=1e-10, rtol=1e-8)
        assert vec[i] > 0


def test_dbmtl_steps_with_an_extra_loss_equal_separate_gradients():
    """Three DB-MTL steps with an extra loss (a weight penalty on the trunk and a head):
    each .grad is the formula on T separate autograd.grad calls plus the extra's own
    gradient, on both Jacobian paths (the two-stage one skips the generic Jacobian)."""
    model = _model()
    shared = list(model.shared_parameters())
    db = DBMTL(T, beta=0.9, sigma=0.5)
    avg = None
    for k in range(1, 4):
        model.zero_grad(set_to_none=True)
        losses = _losses(model, seed=k)
        vec = torch.stack([losses[t] for t in model.task_names]).detach()
        rows = per_task_rows(losses, model.task_names, shared) / (vec[:, None] + 1e-8)
        beta = 0.9 / k**0.5
        avg = (1 - beta) * rows if avg is None else beta * avg + (1 - beta) * rows
        norms = avg.norm(dim=1)
        extra = 0.3 * model.trunk[0].weight.pow(2).sum() + model.heads["t1"][0].bias.pow(2).sum()
        extra_grads = torch.autograd.grad(extra, shared, retain_graph=True, allow_unused=True)
        want = (norms.max() / (norms + 1e-8)) @ avg + torch.cat(
            [
                torch.zeros(p.numel()) if g is None else g.reshape(-1)
                for g, p in zip(extra_grads, shared, strict=True)
            ]
        )
        mtl_backward(losses, model, db, extra_loss=extra)
        got = torch.cat([p.grad.reshape(-1) for p in shared])
        torch.testing.assert_close(got, want.to(got.dtype), atol=1e-10, rtol=1e-8)
        bias = model.heads["t1"][0].bias
        fresh = _model()
        fresh.load_state_dict(model.state_dict())
        lt = _losses(fresh, seed=k)["t1"]
        fb = fresh.heads["t1"][0].bias
        want_bias = torch.autograd.grad(torch.log(lt + 1e-8) + fb.pow(2).sum(), fb)[0]
        torch.testing.assert_close(bias.grad, want_bias, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("chunk_size", [0, -2, 1.5, True])
def test_invalid_chunk_size_is_refused(chunk_size):
    model = _model()
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        mtl_backward(_losses(model), model, EqualWeighting(T), chunk_size=chunk_size)


def test_errors_are_clear():
    model = _model()
    with pytest.raises(KeyError, match=r"missing \['t2'\], unknown \['z'\]"):
        losses = _losses(model)
        mtl_backward({"t0": losses["t0"], "t1": losses["t1"], "z": losses["t2"]}, model)
    with pytest.raises(TypeError, match="balancer must be None"):
        mtl_backward(_losses(model), model, object())
    with pytest.raises(ValueError, match="needs a GradientAggregator"):
        mtl_backward(_losses(model), model, EqualWeighting(), use_representation=True)
    with pytest.raises(ValueError, match="representation set during forward"):
        bare = _TwoBranches()  # no representation attribute
        out = bare(torch.randn(4, 3))
        losses = {t: out[t].pow(2).mean() for t in bare.task_names}
        mtl_backward(losses, bare, _Normalize(), use_representation=True)


def test_no_item_or_host_sync_in_the_step(monkeypatch):
    """A Tensor.item / __bool__ call in the step would be a host sync on CUDA."""
    model = _model()
    losses = _losses(model)
    weightings = [cls([1.0] * T) if n == "static" else cls(T) for n, cls in WEIGHTINGS.items()]
    weightings = [w.double() for w in weightings]

    def boom(*args, **kwargs):
        raise AssertionError("host synchronisation in mtl_backward")

    monkeypatch.setattr(torch.Tensor, "item", boom)
    monkeypatch.setattr(torch.Tensor, "__bool__", boom)
    monkeypatch.setattr(torch.Tensor, "tolist", boom)
    mtl_backward(losses, model, _Weights([1.0, 1.0, 1.0]), record_cosines=True)
    for balancer in [None, *weightings]:
        for _ in range(3):  # stateful weightings take another branch after the first step
            mtl_backward(_losses(model), model, balancer, extra_loss=0.5)


def test_gradnorm_shared_params_restricts_the_jacobian():
    model = _model()
    last = list(model.trunk[2].parameters())
    norms = _per_task_grads(model, last).norm(dim=1)
    gn = GradNorm(T, shared_params=last).double()
    mtl_backward(_losses(model), model, gn)
    want = torch.sign(norms - norms.mean()) * norms  # w = 1: G = norms, target = mean(G)
    torch.testing.assert_close(gn.task_weights.grad, want, atol=1e-10, rtol=1e-8)


def test_aggregator_on_a_model_without_shared_parameters():
    from multitask.nn.architectures import SoftSharing

    torch.manual_seed(0)
    model = SoftSharing(nn.Linear(3, 1), ["a", "b"]).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    out = model(x)
    losses = {t: out[t].pow(2).mean() * (i + 1) for i, t in enumerate(model.task_names)}
    mtl_backward(losses, model, _Normalize(), extra_loss=model.regularization())
    for i, t in enumerate(model.task_names):
        net = model.networks[t]
        want = torch.autograd.grad(net(x).pow(2).mean() * (i + 1), list(net.parameters()))
        for p, g in zip(net.parameters(), want, strict=True):
            torch.testing.assert_close(p.grad, g)  # identical copies: the coupling adds 0


@pytest.mark.parametrize("use_rep", [False, True], ids=["parameters", "representation"])
@pytest.mark.parametrize("trunk", ["frozen", "identity"])
def test_aggregator_with_a_frozen_or_empty_trunk(trunk, use_rep):
    """No trainable shared parameter (heads warmed up on a frozen backbone): each head gets its
    own task's gradient on either placement (use_representation=True differentiated the
    representation, which then needs no gradient: a RuntimeError from autograd)."""
    from multitask.nn.aggregation import MGDA

    model = _model()
    if trunk == "identity":
        model.trunk = nn.Identity()
        model.heads = nn.ModuleDict({t: nn.Linear(5, 1).double() for t in model.task_names})
    model.trunk.requires_grad_(False)
    losses = _losses(model)
    want = {
        t: torch.autograd.grad(losses[t], list(model.task_parameters(t)), retain_graph=True)
        for t in model.task_names
    }
    mtl_backward(losses, model, MGDA(), use_representation=use_rep)
    for t in model.task_names:
        for p, g in zip(model.task_parameters(t), want[t], strict=True):
            torch.testing.assert_close(p.grad, g, atol=1e-12, rtol=1e-10)
    assert all(p.grad is None for p in model.trunk.parameters())


def test_gradnorm_with_float64_losses_on_a_float32_model():
    """``F.mse_loss(float32 output, float64 target)`` is a float64 loss; GradNorm read its shared
    gradient off the float32 Jacobian as ``coeffs @ J`` in mixed dtypes (a RuntimeError on
    every model without the two-stage path). Oracle: the same step on float32 losses."""
    from multitask.nn.architectures import MMoE

    def step(dtype):
        torch.manual_seed(0)
        experts = [nn.Sequential(nn.Linear(4, 6), nn.ReLU()) for _ in range(2)]
        model = MMoE(experts, {t: nn.Linear(6, 1) for t in ("a", "b")}, input_dim=4)
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g).to(dtype)
        out = model(x)
        losses = {t: (out[t][:, 0] - y[:, i]).pow(2).mean() for i, t in enumerate(("a", "b"))}
        mtl_backward(losses, model, GradNorm(2))
        return [p.grad for p in model.parameters()]

    for a, b in zip(step(torch.float64), step(torch.float32), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_stale_representation_falls_back_to_the_one_pass_jacobian():
    """Losses from one forward, ``model.representation`` from a later one."""
    model = _model()
    shared = list(model.shared_parameters())
    oracle = _per_task_grads(model, shared)
    losses = _losses(model)
    model(torch.randn(4, 5, dtype=torch.float64))  # overwrites model.representation
    w = torch.tensor([0.2, 1.5, -0.3], dtype=torch.float64)
    mtl_backward(losses, model, _Weights(w))
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, w @ oracle, atol=1e-10, rtol=1e-9)
    ref = _model()
    sum(_losses(ref).values()).backward()
    for t in model.task_names:  # heads: their own gradient, counted once
        for p, q in zip(model.task_parameters(t), ref.task_parameters(t), strict=True):
            torch.testing.assert_close(p.grad, q.grad)


@pytest.mark.parametrize("name", ["mgda", "graddrop"])
def test_stale_representation_on_the_representation_path_is_an_error(name):
    """On the representation no fallback exists: its rows were all zero (MGDA's weights then
    uniform, whatever the losses) until this was an error."""
    from multitask.nn.aggregation import AGGREGATORS

    model = _model()
    losses = _losses(model)
    model(torch.randn(4, 5, dtype=torch.float64))  # overwrites model.representation
    with pytest.raises(ValueError, match=r"no task loss reaches model\.representation"):
        mtl_backward(losses, model, AGGREGATORS[name](), use_representation=True)


@pytest.mark.parametrize("use_rep", [False, True], ids=["parameters", "representation"])
@pytest.mark.parametrize("norm", ["none", "l2", "loss", "loss+"])
def test_mgda_normalisations_through_mtl_backward(norm, use_rep):
    """Sener & Koltun's code: scale g_t by 1, ||g_t||, L_t or L_t ||g_t||, solve the min-norm
    problem on the scaled rows (cvxpy here), apply the weights to the raw rows."""
    cp = pytest.importorskip("cvxpy")
    from multitask.nn.aggregation import MGDA

    model = _model(seed=3)
    shared = list(model.shared_parameters())
    losses = _losses(model)
    vec = torch.stack([losses[t] for t in model.task_names]).detach()
    if use_rep:
        rep = model.representation
        rows = [torch.autograd.grad(losses[t], rep, retain_graph=True)[0] for t in model.task_names]
        jac = torch.stack(rows).reshape(T, -1)
    else:
        jac = _per_task_grads(model, shared)
    norms = jac.norm(dim=1)
    scale = {"none": torch.ones(T), "l2": norms, "loss": vec, "loss+": vec * norms}[norm]
    scaled = (jac / scale[:, None]).numpy()
    a = cp.Variable(T)
    cp.Problem(cp.Minimize(cp.sum_squares(scaled.T @ a)), [a >= 0, cp.sum(a) == 1]).solve(
        cp.CLARABEL
    )
    want_w = torch.from_numpy(a.value)
    want = want_w @ _per_task_grads(model, shared)
    info = mtl_backward(_losses(model), model, MGDA(norm), use_representation=use_rep)
    torch.testing.assert_close(info.weights, want_w, atol=1e-6, rtol=0)
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, want, atol=1e-5 * float(want.abs().max()), rtol=0)


def test_gradnorm_shared_update_read_off_the_jacobian_with_extra_loss():
    """GradNorm's shared gradient comes from J (no second trunk backward): it must still be
    that of ``sum_t w_t L_t + extra`` with ``w`` held constant, heads and extra included."""
    model = _model()
    gn = GradNorm(T, alpha=1.5).double()
    with torch.no_grad():
        gn.task_weights.copy_(torch.tensor([1.0, 2.0, 0.5]))
    penalty = sum(p.pow(2).sum() for p in model.parameters())
    mtl_backward(_losses(model), model, gn, extra_loss=penalty)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64) * 3 / 3.5
    ref = _model()
    losses = torch.stack(list(_losses(ref).values()))
    ((w * losses).sum() + sum(p.pow(2).sum() for p in ref.parameters())).backward()
    _assert_same_grads(_grads(model), _grads(ref))


@pytest.mark.parametrize("marginalize", [True, False], ids=["per-unit", "per-scalar"])
@pytest.mark.parametrize("with_extra", [False, True], ids=["losses", "extra-loss"])
def test_graddrop_on_the_representation_masks_the_activation_gradients(with_extra, marginalize):
    """GradDrop as Chen et al. (2020, Sec. 3) place it: on the last shared activations.

    Oracle: the rows dL_t / d rep from T separate autograd.grad calls, GradDrop (same seed)
    combining them (its combine_representation, checked against loops in
    test_graddrop_representation.py), the result pushed through the trunk by autograd.grad;
    heads get their own task's gradient; an extra loss adds its plain gradient everywhere.
    """
    from multitask.nn.aggregation import GradDrop

    model = _model(seed=3)
    losses = _losses(model)
    rep = model.representation
    rows = torch.stack(
        [torch.autograd.grad(losses[t], rep, retain_graph=True)[0] for t in model.task_names]
    )
    cot = GradDrop(seed=5, marginalize_batch=marginalize).combine_representation(rows, rep)
    assert not torch.allclose(cot, rows.sum(0))  # some signs were dropped: the test has teeth
    shared = list(model.shared_parameters())
    want_shared = torch.autograd.grad(rep, shared, cot, retain_graph=True)
    extra_of = (
        (lambda m: sum(p.square().sum() for p in m.parameters()) * 1e-2) if with_extra else None
    )
    want_heads = {
        t: torch.autograd.grad(losses[t], list(model.task_parameters(t)), retain_graph=True)
        for t in model.task_names
    }
    if with_extra:
        extra = extra_of(model)
        extra_grads = dict(
            zip(
                [id(p) for p in model.parameters()],
                torch.autograd.grad(extra, list(model.parameters())),
                strict=True,
            )
        )

    fresh = _model(seed=3)
    extra_loss = extra_of(fresh) if with_extra else None
    info = mtl_backward(
        _losses(fresh),
        fresh,
        GradDrop(seed=5, marginalize_batch=marginalize),
        use_representation=True,
        extra_loss=extra_loss,
    )
    assert info.weights is None
    for p, q, want in zip(
        fresh.shared_parameters(), model.shared_parameters(), want_shared, strict=True
    ):
        add = extra_grads[id(q)] if with_extra else 0.0
        torch.testing.assert_close(p.grad, want + add, atol=1e-10, rtol=1e-8)
    for t in fresh.task_names:
        own = zip(fresh.task_parameters(t), model.task_parameters(t), want_heads[t], strict=True)
        for p, q, want in own:
            add = extra_grads[id(q)] if with_extra else 0.0
            torch.testing.assert_close(p.grad, want + add, atol=1e-10, rtol=1e-8)


class _Bypass(MultiTaskModule):
    """Shared ``u`` makes the representation; shared ``v`` reaches task b around it."""

    task_names = ("a", "b")

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.u, self.v = nn.Linear(3, 5).double(), nn.Linear(3, 1).double()
        self.heads = nn.ModuleDict({t: nn.Linear(5, 1).double() for t in self.task_names})

    def forward(self, x):
        self.representation = torch.tanh(self.u(x))
        rep = self.representation
        return {"a": self.heads["a"](rep), "b": self.heads["b"](rep) + self.v(x)}

    def shared_parameters(self):
        return iter([*self.u.parameters(), *self.v.parameters()])

    def task_parameters(self, task):
        return self.heads[task].parameters()


@pytest.mark.parametrize("marginalize", [True, False], ids=["per-unit", "per-scalar"])
def test_graddrop_on_the_representation_keeps_paths_around_it(marginalize):
    """GradDrop is a layer on ``representation``: a shared parameter that reaches a loss
    around it (``v``) gets its plain gradient; ``u`` gets the masked cotangent."""
    from multitask.nn.aggregation import GradDrop

    def losses_of(model):
        g = torch.Generator().manual_seed(6)
        x = torch.randn(9, 3, generator=g, dtype=torch.float64)
        y = torch.randn(9, 2, generator=g, dtype=torch.float64)
        out = model(x)
        return {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(model.task_names)}

    model = _Bypass()
    losses = losses_of(model)
    rep = model.representation
    rows = torch.stack([torch.autograd.grad(losses[t], rep, retain_graph=True)[0] for t in "ab"])
    cot = GradDrop(seed=2, marginalize_batch=marginalize).combine_representation(rows, rep)
    assert not torch.allclose(cot, rows.sum(0))
    want_u = torch.autograd.grad(rep, list(model.u.parameters()), cot, retain_graph=True)
    want_v = torch.autograd.grad(losses["b"], list(model.v.parameters()), retain_graph=True)
    want_h = {t: torch.autograd.grad(losses[t], list(model.heads[t].parameters())) for t in "ab"}

    fresh = _Bypass()
    agg = GradDrop(seed=2, marginalize_batch=marginalize)
    mtl_backward(losses_of(fresh), fresh, agg, use_representation=True)
    shared = [*fresh.u.parameters(), *fresh.v.parameters()]
    for p, want in zip(shared, [*want_u, *want_v], strict=True):
        torch.testing.assert_close(p.grad, want, atol=1e-12, rtol=1e-10)
    for t in "ab":
        for p, want in zip(fresh.heads[t].parameters(), want_h[t], strict=True):
            torch.testing.assert_close(p.grad, want, atol=1e-12, rtol=1e-10)
