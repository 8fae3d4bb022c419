"""DB-MTL's CPU fast paths against its update rule and against the device path.

The host path (:meth:`DBMTL._observe_host`: the new average written into the previous step's
tensor, the ``(T,)``-sized steps in Python floats) is compared step by step with the device
path (a new tensor each step, every step in torch) and with Lin et al. 2023, Alg. 1 written in
numpy; the closed-form loss gradient with autograd; the shared ``.grad`` written as views of
DB-MTL's vector with a copy held from an earlier step.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DBMTL

torch.set_num_threads(1)


class _DevicePath(DBMTL):
    """DB-MTL forced onto the path it takes off the CPU (no spare tensor, no host floats)."""

    def _spare_for(self, J, losses):
        return None


def _steps(dtype, T=3, n=40, n_steps=6, seed=0):
    """Losses and Jacobians: random, then a NaN in one task's row (a skipped step), a zero
    loss and a Jacobian row of zeros."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n_steps):
        J = torch.randn(T, n, generator=g, dtype=dtype)
        L = torch.rand(T, generator=g, dtype=dtype) + 0.1
        if k == 2:
            J[1, 3] = float("nan")
        if k == 3:
            L[0] = 0.0
            J[2] = 0.0
        out.append((L, J))
    return out


def _alg1(steps, beta, sigma, eps):
    """Alg. 1 in float64 numpy; a task whose new average is not finite keeps its old one."""
    avg, out = None, []
    for k, (L, J) in enumerate(steps, start=1):
        L, J = L.double().numpy(), J.double().numpy()
        avg = np.zeros_like(J) if avg is None else avg
        beta_k = beta / k**sigma
        new = beta_k * avg + (1 - beta_k) * J / (L + eps)[:, None]
        ok = np.isfinite(new).all(axis=1)
        avg = np.where(ok[:, None], new, avg)
        norms = np.linalg.norm(avg, axis=1)
        alpha = norms.max() / (norms + eps)
        out.append((avg.copy(), alpha, alpha @ avg))
    return out


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_host_path_follows_alg1_and_the_device_path(dtype, tol, sigma):
    steps = _steps(dtype)
    host, device = DBMTL(3, sigma=sigma), _DevicePath(3, sigma=sigma)
    seen = []
    for (L, J), (avg, alpha, update) in zip(steps, _alg1(steps, 0.9, sigma, 1e-8), strict=True):
        for bal in (host, device):
            assert bal.observe(L, J) is None
            got = bal.shared_gradient(L, J)
            np.testing.assert_allclose(bal.average.double().numpy(), avg, rtol=tol, atol=tol)
            np.testing.assert_allclose(bal.alpha.double().numpy(), alpha, rtol=tol)
            np.testing.assert_allclose(got.double().numpy(), update, rtol=tol, atol=tol)
        assert host.n_steps.item() == device.n_steps.item()
        assert host.average.dtype == device.average.dtype == dtype
        for name in ("average", "alpha"):  # the same arithmetic: the same numbers
            torch.testing.assert_close(getattr(host, name), getattr(device, name), rtol=0, atol=0)
        seen.append(host.average.data_ptr())
    # after the non-finite step (a new tensor from the where), two tensors take turns
    assert seen[3] == seen[5] != seen[4]


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_term_gradient_path_follows_alg1(dtype, tol, sigma):
    """Given ``g_t = J_t / (L_t + eps)`` (what mtl_backward's two-stage step hands over), the
    one-pass update is Alg. 1's; host and device paths agree bitwise."""
    steps = _steps(dtype)
    host, device = DBMTL(3, sigma=sigma), _DevicePath(3, sigma=sigma)
    for (L, J), (avg, alpha, update) in zip(steps, _alg1(steps, 0.9, sigma, 1e-8), strict=True):
        g = J / (L + 1e-8)[:, None]
        for bal in (host, device):
            assert bal._observe_term_gradients(L, g) is None
            np.testing.assert_allclose(bal.average.double().numpy(), avg, rtol=tol, atol=tol)
            np.testing.assert_allclose(bal.alpha.double().numpy(), alpha, rtol=tol)
            got = bal.shared_gradient(L, g).double().numpy()
            np.testing.assert_allclose(got, update, rtol=tol, atol=tol)
        for name in ("average", "alpha"):
            torch.testing.assert_close(getattr(host, name), getattr(device, name), rtol=0, atol=0)


