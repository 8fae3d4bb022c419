"""mtl_backward on autograd graphs its fast paths do not read: checkpointing, torch.compile, heads.

The fast paths (:mod:`multitask.nn._jacobian_fast`, :mod:`multitask.nn._trunk_chain`,
:mod:`multitask.nn._last_layer`) read the autograd graph node by node and must hand any form they
do not recognise to the generic path. Every test runs one step on a model of that form and
compares every parameter's ``.grad`` (trunk, heads, the weighting's own) with an independent
reference computed on a plain copy of the model (same weights, same input, same dropout masks):
the per-task Jacobian from ``T`` separate ``autograd.grad`` calls (:func:`per_task_rows`), a fresh
identical balancer's ``forward`` on it (on the representation's Jacobian, its output pushed
down the trunk, for ``use_representation=True``), each head its own task's gradient; for a
loss weighting, the backward of ``balancer(L)`` (DB-MTL: its ``shared_gradient`` on the trunk).

- activation checkpointing (``torch.utils.checkpoint``), non-reentrant and reentrant, on the
  whole trunk and on part of it. The reentrant form hides the parameters inside it from
  ``torch.autograd.grad``: mtl_backward must then raise (torch's error, or one naming
  ``use_reentrant``) rather than write a zero trunk gradient;
- a trunk or a whole model compiled with ``torch.compile`` (backends ``eager``, ``aot_eager``);
- heads that start with Dropout (train mode), ReLU or LayerNorm, and plain Linear heads.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from jacobian_oracle import per_task_rows
from torch import nn
from torch.utils.checkpoint import checkpoint

from multitask.nn import aggregation, mtl_backward
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DBMTL, EqualWeighting, UncertaintyWeighting

torch.set_num_threads(1)
T, WIDTH = 3, 6

AGGREGATORS = [
    getattr(aggregation, name)
    for name in aggregation.__all__
    if name not in ("AGGREGATORS", "GradientAggregator")
]
WEIGHTINGS = [EqualWeighting, UncertaintyWeighting, DBMTL]
# (factory, use_representation): every aggregator on both placements, the weightings on theirs
BALANCERS = [(a, rep) for a in AGGREGATORS for rep in (False, True)] + [
    (w, False) for w in WEIGHTINGS
]
BALANCER_IDS = [f"{b.__name__}-{'rep' if rep else 'params'}" for b, rep in BALANCERS]


class Checkpointed(nn.Module):
    """``block`` run under ``torch.utils.checkpoint`` (activations recomputed in backward)."""

    def __init__(self, block: nn.Module, reentrant: bool) -> None:
        super().__init__()
        self.block, self.reentrant = block, reentrant

    def forward(self, x):
        return checkpoint(self.block, x, use_reentrant=self.reentrant)


def _head(kind: str) -> nn.Module:
    first = {
        "linear": None,
        "mlp": nn.Linear(WIDTH, 4),
        "dropout": nn.Dropout(0.3),
        "relu": nn.ReLU(),
        "layernorm": nn.LayerNorm(WIDTH),
    }[kind]
    if first is None:
        return nn.Linear(WIDTH, 1)
    if kind == "mlp":
        return nn.Sequential(first, nn.Tanh(), nn.Linear(4, 1))
    return nn.Sequential(first, nn.Linear(WIDTH, 1))


def _plain(heads: str, seed: int = 0) -> HardSharing:
    """Linear, Tanh, [Linear, Tanh]; ``heads``: one kind for every task, or "mixed"."""
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Sequential(nn.Linear(7, WIDTH), nn.Tanh()))
    kinds = ["linear", "dropout", "layernorm"] if heads == "mixed" else [heads] * T
    return HardSharing(trunk, {f"t{i}": _head(k) for i, k in enumerate(kinds)}).double()


def _wrap(model: HardSharing, form: str) -> nn.Module:
    """``model`` (changed in place, or wrapped) with its trunk, or itself, in ``form``."""
    if form.startswith("ckpt"):  # ckpt-{whole,part}[-reentrant]
        reentrant = form.endswith("reentrant")
        if "whole" in form:
            model.trunk = Checkpointed(model.trunk, reentrant)
        else:
            model.trunk[2] = Checkpointed(model.trunk[2], reentrant)
    elif form.startswith("compile-trunk"):
        model.trunk = torch.compile(model.trunk, backend=form.split(":")[1])
    elif form.startswith("compile-model"):
        return torch.compile(model, backend=form.split(":")[1])
    return model


def _forward(model, seed: int = 1, input_grad: bool = False):
    """Task losses on a fixed batch, dropout masks drawn from a fixed seed.

    ``input_grad``: the input requires a gradient (a reentrant checkpoint whose inputs need
    none gives an output outside the graph, torch warns, and no trunk gradient at all).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64).requires_grad_(input_grad)
    y = torch.randn(11, T, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    out = model(x)
    return {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() * (i + 1) for i, t in enumerate(out)}


def _make(balancer):
    return balancer(T) if balancer in WEIGHTINGS else balancer()


def _reference(model: HardSharing, balancer, use_rep: bool) -> dict[str, torch.Tensor]:
    """Every parameter's gradient (and the weighting's own, as ``balancer.<name>``)."""
    losses = _forward(model)
    names = list(model.task_names)
    shared = list(model.shared_parameters())
    vec = torch.stack([losses[t] for t in names])
    want = {}
    if isinstance(balancer, aggregation.GradientAggregator):
        kw = {"losses": vec.detach()} if getattr(balancer, "needs_losses", False) else {}
        if use_rep:
            rep = model.representation
            rows = per_task_rows(losses, names, [rep])  # (T, rep.numel())
            combine = getattr(balancer, "combine_representation", None)
            if combine is not None:  # GradDrop on an activation layer
                cot = combine(rows.reshape(T, *rep.shape), rep.detach())
            else:
                cot = balancer(rows, **kw).reshape(rep.shape)
            grads = torch.autograd.grad(rep, shared, cot, retain_graph=True)
            direction = torch.cat([g.reshape(-1) for g in grads])
        else:
            direction = balancer(per_task_rows(losses, names, shared), **kw)
        for t in names:  # each head: its own task's gradient
            own = list(model.task_parameters(t))
            for p, g in zip(
                own, torch.autograd.grad(losses[t], own, retain_graph=True), strict=True
            ):
                want[id(p)] = g
    else:
        direction = None
        if balancer.needs_jacobian:  # DB-MTL: observe J, then its own shared update
            jac = per_task_rows(losses, names, shared)
            balancer.observe(vec.detach(), jac)
            direction = balancer.shared_gradient(vec.detach(), jac)
        total = balancer(vec)
        heads = [p for t in names for p in model.task_parameters(t)]
        others = heads + list(balancer.parameters()) + ([] if direction is not None else shared)
        for p, g in zip(others, torch.autograd.grad(total, others), strict=True):
            want[id(p)] = g
    if direction is not None:
        offset = 0
        for p in shared:
            want[id(p)] = direction[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
    named = {n: want[id(p)] for n, p in model.named_parameters()}
    return named | {f"balancer.{n}": want[id(p)] for n, p in balancer.named_parameters()}


def _got(model: nn.Module, balancer) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters())
    named |= {f"balancer.{n}": p for n, p in balancer.named_parameters()}
    return {_canonical(n): p.grad for n, p in named.items()}


def _canonical(name: str) -> str:
    """A parameter's name in the plain model (wrappers add ``block.``, ``_orig_mod.``)."""
    return name.replace("_orig_mod.", "").replace("block.", "")


def _assert_grads(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for name, w in want.items():
        assert got[name] is not None, f"{name}: no gradient"
        scale = max(float(w.abs().max()), 1e-3)
        torch.testing.assert_close(got[name], w, rtol=1e-9, atol=1e-9 * scale, msg=name)


def _run(form: str, heads: str, balancer, use_rep: bool) -> None:
    reference = _plain(heads)
    model = _wrap(copy.deepcopy(reference), form)
    want = _reference(reference, _make(balancer), use_rep)
    made = _make(balancer)
    mtl_backward(_forward(model), model, made, use_representation=use_rep)
    _assert_grads(_got(model, made), want)


ARCHITECTURES = [
    *[(form, "linear") for form in ("plain", "ckpt-whole", "ckpt-part")],
    *[(form, "mlp") for form in ("ckpt-whole", "ckpt-part")],
    *[("plain", kind) for kind in ("mlp", "dropout", "relu", "layernorm", "mixed")],
    ("ckpt-part", "dropout"),
    ("ckpt-whole", "layernorm"),
]


@pytest.mark.parametrize(("form", "heads"), ARCHITECTURES, ids=["-".join(a) for a in ARCHITECTURES])
@pytest.mark.parametrize(("balancer", "use_rep"), BALANCERS, ids=BALANCER_IDS)
def test_step_equals_separate_per_task_gradients(form, heads, balancer, use_rep):
    _run(form, heads, balancer, use_rep)


@pytest.mark.parametrize("where", ["whole", "part"])
@pytest.mark.parametrize(("balancer", "use_rep"), BALANCERS, ids=BALANCER_IDS)
def test_reentrant_checkpoint_is_right_or_refused(where, balancer, use_rep):
    """``use_reentrant=True`` hides its parameters from ``autograd.grad`` (the reference's own
    tool): a step that needs per-task gradients must refuse it, never write a zero gradient."""
    reference = _plain("linear")
    model = _wrap(copy.deepcopy(reference), f"ckpt-{where}-reentrant")
    want = _reference(reference, _make(balancer), use_rep)
    made = _make(balancer)
    losses = _forward(model, input_grad=True)
    try:
        mtl_backward(losses, model, made, use_representation=use_rep)
    except (RuntimeError, ValueError) as err:
        assert "use_reentrant" in str(err)
        assert balancer not in (EqualWeighting, UncertaintyWeighting)  # a plain backward works
        return
    _assert_grads(_got(model, made), want)


COMPILED = [
    aggregation.Mean,
    aggregation.UPGrad,
    aggregation.PCGrad,
    aggregation.GradDrop,
    UncertaintyWeighting,
    DBMTL,
]


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("target", ["trunk", "model"])
def test_compiled_trunk_or_model(target, backend):
    """One compiled module per test: each balancer's step on a fresh forward of it."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    reference = _plain("mlp")
    model = _wrap(copy.deepcopy(reference), f"compile-{target}:{backend}")
    for balancer in COMPILED:
        places = (False, True) if balancer in AGGREGATORS else (False,)
        for use_rep in places:
            if target == "model" and use_rep and backend == "aot_eager":
                continue  # the representation is an output beside the graph: the test below
            model.zero_grad(set_to_none=True)
            want = _reference(reference, _make(balancer), use_rep)
            made = _make(balancer)
            mtl_backward(_forward(model), model, made, use_representation=use_rep)
            _assert_grads(_got(model, made), want)
    # it ran compiled (dynamo falls back to eager silently past its recompile limit)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    if backend == "aot_eager":  # the graph the fast paths met: one opaque node
        node = model.representation.grad_fn
        assert type(node).__name__ == "CompiledFunctionBackward"


@pytest.mark.parametrize("balancer", [aggregation.UPGrad, aggregation.GradDrop])
def test_compiled_model_representation_is_refused_clearly(balancer):
    """Compiled whole by aot_eager, the model returns its representation beside the losses'
    graph: use_representation=True has no rows to aggregate and says why, naming compile."""
    torch._dynamo.reset()
    model = _wrap(_plain("linear"), "compile-model:aot_eager")
    with pytest.raises(ValueError, match=r"torch\.compile"):
        mtl_backward(_forward(model), model, balancer(), use_representation=True)


@pytest.mark.parametrize("balancer", [aggregation.GradDrop, aggregation.MGDA])
def test_compiled_model_default_placement_falls_back_to_the_parameters(balancer, monkeypatch):
    """The default placement of an aggregator that prefers the representation (GradDrop;
    MGDA made to prefer it) on a model compiled whole by aot_eager: no loss reaches the
    representation, so the step takes the parameters' Jacobian, warned once; the next step
    goes there at once. Oracle: the plain model's step with use_representation=False."""
    if balancer is aggregation.MGDA:
        monkeypatch.setattr(balancer, "prefers_representation", True, raising=False)
    torch._dynamo.reset()
    reference = _plain("linear")
    model = _wrap(copy.deepcopy(reference), "compile-model:aot_eager")
    made, oracle = balancer(), balancer()  # (GradDrop's draws are its state: one each)
    from multitask.nn import backward

    tries = []
    original = backward._representation_jacobian
    monkeypatch.setattr(
        backward,
        "_representation_jacobian",
        lambda *a: tries.append(1) or original(*a),
    )
    for step in range(2):
        model.zero_grad(set_to_none=True)
        want = _reference(reference, oracle, use_rep=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mtl_backward(_forward(model), model, made)
        said = [str(w.message) for w in caught if "no task loss reaches" in str(w.message)]
        if step == 0:  # warned at the first step, naming the aggregator; not again
            assert len(said) == 1 and f"{balancer.__name__} is defined on an activation" in said[0]
        else:
            assert not said
        _assert_grads(_got(model, made), want)
    assert len(tries) == 1  # the second step did not try the representation again


class _UnusedLayer(nn.Module):
    """A trunk with a shared layer its forward never uses (a branch of another task)."""

    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Linear(4, WIDTH), nn.Linear(4, WIDTH)

    def forward(self, x):  # (a layer norm: the trunk-chain fast path hands it to the generic one)
        return torch.tanh(nn.functional.layer_norm(self.used(x), (WIDTH,)))


@pytest.mark.parametrize("use_rep", [False, True])
def test_an_unused_shared_layer_is_walked_for_a_checkpoint_once(monkeypatch, use_rep):
    """The search for a reentrant checkpoint walks the whole graph: once per set of unreached
    parameters, not every step. Oracle: the walk is made to raise on a node every such graph
    holds (``TanhBackward0``); once the set is known clean, the next step does not walk."""
    from multitask.nn import _jacobian

    torch.manual_seed(0)
    model = HardSharing(_UnusedLayer(), {f"t{i}": nn.Linear(WIDTH, 1) for i in range(T)})
    x, ys = torch.randn(8, 4), torch.randn(T, 8, 1)

    def step():
        model.zero_grad(set_to_none=True)
        out = model(x)
        losses = {t: ((out[t] - ys[i]) ** 2).mean() for i, t in enumerate(out)}
        mtl_backward(losses, model, aggregation.UPGrad(), use_representation=use_rep)

    monkeypatch.setattr(_jacobian, "_CLEAN_UNREACHED", set())
    step()  # walks: no reentrant checkpoint, the set of unreached parameters is recorded
    assert _jacobian._CLEAN_UNREACHED == {frozenset(map(id, model.trunk.unused.parameters()))}
    assert all(p.grad is None or not p.grad.any() for p in model.trunk.unused.parameters())
    monkeypatch.setattr(_jacobian, "_REENTRANT_CHECKPOINT", "TanhBackward0")
    step()  # the same set: not walked (a walk would now raise)
    monkeypatch.setattr(_jacobian, "_CLEAN_UNREACHED", set())
    with pytest.raises(ValueError, match="use_reentrant"):  # control: a new set is walked
        step()
