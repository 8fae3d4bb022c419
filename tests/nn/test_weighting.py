"""Each weighting's trajectory on a fixed loss sequence, against its paper's rule
recomputed by hand in numpy, step by step."""

import numpy as np
import pytest
import torch

from multitask.nn.weighting import (
    DBMTL,
    DWA,
    FAMO,
    GLS,
    IMTLL,
    RLW,
    WEIGHTINGS,
    EqualWeighting,
    GradNorm,
    LossWeighting,
    StaticWeighting,
    UncertaintyWeighting,
)

torch.set_num_threads(1)
T, STEPS = 3, 7
RNG = np.random.default_rng(0)
LOSSES = RNG.uniform(0.2, 3.0, size=(STEPS, T))  # a fixed loss sequence
NORMS = RNG.uniform(0.5, 2.0, size=(STEPS, T))  # per-task gradient norms (GradNorm)


def _grad_wrt_losses(balancer, losses):
    """Run forward on one step's losses; return (value, d value / d losses)."""
    vec = torch.tensor(losses, dtype=torch.float64, requires_grad=True)
    out = balancer(vec)
    (grad,) = torch.autograd.grad(out, vec, retain_graph=True)
    return out, grad.numpy()


def _sgd(balancer, out, lr):
    """One plain SGD step on the weighting's own parameters (as the trainer would)."""
    params = list(balancer.parameters())
    grads = torch.autograd.grad(out, params)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.sub_(lr * g)


def test_names_table_builds_every_weighting():
    for name, cls in WEIGHTINGS.items():
        assert name == name.lower()
        bal = cls([1.0] * T) if name == "static" else cls(T)
        assert isinstance(bal, LossWeighting)


def test_equal_and_static():
    c = np.array([0.5, 2.0, 1.0])
    for k in range(STEPS):
        _, g = _grad_wrt_losses(EqualWeighting(T), LOSSES[k])
        np.testing.assert_allclose(g, np.ones(T))
        out, g = _grad_wrt_losses(StaticWeighting(c).double(), LOSSES[k])
        np.testing.assert_allclose(g, c)
        assert out.item() == pytest.approx(c @ LOSSES[k])
    with pytest.raises(ValueError, match="non-negative"):
        StaticWeighting([1.0, -1.0])


@pytest.mark.parametrize("kinds", [None, ["regression", "classification", "classification"]])
def test_uncertainty_follows_kendall_eq7(kinds):
    lr = 0.1
    scale = np.array([0.5 if k == "regression" else 1.0 for k in (kinds or ["regression"] * T)])
    bal = UncertaintyWeighting(T, kinds).double()
    s = np.zeros(T)
    for k in range(STEPS):
        out, g = _grad_wrt_losses(bal, LOSSES[k])
        assert out.item() == pytest.approx(np.sum(scale * np.exp(-s) * LOSSES[k] + 0.5 * s))
        np.testing.assert_allclose(g, scale * np.exp(-s))
        np.testing.assert_allclose(bal.weights().numpy(), scale * np.exp(-s))
        _sgd(bal, out, lr)
        s = s - lr * (-scale * np.exp(-s) * LOSSES[k] + 0.5)  # d/ds of eq. 7
        np.testing.assert_allclose(bal.log_vars.detach().numpy(), s, rtol=1e-12)
    bal.reset()
    assert torch.all(bal.log_vars == 0)


def test_imtl_l_follows_its_loss_balance():
    lr = 0.05
    bal = IMTLL(T).double()
    s = np.zeros(T)
    for k in range(STEPS):
        out, g = _grad_wrt_losses(bal, LOSSES[k])
        np.testing.assert_allclose(g, np.exp(s))
        assert out.item() == pytest.approx(np.sum(np.exp(s) * LOSSES[k] - s))
        _sgd(bal, out, lr)
        s = s - lr * (np.exp(s) * LOSSES[k] - 1.0)
        np.testing.assert_allclose(bal.log_scales.detach().numpy(), s, rtol=1e-12)


