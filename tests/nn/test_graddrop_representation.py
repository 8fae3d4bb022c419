"""GradDrop on an activation layer, as Chen et al. (NeurIPS 2020) define it.

Oracle: the batch-marginalised mask written out with loops (the paper's eq. 1 and mask on
``G_i = sum_b sign(A_b) dL_i/dA_b``, the authors' lingvo layer's defaults), on the rows of T
separate ``autograd.grad`` calls, with GradDrop's documented uniform draws
(:func:`aggregator_checks.graddrop_uniforms`). Also: where ``mtl_backward`` applies it by
default (the representation), the fallback for a model without one, and bad input.
"""

import warnings

import numpy as np
import pytest
import torch
from aggregator_checks import graddrop_uniforms
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import MGDA, GradDrop
from multitask.nn.architectures import HardSharing, MultiTaskModule

torch.set_num_threads(1)


def _reference(rows: np.ndarray, A: np.ndarray, U: np.ndarray, leak=None) -> np.ndarray:
    """sum_i (l_i + (1 - l_i) M_i) rows_i, M_i per unit from the sign of G_i (loops)."""
    T, B = rows.shape[:2]
    R = rows.reshape(T, B, -1)
    S = np.sign(A.reshape(B, -1))
    leak = np.zeros(T) if leak is None else np.asarray(leak, dtype=float)
    out = np.zeros(R.shape[1:])
    for j in range(R.shape[2]):
        G = [sum(S[b, j] * R[t, b, j] for b in range(B)) for t in range(T)]
        total, mass = sum(G), sum(abs(g) for g in G)
        for t in range(T):
            if mass == 0:
                keep = False  # no signal at this unit: nothing passes (but the leak)
            else:
                P = 0.5 * (1 + total / mass)
                keep = G[t] > 0 if P >= U[j] else G[t] < 0  # a tie keeps the positive side
            out[:, j] += (leak[t] + (1 - leak[t]) * keep) * R[t, :, j]
    return out.reshape(A.shape)


def _with_uniforms(agg: GradDrop, U: np.ndarray) -> GradDrop:
    agg._uniform = lambda J: torch.as_tensor(U, dtype=J.dtype)
    return agg


@pytest.mark.parametrize("n_tasks", [2, 3, 10])
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 2, 2)], ids=["dense", "conv"])
def test_combine_matches_the_batch_marginalised_mask(n_tasks, shape):
    g = np.random.default_rng(n_tasks)
    rows = g.standard_normal((n_tasks, *shape))
    A = g.standard_normal(shape)
    A.reshape(shape[0], -1)[:, 0] = 0.0  # a dead unit: sign 0 everywhere, G_i = 0
    units = int(np.prod(shape[1:]))
    U = g.uniform(size=units)
    agg = _with_uniforms(GradDrop(), U)
    got = agg.combine_representation(torch.from_numpy(rows), torch.from_numpy(A))
    want = _reference(rows, A, U)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    assert not np.allclose(want, rows.sum(0))  # some task gradients were dropped
    assert np.all(got.numpy().reshape(shape[0], -1)[:, 0] == 0)  # the dead unit passes nothing


def test_combine_with_leak_and_hand_made_rows():
    """Two tasks, one unit each case: agreeing, conflicting, identical, rescaled, a tie."""
    A = np.array([[1.0, -2.0, 1.0, 3.0, 1.0]])  # batch of one
    rows = np.array(
        [
            [[0.5, 0.3, 1.0, 2.0, 1.0]],
            [[0.2, -0.3, 1.0, -6.0, -1.0]],
        ]
    )
    # units: G = rows * sign(A); unit 4 is a tie (P = 0.5 = U), unit 3 conflicts with P = 0.25
    U = np.array([0.9, 0.1, 0.3, 0.2, 0.5])
    leak = np.array([0.25, 0.0])
    agg = _with_uniforms(GradDrop(leak=torch.tensor(leak)), U)
    got = agg.combine_representation(torch.from_numpy(rows), torch.from_numpy(A)).numpy()
    np.testing.assert_allclose(got, _reference(rows, A, U, leak), rtol=1e-14)
    # by hand: unit 3 has G = (2, -6), P = 0.25 > U = 0.2: task 0 (G > 0) kept, task 1 dropped
    assert got[0, 3] == pytest.approx(2.0)
    # unit 4: P = U keeps the positive side, task 0 (G = 1); task 1 passes its leak 0: 1.0
    assert got[0, 4] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_combine_draws_one_uniform_per_unit(dtype):
    """The draws are GradDrop's documented stream, one per unit (not per scalar activation)."""
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(3, 6, 4, generator=g).to(dtype)
    A = torch.randn(6, 4, generator=g).to(dtype)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    npdt = np.float64 if work == torch.float64 else np.float32
    U = graddrop_uniforms(9, 2 * 4, npdt)  # two steps of 4 units
    agg = GradDrop(seed=9)
    for step in range(2):
        got = agg.combine_representation(rows, A)
        assert got.dtype == dtype and got.shape == A.shape
        want = _reference(
            rows.to(work).double().numpy(), A.double().numpy(), U[4 * step : 4 * step + 4]
        )
        tol = 1e-12 if dtype == torch.float64 else (1e-5 if dtype == torch.float32 else 2e-2)
        np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol)


