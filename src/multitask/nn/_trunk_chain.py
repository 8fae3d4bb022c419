"""The trunk stage of the two-stage per-task Jacobian: a chain of Linear layers, by hand.

:func:`trunk_jacobian` carries ``T`` cotangents of the representation through a trunk that is a
chain of ``nn.Linear`` layers (2-D inputs) and elementwise activations, as per-sample-gradient
libraries do: ``C <- (C @ W) * act'`` per layer, weight blocks ``C_t^T A`` by one batched matrix
product written straight into the preallocated ``(T, n_params)`` Jacobian, bias blocks by a sum
over the batch. The layer inputs ``A`` and the activations' saved tensors are those the forward
pass stored for autograd (``node._saved_*``), so no hook on the model is needed.

Only GEMMs and a few fused elementwise passes run: ReLU is one in-place ``threshold_backward``
(no mask tensor), and on the CPU the ``(T, batch, width)`` cotangents live in two buffers reused
from step to step (:func:`_scratch`), because fresh multi-megabyte tensors every step make the
allocator hand memory back to the system and fault it in again (measured: about a thousand page
faults and a third of the step's time at ``T = 5`` on the benchmark's MLP).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import torch
from torch import Tensor

from multitask.nn._jacobian_fast import HeadRows, _leaf, _linear

__all__ = ["trunk_jacobian"]

_ACTIVATIONS = {  # derivative of the activation, from the tensor its node saved
    "ReluBackward0": lambda n: n._saved_result > 0,
    "TanhBackward0": lambda n: 1 - n._saved_result.square(),
    "SigmoidBackward0": lambda n: n._saved_result * (1 - n._saved_result),
    "GeluBackward0": lambda n: torch.ops.aten.gelu_backward(
        torch.ones_like(n._saved_self), n._saved_self, approximate=n._saved_approximate
    ),
    "LeakyReluBackward0": lambda n: torch.ops.aten.leaky_relu_backward(
        torch.ones_like(n._saved_self), n._saved_self, n._saved_negative_slope, False
    ),
    "SiluBackward0": lambda n: _silu_derivative(n._saved_self),
}
_SAVED = {  # the attribute holding the tensor the derivative is formed from
    "ReluBackward0": "_saved_result",
    "TanhBackward0": "_saved_result",
    "SigmoidBackward0": "_saved_result",
    "GeluBackward0": "_saved_self",
    "LeakyReluBackward0": "_saved_self",
    "SiluBackward0": "_saved_self",
}
_SCRATCH = threading.local()
_SCRATCH_MAX = 1 << 22  # elements (16 MiB in float32); larger cotangents: allocated per call
_SCRATCH_VIEWS = 16  # views kept per buffer (one per shape asked for)


def _silu_derivative(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _scratch(slot: int, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A buffer of ``shape`` for internal cotangents, reused between calls (CPU, per thread).

    Its content never leaves :func:`_chain_jacobian`. On other devices (whose allocators cache
    memory already), above ``_SCRATCH_MAX`` elements and in inference mode, a new tensor.
    """
    n = math.prod(shape)
    if like.device.type != "cpu" or n > _SCRATCH_MAX or torch.is_inference_mode_enabled():
        return like.new_empty(shape)  # (an inference tensor could not be reused outside)
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    key = (slot, like.dtype)
    entry = bufs.get(key)  # (flat buffer, {shape: view of it})
    if entry is None or entry[0].numel() < n:
        entry = bufs[key] = (like.new_empty(n), {})  # the old buffer's views go with it
    views = entry[1]
    view = views.get(shape)
    if view is None:  # one view per shape, kept: making it costs two dispatches a call
        if len(views) >= _SCRATCH_VIEWS:  # shapes that keep changing (ragged batches)
            views.clear()
        view = views[shape] = entry[0][:n].view(shape)
    return view


def _apply_act(cot: Tensor, node, saved: Tensor, out: Tensor) -> Tensor:
    """``cot * f'(x)`` broadcast over the tasks, written into ``out`` (``cot`` itself or scratch).

    ReLU: one fused ``threshold_backward`` (no mask tensor, no bool-to-float multiply).
    """
    if node is not None and type(node).__name__ == "ReluBackward0":
        return torch.ops.aten.threshold_backward.grad_input(cot, saved, 0, grad_input=out)
    factor = saved if node is None else _ACTIVATIONS[type(node).__name__](node)
    return torch.mul(cot, factor, out=out)


def _single_input(node) -> object | bool | None:
    """The one non-None next node; False when there are several."""
    nexts = node.next_functions
    if len(nexts) == 1:  # an activation's one input
        return nexts[0][0]
    nxt = [f for f, _ in nexts if f is not None]
    return nxt[0] if len(nxt) == 1 else (None if not nxt else False)


def _plan(rep: Tensor) -> list | None:
    """The trunk as ``("act", node, saved)`` / ``("linear", W, b, A)`` steps, output first.

    ``node`` is the activation's autograd node (None for a constant factor ``saved``, dropout's
    scaled mask); ``saved`` is the tensor its derivative is formed from (when it is applied).
    """
    steps, node = [], rep.grad_fn
    while node is not None:
        name = type(node).__name__
        if name in _ACTIVATIONS:
            nxt = _single_input(node)
            steps.append(("act", node, getattr(node, _SAVED[name])))
        elif name == "MulBackward0":  # a constant factor: dropout's scaled mask
            (f0, _), (f1, _) = node.next_functions
            if (f0 is None) == (f1 is None):
                return None
            steps.append(("act", None, node._saved_other if f1 is None else node._saved_self))
            nxt = f0 if f1 is None else f1
        elif name in ("AddmmBackward0", "MmBackward0"):
            found = _linear(node, name)
            if found is None:
                return None
            weight, bias, A, nxt = found
            steps.append(("linear", weight, bias, A))
        else:
            return None
        if nxt is False:
            return None
        node = None if nxt is None or _leaf(nxt) is not None else nxt
    return steps


