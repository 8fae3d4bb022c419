"""Multi-task attention network (Liu, Johns & Davison, CVPR 2019) for features and sequences."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..._params import check_int
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition, parameters_of


def _attention(in_dim: int, out_dim: int) -> nn.Sequential:
    # MTAN's g: two 1x1 convolutions with a sigmoid; on features, two linear maps.
    return nn.Sequential(
        nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim), nn.Sigmoid()
    )


class MTAN(MultiTaskModule):
    r"""A shared network with one soft-attention module per task and per layer.

    The shared layers produce :math:`p^{(j)}`. Task ``t`` keeps its own attended
    features :math:`\hat a_t^{(j)} = a_t^{(j)} \odot p^{(j)}` with masks

    .. math::
        a_t^{(1)} = g_t^{(1)}\big(p^{(1)}\big), \qquad
        a_t^{(j)} = g_t^{(j)}\big([\,p^{(j)};\ \hat a_t^{(j-1)}\,]\big),

    where :math:`g` is Linear-ReLU-Linear-sigmoid (the paper's
    1x1conv-BN-ReLU-1x1conv-BN-sigmoid acting on channels), and task ``t``
    predicts :math:`h_t(\hat a_t^{(J)})` (Sec. 3.1, Eq. 1 of the paper).

    Adaptation to non-image features: the attention acts on the *last*
    dimension; all leading dimensions (batch, sequence positions, tokens) are
    kept, so every layer must map ``(..., d_{j-1})`` to ``(..., d_j)`` with the
    same leading shape (linear layers, recurrent layers returning their outputs,
    Transformer encoder layers). The paper's resolution-matching convolution
    :math:`f` is not needed since only the feature width changes, and the
    concatenation with the previous attended features is done along the
    feature dimension.

    Parameters
    ----------
    layers : sequence of nn.Module
        Shared layers.
    dims : sequence of int
        Output feature width ``d_j`` of each layer.
    heads : dict of str to nn.Module

    References
    ----------
    Liu, S., Johns, E., Davison, A. J. "End-to-End Multi-Task Learning with
    Attention." CVPR 2019, Sec. 3.1 and Eq. (1).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import MTAN
    >>> model = MTAN(
    ...     [nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 6)],
    ...     dims=[8, 6],
    ...     heads={"a": nn.Linear(6, 1), "b": nn.Linear(6, 2)},
    ... )
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 2)}

    Each task has one attention module per layer; from the second on it reads
    ``[p^(j); a_hat^(j-1)]``, here 6 + 8 features:

    >>> [block[0].in_features for block in model.attention["a"]]
    [8, 14]
    >>> sum(p.numel() for p in model.shared_parameters())  # the shared layers: 40 + 54
    94
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        dims: Sequence[int],
        heads: Mapping[str, nn.Module],
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        layers = check_layers(layers)
        if len(dims) != len(layers):
            raise ValueError(
                f"dims has {len(dims)} entries for {len(layers)} layers; give one per layer"
            )
        self.dims = tuple(check_int(d, f"dims[{j}]", "MTAN", low=1) for j, d in enumerate(dims))
        self.layers = nn.ModuleList(layers)
        self.attention = nn.ModuleDict(
            {
                t: nn.ModuleList(
                    _attention(d if j == 0 else d + self.dims[j - 1], d)
                    for j, d in enumerate(self.dims)
                )
                for t in self.task_names
            }
        )
        self.heads = nn.ModuleDict(heads)
        check_partition(self)  # one module given for two roles

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        attended: dict[str, Tensor] = {}
        h = x
        for j, layer in enumerate(self.layers):
            h = layer(h)  # (..., d_j)
            if h.shape[-1] != self.dims[j]:
                raise ValueError(f"layer {j} outputs width {h.shape[-1]}, dims[{j}]={self.dims[j]}")
            for t in self.task_names:
                gate_in = h if j == 0 else torch.cat([h, attended[t]], dim=-1)
                attended[t] = self.attention[t][j](gate_in) * h
        return {t: self.heads[t](attended[t]) for t in self.task_names}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.layers.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([self.attention[task], self.heads[task]])
