"""Loss weightings defined only above a loss floor (a log, ratio or power of the loss, or a
learned weight that runs away) refuse a loss below it, early, naming the task, and leave
their state untouched; the others take any real loss."""

from __future__ import annotations

import copy

import pytest
import torch

from multitask.nn.weighting import FAMO, WEIGHTINGS, LossWeighting, StaticWeighting
from multitask.nn.weighting._base import check_losses

T = 3
FLOORED = ("uncertainty", "gradnorm", "dwa", "gls", "imtl_l", "famo", "dbmtl")
UNFLOORED = ("equal", "rlw")


def _build(name: str) -> LossWeighting:
    return StaticWeighting([1.0] * T) if name == "static" else WEIGHTINGS[name](T)


def _state(bal: LossWeighting) -> dict:
    return copy.deepcopy(dict(bal.state_dict()))  # buffers, parameters and extra state


def _call(bal: LossWeighting, losses: torch.Tensor) -> torch.Tensor:
    """What :func:`mtl_backward` calls: ``observe`` first for Jacobian methods."""
    if bal.needs_jacobian:
        bal.observe(losses.detach(), torch.ones(T, 4))
    return bal(losses)


def test_the_registry_is_split_between_the_two_lists():
    assert set(FLOORED) | set(UNFLOORED) | {"static"} == set(WEIGHTINGS)


@pytest.mark.parametrize("name", FLOORED)
def test_a_negative_loss_is_refused_before_any_state_changes(name):
    bal = _build(name)
    _call(bal, torch.tensor([0.5, 1.0, 2.0]))  # one ordinary step first: state exists
    before = _state(bal)
    params = [p.detach().clone() for p in bal.parameters()]
    with pytest.raises(ValueError, match=r"task 1: -0\.25 < 0") as err:
        _call(bal, torch.tensor([0.5, -0.25, 2.0]))
    assert type(bal).__name__ in str(err.value) and "nothing was updated" in str(err.value)
    after = _state(bal)
    assert before.keys() == after.keys()
    for k in before:
        if isinstance(before[k], torch.Tensor):
            torch.testing.assert_close(after[k], before[k], rtol=0, atol=0, equal_nan=True)
        else:
            assert after[k] == before[k], k
    for p, q in zip(bal.parameters(), params, strict=True):
        assert torch.equal(p.detach(), q)


@pytest.mark.parametrize("name", FLOORED)
def test_a_zero_loss_is_at_the_floor_and_finite(name):
    """A task without a labelled entry in the batch has loss 0: accepted, finite."""
    bal = _build(name)
    for _ in range(3):
        out = _call(bal, torch.tensor([0.5, 0.0, 2.0], requires_grad=True))
        assert torch.isfinite(out)


@pytest.mark.parametrize("name", (*UNFLOORED, "static"))
def test_weightings_without_a_floor_take_any_real_loss(name):
    bal = _build(name)
    assert bal.loss_floor() is None
    losses = torch.tensor([-3.0, 0.0, 2.0], requires_grad=True)
    out = bal(losses)
    assert torch.isfinite(out)


def test_famo_floor_is_its_min_losses():
    """FAMO takes log(L - b + eps): with b = -5 a loss of -1 is fine, one of -6 is not."""
    bal = FAMO(T, min_losses=-5.0)
    out = bal(torch.tensor([-1.0, 0.5, 2.0], requires_grad=True))
    assert torch.isfinite(out)
    with pytest.raises(ValueError, match=r"task 0: -6 < -5.*min_losses"):
        bal(torch.tensor([-6.0, 0.5, 2.0]))
    per_task = FAMO(T, min_losses=torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"task 1: 0\.5 < 1"):
        per_task(torch.tensor([0.1, 0.5, 0.1]))


def test_no_host_read_off_the_cpu():
    """Off the CPU the check would cost a host sync per step: it is skipped (a meta
    tensor cannot be read at all, so any host read would raise here)."""
    check_losses(torch.empty(T, device="meta"), T, FAMO(T))
