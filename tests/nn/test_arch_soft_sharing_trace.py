"""SoftSharing's trace-norm coupling: the nuclear norm and its minimum-norm subgradient.

torch's own ``matrix_norm(w, "nuc")`` backward is ``U V^T`` over *every* singular vector,
zero singular values included (arbitrary directions of the null space), so identical task
networks (a rank-deficient stack) got different gradients and were pushed apart. The
library's nuclear norm keeps torch's value and, at full rank, its gradient; at a
rank-deficient stack it returns the minimum-norm subgradient ``U_r V_r^T``.
"""

import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn.architectures import SoftSharing
from multitask.nn.architectures.soft_sharing import nuclear_norm

torch.set_num_threads(1)

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _device(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device(device)


def _grad(w):
    w = w.clone().requires_grad_(True)
    nuclear_norm(w).backward()
    return w.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_value_equals_torch_and_numpy(dtype, device):
    dev = _device(device)
    w = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=dtype).to(dev)
    got = nuclear_norm(w)
    torch.testing.assert_close(got, torch.linalg.matrix_norm(w, ord="nuc"))
    want = np.linalg.norm(w.cpu().double().numpy(), ord="nuc")
    assert got.item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_full_rank_gradient_equals_torch(dtype, device):
    dev = _device(device)
    w = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=dtype).to(dev)
    w_torch = w.clone().requires_grad_(True)
    torch.linalg.matrix_norm(w_torch, ord="nuc").backward()
    torch.testing.assert_close(_grad(w), w_torch.grad)
    u, _, vh = np.linalg.svd(w.cpu().double().numpy(), full_matrices=False)  # U V^T, by numpy
    np.testing.assert_allclose(_grad(w).cpu().double().numpy(), u @ vh, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_one_stack_gets_the_minimum_norm_subgradient(dtype, device):
    # [w, w, w] = (w / ||w||) (||w|| sqrt(3)) (1 / sqrt(3), ...)^T: the subgradient of least
    # norm is u_1 v_1^T, each column w / ||w|| / sqrt(T), the same for every task
    dev = _device(device)
    w = torch.randn(12, generator=torch.Generator().manual_seed(2), dtype=dtype).to(dev)
    stack = torch.stack([w, w, w], 1)
    got = _grad(stack)
    want = (w / w.norm() / 3**0.5)[:, None].expand(-1, 3)
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, want, rtol=0, atol=atol)
    assert nuclear_norm(stack).item() == pytest.approx(3**0.5 * w.norm().item(), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_matrix_has_zero_gradient(dtype):
    got = _grad(torch.zeros(5, 3, dtype=dtype))
    assert nuclear_norm(torch.zeros(5, 3, dtype=dtype)).item() == 0.0
    assert torch.equal(got, torch.zeros(5, 3, dtype=dtype))


def test_rank_two_stack_keeps_the_range():
    # [a, b, a + b]: rank 2; the gradient is U_2 V_2^T (numpy, singular values above the
    # matrix_rank tolerance), with no component along the null vector (1, 1, -1)
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g).double()
    stack = torch.stack([a, b, a + b], 1)
    u, _, vh = np.linalg.svd(stack.numpy(), full_matrices=False)
    r = np.linalg.matrix_rank(stack.numpy())
    assert r == 2
    got = _grad(stack).numpy()
    np.testing.assert_allclose(got, u[:, :r] @ vh[:r], atol=1e-12)
    np.testing.assert_allclose(got @ np.array([1.0, 1.0, -1.0]), 0.0, atol=1e-12)


def test_batched_matrices_are_independent():
    g = torch.Generator().manual_seed(4)
    w = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    w[1] = w[1, :, :1].expand(-1, 3)  # second matrix rank 1
    batch = w.clone().requires_grad_(True)
    nuclear_norm(batch).sum().backward()
    for i in range(2):
        torch.testing.assert_close(nuclear_norm(w[i]), torch.linalg.matrix_norm(w[i], "nuc"))
        torch.testing.assert_close(batch.grad[i], _grad(w[i]))


def test_under_torch_func_grad_and_vmap():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(3, 6, 3, generator=g, dtype=torch.float64)
    w[0] = w[0, :, :1].expand(-1, 3)
    per = torch.func.vmap(torch.func.grad(nuclear_norm))(w)
    for i in range(3):
        torch.testing.assert_close(per[i], _grad(w[i]))


def _template_model(strength=1.0):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    return SoftSharing(net, task_names=["a", "b", "c"], coupling="trace", strength=strength)


def test_identical_copies_get_identical_gradients_and_stay_identical():
    model = _template_model(strength=0.5)
    model.regularization().backward()
    for name, p in model.networks["a"].named_parameters():
        w = p.detach()
        want = 0.5 * w / w.norm() / 3**0.5
        for t in "abc":
            q = dict(model.networks[t].named_parameters())[name]
            torch.testing.assert_close(q.grad, want, rtol=0, atol=1e-6)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for name, p in model.networks["a"].named_parameters():
        for t in "bc":
            q = dict(model.networks[t].named_parameters())[name]
            torch.testing.assert_close(q, p, rtol=0, atol=1e-7)
    l2 = SoftSharing(dict(model.networks), coupling="l2", strength=1.0).regularization()
    assert l2.item() < 1e-12


def test_trace_coupling_on_distinct_networks_keeps_torchs_gradient():
    torch.manual_seed(1)
    nets = {t: nn.Linear(4, 3) for t in "ab"}
    model = SoftSharing(nets, coupling="trace", strength=0.3)
    model.regularization().backward()
    for name in ("weight", "bias"):
        w = model.stacked(name).detach().clone().requires_grad_(True)
        (0.3 * torch.linalg.matrix_norm(w, "nuc")).backward()
        for k, t in enumerate("ab"):
            got = dict(model.networks[t].named_parameters())[name].grad.reshape(-1)
            torch.testing.assert_close(got, w.grad[:, k])
