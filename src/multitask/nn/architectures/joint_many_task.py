"""Joint many-task model (Hashimoto, Xiong, Tsuruoka & Socher, EMNLP 2017)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..._params import check_int, check_real
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition


def _head_width(head: nn.Module) -> int | None:
    """``out_features`` of a head that is, or ends in, an ``nn.Linear``; None otherwise."""
    last = head
    while isinstance(last, nn.Sequential) and len(last) > 0:
        last = last[-1]
    return last.out_features if isinstance(last, nn.Linear) else None


class JointManyTask(MultiTaskModule):
    r"""A hierarchy of tasks, one layer each, with input shortcuts and label embeddings.

    Task ``k`` (in the order of ``heads``) owns layer ``k``. Its input is the
    concatenation, along the last dimension, of

    - the model input ``x`` (the shortcut connection to every layer, Sec. 2.2),
    - the hidden output :math:`h^{(k-1)}` of the layer below (for ``k > 0``),
    - the label embedding of every lower task ``j`` listed in ``n_classes``,
      :math:`y_j = \sum_{c} p(c \mid h^{(j)})\, \ell_j(c)` (the softmax-weighted
      label embedding of Eq. 3; :math:`p` is the softmax of head ``j``'s logits),

    so layer ``k`` must accept ``input_dim + hidden_{k-1} + label_dim * (number of
    embedded tasks below k)`` features (``hidden_{-1} = 0``). Task ``k`` predicts
    ``head_k(h^{(k)})``. Leading dimensions (batch, sequence) are kept, so the
    layers may be recurrent (returning a tensor), Transformer blocks or MLPs.

    Successive regularisation (Sec. 3, Eq. 2 and the following losses): call
    :meth:`snapshot` when moving from one task's training to the next;
    :meth:`regularization` then returns
    :math:`\delta \|\theta - \theta'\|^2` over the snapshotted parameters.

    Parameters
    ----------
    layers : sequence of nn.Module
        One layer per task, lowest task first.
    heads : dict of str to nn.Module
        Heads in hierarchy order (the same order as ``layers``).
    n_classes : dict of str to int
        Number of classes of each lower task whose label embedding is fed upward.
        Each an integer >= 1, equal to the number of logits of the task's head.
    label_dim : int, default=16
    delta : float, default=1e-2
        Strength of the successive regularisation, finite and >= 0 (0: none).

    References
    ----------
    Hashimoto, K., Xiong, C., Tsuruoka, Y., Socher, R. "A Joint Many-Task Model:
    Growing a Neural Network for Multiple NLP Tasks." EMNLP 2017, Sec. 2
    (shortcut connections, label embeddings, Eq. 3) and Sec. 3 (successive regularisation).

    Examples
    --------
    POS tags (5 classes) feed their label embedding (``label_dim=2``) to chunking, whose layer
    reads ``x`` (4), ``h^(0)`` (8) and that embedding (2):

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import JointManyTask
    >>> model = JointManyTask(
    ...     [nn.Linear(4, 8), nn.Linear(4 + 8 + 2, 8)],
    ...     {"pos": nn.Linear(8, 5), "chunk": nn.Linear(8, 3)},
    ...     n_classes={"pos": 5},
    ...     label_dim=2,
    ...     delta=1e-2,
    ... )
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'pos': (5, 5), 'chunk': (5, 3)}
    >>> tuple(model.last_label_embeddings["pos"].shape)
    (5, 2)

    Successive regularisation: after a snapshot, moving the POS layer's 8 biases by 0.1
    costs ``delta * 8 * 0.1^2``:

    >>> model.snapshot(below="chunk")  # the parameters of the tasks below chunking
    >>> with torch.no_grad():
    ...     _ = model.layers[0].bias.add_(0.1)
    >>> round(model.regularization().item(), 6)
    0.0008
    """

    # the last forward's label embeddings (in its graph, for inspection): not copied
    _forward_state: ClassVar[dict[str, object]] = {
        **MultiTaskModule._forward_state,
        "last_label_embeddings": {},
    }

    def __init__(
        self,
        layers: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        n_classes: Mapping[str, int],
        label_dim: int = 16,
        delta: float = 1e-2,
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        layers = check_layers(layers)
        if len(layers) != len(self.task_names):
            raise ValueError(
                f"{len(layers)} layers for {len(self.task_names)} tasks; give one per task"
            )
        top = self.task_names[-1]
        bad = [t for t in n_classes if t not in self.task_names or t == top]
        if bad:
            raise ValueError(
                f"n_classes names {bad}: only lower tasks (not {top!r}) can be embedded"
            )
        owner = "JointManyTask"
        label_dim = check_int(label_dim, "label_dim", owner, low=1)
        delta = check_real(delta, "delta", owner, low=0.0)
        n_classes = {
            t: check_int(c, f"n_classes[{t!r}]", owner, low=1) for t, c in n_classes.items()
        }
        for t, c in n_classes.items():
            width = _head_width(heads[t])
            if width is not None and width != c:
                raise ValueError(
                    f"{owner}: n_classes[{t!r}]={c}, but the head of task {t!r} ends in an "
                    f"nn.Linear with {width} outputs; they must agree (one logit per class)"
                )
        self.layers = nn.ModuleList(layers)
        self.heads = nn.ModuleDict(heads)
        self.label_embeddings = nn.ParameterDict(
            {
                t: nn.Parameter(torch.randn(c, label_dim) * label_dim**-0.5)
                for t, c in n_classes.items()
            }
        )
        self.delta = delta
        self._snapshot: dict[str, Tensor] = {}
        self.last_label_embeddings: dict[str, Tensor] = {}
        check_partition(self)  # one module given for two roles

    def label_embedding(self, task: str, logits: Tensor) -> Tensor:
        """Softmax-weighted label embedding ``softmax(logits) @ L_task`` (..., label_dim)."""
        n_classes = self.label_embeddings[task].shape[0]
        if logits.shape[-1] != n_classes:
            raise ValueError(
                f"JointManyTask: the head of task {task!r} gives {logits.shape[-1]} logits "
                f"(output shape {tuple(logits.shape)}), but n_classes[{task!r}]={n_classes}; "
                "they must agree (one logit per class)"
            )
        return torch.softmax(logits, dim=-1) @ self.label_embeddings[task]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        outputs: dict[str, Tensor] = {}
        embeddings: list[Tensor] = []
        h = None
        for k, t in enumerate(self.task_names):
            parts = [x] + ([h] if h is not None else []) + embeddings
            h = self.layers[k](torch.cat(parts, dim=-1))
            outputs[t] = self.heads[t](h)
            if t in self.label_embeddings:
                emb = self.label_embedding(t, outputs[t])
                self.last_label_embeddings[t] = emb
                embeddings.append(emb)
        return outputs

    def _named_below(self, below: str | None) -> dict[str, nn.Parameter]:
        if below is None:
            return dict(self.named_parameters())
        if below not in self.task_names:
            raise ValueError(f"unknown task {below!r}; tasks are {list(self.task_names)}")
        k = self.task_names.index(below)
        keep = {f"layers.{j}." for j in range(k)} | {f"heads.{t}." for t in self.task_names[:k]}
        exact = {f"label_embeddings.{t}" for t in self.task_names[:k]}  # a name, not a prefix:
        # task "pos" below must not take "pos2"'s embedding
        return {
            n: p
            for n, p in self.named_parameters()
            if n in exact or any(n.startswith(s) for s in keep)
        }

    @torch.no_grad()
    def snapshot(self, below: str | None = None) -> None:
        """Remember the current parameters (all, or those of the tasks below ``below``)."""
        self._snapshot = {n: p.detach().clone() for n, p in self._named_below(below).items()}

    def get_extra_state(self) -> dict[str, Tensor]:
        """The snapshot (the successive regularisation's anchor): in ``state_dict``, so that a
        checkpoint resumes with it."""
        return dict(self._snapshot)

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        device = next(self.parameters()).device
        self._snapshot = {n: t.to(device) for n, t in state.items()}

    def _apply(self, fn, recurse=True):  # .to(device) / .double() move the anchor too
        out = super()._apply(fn, recurse)
        self._snapshot = {n: fn(t) for n, t in self._snapshot.items()}
        return out

    def regularization(self) -> Tensor | float:
        """Successive regularisation ``delta * sum ||theta - theta_snapshot||^2`` (0 if none)."""
        if not self._snapshot or self.delta == 0:
            return 0.0
        params = dict(self.named_parameters())
        total = sum((params[n] - old).pow(2).sum() for n, old in self._snapshot.items())
        return self.delta * total

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for k, t in enumerate(self.task_names[:-1]):
            yield from self.layers[k].parameters()
            if t in self.label_embeddings:
                yield from self.heads[t].parameters()
                yield self.label_embeddings[t]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        k = self.task_names.index(task)
        if k == len(self.task_names) - 1:
            yield from self.layers[k].parameters()
        if task not in self.label_embeddings:
            yield from self.heads[task].parameters()
