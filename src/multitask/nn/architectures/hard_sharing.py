"""Hard parameter sharing: one shared trunk, one head per task."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from torch import Tensor, nn

from multitask.nn.architectures._base import MultiTaskModule
from multitask.nn.architectures._layers import check_heads, check_partition

__all__ = ["HardSharing"]


class HardSharing(MultiTaskModule):
    """A shared encoder followed by task-specific heads.

    ``forward(x)`` computes ``z = trunk(x)`` once, stores it as
    :attr:`representation` (for MGDA-UB), and returns ``{t: heads[t](z)}``.
    Any encoder works (MLP, CNN, RNN, Transformer): the trunk's output is
    passed to every head unchanged, so a head may pool or index it as it
    needs.

    Every path from the trunk's parameters to the outputs goes through the
    representation, so :attr:`shared_through_representation` is True:
    :func:`multitask.nn.mtl_backward` then takes per-task gradients of the
    representation through each head first and carries them through the
    trunk in one batched backward (cheaper than pushing ``T`` rows through
    every head).

    Parameters
    ----------
    trunk : nn.Module
        The shared layers.
    heads : dict of str -> nn.Module
        One head per task, keyed by task name; the dict's order is the task
        order. A head reads only the representation and its own parameters
        (a head that called another task's head, through a reference the
        module does not register, would make that head's parameters reach two
        losses, which the two-stage backward does not look for). One head
        module for two tasks, or a head that registers the trunk (or a module
        of it), is refused with a ValueError: its parameters would be listed
        twice.

    References
    ----------
    Caruana, "Multitask Learning: A Knowledge-Based Source of Inductive
    Bias", ICML 1993; Ruder, "An Overview of Multi-Task Learning in Deep
    Neural Networks", arXiv:1706.05098, 2017, Sec. 3.1.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import HardSharing
    >>> trunk = nn.Sequential(nn.Linear(3, 8), nn.ReLU())
    >>> model = HardSharing(trunk, {"price": nn.Linear(8, 1), "kind": nn.Linear(8, 4)})
    >>> out = model(torch.randn(5, 3))
    >>> {task: tuple(y.shape) for task, y in out.items()}
    {'price': (5, 1), 'kind': (5, 4)}
    >>> model.task_names, tuple(model.representation.shape)
    (('price', 'kind'), (5, 8))
    >>> sum(p.numel() for p in model.shared_parameters())  # the trunk's 3 * 8 + 8
    32
    """

    #: the trunk reaches the outputs only through ``representation``
    shared_through_representation = True

    def __init__(self, trunk: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not heads:
            raise ValueError(
                "HardSharing needs at least one head; pass heads={'task': module, ...}"
            )
        if not isinstance(trunk, nn.Module):
            raise TypeError(f"trunk is a {type(trunk).__name__}, not an nn.Module")
        self.task_names = check_heads(heads)  # names nn.ModuleDict can hold, modules
        self.trunk = trunk
        self.heads = nn.ModuleDict(dict(heads))
        self.representation = None
        check_partition(self)  # one module given for two roles

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        z = self.trunk(x)
        self.representation = z
        return {t: head(z) for t, head in self.heads.items()}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.heads:
            raise KeyError(f"unknown task {task!r}; valid task names are {list(self.task_names)}")
        return self.heads[task].parameters()
