"""``handles_absent_tasks``: what a task absent from a step (a zero loss, a zero gradient row)
does to each balancer, against the same balancer on the present tasks alone.

The flag lets the Trainer run a balancer under a task sampler that trains only some tasks at
a step (tests/training/test_sampler_balancers.py); here its claim is checked: the output is the
present tasks' output up to a positive scale, at every step of a sequence (the state, if
any, fed only by the present tasks).
"""

import pytest
import torch

from multitask.nn.aggregation import AGGREGATORS, MGDA, GradDrop, GradientAggregator, PCGrad
from multitask.nn.weighting import WEIGHTINGS, LossWeighting


def _make(name, n_tasks):
    if name == "pcgrad":  # index-order visits: the same order of the present tasks in both
        return PCGrad(deterministic=True)
    if name == "graddrop":  # the same seed: the same draws (one per coordinate, not per task)
        return GradDrop(seed=3)
    return AGGREGATORS[name]()


def _jacobians(n_tasks, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        J = torch.randn(n_tasks, 30, generator=g, dtype=torch.float64)
        J[1] = -0.6 * J[0] + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)  # conflict
        out.append(J)
    return out


SAFE_AGGREGATORS = [n for n, c in AGGREGATORS.items() if c.handles_absent_tasks]


def test_the_safe_lists():
    # the balancers the Trainer allows under a sampler that draws some of the tasks
    safe_w = {n for n, c in WEIGHTINGS.items() if c.handles_absent_tasks}
    assert safe_w == {"equal", "static", "rlw", "gls"}  # (the others drop absent rows)
    assert set(SAFE_AGGREGATORS) == {
        "sum",
        "mean",
        "pcgrad",
        "imtl_g",
        "aligned_mtl",
        "upgrad",
        "nash_mtl",
        "graddrop",
    }
    for base, classes in [(LossWeighting, WEIGHTINGS), (GradientAggregator, AGGREGATORS)]:
        for c in classes.values():
            if not c.handles_absent_tasks:  # each refusal says why, in its own words
                assert c.absent_tasks_reason != base.absent_tasks_reason, c


@pytest.mark.parametrize("name", SAFE_AGGREGATORS)
@pytest.mark.parametrize(("n_tasks", "absent"), [(3, [2]), (4, [0, 3]), (4, [2])])
def test_a_zero_row_changes_nothing_but_a_scale(name, n_tasks, absent):
    present = [t for t in range(n_tasks) if t not in absent]
    with_zero, alone = _make(name, n_tasks), _make(name, len(present))  # one each: state kept
    for J in _jacobians(n_tasks, steps=4):
        Jz = J.clone()
        Jz[absent] = 0
        out, ref = with_zero(Jz), alone(J[present])
        scale = float(out @ ref / (ref @ ref))
        assert scale > 0
        torch.testing.assert_close(out, scale * ref, rtol=1e-8, atol=1e-10)


def test_mgda_with_a_zero_row_moves_nothing():
    # why MGDA runs on the present rows alone (drops_absent_rows): the min-norm point of a
    # hull holding 0 is 0
    J = _jacobians(3, steps=1)[0]
    J[2] = 0
    alone = MGDA()(J[:2]).norm()
    assert alone > 0.1
    assert MGDA()(J).norm() < 1e-12 * alone


@pytest.mark.parametrize("name", ["equal", "static", "rlw", "gls"])
def test_a_zero_loss_leaves_the_present_tasks_weights(name):
    """d objective / d L_t of the present tasks with an absent task's zero loss, against the
    weights of the present tasks alone (RLW: positive random weights either way; GLS: the
    geometric mean of the other losses, its gradient that of GLS on them alone)."""
    losses = torch.tensor([0.7, 0.0, 1.3], requires_grad=True)
    if name == "static":
        weighting, ref = WEIGHTINGS[name](torch.tensor([2.0, 5.0, 0.5])), torch.tensor([2.0, 0.5])
    elif name == "gls":
        present = losses.detach()[[0, 2]].clone().requires_grad_()
        (ref,) = torch.autograd.grad(WEIGHTINGS[name](2)(present), present)
        weighting = WEIGHTINGS[name](3)
    else:
        weighting, ref = WEIGHTINGS[name](3), torch.ones(2)
    (grad,) = torch.autograd.grad(weighting(losses), losses)
    if name == "rlw":
        assert (grad > 0).all() and grad.sum() == pytest.approx(1.0)
    else:
        torch.testing.assert_close(grad[[0, 2]], ref)
    if name == "gls":  # (the others weight the zero loss: no gradient reaches a model from it)
        assert grad[1] == 0
