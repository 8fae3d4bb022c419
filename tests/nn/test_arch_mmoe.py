import torch
from torch import nn

from multitask.nn.architectures.mmoe import MMoE


def _model(n_experts=3):
    torch.manual_seed(0)
    experts = [nn.Sequential(nn.Linear(4, 5), nn.ReLU()) for _ in range(n_experts)]
    return MMoE(experts, {"a": nn.Linear(5, 1), "b": nn.Linear(5, 2)}, input_dim=4)


def test_gates_sum_to_one_and_output_is_the_gated_mixture():
    model = _model()
    x = torch.randn(9, 4)
    out = model(x)
    experts = torch.stack([e(x) for e in model.experts], 1)  # (B, E, 5)
    for t in ("a", "b"):
        gates = model.last_gates[t]
        torch.testing.assert_close(gates.sum(1), torch.ones(9))
        assert (gates > 0).all()
        manual = torch.softmax(model.gates[t](x), -1)
        torch.testing.assert_close(gates, manual)
        mixed = (manual[:, :, None] * experts).sum(1)
        torch.testing.assert_close(out[t], model.heads[t](mixed))


def test_one_expert_is_hard_sharing():
    model = _model(n_experts=1)
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x)["a"], model.heads["a"](model.experts[0](x)))


def test_gate_parameters_belong_to_their_task():
    model = _model()
    ids = {id(p) for p in model.task_parameters("a")}
    assert id(model.gates["a"].weight) in ids and id(model.gates["b"].weight) not in ids
