"""Move small host tensors to an accelerator without a host synchronisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def to_device_async(x: Tensor, like: Tensor) -> Tensor:
    """``x`` (on the CPU) moved to ``like``'s device and dtype.

    A plain ``.to(cuda)`` from pageable memory waits for the stream; a copy
    from pinned memory with ``non_blocking=True`` does not (the caching host
    allocator keeps the pinned block alive until the copy is done).
    """
    return move_async(x.to(dtype=like.dtype), like)


def move_async(x: Tensor, like: Tensor) -> Tensor:
    """``x`` (on the CPU) moved to ``like``'s device, its dtype kept (an index or a mask), as
    :func:`to_device_async` moves it."""
    if like.device.type != "cuda":
        return x.to(like.device)
    return x.pin_memory().to(like.device, non_blocking=True)


def index_on(indices: Sequence[int], like: Tensor) -> Tensor:
    """``indices`` (the present tasks of a step) as a long tensor on ``like``'s device, moved
    as :func:`move_async` moves it (no host synchronisation)."""
    return move_async(torch.tensor(indices, dtype=torch.long), like)
