"""The shared / task-owned partition of the architectures, and what ``mtl_backward`` writes.

Every parameter is shared or belongs to exactly one task. The oracle is plain autograd: the
per-task gradients ``g_t`` of each parameter, against which a shared parameter's ``.grad``
must be ``w_a g_a + w_b g_b`` (MGDA's weights ``w``) and a task's own parameter's the
derivative of ``sum_t L_t``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import MGDA
from multitask.nn.architectures import (
    CGC,
    MTAN,
    PLE,
    CrossStitch,
    DeepRelationshipNetwork,
    FullyAdaptiveSharing,
    HardSharing,
    JointManyTask,
    LowSupervision,
    MMoE,
    MultiTaskModule,
    Sluice,
    SoftSharing,
    TensorFactorized,
)

D = 4


def _data(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), {t: torch.randn(n, 1, generator=g) for t in "ab"}


def _losses(model, x, y):
    out = model(x)
    return {t: nn.functional.mse_loss(out[t], y[t]) for t in model.task_names}


def _task_grads(model, x, y, params):
    """``{task: [d L_task / d p for p in params]}`` by plain autograd (zeros where unused)."""
    losses = _losses(model, x, y)
    return {
        t: torch.autograd.grad(losses[t], params, retain_graph=True, materialize_grads=True)
        for t in model.task_names
    }


def _ids(params):
    return {id(p) for p in params}


# --- 1. a parameter listed as shared and as a task's own gets the shared update alone


def test_a_block_tied_across_low_supervision_depths_is_shared_and_gets_mgda_direction():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(D, D), nn.Tanh())
    heads = {"a": nn.Linear(D, 1), "b": nn.Linear(D, 1)}
    model = LowSupervision([block, block], heads, {"a": 1, "b": 2})
    shared = list(model.shared_parameters())
    assert _ids(block.parameters()) == _ids(shared)
    for t in "ab":  # the block reaches both tasks: no task owns it, each owns its head
        assert _ids(model.task_parameters(t)) == _ids(heads[t].parameters())
    x, y = _data()
    g = _task_grads(model, x, y, shared + list(heads["a"].parameters()))
    info = mtl_backward(_losses(model, x, y), model, MGDA())
    w = info.weights
    assert 0.05 < w[0] < 0.95  # a real trade-off, so that w g differs from g_a + g_b
    for i, p in enumerate(shared):  # (was w_a g_a + w_b g_b + g_a + g_b)
        torch.testing.assert_close(p.grad, w[0] * g["a"][i] + w[1] * g["b"][i])
    for i, p in enumerate(heads["a"].parameters(), start=len(shared)):
        torch.testing.assert_close(p.grad, g["a"][i])


class _ListedTwice(MultiTaskModule):
    """A model of one's own whose task ``b`` also lists the shared trunk."""

    task_names = ("a", "b")

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(D, D), nn.Tanh())
        self.heads = nn.ModuleDict({t: nn.Linear(D, 1) for t in self.task_names})

    def forward(self, x):
        self.representation = self.trunk(x)
        return {t: self.heads[t](self.representation) for t in self.task_names}

    def shared_parameters(self):
        return self.trunk.parameters()

    def task_parameters(self, task):
        if task == "b":
            return [*self.heads[task].parameters(), *self.trunk.parameters()]
        return self.heads[task].parameters()


@pytest.mark.parametrize("use_representation", [False, True])
def test_mtl_backward_gives_a_parameter_listed_as_shared_and_owned_the_shared_update(
    use_representation,
):
    torch.manual_seed(1)
    model = _ListedTwice()
    shared = list(model.trunk.parameters())
    x, y = _data(1)
    g = _task_grads(model, x, y, shared)
    info = mtl_backward(_losses(model, x, y), model, MGDA(), use_representation=use_representation)
    w = info.weights
    for i, p in enumerate(shared):
        torch.testing.assert_close(p.grad, w[0] * g["a"][i] + w[1] * g["b"][i])


# --- 2. one module given for two roles is refused at construction


def _lin():
    return nn.Linear(D, D)


def _mlp():
    return nn.Sequential(nn.Linear(D, D), nn.Tanh())


def _same_head_for_two_tasks():
    common = _lin()
    return {"a": common, "b": common, "c": _lin()}


def _builders():
    """``(id, constructor call)`` of every architecture given one module for two roles."""
    trunk = _lin()
    expert = _mlp()
    yield "hard_sharing_common_head", lambda: HardSharing(_lin(), _same_head_for_two_tasks())
    yield "hard_sharing_trunk_is_head", lambda: HardSharing(trunk, {"a": trunk, "b": _lin()})
    tied = nn.Sequential(trunk, nn.Linear(D, 1))  # a head that registers the trunk
    yield "hard_sharing_head_holds_trunk", lambda: HardSharing(trunk, {"a": tied, "b": _lin()})
    yield "soft_sharing_one_network", lambda: SoftSharing({"a": trunk, "b": trunk})
    yield "soft_sharing_list", lambda: SoftSharing([trunk, trunk], task_names=["a", "b"])
    heads = _same_head_for_two_tasks
    yield "cross_stitch", lambda: CrossStitch([_mlp()], heads())
    yield "sluice", lambda: Sluice([_mlp()], heads())
    yield "low_supervision", lambda: LowSupervision([_mlp()], heads(), dict.fromkeys("abc", 1))
    yield "mmoe", lambda: MMoE([_mlp(), _mlp()], heads(), D)
    yield "mmoe_head_is_expert", lambda: MMoE([expert, _mlp()], {"a": expert, "b": _lin()}, D)
    yield "mtan", lambda: MTAN([_mlp()], [D], heads())
    yield "fully_adaptive", lambda: FullyAdaptiveSharing([_mlp()], heads())
    yield "relationship", lambda: DeepRelationshipNetwork(_mlp(), heads())
    yield "tensor_factorized", lambda: TensorFactorized(_mlp(), [D, D], heads(), ranks=2)
    yield (
        "joint_many_task",
        lambda: JointManyTask([_mlp(), nn.Linear(2 * D, D)], {"a": trunk, "b": trunk}, {}, 2),
    )
    own = {t: [_mlp()] for t in "abc"}
    yield "cgc", lambda: CGC([_mlp()], own, heads(), D)
    yield (
        "cgc_common_task_expert",
        lambda: CGC(
            [_mlp()],
            {"a": [expert], "b": [expert]},
            {
                "a": _lin(),
                "b": _lin(),
            },
            D,
        ),
    )
    yield (
        "ple_head_is_shared_expert",
        lambda: PLE([[expert]], {t: [[_mlp()]] for t in "ab"}, {"a": expert, "b": _lin()}, [D]),
    )


