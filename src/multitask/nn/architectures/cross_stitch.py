"""Cross-stitch networks (Misra et al., CVPR 2016)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..._params import check_int, check_real
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition, columns, mix_init, parameters_of


class CrossStitch(MultiTaskModule):
    r"""One network column per task, linearly mixed by learnable cross-stitch units.

    Every task gets its own deep copy of ``layers``. After each layer listed in
    ``stitch_after``, the activations of the columns are mixed,

    .. math:: \tilde x^{t} = \sum_{s=1}^{T} \alpha_{ts}\, x^{s},

    which for two tasks is Eq. (1) of the paper. The units are initialised as in
    the paper (Sec. 4): :math:`\alpha_{tt} = 0.9`, :math:`\alpha_{ts} = 0.1/(T-1)`
    (rows sum to one), never all ones. The mixing acts on whole activation
    tensors, so any layer stack works: MLP, CNN, RNN (a layer returning a
    tensor), Transformer blocks.

    Parameters
    ----------
    layers : sequence of nn.Module
        The layers of one column (copied once per task; the originals are not used).
    heads : dict of str to nn.Module
        Output head of each task, applied to that task's last activation.
    stitch_after : sequence of int, optional
        Indices (0-based) of the layers followed by a cross-stitch unit.
        Default: every layer.
    self_weight : float, default=0.9
        Initial diagonal of every unit (the off-diagonal gets ``(1 - self_weight) / (T - 1)``),
        in ``[0, 1]`` (the rows sum to one with no negative weight).

    Attributes
    ----------
    alphas : nn.ParameterDict
        ``alphas[str(i)]`` of shape ``(n_tasks, n_tasks)`` is the unit after layer ``i``.

    Notes
    -----
    Shared parameters are the cross-stitch units (they couple the tasks); each
    task owns its column and head. With every unit equal to the identity the model
    is exactly ``T`` independent networks.

    The columns are task-owned by design, although through the units a column
    changes the other tasks' outputs too: the paper trains the whole network on
    the plain sum of the task losses, so under a gradient aggregator (MGDA,
    PCGrad, ...) :func:`~multitask.nn.mtl_backward` gives a column the full
    derivative of ``sum_t L_t`` (its task's gradient plus the other tasks'
    through the units), and the aggregator balances the units alone. A loss
    weighting weighs every parameter, columns included. For an aggregator over
    the columns too, list them as shared in a subclass (a Jacobian ``T`` times
    wider).

    References
    ----------
    Misra, I., Shrivastava, A., Gupta, A., Hebert, M. "Cross-stitch Networks for
    Multi-task Learning." CVPR 2016, Eq. (1) and Sec. 4 (initialisation).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import CrossStitch
    >>> layers = [nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 8)]
    >>> model = CrossStitch(layers, {"a": nn.Linear(8, 1), "b": nn.Linear(8, 1)})
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 1)}
    >>> sorted(model.alphas)  # a unit after every layer
    ['0', '1']
    >>> model.alphas["0"].detach()  # the paper's initialisation
    tensor([[0.9000, 0.1000],
            [0.1000, 0.9000]])
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        stitch_after: Sequence[int] | None = None,
        self_weight: float = 0.9,
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        layers = check_layers(layers)
        n_layers = len(layers)
        stitch_after = list(range(n_layers)) if stitch_after is None else list(stitch_after)
        stitch_after = [check_int(i, "stitch_after", "CrossStitch") for i in stitch_after]
        self_weight = check_real(self_weight, "self_weight", "CrossStitch", low=0.0, high=1.0)
        bad = [i for i in stitch_after if not 0 <= i < n_layers]
        if bad:
            raise ValueError(f"stitch_after indices {bad} are outside [0, {n_layers - 1}]")
        self.stitch_after = tuple(sorted(set(stitch_after)))
        self.columns = columns(layers, self.task_names)
        self.heads = nn.ModuleDict(heads)
        n_tasks = len(self.task_names)
        self.alphas = nn.ParameterDict(
            {str(i): nn.Parameter(mix_init(n_tasks, self_weight)) for i in self.stitch_after}
        )
        check_partition(self)  # one module given for two roles

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        hs = [x for _ in self.task_names]
        n_layers = len(self.columns[self.task_names[0]])
        for i in range(n_layers):
            hs = [self.columns[t][i](h) for t, h in zip(self.task_names, hs, strict=True)]
            if i in self.stitch_after:
                stacked = torch.stack(hs)  # (T, *activation_shape)
                mixed = torch.tensordot(self.alphas[str(i)], stacked, dims=1)  # (T, ...)
                hs = list(mixed.unbind(0))
        return {t: self.heads[t](h) for t, h in zip(self.task_names, hs, strict=True)}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(self.alphas.values())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([self.columns[task], self.heads[task]])
