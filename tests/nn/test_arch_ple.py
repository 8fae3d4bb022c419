import torch
from torch import nn

from multitask.nn.architectures.ple import CGC, PLE

TASKS = ("a", "b")


def _mlp(i, o):
    return nn.Sequential(nn.Linear(i, o), nn.ReLU())


def _ple():
    torch.manual_seed(0)
    shared = [[_mlp(4, 6), _mlp(4, 6)], [_mlp(6, 6)]]
    own = {t: [[_mlp(4, 6)], [_mlp(6, 6), _mlp(6, 6)]] for t in TASKS}
    return PLE(shared, own, {t: nn.Linear(6, 1) for t in TASKS}, [4, 6])


def test_gate_members():
    model = _ple()
    first = model.gate_members(0)
    assert first["a"] == ["a:0", "<shared>:0", "<shared>:1"]
    assert first["<shared>"] == ["a:0", "b:0", "<shared>:0", "<shared>:1"]
    last = model.gate_members(1)
    assert last["b"] == ["b:0", "b:1", "<shared>:0"] and "<shared>" not in last


def test_gates_see_exactly_their_experts():
    """Task gates depend on own + shared experts only; the shared gate on every expert."""
    model = _ple()
    x = torch.randn(5, 4)
    model(x)
    gates = model.last_gates
    assert gates[(0, "a")].shape == (5, 3) and gates[(0, "<shared>")].shape == (5, 4)
    assert not any(g.requires_grad for g in gates.values())  # (as MMoE's: no graph kept)
    torch.testing.assert_close(gates[(0, "<shared>")].sum(1), torch.ones(5))
    # level-0 gate outputs, recomputed by hand
    e = {t: model.task_experts[t][0][0](x) for t in TASKS}
    s = [m(x) for m in model.shared_experts[0]]
    wa = torch.softmax(model.task_gates["a"][0](x), -1)
    mixed_a = wa[:, 0:1] * e["a"] + wa[:, 1:2] * s[0] + wa[:, 2:3] * s[1]
    ws = torch.softmax(model.shared_gates[0](x), -1)
    mixed_s = ws[:, 0:1] * e["a"] + ws[:, 1:2] * e["b"] + ws[:, 2:3] * s[0] + ws[:, 3:4] * s[1]
    # last level of task a: own experts read mixed_a, the shared expert reads mixed_s
    own = [m(mixed_a) for m in model.task_experts["a"][1]]
    shared = model.shared_experts[1][0](mixed_s)
    w = torch.softmax(model.task_gates["a"][1](mixed_a), -1)
    y = w[:, 0:1] * own[0] + w[:, 1:2] * own[1] + w[:, 2:3] * shared
    torch.testing.assert_close(model(x)["a"], model.heads["a"](y))


def test_other_task_experts_reach_a_task_only_through_the_shared_gate():
    model = _ple()
    x = torch.randn(5, 4)
    base = model(x)["a"]
    with torch.no_grad():  # task b's last-level experts: not in a's gate, no shared gate above
        model.task_experts["b"][1][0][0].weight.add_(1.0)
    torch.testing.assert_close(model(x)["a"], base)
    with torch.no_grad():  # task b's level-0 expert feeds the level-0 shared gate
        model.task_experts["b"][0][0][0].weight.add_(1.0)
    assert not torch.allclose(model(x)["a"], base)


def test_cgc_is_one_level_with_own_and_shared_experts():
    torch.manual_seed(0)
    model = CGC(
        [_mlp(4, 6)], {t: [_mlp(4, 6)] for t in TASKS}, {t: nn.Linear(6, 1) for t in TASKS}, 4
    )
    x = torch.randn(3, 4)
    out = model(x)
    w = torch.softmax(model.task_gates["a"][0](x), -1)
    y = w[:, :1] * model.task_experts["a"][0][0](x) + w[:, 1:] * model.shared_experts[0][0](x)
    torch.testing.assert_close(out["a"], model.heads["a"](y))
    assert model.shared_gates.__len__() == 0
    assert {id(p) for p in model.task_experts["b"].parameters()} <= {
        id(p) for p in model.task_parameters("b")
    }
