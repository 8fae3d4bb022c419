import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn.architectures.tensor_factorized import TensorFactorized, full_ranks

HEADS = ("a", "b", "c")


def _weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 4, 3, generator=g), torch.randn(4, 2, 3, generator=g)]


def _heads():
    return {t: nn.Identity() for t in HEADS}


@pytest.mark.parametrize("method", ["tucker", "tt"])
def test_full_rank_reproduces_the_stacked_weights(method):
    weights = _weights()
    model = TensorFactorized.from_independent(weights, None, _heads(), method=method).double()
    for i, w in enumerate(weights):
        torch.testing.assert_close(model.layer_weight(i), w.double(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["tucker", "tt"])
def test_full_rank_model_equals_the_independent_networks(method):
    weights = _weights(1)
    biases = [torch.randn(4, 3), torch.randn(2, 3)]
    model = TensorFactorized.from_independent(weights, None, _heads(), method=method, biases=biases)
    x = torch.randn(6, 5)
    out = model(x)
    for m, t in enumerate(HEADS):  # oracle: plain numpy MLP per task
        h = np.maximum(x.numpy() @ weights[0][:, :, m].numpy() + biases[0][:, m].numpy(), 0)
        y = h @ weights[1][:, :, m].numpy() + biases[1][:, m].numpy()
        np.testing.assert_allclose(out[t].detach().numpy(), y, rtol=1e-4, atol=1e-4)


def test_truncated_tucker_error_matches_hosvd_bound():
    """The HOSVD truncation error is at most the sum of the discarded squared singular values."""
    w = _weights(2)[0]
    model = TensorFactorized.from_independent([w], [(2, 2, 2)], _heads())
    err = (model.layer_weight(0) - w).pow(2).sum().item()
    bound = 0.0
    for mode, r in enumerate((2, 2, 2)):
        s = np.linalg.svd(np.moveaxis(w.numpy(), mode, 0).reshape(w.shape[mode], -1))[1]
        bound += float((s[r:] ** 2).sum())
    assert 0 < err <= bound + 1e-4


def test_parameters_split_into_shared_factors_and_task_factors():
    model = TensorFactorized(nn.Linear(3, 5), [5, 4], _heads(), ranks=(2, 2, 2))
    own = list(model.task_parameters("a"))
    assert [p.shape for p in own] == [torch.Size([2]), torch.Size([4])]  # u3 row, bias
    assert model.ranks == [(2, 2, 2)]
    assert full_ranks((5, 4, 3), "tt") == (5, 3)


def test_bad_method_raises():
    with pytest.raises(ValueError, match="method"):
        TensorFactorized(nn.Identity(), [3, 2], _heads(), method="cp")


def test_ranks_per_layer_and_tt_ranks_clipped_by_the_kept_r1():
    """A list gives each layer's ranks (an int list was read as one tuple for every layer);
    TT's r2 is bounded by r1 * d2 with the r1 kept (clipped with the full r1, a narrow output
    layer crashed in tt_svd: "shape '[1, 1, 3]' is invalid for input of size 1")."""
    trunk = nn.Linear(3, 8)
    model = TensorFactorized(trunk, [8, 6, 4, 2], _heads(), ranks=[1, 2, (3, 1, 2)])
    assert model.ranks == [(1, 1, 1), (2, 2, 2), (3, 1, 2)]
    tt = TensorFactorized(trunk, [8, 6, 4], _heads(), ranks=[1, 3], method="tt")
    assert tt.ranks == [(1, 1), (3, 3)]
    assert TensorFactorized(trunk, [8, 6], _heads(), ranks=(2, 3), method="tt").ranks == [(2, 3)]
    five = {t: nn.Identity() for t in "abcde"}
    narrow = TensorFactorized(trunk, [8, 1], five, ranks=(1, 3), method="tt")
    assert narrow.ranks == [(1, 1)]  # G2 is (1, 1, r2): rank one at most
    out = narrow(torch.randn(4, 3))
    assert {t: o.shape for t, o in out.items()} == {t: (4, 1) for t in "abcde"}
    weights = [torch.randn(8, 1, 5)]
    init = TensorFactorized.from_independent(weights, (1, 3), five, method="tt")
    assert init.ranks == [(1, 1)]


def test_from_independent_decomposes_float64_weights_in_float64():
    """The weights were cast to float32 before the decomposition, whose float32 SVDs then
    reproduced them to 5e-7-7e-7 (relative); decomposed in float64 and stored in float32, the
    factors reproduce them to 3e-8-4e-8."""
    weights = [w.double() for w in _weights(2)]
    model = TensorFactorized.from_independent(weights, None, _heads()).double()
    for i, w in enumerate(weights):
        err = (model.layer_weight(i).detach() - w).abs().max() / w.abs().max()
        assert float(err) < 1e-7
