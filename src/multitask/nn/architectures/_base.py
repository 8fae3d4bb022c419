"""The contract every multi-task architecture follows."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import ClassVar

from torch import Tensor, nn


class MultiTaskModule(nn.Module):
    """Base class of the architectures: ``forward(x) -> dict[task, Tensor]``.

    Subclasses define :attr:`task_names`, :meth:`forward`,
    :meth:`shared_parameters` and :meth:`task_parameters`. Every parameter of
    the module is either shared or belongs to exactly one task; balancers and
    :func:`multitask.nn.mtl_backward` rely on that partition.

    Optional hooks:

    - :attr:`representation` -- after ``forward``, the shared representation
      (a tensor in the graph) on which representation-space balancers (MGDA-UB)
      differentiate; None when the architecture has no single shared
      representation.
    - :meth:`regularization` -- an extra scalar loss the architecture adds to
      the objective (soft-sharing coupling, sluice orthogonality, MRN prior);
      zero by default.

    Examples
    --------
    A minimal architecture of one's own: a shared linear trunk and one linear head per task.

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import MultiTaskModule
    >>> class TwoHeads(MultiTaskModule):
    ...     task_names = ("a", "b")
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.trunk = nn.Linear(4, 8)
    ...         self.heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in self.task_names})
    ...     def forward(self, x):
    ...         self.representation = self.trunk(x)
    ...         return {t: self.heads[t](self.representation) for t in self.task_names}
    ...     def shared_parameters(self):
    ...         return self.trunk.parameters()
    ...     def task_parameters(self, task):
    ...         return self.heads[task].parameters()
    >>> model = TwoHeads()
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 1)}
    >>> model.regularization()  # no extra loss by default
    0.0
    """

    task_names: tuple[str, ...] = ()
    representation: Tensor | None = None
    #: What a forward leaves on the module (tensors of the last batch, in its graph: the
    #: representation, a subclass's inspection values), with the value a copy gets instead:
    #: ``copy.deepcopy``, ``AveragedModel`` and pickling drop them (a non-leaf tensor cannot
    #: be deep-copied, and the last batch's graph is not the copy's).
    _forward_state: ClassVar[dict[str, object]] = {"representation": None}

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        for name, empty in self._forward_state.items():
            if name in state:
                state[name] = copy.copy(empty)
        return state

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def shared_parameters(self) -> Iterator[nn.Parameter]:  # pragma: no cover - abstract
        raise NotImplementedError

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:  # pragma: no cover
        raise NotImplementedError

    def regularization(self) -> Tensor | float:
        """Extra loss term of the architecture (0 when it has none)."""
        return 0.0
