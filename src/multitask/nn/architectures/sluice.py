"""Sluice networks (Ruder, Bingel, Augenstein & Søgaard, AAAI 2019)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..._params import check_bool, check_int, check_real
from ._base import MultiTaskModule
from ._layers import (
    check_heads,
    check_layers,
    check_partition,
    columns,
    flatten_rows,
    mix_init,
    parameters_of,
)


def orthogonality_penalty(g1: Tensor, g2: Tensor, normalize: bool = False) -> Tensor:
    r"""Squared Frobenius norm :math:`\|G_1^\top G_2\|_F^2` of two subspace activations.

    Parameters
    ----------
    g1, g2 : Tensor of shape (..., d1) and (..., d2)
        Activations of two subspaces of one layer (leading dimensions are rows).
    normalize : bool, default=False
        Divide by :math:`n^2`, ``n`` the number of rows: the penalty becomes
        :math:`\|G_1^\top G_2 / n\|_F^2`, the squared norm of the mean outer
        product of the rows, which does not grow with the batch size or (for
        convolution outputs, whose rows are batch x height x width) with the
        spatial size. False is the paper's definition.

    Returns
    -------
    Tensor
        Scalar, zero exactly when every column of ``g1`` is orthogonal to every column of ``g2``.
    """
    g1, g2 = flatten_rows(g1), flatten_rows(g2)
    value = (g1.T @ g2).pow(2).sum()
    return value / g1.shape[0] ** 2 if normalize else value


class Sluice(MultiTaskModule):
    r"""Sluice network: columns whose layer outputs are split into subspaces and mixed.

    Every task has its own deep copy of ``layers``. The output of layer ``k`` of
    task ``m`` is split along its last dimension into ``n_subspaces`` equal
    subspaces :math:`G_{m,k,1}, \dots, G_{m,k,S}`; learnable alpha units of shape
    ``(T S, T S)`` mix all subspaces of all tasks (Eq. 2 of the paper, the
    generalisation of cross-stitch units). Learnable beta units mix, for each
    task, the (mixed) outputs of the layers in ``skip_layers`` into the input of
    its head (Eq. 3, hierarchical skip connections). :meth:`regularization`
    returns the subspace orthogonality penalty of Eq. 4 summed over tasks,
    layers and pairs of subspaces,

    .. math:: \mathcal{L}_c = \sum_{m}\sum_{k}\sum_{a<b} \|G_{m,k,a}^\top G_{m,k,b}\|_F^2,

    computed on the activations of the last :meth:`forward`, times ``orthogonality``
    (each term divided by the squared number of rows when ``normalize``).

    Parameters
    ----------
    layers : sequence of nn.Module
        Layers of one column; every output must have a last dimension divisible
        by ``n_subspaces`` (leading dimensions -- batch, sequence, space -- are rows).
    heads : dict of str to nn.Module
        Head of each task, applied to the beta mixture.
    n_subspaces : int, default=2
    skip_layers : sequence of int, optional
        Layers (0-based) whose outputs the beta units mix; their outputs must
        share one shape. Default: every layer.
    orthogonality : float, default=0.01
        Weight of the orthogonality penalty, finite and >= 0 (0: no penalty).
    feature_dim : int, default=-1
        Dimension of the layer outputs that holds the features (split into
        subspaces): -1 for MLPs, RNNs and Transformers, 1 for ``(batch,
        channels, ...)`` convolution outputs. The other dimensions are rows of
        :math:`G` in the penalty.
    self_weight : float, default=0.9
        Initial diagonal of the alpha units (as cross-stitch; rows sum to one), in ``[0, 1]``.
    normalize : bool, default=False
        Divide each term of the penalty by :math:`n^2`, ``n`` the number of
        rows of :math:`G` (see :func:`orthogonality_penalty`). The paper's
        Eq. 4 is unnormalised (False), which suits its sequence-tagging LSTMs;
        on convolution outputs its rows are batch x height x width, so the
        unnormalised penalty grows with their square and, at a fixed weight,
        dominates the task losses.

    Notes
    -----
    Betas start with all their mass on the last layer of ``skip_layers``, so the
    network starts as the plain stacked model. Shared parameters are the alpha
    and beta units; each task owns its column and head.

    The columns are task-owned by design, although through the alpha units a
    column changes the other tasks' outputs too: the paper trains on the plain
    sum of the task losses (plus the penalty), so under a gradient aggregator
    (MGDA, PCGrad, ...) :func:`~multitask.nn.mtl_backward` gives a column the
    full derivative of ``sum_t L_t`` (its task's gradient plus the other tasks'
    through the alphas), and the aggregator balances the alpha and beta units
    alone. A loss weighting weighs every parameter, columns included.

    References
    ----------
    Ruder, S., Bingel, J., Augenstein, I., Søgaard, A. "Latent Multi-task
    Architecture Learning." AAAI 2019 (arXiv:1705.08142, "sluice networks"),
    Eqs. (2)-(4).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import Sluice
    >>> model = Sluice(
    ...     [nn.Linear(4, 8), nn.Linear(8, 8)],
    ...     {"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)},
    ...     n_subspaces=2,
    ... )
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 2)}
    >>> model.alphas[0].detach()  # (T S, T S): 0.9 on the diagonal, rows summing to one
    tensor([[0.9000, 0.0333, 0.0333, 0.0333],
            [0.0333, 0.9000, 0.0333, 0.0333],
            [0.0333, 0.0333, 0.9000, 0.0333],
            [0.0333, 0.0333, 0.0333, 0.9000]])
    >>> model.betas.detach()  # all mass on the last layer: the plain stacked model
    tensor([[0., 1.],
            [0., 1.]])
    >>> bool(model.regularization() > 0)  # Eq. 4 on the last forward's subspaces
    True

    The penalty of one pair of subspaces vanishes when their columns are orthogonal:

    >>> from multitask.nn.architectures.sluice import orthogonality_penalty
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # rows: examples
    >>> orthogonality_penalty(G[:, :1], G[:, 1:]).item(), orthogonality_penalty(G, G).item()
    (0.0, 2.0)
    """

    # the last forward's subspaces (in its graph, for :meth:`regularization`): not copied
    _forward_state: ClassVar[dict[str, object]] = {
        **MultiTaskModule._forward_state,
        "_subspaces": [],
    }

    def __init__(
        self,
        layers: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        n_subspaces: int = 2,
        skip_layers: Sequence[int] | None = None,
        orthogonality: float = 0.01,
        self_weight: float = 0.9,
        feature_dim: int = -1,
        normalize: bool = False,
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        layers = check_layers(layers)
        n_subspaces = check_int(n_subspaces, "n_subspaces", "Sluice", low=1)
        orthogonality = check_real(orthogonality, "orthogonality", "Sluice", low=0.0)
        self_weight = check_real(self_weight, "self_weight", "Sluice", low=0.0, high=1.0)
        feature_dim = check_int(feature_dim, "feature_dim", "Sluice")
        normalize = check_bool(normalize, "normalize", "Sluice")
        n_layers = len(layers)
        skip = list(range(n_layers)) if skip_layers is None else sorted(set(skip_layers))
        if not skip or any(not 0 <= k < n_layers for k in skip):
            raise ValueError(
                f"skip_layers {skip_layers} must be non-empty within [0, {n_layers - 1}]"
            )
        self.n_subspaces = n_subspaces
        self.skip_layers = tuple(skip)
        self.orthogonality = orthogonality
        self.feature_dim = feature_dim
        self.normalize = normalize
        self.columns = columns(layers, self.task_names)
        self.heads = nn.ModuleDict(heads)
        n_units = len(self.task_names) * n_subspaces
        self.alphas = nn.ParameterList(
            nn.Parameter(mix_init(n_units, self_weight)) for _ in range(n_layers)
        )
        beta = torch.zeros(len(self.task_names), len(skip))
        beta[:, -1] = 1.0
        self.betas = nn.Parameter(beta)  # (T, n_skip)
        self._subspaces: list[list[Tensor]] = []
        check_partition(self)  # one module given for two roles

    def _split(self, h: Tensor) -> list[Tensor]:
        if not -h.dim() <= self.feature_dim < h.dim():
            raise ValueError(
                f"Sluice: feature_dim={self.feature_dim} is not a dimension of a layer output "
                f"of shape {tuple(h.shape)}; pass one in [{-h.dim()}, {h.dim() - 1}]"
            )
        width = h.shape[self.feature_dim]
        if width % self.n_subspaces:
            raise ValueError(
                f"a layer output has {width} features (dimension {self.feature_dim}), not "
                f"divisible by n_subspaces={self.n_subspaces}; change the width or n_subspaces"
            )
        return list(h.chunk(self.n_subspaces, dim=self.feature_dim))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        n_tasks, n_sub = len(self.task_names), self.n_subspaces
        hs = [x] * n_tasks
        kept: list[Tensor] = []
        self._subspaces = []
        for k, alpha in enumerate(self.alphas):
            outs = [self.columns[t][k](h) for t, h in zip(self.task_names, hs, strict=True)]
            subs = [s for h in outs for s in self._split(h)]  # task-major: (T*S) pieces
            self._subspaces.append(subs)
            mixed = torch.tensordot(alpha, torch.stack(subs), dims=1)  # (T*S, ..., d/S)
            hs = [
                torch.cat(list(mixed[m * n_sub : (m + 1) * n_sub]), self.feature_dim)
                for m in range(n_tasks)
            ]
            if k in self.skip_layers:
                kept.append(torch.stack(hs))  # (T, ..., d)
        if len({k.shape for k in kept}) > 1:
            raise ValueError(
                f"beta units mix layers {self.skip_layers} whose outputs have different shapes "
                f"{[tuple(k.shape[1:]) for k in kept]}; pass skip_layers with equal shapes"
            )
        stacked = torch.stack(kept, dim=1)  # (T, n_skip, ..., d)
        shape = self.betas.shape + (1,) * (stacked.dim() - 2)
        mixed_out = (self.betas.reshape(shape) * stacked).sum(1)  # (T, ..., d)
        return {t: self.heads[t](mixed_out[m]) for m, t in enumerate(self.task_names)}

    def regularization(self) -> Tensor | float:
        """Orthogonality penalty (Eq. 4) on the activations of the last forward, weighted."""
        if not self._subspaces or self.orthogonality == 0:
            return 0.0
        n_sub = self.n_subspaces
        total = 0.0
        for subs in self._subspaces:
            for m in range(len(self.task_names)):
                own = subs[m * n_sub : (m + 1) * n_sub]
                for a in range(n_sub):
                    for b in range(a + 1, n_sub):
                        g1 = own[a].movedim(self.feature_dim, -1)
                        g2 = own[b].movedim(self.feature_dim, -1)
                        total = total + orthogonality_penalty(g1, g2, self.normalize)
        return self.orthogonality * total

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.alphas
        yield self.betas

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([self.columns[task], self.heads[task]])
