"""mtl_backward refuses a NaN or infinite task loss before it writes anything."""

import copy

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import MGDA, PCGrad
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import DBMTL, DWA, GradNorm, UncertaintyWeighting

torch.set_num_threads(1)
TASKS = ("a", "b", "c")


def _model():
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
    return HardSharing(trunk, {t: nn.Linear(6, 1) for t in TASKS})


def _losses(model, bad=None, value=float("nan"), dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, generator=g)
    out = model(x)
    losses = {t: out[t].pow(2).mean().to(dtype) for t in TASKS}
    if bad is not None:
        for t in bad:
            losses[t] = losses[t] * value  # still in the graph
    return losses


BALANCERS = {
    "none": lambda: None,
    "uncertainty": lambda: UncertaintyWeighting(len(TASKS)),
    "dwa": lambda: DWA(len(TASKS)),
    "gradnorm": lambda: GradNorm(len(TASKS)),
    "dbmtl": lambda: DBMTL(len(TASKS)),
    "mgda": MGDA,
    "pcgrad": PCGrad,
}


def _state(balancer):
    if balancer is None:
        return {}
    state = {k: v.clone() for k, v in balancer.state_dict().items() if torch.is_tensor(v)}
    state.update({f"param:{k}": p.detach().clone() for k, p in balancer.named_parameters()})
    return state


@pytest.mark.parametrize("name", sorted(BALANCERS))
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_nonfinite_loss_raises_naming_the_task_and_changes_nothing(name, value):
    model = _model()
    balancer = BALANCERS[name]()
    mtl_backward(_losses(model), model, balancer)  # one good step: the state has history
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    before = _state(balancer)
    with pytest.raises(FloatingPointError, match=r"loss of task 'b' is (nan|inf|-inf)"):
        mtl_backward(_losses(model, bad=["b"], value=value), model, balancer)
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, grads[n]), n  # nothing added
    after = _state(balancer)
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(after[k], before[k]) or (
            before[k].isnan().all() and after[k].isnan().all()
        ), k
    if balancer is not None:
        for p in balancer.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()


def test_every_nonfinite_task_is_named():
    model = _model()
    with pytest.raises(FloatingPointError, match=r"tasks 'a' \(nan\), 'c' \(nan\) are not finite"):
        mtl_backward(_losses(model, bad=["a", "c"]), model, MGDA())


def test_a_nonfinite_extra_loss_raises():
    model = _model()
    with pytest.raises(FloatingPointError, match="extra_loss is inf"):
        mtl_backward(_losses(model), model, None, extra_loss=torch.tensor(float("inf")))
    assert all(p.grad is None for p in model.parameters())


def test_bfloat16_losses_are_checked():
    model = _model()
    with pytest.raises(FloatingPointError, match="'a'"):
        mtl_backward(_losses(model, bad=["a"], dtype=torch.bfloat16), model, None)


def test_check_finite_false_backpropagates_as_before():
    """The check only refuses: with it off, the same step runs and spreads the NaN."""
    model = _model()
    twin = copy.deepcopy(model)
    mtl_backward(_losses(model, bad=["b"]), model, None, check_finite=False)
    assert not torch.isfinite(model.shared_parameters().__next__().grad).all()
    mtl_backward(_losses(twin), twin, None, check_finite=False)  # a finite step: unchanged
    ref = copy.deepcopy(_model())
    mtl_backward(_losses(ref), ref, None)
    for p, q in zip(twin.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_not_checked_off_the_cpu_by_default_but_on_request():
    """On an accelerator the default skips the check (no host read); meta tensors stand in."""
    model = _model().to("meta")
    x = torch.empty(8, 4, device="meta")
    out = model(x)
    losses = {t: out[t].pow(2).mean() for t in TASKS}  # meta: no values, no host read
    mtl_backward(losses, model, MGDA())  # would raise on a host read
    out = model(x)
    losses = {t: out[t].pow(2).mean() for t in TASKS}
    with pytest.raises((NotImplementedError, RuntimeError)):
        mtl_backward(losses, model, MGDA(), check_finite=True)  # the read it asks for
