"""The two-stage step's closed-form loss gradients (no ``autograd.grad`` call) against autograd.

DB-MTL and GradNorm give ``d forward(L) / d L`` (and GradNorm ``d L_grad / d w``) in closed
form; ``mtl_backward`` must then write exactly the ``.grad`` that differentiating their graphs
gives (the oracle: the same weighting with the closed form switched off), step by step:
bitwise for GradNorm; for DB-MTL, whose fast step also takes its rows of ``grad log(L_t +
eps)`` from cotangents scaled before the trunk's products, to float32 rounding.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn._jacobian_fast import HeadRows
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DBMTL, GradNorm

torch.set_num_threads(1)


def _autograd(cls):
    """``cls`` with the closed form switched off: the step differentiates its graph."""

    class Autograd(cls):
        def _closed_form_gradients(self, losses, aux):
            return None

    return Autograd


def _model(seed=0):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU())
    return HardSharing(trunk, {f"t{i}": nn.Linear(12, 1) for i in range(3)})


def _losses(model, k):
    g = torch.Generator().manual_seed(k)
    x, y = torch.randn(32, 6, generator=g), torch.randn(32, 3, generator=g)
    out = model(x)
    return {t: (out[t][:, 0] - y[:, i] * (i + 1)).pow(2).mean() for i, t in enumerate(out)}


CASES = {
    "dbmtl": lambda cls: cls(3, beta=0.9, sigma=0.5),
    "gradnorm-last": lambda cls: cls(3),
    "gradnorm-all-shared": lambda cls: cls(3, shared_params=None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_closed_form_step_equals_the_autograd_step(case):
    base = DBMTL if case == "dbmtl" else GradNorm
    fast, slow = CASES[case](base), CASES[case](_autograd(base))
    models = {"fast": _model(), "slow": _model()}
    for k in range(3):
        for name, bal in (("fast", fast), ("slow", slow)):
            model = models[name]
            model.zero_grad(set_to_none=True)
            bal.zero_grad(set_to_none=True)
            info = mtl_backward(_losses(model, k), model, bal)
            if name == "fast":
                want = info
        # DB-MTL's fast step scales the heads' cotangents by 1 / (L_t + eps) before the
        # trunk's products (a different rounding of the same rows); GradNorm's is bitwise
        tol = {"rtol": 1e-5, "atol": 1e-7} if case == "dbmtl" else {"rtol": 0, "atol": 0}
        for p, q in zip(models["fast"].parameters(), models["slow"].parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, **tol)
        for p, q in zip(fast.parameters(), slow.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)
        # DB-MTL's total without a graph is summed in Python floats, rounded once (an ulp
        # from torch's log and sum, which round each term: test_dbmtl_speedpaths)
        loss_tol = {"rtol": 2.5e-7, "atol": 0} if case == "dbmtl" else {"rtol": 0, "atol": 0}
        torch.testing.assert_close(want.loss, info.loss, **loss_tol)
        with torch.no_grad():  # a small optimizer step, so that the weights move
            for m, bal in ((models["fast"], fast), (models["slow"], slow)):
                for p in [*m.parameters(), *bal.parameters()]:
                    p -= 0.05 * p.grad


def test_gradnorm_closed_form_only_for_the_host_loss():
    """The device path's L_grad (built in torch) carries no closed form: autograd then."""
    J = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    L = torch.tensor([0.5, 1.0, 2.0])
    host, device = GradNorm(3), GradNorm(3)
    device._host = False
    aux_host, aux_device = host.observe(L, J), device.observe(L, J)
    assert device._closed_form_gradients(L, aux_device) is None
    coeffs, (dw,) = host._closed_form_gradients(L, aux_host)
    (want,) = torch.autograd.grad(aux_host, host.task_weights)
    torch.testing.assert_close(dw, want, rtol=0, atol=0)
    Lg = L.clone().requires_grad_()
    (dL,) = torch.autograd.grad(host(Lg), Lg)
    torch.testing.assert_close(coeffs, dL, rtol=0, atol=0)


def test_gradnorm_with_frozen_weights_steps():
    model, gn = _model(), GradNorm(3)
    gn.task_weights.requires_grad_(False)
    mtl_backward(_losses(model, 0), model, gn)
    assert gn.task_weights.grad is None
    assert all(p.grad is not None for p in model.shared_parameters())


def test_dbmtl_cosines_and_scaled_rows():
    """DB-MTL's two-stage step takes its Jacobian from scaled cotangents: the cosines it
    records are still those of the task gradients (autograd, one task at a time), and
    ``HeadRows.scaled`` scales each task's dense rows (a task without a loss stays zero)."""
    model = _model()
    losses = _losses(model, 0)
    shared = list(model.shared_parameters())
    rows = [torch.autograd.grad(losses[t], shared, retain_graph=True) for t in losses]
    J = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in rows])
    unit = J / J.norm(dim=1, keepdim=True)
    info = mtl_backward(losses, model, DBMTL(3), record_cosines=True)
    torch.testing.assert_close(info.cosines, unit @ unit.T, rtol=1e-5, atol=1e-6)
    g = torch.Generator().manual_seed(1)
    heads = HeadRows(
        delta=torch.randn(2, 5, 1, generator=g),
        weight=torch.randn(2, 1, 4, generator=g),
        live=[0, 2],
        n_tasks=3,
    )
    c = torch.tensor([2.0, 3.0, 0.5])
    torch.testing.assert_close(heads.scaled(c).dense(), c[:, None, None] * heads.dense())


def test_seeded_head_stage_gives_the_rows_and_head_gradients_of_weighted_losses():
    """``head_cotangents(seed=c)`` (DB-MTL's step): rows ``c_t dL_t/d rep`` and head gradients
    ``c_t dL_t/d head_t``, against autograd on each ``c_t L_t`` alone."""
    from multitask.nn._jacobian_fast import head_cotangents

    model = _model()
    losses = _losses(model, 0)
    names = list(losses)
    rep = model.representation
    heads = [list(model.task_parameters(t)) for t in names]
    c = torch.tensor([0.5, 2.0, 3.0])
    vec = torch.stack([losses[t] for t in names])
    rows, head_grads = head_cotangents([losses[t] for t in names], rep, heads, vec, seed=c)
    for i, t in enumerate(names):
        want = torch.autograd.grad(c[i] * losses[t], [rep, *heads[i]], retain_graph=True)
        torch.testing.assert_close(rows.dense()[i], want[0], rtol=1e-6, atol=1e-8)
        got = dict((id(p), g) for p, g in head_grads)
        for p, w in zip(heads[i], want[1:], strict=True):
            torch.testing.assert_close(got[id(p)], w, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="a seed needs the stacked losses"):
        head_cotangents([losses[t] for t in names], rep, heads, None, seed=c)