@pytest.mark.parametrize(("name", "build"), list(_builders()), ids=[n for n, _ in _builders()])
def test_a_module_given_for_two_roles_is_refused_naming_the_parameter_and_tasks(name, build):
    with pytest.raises(ValueError, match=r"parameter '.*(weight|bias)'.* and also to task '[ab]'"):
        build()


def test_distinct_modules_are_accepted():
    heads = {t: _lin() for t in "ab"}
    model = HardSharing(_lin(), {t: copy.deepcopy(heads["a"]) for t in "ab"})
    assert not _ids(model.task_parameters("a")) & _ids(model.task_parameters("b"))
    SoftSharing(_lin(), task_names=["a", "b"])  # a template is copied per task


# --- 3. cross-stitch and sluice columns: task-owned, the derivative of the summed losses


@pytest.mark.parametrize("cls", [CrossStitch, Sluice])
def test_columns_get_the_summed_gradient_and_mgda_balances_the_stitch_units(cls):
    torch.manual_seed(2)
    heads = {t: nn.Linear(2 * D, 1) for t in "ab"}
    model = cls([nn.Sequential(nn.Linear(D, 2 * D), nn.Tanh())], heads)
    shared = list(model.shared_parameters())
    column = list(model.columns["a"].parameters())
    assert _ids(column) <= _ids(model.task_parameters("a"))
    assert not _ids(column) & _ids(shared)
    x, y = _data(2)
    g = _task_grads(model, x, y, shared + column)
    assert all(gb.abs().max() > 1e-4 for gb in g["b"][len(shared) :])  # b reads column a
    info = mtl_backward(_losses(model, x, y), model, MGDA())
    w = info.weights
    for i, p in enumerate(shared):  # the units (alpha; sluice's beta): MGDA's direction
        torch.testing.assert_close(p.grad, w[0] * g["a"][i] + w[1] * g["b"][i])
    for i, p in enumerate(column, start=len(shared)):  # by design: d (L_a + L_b) / d column
        torch.testing.assert_close(p.grad, g["a"][i] + g["b"][i])


# --- 4. SoftSharing's task names


@pytest.mark.parametrize(
    ("networks", "task_names", "error", "match"),
    [
        ([_lin(), _lin(), _lin()], ["a", "a", "b"], ValueError, "more than once: \\['a'\\]"),
        (_lin(), ["a", "b", "a"], ValueError, "more than once"),
        (_lin(), "price", TypeError, "not the string 'price'"),
        ({"a": _lin(), "b": _lin()}, ["x", "y"], ValueError, "differ from the keys"),
        ({"a": _lin(), "b": _lin()}, ["b", "a"], ValueError, "differ from the keys"),
    ],
    ids=["list_repeated", "template_repeated", "string", "dict_other_names", "dict_reordered"],
)
def test_soft_sharing_refuses_task_names_that_drop_or_misread_networks(
    networks, task_names, error, match
):
    with pytest.raises(error, match=match):
        SoftSharing(networks, task_names=task_names)


def test_soft_sharing_accepts_a_dict_with_its_own_keys_as_task_names():
    nets = {"a": _lin(), "b": _lin()}
    assert SoftSharing(nets, task_names=["a", "b"]).task_names == ("a", "b")


# --- 5. mtl_backward's static task weights


def _plain_model():
    torch.manual_seed(3)
    return HardSharing(_lin(), {t: nn.Linear(D, 1) for t in "ab"})


def test_task_weights_naming_an_unknown_task_are_refused_as_losses_are():
    model = _plain_model()
    x, y = _data(3)
    with pytest.raises(KeyError, match=r"task_weights names unknown tasks \['c'\]"):
        mtl_backward(_losses(model, x, y), model, task_weights={"a": 1.0, "b": 1.0, "c": 2.0})
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
@pytest.mark.parametrize("form", ["dict", "list", "tensor"])
def test_task_weights_must_be_finite_and_non_negative(bad, form):
    model = _plain_model()
    x, y = _data(3)
    values = [1.0, bad]
    weights = {
        "dict": dict(zip("ab", values, strict=True)),
        "list": values,
        "tensor": torch.tensor(values),
    }[form]
    with pytest.raises(ValueError, match=r"task_weights\['b'\] must be a finite number >= 0"):
        mtl_backward(_losses(model, x, y), model, task_weights=weights)
    assert all(p.grad is None for p in model.parameters())


def test_zero_task_weight_is_accepted():
    model = _plain_model()
    x, y = _data(3)
    info = mtl_backward(_losses(model, x, y), model, task_weights={"a": 1.0, "b": 0.0})
    torch.testing.assert_close(info.loss, info.losses[0])
