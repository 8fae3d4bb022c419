"""Fully-adaptive feature sharing (Lu et al., CVPR 2017): grow a thin shared network into a tree."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..._params import check_real
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition, parameters_of

Group = tuple[str, ...]


def task_affinity(per_sample_losses: Tensor, task_names: Sequence[str] | None = None) -> Tensor:
    r"""Affinity of tasks from their simultaneously easy or hard examples (Sec. 3.3).

    Sample ``n`` is *difficult* for task ``i`` (:math:`e^n_i = 1`) when its loss is
    at least the task's mean loss. The affinity is the probability that two tasks
    agree on it, :math:`A(i,j) = P(e_i = 1, e_j = 1) + P(e_i = 0, e_j = 0)`.

    Missing labels: a non-finite per-sample loss (the library marks a missing label with
    NaN) means the sample is not labelled for that task. Each task's mean is taken over
    its own labelled samples, and :math:`A(i, j)` over the samples labelled for both
    ``i`` and ``j`` (so one NaN does not turn the task's mean into NaN and every sample
    into an "easy" one). ``F.mse_loss`` and ``F.binary_cross_entropy_with_logits`` with
    ``reduction="none"`` give NaN at a NaN target; ``F.cross_entropy`` gives 0 at
    ``ignore_index``, which would count as an easy sample: mark it, e.g.
    ``loss.masked_fill(target == ignore_index, float("nan"))``.

    Parameters
    ----------
    per_sample_losses : Tensor of shape (n_samples, n_tasks)
    task_names : sequence of str, optional
        Names of the columns, used in error messages (default: ``task 0``, ``task 1``, ...).

    Returns
    -------
    Tensor of shape (n_tasks, n_tasks), symmetric, ones on the diagonal.

    Raises
    ------
    ValueError
        When two tasks (or a task with itself: a task with no label) have no sample labelled
        for both: their affinity is undefined, and no neutral value would be right for the
        separation cost, so pass samples on which both are labelled.
    """
    n_tasks = per_sample_losses.shape[1]
    if task_names is not None and len(task_names) != n_tasks:
        raise ValueError(f"got {len(task_names)} task names for {n_tasks} tasks: {task_names}")
    names = (
        [f"task {t!r}" for t in task_names] if task_names else [f"task {i}" for i in range(n_tasks)]
    )
    labelled = torch.isfinite(per_sample_losses)  # (N, T)
    m = labelled.to(per_sample_losses.dtype)
    losses = torch.where(labelled, per_sample_losses, 0.0)
    mean = losses.sum(0, keepdim=True) / m.sum(0, keepdim=True)  # (1, T), over labelled rows
    hard = (losses >= mean).to(m.dtype) * m  # (N, T), 0 on unlabelled rows
    easy = m - hard
    joint = m.T @ m  # (T, T): rows labelled for both
    if (joint == 0).any():
        i, j = (int(k) for k in (joint == 0).nonzero()[0])
        raise ValueError(
            f"{names[i]} and {names[j]} have no sample labelled for both (non-finite "
            "per-sample losses mark missing labels), so their affinity is undefined; compute "
            "it on samples where both are labelled"
        )
    return (hard.T @ hard + easy.T @ easy) / joint


def branch_affinity(affinity: Tensor, branches: Sequence[Sequence[int]]) -> Tensor:
    r"""Affinity between branches (sets of task indices), Sec. 3.3.

    :math:`A_b(k,l) = \mathrm{mean}_{i \in k} \min_{j \in l} A(i,j)`, symmetrised
    :math:`\tilde A_b(k,l) = (A_b(k,l) + A_b(l,k)) / 2`.
    """
    n = len(branches)
    ab = torch.empty(n, n, dtype=affinity.dtype)
    for k, bk in enumerate(branches):
        for l, bl in enumerate(branches):
            ab[k, l] = affinity[list(bk)][:, list(bl)].min(dim=1).values.mean()
    return (ab + ab.T) / 2


def separation_cost(branch_aff: Tensor, grouping: Sequence[Sequence[int]]) -> float:
    r""":math:`J(g) = \frac1d \sum_{k=1}^{d} \big(1 - \min_{i \ne j \in g_k} \tilde A_b(i, j)\big)`.

    A group of one branch costs nothing.
    """
    total = 0.0
    for group in grouping:
        if len(group) > 1:
            sub = branch_aff[list(group)][:, list(group)]
            off = sub[~torch.eye(len(group), dtype=torch.bool)]
            total += 1.0 - float(off.min())
    return total / len(grouping)


def cluster(branch_aff: Tensor, n_groups: int) -> list[list[int]]:
    """Complete-linkage agglomerative clustering of branches into ``n_groups`` (deterministic)."""
    groups = [[i] for i in range(branch_aff.shape[0])]
    while len(groups) > n_groups:
        best, pair = -float("inf"), (0, 1)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                link = float(branch_aff[groups[a]][:, groups[b]].min())
                if link > best:
                    best, pair = link, (a, b)
        a, b = pair
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
    return groups


@dataclass
class BranchTree:
    """The grown tree: ``levels[l]`` lists the task groups that share a copy of layer ``l``."""

    levels: list[list[Group]] = field(default_factory=list)

    def group_of(self, layer: int, task: str) -> int:
        return next(k for k, g in enumerate(self.levels[layer]) if task in g)

    def __str__(self) -> str:
        rows = []
        for l, groups in enumerate(self.levels):
            rows.append(f"layer {l}: " + " ".join("[" + " ".join(g) + "]" for g in groups))
        return "\n".join(rows)


class FullyAdaptiveSharing(MultiTaskModule):
    r"""A network that starts thin (all tasks share every layer) and widens greedily, top down.

    Widening layer ``l`` (Sec. 3.3 of the paper): the branches just above it (the
    task heads for the top layer, else the groups of layer ``l + 1``) that
    currently share one copy of layer ``l`` are clustered by their branch
    affinity :math:`\tilde A_b` (see :func:`branch_affinity`; the task affinity
    comes from :func:`task_affinity`, the probability of simultaneously easy or
    hard examples). For every number of groups ``d`` the grouping :math:`g_d`
    is scored by

    .. math:: L(g_d) = J(g_d) + \lambda\,(d - 1)\, 2^{p_l},

    separation cost (:func:`separation_cost`) plus :math:`\lambda` times the
    complexity of creating :math:`d - 1` new branches, with :math:`p_l` the
    number of pooling layers above layer ``l`` (the paper's proxy for the cost of
    branching low in the network). The best ``d`` wins; each new group gets a
    copy of the parent's layer (weights copied, as in the paper). Call
    :meth:`widen_next` after each training round to go down one layer. Rebuild
    the optimizer after a widening (new parameters). The tree is part of
    ``state_dict``: a checkpoint of a widened model loads into a thin one built
    with the same arguments, which takes the checkpoint's shape.

    Parameters
    ----------
    layers : sequence of nn.Module
        The thin network (initially shared by all tasks).
    heads : dict of str to nn.Module
    complexity_weight : float, default=0.1
        :math:`\lambda`, finite and >= 0.
    pooling_above : sequence of int, optional
        :math:`p_l` for each layer (default 0 everywhere).

    Attributes
    ----------
    tree_ : BranchTree
        The current tree (``print(model.tree_)``).
    next_layer_ : int
        The layer :meth:`widen_next` will widen (-1 once the bottom was reached).

    Notes
    -----
    The paper's grouping step is a clustering of the branch affinities; here it is
    complete-linkage agglomerative clustering (deterministic, matches the min-link
    separation cost). The paper's thin-network initialisation by simultaneous
    orthogonal matching pursuit from a pretrained network is not part of this
    class: pass already initialised ``layers``.

    References
    ----------
    Lu, Y., Kumar, A., Zhai, S., Cheng, Y., Javidi, T., Feris, R. "Fully-adaptive
    Feature Sharing in Multi-Task Networks with Applications in Person Attribute
    Classification." CVPR 2017, Sec. 3.3 (task affinity, branch affinity, Eq. 3-5).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import FullyAdaptiveSharing
    >>> model = FullyAdaptiveSharing(
    ...     [nn.Linear(4, 8), nn.Linear(8, 8)],
    ...     {t: nn.Linear(8, 1) for t in ("a", "b", "c")},
    ...     complexity_weight=0.1,
    ... )
    >>> print(model.tree_)  # thin: every task shares every layer
    layer 0: [a b c]
    layer 1: [a b c]

    Tasks ``a`` and ``b`` are often easy or hard together, ``c`` is not. Splitting the top
    layer into ``[a b] [c]`` costs ``(1 - 0.9) / 2 + 0.1 = 0.15``, against ``1 - 0.2 = 0.8``
    for no split and ``0 + 0.2`` for three branches:

    >>> affinity = torch.tensor([[1.0, 0.9, 0.2], [0.9, 1.0, 0.3], [0.2, 0.3, 1.0]])
    >>> model.widen_next(affinity)
    [[('a', 'b'), ('c',)]]
    >>> print(model.tree_)
    layer 0: [a b c]
    layer 1: [a b] [c]
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 1), 'c': (5, 1)}
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        complexity_weight: float = 0.1,
        pooling_above: Sequence[int] | None = None,
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        layers = check_layers(layers)
        self.complexity_weight = check_real(
            complexity_weight, "complexity_weight", "FullyAdaptiveSharing", low=0.0
        )
        self.pooling_above = (
            tuple(pooling_above) if pooling_above is not None else (0,) * len(layers)
        )
        if len(self.pooling_above) != len(layers):
            raise ValueError(
                f"pooling_above needs {len(layers)} entries, got {len(self.pooling_above)}"
            )
        self.nodes = nn.ModuleDict({f"l{l}_g0": layer for l, layer in enumerate(layers)})
        self.heads = nn.ModuleDict(heads)
        self.tree_ = BranchTree([[tuple(self.task_names)] for _ in layers])
        self.next_layer_ = len(layers) - 1
        check_partition(self)  # one module given for two roles

    @property
    def n_layers(self) -> int:
        return len(self.tree_.levels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        prev: list[Tensor] = []
        for l, groups in enumerate(self.tree_.levels):
            cur = []
            for k, g in enumerate(groups):
                inp = x if l == 0 else prev[self.tree_.group_of(l - 1, g[0])]
                cur.append(self.nodes[f"l{l}_g{k}"](inp))
            prev = cur
            if l == 0:
                self.representation = cur[0] if len(cur) == 1 else None
        last = self.n_layers - 1
        return {t: self.heads[t](prev[self.tree_.group_of(last, t)]) for t in self.task_names}

    def _children(self, layer: int, group: Group) -> list[Group]:
        if layer == self.n_layers - 1:
            return [(t,) for t in group]
        return [g for g in self.tree_.levels[layer + 1] if g[0] in group]

    def widen(self, layer: int, affinity: Tensor) -> list[list[Group]]:
        """Widen ``layer`` given a task ``affinity`` of shape (n_tasks, n_tasks).

        Returns, for each former group of ``layer``, the chosen split (list of new groups).
        """
        affinity = torch.as_tensor(affinity, dtype=torch.float64).cpu()
        n = len(self.task_names)
        if affinity.shape != (n, n):
            raise ValueError(
                f"affinity must be ({n}, {n}) over tasks {self.task_names}, "
                f"got {tuple(affinity.shape)}"
            )
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer {layer} outside [0, {self.n_layers - 1}]")
        index = {t: i for i, t in enumerate(self.task_names)}
        new_groups: list[Group] = []
        new_nodes: dict[str, nn.Module] = {}
        splits = []
        for k, group in enumerate(self.tree_.levels[layer]):
            children = self._children(layer, group)
            aff_b = branch_affinity(affinity, [[index[t] for t in c] for c in children])
            best, best_grouping = float("inf"), [list(range(len(children)))]
            for d in range(1, len(children) + 1):
                grouping = cluster(aff_b, d)
                cost = separation_cost(aff_b, grouping)
                cost += self.complexity_weight * (d - 1) * 2 ** self.pooling_above[layer]
                if cost < best - 1e-12:
                    best, best_grouping = cost, grouping
            split = [tuple(t for c in g for t in children[c]) for g in best_grouping]
            splits.append(split)
            parent = self.nodes[f"l{layer}_g{k}"]
            for j, g in enumerate(split):
                new_nodes[f"l{layer}_g{len(new_groups)}"] = (
                    parent if j == 0 else copy.deepcopy(parent)
                )
                new_groups.append(g)
        for key in [k for k in self.nodes if k.startswith(f"l{layer}_")]:
            del self.nodes[key]
        self.nodes.update(new_nodes)
        self.tree_.levels[layer] = new_groups
        return splits

    def widen_next(self, affinity: Tensor) -> list[list[Group]]:
        """Widen :attr:`next_layer_` and move one layer down."""
        if self.next_layer_ < 0:
            raise RuntimeError("every layer has been widened already; nothing left to grow")
        splits = self.widen(self.next_layer_, affinity)
        self.next_layer_ -= 1
        return splits

    def get_extra_state(self) -> dict:
        """The grown tree and the next layer to widen, in ``state_dict``: a checkpoint of a
        widened model loads into a freshly built (thin) one, which grows to its shape."""
        return {"levels": [[list(g) for g in level] for level in self.tree_.levels],
                "next_layer": self.next_layer_}  # fmt: skip

    def set_extra_state(self, state: dict) -> None:
        levels = [[tuple(g) for g in level] for level in state["levels"]]
        if len(levels) != self.n_layers or {t for lv in levels for g in lv for t in g} != set(
            self.task_names
        ):
            raise ValueError(
                f"the checkpoint's tree has {len(levels)} layers over other tasks than this "
                f"model's {self.n_layers} layers and tasks {list(self.task_names)}"
            )
        for l, groups in enumerate(levels):  # a copy of the layer per group (weights load next)
            template = self.nodes[f"l{l}_g0"]
            for key in [k for k in self.nodes if k.startswith(f"l{l}_")]:
                if int(key.rsplit("_g", 1)[1]) >= len(groups):
                    del self.nodes[key]
            for k in range(len(groups)):
                if f"l{l}_g{k}" not in self.nodes:
                    self.nodes[f"l{l}_g{k}"] = copy.deepcopy(template)
        self.tree_ = BranchTree(levels)
        self.next_layer_ = int(state["next_layer"])

    def _nodes_of(self, shared: bool, task: str | None = None) -> list[nn.Module]:
        out = []
        for l, groups in enumerate(self.tree_.levels):
            for k, g in enumerate(groups):
                if (len(g) > 1) == shared and (shared or g == (task,)):
                    out.append(self.nodes[f"l{l}_g{k}"])
        return out

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return parameters_of(self._nodes_of(shared=True))

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([*self._nodes_of(shared=False, task=task), self.heads[task]])
