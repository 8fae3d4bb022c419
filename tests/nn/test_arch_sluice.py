import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn.architectures.sluice import Sluice, orthogonality_penalty


class _Fixed(nn.Module):
    """Outputs a fixed activation matrix, whatever the input."""

    def __init__(self, value):
        super().__init__()
        self.value = nn.Parameter(value.clone())

    def forward(self, x):
        return self.value.expand(x.shape[0], -1) if self.value.dim() == 1 else self.value


def test_penalty_matches_bruteforce_sum_of_squared_dot_products():
    rng = np.random.default_rng(0)
    g1, g2 = rng.normal(size=(9, 3)), rng.normal(size=(9, 4))
    brute = sum(float(g1[:, i] @ g2[:, j]) ** 2 for i in range(3) for j in range(4))
    got = orthogonality_penalty(torch.tensor(g1), torch.tensor(g2))
    assert got.item() == pytest.approx(brute, rel=1e-10)


def test_penalty_zero_for_orthogonal_subspaces_positive_otherwise():
    q, _ = torch.linalg.qr(torch.randn(10, 4, dtype=torch.float64))
    assert orthogonality_penalty(q[:, :2], q[:, 2:]).item() == pytest.approx(0.0, abs=1e-20)
    assert orthogonality_penalty(q[:, :2], q[:, :2] + q[:, 2:]).item() > 0.1


def test_model_regularization_zero_iff_subspaces_orthogonal():
    q, _ = torch.linalg.qr(torch.randn(10, 4))
    heads = {"a": nn.Identity(), "b": nn.Identity()}
    orth = Sluice([_Fixed(q)], heads, n_subspaces=2, orthogonality=1.0)
    orth(torch.zeros(10, 1))
    assert float(orth.regularization().detach()) == pytest.approx(0.0, abs=1e-10)
    mixed = torch.cat([q[:, :2], q[:, :2]], 1)  # both subspaces equal: penalty ||G^T G||^2 > 0
    bad = Sluice([_Fixed(mixed)], heads, n_subspaces=2, orthogonality=1.0)
    bad(torch.zeros(10, 1))
    # one layer, two tasks, each with ||I_2||_F^2 = 2
    assert float(bad.regularization().detach()) == pytest.approx(4.0, rel=1e-5)


def test_alpha_mixes_tasks_and_subspaces_and_beta_mixes_layers():
    torch.manual_seed(0)
    layers = [nn.Linear(3, 4), nn.Linear(4, 4)]
    model = Sluice(layers, {"a": nn.Identity(), "b": nn.Identity()}, n_subspaces=2)
    with torch.no_grad():
        for alpha in model.alphas:
            alpha.copy_(torch.eye(4))
        model.betas.copy_(torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    x = torch.randn(5, 3)
    out = model(x)
    ha1 = model.columns["a"][0](x)
    ha2 = model.columns["a"][1](ha1)
    torch.testing.assert_close(out["a"], 0.5 * ha1 + 0.5 * ha2)
    hb = model.columns["b"][1](model.columns["b"][0](x))
    torch.testing.assert_close(out["b"], hb)
    assert model.alphas[0].shape == (4, 4)  # (tasks x subspaces) squared


def test_indivisible_width_raises():
    model = Sluice([nn.Linear(3, 5)], {"a": nn.Identity()}, n_subspaces=2)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(2, 3))


def test_convolution_outputs_split_on_channels():
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3)]
    heads = {"a": nn.Flatten(), "b": nn.Flatten()}
    model = Sluice(layers, heads, skip_layers=[1], feature_dim=1, orthogonality=1.0)
    out = model(torch.randn(2, 1, 7, 7))
    assert out["a"].shape == (2, 4 * 3 * 3)
    h = model.columns["a"][0](torch.randn(2, 1, 7, 7))
    g1 = h[:, :2].movedim(1, -1).reshape(-1, 2)
    g2 = h[:, 2:].movedim(1, -1).reshape(-1, 2)
    assert orthogonality_penalty(g1, g2) > 0
    assert float(model.regularization().detach()) > 0
    with pytest.raises(ValueError, match="different shapes"):
        Sluice(layers, heads, feature_dim=1)(torch.randn(2, 1, 7, 7))


def test_normalized_penalty_is_bruteforce_over_squared_rows_and_row_count_free():
    rng = np.random.default_rng(1)
    g1, g2 = rng.normal(size=(6, 2)), rng.normal(size=(6, 3))
    n = 6
    brute = sum((float(g1[:, i] @ g2[:, j]) / n) ** 2 for i in range(2) for j in range(3))
    t1, t2 = torch.tensor(g1), torch.tensor(g2)
    got = orthogonality_penalty(t1, t2, normalize=True)
    assert got.item() == pytest.approx(brute, rel=1e-10)
    # the same rows repeated 5 times (a 5x larger batch of identical rows): unchanged when
    # normalised, 25x larger under the paper's definition
    r1, r2 = t1.repeat(5, 1), t2.repeat(5, 1)
    assert orthogonality_penalty(r1, r2, normalize=True).item() == pytest.approx(brute, rel=1e-10)
    unnorm = orthogonality_penalty(t1, t2).item()
    assert orthogonality_penalty(r1, r2).item() == pytest.approx(25 * unnorm, rel=1e-10)


def test_normalized_model_penalty_does_not_depend_on_spatial_size():
    # a 1x1 convolution with constant input: every (batch, height, width) row is identical,
    # so the normalised penalty is the same for any image size; the paper's grows with n^2
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 1)]
    heads = {"a": nn.Flatten(), "b": nn.Flatten()}
    values = {}
    for normalize in (False, True):
        model = Sluice(layers, heads, feature_dim=1, orthogonality=1.0, normalize=normalize)
        for size in (3, 6):
            model(torch.ones(2, 1, size, size))
            values[normalize, size] = float(model.regularization().detach())
    assert values[True, 3] > 0
    assert values[True, 6] == pytest.approx(values[True, 3], rel=1e-5)
    assert values[False, 6] == pytest.approx(16 * values[False, 3], rel=1e-5)
    # explicit oracle: rows of the 1x1 conv output are w * 1 + b for each task's column
    expected = 0.0
    for t in ("a", "b"):
        conv = model.columns[t][0]
        row = (conv.weight.reshape(4) + conv.bias).detach().double()
        expected += float((row[:2, None] * row[None, 2:]).pow(2).sum())
    assert values[True, 3] == pytest.approx(expected, rel=1e-5)