def test_host_path_after_a_dtype_change_and_a_reset():
    steps = _steps(torch.float32)
    bal, ref = DBMTL(3), _DevicePath(3)
    for L, J in steps[:2]:
        bal.observe(L, J)
        ref.observe(L, J)
    bal.double()  # the spare tensor is still float32: a new one is made
    ref.double()
    for L, J in steps[4:]:
        bal.observe(L.double(), J.double())
        ref.observe(L.double(), J.double())
        assert bal.average.dtype == torch.float64
        torch.testing.assert_close(bal.average, ref.average, rtol=0, atol=0)
    bal.reset()
    bal.observe(*steps[0])
    fresh = DBMTL(3)
    fresh.observe(*steps[0])
    torch.testing.assert_close(bal.average, fresh.average, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_form_loss_gradient_is_autograds(dtype):
    L = torch.tensor([0.3, 1e-9, 0.0, 7.0], dtype=dtype, requires_grad=True)
    bal = DBMTL(4)
    (auto,) = torch.autograd.grad(bal(L), L)
    coeffs, own = bal._closed_form_gradients(L.detach(), None)
    torch.testing.assert_close(coeffs, auto, rtol=0, atol=0)
    assert own == []


def test_shared_grad_views_leave_a_held_gradient_alone():
    """The trunk's .grad are views of DB-MTL's vector (no copy): a .grad kept from one step
    is not changed by the next, and each equals Alg. 1's update on the step's Jacobian."""
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    model = HardSharing(trunk, {f"t{i}": nn.Linear(8, 1) for i in range(2)})
    shared = list(model.shared_parameters())
    bal, held, steps = DBMTL(2), [], []
    for k in range(3):
        g = torch.Generator().manual_seed(k)
        x, y = torch.randn(16, 6, generator=g), torch.randn(16, 2, generator=g)
        out = model(x)
        losses = {t: (out[t][:, 0] - y[:, i]).pow(2).mean() for i, t in enumerate(out)}
        rows = [torch.autograd.grad(losses[t], shared, retain_graph=True) for t in out]
        J = torch.stack([torch.cat([r.reshape(-1) for r in row]) for row in rows])
        vec = torch.stack([losses[t] for t in out]).detach()
        steps.append((vec, J))
        model.zero_grad(set_to_none=True)
        mtl_backward(losses, model, bal)
        grad = shared[0].grad
        held.append((grad, grad.clone()))
    for (grad, copy), (_, _, update) in zip(held, _alg1(steps, 0.9, 0.0, 1e-8), strict=True):
        torch.testing.assert_close(grad, copy, rtol=0, atol=0)
        want = torch.from_numpy(update[: shared[0].numel()]).reshape(shared[0].shape)
        torch.testing.assert_close(grad, want.to(grad.dtype), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_host_total_is_the_rounded_exact_sum(dtype):
    """Without a graph, ``forward`` is ``sum_t log(L_t + eps)`` in float64 and rounded once to
    the dtype: in float32 the correctly rounded sum (oracle: ``decimal`` at 40 digits), in
    float64 within an ulp of it; with a graph, torch's operations, within an ulp of the terms."""
    g = torch.Generator().manual_seed(4)
    bal = DBMTL(5)
    for _ in range(50):
        L = torch.rand(5, generator=g, dtype=dtype) * torch.logspace(-4, 4, 5, dtype=dtype)
        shifted = (L + 1e-8).tolist()  # torch's rounding of L + eps, as the host path's
        with decimal.localcontext(decimal.Context(prec=40)):
            exact = float(sum(decimal.Decimal(v).ln() for v in shifted))
        with torch.no_grad():
            host = bal(L)
        assert host.dtype == dtype and host.shape == ()
        with torch.no_grad():  # (mtl_backward's call: losses with a graph, none recorded)
            assert bal(L.clone().requires_grad_()).item() == host.item()
        scale = torch.finfo(dtype).eps * sum(abs(math.log(v)) for v in shifted)
        if dtype == torch.float32:
            assert host.item() == torch.tensor(exact).item()  # (float32 rounding of exact)
        else:
            assert abs(host.item() - exact) <= scale
        graph = bal(L.clone().requires_grad_())
        assert graph.grad_fn is not None  # a gradient asked for: torch's operations
        assert abs(graph.item() - host.item()) <= 2 * scale


def test_host_total_and_closed_form_where_python_would_not_take_the_log():
    """A zero loss with an ``eps`` float32 rounds to 0 (log 0, 1 / 0; eps must be > 0) and a
    NaN loss: torch's -inf, inf and NaN, as on the graph."""
    bal = DBMTL(2, eps=1e-300)
    for L in (torch.tensor([0.0, 2.0]), torch.tensor([float("nan"), 2.0])):
        with torch.no_grad():
            got = bal(L)
        torch.testing.assert_close(got, torch.log(L).sum(), equal_nan=True)
        coeffs, _ = bal._closed_form_gradients(L, None)
        torch.testing.assert_close(coeffs, 1 / L, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_host_alpha_with_a_zero_average_and_no_eps(dtype):
    """A tiny ``eps`` (float32 rounds it to 0; eps must be > 0) and a task whose average is 0:
    alpha's ``max / (0 + eps)`` as torch's, on the host path as on the device path (float32:
    inf, NaN when every average is 0; float64: max / 1e-300, 0)."""
    for J in (torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.zeros(2, 2)):
        L = torch.ones(2, dtype=dtype)
        host, device = DBMTL(2, eps=1e-300), _DevicePath(2, eps=1e-300)
        for bal in (host, device):
            bal.observe(L, J.to(dtype))
        torch.testing.assert_close(host.alpha, device.alpha, rtol=0, atol=0, equal_nan=True)
        assert host.alpha.dtype == dtype


def test_host_alpha_rounds_as_torch_on_many_norms():
    """``alpha = max / (norm + eps)`` in Python floats, each operation rounded to float32, is
    bitwise torch's (the device path) over 300 steps of norms from 1e-9 to 1e3, where
    ``eps = 1e-8`` changes the float32 sum."""
    g = torch.Generator().manual_seed(6)
    host, device = DBMTL(4, beta=0.0), _DevicePath(4, beta=0.0)
    for _ in range(300):
        scale = torch.logspace(-9, 3, 4)[torch.randperm(4, generator=g)]
        J = torch.randn(4, 3, generator=g) * scale[:, None]
        L = torch.ones(4)
        for bal in (host, device):
            bal.observe(L, J)
        torch.testing.assert_close(host.alpha, device.alpha, rtol=0, atol=0)
