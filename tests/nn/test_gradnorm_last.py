"""GradNorm on the last shared layer (Chen et al., ICML 2018, Sec. 3) through ``mtl_backward``.

Oracles: plain autograd on the same graph, ``autograd.grad`` once per task on the last layer for
Algorithm 1's gradient norms, and ``d/dw sum_t w_t L_t`` for every model parameter.
"""

import pytest
import torch
from torch import nn

import multitask.nn._last_layer as last_layer
import multitask.nn.backward as backward
from multitask.nn import mtl_backward
from multitask.nn._last_layer import last_layer_params
from multitask.nn.architectures import HardSharing, MultiTaskModule
from multitask.nn.weighting import GradNorm

torch.set_num_threads(1)
T = 3
ALPHA = 1.5


def _mlp(act=nn.ReLU, dropout=False):
    layers = [nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), act()]
    return nn.Sequential(*layers, *([nn.Dropout(0.3)] if dropout else []))


def _model(trunk=None, head="deep", seed=0, width=6):
    torch.manual_seed(seed)
    trunk = _mlp() if trunk is None else trunk
    make = {
        "deep": lambda: nn.Sequential(nn.Linear(width, 4), nn.Tanh(), nn.Linear(4, 1)),
        "linear": lambda: nn.Linear(width, 1),
        "tanh_first": lambda: nn.Sequential(nn.Tanh(), nn.Linear(width, 1)),
    }[head]
    return HardSharing(trunk, {f"t{i}": make() for i in range(T)}).double()


def _losses(model, seed=1, shape=(11, 5)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.randn(shape[0], T, generator=g, dtype=torch.float64)
    out = model(x)
    return {
        t: ((out[t][:, 0] - y[:, i]) ** 2).mean() * (i + 1) for i, t in enumerate(model.task_names)
    }


def _algorithm_1(losses, model, gn, layer, extra=None):
    """Alg. 1 by hand on the step's own graph: renormalised ``w``, ``dL_grad/dw`` from the
    per-task gradient norms of ``layer`` (one autograd.grad per task), and the model's
    gradients, those of ``sum_t w_t L_t (+ extra)``."""
    vec = torch.stack([losses[t] for t in model.task_names])
    norms = torch.stack(
        [
            torch.cat(
                [g.reshape(-1) for g in torch.autograd.grad(vec[t], layer, retain_graph=True)]
            )
            .norm()
            .detach()
            for t in range(T)
        ]
    )
    w = gn.task_weights.detach() * T / gn.task_weights.detach().sum()
    first = torch.isnan(gn.initial_losses)
    initial = torch.where(first, vec.detach(), gn.initial_losses)
    G = w * norms
    ratio = vec.detach() / initial
    target = G.mean() * (ratio / ratio.mean()) ** ALPHA
    objective = (w * vec).sum() + (0 if extra is None else extra)
    params = list(model.parameters())
    grads = torch.autograd.grad(objective, params, retain_graph=True, allow_unused=True)
    return torch.sign(G - target) * norms, w, grads


def _check_step(model, gn, layer, losses, extra=None):
    want_wgrad, want_w, want = _algorithm_1(losses, model, gn, layer, extra)
    gn.task_weights.grad = None
    mtl_backward(losses, model, gn, extra_loss=extra)
    torch.testing.assert_close(gn.task_weights.detach(), want_w, atol=1e-12, rtol=0)
    torch.testing.assert_close(gn.task_weights.grad, want_wgrad, atol=1e-10, rtol=0)
    for (name, p), g in zip(model.named_parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-10, rtol=0, msg=name)


@pytest.fixture
def spy(monkeypatch):
    """Counts the last-layer Jacobians; the general path raises (so the fast path must run)."""
    calls = []
    inner = last_layer._jacobian
    monkeypatch.setattr(last_layer, "_jacobian", lambda *a: calls.append(1) or inner(*a))

    def general(*args, **kwargs):
        raise AssertionError("the general Jacobian path ran")

    monkeypatch.setattr(backward, "_jacobian", general)
    return calls


@pytest.mark.parametrize(
    "trunk, head",
    [
        (None, "deep"),
        (None, "linear"),
        (lambda: _mlp(act=nn.GELU), "deep"),
        (lambda: nn.Sequential(nn.Linear(5, 6)), "linear"),  # one layer, no activation
    ],
    ids=["relu-deep-heads", "relu-linear-heads", "gelu", "single-linear"],
)
def test_last_layer_steps_follow_algorithm_1(spy, trunk, head):
    """Three SGD steps: w, dL_grad/dw and every model gradient against Alg. 1 by hand."""
    model = _model(None if trunk is None else trunk(), head)
    gn = GradNorm(T, alpha=ALPHA, shared_params="last").double()
    with torch.no_grad():
        gn.task_weights.copy_(torch.tensor([1.0, 2.0, 0.5]))
    opt = torch.optim.SGD([*model.parameters(), *gn.parameters()], lr=0.05)
    layer = last_layer_params(_probe(model))
    linear = [m for m in model.trunk.modules() if isinstance(m, nn.Linear)][-1]
    assert layer == [linear.weight, linear.bias]
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        _check_step(model, gn, layer, _losses(model, seed=step))
        opt.step()
    assert len(spy) == 3


def _probe(model):
    _losses(model, seed=99)
    return model


def test_explicit_weight_only_and_extra_loss(spy):
    """``shared_params=[W]`` (no bias): the bias and lower layers still get sum_t w_t dL_t; an
    extra loss reaches every parameter; gradients already in ``.grad`` are added to."""
    model = _model(_mlp(dropout=True))
    weight = model.trunk[2].weight
    gn = GradNorm(T, alpha=ALPHA, shared_params=[weight]).double()
    losses = _losses(model)
    extra = sum(p.pow(2).sum() for p in model.parameters()) * 0.1
    _check_step(model, gn, [weight], losses, extra)
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    losses = _losses(model, seed=2)
    _, _, want = _algorithm_1(losses, model, gn, [weight])
    mtl_backward(losses, model, gn)
    for (name, p), g in zip(model.named_parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, before[name] + g, atol=1e-10, rtol=0, msg=name)
    assert len(spy) == 2


def test_record_cosines_are_those_of_the_layer_rows(spy):
    model = _model()
    losses = _losses(model)
    layer = last_layer_params(model)
    rows = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, layer, retain_graph=True)])
            for loss in losses.values()
        ]
    )
    unit = rows / rows.norm(dim=1, keepdim=True)
    info = mtl_backward(losses, model, GradNorm(T, shared_params="last"), record_cosines=True)
    torch.testing.assert_close(info.cosines, unit @ unit.T, atol=1e-12, rtol=0)
    assert len(spy) == 1


