"""Low supervision: each task supervised at its own depth (Søgaard & Goldberg, ACL 2016)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from torch import Tensor, nn

from ..._params import check_int
from ._base import MultiTaskModule
from ._layers import check_heads, check_layers, check_partition, parameters_of


class LowSupervision(MultiTaskModule):
    r"""One shared stack of layers; task ``t``'s head reads the output of layer ``depths[t]``.

    Lower-level tasks (POS tagging in the paper) are supervised at a lower layer
    and higher-level ones (chunking, CCG) at the top: the layers below a task's
    depth are shared with the tasks above it, the layers above it are not trained
    by it. With ``h^{(0)} = x`` and ``h^{(k)} = \text{layer}_k(h^{(k-1)})``, task
    ``t`` predicts ``head_t(h^{(d_t)})``.

    Parameters
    ----------
    layers : sequence of nn.Module
        The shared stack (any modules: recurrent layers returning a tensor,
        Transformer blocks, conv blocks, linear layers).
    heads : dict of str to nn.Module
    depths : dict of str to int
        Number of layers (1 to ``len(layers)``) below each task's head.

    Notes
    -----
    A layer used by several tasks is shared; a layer used by one task only (the
    layers above every other task's depth) belongs to that task, unless it is also
    used lower down (a tied block, ``layers=[block, block]``), where it reaches every
    task: then it is shared. The
    :attr:`representation` is the output of the shallowest supervised layer,
    which every task's prediction depends on.

    References
    ----------
    Søgaard, A., Goldberg, Y. "Deep multi-task learning with low level tasks
    supervised at lower layers." ACL 2016, Sec. 2 (Eq. for the task-specific depth).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import LowSupervision
    >>> model = LowSupervision(
    ...     [nn.Linear(4, 8), nn.Linear(8, 8)],
    ...     {"pos": nn.Linear(8, 5), "chunk": nn.Linear(8, 3)},
    ...     depths={"pos": 1, "chunk": 2},  # POS read after layer 1, chunking at the top
    ... )
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'pos': (5, 5), 'chunk': (5, 3)}
    >>> len(list(model.shared_parameters()))  # layer 0 (weight, bias): below both heads
    2
    >>> len(list(model.task_parameters("chunk")))  # layer 1 and its head
    4
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        depths: Mapping[str, int],
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        layers = check_layers(layers)
        missing = set(self.task_names) - set(depths)
        if missing:
            raise ValueError(f"depths has no entry for tasks {sorted(missing)}")
        unknown = [t for t in depths if t not in self.task_names]
        if unknown:
            raise ValueError(
                f"LowSupervision: depths names unknown task(s) {unknown}; the tasks are "
                f"{list(self.task_names)}"
            )
        depths = {t: check_int(d, f"depths[{t!r}]", "LowSupervision") for t, d in depths.items()}
        bad = {t: d for t, d in depths.items() if not 1 <= d <= len(layers)}
        if bad:
            raise ValueError(f"depths {bad} must lie in [1, {len(layers)}] (number of layers)")
        self.depths = {t: int(depths[t]) for t in self.task_names}
        self.layers = nn.ModuleList(layers[: max(self.depths.values())])
        self.heads = nn.ModuleDict(heads)
        check_partition(self)  # one head module for two tasks

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        outputs = {}
        h = x
        lowest = min(self.depths.values())
        for k, layer in enumerate(self.layers, start=1):
            h = layer(h)
            if k == lowest:
                self.representation = h
            for t in self.task_names:
                if self.depths[t] == k:
                    outputs[t] = self.heads[t](h)
        return {t: outputs[t] for t in self.task_names}

    def _users(self, k: int) -> list[str]:
        return [t for t in self.task_names if self.depths[t] >= k]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return parameters_of(
            layer for k, layer in enumerate(self.layers, 1) if len(self._users(k)) > 1
        )

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        own = [layer for k, layer in enumerate(self.layers, 1) if self._users(k) == [task]]
        shared = {id(p) for p in self.shared_parameters()}  # a block tied below: shared
        return (p for p in parameters_of([*own, self.heads[task]]) if id(p) not in shared)
