"""Small helpers shared by the deep architectures (private)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn


def key_error(name) -> str | None:
    """Why ``nn.ModuleDict`` cannot hold ``name`` as a key, as an error message; None when it
    can: an empty name or not a string, one holding ``"."``, or one that is an attribute of
    ``nn.ModuleDict`` (``type``, ``train``, ``values``, ``keys``, ``items``, ``update``,
    ``pop``, ... : an instance's own attributes, ``training``, count too)."""
    if not isinstance(name, str) or not name:
        return f"task names must be non-empty strings, got {name!r}"
    if "." in name:
        return f"task name {name!r} contains '.', which nn.ModuleDict forbids; rename it"
    if hasattr(nn.ModuleDict(), name):
        return (
            f"task name {name!r} is an attribute of nn.ModuleDict, which therefore cannot "
            f"hold it as a key; rename the task (e.g. {name + '_task'!r})"
        )
    return None


def check_heads(heads: Mapping[str, nn.Module]) -> tuple[str, ...]:
    """Validate a ``{task: head}`` mapping and return the task names in order.

    The architectures key ``nn.ModuleDict`` containers (heads, gates, task experts) by
    task name, so a name that dict refuses (:func:`key_error`) is an error here, said with
    the task and the reason, rather than torch's bare ``KeyError`` from deep inside a
    constructor.
    """
    if not isinstance(heads, Mapping) or len(heads) == 0:
        raise ValueError(
            f"heads must be a non-empty dict {{task_name: nn.Module}}; got {type(heads).__name__}"
        )
    for name, head in heads.items():
        problem = key_error(name)
        if problem is not None:
            raise ValueError(problem)
        if not isinstance(head, nn.Module):
            raise TypeError(f"head of task {name!r} is a {type(head).__name__}, not an nn.Module")
    return tuple(heads)


def check_partition(model: nn.Module) -> None:
    """Raise a ValueError when ``model`` lists a parameter as shared and as a task's own, or
    as two tasks' own.

    Every parameter is shared or belongs to exactly one task
    (:class:`~multitask.nn.architectures.MultiTaskModule`): a balancer weighs the tasks'
    gradients on the shared ones, and gives a task's own only that task's gradient. One
    module given for two roles (one head object for two tasks, the trunk or a shared layer
    as a head, one network for two tasks) breaks that, and the balancer's weights would be
    ignored for its parameters. Called at the end of the architectures' constructors.
    """
    owner: dict[int, str | None] = {id(p): None for p in model.shared_parameters()}
    for task in model.task_names:
        for p in model.task_parameters(task):
            other = owner.setdefault(id(p), task)
            if other == task:
                continue
            name = next((n for n, q in model.named_parameters() if q is p), "?")
            roles = "is shared" if other is None else f"belongs to task {other!r}"
            raise ValueError(
                f"{type(model).__name__}: parameter {name!r} {roles} and also to task "
                f"{task!r}; a parameter is shared or belongs to exactly one task (a "
                "balancer's weights would be ignored for it). The same module was given "
                "twice: give each task a module of its own (e.g. copy.deepcopy(head)), and "
                "no head that holds the trunk's or a shared layer's parameters"
            )


def check_layers(layers: Sequence[nn.Module], what: str = "layers") -> list[nn.Module]:
    """Validate a non-empty sequence of modules (an ``nn.Sequential`` is accepted)."""
    layers = list(layers)
    if not layers:
        raise ValueError(f"{what} must hold at least one nn.Module")
    for i, layer in enumerate(layers):
        if not isinstance(layer, nn.Module):
            raise TypeError(f"{what}[{i}] is a {type(layer).__name__}, not an nn.Module")
    return layers


def columns(layers: Sequence[nn.Module], task_names: Sequence[str]) -> nn.ModuleDict:
    """One independent copy of ``layers`` per task: ``{task: ModuleList}`` (deep copies).

    The whole list is copied at once, so a module used at several depths of ``layers`` (a
    tied block) is one module inside each column, and a separate one in each other column.
    """
    stack = nn.ModuleList(layers)
    return nn.ModuleDict({t: copy.deepcopy(stack) for t in task_names})


def parameters_of(modules: Iterable[nn.Module | None]) -> Iterator[nn.Parameter]:
    """Parameters of several modules, each parameter once."""
    seen: set[int] = set()
    for module in modules:
        if module is None:
            continue
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p


def mix_init(n: int, self_weight: float = 0.9) -> Tensor:
    """Mixing matrix of shape ``(n, n)``: ``self_weight`` on the diagonal, the rest spread evenly.

    This is the cross-stitch initialisation of Misra et al. (CVPR 2016, Sec. 4):
    rows sum to one, so the initial units neither amplify nor shrink activations.
    """
    if n == 1:
        return torch.ones(1, 1)
    off = (1.0 - self_weight) / (n - 1)
    return torch.full((n, n), off) + (self_weight - off) * torch.eye(n)


def flatten_rows(h: Tensor) -> Tensor:
    """View ``(..., d)`` activations as a ``(n_rows, d)`` matrix."""
    return h.reshape(-1, h.shape[-1])


def gated_sum(gate_logits: Tensor, experts: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax-gated mixture of experts.

    Parameters
    ----------
    gate_logits : Tensor of shape (batch, n_experts)
    experts : Tensor of shape (batch, n_experts, *feature_shape)

    Returns
    -------
    mixed : Tensor of shape (batch, *feature_shape)
    gates : Tensor of shape (batch, n_experts), rows on the simplex
    """
    gates = torch.softmax(gate_logits, dim=-1)  # (B, E)
    shape = gates.shape + (1,) * (experts.dim() - 2)
    return (gates.reshape(shape) * experts).sum(dim=1), gates