def trunk_jacobian(rep: Tensor, rows: Tensor | HeadRows, params: Sequence[Tensor]) -> Tensor | None:
    """Rows ``rows[t]^T d rep / d params``, flattened: ``(T, n_params)``, or None.

    Parameters
    ----------
    rep : Tensor of shape (batch, width)
        Output of the trunk, with its autograd graph.
    rows : Tensor of shape (T, batch, width) or HeadRows
        Cotangents (per-task gradients of the representation), dense or factored (formed here
        straight into a reused buffer). Not modified.
    params : sequence of Tensor
        The trunk's parameters, in the Jacobian's column order; a parameter that the chain does
        not reach gets zero columns.

    Returns
    -------
    jacobian : Tensor of shape (T, n_params) or None
        A new tensor. None when the graph from ``rep`` down is not a chain of Linear layers and
        elementwise activations, or reaches a parameter not in ``params``, or uses one twice.

    References
    ----------
    Goodfellow, "Efficient Per-Example Gradient Computations", arXiv:1510.01799, 2015 (the
    weight gradient of a linear layer as an outer product of its input and output gradient),
    applied here with one cotangent per task instead of one per example.
    """
    if rep.grad_fn is None or rep.dim() != 2 or tuple(rows.shape[1:]) != tuple(rep.shape):
        return None
    with torch.no_grad():
        return _chain_jacobian(rep, rows, params)


def _chain_jacobian(rep: Tensor, rows, params: Sequence[Tensor]) -> Tensor | None:
    steps = _plan(rep)
    if steps is None:
        return None
    offsets, total = {}, 0
    for p in params:
        offsets[id(p)] = (total, p.numel())
        total += p.numel()
    dtype = rows.delta.dtype if isinstance(rows, HeadRows) else rows.dtype
    shape = tuple(rows.shape)
    reached = _fits(steps, offsets, shape, dtype)
    if reached is None:
        return None
    T, B = shape[0], shape[1]
    jac = rep.new_empty((T, total), dtype=dtype)
    slot = None  # the scratch slot holding ``cot``; None: ``cot`` is the caller's ``rows``
    if isinstance(rows, HeadRows):
        cot, slot = rows.dense(out=_scratch(0, shape, jac)), 0
    else:
        cot = rows
    last = max(i for i, s in enumerate(steps) if s[0] == "linear")
    for i, step in enumerate(steps):
        if step[0] == "act":
            out = cot if slot is not None else _scratch(0, tuple(cot.shape), jac)
            cot, slot = _apply_act(cot, step[1], step[2], out), 0 if slot is None else slot
            continue
        _, weight, bias, A = step
        start = offsets[id(weight)][0]  # the (T, out, in) block, as one view (not slice + view)
        block = jac.as_strided((T, *weight.shape), (total, weight.shape[1], 1), start)
        if B < 2:  # matmul would fold (T, out, B) @ (B, in) to 2-D, which ``block`` is not
            torch.bmm(cot.transpose(1, 2), A.expand(T, *A.shape), out=block)
        else:
            torch.matmul(cot.transpose(1, 2), A, out=block)
        if bias is not None:
            start, size = offsets[id(bias)]
            torch.sum(cot, dim=1, out=jac.as_strided((T, size), (total, 1), start))
        if i < last:  # (T, B, out) @ (out, in): the input's cotangent, into the other slot
            slot = 1 if slot == 0 else 0
            cot = torch.matmul(cot, weight, out=_scratch(slot, (T, B, weight.shape[1]), jac))
    if len(reached) < len(offsets):
        for p in params:  # parameters the chain does not reach: no gradient
            if id(p) not in reached:
                start, size = offsets[id(p)]
                jac[:, start : start + size] = 0
    return jac


def _fits(
    steps: list, offsets: dict, shape: tuple[int, ...], dtype: torch.dtype
) -> set[int] | None:
    """The ids of the parameters the chain reaches, or None unless every one of them is in
    ``params`` (``offsets``) once, with the Jacobian's dtype, and the shapes chain."""
    seen, batch, width = set(), shape[1], shape[-1]
    linear, act_shape = False, (batch, width)
    for step in steps:
        if step[0] == "act":
            saved = step[2]
            if saved is None or (saved.dtype is not dtype and saved.dtype is not torch.bool):
                return None
            if saved.dim() > 0 and saved.shape != act_shape:
                return None
            continue
        linear = True
        _, weight, bias, A = step
        for p in (weight, bias):
            if p is None:
                continue
            key = id(p)
            if key not in offsets or key in seen or p.dtype is not dtype:
                return None
            seen.add(key)
        out_features, width = weight.shape
        if out_features != act_shape[1] or A.shape != (batch, width) or A.dtype is not dtype:
            return None
        act_shape = (batch, width)
    return seen if linear else None