def test_combine_without_marginalising_is_forward_on_the_flat_rows():
    g = torch.Generator().manual_seed(1)
    rows, A = torch.randn(2, 5, 3, generator=g), torch.randn(5, 3, generator=g)
    got = GradDrop(seed=4, marginalize_batch=False).combine_representation(rows, A)
    want = GradDrop(seed=4)(rows.reshape(2, -1)).reshape(A.shape)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_combine_refuses_rows_of_another_shape():
    with pytest.raises(ValueError, match=r"rows must have shape \(n_tasks, \*representation"):
        GradDrop().combine_representation(torch.randn(2, 5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="leak has 3 entries but there are 2 tasks"):
        GradDrop(leak=torch.zeros(3)).combine_representation(torch.randn(2, 5), torch.randn(5))


def _hard_sharing(seed=0, n_tasks=3):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh())
    heads = {f"t{i}": nn.Linear(6, 1) for i in range(n_tasks)}
    return HardSharing(trunk, heads).double()


def _losses(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64)
    y = torch.randn(11, len(model.task_names), generator=g, dtype=torch.float64)
    out = model(x)
    return {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(model.task_names)}


@pytest.mark.parametrize("two_stage", [True, False], ids=["two-stage", "one-pass"])
def test_mtl_backward_applies_graddrop_on_the_representation_by_default(two_stage):
    """Default placement: the trunk gets the masked cotangent of the representation pushed
    through by autograd, each head its own task's gradient; no warning."""
    model = _hard_sharing()
    losses = _losses(model)
    rep = model.representation
    rows = torch.stack(
        [torch.autograd.grad(losses[t], rep, retain_graph=True)[0] for t in model.task_names]
    )
    U = graddrop_uniforms(5, rep.shape[1], np.float64)
    cot = torch.from_numpy(_reference(rows.numpy(), rep.detach().numpy(), U))
    assert not torch.allclose(cot, rows.sum(0))
    want_trunk = torch.autograd.grad(rep, list(model.trunk.parameters()), cot, retain_graph=True)
    want_heads = {
        t: torch.autograd.grad(losses[t], list(model.heads[t].parameters()), retain_graph=True)
        for t in model.task_names
    }

    fresh = _hard_sharing()
    fresh.shared_through_representation = two_stage
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mtl_backward(_losses(fresh), fresh, GradDrop(seed=5))
    for p, want in zip(fresh.trunk.parameters(), want_trunk, strict=True):
        torch.testing.assert_close(p.grad, want, atol=1e-12, rtol=1e-10)
    for t in fresh.task_names:
        for p, want in zip(fresh.heads[t].parameters(), want_heads[t], strict=True):
            torch.testing.assert_close(p.grad, want, atol=1e-12, rtol=1e-10)


def test_use_representation_false_keeps_the_parameter_jacobian():
    """use_representation=False: GradDrop's forward on the shared parameters' Jacobian."""
    model = _hard_sharing()
    losses = _losses(model)
    shared = list(model.shared_parameters())
    rows = [torch.autograd.grad(losses[t], shared, retain_graph=True) for t in model.task_names]
    J = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in rows])
    want = GradDrop(seed=2)(J)
    fresh = _hard_sharing()
    mtl_backward(_losses(fresh), fresh, GradDrop(seed=2), use_representation=False)
    got = torch.cat([p.grad.reshape(-1) for p in fresh.shared_parameters()])
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


class _NoRepresentation(MultiTaskModule):
    """Two tasks, shared Linear, no ``representation`` attribute."""

    task_names = ("a", "b")

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.shared = nn.Linear(4, 3).double()
        self.heads = nn.ModuleDict({t: nn.Linear(3, 1).double() for t in self.task_names})

    def forward(self, x):
        h = torch.tanh(self.shared(x))
        return {t: self.heads[t](h) for t in self.task_names}

    def shared_parameters(self):
        return self.shared.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


def test_a_model_without_representation_falls_back_to_parameters_with_one_warning():
    def run(model, agg, **kw):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(8, 4, generator=g, dtype=torch.float64)
        out = model(x)
        losses = {t: out[t].square().mean() * (i + 1) for i, t in enumerate(model.task_names)}
        mtl_backward(losses, model, agg, **kw)
        return torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])

    want = run(_NoRepresentation(), GradDrop(seed=1), use_representation=False)
    agg = GradDrop(seed=1)
    with pytest.warns(UserWarning, match="exposes no representation tensor"):
        got = run(_NoRepresentation(), agg)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    with warnings.catch_warnings():  # once per aggregator
        warnings.simplefilter("error")
        run(_NoRepresentation(), agg)


def test_other_aggregators_keep_the_parameters_by_default():
    model, ref = _hard_sharing(), _hard_sharing()
    mtl_backward(_losses(model), model, MGDA())
    mtl_backward(_losses(ref), ref, MGDA(), use_representation=False)
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)