def test_a_task_without_gradient(spy):
    """A constant loss: zero norm, zero row, its head untouched, the rest exact."""
    model = _model()
    gn = GradNorm(T, alpha=ALPHA, shared_params="last").double()
    losses = _losses(model)
    losses["t1"] = losses["t1"].detach()
    vec = torch.stack(list(losses.values()))
    live = [losses["t0"], losses["t2"]]
    layer = last_layer_params(model)
    norms = [
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(x, layer, retain_graph=True)]).norm()
        for x in live
    ]
    want = torch.autograd.grad(
        (vec * 1.0).sum(), list(model.parameters()), retain_graph=True, allow_unused=True
    )
    mtl_backward(losses, model, gn)
    for (name, p), g in zip(model.named_parameters(), want, strict=True):
        if g is None:
            assert p.grad is None, name
        else:
            torch.testing.assert_close(p.grad, g, atol=1e-10, rtol=0, msg=name)
    G = torch.stack([norms[0], torch.zeros((), dtype=torch.float64), norms[1]]).detach()
    target = G.mean()  # first step: every ratio is 1
    torch.testing.assert_close(gn.task_weights.grad, torch.sign(G - target) * G, atol=1e-10, rtol=0)
    assert len(spy) == 1


class _Conv(nn.Module):
    """Conv -> ReLU -> flatten: its last layer is a convolution (not handled by hand)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)

    def forward(self, x):
        return torch.relu(self.conv(x[:, None, :])).flatten(1)  # (batch, 2 * 3)


def _count(monkeypatch, module, name):
    calls, inner = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or inner(*a, **k))
    return calls


def _run_two_steps(model, shared_params="last"):
    gn = GradNorm(T, alpha=ALPHA, shared_params=shared_params).double()
    layer = last_layer_params(_probe(model))
    for step in range(2):
        model.zero_grad(set_to_none=True)
        _check_step(model, gn, layer, _losses(model, seed=step))


@pytest.mark.parametrize(
    "make",
    [lambda: _model(_Conv()), lambda: _model(nn.Sequential(_mlp(), nn.LayerNorm(6)))],
    ids=["conv", "layernorm"],
)
def test_other_last_layers_take_the_two_stage_autograd_path(monkeypatch, make):
    """A last layer not done by hand: J from one batched backward of the head stage's rows
    (the general one-pass path, which runs every head T times, must not run)."""
    by_hand = _count(monkeypatch, last_layer, "_jacobian")
    batched = _count(monkeypatch, last_layer, "_batched_vjp")

    def general(*args, **kwargs):
        raise AssertionError("the general Jacobian path ran")

    monkeypatch.setattr(backward, "_jacobian", general)
    _run_two_steps(make())
    assert not by_hand and len(batched) == 2


@pytest.mark.parametrize(
    "make, two_stage",
    [(lambda: _model(head="tanh_first"), True), (lambda: _model(), False)],
    ids=["head-not-linear", "no-two-stage"],
)
def test_unrecognised_structures_fall_back(monkeypatch, make, two_stage):
    general = _count(monkeypatch, backward, "_jacobian")
    by_hand = _count(monkeypatch, last_layer, "_jacobian")
    model = make()
    model.shared_through_representation = two_stage
    _run_two_steps(model)
    assert not by_hand and len(general) == 2


@pytest.mark.parametrize("two_stage", [True, False])
def test_auto_is_last_on_two_stage_models_and_all_shared_otherwise(two_stage):
    """The default ``"auto"`` gives the same step as ``"last"`` (two-stage model) or as None."""
    other = "last" if two_stage else None
    runs = []
    for shared_params in ("default", other):  # the default is "auto": the paper's W
        model = _model()
        model.shared_through_representation = two_stage
        kw = {} if shared_params == "default" else {"shared_params": shared_params}
        gn = GradNorm(T, alpha=ALPHA, **kw).double()
        with torch.no_grad():
            gn.task_weights.copy_(torch.tensor([1.0, 2.0, 0.5]))
        mtl_backward(_losses(model), model, gn)
        runs.append([gn.task_weights.grad, *(p.grad for p in model.parameters())])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    if not two_stage:  # and None is not "last" here: the weights' gradients differ
        model = _model()
        gn = GradNorm(T, alpha=ALPHA, shared_params="last").double()
        with torch.no_grad():
            gn.task_weights.copy_(torch.tensor([1.0, 2.0, 0.5]))
        mtl_backward(_losses(model), model, gn)
        assert (gn.task_weights.grad - runs[0][0]).abs().max() > 1e-3


@pytest.mark.parametrize("trunk", ["mlp", "conv"])
def test_all_shared_steps_follow_algorithm_1(monkeypatch, trunk):
    """``shared_params=None`` on a two-stage model: J through the representation (the MLP
    trunk by hand), heads from the head stage scaled by w, the trunk read off J."""
    chain = _count(monkeypatch, last_layer, "trunk_jacobian")
    batched = _count(monkeypatch, last_layer, "_batched_vjp")

    def general(*args, **kwargs):
        raise AssertionError("the general Jacobian path ran")

    monkeypatch.setattr(backward, "_jacobian", general)
    model = _model(_mlp(dropout=True) if trunk == "mlp" else _Conv())
    gn = GradNorm(T, alpha=ALPHA, shared_params=None).double()
    with torch.no_grad():
        gn.task_weights.copy_(torch.tensor([1.0, 2.0, 0.5]))
    opt = torch.optim.SGD([*model.parameters(), *gn.parameters()], lr=0.05)
    shared = list(model.shared_parameters())
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        extra = sum(p.pow(2).sum() for p in model.parameters()) * 0.1 if step == 1 else None
        _check_step(model, gn, shared, _losses(model, seed=step), extra)
        opt.step()
    assert len(chain) == 3 and len(batched) == (0 if trunk == "mlp" else 3)


def test_a_tied_last_layer_takes_the_autograd_path(monkeypatch):
    """The last Linear also used lower in the trunk: its gradient has two parts, so the
    hand-carried step (which sees the top use only) must not run."""
    tied = nn.Linear(6, 6)
    model = _model(nn.Sequential(nn.Linear(5, 6), nn.Tanh(), tied, nn.Tanh(), tied, nn.ReLU()))
    by_hand = _count(monkeypatch, last_layer, "_jacobian")
    batched = _count(monkeypatch, last_layer, "_batched_vjp")
    _run_two_steps(model)
    assert not by_hand and len(batched) == 2


def test_last_layer_params_finds_the_layer_under_activations_and_dropout():
    model = _model(_mlp(dropout=True))
    _losses(model)
    assert last_layer_params(model) == [model.trunk[2].weight, model.trunk[2].bias]
    conv = _model(_Conv())
    _losses(conv)
    assert last_layer_params(conv) == [conv.trunk.conv.weight, conv.trunk.conv.bias]


class _NoRepresentation(MultiTaskModule):
    task_names = ("a", "b", "c")

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(5, 4)
        self.heads = nn.ModuleDict({t: nn.Linear(4, 1) for t in self.task_names})

    def forward(self, x):
        h = self.shared(x)
        return {t: self.heads[t](h) for t in self.task_names}

    def shared_parameters(self):
        return self.shared.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


class _Residual(_NoRepresentation):
    def forward(self, x):
        self.representation = self.shared(x) + x[:, :4]
        return {t: self.heads[t](self.representation) for t in self.task_names}


@pytest.mark.parametrize("cls, words", [(_NoRepresentation, "has none"), (_Residual, "branches")])
def test_last_without_a_single_last_layer_says_what_to_do(cls, words):
    model = cls().double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=cls is _Residual)
    losses = {t: v.pow(2).mean() for t, v in model(x).items()}
    with pytest.raises(ValueError, match=f"{words}.*shared_params=\\[") as err:
        mtl_backward(losses, model, GradNorm(3, shared_params="last"))
    assert "representation" in str(err.value)


def test_shared_params_rejects_other_strings():
    with pytest.raises(ValueError, match="'auto', 'last', None or an iterable"):
        GradNorm(T, shared_params="first")
