"""Audit of the loss weightings: zero losses (a task without labels in the batch), non-finite
steps, and the state they leave.

Oracles: each paper's formula written out in the test (DWA eq. 1, GradNorm Alg. 1, the
geometric mean of GLS over the tasks that have a loss), and DB-MTL's moving average recomputed
from the steps it should have kept.
"""

import math

import pytest
import torch

from multitask.nn.weighting import DBMTL, DWA, GLS, WEIGHTINGS, GradNorm, StaticWeighting

torch.set_num_threads(1)


def test_dwa_after_a_zero_period_loss_keeps_finite_weights():
    """``r = L(k-1) / L(k-2)`` with ``L(k-2) = 0`` is not finite: it counts as 1 (no NaN)."""
    dwa = DWA(2, temperature=2.0)
    seq = [[0.0, 1.0], [0.5, 1.0], [0.4, 0.9], [0.3, 0.8]]
    weights = []
    for values in seq:
        dwa(torch.tensor(values, dtype=torch.float64))
        weights.append(dwa.weights().double())
    ones = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(weights[2], ones)  # r = (0.5 / 0 -> 1, 1 / 1)
    r = torch.tensor([0.4 / 0.5, 0.9 / 1.0], dtype=torch.float64)
    expected = 2 * torch.exp(r / 2) / torch.exp(r / 2).sum()
    torch.testing.assert_close(weights[3], expected)


@pytest.mark.parametrize(
    "values", [[0.0, 1.0, 4.0], [2.0, 1.0, 4.0], [0.0, 0.0, 3.0], [1e-12, 1.0, 1e12]]
)
def test_gls_leaves_out_a_zero_loss(values):
    losses = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    total = GLS(3)(losses)
    (grad,) = torch.autograd.grad(total, losses)
    present = [v for v in values if v != 0]
    mean = math.exp(sum(math.log(v) for v in present) / len(present))
    expected = [mean / (len(present) * v) if v != 0 else 0.0 for v in values]
    assert total.item() == pytest.approx(mean, rel=1e-12)
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))


def test_gls_all_zero_losses_give_zero_and_no_gradient():
    losses = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    total = GLS(3)(losses)
    (grad,) = torch.autograd.grad(total, losses)
    assert total.item() == 0.0
    assert torch.equal(grad, torch.zeros(3, dtype=torch.float64))


def _gradnorm_oracle(losses, initial, J, alpha):
    """Alg. 1 with ``w = 1``: ``L_grad`` and ``dL_grad/dw`` (ratio 1 while L(0) is unset)."""
    norms = [math.sqrt(sum(x * x for x in row)) for row in J.tolist()]
    ratio = [a / b if b > 0 else 1.0 for a, b in zip(losses, initial, strict=True)]
    mean_g, mean_r = sum(norms) / len(norms), sum(ratio) / len(ratio)
    gaps = [g - mean_g * (r / mean_r) ** alpha for g, r in zip(norms, ratio, strict=True)]
    grad = [math.copysign(n, gap) if gap else 0.0 for n, gap in zip(norms, gaps, strict=True)]
    return sum(abs(gap) for gap in gaps), grad


@pytest.mark.parametrize("host", [True, False], ids=["host", "torch"])
def test_gradnorm_zero_first_loss_records_the_first_positive_one(host):
    """A task with no labels in the first batch (loss 0): L(0) is its first positive loss.

    Before: ZeroDivisionError on the CPU's host path, NaN weights for good on the torch one.
    """
    gn = GradNorm(2, shared_params=None)
    gn._host = host
    J = torch.randn(2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gn.task_weights.data = gn.task_weights.data.double()
    steps = [[0.0, 1.0], [0.5, 0.9], [0.4, 0.8]]
    initial = [[0.0, 1.0], [0.5, 1.0], [0.5, 1.0]]  # what L(0) is when each step is read
    for values, init in zip(steps, initial, strict=True):
        gn.task_weights.grad = None
        aux = gn.observe(torch.tensor(values, dtype=torch.float64), J)
        aux.backward()
        value, grad = _gradnorm_oracle(values, init, J, gn.alpha)
        assert aux.item() == pytest.approx(value, rel=1e-10)
        torch.testing.assert_close(gn.task_weights.grad, torch.tensor(grad, dtype=torch.float64))
    assert gn.initial_losses.tolist() == [0.5, 1.0]


def test_dbmtl_non_finite_step_keeps_that_task_average():
    g = torch.Generator().manual_seed(0)
    J1, J2, J3 = (torch.randn(2, 5, generator=g, dtype=torch.float64) for _ in range(3))
    L = torch.tensor([0.5, 1.0], dtype=torch.float64)
    bad = J2.clone()
    bad[0, 0] = float("nan")
    runs = {}
    for name, steps in {"bad": [J1, bad, J3], "all": [J1, J2, J3], "skip": [J1, J3]}.items():
        d = DBMTL(2)
        for J in steps:
            d.observe(L, J)
        runs[name] = d
    assert torch.isfinite(runs["bad"].average).all()
    torch.testing.assert_close(runs["bad"].average[0], runs["skip"].average[0])
    torch.testing.assert_close(runs["bad"].average[1], runs["all"].average[1])
    norms = torch.linalg.vector_norm(runs["bad"].average, dim=1)
    torch.testing.assert_close(runs["bad"].alpha, norms.max() / (norms + 1e-8))


BAD_LOSSES = {
    "column": torch.ones(3, 1),  # broadcast against (3,) weights into a (3, 3) sum
    "scalar": torch.tensor(1.0),  # broadcast into three terms
    "too-few": torch.ones(2),
    "too-many": torch.ones(4),
    "none": torch.ones(0),
}


@pytest.mark.parametrize("bad", BAD_LOSSES, ids=list(BAD_LOSSES))
@pytest.mark.parametrize("name", sorted(set(WEIGHTINGS) - {"static"}))
def test_weightings_reject_losses_that_are_not_one_per_task(name, bad):
    """Before: a (3, 1) column gave Uncertainty, GradNorm, RLW and IMTL-L a silently wrong
    objective (a (3, 3) sum), a 0-d loss three terms, GLS / DB-MTL / equal any length."""
    weighting = WEIGHTINGS[name](3)
    with pytest.raises(ValueError, match=r"shape \(n_tasks,\)"):
        weighting(BAD_LOSSES[bad])


def test_static_weighting_rejects_a_column_of_losses():
    with pytest.raises(ValueError, match="pass one weight per task"):
        StaticWeighting([1.0, 2.0, 3.0])(BAD_LOSSES["column"])
