"""Customized gate control (CGC) and progressive layered extraction (PLE), RecSys 2020."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..._params import check_int
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition, gated_sum, parameters_of


class PLE(MultiTaskModule):
    r"""Progressive layered extraction: stacked levels of task-specific and shared experts.

    At level :math:`k` every task :math:`t` has its experts :math:`E_{t,k}` and
    all tasks share :math:`E_{s,k}`. Task ``t``'s gate mixes only its own and the
    shared experts; in every level but the last, a shared gate mixes *all* experts
    (every task's and the shared ones) into the input of the next level's shared
    experts (Eqs. 2-5 and Fig. 5 of the paper):

    .. math::
        g_t^k(x) = w_t^k(g_t^{k-1}) \, [E_{t,k}; E_{s,k}]\,(g_t^{k-1}), \qquad
        g_s^k(x) = w_s^k(g_s^{k-1}) \, [E_{1,k}; \dots; E_{T,k}; E_{s,k}],

    with :math:`w = \mathrm{softmax}(W x)` and :math:`g^0 = x`; task ``t``
    predicts :math:`h_t(g_t^{K})`. All experts of a level must output tensors of
    one shape.

    Parameters
    ----------
    shared_experts : sequence (levels) of sequences of nn.Module
    task_experts : dict of str to sequence (levels) of sequences of nn.Module
    heads : dict of str to nn.Module
    input_dims : sequence of int
        Flattened width of the input of each level (``input_dims[0]``: of ``x``;
        then of the previous level's expert outputs); used by the linear gates.

    Attributes
    ----------
    last_gates : dict of (int, str) to Tensor of shape (batch, n_gate_experts)
        Gate weights of the last forward, keyed by (level, task name or ``"<shared>"``).

    Notes
    -----
    A parameter is shared when it can change more than one task's output: the
    shared experts and gates, and the task experts (and gates below them) that
    feed an intermediate shared gate. The last level's task experts and gates
    belong to their task.

    References
    ----------
    Tang, H., Liu, J., Zhao, M., Gong, X. "Progressive Layered Extraction (PLE):
    A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations."
    RecSys 2020, Sec. 5.2-5.3, Eqs. (2)-(5).

    Examples
    --------
    Two levels, one expert per task and one shared expert in each:

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import PLE
    >>> model = PLE(
    ...     shared_experts=[[nn.Linear(4, 8)], [nn.Linear(8, 8)]],
    ...     task_experts={t: [[nn.Linear(4, 8)], [nn.Linear(8, 8)]] for t in ("a", "b")},
    ...     heads={"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)},
    ...     input_dims=[4, 8],
    ... )
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 2)}
    >>> model.gate_members(0)["<shared>"]  # below the top, a shared gate mixes every expert
    ['a:0', 'b:0', '<shared>:0']
    >>> model.gate_members(1)  # the last level has task gates only
    {'a': ['a:0', '<shared>:0'], 'b': ['b:0', '<shared>:0']}
    >>> sorted(model.last_gates)
    [(0, '<shared>'), (0, 'a'), (0, 'b'), (1, 'a'), (1, 'b')]
    """

    SHARED = "<shared>"

    def __init__(
        self,
        shared_experts: Sequence[Sequence[nn.Module]],
        task_experts: Mapping[str, Sequence[Sequence[nn.Module]]],
        heads: Mapping[str, nn.Module],
        input_dims: Sequence[int],
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        n_levels = len(shared_experts)
        if n_levels == 0 or len(input_dims) != n_levels:
            raise ValueError(
                f"need one input_dims entry per level: {n_levels} levels of shared experts, "
                f"{len(input_dims)} input_dims"
            )
        if set(task_experts) != set(self.task_names):
            raise ValueError(
                f"task_experts has tasks {sorted(task_experts)}, heads has {list(self.task_names)}"
            )
        for t, levels in task_experts.items():
            if len(levels) != n_levels:
                raise ValueError(
                    f"task {t!r} has {len(levels)} levels of experts, expected {n_levels}"
                )
        self.n_levels = n_levels
        owner = type(self).__name__  # PLE, or CGC (one level)
        what = "input_dim" if owner == "CGC" else "input_dims[{k}]"
        self.input_dims = tuple(
            check_int(d, what.format(k=k), owner, low=1) for k, d in enumerate(input_dims)
        )
        self.shared_experts = nn.ModuleList(
            nn.ModuleList(check_layers(lv, f"shared_experts[{k}]"))
            for k, lv in enumerate(shared_experts)
        )
        self.task_experts = nn.ModuleDict(
            {
                t: nn.ModuleList(
                    nn.ModuleList(check_layers(lv, f"task_experts[{t!r}][{k}]"))
                    for k, lv in enumerate(task_experts[t])
                )
                for t in self.task_names
            }
        )
        self.task_gates = nn.ModuleDict(
            {
                t: nn.ModuleList(
                    nn.Linear(
                        self.input_dims[k],
                        len(self.task_experts[t][k]) + len(self.shared_experts[k]),
                    )
                    for k in range(n_levels)
                )
                for t in self.task_names
            }
        )
        self.shared_gates = nn.ModuleList(
            nn.Linear(self.input_dims[k], self._n_all(k)) for k in range(n_levels - 1)
        )
        self.heads = nn.ModuleDict(heads)
        self.last_gates: dict[tuple[int, str], Tensor] = {}
        check_partition(self)  # one module given for two roles

    def _n_all(self, k: int) -> int:
        return sum(len(self.task_experts[t][k]) for t in self.task_names) + len(
            self.shared_experts[k]
        )

    def gate_members(self, level: int) -> dict[str, list[str]]:
        """Experts each gate of ``level`` mixes, in order, as ``"task:i"`` / ``"<shared>:i"``."""
        shared = [f"{self.SHARED}:{i}" for i in range(len(self.shared_experts[level]))]
        own = {
            t: [f"{t}:{i}" for i in range(len(self.task_experts[t][level]))]
            for t in self.task_names
        }
        members = {t: own[t] + shared for t in self.task_names}
        if level < self.n_levels - 1:
            members[self.SHARED] = [e for t in self.task_names for e in own[t]] + shared
        return members

    def _flat(self, h: Tensor, k: int) -> Tensor:
        flat = h.reshape(h.shape[0], -1)
        if flat.shape[1] != self.input_dims[k]:
            raise ValueError(
                f"level {k} gates expect {self.input_dims[k]} input features, got {flat.shape[1]}; "
                f"set input_dims[{k}]={flat.shape[1]}"
            )
        return flat

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        task_in = {t: x for t in self.task_names}
        shared_in = x
        for k in range(self.n_levels):
            shared_out = [e(shared_in) for e in self.shared_experts[k]]
            own_out = {t: [e(task_in[t]) for e in self.task_experts[t][k]] for t in self.task_names}
            new_in = {}
            for t in self.task_names:
                experts = torch.stack(own_out[t] + shared_out, dim=1)  # (B, E_t + E_s, ...)
                gate_logits = self.task_gates[t][k](self._flat(task_in[t], k))
                new_in[t], gates = gated_sum(gate_logits, experts)
                self.last_gates[(k, t)] = gates.detach()  # (kept: the graph of its step would be)
            if k < self.n_levels - 1:
                everything = [o for t in self.task_names for o in own_out[t]] + shared_out
                gate_logits = self.shared_gates[k](self._flat(shared_in, k))
                shared_in, gates = gated_sum(gate_logits, torch.stack(everything, dim=1))
                self.last_gates[(k, self.SHARED)] = gates.detach()
            task_in = new_in
        return {t: self.heads[t](task_in[t]) for t in self.task_names}

    def _task_owned(self, task: str) -> list[nn.Module]:
        last = self.n_levels - 1
        owned = [self.task_experts[task][last], self.task_gates[task][last], self.heads[task]]
        if last >= 1:
            owned.append(self.task_gates[task][last - 1])
        return owned

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        # named, not "all but the owned": a head that is also a shared expert is then listed
        # as both, which check_partition refuses, rather than silently as the task's own
        last = self.n_levels - 1
        below = [self.shared_experts, self.shared_gates]
        for t in self.task_names:  # experts under the last level, gates under the last two
            below += [*self.task_experts[t][:last], *self.task_gates[t][: max(last - 1, 0)]]
        shared = {id(p) for p in parameters_of(below)}
        return (p for p in self.parameters() if id(p) in shared)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of(self._task_owned(task))


class CGC(PLE):
    r"""Customized gate control: one PLE level (task-specific and shared experts, task gates).

    Task ``t`` predicts :math:`h_t\big(w_t(x)\,[E_t; E_s](x)\big)` with
    :math:`w_t(x) = \mathrm{softmax}(W_t x)` (Eqs. 2-3 of the paper).

    Parameters
    ----------
    shared_experts : sequence of nn.Module
    task_experts : dict of str to sequence of nn.Module
    heads : dict of str to nn.Module
    input_dim : int
        Flattened width of ``x`` (gate input).

    References
    ----------
    Tang, H., Liu, J., Zhao, M., Gong, X. "Progressive Layered Extraction (PLE)."
    RecSys 2020, Sec. 5.2, Eqs. (2)-(3).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import CGC
    >>> model = CGC(
    ...     shared_experts=[nn.Linear(4, 8)],
    ...     task_experts={"a": [nn.Linear(4, 8)], "b": [nn.Linear(4, 8), nn.Linear(4, 8)]},
    ...     heads={"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)},
    ...     input_dim=4,
    ... )
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 2)}
    >>> model.gate_members(0)  # each task's gate mixes its own experts and the shared one
    {'a': ['a:0', '<shared>:0'], 'b': ['b:0', 'b:1', '<shared>:0']}
    >>> gates = model.last_gates[0, "b"]  # (batch, 3), each row on the simplex
    >>> tuple(gates.shape), torch.allclose(gates.sum(1), torch.ones(5))
    ((5, 3), True)
    """

    def __init__(
        self,
        shared_experts: Sequence[nn.Module],
        task_experts: Mapping[str, Sequence[nn.Module]],
        heads: Mapping[str, nn.Module],
        input_dim: int,
    ):
        super().__init__(
            [list(shared_experts)],
            {t: [list(e)] for t, e in task_experts.items()},
            heads,
            [input_dim],
        )
