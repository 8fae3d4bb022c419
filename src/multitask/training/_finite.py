"""Non-finite inputs and infinite targets of a training batch, found from one sum per tensor.

A sum is non-finite exactly when a term is (NaN, +inf, -inf) or when it overflows, so the
trainer reads one number per floating tensor (an input's sum, a target's NaN-ignoring sum:
NaN marks a missing label) and looks at the entries only when that number is not finite.
It reads the sums of CPU tensors at once, before the forward; those of tensors on an
accelerator with the step's losses, in the host read it does anyway (no extra sync).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["Probe", "check_probes", "explain", "first_suspect", "probes"]


class Probe(NamedTuple):
    """One floating tensor of a batch and its (NaN-ignoring, for a target) sum, 0-d."""

    name: str
    tensor: Tensor
    total: Tensor
    target: bool


def _floating(inputs: Any, targets: Mapping[str, Any], tasks: Sequence[str], suffix: str):
    """``(name + suffix, tensor, is_target)`` of every floating input tensor and target."""
    for name, x in _named(inputs, "inputs"):
        if x.is_floating_point():
            yield name + suffix, x, False
    for t in tasks:
        y = targets[t]
        if isinstance(y, Tensor) and y.is_floating_point():
            yield f"the target of task {t!r}{suffix}", y, True


def _named(obj: Any, name: str) -> Iterator[tuple[str, Tensor]]:
    if isinstance(obj, Tensor):
        yield name, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _named(v, f"{name}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _named(v, f"{name}[{i}]")


def _sum(x: Tensor, target: bool) -> Tensor:
    if x.requires_grad:
        x = x.detach()
    if x.element_size() < 4:  # float16 / bfloat16: their own range overflows on ordinary batches
        return torch.nansum(x, dtype=torch.float32) if target else x.sum(dtype=torch.float32)
    return torch.nansum(x) if target else x.sum()  # (no dtype argument: ~1 us less a call)


def first_suspect(
    inputs: Any, targets: Mapping[str, Any], tasks: Sequence[str], suffix: str = ""
) -> Probe | None:
    """The check of CPU tensors, each sum read at once: the first whose sum is not finite
    (for :func:`explain`), or None; ``suffix`` follows each tensor's name."""
    for name, x, target in _floating(inputs, targets, tasks, suffix):
        total = _sum(x, target)
        if not math.isfinite(total.item()):
            return Probe(name, x, total, target)
    return None


def probes(
    inputs: Any, targets: Mapping[str, Any], tasks: Sequence[str], suffix: str = ""
) -> list[Probe]:
    """The floating tensors of ``inputs`` (a tensor, or dicts, lists, tuples of them) and the
    floating targets of ``tasks``, each with its sum, not yet read (an accelerator's)."""
    found = _floating(inputs, targets, tasks, suffix)
    return [Probe(name, x, _sum(x, target), target) for name, x, target in found]


def check_probes(found: Sequence[Probe], totals: Sequence[float], where: str) -> None:
    """:func:`explain` each probe whose sum, read on the host (``totals``), is not finite."""
    for probe, total in zip(found, totals, strict=True):
        if not math.isfinite(total):
            explain(probe, where)


def explain(probe: Probe, where: str) -> None:
    """A ValueError naming a tensor with a NaN or infinite input, or an infinite target,
    its count, first values and first sample; nothing if its entries are finite (a sum
    that overflowed)."""
    x = probe.tensor
    bad = torch.isinf(x) if probe.target else ~torch.isfinite(x)
    n = int(bad.sum())
    if n == 0:
        return
    first = x[bad][:3].tolist()
    sample = ""
    if x.ndim > 0:
        rows = bad.reshape(x.shape[0], -1).any(dim=1)
        sample = f", first in sample {int(rows.nonzero()[0, 0])} of the batch"
    if probe.target:
        raise ValueError(
            f"{probe.name} holds {n} infinite value(s) ({first}) {where}{sample}; NaN marks "
            "a missing label, an infinite value is no label: fix it or mask it with NaN"
        )
    raise ValueError(
        f"{probe.name} holds {n} non-finite value(s) ({first}) {where}{sample}; a NaN or "
        "infinite input makes the gradients NaN (even with a finite loss, after a "
        "saturating layer such as Tanh): clean or impute the data"
    )
