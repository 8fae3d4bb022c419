"""Multi-gate mixture-of-experts (Ma et al., KDD 2018)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..._params import check_int
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition, gated_sum, parameters_of


class MMoE(MultiTaskModule):
    r"""Shared experts, one softmax gate per task.

    .. math:: y_t = h_t\Big(\sum_{i=1}^{n} g_t(x)_i\, f_i(x)\Big), \qquad
              g_t(x) = \mathrm{softmax}(W_{g_t} x)

    (Eqs. 5-6 of the paper). The experts are any modules mapping the input to
    tensors of one common shape ``(batch, ...)``; the gates are linear maps of the
    flattened input of width ``input_dim``.

    Parameters
    ----------
    experts : sequence of nn.Module
    heads : dict of str to nn.Module
    input_dim : int
        Number of features of the flattened input ``x.reshape(batch, -1)`` (gate input).

    Attributes
    ----------
    last_gates : dict of str to Tensor of shape (batch, n_experts)
        Gate outputs of the last forward (rows sum to one), for inspection.

    References
    ----------
    Ma, J., Zhao, Z., Yi, X., Chen, J., Hong, L., Chi, E. H. "Modeling Task
    Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts."
    KDD 2018, Eqs. (5)-(6).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import MMoE
    >>> experts = [nn.Linear(4, 8) for _ in range(3)]
    >>> model = MMoE(experts, {"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)}, input_dim=4)
    >>> out = model(torch.randn(5, 4))
    >>> {task: tuple(y.shape) for task, y in out.items()}
    {'a': (5, 1), 'b': (5, 2)}
    >>> gates = model.last_gates["a"]  # (batch, n_experts), each row on the simplex
    >>> tuple(gates.shape), torch.allclose(gates.sum(1), torch.ones(5))
    ((5, 3), True)
    """

    def __init__(
        self,
        experts: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        input_dim: int,
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        input_dim = check_int(input_dim, "input_dim", "MMoE", low=1)
        self.experts = nn.ModuleList(check_layers(experts, "experts"))
        self.gates = nn.ModuleDict(
            {t: nn.Linear(input_dim, len(self.experts)) for t in self.task_names}
        )
        self.heads = nn.ModuleDict(heads)
        self.input_dim = input_dim
        self.last_gates: dict[str, Tensor] = {}
        check_partition(self)  # one module given for two roles

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.input_dim:
            raise ValueError(
                f"MMoE gates expect {self.input_dim} input features, got {flat.shape[1]} "
                f"(input shape {tuple(x.shape)}); pass input_dim={flat.shape[1]}"
            )
        expert_out = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, ...)
        outputs = {}
        for t in self.task_names:
            mixed, gates = gated_sum(self.gates[t](flat), expert_out)
            self.last_gates[t] = gates.detach()
            outputs[t] = self.heads[t](mixed)
        return outputs

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.experts.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([self.gates[task], self.heads[task]])