def test_gls_is_geometric_mean():
    bal = GLS(T)
    for k in range(STEPS):
        out, g = _grad_wrt_losses(bal, LOSSES[k])
        geo = np.prod(LOSSES[k]) ** (1 / T)
        assert out.item() == pytest.approx(geo)
        np.testing.assert_allclose(g, geo / (T * LOSSES[k]))
        np.testing.assert_allclose(bal.weights().numpy(), geo / (T * LOSSES[k]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gls_host_path_equals_the_torch_path(dtype):
    """On the CPU a step with every loss non-zero runs GLS's weights in Python floats and its
    value as exp(mean(log L)): the torch path's value, gradient, Hessian (the graph is the
    method's, not a linearisation) and weights (a zero loss takes the torch path: checked in
    tests/nn/test_absent_task_rows.py)."""
    host, device = GLS(T), GLS(T)
    device._host = False
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-15)
    for k in range(STEPS):
        values = torch.tensor(LOSSES[k], dtype=dtype)
        got = []
        for bal in (host, device):
            vec = values.clone().requires_grad_()
            out = bal(vec)
            (grad,) = torch.autograd.grad(out, vec, create_graph=True)
            hess = torch.stack([torch.autograd.grad(g, vec, retain_graph=True)[0] for g in grad])
            got.append((out.detach(), grad.detach(), hess, bal.weights()))
            assert out.dtype == dtype and bal.weights().dtype == dtype
        for a, b in zip(*got, strict=True):
            torch.testing.assert_close(a, b, **tol)
    assert got[0][2].abs().max() > 1e-3  # a curved objective: the Hessian was compared


@pytest.mark.parametrize("host", [True, False], ids=["host", "torch"])
@pytest.mark.parametrize("period", [1, 2])
def test_dwa_follows_eq1(period, host):
    temp = 2.0
    bal = DWA(T, temperature=temp, period=period).double()
    bal._host = host  # the CPU's host path (the default there), or the torch path of a device
    periods = []  # mean loss of each completed period
    acc = []
    for k in range(STEPS):
        if len(periods) >= 2:
            r = periods[-1] / periods[-2]
        else:
            r = np.ones(T)
        e = np.exp(r / temp)
        want = T * e / e.sum()
        _, g = _grad_wrt_losses(bal, LOSSES[k])
        np.testing.assert_allclose(g, want, rtol=1e-6)
        acc.append(LOSSES[k])
        if len(acc) == period:
            periods.append(np.mean(acc, axis=0))
            acc = []
    assert len(periods) >= 3  # the ratio rule was exercised
    bal.reset()
    _, g = _grad_wrt_losses(bal, LOSSES[0])
    np.testing.assert_allclose(g, np.ones(T))


def test_rlw_is_softmax_of_seeded_normals_and_resumes():
    bal = RLW(T, seed=3)
    gen = torch.Generator().manual_seed(3)
    for k in range(STEPS):
        eps = torch.randn(T, generator=gen).double().numpy()
        want = np.exp(eps) / np.exp(eps).sum()
        _, g = _grad_wrt_losses(bal, LOSSES[k])
        np.testing.assert_allclose(g, want, rtol=1e-6)
        if k == 2:
            state = {
                kk: v.clone() if torch.is_tensor(v) else v for kk, v in bal.state_dict().items()
            }
    resumed = RLW(T, seed=99)
    resumed.load_state_dict(state)
    fresh = RLW(T, seed=3)
    for _ in range(3):
        _grad_wrt_losses(fresh, LOSSES[0])
    for k in range(3, STEPS):
        np.testing.assert_allclose(
            _grad_wrt_losses(resumed, LOSSES[k])[1], _grad_wrt_losses(fresh, LOSSES[k])[1]
        )
    bal.reset()
    first = torch.softmax(torch.randn(T, generator=torch.Generator().manual_seed(3)), 0)
    np.testing.assert_allclose(_grad_wrt_losses(bal, LOSSES[0])[1], first.double(), rtol=1e-6)


def _fake_jacobian(norms):
    """A (T, 2T) Jacobian whose row t has norm norms[t]."""
    jac = np.zeros((T, 2 * T))
    for t in range(T):
        jac[t, 2 * t] = 0.6 * norms[t]
        jac[t, 2 * t + 1] = 0.8 * norms[t]
    return torch.tensor(jac)


def test_gradnorm_follows_algorithm_1():
    lr, alpha = 0.1, 1.5
    bal = GradNorm(T, alpha=alpha).double()
    w = np.ones(T)
    initial = LOSSES[0]
    for k in range(STEPS):
        vec = torch.tensor(LOSSES[k])
        aux = bal.observe(vec, _fake_jacobian(NORMS[k]))
        w = w * T / w.sum()  # Alg. 1: renormalise so that sum_t w_t = T
        np.testing.assert_allclose(bal.task_weights.detach().numpy(), w, rtol=1e-12)
        _, g = _grad_wrt_losses(bal, LOSSES[k])  # the model sees sum_t w_t L_t
        np.testing.assert_allclose(g, w)
        G = w * NORMS[k]
        ratio = LOSSES[k] / initial
        target = G.mean() * (ratio / ratio.mean()) ** alpha
        assert aux.item() == pytest.approx(np.abs(G - target).sum())
        _sgd(bal, aux, lr)
        w = w - lr * np.sign(G - target) * NORMS[k]  # target held constant
        np.testing.assert_allclose(bal.task_weights.detach().numpy(), w, rtol=1e-12)
    bal.reset()
    assert torch.all(bal.task_weights == 1) and torch.isnan(bal.initial_losses).all()


def test_gradnorm_host_and_torch_paths_agree():
    """The numpy steps on the CPU and the torch steps used on a device: same L_grad, same
    w.grad, same weights after a few SGD steps."""
    host, device = GradNorm(T), GradNorm(T)
    device._host = False
    for k in range(STEPS):
        vec = torch.tensor(LOSSES[k], dtype=torch.float32)
        jac = _fake_jacobian(NORMS[k]).float()
        aux = [bal.observe(vec, jac) for bal in (host, device)]
        torch.testing.assert_close(aux[0], aux[1], rtol=1e-6, atol=1e-6)
        pairs = zip(aux, (host, device), strict=True)
        grads = [torch.autograd.grad(a, b.task_weights, retain_graph=True)[0] for a, b in pairs]
        assert grads[0].abs().min() > 0  # every task's |G_t - target_t| term is active
        torch.testing.assert_close(grads[0], grads[1])
        for a, bal in zip(aux, (host, device), strict=True):
            _sgd(bal, a, 0.1)
        torch.testing.assert_close(host.task_weights, device.task_weights)
    torch.testing.assert_close(host.initial_losses, device.initial_losses)


def test_gradnorm_takes_bfloat16_losses_on_the_cpu():
    """bfloat16 losses with a float32 Jacobian (a loss written under CPU autocast): the host
    path read them with numpy, which has no bfloat16 (a TypeError); every other weighting
    takes them. Oracle: the same losses, rounded to bfloat16, in float32."""
    vec = torch.tensor(LOSSES[0], dtype=torch.float32).to(torch.bfloat16)
    jac = _fake_jacobian(NORMS[0]).float()
    got = GradNorm(T).observe(vec, jac)
    torch.testing.assert_close(got, GradNorm(T).observe(vec.float(), jac))


def test_famo_follows_algorithm_1():
    lr, gamma, eps = 0.3, 1e-2, 1e-8
    bal = FAMO(T, lr=lr, gamma=gamma, eps=eps).double()
    xi = np.zeros(T)
    prev = None
    for k in range(STEPS):
        log_now = np.log(LOSSES[k] + eps)
        if prev is not None:
            delta = prev - log_now
            z = np.exp(xi) / np.exp(xi).sum()
            jvp = np.array([z[i] * (delta[i] - z @ delta) for i in range(T)])  # d(z.delta)/dxi
            xi = xi - lr * (jvp + gamma * xi)
        prev = log_now
        z = np.exp(xi) / np.exp(xi).sum()
        c = 1.0 / np.sum(z / (LOSSES[k] + eps))
        _, g = _grad_wrt_losses(bal, LOSSES[k])
        np.testing.assert_allclose(bal.logits.numpy(), xi, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(g, c * z / (LOSSES[k] + eps), rtol=1e-8)
        np.testing.assert_allclose(bal.weights().numpy(), z, rtol=1e-10)
        assert (g * (LOSSES[k] + eps)).sum() == pytest.approx(c)
    assert np.abs(xi).max() > 1e-3  # the logits moved
    bal.reset()
    assert torch.all(bal.logits == 0)


@pytest.mark.parametrize("distinct_floors", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_famo_host_path_equals_the_torch_path(dtype, distinct_floors):
    """On the CPU FAMO's (T,)-sized update runs in Python floats; the torch path (what a
    device runs) gives the same logits, history, value and loss gradient, step by step: with
    a floor per task, and with the default one (0 for all: shifted by a Python scalar)."""
    floors = torch.tensor([0.0, -0.5, 0.1][:T] + [0.0] * max(T - 3, 0))
    floors = floors if distinct_floors else 0.0
    host, device = (FAMO(T, lr=0.3, gamma=1e-2, min_losses=floors).to(dtype) for _ in range(2))
    device._host = False
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
    for k in range(STEPS):
        outs, grads = [], []
        for bal in (host, device):
            vec = torch.tensor(LOSSES[k], dtype=dtype, requires_grad=True)
            out = bal(vec)
            outs.append(out.detach())
            grads.append(torch.autograd.grad(out, vec)[0])
            assert out.dtype == dtype
        torch.testing.assert_close(outs[0], outs[1], **tol)
        torch.testing.assert_close(grads[0], grads[1], **tol)
        torch.testing.assert_close(host.logits, device.logits, **tol)
        torch.testing.assert_close(host.previous_log, device.previous_log, **tol)
    assert host.logits.abs().max() > 1e-3  # the logits moved


@pytest.mark.parametrize("period", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dwa_host_path_equals_the_torch_path(dtype, period):
    """On the CPU DWA's (T,)-sized steps run in Python floats on the buffers' memory; the
    torch path (what a device runs) gives the same value, loss gradient, weights, buffers and
    call state at every step: full steps, steps with absent tasks (present_tasks), one with
    none present, and zero period losses (a non-finite ratio, which counts as 1)."""
    n = 4
    schedule = [None, (0, 2), None, (1, 2, 3), (3,), (), None, (0, 1), None, None, (2,), None]
    gen = torch.Generator().manual_seed(3)
    host, device = (DWA(n, temperature=1.5, period=period).to(dtype) for _ in range(2))
    device._host = False
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-15)
    for k, present in enumerate(schedule):
        values = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 + 0.1).to(dtype)
        if k in (2, 3):
            values[1] = 0.0  # a period mean of 0: the ratio after it is inf or NaN
        outs, grads = [], []
        for bal in (host, device):
            vec = values.clone().requires_grad_()
            with bal.present_tasks(present):
                out = bal(vec)
            outs.append(out.detach())
            grads.append(torch.autograd.grad(out, vec)[0])
            assert out.dtype == dtype and bal.last_weights.dtype == dtype
        torch.testing.assert_close(outs[0], outs[1], **tol)
        torch.testing.assert_close(grads[0], grads[1], **tol)
        torch.testing.assert_close(host.weights(), device.weights(), **tol)
        for name, buf in host.named_buffers():
            torch.testing.assert_close(buf, device.get_buffer(name), equal_nan=True, **tol)
        assert host.get_extra_state() == device.get_extra_state()
    assert not torch.allclose(host.weights(), torch.ones(n, dtype=dtype))  # ratios were used


def test_dwa_weights_of_a_step_stay_as_read():
    """A step's weights are a new tensor: reading them, then stepping or resetting, leaves them
    (a log of StepInfo weights kept them by reference)."""
    bal = DWA(T).double()
    for k in range(3):
        bal(torch.tensor(LOSSES[k]))
    first = bal.weights()
    kept = first.clone()
    bal(torch.tensor(LOSSES[3]))
    bal.reset()
    torch.testing.assert_close(first, kept, rtol=0, atol=0)


def test_dbmtl_follows_its_update_rule():
    beta, sigma, eps = 0.9, 0.5, 1e-8
    bal = DBMTL(T, beta=beta, sigma=sigma, eps=eps)
    jacs = [RNG.normal(size=(T, 4)) for _ in range(STEPS)]
    avg = np.zeros((T, 4))
    for k in range(STEPS):
        vec = torch.tensor(LOSSES[k])
        assert bal.observe(vec, torch.tensor(jacs[k])) is None
        grad = jacs[k] / (LOSSES[k] + eps)[:, None]  # gradient of log(L_t + eps)
        beta_k = beta / (k + 1) ** sigma
        avg = beta_k * avg + (1 - beta_k) * grad
        norms = np.linalg.norm(avg, axis=1)
        alpha = norms.max() / (norms + eps)
        got = bal.shared_gradient(vec, torch.tensor(jacs[k])).numpy()
        np.testing.assert_allclose(got, alpha @ avg, rtol=1e-10)
        np.testing.assert_allclose(bal.weights().numpy(), alpha, rtol=1e-10)
        _, g = _grad_wrt_losses(bal, LOSSES[k])
        np.testing.assert_allclose(g, 1.0 / (LOSSES[k] + eps))
    bal.reset()
    assert bal.average is None


def test_dbmtl_state_dict_round_trip_into_a_fresh_instance():
    bal = DBMTL(T)
    for k in range(2):
        bal.observe(torch.tensor(LOSSES[k]), torch.tensor(RNG.normal(size=(T, 4))))
    fresh = DBMTL(T)
    fresh.load_state_dict(bal.state_dict())  # strict: the lazily created average is restored
    torch.testing.assert_close(fresh.average, bal.average)
    jac = torch.tensor(RNG.normal(size=(T, 4)))
    for b in (bal, fresh):
        b.observe(torch.tensor(LOSSES[2]), jac)
    torch.testing.assert_close(fresh.shared_gradient(None, jac), bal.shared_gradient(None, jac))


@pytest.mark.parametrize(
    "make",
    [
        lambda: DWA(T, temperature=float("nan")),
        lambda: DBMTL(T, beta=float("nan")),
        lambda: DBMTL(T, beta=1.5),
        lambda: DBMTL(T, sigma=-1.0),
    ],
    ids=["dwa_temperature", "dbmtl_beta_nan", "dbmtl_beta_big", "dbmtl_sigma"],
)
def test_invalid_hyperparameters_are_refused(make):
    """NaN passed checks written as ``x <= 0`` (every comparison with NaN is False)."""
    with pytest.raises(ValueError, match=r"(temperature|beta|sigma) must be a finite number"):
        make()


def test_dbmtl_loads_a_state_dict_from_before_its_first_step():
    """A checkpoint taken before the first step has no ``average`` (created at that step);
    loaded into a module that has stepped it raised "Missing key(s): average". It restarts
    the run: the same updates as a fresh module."""
    g = torch.Generator().manual_seed(0)
    steps = [(torch.rand(T, generator=g) + 0.5, torch.randn(T, 10, generator=g)) for _ in range(3)]
    fresh, used = DBMTL(T), DBMTL(T)
    start = {k: v.clone() for k, v in fresh.state_dict().items()}
    for losses, jac in steps:
        used.observe(losses, jac)
    used.load_state_dict(start)
    for losses, jac in steps:
        for bal in (fresh, used):
            bal.observe(losses, jac)
        torch.testing.assert_close(
            used.shared_gradient(losses, jac), fresh.shared_gradient(losses, jac)
        )
