"""Bad hyper-parameters of the weightings, the aggregators and the gradient reversal layer
fail at construction with an error naming the parameter (not at the first step with a bare
torch error, nor by training on NaN); the documented defaults and edge values still
construct and take a step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import (
    MGDA,
    CAGrad,
    GradDrop,
    GradVac,
    NashMTL,
    PCGrad,
    UPGrad,
)
from multitask.nn.architectures import HardSharing
from multitask.nn.auxiliary import GradientReversal, ganin_schedule
from multitask.nn.weighting import (
    DBMTL,
    DWA,
    FAMO,
    GLS,
    IMTLL,
    RLW,
    EqualWeighting,
    GradNorm,
    StaticWeighting,
    UncertaintyWeighting,
)

NAN, INF = math.nan, math.inf
T = 3


def _grad(value: float) -> torch.Tensor:
    """A 0-d tensor that requires grad (a weight learnt elsewhere, given as a constant)."""
    return torch.tensor(value, requires_grad=True)


COUNTED = [EqualWeighting, UncertaintyWeighting, GradNorm, DWA, RLW, GLS, IMTLL, FAMO, DBMTL]

# (class or function, args, kwargs, exception, message regex)
REFUSED = [
    # 1. n_tasks of every weighting
    *[
        (c, (0,), {}, ValueError, rf"{c.__name__}: n_tasks must be an integer >= 1")
        for c in COUNTED
    ],
    *[(c, (-1,), {}, ValueError, rf"{c.__name__}: n_tasks") for c in COUNTED],
    *[(c, (1.5,), {}, TypeError, rf"{c.__name__}: n_tasks") for c in COUNTED],
    *[(c, (True,), {}, TypeError, rf"{c.__name__}: n_tasks") for c in COUNTED],
    *[(c, ("3",), {}, TypeError, rf"{c.__name__}: n_tasks") for c in COUNTED],
    # 2. StaticWeighting weights
    (StaticWeighting, ("abc",), {}, TypeError, "StaticWeighting: weights"),
    (StaticWeighting, (["1", "1", "1"],), {}, TypeError, "StaticWeighting: weights"),
    (StaticWeighting, ([True, True],), {}, TypeError, "StaticWeighting: weights"),
    (StaticWeighting, ([-1.0, 1.0],), {}, ValueError, "finite non-negative weights"),
    (StaticWeighting, ([NAN, 1.0],), {}, ValueError, "finite non-negative weights"),
    (StaticWeighting, ([_grad(-1.0), _grad(1.0)],), {}, ValueError, "finite non-negative weights"),
    (StaticWeighting, ([_grad(NAN), 1.0],), {}, ValueError, "finite non-negative weights"),
    (StaticWeighting, ([_grad(INF), 1.0],), {}, ValueError, "finite non-negative weights"),
    (StaticWeighting, ([],), {}, ValueError, "finite non-negative weights"),
    (StaticWeighting, ([torch.ones(2), 1.0],), {}, TypeError, "StaticWeighting: weights"),
    (StaticWeighting, ([torch.tensor(True), 1.0],), {}, TypeError, "StaticWeighting: weights"),
    (StaticWeighting, ([True, 1.0],), {}, TypeError, "StaticWeighting: weights"),
    # 3-4. GradNorm
    (GradNorm, (T,), {"alpha": NAN}, ValueError, "GradNorm: alpha must be a finite number >= 0"),
    (GradNorm, (T,), {"alpha": INF}, ValueError, "GradNorm: alpha"),
    (GradNorm, (T,), {"alpha": -1.0}, ValueError, "GradNorm: alpha"),
    (GradNorm, (T,), {"alpha": "0.5"}, TypeError, "GradNorm: alpha"),
    (GradNorm, (T,), {"alpha": [1.0, 2.0]}, TypeError, "GradNorm: alpha"),
    (GradNorm, (T,), {"shared_params": 0}, TypeError, "GradNorm: shared_params.*got 0"),
    (GradNorm, (T,), {"shared_params": [1, 2]}, TypeError, "GradNorm: shared_params"),
    (GradNorm, (T,), {"shared_params": []}, ValueError, "GradNorm: shared_params"),
    (GradNorm, (T,), {"shared_params": "bogus"}, ValueError, "shared_params"),
    # 5. DWA
    (DWA, (T,), {"period": NAN}, TypeError, "DWA: period must be an integer >= 1"),
    (DWA, (T,), {"period": INF}, TypeError, "DWA: period"),
    (DWA, (T,), {"period": 1.5}, TypeError, "DWA: period"),
    (DWA, (T,), {"period": 0}, ValueError, "DWA: period"),
    (DWA, (T,), {"temperature": "2"}, TypeError, "DWA: temperature"),
    (DWA, (T,), {"temperature": INF}, ValueError, "DWA: temperature"),
    (DWA, (T,), {"temperature": 0.0}, ValueError, "DWA: temperature must be a finite number > 0"),
    # 6. RLW seed
    (RLW, (T,), {"seed": -1}, ValueError, "RLW: seed"),
    (RLW, (T,), {"seed": 1.5}, TypeError, "RLW: seed"),
    (RLW, (T,), {"seed": "0"}, TypeError, "RLW: seed"),
    (RLW, (T,), {"seed": None}, TypeError, "RLW: seed"),
    # 7. FAMO
    (FAMO, (T,), {"lr": 0.0}, ValueError, "FAMO: lr must be a finite number > 0"),
    (FAMO, (T,), {"lr": -1.0}, ValueError, "FAMO: lr"),
    (FAMO, (T,), {"lr": NAN}, ValueError, "FAMO: lr"),
    (FAMO, (T,), {"lr": "0.5"}, TypeError, "FAMO: lr"),
    (FAMO, (T,), {"gamma": -1.0}, ValueError, "FAMO: gamma"),
    (FAMO, (T,), {"gamma": INF}, ValueError, "FAMO: gamma"),
    (FAMO, (T,), {"eps": 0.0}, ValueError, "FAMO: eps must be a finite number > 0"),
    (FAMO, (T,), {"eps": 0}, ValueError, "FAMO: eps must be a finite number > 0"),
    (FAMO, (T,), {"eps": -1.0}, ValueError, "FAMO: eps"),
    (FAMO, (T,), {"eps": NAN}, ValueError, "FAMO: eps"),
    (FAMO, (T,), {"min_losses": torch.zeros(T, 2)}, ValueError, r"FAMO: min_losses.*\(3, 2\)"),
    (FAMO, (T,), {"min_losses": torch.zeros(T + 1)}, ValueError, "FAMO: min_losses"),
    (FAMO, (T,), {"min_losses": NAN}, ValueError, "FAMO: min_losses must be finite"),
    (FAMO, (T,), {"min_losses": "abc"}, TypeError, "FAMO: min_losses"),
    # 8. DBMTL
    (DBMTL, (T,), {"beta": 1.0}, ValueError, r"DBMTL: beta must be a finite number >= 0.0 and < 1"),
    (DBMTL, (T,), {"beta": -0.1}, ValueError, "DBMTL: beta"),
    (DBMTL, (T,), {"beta": NAN}, ValueError, "DBMTL: beta"),
    (DBMTL, (T,), {"beta": "0.5"}, TypeError, "DBMTL: beta"),
    (DBMTL, (T,), {"sigma": INF}, ValueError, "DBMTL: sigma"),
    (DBMTL, (T,), {"sigma": torch.ones(2)}, TypeError, "DBMTL: sigma"),
    (DBMTL, (T,), {"eps": 0.0}, ValueError, "DBMTL: eps must be a finite number > 0"),
    (DBMTL, (T,), {"eps": 0}, ValueError, "DBMTL: eps must be a finite number > 0"),
    (DBMTL, (T,), {"eps": -1.0}, ValueError, "DBMTL: eps"),
    (DBMTL, (T,), {"eps": INF}, ValueError, "DBMTL: eps"),
    # 9. iteration counts
    *[
        (c, (), {name: v}, err, rf"{c.__name__}: {name} must be an integer")
        for c in (MGDA, CAGrad, UPGrad)
        for name, v, err in [
            ("max_exact", -1, ValueError),
            ("max_exact", 1.5, TypeError),
            ("max_exact", "3", TypeError),
            ("n_iter", 0, ValueError),
            ("n_iter", NAN, TypeError),
            ("n_iter", True, TypeError),
        ]
    ],
    (NashMTL, (), {"n_iter": 0}, ValueError, "NashMTL: n_iter must be an integer >= 1"),
    (NashMTL, (), {"n_iter": 2.5}, TypeError, "NashMTL: n_iter"),
    (NashMTL, (), {"n_iter_warm": 0}, ValueError, "NashMTL: n_iter_warm"),
    (NashMTL, (), {"n_iter_warm": "8"}, TypeError, "NashMTL: n_iter_warm"),
    (NashMTL, (), {"update_every": 0}, ValueError, "NashMTL: update_every"),
    (NashMTL, (), {"update_every": 1.5}, TypeError, "NashMTL: update_every"),
    # 10. seeds
    *[
        (c, (), {"seed": v}, err, rf"{c.__name__}: seed")
        for c in (PCGrad, GradVac, GradDrop)
        for v, err in [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (NAN, TypeError)]
    ],
    # 11. GradDrop leak
    (GradDrop, (), {"leak": [0.5, 0.5]}, TypeError, "GradDrop: leak"),
    (GradDrop, (), {"leak": "abc"}, TypeError, "GradDrop: leak"),
    (GradDrop, (), {"leak": 0.5}, TypeError, "GradDrop: leak"),
    (GradDrop, (), {"leak": torch.tensor([2.0, 0.0])}, ValueError, "leak"),
    # 12. finite c, max_norm
    (CAGrad, (), {"c": INF}, ValueError, "CAGrad: c must be a finite number >= 0"),
    (CAGrad, (), {"c": NAN}, ValueError, "CAGrad: c"),
    (CAGrad, (), {"c": -0.5}, ValueError, "CAGrad: c"),
    (CAGrad, (), {"c": "0.5"}, TypeError, "CAGrad: c"),
    (NashMTL, (), {"max_norm": INF}, ValueError, "NashMTL: max_norm"),
    (NashMTL, (), {"max_norm": -1.0}, ValueError, "NashMTL: max_norm"),
    # 13. reg_eps, GradVac eps (and beta)
    (UPGrad, (), {"reg_eps": -1e-4}, ValueError, "UPGrad: reg_eps"),
    (UPGrad, (), {"reg_eps": INF}, ValueError, "UPGrad: reg_eps"),
    (UPGrad, (), {"reg_eps": "1e-4"}, TypeError, "UPGrad: reg_eps"),
    (GradVac, (), {"eps": -1.0}, ValueError, "GradVac: eps"),
    (GradVac, (), {"eps": NAN}, ValueError, "GradVac: eps"),
    (GradVac, (), {"beta": 1.5}, ValueError, "GradVac: beta"),
    # 14. flags
    (
        PCGrad,
        (),
        {"deterministic": "yes"},
        TypeError,
        "PCGrad: deterministic must be True or False",
    ),
    (PCGrad, (), {"deterministic": 2}, TypeError, "PCGrad: deterministic"),
    (GradDrop, (), {"marginalize_batch": "no"}, TypeError, "GradDrop: marginalize_batch"),
    (GradDrop, (), {"marginalize_batch": None}, TypeError, "GradDrop: marginalize_batch"),
    # 28-29. gradient reversal
    (
        GradientReversal,
        (-1.0,),
        {},
        ValueError,
        "GradientReversal: scale must be a finite number >= 0",
    ),
    (GradientReversal, (NAN,), {}, ValueError, "GradientReversal: scale"),
    (GradientReversal, (INF,), {}, ValueError, "GradientReversal: scale"),
    (GradientReversal, ("1",), {}, TypeError, "GradientReversal: scale"),
    (ganin_schedule, (0.5,), {"gamma": -1.0}, ValueError, "ganin_schedule: gamma"),
    (ganin_schedule, (0.5,), {"gamma": INF}, ValueError, "ganin_schedule: gamma"),
    (ganin_schedule, (0.5,), {"gamma": NAN}, ValueError, "ganin_schedule: gamma"),
    (ganin_schedule, (1.5,), {}, ValueError, "ganin_schedule: progress"),
]


def _id(case) -> str:
    owner, args, kwargs, err, _ = case
    given = ", ".join([*(repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    return f"{owner.__name__}({given})-{err.__name__}"


@pytest.mark.parametrize("case", REFUSED, ids=[_id(c) for c in REFUSED])
def test_bad_arguments_are_refused_at_construction(case):
    owner, args, kwargs, err, message = case
    with pytest.raises(err, match=message):
        owner(*args, **kwargs)


def _step(balancer, n_tasks: int = T) -> None:
    """One mtl_backward on a tiny HardSharing model; every gradient finite."""
    torch.manual_seed(0)
    model = HardSharing(
        nn.Sequential(nn.Linear(5, 7), nn.Tanh()),
        {f"t{i}": nn.Linear(7, 1) for i in range(n_tasks)},
    )
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(11, 5, generator=g), torch.randn(11, n_tasks, generator=g)
    out = model(x)
    losses = {t: ((out[t][:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(model.task_names)}
    mtl_backward(losses, model, balancer)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


ACCEPTED = [
    *[(c, (T,), {}) for c in COUNTED],
    *[(c, (1,), {}) for c in COUNTED],
    (EqualWeighting, (), {}),
    (GLS, (), {}),
    (StaticWeighting, ([1.0, 0.5, 0.0],), {}),
    (StaticWeighting, ([0, 0, 0],), {}),
    (StaticWeighting, (torch.ones(T),), {}),
    (StaticWeighting, ([_grad(1.0), _grad(2.0), _grad(0.0)],), {}),
    (StaticWeighting, ([torch.tensor([1.0]), torch.tensor(2, dtype=torch.int64), 0.5],), {}),
    (GradNorm, (T,), {"alpha": 0}),
    (GradNorm, (T,), {"shared_params": None}),
    (GradNorm, (T,), {"shared_params": "last"}),
    (DWA, (T,), {"temperature": 0.5, "period": 2}),
    (RLW, (T,), {"seed": 0}),
    (FAMO, (T,), {"gamma": 0, "eps": 1e-300, "min_losses": -1}),
    (FAMO, (T,), {"min_losses": torch.tensor([-1.0, 0.0, -2.0])}),
    (FAMO, (T,), {"min_losses": torch.tensor(-1.0)}),
    (DBMTL, (T,), {"beta": 0.0, "sigma": 0.0, "eps": 1e-300}),
    (DBMTL, (T,), {"beta": 0.99, "sigma": 1.5}),
    (MGDA, (), {}),
    (MGDA, (), {"max_exact": 0, "n_iter": 1}),
    (CAGrad, (), {}),
    (CAGrad, (), {"c": 0, "max_exact": 0}),
    (UPGrad, (), {}),
    (UPGrad, (), {"reg_eps": 0, "max_exact": 0, "n_iter": 1}),
    (UPGrad, (), {"reg_eps": 1e-4}),
    (NashMTL, (), {}),
    (NashMTL, (), {"update_every": 2, "n_iter": 1, "n_iter_warm": 1, "max_norm": 1.0}),
    (PCGrad, (), {}),
    (PCGrad, (), {"seed": 5, "deterministic": True}),
    (GradVac, (), {}),
    (GradVac, (), {"beta": 1.0, "eps": 0.0, "seed": 3}),
    (GradDrop, (), {}),
    (GradDrop, (), {"leak": torch.tensor([0.0, 0.5, 1.0]), "marginalize_batch": False}),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[_id((*c, ValueError, ""))[:-11] for c in ACCEPTED])
def test_defaults_and_edge_values_construct_and_step(case):
    owner, args, kwargs = case
    n_tasks = args[0] if args and isinstance(args[0], int) else T
    _step(owner(*args, **kwargs), n_tasks)


def test_static_weights_given_as_tensors_that_require_grad_are_constants():
    """A list of 0-d tensors that require grad was refused ('a sequence of real numbers'),
    numpy unable to read them; their values are the weights, and no gradient reaches them."""
    given = [_grad(1.0), _grad(2.0), torch.tensor([0.5], dtype=torch.bfloat16)]
    weighting = StaticWeighting(given)
    torch.testing.assert_close(weighting.weights(), torch.tensor([1.0, 2.0, 0.5]))
    assert not weighting.task_weights.requires_grad
    losses = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
    total = weighting(losses)
    total.backward()
    assert total.item() == 6.0
    torch.testing.assert_close(losses.grad, torch.tensor([1.0, 2.0, 0.5]))
    assert given[0].grad is None and given[1].grad is None


@pytest.mark.parametrize("host", [True, False], ids=["host", "torch"])
@pytest.mark.parametrize("floors", [-1.0, torch.tensor([-1.0, 0.0, 0.5])], ids=["one", "per-task"])
def test_a_loss_at_its_floor_is_finite_with_the_default_eps(floors, host):
    """``log(l - b + eps)``: FAMO's loss equal to its ``min_losses``, DB-MTL's zero loss (a task
    without labels in the batch) give ``log(eps)``, a finite objective and gradient (eps = 0,
    refused above, gave -inf and a NaN or inf step; FAMO's host path, which formed
    ``l - (b - eps)`` with ``b - eps`` rounded to ``b`` in float32, gave -inf at ``b = -1``)."""
    famo = FAMO(T, min_losses=floors)
    famo._host = host  # the CPU's host path (the default there), or a device's torch path
    for _ in range(2):  # the second call also updates the logits with log(eps)
        losses = (torch.zeros(T) + floors).requires_grad_()
        total = famo(losses)
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(losses.grad).all()
        assert torch.isfinite(famo.logits).all()
    dbmtl = DBMTL(T)
    losses = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    dbmtl.observe(losses.detach(), torch.ones(T, 4))
    total = dbmtl(losses)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(losses.grad).all()
    assert torch.isfinite(dbmtl.shared_gradient(losses, torch.ones(T, 4))).all()


def test_gradient_reversal_edges():
    assert GradientReversal().scale == 1.0
    layer = GradientReversal(0)
    x = torch.ones(3, requires_grad=True)
    layer(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros(3))
    layer.scale = 0.25  # the attribute is checked too (a schedule sets it)
    with pytest.raises(ValueError, match="GradientReversal: scale"):
        layer.scale = NAN
    assert layer.scale == 0.25
    assert ganin_schedule(0.5, gamma=0) == 0.0
    assert ganin_schedule(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
