"""The task-space solvers on CUDA, replayed from CUDA graphs: one launch instead of hundreds.

A Gramian solver works on ``(T, T)`` matrices; on CUDA its cost is the launch of each of its
tiny kernels (the sync-free paths run fixed numbers of sign, Newton-Schulz or active-set
iterations: IMTL-G and Aligned-MTL about 200 to 300 kernels a step), not their arithmetic. An
aggregator whose :meth:`gramian_weights` is a pure function of its tensor arguments and its
settings (``graph_safe``) is captured once per settings, shapes and device into a
``torch.cuda.CUDAGraph`` and replayed: the inputs are copied into the graph's own tensors (no
host sync), the output cloned out of its pool.

The first call of each kind captures (it synchronises the device once: ``torch.cuda.graph``
does). A capture that fails (an operation that cannot be captured, e.g. a host copy of a
CPU ``pref``) is remembered and that kind runs eagerly from then on. Inside a capture of the
caller's own, or with ``MULTITASK_CUDA_GRAPHS=0``, every call is eager.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

#: environment switch (``0``: never capture; for debugging and timing the eager path)
ENABLED = os.environ.get("MULTITASK_CUDA_GRAPHS", "1") != "0"
#: graphs kept per aggregator (one per settings, shapes and device); the oldest is dropped
MAX_GRAPHS = 8

_FAILED = "failed"
_GRAPHS: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def gramian_weights(aggregator, gramian: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``aggregator.gramian_weights(gramian, *args, **kwargs)``, from a CUDA graph where it can.

    Eager unless the aggregator is ``graph_safe``, ``gramian`` is on CUDA, graphs are enabled
    and no capture is under way.
    """
    call = aggregator.gramian_weights
    if not (ENABLED and gramian.device.type == "cuda" and getattr(aggregator, "graph_safe", False)):
        return call(gramian, *args, **kwargs)  # before the key: no settings read on the CPU
    names = list(kwargs)

    def fn(*vals):
        n = 1 + len(args)
        return call(vals[0], *vals[1:n], **dict(zip(names, vals[n:], strict=True)))

    key = (_settings(aggregator), len(args), tuple(names))
    return replay(aggregator, key, fn, gramian, *args, *kwargs.values())


def replay(owner: nn.Module, key: Any, fn: Callable, *values: Any) -> Tensor:
    """``fn(*values)`` (a pure function of its tensor arguments returning one tensor), replayed
    from a CUDA graph captured on the first call of each ``key`` and argument layout.

    The graphs are kept per ``owner`` (at most :data:`MAX_GRAPHS`); ``key`` names whatever else
    ``fn`` depends on. Eager when the first value is not on CUDA, graphs are disabled, a capture
    is under way, or this kind failed to capture before.
    """
    if not ENABLED or values[0].device.type != "cuda" or torch.cuda.is_current_stream_capturing():
        return fn(*values)
    full = (key, *map(_signature, values))
    graphs = _GRAPHS.setdefault(owner, {})
    entry = graphs.get(full)
    if entry is None:
        if len(graphs) >= MAX_GRAPHS:
            graphs.pop(next(iter(graphs)))
        entry = graphs[full] = _capture(fn, list(values))
    if entry == _FAILED:
        return fn(*values)
    graph, inputs, output = entry
    for dst, src in zip(inputs, values, strict=True):
        if isinstance(dst, Tensor):
            dst.copy_(src)
    graph.replay()
    return output.clone()


def _capture(fn: Callable, values: list) -> tuple | str:
    """``(graph, its input tensors, its output)``, or ``_FAILED``."""
    inputs = [v.detach().clone() if isinstance(v, Tensor) else v for v in values]
    device = values[0].device
    try:
        with torch.cuda.device(device), torch.no_grad():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up: library handles, workspaces, caches
                for _ in range(2):
                    fn(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                output = fn(*inputs)
    except Exception:  # not capturable: eager from now on
        return _FAILED
    if not isinstance(output, Tensor):
        return _FAILED
    return graph, inputs, output


def _signature(value: Any) -> Any:
    """What a graph depends on in an argument: a tensor's layout, any other value itself."""
    if isinstance(value, Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device)
    return value


def _settings(aggregator: nn.Module) -> tuple:
    """The aggregator's plain settings and the identity of its tensor ones (a graph reads a
    tensor setting's memory as it was at capture: a new tensor needs a new graph)."""
    out = []
    for name, value in sorted(vars(aggregator).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, Tensor):
            out.append((name, value.data_ptr(), tuple(value.shape), value.dtype, value.device))
        elif value is None or isinstance(value, str | int | float | bool):
            out.append((name, value))
    return tuple(out)
