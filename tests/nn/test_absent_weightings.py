"""Loss weightings with ``drops_absent_rows`` told which tasks are present
(``LossWeighting.present_tasks``, which ``mtl_backward(absent_tasks=...)`` opens): each step is
the method built for the present tasks alone, loaded with their part of the state.

The oracle is that smaller instance, built anew at every step from the full instance's state
dict with every per-task tensor cut to the present rows: its objective's gradients, its own
parameters' gradients, its shared update and its new state must be the full instance's on the
present tasks, and the absent tasks' state must stay as it was (GradNorm: its weights are
renormalised over all the tasks, which keeps the absent ones' proportion, so its weights and
its model update agree up to that positive scale; its weights' gradients exactly). DWA keeps
its history over periods, which the smaller instance cannot hold: it is checked against
eq. 1 written out per task.
"""

import math

import pytest
import torch
from jacobian_oracle import per_task_rows
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import (
    DBMTL,
    DWA,
    FAMO,
    IMTLL,
    WEIGHTINGS,
    GradNorm,
    UncertaintyWeighting,
)

torch.set_num_threads(1)
T = 4

MAKERS = {
    "uncertainty": lambda n: UncertaintyWeighting(
        n, ["regression", "classification"] * (n // 2) + ["regression"] * (n % 2)
    ),
    "imtl_l": IMTLL,
    "famo": lambda n: FAMO(n, lr=0.3, gamma=0.01),
    "famo:torch": lambda n: _torch_path(FAMO(n, lr=0.3, gamma=0.01)),
    "gradnorm": lambda n: GradNorm(n, alpha=1.5, shared_params=None),
    "gradnorm:torch": lambda n: _torch_path(GradNorm(n, alpha=1.5, shared_params=None)),
    "dbmtl": lambda n: DBMTL(n, beta=0.6),
    "dbmtl:sigma": lambda n: DBMTL(n, beta=0.8, sigma=0.5),
}
#: present sets of a run of steps: full steps between partial ones, one task alone, and a
#: task back after steps without it
SCHEDULE = [(0, 1, 2, 3), (0, 2), (1, 2, 3), (3,), (0, 1, 2, 3), (0, 1), (2, 3), (0, 3)]


def _torch_path(weighting):
    weighting._host = False  # the device path on the CPU (the host path is the default)
    return weighting


def _restricted(full, make, present):
    """A new ``len(present)``-task instance with ``full``'s state cut to the present tasks
    (every tensor whose first dimension is the number of tasks)."""
    small = make(len(present)).double()
    n = full.n_tasks
    state = {
        k: v[list(present)] if isinstance(v, torch.Tensor) and v.dim() and len(v) == n else v
        for k, v in full.state_dict().items()
    }
    small.load_state_dict(state)
    return small


def _step(weighting, losses, jacobian):
    """One step of ``weighting``: ``d total / d L``, its own parameters' gradients (of the
    objective plus ``observe``'s extra loss), and its shared update (None: the objective's)."""
    aux = direction = None
    if weighting.needs_jacobian:
        aux = weighting.observe(losses, jacobian)
        direction = weighting.shared_gradient(losses, jacobian)
    L = losses.clone().requires_grad_()
    total = weighting(L)
    objective = total if aux is None else total + aux
    own = [p for p in weighting.parameters() if p.requires_grad]
    grads = torch.autograd.grad(objective, [L, *own], allow_unused=True, materialize_grads=True)
    return grads[0], grads[1:], direction


def _data(steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        losses = torch.rand(T, generator=g, dtype=torch.float64) + 0.2
        yield losses, torch.randn(T, 9, generator=g, dtype=torch.float64)


def _state(weighting):
    return {k: v.clone() for k, v in weighting.state_dict().items() if isinstance(v, torch.Tensor)}


def _scale(got, ref):
    return float(got @ ref / (ref @ ref)) if ref.abs().max() > 0 else 1.0


@pytest.mark.parametrize("name", MAKERS)
def test_a_step_is_the_method_on_the_present_tasks(name):
    make = MAKERS[name]
    full = make(T).double()
    scaled = name.startswith("gradnorm")  # (its weights: up to the renormalisation's scale)
    for present, (losses, J) in zip(SCHEDULE, _data(len(SCHEDULE)), strict=True):
        absent = [t for t in range(T) if t not in present]
        losses[absent], J[absent] = 0.0, 0.0  # as a task not drawn enters a step
        small = _restricted(full, make, present)
        before = _state(full)
        with full.present_tasks(present):
            coeffs, own, direction = _step(full, losses, J)
        ref_coeffs, ref_own, ref_direction = _step(small, losses[list(present)], J[list(present)])
        # the objective's gradient: the small instance's on the present tasks, 0 elsewhere
        scale = _scale(coeffs[list(present)], ref_coeffs)
        assert scale > 0 and (scaled or scale == pytest.approx(1, abs=1e-12))
        torch.testing.assert_close(coeffs[list(present)], scale * ref_coeffs, rtol=1e-12, atol=0)
        assert not coeffs[absent].any()
        for g, ref in zip(own, ref_own, strict=True):  # log-variances, scales, GradNorm's w
            torch.testing.assert_close(g[list(present)], ref, rtol=1e-12, atol=1e-15)
            assert not g[absent].any()
        if direction is not None:  # DB-MTL's update: the small instance's
            torch.testing.assert_close(direction, ref_direction, rtol=1e-12, atol=1e-15)
        after, ref_after = _state(full), _state(small)
        for key, value in after.items():
            if value.dim() == 0 or len(value) != T:  # DB-MTL's step count: every step
                torch.testing.assert_close(value, ref_after[key], rtol=0, atol=0)
                continue
            rescaled = scaled and key == "task_weights"  # GradNorm's renormalised weights
            k = _scale(value[list(present)], ref_after[key]) if rescaled else 1.0
            torch.testing.assert_close(
                value[list(present)], k * ref_after[key], rtol=1e-12, atol=1e-15, equal_nan=True
            )
            if key == "alpha":  # DB-MTL's factors: an absent task's average is not applied
                assert not value[absent].any()
            elif key in before:  # the absent tasks' state as it was (GradNorm: all weights
                c = _scale(value, before[key]) if rescaled else 1.0  # scaled alike)
                torch.testing.assert_close(
                    value[absent], c * before[key][absent], rtol=1e-12, atol=0, equal_nan=True
                )
        with torch.no_grad():  # the optimizer's step on the weighting's own parameters
            for p, g in zip((p for p in full.parameters() if p.requires_grad), own, strict=True):
                p.sub_(0.3 * g)


@pytest.mark.parametrize("name", MAKERS)
def test_no_task_present_moves_nothing(name):
    full = MAKERS[name](T).double()
    losses, J = next(_data(1))
    _step(full, losses, J)  # a full step first: state to keep
    before = _state(full)
    with full.present_tasks([]):
        coeffs, own, direction = _step(full, torch.zeros(T, dtype=torch.float64), 0 * J)
    assert not coeffs.any() and not any(g.any() for g in own)
    assert direction is None or not direction.any()
    for key, value in _state(full).items():
        if key not in ("alpha", "task_weights"):  # (no factor applied; GradNorm's rescaled)
            torch.testing.assert_close(value, before[key], rtol=0, atol=0, equal_nan=True)


def test_every_task_present_is_the_plain_step():
    for name, make in MAKERS.items():
        told, untold = make(T).double(), make(T).double()
        for losses, J in _data(3):
            with told.present_tasks(range(T)):
                a = _step(told, losses, J)
            b = _step(untold, losses, J)
            torch.testing.assert_close(a[0], b[0], rtol=0, atol=0, msg=name)
        torch.testing.assert_close(
            told.state_dict(), untold.state_dict(), rtol=0, atol=0, equal_nan=True, msg=name
        )


def _dwa_reference(steps, period, temperature):
    """DWA's eq. 1 per task: ``L_t(k)`` the mean over the calls of period ``k`` with task
    ``t``; a period without it leaves its history; weights ``|P| softmax`` over the present."""
    history = [[] for _ in range(T)]
    sums, counts = [0.0] * T, [0] * T
    out = []
    for i, (present, losses) in enumerate(steps):
        r = [h[-1] / h[-2] if len(h) >= 2 else 1.0 for h in history]
        e = {t: math.exp(r[t] / temperature) for t in present}
        total = sum(e.values())
        out.append([len(present) * e[t] / total if t in present else 0.0 for t in range(T)])
        for t in present:
            sums[t] += losses[t]
            counts[t] += 1
        if (i + 1) % period == 0:
            for t in range(T):
                if counts[t]:
                    history[t].append(sums[t] / counts[t])
            sums, counts = [0.0] * T, [0] * T
    return out


@pytest.mark.parametrize("host", [True, False], ids=["host", "torch"])
@pytest.mark.parametrize("period", [1, 2, 3])
def test_dwa_on_the_present_tasks_follows_eq1_per_task(period, host):
    schedule = SCHEDULE * 2
    steps = [
        (p, losses.tolist()) for p, (losses, _) in zip(schedule, _data(len(schedule)), strict=True)
    ]
    expected = _dwa_reference(steps, period, temperature=2.0)
    dwa = DWA(T, temperature=2.0, period=period).double()
    dwa._host = host  # the CPU's host path (the default there), or a device's torch path
    for (present, values), ref in zip(steps, expected, strict=True):
        losses = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        with dwa.present_tasks(present):
            (grad,) = torch.autograd.grad(dwa(losses), losses)
        torch.testing.assert_close(grad, torch.tensor(ref, dtype=torch.float64), rtol=1e-12, atol=0)
        torch.testing.assert_close(dwa.weights(), grad, rtol=0, atol=0)


@pytest.mark.parametrize("host", [True, False], ids=["host", "torch"])
@pytest.mark.parametrize("cut", [1, 4])
def test_dwa_state_round_trips_mid_period_and_loads_an_older_checkpoint(cut, host):
    # saved after a call with an absent task (cut 1: the rest of the period has every task,
    # so only the state says that the period's means are per task), then continued
    schedule = SCHEDULE[1:] if cut == 1 else SCHEDULE
    after = [(0, 1, 2, 3)] * 5 if cut == 1 else SCHEDULE[cut:]
    dwa = DWA(T, period=3).double()
    dwa._host = host
    for present, (losses, _) in zip(schedule[:cut], _data(cut), strict=True):
        with dwa.present_tasks(present):
            dwa(losses)
    state = dwa.state_dict()
    copy = DWA(T, period=3).double()
    copy._host = host
    copy.load_state_dict(state)
    for present, (losses, _) in zip(after, _data(len(after), seed=1), strict=True):
        with dwa.present_tasks(present), copy.present_tasks(present):
            torch.testing.assert_close(copy(losses), dwa(losses), rtol=0, atol=0)
            torch.testing.assert_close(copy.previous, dwa.previous, rtol=0, atol=0, equal_nan=True)
    # a state dict written before absent tasks (no absent_calls, no "partial"): every task
    # was in every call
    old = DWA(T, period=2)
    old._host = host
    old(torch.rand(T) + 0.5)
    state = old.state_dict()
    del state["absent_calls"]
    state["_extra_state"] = {"calls": 1}
    fresh = DWA(T, period=2)
    fresh._host = host
    fresh.load_state_dict(state)
    losses = torch.rand(T) + 0.5
    torch.testing.assert_close(fresh(losses), old(losses), rtol=0, atol=0)
    torch.testing.assert_close(fresh.previous, old.previous, rtol=0, atol=0)


def test_which_weightings_drop_absent_rows():
    dropping = {n for n, c in WEIGHTINGS.items() if c.drops_absent_rows}
    assert dropping == {"uncertainty", "imtl_l", "dwa", "famo", "gradnorm", "dbmtl"}
    for name in dropping:
        assert not WEIGHTINGS[name].handles_absent_tasks


def test_present_tasks_checks_its_indices_and_restores_the_outer_block():
    w = IMTLL(3)
    with pytest.raises(ValueError, match=r"not all in \[0, 3\)"):
        with w.present_tasks([0, 3]):
            pass
    with w.present_tasks([2, 0, 2]):
        assert w._present == (0, 2)
        with w.present_tasks(None):
            assert w._present is None
        assert w._present == (0, 2)
        with w.present_tasks([0, 1, 2]):  # every task: the plain step
            assert w._present is None
    assert w._present is None


# -- through mtl_backward: the shared gradient and the heads' against per-task autograd rows

NAMES = ["a", "b", "c"]


def _model(two_stage, seed=0):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh())
    model = HardSharing(trunk, {t: nn.Linear(6, 1) for t in NAMES}).double()
    model.shared_through_representation = two_stage
    return model


def _losses(model, absent=(), seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(13, 5, generator=g, dtype=torch.float64)
    y = torch.randn(13, 3, generator=g, dtype=torch.float64)
    out = model(x)
    losses = {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() * (i + 1) for i, t in enumerate(NAMES)}
    return {t: 0 * out[t].sum() if t in absent else v for t, v in losses.items()}


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


BACKWARD = {
    "uncertainty": lambda n: UncertaintyWeighting(n),
    "imtl_l": IMTLL,
    "famo": FAMO,
    "dwa": DWA,
    "gradnorm:all": lambda n: GradNorm(n, shared_params=None),
    "gradnorm:last": lambda n: GradNorm(n, shared_params="last"),
    "dbmtl": DBMTL,
}


@pytest.mark.parametrize("two_stage", [True, False])
@pytest.mark.parametrize("name", BACKWARD)
def test_mtl_backward_steps_the_present_tasks(name, two_stage):
    make = BACKWARD[name]
    model = _model(two_stage)
    weighting = make(3).double()
    mtl_backward(_losses(model, seed=2), model, weighting)  # a full step: state to carry
    model.zero_grad(set_to_none=True)
    for p in weighting.parameters():
        p.grad = None
    present = [0, 2]
    small = _restricted(weighting, make, present)
    losses = _losses(model, absent=["b"])
    shared = list(model.trunk.parameters())
    rows = per_task_rows(losses, "ac", shared)
    vec = torch.stack([losses["a"], losses["c"]]).detach()
    jparams = shared if not name.endswith(":last") else list(model.trunk[2].parameters())
    coeffs, own, direction = _step(small, vec, per_task_rows(losses, "ac", jparams))
    heads = {t: per_task_rows(losses, [t], list(model.heads[t].parameters()))[0] for t in NAMES}
    info = mtl_backward(losses, model, weighting, absent_tasks=["b"])
    got = _flat(p.grad for p in shared)
    expected = coeffs @ rows if direction is None else direction
    scale = _scale(got, expected)  # GradNorm: its weights' renormalisation over all tasks
    assert scale > 0 and (name.startswith("gradnorm") or scale == pytest.approx(1, abs=1e-9))
    torch.testing.assert_close(got, scale * expected, rtol=1e-9, atol=1e-12)
    for i, t in zip(present, "ac", strict=True):  # each head: its task's coefficient
        head = _flat(p.grad for p in model.heads[t].parameters())
        c = coeffs[present.index(i)] * (scale if direction is None else 1.0)
        torch.testing.assert_close(head, c * heads[t], rtol=1e-9, atol=1e-12)
    assert all(p.grad is None or not p.grad.any() for p in model.heads["b"].parameters())
    for p, g in zip((p for p in weighting.parameters() if p.requires_grad), own, strict=True):
        torch.testing.assert_close(p.grad[present], g, rtol=1e-9, atol=1e-12)
        assert not p.grad[1]
    assert info.weights[1] == 0 and (info.weights[present] != 0).all()
