import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn.architectures.relationship import (
    DeepRelationshipNetwork,
    flip_flop,
    tensor_normal_quadratic,
)


def _unfold(w, mode):
    """Kolda-Bader mode-k unfolding (column index runs over the other modes, first fastest)."""
    return np.reshape(np.moveaxis(w, mode, 0), (w.shape[mode], -1), order="F")


def _numpy_flip_flop(w, s1, s2, s3, eps, normalize):
    """MRN's closed forms with explicit Kronecker products (the independent oracle)."""
    d1, d2, d3 = w.shape
    inv = np.linalg.inv
    s1 = _unfold(w, 0) @ inv(np.kron(s3, s2)) @ _unfold(w, 0).T / (d2 * d3) + eps * np.eye(d1)
    if normalize:
        s1 = s1 * d1 / np.trace(s1)
    s2 = _unfold(w, 1) @ inv(np.kron(s3, s1)) @ _unfold(w, 1).T / (d1 * d3) + eps * np.eye(d2)
    if normalize:
        s2 = s2 * d2 / np.trace(s2)
    s3 = _unfold(w, 2) @ inv(np.kron(s2, s1)) @ _unfold(w, 2).T / (d1 * d2) + eps * np.eye(d3)
    return s1, s2, s3


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


@pytest.mark.parametrize("normalize", [False, True])
def test_flip_flop_equals_closed_form(normalize):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 5))
    covs = (_spd(rng, 4), _spd(rng, 3), _spd(rng, 5))
    expected = _numpy_flip_flop(w, *covs, 1e-3, normalize)
    got = flip_flop(torch.tensor(w), tuple(torch.tensor(c) for c in covs), 1e-3, normalize)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-10, atol=1e-12)


def test_quadratic_equals_kronecker_form():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 2, 4))
    covs = [_spd(rng, d) for d in w.shape]
    # vec in C order (last index fastest) pairs with kron(S1, S2, S3)
    big = np.kron(np.kron(covs[0], covs[1]), covs[2])
    v = w.reshape(-1)
    expected = v @ np.linalg.solve(big, v)
    prec = tuple(torch.tensor(np.linalg.inv(c)) for c in covs)
    assert tensor_normal_quadratic(torch.tensor(w), prec).item() == pytest.approx(expected)


def _model(n_tasks=3):
    torch.manual_seed(0)
    heads = {
        f"t{i}": nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1)) for i in range(n_tasks)
    }
    return DeepRelationshipNetwork(nn.Linear(5, 4), heads, prior_weight=1.0, epsilon=1e-2)


def test_model_update_and_regularization_match_numpy():
    model = _model().double()
    w = [model.stacked_weight(i).detach().numpy() for i in range(2)]
    model.update_covariances(n_iter=2)
    for layer in range(2):
        covs = (np.eye(4 if layer == 0 else 3), np.eye(3 if layer == 0 else 1), np.eye(3))
        for _ in range(2):
            covs = _numpy_flip_flop(w[layer], *covs, 1e-2, True)
        for got, exp in zip(model.covariances(layer), covs, strict=True):
            np.testing.assert_allclose(got.numpy(), exp, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.task_covariance.numpy(), covs[2], rtol=1e-8)
    # negative log density: 1/2 (quadratic + sum_k D/d_k log|S_k|)
    total = 0.0
    for layer in range(2):
        covs = [c.numpy() for c in model.covariances(layer)]
        big = np.kron(np.kron(covs[0], covs[1]), covs[2])
        v = w[layer].reshape(-1)
        logdet = sum(
            v.size / d * np.linalg.slogdet(c)[1] for d, c in zip(w[layer].shape, covs, strict=True)
        )
        total += 0.5 * (v @ np.linalg.solve(big, v) + logdet)
    assert float(model.regularization().detach()) == pytest.approx(total, rel=1e-8)


def test_task_covariance_reveals_related_tasks():
    """Tasks 0 and 1 share their weights, task 2 has the opposite ones: the covariance says so."""
    torch.manual_seed(0)
    heads = {f"t{i}": nn.Linear(8, 6) for i in range(3)}
    model = DeepRelationshipNetwork(nn.Identity(), heads).double()
    with torch.no_grad():
        base = torch.randn(6, 8, dtype=torch.float64)
        for sign, t in zip((1.0, 1.0, -1.0), model.task_names, strict=True):
            model.heads[t].weight.copy_(sign * base + 0.3 * torch.randn(6, 8))
    model.update_covariances(n_iter=5)
    cov = model.task_covariance
    corr = cov / torch.sqrt(torch.outer(torch.diagonal(cov), torch.diagonal(cov)))
    assert corr[0, 1] > 0.8 and corr[0, 2] < -0.8 and corr[1, 2] < -0.8


def test_heads_must_match():
    heads = {"a": nn.Linear(4, 1), "b": nn.Linear(4, 2)}
    with pytest.raises(ValueError, match="identical head structures"):
        DeepRelationshipNetwork(nn.Identity(), heads)


def test_per_step_prior_is_the_papers_term_divided_by_n_samples():
    """MAP objective of MRN (Eqs. 6-7): sum of the losses over all N examples + P once.

    Oracle: P from explicit Kronecker products (numpy), and the gradient of the
    paper's objective. With mean losses, N * (mean loss + regularization()) must
    have the same value and gradient as sum of losses + P.
    """
    torch.manual_seed(0)
    heads = {f"t{i}": nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1)) for i in range(3)}
    n = 40
    model = DeepRelationshipNetwork(nn.Linear(5, 4), heads, prior_weight=1.0, n_samples=n)
    model = model.double()
    model.update_covariances(n_iter=3)
    p = 0.0
    for layer in range(2):
        w = model.stacked_weight(layer).detach().numpy()
        covs = [c.numpy() for c in model.covariances(layer)]
        v = w.reshape(-1)
        big = np.kron(np.kron(covs[0], covs[1]), covs[2])
        pairs = zip(w.shape, covs, strict=True)
        logdet = sum(v.size / d * np.linalg.slogdet(c)[1] for d, c in pairs)
        p += 0.5 * (v @ np.linalg.solve(big, v) + logdet)
    assert model.regularization().item() == pytest.approx(p / n, rel=1e-10)

    x, y = torch.randn(n, 5, dtype=torch.float64), torch.randn(n, 3, dtype=torch.float64)

    def grads(objective):
        model.zero_grad()
        objective().backward()
        return [q.grad.clone() for q in model.parameters()]

    def per_example():  # what the training loop minimises, times N
        out = torch.cat(list(model(x).values()), 1)
        return n * ((out - y).pow(2).mean(0).sum() + model.regularization())

    def paper():  # Eq. 7: summed loss + prior once
        out = torch.cat(list(model(x).values()), 1)
        return (out - y).pow(2).sum() + model.prior()

    for a, b in zip(grads(per_example), grads(paper), strict=True):
        torch.testing.assert_close(a, b)
    unscaled = DeepRelationshipNetwork(nn.Identity(), {"a": nn.Linear(2, 1)}, prior_weight=0.5)
    assert unscaled.regularization().item() == pytest.approx(0.5 * unscaled.prior().item())
    with pytest.raises(ValueError, match="number of training examples"):
        DeepRelationshipNetwork(nn.Identity(), {"a": nn.Linear(2, 1)}, n_samples=0)
